output "url" {
  description = "The site."
  value       = module.cloudcode.url
}

output "auth_url" {
  description = "The login portal."
  value       = module.cloudcode.auth_url
}

output "instance_id" {
  description = "The ECS instance."
  value       = module.cloudcode.instance_id
}
