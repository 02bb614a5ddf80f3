//! cloudcode-im: a long-running bridge between chat platforms (Telegram, DingTalk) and the box's OpenCode
//! server. Design notes: docs/engineering/im.md.
pub mod binding;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod format;
pub mod opencode;
pub mod platform;
pub mod render;
pub mod store;
