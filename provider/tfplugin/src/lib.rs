//! Terraform plugin protocol 6 server: handshake, mTLS, value codec and a small resource framework.

pub mod framework;
pub mod handshake;
pub mod logging;
pub mod proto;
pub mod server;
pub mod tls;
pub mod transport;
pub mod value;

pub use server::{serve, serve_service, ServeError};
