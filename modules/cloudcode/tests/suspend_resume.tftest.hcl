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

run "resume" {
  command = apply

  variables {
    running = true
  }
}

# Idle auto-suspend: the agent on the box tagged the instance and stopped it. With running left null the plan keeps
# it stopped in StopCharging mode and the stack quiet — nothing to change; the output says when.
run "an_idle_suspended_box_stays_stopped_while_running_is_null" {
  command = plan

  variables {
    idle_suspend_after = "2h"
  }
  override_data {
    target = data.alicloud_instances.current
    values = {
      instances = [{
        status                     = "Stopped"
        tags                       = { cloudcode = "cloudcode", "cloudcode:idle-suspended" = "2026-12-04T10:00:00Z" }
        id                         = "i-t4n0000000000000001"
        name                       = "cloudcode"
        description                = "cloudcode cloudcode"
        availability_zone          = "ap-southeast-1b"
        region_id                  = "ap-southeast-1"
        creation_time              = "2026-12-01T10:00Z"
        image_id                   = "ubuntu_24_04_x64_20G_alibase_20250101.vhd"
        instance_type              = "ecs.e-c1m2.large"
        instance_charge_type       = "PostPaid"
        internet_charge_type       = "PayByTraffic"
        internet_max_bandwidth_out = 0
        spot_strategy              = "NoSpot"
        key_name                   = ""
        ram_role_name              = "cloudcode-cloudcode-idle"
        resource_group_id          = ""
        security_groups            = ["sg-t4n0000000000000001"]
        vpc_id                     = "vpc-t4n0000000000000001"
        vswitch_id                 = "vsw-t4n0000000000000001"
        private_ip                 = "192.168.1.10"
        public_ip                  = ""
        eip                        = "47.236.10.20"
        disk_device_mappings       = []
      }]
    }
  }

  assert {
    condition     = alicloud_instance.this.status == "Stopped" && alicloud_instance.this.stopped_mode == "StopCharging"
    error_message = "an idle-suspended box must stay stopped while running is null"
  }
  assert {
    condition     = cloudcode_stack.this.host_running == false
    error_message = "the stack must not connect to an idle-suspended box"
  }
  assert {
    condition     = output.idle_suspended_at == "2026-12-04T10:00:00Z"
    error_message = "idle_suspended_at must say when the box stopped itself"
  }
}

# The refused case beside it: running = true resumes the idle-suspended box.
run "running_true_resumes_an_idle_suspended_box" {
  command = plan

  variables {
    idle_suspend_after = "2h"
    running            = true
  }
  override_data {
    target = data.alicloud_instances.current
    values = {
      instances = [{
        status                     = "Stopped"
        tags                       = { cloudcode = "cloudcode", "cloudcode:idle-suspended" = "2026-12-04T10:00:00Z" }
        id                         = "i-t4n0000000000000001"
        name                       = "cloudcode"
        description                = "cloudcode cloudcode"
        availability_zone          = "ap-southeast-1b"
        region_id                  = "ap-southeast-1"
        creation_time              = "2026-12-01T10:00Z"
        image_id                   = "ubuntu_24_04_x64_20G_alibase_20250101.vhd"
        instance_type              = "ecs.e-c1m2.large"
        instance_charge_type       = "PostPaid"
        internet_charge_type       = "PayByTraffic"
        internet_max_bandwidth_out = 0
        spot_strategy              = "NoSpot"
        key_name                   = ""
        ram_role_name              = "cloudcode-cloudcode-idle"
        resource_group_id          = ""
        security_groups            = ["sg-t4n0000000000000001"]
        vpc_id                     = "vpc-t4n0000000000000001"
        vswitch_id                 = "vsw-t4n0000000000000001"
        private_ip                 = "192.168.1.10"
        public_ip                  = ""
        eip                        = "47.236.10.20"
        disk_device_mappings       = []
      }]
    }
  }

  assert {
    condition     = alicloud_instance.this.status == "Running" && cloudcode_stack.this.host_running
    error_message = "running = true must start an idle-suspended box"
  }
}

# A tag left from before idle suspend was turned off means nothing: the box is started like any stopped one.
run "a_stale_tag_without_idle_suspend_does_not_keep_the_box_stopped" {
  command = plan

  override_data {
    target = data.alicloud_instances.current
    values = {
      instances = [{
        status                     = "Stopped"
        tags                       = { cloudcode = "cloudcode", "cloudcode:idle-suspended" = "2026-12-04T10:00:00Z" }
        id                         = "i-t4n0000000000000001"
        name                       = "cloudcode"
        description                = "cloudcode cloudcode"
        availability_zone          = "ap-southeast-1b"
        region_id                  = "ap-southeast-1"
        creation_time              = "2026-12-01T10:00Z"
        image_id                   = "ubuntu_24_04_x64_20G_alibase_20250101.vhd"
        instance_type              = "ecs.e-c1m2.large"
        instance_charge_type       = "PostPaid"
        internet_charge_type       = "PayByTraffic"
        internet_max_bandwidth_out = 0
        spot_strategy              = "NoSpot"
        key_name                   = ""
        ram_role_name              = "cloudcode-cloudcode-idle"
        resource_group_id          = ""
        security_groups            = ["sg-t4n0000000000000001"]
        vpc_id                     = "vpc-t4n0000000000000001"
        vswitch_id                 = "vsw-t4n0000000000000001"
        private_ip                 = "192.168.1.10"
        public_ip                  = ""
        eip                        = "47.236.10.20"
        disk_device_mappings       = []
      }]
    }
  }
  assert {
    condition     = alicloud_instance.this.status == "Running" && output.idle_suspended_at == null
    error_message = "without idle_suspend_after the tag must not keep the box stopped"
  }
}

# Once running again (before its agent cleared the tag) the box stays running: only a stopped, tagged box is
# left stopped.
run "a_resumed_box_with_the_tag_not_yet_cleared_keeps_running" {
  command = plan

  variables {
    idle_suspend_after = "2h"
  }
  override_data {
    target = data.alicloud_instances.current
    values = {
      instances = [{
        status                     = "Running"
        tags                       = { cloudcode = "cloudcode", "cloudcode:idle-suspended" = "2026-12-04T10:00:00Z" }
        id                         = "i-t4n0000000000000001"
        name                       = "cloudcode"
        description                = "cloudcode cloudcode"
        availability_zone          = "ap-southeast-1b"
        region_id                  = "ap-southeast-1"
        creation_time              = "2026-12-01T10:00Z"
        image_id                   = "ubuntu_24_04_x64_20G_alibase_20250101.vhd"
        instance_type              = "ecs.e-c1m2.large"
        instance_charge_type       = "PostPaid"
        internet_charge_type       = "PayByTraffic"
        internet_max_bandwidth_out = 0
        spot_strategy              = "NoSpot"
        key_name                   = ""
        ram_role_name              = "cloudcode-cloudcode-idle"
        resource_group_id          = ""
        security_groups            = ["sg-t4n0000000000000001"]
        vpc_id                     = "vpc-t4n0000000000000001"
        vswitch_id                 = "vsw-t4n0000000000000001"
        private_ip                 = "192.168.1.10"
        public_ip                  = ""
        eip                        = "47.236.10.20"
        disk_device_mappings       = []
      }]
    }
  }

  assert {
    condition     = alicloud_instance.this.status == "Running" && output.idle_suspended_at == null
    error_message = "a running box must not be stopped again for an old idle tag"
  }
}

# The role the agent runs with may stop and tag this instance and nothing else; without idle_suspend_after there
# is no role at all.
run "idle_suspend_gives_the_instance_a_role_limited_to_itself" {
  command = apply

  variables {
    idle_suspend_after = "2h"
  }

  assert {
    condition     = alicloud_ram_role_attachment.idle[0].role_name == alicloud_ram_role.idle[0].name && alicloud_ram_role_attachment.idle[0].instance_ids == toset([alicloud_instance.this.id]) && cloudcode_stack.this.idle_suspend_after == "2h"
    error_message = "the instance must carry the idle role and the stack the limit"
  }
  assert {
    condition     = jsondecode(alicloud_ram_policy.idle[0].policy_document).Statement[0].Resource == ["acs:ecs:*:*:instance/${alicloud_instance.this.id}"]
    error_message = "the policy must name this instance only"
  }
  assert {
    condition     = toset(jsondecode(alicloud_ram_policy.idle[0].policy_document).Statement[0].Action) == toset(["ecs:StopInstance", "ecs:TagResources", "ecs:UntagResources"])
    error_message = "the policy must allow stopping and tagging only"
  }
  assert {
    condition     = contains(jsondecode(alicloud_ram_role.idle[0].document).Statement[0].Principal.Service, "ecs.aliyuncs.com")
    error_message = "the role must be assumable by ECS only"
  }
}

run "without_idle_suspend_there_is_no_role" {
  command = plan

  assert {
    condition     = length(alicloud_ram_role.idle) == 0 && length(alicloud_ram_policy.idle) == 0 && length(alicloud_ram_role_attachment.idle) == 0 && cloudcode_stack.this.idle_suspend_after == null
    error_message = "no role and no agent without idle_suspend_after"
  }
}
