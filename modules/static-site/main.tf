# A static site on Alibaba Cloud: a private OSS bucket holding a local directory, served over HTTPS (HTTP/2, HTTP
# redirected to HTTPS) by a CDN domain that reads the bucket with its own back-to-origin authorization, and
# optionally the CNAME in the account's DNS. No provider block: the root configures alicloud.

locals {
  builtin_content_types = {
    html        = "text/html; charset=utf-8"
    htm         = "text/html; charset=utf-8"
    css         = "text/css; charset=utf-8"
    js          = "text/javascript; charset=utf-8"
    mjs         = "text/javascript; charset=utf-8"
    json        = "application/json"
    map         = "application/json"
    webmanifest = "application/manifest+json"
    txt         = "text/plain; charset=utf-8"
    xml         = "application/xml"
    svg         = "image/svg+xml"
    png         = "image/png"
    jpg         = "image/jpeg"
    jpeg        = "image/jpeg"
    gif         = "image/gif"
    webp        = "image/webp"
    avif        = "image/avif"
    ico         = "image/x-icon"
    woff        = "font/woff"
    woff2       = "font/woff2"
    ttf         = "font/ttf"
    otf         = "font/otf"
    pdf         = "application/pdf"
    wasm        = "application/wasm"
  }
  content_types = merge(local.builtin_content_types, { for ext, type in var.content_types : lower(trimprefix(ext, ".")) => type })

  # Every file below source_dir, keyed by its path there (the object key).
  files = {
    for f in fileset(var.source_dir, "**") : f => {
      path         = "${var.source_dir}/${f}"
      extension    = length(split(".", basename(f))) > 1 ? lower(element(split(".", basename(f)), length(split(".", basename(f))) - 1)) : ""
      content_type = lookup(local.content_types, length(split(".", basename(f))) > 1 ? lower(element(split(".", basename(f)), length(split(".", basename(f))) - 1)) : "", "application/octet-stream")
      md5_hex      = filemd5("${var.source_dir}/${f}")
    }
  }

  # OSS wants Content-MD5 as the base64 of the digest; Terraform has only filemd5 (hex). Three hex digits are two
  # base64 digits: 30 of the 32 make 20, the last two (8 bits) make two more and the padding.
  base64_digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  content_md5 = {
    for key, f in local.files : key => join("", concat(
      [for i in range(10) : join("", [
        substr(local.base64_digits, floor(parseint(substr(f.md5_hex, i * 3, 3), 16) / 64), 1),
        substr(local.base64_digits, parseint(substr(f.md5_hex, i * 3, 3), 16) % 64, 1),
      ])],
      [
        substr(local.base64_digits, floor(parseint(substr(f.md5_hex, 30, 2), 16) / 4), 1),
        substr(local.base64_digits, (parseint(substr(f.md5_hex, 30, 2), 16) % 4) * 16, 1),
        "==",
      ],
    ))
  }

  labels   = split(".", var.domain)
  dns_zone = coalesce(var.dns_zone, join(".", slice(local.labels, 1, length(local.labels))))
  dns_rr   = trimsuffix(var.domain, ".${local.dns_zone}")
}

resource "alicloud_oss_bucket" "this" {
  bucket        = var.bucket_name
  storage_class = "Standard"
}

resource "alicloud_oss_bucket_acl" "this" {
  bucket = alicloud_oss_bucket.this.bucket
  acl    = "private"
}

# One object per file. content_md5 changes with the file, so a changed file is uploaded again (and OSS checks
# the bytes against it); a removed file is deleted.
resource "alicloud_oss_bucket_object" "file" {
  for_each = local.files

  bucket       = alicloud_oss_bucket.this.bucket
  key          = each.key
  source       = each.value.path
  content_type = each.value.content_type
  content_md5  = local.content_md5[each.key]
  acl          = "private"

  depends_on = [alicloud_oss_bucket_acl.this]
}

resource "alicloud_cdn_domain_new" "this" {
  domain_name = var.domain
  cdn_type    = "web"
  scope       = var.scope

  sources {
    type     = "oss"
    content  = "${alicloud_oss_bucket.this.bucket}.${alicloud_oss_bucket.this.extranet_endpoint}"
    port     = 443
    priority = 20
    weight   = 10
  }

  # The certificate by its Certificate Management Service id (cert_type "cas": the CDN fetches certificate and key
  # there, nothing secret passes through Terraform), or uploaded with its key (the provider keeps private_key in
  # state). The variables' validations allow exactly one of the two.
  certificate_config {
    cert_type                 = var.certificate_id != null ? "cas" : "upload"
    cert_id                   = var.certificate_id
    cert_region               = var.certificate_id != null ? var.certificate_region : null
    cert_name                 = var.certificate_id != null ? null : "${replace(var.domain, ".", "-")}-cert"
    server_certificate        = var.certificate
    private_key               = var.private_key
    server_certificate_status = "on"
  }
}

# The bucket stays private: the CDN reads it with its own back-to-origin authorization (the account's
# AliyunCDNAccessingPrivateOSSRole), nobody else can.
resource "alicloud_cdn_domain_config" "private_origin" {
  domain_name   = alicloud_cdn_domain_new.this.domain_name
  function_name = "l2_oss_key"

  function_args {
    arg_name  = "private_oss_auth"
    arg_value = "on"
  }
}

resource "alicloud_cdn_domain_config" "https_force" {
  domain_name   = alicloud_cdn_domain_new.this.domain_name
  function_name = "https_force"

  function_args {
    arg_name  = "enable"
    arg_value = "on"
  }
}

resource "alicloud_cdn_domain_config" "http2" {
  domain_name   = alicloud_cdn_domain_new.this.domain_name
  function_name = "https_option"

  function_args {
    arg_name  = "http2"
    arg_value = "on"
  }
}

resource "alicloud_alidns_record" "cname" {
  count = var.manage_dns ? 1 : 0

  domain_name = local.dns_zone
  rr          = local.dns_rr
  type        = "CNAME"
  value       = alicloud_cdn_domain_new.this.cname
  ttl         = 600

  lifecycle {
    precondition {
      condition     = endswith(var.domain, ".${local.dns_zone}")
      error_message = "domain must be a name inside dns_zone (a CNAME cannot sit at the zone's apex)."
    }
  }
}
