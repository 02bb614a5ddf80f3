# A static site on Alibaba Cloud: ./site uploaded to a private OSS bucket and served over HTTPS by the CDN at
# var.domain, with the CNAME in the account's DNS. Credentials come from ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY.
# The certificate is one already in Certificate Management Service, by id (var.certificate_id): its key never
# passes through Terraform. Uploading a certificate and its key instead (certificate_path + TF_VAR_private_key) keeps
# the key in state: use that only where it is acceptable.

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
  manage_dns  = var.manage_dns

  certificate_id = var.certificate_id
  certificate    = var.certificate_path == null ? null : file(var.certificate_path)
  private_key    = var.private_key
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

variable "certificate_id" {
  description = "The id of the domain's certificate in Certificate Management Service (the console's SSL Certificates): the key stays there, out of Terraform state."
  type        = string
  default     = null
}

variable "certificate_path" {
  description = "Instead of certificate_id: the domain's certificate (PEM) to upload, with private_key (the key is then kept in state)."
  type        = string
  default     = null
}

variable "private_key" {
  description = "Instead of certificate_id: the certificate's private key (PEM), export TF_VAR_private_key=\"$(cat key.pem)\". Kept in Terraform state."
  type        = string
  default     = null
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
