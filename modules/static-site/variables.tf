variable "bucket_name" {
  description = "The OSS bucket that holds the site (private: it is read through the CDN only). Bucket names are global across Alibaba Cloud."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3 to 63 lower-case letters, digits or hyphens, starting and ending with a letter or digit."
  }
}

variable "source_dir" {
  description = "The local directory uploaded to the bucket, one object per file (the key is the path below the directory)."
  type        = string

  validation {
    condition     = length(fileset(var.source_dir, "**")) > 0
    error_message = "source_dir must be an existing directory holding at least one file."
  }
}

variable "domain" {
  description = "The site's domain name, served by the CDN (e.g. static.example.com)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,62}$", var.domain))
    error_message = "domain must be a lower-case domain name such as static.example.com."
  }
}

variable "scope" {
  description = "Where the CDN serves from: overseas, domestic (mainland China: the domain needs an ICP filing) or global."
  type        = string
  default     = "overseas"

  validation {
    condition     = contains(["overseas", "domestic", "global"], var.scope)
    error_message = "scope must be overseas, domestic or global."
  }
}

variable "certificate_id" {
  description = "The id of the domain's certificate in Alibaba Cloud's Certificate Management Service (CAS), e.g. \"8089870\": the CDN takes the certificate and its key from there, so the key never enters Terraform state. The default way; set this or certificate and private_key, not both."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_id == null || can(regex("^[0-9]+$", var.certificate_id))
    error_message = "certificate_id must be the numeric id of a certificate in Certificate Management Service (e.g. 8089870)."
  }

  validation {
    condition     = var.certificate_id != null || (var.certificate != null && var.private_key != null)
    error_message = "certificate_id must be set (a certificate in Certificate Management Service) unless both certificate and private_key are given to upload one."
  }

  validation {
    condition     = var.certificate_id == null || (var.certificate == null && var.private_key == null)
    error_message = "certificate_id cannot be combined with certificate or private_key: reference the certificate by id, or upload it with its key, not both."
  }
}

variable "certificate_region" {
  description = "Where the certificate_id certificate lives in Certificate Management Service: cn-hangzhou (China site) or ap-southeast-1 (International site)."
  type        = string
  default     = "cn-hangzhou"

  validation {
    condition     = contains(["cn-hangzhou", "ap-southeast-1"], var.certificate_region)
    error_message = "certificate_region must be cn-hangzhou or ap-southeast-1."
  }
}

variable "certificate" {
  description = "Upload instead of certificate_id: the domain's certificate (PEM, the chain after the leaf), with private_key. The key is then kept in Terraform state (the provider stores it there): use only where that is acceptable."
  type        = string
  default     = null

  validation {
    condition     = var.certificate == null || startswith(trimspace(coalesce(var.certificate, " ")), "-----BEGIN CERTIFICATE-----")
    error_message = "certificate must be a PEM certificate (-----BEGIN CERTIFICATE-----)."
  }
}

variable "private_key" {
  description = "Upload instead of certificate_id: the certificate's private key (PEM). Sensitive, never shown in a plan, but kept in Terraform state: use only where that is acceptable."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.private_key == null || can(regex("^-----BEGIN (RSA |EC )?PRIVATE KEY-----", trimspace(coalesce(var.private_key, " "))))
    error_message = "private_key must be a PEM private key (-----BEGIN PRIVATE KEY-----)."
  }
}

variable "manage_dns" {
  description = "Add a CNAME from domain to the CDN in the account's Alibaba Cloud DNS zone (dns_zone)."
  type        = bool
  default     = false
}

variable "dns_zone" {
  description = "The account's DNS domain that holds domain (default: domain without its first label)."
  type        = string
  default     = null
}

variable "content_types" {
  description = "Content types by file extension (without the dot), on top of the module's own (html, css, js, svg, png, ...)."
  type        = map(string)
  default     = {}
}
