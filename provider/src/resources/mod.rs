//! Managed resources, one file each.

pub mod stack;
