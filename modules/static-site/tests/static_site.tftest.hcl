# The module's own logic under mocked providers: content types by extension, Content-MD5 from filemd5, the DNS
# name, the certificate by Certificate Management Service id (the default) or uploaded (exactly one of the two), and
# every variable's validation. The real provider against the API double: tests/tests/static_site_module.rs.

mock_provider "alicloud" {
  mock_resource "alicloud_oss_bucket" {
    defaults = {
      extranet_endpoint = "oss-cn-hangzhou.aliyuncs.com"
    }
  }

  mock_resource "alicloud_cdn_domain_new" {
    defaults = {
      cname = "static.example.com.w.kunlunsl.com"
    }
  }
}

variables {
  bucket_name    = "cloudcode-site-test"
  source_dir     = "tests/site"
  domain         = "static.example.com"
  certificate_id = "8089870"
}

run "each_file_gets_its_content_type_and_content_md5" {
  command = plan

  assert {
    condition     = alicloud_oss_bucket_object.file["index.html"].content_type == "text/html; charset=utf-8"
    error_message = "index.html is HTML"
  }
  assert {
    condition     = alicloud_oss_bucket_object.file["css/site.css"].content_type == "text/css; charset=utf-8"
    error_message = "css/site.css is CSS, keyed by its path below source_dir"
  }
  assert {
    condition     = alicloud_oss_bucket_object.file["LICENSE"].content_type == "application/octet-stream"
    error_message = "a file without an extension is application/octet-stream"
  }
  assert {
    condition     = alicloud_oss_bucket_object.file["empty.txt"].content_md5 == "1B2M2Y8AsgTpgAmY7PhCfg=="
    error_message = "the Content-MD5 of an empty file is the base64 MD5 of nothing"
  }
  assert {
    condition     = alicloud_oss_bucket_object.file["index.html"].content_md5 == "IO8o4saKc5Mrcp4Bg/mbnw=="
    error_message = "Content-MD5 is the base64 of the file's MD5 (openssl dgst -md5 -binary | base64)"
  }
  assert {
    condition     = alicloud_oss_bucket_object.file["css/site.css"].content_md5 == "PHJTwLF5cZWShcGPbuplCQ=="
    error_message = "Content-MD5 of css/site.css"
  }
  assert {
    condition     = length(alicloud_oss_bucket_object.file) == 4
    error_message = "one object per file"
  }
  assert {
    condition     = alicloud_oss_bucket_acl.this.acl == "private"
    error_message = "the bucket is private"
  }
  assert {
    condition     = length(alicloud_alidns_record.cname) == 0
    error_message = "no DNS record without manage_dns"
  }
  assert {
    condition     = alicloud_cdn_domain_config.http2.function_name == "https_option" && alicloud_cdn_domain_config.https_force.function_name == "https_force" && alicloud_cdn_domain_config.private_origin.function_name == "l2_oss_key"
    error_message = "HTTP/2, forced HTTPS and the private-bucket origin"
  }
}

run "extra_content_types_take_precedence" {
  command = plan

  variables {
    content_types = { ".TXT" = "text/markdown; charset=utf-8" }
  }

  assert {
    condition     = alicloud_oss_bucket_object.file["empty.txt"].content_type == "text/markdown; charset=utf-8"
    error_message = "content_types overrides the module's own, by lower-case extension without the dot"
  }
}

run "manage_dns_adds_a_cname_to_the_cdn_in_the_parent_zone" {
  variables {
    manage_dns = true
  }

  assert {
    condition     = alicloud_alidns_record.cname[0].domain_name == "example.com" && alicloud_alidns_record.cname[0].rr == "static"
    error_message = "the record is static in example.com"
  }
  assert {
    condition     = alicloud_alidns_record.cname[0].type == "CNAME" && alicloud_alidns_record.cname[0].value == "static.example.com.w.kunlunsl.com"
    error_message = "the record is a CNAME to the CDN"
  }
  assert {
    condition     = one(alicloud_cdn_domain_new.this.sources[*].content) == "cloudcode-site-test.oss-cn-hangzhou.aliyuncs.com"
    error_message = "the CDN's origin is the bucket's public OSS name"
  }
  assert {
    condition     = output.url == "https://static.example.com/" && output.cdn_cname == "static.example.com.w.kunlunsl.com"
    error_message = "outputs"
  }
}

run "a_dns_zone_that_does_not_hold_the_domain_is_refused" {
  command = plan

  variables {
    manage_dns = true
    dns_zone   = "other.org"
  }

  expect_failures = [alicloud_alidns_record.cname]
}

run "bucket_name_with_upper_case_is_refused" {
  command = plan
  variables {
    bucket_name = "My_Site"
  }
  expect_failures = [var.bucket_name]
}

run "missing_source_dir_is_refused" {
  command = plan
  variables {
    source_dir = "tests/no-such-dir"
  }
  expect_failures = [var.source_dir]
}

run "domain_with_upper_case_is_refused" {
  command = plan
  variables {
    domain = "Static.Example.com"
  }
  expect_failures = [var.domain]
}

run "unknown_scope_is_refused" {
  command = plan
  variables {
    scope = "europe"
  }
  expect_failures = [var.scope]
}

run "a_certificate_management_service_id_is_the_default_way_and_sends_no_key" {
  command = plan

  assert {
    condition     = one(alicloud_cdn_domain_new.this.certificate_config).cert_type == "cas" && one(alicloud_cdn_domain_new.this.certificate_config).cert_id == "8089870" && one(alicloud_cdn_domain_new.this.certificate_config).cert_region == "cn-hangzhou"
    error_message = "certificate_id is sent as cert_type cas with its id, in cn-hangzhou by default"
  }
  assert {
    condition     = one(alicloud_cdn_domain_new.this.certificate_config).private_key == null && one(alicloud_cdn_domain_new.this.certificate_config).server_certificate_status == "on"
    error_message = "no private key in the configuration (so none in state), HTTPS on"
  }
}

run "an_uploaded_certificate_and_key_are_accepted" {
  command = plan

  variables {
    certificate_id = null
    certificate    = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
    private_key    = "-----BEGIN PRIVATE KEY-----\nMIGHtest\n-----END PRIVATE KEY-----\n"
  }

  assert {
    condition     = one(alicloud_cdn_domain_new.this.certificate_config).cert_type == "upload" && one(alicloud_cdn_domain_new.this.certificate_config).cert_name == "static-example-com-cert"
    error_message = "certificate and private_key are uploaded under the domain's name"
  }
}

run "a_certificate_id_and_an_upload_together_are_refused" {
  command = plan
  variables {
    private_key = "-----BEGIN PRIVATE KEY-----\nMIGHtest\n-----END PRIVATE KEY-----\n"
  }
  expect_failures = [var.certificate_id]
}

run "neither_a_certificate_id_nor_an_upload_is_refused" {
  command = plan
  variables {
    certificate_id = null
  }
  expect_failures = [var.certificate_id]
}

run "a_certificate_without_its_key_is_refused" {
  command = plan
  variables {
    certificate_id = null
    certificate    = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
  }
  expect_failures = [var.certificate_id]
}

run "certificate_id_that_is_not_a_number_is_refused" {
  command = plan
  variables {
    certificate_id = "cas-8089870"
  }
  expect_failures = [var.certificate_id]
}

run "unknown_certificate_region_is_refused" {
  command = plan
  variables {
    certificate_region = "eu-central-1"
  }
  expect_failures = [var.certificate_region]
}

run "certificate_that_is_not_pem_is_refused" {
  command = plan
  variables {
    certificate_id = null
    certificate    = "MIIBtest"
    private_key    = "-----BEGIN PRIVATE KEY-----\nMIGHtest\n-----END PRIVATE KEY-----\n"
  }
  expect_failures = [var.certificate]
}

run "private_key_that_is_not_pem_is_refused" {
  command = plan
  variables {
    certificate_id = null
    certificate    = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
    private_key    = "hunter2"
  }
  expect_failures = [var.private_key]
}
