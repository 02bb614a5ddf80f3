terraform {
  # Write-only arguments (admin_password_wo, llm_api_key_wo) and ephemeral variables need Terraform 1.11
  # (or OpenTofu with the same features).
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
