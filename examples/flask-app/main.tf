# The design documents' app on a cloudcode box: a Flask API under Gunicorn, built on the host from ./api, public on
# https://api.<domain> (HTTPS with HSTS, no login), beside OpenCode behind the login.

terraform {
  required_version = ">= 1.11"

  required_providers {
    cloudcode = {
      source  = "cloudcode-dev/cloudcode"
      version = ">= 0.1.0, < 1.0.0"
    }
  }
}

provider "cloudcode" {}

module "cloudcode" {
  # In your own repository: source = "github.com/cloudcode-dev/cloudcode//modules/cloudcode-host?ref=v0.1.0"
  source = "../../modules/cloudcode-host"

  host             = var.host
  private_key_path = var.private_key_path
  domain           = var.domain

  admin_email    = var.admin_email
  admin_password = var.admin_password
  llm_provider   = "anthropic"
  llm_api_key    = var.llm_api_key

  apps = {
    api = {
      build  = "${path.module}/api"
      port   = 8000
      auth   = "public"
      health = "/health"
      memory = "256m"
      env = {
        GREETING    = "hello from cloudcode"
        APP_VERSION = "1"
      }
      # Bump to apply new values of app_secret_env["api"].
      secret_env_wo_version = 1
    }
  }
  app_secret_env = {
    api = { DATABASE_URL = var.database_url }
  }
}

output "api_url" {
  description = "The API."
  value       = module.cloudcode.app_urls["api"]
}

output "url" {
  description = "OpenCode, behind the login."
  value       = module.cloudcode.url
}
