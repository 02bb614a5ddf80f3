terraform {
  required_version = ">= 1.11"

  required_providers {
    cloudcode = {
      source  = "cloudcode-dev/cloudcode"
      version = ">= 0.1.0, < 1.0.0"
    }
  }
}
