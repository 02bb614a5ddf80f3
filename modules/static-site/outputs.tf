output "bucket" {
  description = "The OSS bucket holding the site."
  value       = alicloud_oss_bucket.this.bucket
}

output "cdn_cname" {
  description = "The CDN's CNAME target for domain (the record manage_dns adds)."
  value       = alicloud_cdn_domain_new.this.cname
}

output "url" {
  description = "The site's address."
  value       = "https://${var.domain}/"
}

output "files" {
  description = "Every uploaded key with its content type."
  value       = { for k, f in local.files : k => f.content_type }
}
