# cloudcode on Alibaba Cloud with your own domain in Alibaba Cloud DNS: the module creates the A records of the
# name and auth.<name>. For a domain hosted elsewhere set manage_dns = false and create the records of the
# manual_dns_records output by hand. Credentials come from ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY.

terraform {
  required_version = ">= 1.11"

  required_providers {
    alicloud = {
      source  = "aliyun/alicloud"
      version = ">= 1.240.0, < 2.0.0"
    }
    cloudcode = {
      source  = "cloudcode-dev/cloudcode"
      version = ">= 0.1.0, < 1.0.0"
    }
  }
}

provider "alicloud" {
  region = var.region
}

provider "cloudcode" {
  region = var.region
}

module "cloudcode" {
  # In your own repository: source = "github.com/cloudcode-dev/cloudcode//modules/cloudcode?ref=v0.1.0"
  source = "../../modules/cloudcode"

  name          = "oc"
  instance_type = var.instance_type

  ssh_public_key    = file(pathexpand("${var.ssh_key_path}.pub"))
  private_key_path  = var.ssh_key_path
  ssh_allowed_cidrs = var.ssh_allowed_cidrs

  domain     = var.domain
  manage_dns = var.manage_dns
  # Also serve HTTPS on 8443 for networks that block 443.
  enable_https_alt_port = true

  admin_email    = var.admin_email
  admin_password = var.admin_password
  llm_provider   = "anthropic"
  llm_model      = "claude-sonnet-4-5"
  llm_api_key    = var.llm_api_key
}
