# Restore: when the stack has a compatible snapshot, an image is made from it and the instance boots from
# that image (with a disk at least the snapshot's size); with restore = false or no snapshot, a fresh Ubuntu.

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

run "restore_false_installs_fresh_without_looking" {
  command = plan

  variables {
    restore = false
  }

  assert {
    condition     = length(data.cloudcode_snapshot.latest) == 0 && length(alicloud_image.restore) == 0
    error_message = "restore = false neither looks up snapshots nor makes an image"
  }
  assert {
    condition     = alicloud_instance.this.image_id == "ubuntu_24_04_x64_20G_alibase_20250101.vhd"
    error_message = "a fresh Ubuntu"
  }
}

run "compatible_snapshot_becomes_the_instance_image" {
  command = plan

  override_data {
    target = data.cloudcode_snapshot.latest
    values = {
      id         = "s-t4n0123456789abcdef"
      size       = 80
      created_at = "2026-02-22T10:00:00Z"
      version    = "0.1.0"
      compatible = true
    }
  }

  assert {
    condition     = data.cloudcode_snapshot.latest[0].stack_name == "cloudcode" && data.cloudcode_snapshot.latest[0].allow_incompatible == false
    error_message = "the snapshot is looked up by the stack name, incompatible ones refused"
  }
  assert {
    condition     = length(alicloud_image.restore) == 1 && alicloud_image.restore[0].disk_device_mapping[0].snapshot_id == "s-t4n0123456789abcdef"
    error_message = "the restore image is made from the snapshot"
  }
  assert {
    condition     = alicloud_image.restore[0].architecture == "x86_64" && alicloud_image.restore[0].image_name == "cloudcode-restore-s-t4n0123456789abcdef"
    error_message = "restore image settings"
  }
  assert {
    condition     = alicloud_instance.this.system_disk_size == 80
    error_message = "the system disk is at least the snapshot's size"
  }
  assert {
    condition     = output.snapshot_id == "s-t4n0123456789abcdef"
    error_message = "the output names the restored snapshot"
  }
}

run "restored_instance_boots_from_the_restore_image" {
  command = apply

  override_data {
    target = data.cloudcode_snapshot.latest
    values = {
      id         = "s-t4n0123456789abcdef"
      size       = 40
      created_at = "2026-02-22T10:00:00Z"
      version    = "0.1.0"
      compatible = true
    }
  }

  assert {
    condition     = alicloud_instance.this.image_id == "m-t4n0000000000000001" && alicloud_instance.this.image_id == alicloud_image.restore[0].id
    error_message = "the instance's image is the restore image"
  }
  assert {
    condition     = alicloud_instance.this.system_disk_size == 60
    error_message = "a smaller snapshot keeps the configured disk size"
  }
}

run "incompatible_snapshot_restores_only_when_allowed" {
  command = plan

  variables {
    restore_allow_incompatible = true
  }

  override_data {
    target = data.cloudcode_snapshot.latest
    values = {
      id         = "s-t4n0123456789abcdef"
      size       = 60
      created_at = "2026-02-22T10:00:00Z"
      version    = "9.0.0"
      compatible = false
    }
  }

  assert {
    condition     = data.cloudcode_snapshot.latest[0].allow_incompatible == true && length(alicloud_image.restore) == 1
    error_message = "allow_incompatible passes through and the snapshot is restored"
  }
}

run "without_a_snapshot_the_image_goes_and_image_id_stays_ignored" {
  # The snapshot is gone (pruned or deleted): the restore image goes, but the instance keeps its disk.
  command = plan

  assert {
    condition     = length(alicloud_image.restore) == 0 && output.snapshot_id == null
    error_message = "no snapshot, no image"
  }
  assert {
    condition     = alicloud_instance.this.image_id == "m-t4n0000000000000001"
    error_message = "image_id changes are ignored: the system disk is never rebuilt in place"
  }
}
