# Suspend and resume, the module's own logic: running = false asks for a stopped instance in StopCharging mode
# and tells the stack not to connect; running = true asks for it running again. Mocks never plan a
# provider-forced replacement, so that nothing is replaced is asserted against the real provider
# (tests/tests/cloud_path.rs), not here.

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

run "create" {
  # The mocks "apply" the default configuration, so the following plans start from a real state.
  command = apply

  assert {
    condition     = alicloud_instance.this.status == "Running"
    error_message = "created running"
  }
}

run "suspend_asks_for_a_stopped_instance_and_a_quiet_stack" {
  command = plan

  variables {
    running = false
  }

  assert {
    condition     = alicloud_instance.this.status == "Stopped" && alicloud_instance.this.stopped_mode == "StopCharging"
    error_message = "suspend must plan status = Stopped with StopCharging"
  }
  assert {
    condition     = cloudcode_stack.this.host_running == false
    error_message = "the stack must not connect to a stopped host"
  }
}

run "suspend" {
  command = apply

  variables {
    running = false
  }
}

run "resume_asks_for_a_running_instance" {
  command = plan

  variables {
    running = true
  }
  assert {
    condition     = cloudcode_stack.this.host_running
    error_message = "the stack resumes in place"
  }
}
