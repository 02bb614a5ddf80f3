output "url" {
  description = "Open this in the browser."
  value       = module.cloudcode.url
}

output "auth_url" {
  description = "The login portal (register a passkey here)."
  value       = module.cloudcode.auth_url
}

output "terminal_url" {
  description = "The web terminal."
  value       = module.cloudcode.terminal_url
}

output "ssh_command" {
  description = "SSH into the host."
  value       = module.cloudcode.ssh_command
}

output "eip_allocation_id" {
  description = "Keep this EIP across destroy/deploy (eip_allocation_id) to keep the sslip.io domain and its passkeys."
  value       = module.cloudcode.eip_allocation_id
}
