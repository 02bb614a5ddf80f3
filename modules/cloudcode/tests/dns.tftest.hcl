# A domain plans two A records (the name and auth.<name>) in the Alibaba Cloud DNS domain that holds it;
# no domain plans none; a domain hosted elsewhere is listed for creating by hand.

# Inline mocks: OpenTofu's mock_provider has no `source`, so the values live here, the same in every file.
mock_provider "alicloud" {
  # Real-looking ids and addresses, so the cloudcode provider's own checks (instance ids, host addresses) see
  # what the real provider would give them.
  mock_data "alicloud_zones" {
    defaults = {
      ids = ["ap-southeast-1b", "ap-southeast-1c"]
    }
  }

  mock_data "alicloud_images" {
    defaults = {
      ids = ["ubuntu_24_04_x64_20G_alibase_20250101.vhd"]
    }
  }

  mock_data "alicloud_alidns_domains" {
    defaults = {
      names = ["example.com", "dev.example.com", "other.org"]
    }
  }

  mock_resource "alicloud_instance" {
    defaults = {
      id = "i-t4n0000000000000001"
    }
  }

  mock_resource "alicloud_eip_address" {
    defaults = {
      id         = "eip-t4n0000000000000001"
      ip_address = "47.236.10.20"
    }
  }

  mock_resource "alicloud_image" {
    defaults = {
      id = "m-t4n0000000000000001"
    }
  }

  # Fixed ids: a later plan that kept them updated in place; a replacement would show an unknown id, which
  # fails any condition comparing it (the same under terraform test and tofu test, whose assertions cannot
  # read earlier runs' outputs).
  mock_resource "alicloud_vpc" {
    defaults = {
      id = "vpc-t4n0000000000000001"
    }
  }

  mock_resource "alicloud_ecs_key_pair" {
    defaults = {
      id = "cloudcode"
    }
  }

  mock_resource "alicloud_eip_association" {
    defaults = {
      id = "eip-t4n0000000000000001:i-t4n0000000000000001"
    }
  }
}

mock_provider "cloudcode" {
  # By default the stack has no snapshot yet (a fresh install).
  mock_data "cloudcode_snapshot" {
    defaults = {
      id         = null
      size       = null
      created_at = null
      version    = null
      compatible = null
    }
  }

  mock_resource "cloudcode_stack" {
    defaults = {
      id = "cloudcode-stack-0001"
    }
  }

  mock_resource "cloudcode_snapshot_backup" {
    defaults = {
      id = "cloudcode-backup-0001"
    }
  }
}

run "no_domain_plans_no_records" {
  command = plan

  assert {
    condition     = length(alicloud_alidns_record.this) == 0 && length(output.manual_dns_records) == 0
    error_message = "without a domain there is nothing to resolve"
  }
}

run "domain_plans_two_records_in_the_longest_matching_zone" {
  command = plan

  variables {
    domain = "oc.dev.example.com"
  }

  assert {
    condition     = length(alicloud_alidns_record.this) == 2
    error_message = "two records: the name and auth.<name>"
  }
  assert {
    condition     = alicloud_alidns_record.this["site"].domain_name == "dev.example.com" && alicloud_alidns_record.this["site"].rr == "oc"
    error_message = "the site record sits in dev.example.com (longest suffix) with host record oc"
  }
  assert {
    condition     = alicloud_alidns_record.this["auth"].domain_name == "dev.example.com" && alicloud_alidns_record.this["auth"].rr == "auth.oc"
    error_message = "the login portal's record is auth.oc"
  }
  assert {
    condition     = alltrue([for r in alicloud_alidns_record.this : r.type == "A" && r.ttl == 600])
    error_message = "A records with TTL 600 (the free edition's minimum)"
  }
  assert {
    condition     = cloudcode_stack.this.domain == "oc.dev.example.com"
    error_message = "the stack serves the domain"
  }
  assert {
    condition     = length(output.manual_dns_records) == 0
    error_message = "managed records need no manual step"
  }
}

run "internationalised_domain_plans_its_records_in_ascii" {
  command = plan

  variables {
    domain = "代码.Example.com"
  }

  assert {
    condition     = alicloud_alidns_record.this["site"].domain_name == "example.com" && alicloud_alidns_record.this["site"].rr == "xn--mnq551h"
    error_message = "the site record is the punycode label in example.com"
  }
  assert {
    condition     = alicloud_alidns_record.this["auth"].rr == "auth.xn--mnq551h"
    error_message = "the login portal's record is auth.<punycode label>"
  }
  assert {
    condition     = cloudcode_stack.this.domain == "xn--mnq551h.example.com"
    error_message = "the stack serves the ASCII form"
  }
}

run "apex_domain_uses_the_at_record" {
  command = plan

  variables {
    domain   = "example.com"
    dns_ttl  = 3600
    dns_zone = "example.com"
  }

  assert {
    condition     = alicloud_alidns_record.this["site"].rr == "@" && alicloud_alidns_record.this["auth"].rr == "auth"
    error_message = "the apex is @ and its login portal auth"
  }
  assert {
    condition     = alicloud_alidns_record.this["site"].ttl == 3600 && length(data.alicloud_alidns_domains.this) == 0
    error_message = "dns_zone skips the lookup; dns_ttl is used"
  }
}

run "records_point_at_the_eip" {
  command = apply

  variables {
    domain = "oc.example.com"
  }

  assert {
    condition     = alicloud_alidns_record.this["site"].value == "47.236.10.20" && alicloud_alidns_record.this["auth"].value == "47.236.10.20"
    error_message = "both records resolve to the EIP"
  }
  assert {
    condition     = alicloud_alidns_record.this["site"].domain_name == "example.com" && alicloud_alidns_record.this["site"].rr == "oc"
    error_message = "oc in example.com"
  }
}

run "domain_outside_alibaba_dns_is_listed_for_manual_creation" {
  command = apply

  variables {
    domain     = "oc.example.net"
    manage_dns = false
  }

  assert {
    condition     = length(alicloud_alidns_record.this) == 0 && length(data.alicloud_alidns_domains.this) == 0
    error_message = "no records are managed"
  }
  assert {
    condition = (
      [for r in output.manual_dns_records : r.name] == ["auth.oc.example.net", "oc.example.net"] &&
      alltrue([for r in output.manual_dns_records : r.type == "A" && r.value == "47.236.10.20" && r.ttl == 600])
    )
    error_message = "both names are listed with the EIP"
  }
}

run "apps_on_their_own_names_get_records_and_path_apps_none" {
  command = plan

  variables {
    domain = "oc.dev.example.com"
    apps = {
      api   = { image = "ghcr.io/me/api:1.2", port = 8000 }
      admin = { image = "ghcr.io/me/admin:3", port = 80, host = "/admin" }
    }
    static_sites = {
      www = { dir = "site", host = "web", auth = "public" }
    }
  }

  assert {
    condition     = length(alicloud_alidns_record.this) == 4 && !contains(keys(alicloud_alidns_record.this), "app.admin")
    error_message = "the site, the login portal, the app and the static site on their names; none for the app on a path"
  }
  assert {
    condition     = alicloud_alidns_record.this["app.api"].domain_name == "dev.example.com" && alicloud_alidns_record.this["app.api"].rr == "api.oc"
    error_message = "the app's record is api.oc in the site's DNS domain"
  }
  assert {
    condition     = alicloud_alidns_record.this["app.www"].rr == "web.oc" && alicloud_alidns_record.this["app.www"].type == "A"
    error_message = "the static site's record is its host label"
  }
  assert {
    condition = output.app_urls == {
      api   = "https://api.oc.dev.example.com/"
      admin = "https://oc.dev.example.com/admin/"
      www   = "https://web.oc.dev.example.com/"
    }
    error_message = "each app's and site's URL"
  }
  assert {
    condition     = cloudcode_stack.this.apps["api"].port == 8000 && cloudcode_stack.this.static_sites["www"].auth == "public"
    error_message = "the apps and sites reach the stack"
  }
}

run "app_records_are_listed_for_manual_creation_without_managed_dns" {
  command = apply

  variables {
    domain     = "oc.example.net"
    manage_dns = false
    apps = {
      api = { image = "ghcr.io/me/api:1.2", port = 8000, host = "api.oc.example.net" }
    }
  }

  assert {
    condition     = [for r in output.manual_dns_records : r.name] == ["api.oc.example.net", "auth.oc.example.net", "oc.example.net"]
    error_message = "the app's name is listed with the site's"
  }
}

run "managed_domain_missing_from_the_account_fails_with_advice" {
  command = plan

  variables {
    domain = "oc.example.net"
  }

  expect_failures = [alicloud_alidns_record.this]
}
