//! Acceptance harness: builds the provider, lays out an offline plugin dir and drives real terraform.

// The double's DescribeInstances answer is one large `json!` literal.
#![recursion_limit = "256"]
pub mod alicloud_double_fixture;
pub mod apt_mirror;
pub mod authelia;
pub mod cloud_fixture;
pub mod delay_proxy;
pub mod dingtalk_double;
pub mod double_server;
pub mod ecs_double;
pub mod engine;
pub mod forward_proxy;
pub mod im_fixture;
pub mod im_image;
pub mod llm_double;
pub mod metadata_double;
pub mod net;
pub mod opencode_fixture;
pub mod pty;
pub mod registry;
pub mod release;
pub mod sshd;
pub mod stack_fixture;
pub mod telegram_double;
pub mod terraform;
pub mod vm;
pub mod webauthn;
