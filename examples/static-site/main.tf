# A static site on Alibaba Cloud: ./site uploaded to a private OSS bucket and served over HTTPS by the CDN at
# var.domain, with the CNAME in the account's DNS. Credentials come from ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY;
# the certificate's key from TF_VAR_private_key.

terraform {
  required_version = ">= 1.11"

  required_providers {
    alicloud = {
      source  = "aliyun/alicloud"
      version = ">= 1.240.0, < 2.0.0"
    }
  }
}

provider "alicloud" {
  region = var.region
}

module "site" {
  # In your own repository: source = "github.com/cloudcode-dev/cloudcode//modules/static-site?ref=v0.1.0"
  source = "../../modules/static-site"

  bucket_name = var.bucket_name
  source_dir  = "${path.module}/site"
  domain      = var.domain
  certificate = file(var.certificate_path)
  private_key = var.private_key
  manage_dns  = var.manage_dns
}

variable "region" {
  description = "The region of the bucket."
  type        = string
  default     = "cn-hangzhou"
}

variable "bucket_name" {
  description = "A globally unique OSS bucket name."
  type        = string
}

variable "domain" {
  description = "The site's domain name (its parent must be a DNS domain of the account when manage_dns is true)."
  type        = string
}

variable "certificate_path" {
  description = "The domain's certificate (PEM)."
  type        = string
}

variable "private_key" {
  description = "The certificate's private key (PEM): export TF_VAR_private_key=\"$(cat key.pem)\"."
  type        = string
  sensitive   = true
}

variable "manage_dns" {
  description = "Add the CNAME to the CDN in the account's DNS."
  type        = bool
  default     = true
}

output "url" {
  value = module.site.url
}

output "cdn_cname" {
  value = module.site.cdn_cname
}

output "bucket" {
  value = module.site.bucket
}
