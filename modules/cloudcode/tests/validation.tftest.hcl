# Invalid inputs fail at plan time with their variable's validation message, before anything is created.

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

run "name_with_upper_case_is_refused" {
  command = plan
  variables {
    name = "Cloud_Code"
  }
  expect_failures = [var.name]
}

run "instance_type_without_ecs_prefix_is_refused" {
  command = plan
  variables {
    instance_type = "e-c1m2.large"
  }
  expect_failures = [var.instance_type]
}

run "tiny_system_disk_is_refused" {
  command = plan
  variables {
    system_disk_size = 10
  }
  expect_failures = [var.system_disk_size]
}

run "ed25519_public_key_is_refused" {
  command = plan
  variables {
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE me@laptop"
  }
  expect_failures = [var.ssh_public_key]
}

run "ssh_cidr_that_is_no_cidr_is_refused" {
  command = plan
  variables {
    ssh_allowed_cidrs = ["203.0.113.7"]
  }
  expect_failures = [var.ssh_allowed_cidrs]
}

run "no_ssh_cidr_is_refused" {
  command = plan
  variables {
    ssh_allowed_cidrs = []
  }
  expect_failures = [var.ssh_allowed_cidrs]
}

run "domain_with_a_space_is_refused" {
  command = plan
  variables {
    domain = "oc example.com"
  }
  expect_failures = [var.domain]
}

run "ip_address_as_domain_is_refused" {
  command = plan
  variables {
    domain = "47.236.10.20"
  }
  expect_failures = [var.domain]
}

run "dns_ttl_below_the_free_edition_minimum_is_refused" {
  command = plan
  variables {
    dns_ttl = 60
  }
  expect_failures = [var.dns_ttl]
}

run "short_password_is_refused" {
  command = plan
  variables {
    admin_password = "hunter2"
  }
  expect_failures = [var.admin_password]
}

run "bad_admin_email_is_refused" {
  command = plan
  variables {
    admin_email = "me-at-example.com"
  }
  expect_failures = [var.admin_email]
}

run "unknown_llm_provider_is_refused" {
  command = plan
  variables {
    llm_provider = "openaix"
  }
  expect_failures = [var.llm_provider]
}

run "plain_http_llm_base_url_is_refused" {
  command = plan
  variables {
    llm_base_url = "http://llm.example.com/v1"
  }
  expect_failures = [var.llm_base_url]
}

run "eip_id_without_its_address_is_refused" {
  command = plan
  variables {
    eip_allocation_id = "eip-t4nabcdef0123456789"
  }
  expect_failures = [var.eip_address]
}

run "malformed_eip_id_is_refused" {
  command = plan
  variables {
    eip_allocation_id = "t4nabcdef"
    eip_address       = "47.236.10.20"
  }
  expect_failures = [var.eip_allocation_id]
}

run "dns_zone_not_containing_the_domain_is_refused" {
  command = plan
  variables {
    domain   = "oc.example.com"
    dns_zone = "example.org"
  }
  expect_failures = [var.dns_zone]
}

run "zero_snapshots_to_keep_is_refused" {
  command = plan
  variables {
    snapshot_keep = 0
  }
  expect_failures = [var.snapshot_keep]
}

run "bad_zone_id_is_refused" {
  command = plan
  variables {
    zone_id = "Singapore B"
  }
  expect_failures = [var.zone_id]
}

run "unknown_fallback_domain_service_is_refused" {
  command = plan
  variables {
    fallback_domain_service = "xip.io"
  }
  expect_failures = [var.fallback_domain_service]
}

run "app_with_an_unknown_auth_is_refused" {
  command = plan
  variables {
    apps = {
      api = { image = "ghcr.io/me/api:1.2", port = 8000, auth = "none" }
    }
  }
  expect_failures = [var.apps]
}
