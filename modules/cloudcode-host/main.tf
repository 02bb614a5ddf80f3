# cloudcode on a machine you already have (any cloud, or your own): only the stack, deployed over SSH. The
# machine, its firewall (22, 80, 443 open) and DNS are yours; the caller configures the cloudcode provider.

resource "cloudcode_stack" "this" {
  host             = var.host
  port             = var.ssh_port
  user             = var.ssh_user
  host_key         = var.host_key
  private_key_path = var.private_key_path

  domain = var.domain == "" ? null : var.domain

  admin_username            = var.admin_username
  admin_email               = var.admin_email
  admin_password_wo         = var.admin_password
  admin_password_wo_version = var.admin_password_version

  llm_provider           = var.llm_provider
  llm_base_url           = var.llm_base_url
  llm_model              = var.llm_model
  llm_api_key_wo         = var.llm_api_key
  llm_api_key_wo_version = var.llm_api_key_version

  terminal_enabled = var.terminal_enabled
  https_alt_port   = var.https_alt_port
  remote_teardown  = var.remote_teardown
}
