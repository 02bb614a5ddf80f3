# Default settings: the plan creates every resource of a fresh install with the settings of the design.

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

run "default_plan_creates_a_fresh_install" {
  command = plan

  assert {
    condition     = alicloud_vpc.this.cidr_block == "192.168.0.0/16"
    error_message = "VPC CIDR must be 192.168.0.0/16"
  }
  assert {
    condition     = alicloud_vswitch.this.zone_id == "ap-southeast-1b" && alicloud_vswitch.this.cidr_block == "192.168.1.0/24"
    error_message = "the vswitch must sit in the first zone offering the instance type and cloud_essd"
  }
  assert {
    condition     = data.alicloud_zones.this[0].available_instance_type == "ecs.e-c1m2.large" && data.alicloud_zones.this[0].available_disk_category == "cloud_essd"
    error_message = "zones must be filtered by instance type and cloud_essd"
  }
  assert {
    condition     = data.alicloud_images.ubuntu.name_regex == "^ubuntu_24_04_x64" && data.alicloud_images.ubuntu.owners == "system"
    error_message = "the image must be the system Ubuntu 24.04"
  }

  # Security group: 80 and 443 from anywhere, no 8443 by default, 22 only from ssh_allowed_cidrs.
  assert {
    condition     = toset(keys(alicloud_security_group_rule.public)) == toset(["80", "443"])
    error_message = "public ports must be 80 and 443 only"
  }
  assert {
    condition = alltrue([for r in alicloud_security_group_rule.public :
      r.cidr_ip == "0.0.0.0/0" && r.nic_type == "intranet" && r.type == "ingress" && r.ip_protocol == "tcp" && r.policy == "accept"
    ])
    error_message = "public rules must be ingress tcp accept from 0.0.0.0/0 on the intranet NIC"
  }
  assert {
    condition     = alicloud_security_group_rule.public["443"].port_range == "443/443"
    error_message = "port range of 443"
  }
  assert {
    condition     = length(alicloud_security_group_rule.ssh) == 1 && alicloud_security_group_rule.ssh["203.0.113.7/32"].cidr_ip == "203.0.113.7/32" && alicloud_security_group_rule.ssh["203.0.113.7/32"].port_range == "22/22" && alicloud_security_group_rule.ssh["203.0.113.7/32"].nic_type == "intranet"
    error_message = "SSH must be open only to ssh_allowed_cidrs"
  }

  assert {
    condition     = alicloud_ecs_key_pair.this.public_key == "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@laptop" && alicloud_ecs_key_pair.this.key_pair_name == "cloudcode-key-${substr(sha256("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@laptop"), 0, 8)}"
    error_message = "key pair from ssh_public_key"
  }

  # The instance.
  assert {
    condition     = alicloud_instance.this.instance_type == "ecs.e-c1m2.large"
    error_message = "default instance type"
  }
  assert {
    condition     = alicloud_instance.this.image_id == "ubuntu_24_04_x64_20G_alibase_20250101.vhd"
    error_message = "a fresh install boots the Ubuntu 24.04 image"
  }
  assert {
    condition     = alicloud_instance.this.system_disk_category == "cloud_essd" && alicloud_instance.this.system_disk_size == 60
    error_message = "60 GB cloud_essd system disk"
  }
  assert {
    condition     = alicloud_instance.this.instance_charge_type == "PostPaid" && alicloud_instance.this.internet_max_bandwidth_out == 0
    error_message = "pay-as-you-go, no bandwidth of its own (the EIP is the public address)"
  }
  assert {
    condition     = alicloud_instance.this.status == "Running" && alicloud_instance.this.stopped_mode == "Not-applicable"
    error_message = "running, with the stopped_mode the API reports for a running instance"
  }
  assert {
    condition     = alicloud_ecs_key_pair_attachment.this.key_pair_name == alicloud_ecs_key_pair.this.key_pair_name && alicloud_ecs_key_pair_attachment.this.force == true
    error_message = "the key pair is bound to the instance with a restart"
  }
  assert {
    condition     = length(alicloud_image.restore) == 0 && output.snapshot_id == null
    error_message = "no snapshot: no restore image"
  }

  # The EIP, billed by traffic, bound to the instance.
  assert {
    condition     = length(alicloud_eip_address.this) == 1 && alicloud_eip_address.this[0].internet_charge_type == "PayByTraffic" && alicloud_eip_address.this[0].payment_type == "PayAsYouGo"
    error_message = "a new pay-by-traffic EIP"
  }
  assert {
    condition     = alicloud_eip_association.this.instance_type == "EcsInstance"
    error_message = "the EIP is associated with the instance"
  }

  # No domain: no DNS records; the stack uses the sslip.io fallback.
  assert {
    condition     = length(alicloud_alidns_record.this) == 0 && length(data.alicloud_alidns_domains.this) == 0
    error_message = "no DNS records without a domain"
  }

  # The stack and its backup.
  assert {
    condition     = cloudcode_stack.this.host_running == true && cloudcode_stack.this.remote_teardown == false
    error_message = "host_running follows running; the VM goes with the stack, so no remote teardown"
  }
  assert {
    condition     = cloudcode_stack.this.private_key_path == "~/.ssh/cloudcode_rsa" && cloudcode_stack.this.user == "root"
    error_message = "the stack connects as root with private_key_path"
  }
  assert {
    condition     = cloudcode_stack.this.admin_email == "me@example.com" && cloudcode_stack.this.admin_username == "admin" && cloudcode_stack.this.llm_provider == "openai"
    error_message = "login and agent settings reach the stack"
  }
  assert {
    condition     = cloudcode_stack.this.https_alt_port == null && cloudcode_stack.this.terminal_enabled
    error_message = "no alternate HTTPS port by default; terminal on"
  }
  assert {
    condition     = cloudcode_snapshot_backup.this.stack_name == "cloudcode" && cloudcode_snapshot_backup.this.keep == 1 && cloudcode_snapshot_backup.this.snapshot_on_destroy && cloudcode_snapshot_backup.this.stop_before_snapshot
    error_message = "snapshot on destroy, keeping the newest one"
  }
  assert {
    condition     = length(output.manual_dns_records) == 0
    error_message = "nothing to create by hand"
  }
}

run "alternate_https_port_opens_8443" {
  command = plan

  variables {
    enable_https_alt_port = true
    ssh_allowed_cidrs     = ["203.0.113.7/32", "198.51.100.0/24"]
  }

  assert {
    condition     = toset(keys(alicloud_security_group_rule.public)) == toset(["80", "443", "8443"]) && cloudcode_stack.this.https_alt_port == 8443
    error_message = "8443 must be opened and served"
  }
  assert {
    condition     = toset(keys(alicloud_security_group_rule.ssh)) == toset(["203.0.113.7/32", "198.51.100.0/24"])
    error_message = "one SSH rule per allowed CIDR"
  }
}

run "explicit_zone_skips_the_zone_lookup" {
  command = plan

  variables {
    zone_id       = "ap-southeast-1a"
    instance_type = "ecs.g7.large"
  }

  assert {
    condition     = alicloud_vswitch.this.zone_id == "ap-southeast-1a" && length(data.alicloud_zones.this) == 0
    error_message = "zone_id overrides the lookup"
  }
  assert {
    condition     = alicloud_instance.this.instance_type == "ecs.g7.large"
    error_message = "instance_type reaches the instance"
  }
}

run "existing_eip_is_reused" {
  command = plan

  variables {
    eip_allocation_id = "eip-t4nabcdef0123456789"
    eip_address       = "47.236.10.20"
  }

  assert {
    condition     = length(alicloud_eip_address.this) == 0 && alicloud_eip_association.this.allocation_id == "eip-t4nabcdef0123456789"
    error_message = "no new EIP; the given one is associated"
  }
  assert {
    condition     = cloudcode_stack.this.host == "47.236.10.20" && output.public_ip == "47.236.10.20"
    error_message = "the stack deploys to the reused address"
  }
  assert {
    condition     = output.ssh_command == "ssh -i ~/.ssh/cloudcode_rsa root@47.236.10.20"
    error_message = "ssh command"
  }
}

# Mirrors pass through as given; on ECS the cn preset's apt mirror is the in-VPC one, an explicit one is kept, and
# without mirrors the stack gets none.
run "cn_mirrors_use_the_in_vpc_apt_mirror" {
  command = plan

  variables {
    mirrors = { preset = "cn" }
  }

  assert {
    condition     = cloudcode_stack.this.mirrors.preset == "cn" && cloudcode_stack.this.mirrors.apt == "http://mirrors.cloud.aliyuncs.com"
    error_message = "the cn preset on ECS must use the in-VPC apt mirror"
  }
}

run "an_explicit_apt_mirror_is_kept" {
  command = plan

  variables {
    mirrors = { preset = "cn", apt = "https://apt.example.com" }
  }

  assert {
    condition     = cloudcode_stack.this.mirrors.apt == "https://apt.example.com"
    error_message = "an explicit apt mirror must be passed as given"
  }
}

run "no_mirrors_no_mirror_settings" {
  command = plan

  assert {
    condition     = cloudcode_stack.this.mirrors == null
    error_message = "without mirrors the stack gets none"
  }
}
