terraform {
  # Terraform's guard: write-only arguments and ephemeral variables need 1.11. OpenTofu reads versions.tofu
  # instead, where its own supported range is stated.
  required_version = ">= 1.11"

  required_providers {
    alicloud = {
      source = "aliyun/alicloud"
      # 1.240.0 is the release the module is tested against (the real provider, built from its Go module).
      version = ">= 1.240.0, < 2.0.0"
    }
    cloudcode = {
      source  = "cloudcode-dev/cloudcode"
      version = ">= 0.1.0, < 1.0.0"
    }
  }
}
