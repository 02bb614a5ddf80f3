//! Acceptance harness: builds the provider, lays out an offline plugin dir and drives real terraform.
pub mod alicloud_stub;
pub mod ecs_double;
pub mod sshd;
pub mod terraform;
pub mod vm;
pub mod delay_proxy;
pub mod stack_fixture;
