//! Provider-defined functions (`provider::cloudcode::<name>(...)`).

pub mod fallback_domain;
