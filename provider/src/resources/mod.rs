//! Managed resources, one file each.

pub mod snapshot_backup;
pub mod stack;
