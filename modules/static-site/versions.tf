terraform {
  # Terraform's guard, as modules/cloudcode states it. OpenTofu reads versions.tofu instead.
  required_version = ">= 1.11"

  required_providers {
    alicloud = {
      source = "aliyun/alicloud"
      # 1.240.0 is the release the module is tested against (the real provider, built from its Go module).
      version = ">= 1.240.0, < 2.0.0"
    }
  }
}
