# cloudcode on one Alibaba Cloud ECS instance: network, instance, EIP, optional DNS records, the stack deployed
# over SSH, snapshot backup on destroy and restore on create. Providers are configured by the caller.

locals {
  tags = merge(var.tags, { cloudcode = var.name })

  vpc_cidr     = "192.168.0.0/16"
  vswitch_cidr = "192.168.1.0/24"
  disk         = "cloud_essd"

  zone_id = var.zone_id != "" ? var.zone_id : try(data.alicloud_zones.this[0].ids[0], null)

  # Public ports open to everyone; SSH only from ssh_allowed_cidrs.
  public_ports = concat(["80", "443"], var.enable_https_alt_port ? ["8443"] : [])

  reuse_eip  = var.eip_allocation_id != ""
  eip_id     = local.reuse_eip ? var.eip_allocation_id : alicloud_eip_address.this[0].id
  public_ip  = local.reuse_eip ? var.eip_address : alicloud_eip_address.this[0].ip_address
  has_domain = var.domain != ""
  # What Caddy serves and DNS must hold: the ASCII form (lower case, xn-- labels for an internationalised name).
  domain = local.has_domain ? provider::cloudcode::ascii_domain(var.domain) : ""
}

# ---------------------------------------------------------------------------------------------------------
# Zone and image
# ---------------------------------------------------------------------------------------------------------

# The name and zone the box was created with. They never change afterwards (ignore_changes), so the instance's
# precondition can refuse a plan that would rename or move the box: the box, its snapshots and its disk size are
# found by the name (tags, snapshot stack name), and the vswitch's zone is ForceNew (the instance cannot follow it).
resource "terraform_data" "identity" {
  input = {
    name = var.name
    zone = local.zone_id
  }

  lifecycle {
    ignore_changes = [input]
  }
}

data "alicloud_zones" "this" {
  count = var.zone_id == "" ? 1 : 0

  available_instance_type     = var.instance_type
  available_disk_category     = local.disk
  available_resource_creation = "VSwitch"
  instance_charge_type        = "PostPaid"
}

data "alicloud_images" "ubuntu" {
  owners        = "system"
  name_regex    = "^ubuntu_24_04_x64"
  os_type       = "linux"
  architecture  = "x86_64"
  instance_type = var.instance_type
  most_recent   = true
}

# ---------------------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------------------

resource "alicloud_vpc" "this" {
  vpc_name    = "${var.name}-vpc"
  cidr_block  = local.vpc_cidr
  description = "cloudcode ${var.name}"
  tags        = local.tags
}

resource "alicloud_vswitch" "this" {
  vswitch_name = "${var.name}-vsw"
  vpc_id       = alicloud_vpc.this.id
  cidr_block   = local.vswitch_cidr
  zone_id      = local.zone_id
  tags         = local.tags

  lifecycle {
    precondition {
      condition     = local.zone_id != null
      error_message = "No zone in this region offers ${var.instance_type} with ${local.disk} disks for pay-as-you-go instances: choose another instance_type or region, or set zone_id."
    }
  }
}

resource "alicloud_security_group" "this" {
  security_group_name = "${var.name}-sg"
  vpc_id              = alicloud_vpc.this.id
  description         = "cloudcode ${var.name}: HTTP(S) from anywhere, SSH from ssh_allowed_cidrs"
  tags                = local.tags
}

resource "alicloud_security_group_rule" "public" {
  for_each = toset(local.public_ports)

  security_group_id = alicloud_security_group.this.id
  type              = "ingress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "${each.value}/${each.value}"
  priority          = 1
  cidr_ip           = "0.0.0.0/0"
  description       = "cloudcode: port ${each.value} from anywhere"
}

resource "alicloud_security_group_rule" "ssh" {
  for_each = toset(var.ssh_allowed_cidrs)

  security_group_id = alicloud_security_group.this.id
  type              = "ingress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "22/22"
  priority          = 1
  cidr_ip           = each.value
  description       = "cloudcode: SSH from ${each.value}"
}

# The provider updates only a key pair's tags, so a new public key needs a new key pair: the name carries a
# hash of the key (ForceNew). The instance has no key_name (ForceNew there): the attachment below binds the key
# and restarts the instance, which is when Alibaba Cloud writes a key pair into root's authorized_keys — at
# creation and after each key change. An adopted deployment keeps its own pair (key_pair_name).
locals {
  public_key    = trimspace(var.ssh_public_key)
  key_pair_name = var.key_pair_name != "" ? var.key_pair_name : "${var.name}-key-${substr(sha256(local.public_key), 0, 8)}"
}

resource "alicloud_ecs_key_pair" "this" {
  key_pair_name = local.key_pair_name
  public_key    = local.public_key
  tags          = local.tags
}

# ---------------------------------------------------------------------------------------------------------
# Restore: the latest snapshot of this stack becomes the instance's image
# ---------------------------------------------------------------------------------------------------------

data "cloudcode_snapshot" "latest" {
  count = var.restore ? 1 : 0

  stack_name         = var.name
  allow_incompatible = var.restore_allow_incompatible
}

locals {
  snapshot = var.restore ? data.cloudcode_snapshot.latest[0] : null
  # Restore when a snapshot exists and is compatible (or incompatible ones are allowed).
  restore_from = (
    local.snapshot == null ? null :
    try(local.snapshot.id, null) == null ? null :
    (try(local.snapshot.compatible, false) || var.restore_allow_incompatible) ? local.snapshot : null
  )
}

resource "alicloud_image" "restore" {
  count = local.restore_from == null ? 0 : 1

  image_name  = "${var.name}-restore-${local.restore_from.id}"
  description = "cloudcode ${var.name}: system disk restored from snapshot ${local.restore_from.id} (version ${coalesce(local.restore_from.version, "unknown")})"
  # As the system disk's mapping, not `snapshot_id`: the provider neither replaces nor updates an image for a
  # new top-level snapshot_id (only the name would change), while the mapping is ForceNew.
  disk_device_mapping {
    snapshot_id = local.restore_from.id
    disk_type   = "system"
  }
  architecture = "x86_64"
  platform     = "Ubuntu"
  # The instance keeps running from its own disk; the image may go even while the instance exists.
  force = true
  tags  = local.tags
}

# The box as it is now, found by its tag (not by id, so nothing here waits for the instance): its system disk
# can grow but never shrink (ResizeDisk refuses), e.g. after a restore from a snapshot larger than
# system_disk_size, or when system_disk_size is lowered.
data "alicloud_instances" "current" {
  tags = { cloudcode = var.name }
}

locals {
  # Idle auto-suspend: the agent on the box tags the instance cloudcode:idle-suspended = <time> before it stops it.
  # While the box is stopped with that tag, a plan with running = null keeps it stopped (no change); running =
  # true starts it, and the agent clears the tag as it starts.
  idle_suspend      = var.idle_suspend_after != null
  idle_tag          = "cloudcode:idle-suspended"
  idle_suspended_at = try(data.alicloud_instances.current.instances[0].tags[local.idle_tag], null)
  # Only while idle suspend is on: a tag left from before it was turned off means nothing.
  idle_suspended = local.idle_suspend && local.idle_suspended_at != null && try(data.alicloud_instances.current.instances[0].status, "") == "Stopped"
  running        = var.running == null ? !local.idle_suspended : var.running

  current_disk_size = try(max([for i in data.alicloud_instances.current.instances : i.disk_device_mappings[0].size]...), 0)
  # The key pair bound to the box now (the planned one before the box exists).
  current_key_pair = try(data.alicloud_instances.current.instances[0].key_name, local.key_pair_name)
  # The instance type the running box has now (null before the box exists or while it is stopped).
  current_running_type = try([for i in data.alicloud_instances.current.instances : i.instance_type if i.status == "Running"][0], null)
  image_id             = local.restore_from == null ? try(data.alicloud_images.ubuntu.ids[0], null) : alicloud_image.restore[0].id
  system_disk_size = max(
    var.system_disk_size,
    local.restore_from == null ? 0 : coalesce(local.restore_from.size, 0),
    local.current_disk_size,
  )
}

# ---------------------------------------------------------------------------------------------------------
# Instance and public address
# ---------------------------------------------------------------------------------------------------------

# Before the box exists: credentials, a zone with the type in stock, the vCPU quota, the balance and the price
# (cloudcode_preflight). Only for a new box: an existing one keeps its instance whatever the stock is now.
data "cloudcode_preflight" "this" {
  count = var.preflight && length(data.alicloud_instances.current.instances) == 0 ? 1 : 0

  instance_types       = [var.instance_type]
  zone_id              = local.zone_id
  system_disk_category = local.disk
  system_disk_size     = var.system_disk_size
  spot                 = var.spot
}

resource "alicloud_instance" "this" {
  instance_name   = var.name
  host_name       = var.name
  description     = "cloudcode ${var.name}"
  instance_type   = var.instance_type
  image_id        = local.image_id
  vswitch_id      = alicloud_vswitch.this.id
  security_groups = [alicloud_security_group.this.id]

  system_disk_category = local.disk
  system_disk_size     = local.system_disk_size

  instance_charge_type = "PostPaid"
  # Spot (opt-in): billed at the market price, and Alibaba Cloud may reclaim the instance with five minutes'
  # notice; the disk and its data stay, a new deploy starts it again.
  spot_strategy = var.spot ? "SpotAsPriceGo" : "NoSpot"
  # The EIP is the public address; no bandwidth of the instance's own.
  internet_max_bandwidth_out = 0

  # Suspend/resume: a stopped pay-as-you-go instance is not billed for CPU and memory. The API reports
  # stopped_mode "Not-applicable" while the instance runs, so that is what a running box asks for: any other
  # value would show as a change on every plan.
  status       = local.running ? "Running" : "Stopped"
  stopped_mode = local.running ? "Not-applicable" : "StopCharging"

  tags        = local.tags
  volume_tags = local.tags

  lifecycle {
    # A newer Ubuntu image (or the restore image going away) must not rebuild the system disk: for the
    # provider image_id is not ForceNew but ReplaceSystemDisk, which wipes it. key_name: boxes created
    # before the key pair attachment was introduced have it set; it must not replace them. host_name: set at
    # creation; changing it makes the provider restart the instance, sending stopped_mode "Not-applicable",
    # which StopInstance refuses (an adopted box keeps its own).
    # tags[idle_tag]: set and cleared by the box's idle agent, not by this module.
    ignore_changes = [image_id, key_name, host_name, tags["cloudcode:idle-suspended"]]

    precondition {
      condition     = try(data.cloudcode_preflight.this[0].ok, true)
      error_message = "The preflight refused this deploy: ${join("; ", try(data.cloudcode_preflight.this[0].problems, []))}."
    }
    precondition {
      condition     = local.image_id != null
      error_message = "No Ubuntu 24.04 x86_64 system image offers ${var.instance_type} in this region; choose another instance_type."
    }
    precondition {
      condition     = !local.running || local.current_running_type == null || local.current_running_type == var.instance_type
      error_message = "instance_type can change only with running = false (the provider would stop the running box with stopped_mode \"Not-applicable\", which Alibaba Cloud refuses): apply the new instance_type with running = false, then resume with running = true."
    }
    precondition {
      condition     = terraform_data.identity.output.name == var.name
      error_message = "name cannot change on an existing box (it is \"${terraform_data.identity.output.name}\"): the box, its snapshots and its disk size are found by that name; destroy (a snapshot is kept) and deploy under the new name instead."
    }
    precondition {
      condition     = terraform_data.identity.output.zone == local.zone_id
      error_message = "zone_id cannot change on an existing box (it is in ${terraform_data.identity.output.zone}): set zone_id = \"${terraform_data.identity.output.zone}\", or destroy (a snapshot is kept) and deploy in the new zone."
    }
  }
}

resource "alicloud_ecs_key_pair_attachment" "this" {
  key_pair_name = alicloud_ecs_key_pair.this.key_pair_name
  instance_ids  = [alicloud_instance.this.id]
  # Restart the instance so the key reaches root's authorized_keys. A new key pair (name) replaces this.
  force = true

  lifecycle {
    precondition {
      # RebootInstance needs a running instance.
      condition     = local.running || local.current_key_pair == "" || local.current_key_pair == local.key_pair_name
      error_message = "ssh_public_key can change only while the box runs (binding the new key restarts it): apply it with running = true."
    }
  }
}

resource "alicloud_eip_address" "this" {
  count = local.reuse_eip ? 0 : 1

  address_name         = "${var.name}-eip"
  description          = "cloudcode ${var.name}"
  payment_type         = "PayAsYouGo"
  internet_charge_type = "PayByTraffic"
  bandwidth            = tostring(var.eip_bandwidth)
  tags                 = local.tags
}

resource "alicloud_eip_association" "this" {
  allocation_id = local.eip_id
  instance_id   = alicloud_instance.this.id
  instance_type = "EcsInstance"
}

# ---------------------------------------------------------------------------------------------------------
# DNS: the name, auth.<name> and each app's and static site's own name point at the EIP
# ---------------------------------------------------------------------------------------------------------

data "alicloud_alidns_domains" "this" {
  count = local.has_domain && var.manage_dns && var.dns_zone == "" ? 1 : 0
}

locals {
  zone_candidates = [
    for d in try(data.alicloud_alidns_domains.this[0].names, []) : d
    if local.domain == d || endswith(local.domain, ".${d}")
  ]
  # The longest matching DNS domain wins (oc.dev.example.com sits in dev.example.com before example.com).
  dns_zone = var.dns_zone != "" ? provider::cloudcode::ascii_domain(var.dns_zone) : (
    length(local.zone_candidates) == 0 ? null :
    substr(reverse(sort([for d in local.zone_candidates : format("%04d%s", length(d), d)]))[0], 4, -1)
  )
  site_rr = local.dns_zone == null ? null : (local.domain == local.dns_zone ? "@" : trimsuffix(local.domain, ".${local.dns_zone}"))

  # Where each app and static site is served, by name: a path of the main site (`/api`), else a name — a full
  # name under the domain (with a dot), or a DNS label under it (the app's own name by default).
  app_hosts = merge(
    { for n, a in var.apps : n => a.host == null ? n : a.host },
    { for n, s in var.static_sites : n => s.host == null ? n : s.host },
  )
  # The names of those not on a path, under `domain`: each gets its own record.
  app_names = {
    for n, h in local.app_hosts : n => try(provider::cloudcode::ascii_domain(length(regexall("[.]", h)) > 0 ? h : "${h}.${local.domain}"), lower(h))
    if !startswith(h, "/")
  }

  dns_names = local.has_domain ? merge(
    {
      site = { name = local.domain, rr = local.site_rr }
      auth = { name = "auth.${local.domain}", rr = local.site_rr == null ? null : (local.site_rr == "@" ? "auth" : "auth.${local.site_rr}") }
    },
    { for n, name in local.app_names : "app.${n}" => { name = name, rr = local.dns_zone == null ? null : trimsuffix(name, ".${local.dns_zone}") } },
  ) : {}
}

resource "alicloud_alidns_record" "this" {
  for_each = var.manage_dns ? local.dns_names : {}

  domain_name = local.dns_zone
  rr          = each.value.rr
  type        = "A"
  value       = local.public_ip
  ttl         = var.dns_ttl
  remark      = "cloudcode ${var.name}"

  lifecycle {
    precondition {
      condition     = local.dns_zone != null
      error_message = "${var.domain} is not in any Alibaba Cloud DNS domain of this account: set dns_zone, or set manage_dns = false and create the records of the manual_dns_records output at your DNS host."
    }
  }
}

# ---------------------------------------------------------------------------------------------------------
# The stack, deployed over SSH, and its snapshot backup
# ---------------------------------------------------------------------------------------------------------

resource "cloudcode_stack" "this" {
  host             = local.public_ip
  user             = "root"
  private_key_path = var.private_key_path

  domain                  = local.has_domain ? local.domain : null
  fallback_domain_service = var.fallback_domain_service

  admin_username            = var.admin_username
  admin_email               = var.admin_email
  admin_password_wo         = var.admin_password
  admin_password_wo_version = var.admin_password_version

  llm_provider           = var.llm_provider
  llm_base_url           = var.llm_base_url
  llm_model              = var.llm_model
  llm_api_key_wo         = var.llm_api_key
  llm_api_key_wo_version = var.llm_api_key_version
  opencode_version       = var.opencode_version

  opencode_permission = var.opencode_permission

  # The outbound proxy, only with a version (the proxy itself is write-only and never stored).
  proxy_wo         = var.proxy_version == null ? null : var.proxy
  proxy_wo_version = var.proxy_version
  no_proxy         = length(var.no_proxy) > 0 ? var.no_proxy : null
  # On ECS the cn preset's apt mirror is the in-VPC one (no traffic out of the region).
  # (try: both results of a conditional are evaluated, also with var.mirrors null.)
  mirrors = var.mirrors == null ? null : try(merge(var.mirrors, {
    apt = try(coalesce(var.mirrors.apt, var.mirrors.preset == "cn" ? "http://mirrors.cloud.aliyuncs.com" : null), null)
  }), var.mirrors)

  # The chat bridge, only when Telegram or DingTalk is configured (off by default).
  dynamic "im" {
    for_each = var.im_telegram_token_version != null || var.im_dingtalk_client_id != null ? [1] : []
    content {
      telegram_token_wo                 = var.im_telegram_token
      telegram_token_wo_version         = var.im_telegram_token_version
      telegram_api_base                 = var.im_telegram_api_base
      dingtalk_client_id                = var.im_dingtalk_client_id
      dingtalk_client_secret_wo         = var.im_dingtalk_client_secret
      dingtalk_client_secret_wo_version = var.im_dingtalk_client_secret_version
      dingtalk_robot_code               = var.im_dingtalk_robot_code
      proxy_wo                          = var.im_proxy
      proxy_wo_version                  = var.im_proxy_version
    }
  }

  # Your own apps and static sites (null when none, as the provider stores them).
  apps              = length(var.apps) > 0 ? var.apps : null
  static_sites      = length(var.static_sites) > 0 ? var.static_sites : null
  app_secret_env_wo = var.app_secret_env

  terminal_enabled = var.terminal_enabled
  https_alt_port   = var.enable_https_alt_port ? 8443 : null
  timezone         = var.timezone

  # While suspended (by request or for idleness) nothing connects; the stack resumes with the instance.
  host_running = local.running

  idle_suspend_after    = var.idle_suspend_after
  idle_suspend_endpoint = var.idle_suspend_endpoint
  # The VM is destroyed with the stack: no need to tear the containers down first.
  remote_teardown = false

  # SSH must be reachable (address bound, port open) and the names must resolve before the deploy.
  depends_on = [
    alicloud_ecs_key_pair_attachment.this,
    alicloud_eip_association.this,
    alicloud_security_group_rule.ssh,
    alicloud_security_group_rule.public,
    alicloud_alidns_record.this,
  ]
}

# ---------------------------------------------------------------------------------------------------------
# Idle auto-suspend: a RAM role for the instance, allowed to stop and tag this one instance only
# ---------------------------------------------------------------------------------------------------------

resource "alicloud_ram_role" "idle" {
  count = local.idle_suspend ? 1 : 0

  # alicloud 1.240: `name` and `document` (role_name / assume_role_policy_document came later).
  name        = "${var.name}-cloudcode-idle"
  description = "cloudcode ${var.name}: the box's idle agent stops its own instance"
  document = jsonencode({
    Version = "1"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = ["ecs.aliyuncs.com"] }
    }]
  })
  force = true
}

resource "alicloud_ram_policy" "idle" {
  count = local.idle_suspend ? 1 : 0

  policy_name = "${var.name}-cloudcode-idle"
  description = "cloudcode ${var.name}: stop and tag instance ${alicloud_instance.this.id} only"
  # Instance ids are unique across regions and accounts.
  policy_document = jsonencode({
    Version = "1"
    Statement = [{
      Effect   = "Allow"
      Action   = ["ecs:StopInstance", "ecs:TagResources", "ecs:UntagResources"]
      Resource = ["acs:ecs:*:*:instance/${alicloud_instance.this.id}"]
    }]
  })
  force = true
}

# The role on the instance (AttachInstanceRamRole), not the instance's own role_name: that one is ForceNew in the
# provider, so turning idle suspend on or off would replace the box.
resource "alicloud_ram_role_attachment" "idle" {
  count = local.idle_suspend ? 1 : 0

  role_name    = alicloud_ram_role.idle[0].name
  instance_ids = [alicloud_instance.this.id]
}

resource "alicloud_ram_role_policy_attachment" "idle" {
  count = local.idle_suspend ? 1 : 0

  policy_name = alicloud_ram_policy.idle[0].policy_name
  policy_type = "Custom"
  role_name   = alicloud_ram_role.idle[0].name
}

resource "cloudcode_snapshot_backup" "this" {
  instance_id          = alicloud_instance.this.id
  stack_name           = var.name
  keep                 = var.snapshot_keep
  snapshot_on_destroy  = var.snapshot_on_destroy
  stop_before_snapshot = var.snapshot_stop_before

  # Destroyed before the stack and the instance, so the snapshot sees the whole host.
  depends_on = [cloudcode_stack.this]
}
