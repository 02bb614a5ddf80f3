# cloudcode on a machine you already have, on any cloud: only the cloudcode provider is needed.

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
  ssh_user         = var.ssh_user
  private_key_path = var.private_key_path
  domain           = var.domain

  admin_email    = var.admin_email
  admin_password = var.admin_password
  llm_provider   = "openai_compatible"
  llm_base_url   = var.llm_base_url
  llm_model      = var.llm_model
  llm_api_key    = var.llm_api_key
}

output "url" {
  description = "The site."
  value       = module.cloudcode.url
}

output "auth_url" {
  description = "The login portal."
  value       = module.cloudcode.auth_url
}
