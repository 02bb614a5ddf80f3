output "url" {
  description = "The site: OpenCode's web UI, behind the login."
  value       = cloudcode_stack.this.url
}

output "auth_url" {
  description = "The Authelia login portal, https://auth.<domain>."
  value       = cloudcode_stack.this.auth_url
}

output "terminal_url" {
  description = "The web terminal (null when terminal_enabled is false)."
  value       = cloudcode_stack.this.terminal_url
}

output "domain" {
  description = "The site's domain: `domain`, or <a-b-c-d>.sslip.io from the EIP."
  value       = cloudcode_stack.this.domain
}

output "app_urls" {
  description = "Each app and static site by name → its https URL (its own name, or a path of the main site)."
  value = {
    for n, h in local.app_hosts : n => startswith(h, "/") ? "https://${cloudcode_stack.this.domain}${h}/" : format(
      "https://%s/", try(provider::cloudcode::ascii_domain(length(regexall("[.]", h)) > 0 ? h : "${h}.${cloudcode_stack.this.domain}"), lower(h))
    )
  }
}

output "public_ip" {
  description = "The EIP: the machine's public address."
  value       = local.public_ip
}

output "eip_allocation_id" {
  description = "The EIP's allocation ID; pass it as eip_allocation_id to a later deploy to keep the address (and the sslip.io domain)."
  value       = local.eip_id
}

output "ssh_command" {
  description = "SSH into the host."
  value       = "ssh -i ${var.private_key_path} root@${local.public_ip}"
}

output "instance_id" {
  description = "The ECS instance."
  value       = alicloud_instance.this.id
}

output "snapshot_id" {
  description = "The snapshot this deployment was restored from; null for a fresh install."
  value       = try(local.restore_from.id, null)
}

output "manual_dns_records" {
  description = "A records to create by hand at your DNS host when the domain is not on Alibaba Cloud DNS (manage_dns = false); empty otherwise."
  value = var.manage_dns ? [] : [
    for k in sort(keys(local.dns_names)) : {
      name  = local.dns_names[k].name
      type  = "A"
      value = local.public_ip
      ttl   = var.dns_ttl
    }
  ]
}

output "stack_id" {
  description = "The cloudcode_stack's id (user@host:port/remote_dir)."
  value       = cloudcode_stack.this.id
}

output "backup_id" {
  description = "The cloudcode_snapshot_backup's id."
  value       = cloudcode_snapshot_backup.this.id
}

output "latest_snapshot_id" {
  description = "The stack's newest snapshot known to the backup resource (null when none)."
  value       = cloudcode_snapshot_backup.this.latest_snapshot_id
}

output "vpc_id" {
  description = "The VPC."
  value       = alicloud_vpc.this.id
}

output "key_pair_id" {
  description = "The ECS key pair."
  value       = alicloud_ecs_key_pair.this.id
}

output "eip_association_id" {
  description = "The EIP association."
  value       = alicloud_eip_association.this.id
}

output "instance_status" {
  description = "The instance's requested state: `Running`, or `Stopped` while suspended (`running = false`)."
  value       = alicloud_instance.this.status
}

output "idle_suspended_at" {
  description = "When the box stopped itself for idleness (RFC 3339), while it is stopped so; null otherwise."
  value       = local.idle_suspended ? local.idle_suspended_at : null
}

output "instance_stopped_mode" {
  description = "`StopCharging` while suspended (CPU and memory not billed); `Not-applicable`, as the API reports it, while running."
  value       = alicloud_instance.this.stopped_mode
}

output "host_running" {
  description = "Whether the stack may connect to the host (false while suspended)."
  value       = cloudcode_stack.this.host_running
}

output "snapshot_on_destroy" {
  description = "Whether destroying the deployment keeps a snapshot of the system disk for the next deploy."
  value       = cloudcode_snapshot_backup.this.snapshot_on_destroy
}

output "host_key" {
  description = "The host's SSH key as recorded on first contact (pin it to detect a replaced host)."
  value       = cloudcode_stack.this.host_key
}

output "monthly_price" {
  description = "The preflight's monthly price of instance and system disk (running, and suspended), before the box was created; null once it exists or without preflight."
  value = length(data.cloudcode_preflight.this) == 0 ? null : {
    running   = data.cloudcode_preflight.this[0].monthly_price
    suspended = data.cloudcode_preflight.this[0].monthly_price_suspended
    currency  = data.cloudcode_preflight.this[0].currency
  }
}
