# The smallest cloudcode deployment on Alibaba Cloud: one pay-as-you-go ECS instance in Singapore, an EIP and
# the <a-b-c-d>.sslip.io domain. Credentials come from ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY.

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
  # Snapshots on destroy and restore on deploy use the same region and credentials.
  region = var.region
}

module "cloudcode" {
  # In your own repository: source = "github.com/cloudcode-dev/cloudcode//modules/cloudcode?ref=v0.1.0"
  source = "../../modules/cloudcode"

  ssh_public_key    = file(pathexpand("${var.ssh_key_path}.pub"))
  private_key_path  = var.ssh_key_path
  ssh_allowed_cidrs = var.ssh_allowed_cidrs

  admin_email    = var.admin_email
  admin_password = var.admin_password
  llm_provider   = var.llm_provider
  llm_api_key    = var.llm_api_key

  # Suspend with `terraform apply -var running=false`; resume with running=true.
  running = var.running
  # Or let it suspend itself when unused, e.g. idle_suspend_after = "2h".
  idle_suspend_after = var.idle_suspend_after
}
