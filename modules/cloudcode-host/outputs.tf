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

output "app_urls" {
  description = "Each app and static site by name → its https URL (its own name, or a path of the main site)."
  value = {
    for n, h in local.app_hosts : n => startswith(h, "/") ? "https://${cloudcode_stack.this.domain}${h}/" : format(
      "https://%s/", try(provider::cloudcode::ascii_domain(length(regexall("[.]", h)) > 0 ? h : "${h}.${cloudcode_stack.this.domain}"), lower(h))
    )
  }
}
