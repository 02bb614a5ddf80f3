provider "cloudcode" {
  region = "cn-hangzhou"
}

# The newest completed snapshot of the stack, or a null id on the first deploy.
data "cloudcode_snapshot" "last" {
  stack_name = "dev"

  # Restoring a snapshot written by another major version of cloudcode must be chosen explicitly.
  allow_incompatible = false
}

output "restore_from" {
  # null: a fresh deploy. Otherwise build the restore image from it (alicloud_image with snapshot_id).
  value = data.cloudcode_snapshot.last.id
}
