//! Data sources, one file each.

pub mod preflight;
pub mod snapshot;
