# Credentials from the environment (ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET).
provider "cloudcode" {
  region = "cn-hangzhou"
}

variable "instance_id" {
  type        = string
  description = "The ECS instance the stack runs on, e.g. alicloud_instance.box.id."
  default     = "i-bp1g6zv0ce8oghu7kabc"
}

# Destroying this (it depends on the instance, so Terraform destroys it first) stops the instance, snapshots
# its system disk tagged cloudcode:stack = "dev", waits until the snapshot is complete, and keeps only the
# newest snapshot of the stack.
resource "cloudcode_snapshot_backup" "box" {
  instance_id = var.instance_id
  stack_name  = "dev"

  keep                 = 1
  snapshot_on_destroy  = true
  stop_before_snapshot = true
}
