# cloudcode managed from a Git repository: state in OSS with TableStore locking, pull requests plan, the main
# branch applies (see .github/workflows/cloudcode.yml). Every credential comes from CI secrets through
# environment variables: ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY for both providers and the backend,
# TF_VAR_admin_password and TF_VAR_llm_api_key for the ephemeral inputs, and the SSH key written to a file.

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

  # Create the bucket (private, versioned) and the TableStore instance/table (primary key LockID, string) once
  # by hand; backends cannot use variables.
  backend "oss" {
    bucket              = "my-cloudcode-tfstate"
    prefix              = "cloudcode"
    key                 = "terraform.tfstate"
    region              = "ap-southeast-1"
    encrypt             = true
    acl                 = "private"
    tablestore_endpoint = "https://my-tf-lock.ap-southeast-1.ots.aliyuncs.com"
    tablestore_table    = "terraform_lock"
  }
}

provider "alicloud" {
  region = var.region
}

provider "cloudcode" {
  region = var.region
}

module "cloudcode" {
  # Pin a release: source = "github.com/cloudcode-dev/cloudcode//modules/cloudcode?ref=v0.1.0"
  source = "../../modules/cloudcode"

  name              = var.name
  ssh_public_key    = var.ssh_public_key
  private_key_path  = var.private_key_path
  ssh_allowed_cidrs = var.ssh_allowed_cidrs

  domain = var.domain

  admin_email            = var.admin_email
  admin_password         = var.admin_password
  admin_password_version = var.admin_password_version
  llm_provider           = var.llm_provider
  llm_api_key            = var.llm_api_key
  llm_api_key_version    = var.llm_api_key_version

  # Suspend/resume by merging a change of this line (null: running, unless the box suspended itself for idleness).
  running            = var.running
  idle_suspend_after = var.idle_suspend_after
}
