# The preflight before a new box (cloudcode_preflight, its answer overridden here): a refusal stops the plan at the
# instance with the sentence it gave; a pass shows the monthly price.

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

run "a_refused_preflight_stops_the_plan_before_anything_is_created" {
  command = plan

  variables {
    preflight = true
  }

  override_data {
    target = data.cloudcode_preflight.this
    values = {
      ok       = false
      problems = ["quota: the account's pay-as-you-go vCPU quota in cn-hangzhou is 8 with 8 in use, and the box needs 2 more"]
    }
  }

  expect_failures = [alicloud_instance.this]
}

run "a_passing_preflight_shows_the_monthly_price" {
  command = plan

  variables {
    preflight = true
  }

  override_data {
    target = data.cloudcode_preflight.this
    values = {
      ok                      = true
      problems                = []
      monthly_price           = 124.96
      monthly_price_suspended = 40
      currency                = "CNY"
    }
  }

  assert {
    condition     = length(data.cloudcode_preflight.this) == 1
    error_message = "a new box is checked"
  }
  assert {
    condition     = output.monthly_price.running == 124.96 && output.monthly_price.suspended == 40 && output.monthly_price.currency == "CNY"
    error_message = "the price the preflight found"
  }
}
