# cloudcode on a machine you already have (any cloud, or your own): only the stack, deployed over SSH. The
# machine, its firewall (22, 80, 443 open) and DNS are yours; the caller configures the cloudcode provider.

resource "cloudcode_stack" "this" {
  host             = var.host
  port             = var.ssh_port
  user             = var.ssh_user
  host_key         = var.host_key
  private_key_path = var.private_key_path

  domain                  = var.domain == "" ? null : var.domain
  fallback_domain_service = var.fallback_domain_service

  admin_username            = var.admin_username
  admin_email               = var.admin_email
  admin_password_wo         = var.admin_password
  admin_password_wo_version = var.admin_password_version

  llm_provider           = var.llm_provider
  llm_base_url           = var.llm_base_url
  llm_model              = var.llm_model
  llm_api_key_wo         = var.llm_api_key
  llm_api_key_wo_version = var.llm_api_key_version

  opencode_permission = var.opencode_permission

  # The outbound proxy, only with a version (the proxy itself is write-only and never stored).
  proxy_wo         = var.proxy_version == null ? null : var.proxy
  proxy_wo_version = var.proxy_version
  no_proxy         = length(var.no_proxy) > 0 ? var.no_proxy : null
  mirrors          = var.mirrors

  # The chat bridge, only when Telegram or DingTalk is configured (off by default).
  dynamic "im" {
    for_each = var.im_telegram_token_version != null || var.im_dingtalk_client_id != null ? [1] : []
    content {
      telegram_token_wo                 = var.im_telegram_token
      telegram_token_wo_version         = var.im_telegram_token_version
      telegram_api_base                 = var.im_telegram_api_base
      dingtalk_client_id                = var.im_dingtalk_client_id
      dingtalk_client_secret_wo         = var.im_dingtalk_client_secret
      dingtalk_client_secret_wo_version = var.im_dingtalk_client_secret_version
      dingtalk_robot_code               = var.im_dingtalk_robot_code
      proxy_wo                          = var.im_proxy
      proxy_wo_version                  = var.im_proxy_version
    }
  }

  # Your own apps and static sites (null when none, as the provider stores them).
  apps              = length(var.apps) > 0 ? var.apps : null
  static_sites      = length(var.static_sites) > 0 ? var.static_sites : null
  app_secret_env_wo = var.app_secret_env

  terminal_enabled = var.terminal_enabled
  https_alt_port   = var.https_alt_port
  remote_teardown  = var.remote_teardown
}

locals {
  # Where each app and static site is served, by name: a path of the main site (`/api`), else a name — a full
  # name under the domain (with a dot), or a DNS label under it (the app's own name by default).
  app_hosts = merge(
    { for n, a in var.apps : n => a.host == null ? n : a.host },
    { for n, s in var.static_sites : n => s.host == null ? n : s.host },
  )
}
