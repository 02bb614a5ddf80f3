//! cloudcode's agent on the box: idle auto-suspend (design: docs/engineering/idle-suspend.md).

pub mod cli;
pub mod config;
pub mod decide;
pub mod idle;
pub mod signals;
