terraform {
  # Terraform's guard: write-only arguments and ephemeral variables need 1.11. OpenTofu reads versions.tofu
  # instead, where its own supported range is stated.
  required_version = ">= 1.11"

  required_providers {
    alicloud = {
      source = "aliyun/alicloud"
      # 1.289.0 is the release whose schema the module is checked against.
      version = ">= 1.289.0, < 2.0.0"
    }
    cloudcode = {
      source  = "cloudcode-dev/cloudcode"
      version = ">= 0.1.0, < 1.0.0"
    }
  }
}
