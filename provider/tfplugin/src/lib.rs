//! Terraform plugin protocol 6 server: handshake, mTLS, value codec and a small resource framework.

pub mod proto;
pub mod value;
