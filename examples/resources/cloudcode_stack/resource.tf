variable "admin_password" {
  type      = string
  ephemeral = true
}

variable "llm_api_key" {
  type      = string
  ephemeral = true
}

resource "cloudcode_stack" "box" {
  host             = "47.1.2.3"
  private_key_path = pathexpand("~/.ssh/id_ed25519")

  # Empty domain: the site is served on 47-1-2-3.sslip.io.
  admin_username            = "me"
  admin_email               = "me@example.com"
  admin_password_wo         = var.admin_password
  admin_password_wo_version = 1

  llm_provider           = "anthropic"
  llm_api_key_wo         = var.llm_api_key
  llm_api_key_wo_version = 1
}

output "url" {
  value = cloudcode_stack.box.url
}
