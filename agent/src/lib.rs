//! cloudcode's agent on the box. Today one job, idle auto-suspend: it watches the box's activity and, once
//! nobody has used it for the configured time, stops its own instance (StopCharging) with the instance's RAM role.
//! Design: docs/engineering/idle-suspend.md.

pub mod cli;
pub mod config;
pub mod decide;
pub mod idle;
pub mod signals;
