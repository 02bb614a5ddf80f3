output "url" {
  description = "The site: OpenCode's web UI, behind the login."
  value       = cloudcode_stack.this.url
}

output "auth_url" {
  description = "The Authelia login portal."
  value       = cloudcode_stack.this.auth_url
}

output "terminal_url" {
  description = "The web terminal (null when disabled)."
  value       = cloudcode_stack.this.terminal_url
}

output "domain" {
  description = "The site's domain."
  value       = cloudcode_stack.this.domain
}

output "host_key" {
  description = "The pinned SSH host key of the machine."
  value       = cloudcode_stack.this.host_key
}
