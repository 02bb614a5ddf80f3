terraform {
  required_version = ">= 1.11"
  required_providers {
    cloudcode = {
      source = "cloudcode-dev/cloudcode"
    }
  }
}

variable "ssh_private_key" {
  type      = string
  sensitive = true
}

# Provider configuration is never stored in state: the SSH key can live here (e.g. from a CI secret).
provider "cloudcode" {
  ssh_private_key = var.ssh_private_key
}
