//! Provider-defined functions (`provider::cloudcode::<name>(...)`).

pub mod ascii_domain;
pub mod fallback_domain;
