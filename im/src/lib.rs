//! cloudcode-im: a long-running bridge between chat platforms (Telegram, DingTalk) and the box's OpenCode
//! server. Design notes: docs/engineering/im.md.
pub mod opencode;
pub mod platform;
pub mod render;
