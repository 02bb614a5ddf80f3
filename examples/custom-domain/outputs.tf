output "url" {
  description = "The site."
  value       = module.cloudcode.url
}

output "auth_url" {
  description = "The login portal."
  value       = module.cloudcode.auth_url
}

output "manual_dns_records" {
  description = "Create these at your DNS host when manage_dns = false."
  value       = module.cloudcode.manual_dns_records
}

output "public_ip" {
  description = "The EIP."
  value       = module.cloudcode.public_ip
}
