//! The chat-platform seam: the [`Platform`] trait every adapter implements and the message model it carries.
//! A new platform is one file in this folder implementing the trait.
pub mod dingtalk;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Where a message goes: a Telegram chat id, a DingTalk conversation id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatId(pub String);

/// Who wrote: the platform's stable user id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub String);

/// A sent message, as the platform identifies it for edits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef(pub String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    pub user: UserId,
    /// A display name (first name, nick) for the "online" line.
    pub name: String,
}

/// What arrives from a platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A text message (commands included: `/status`, `/start <payload>`).
    Text {
        chat: ChatId,
        from: Sender,
        text: String,
    },
    /// A button press on a message the bridge sent. `token` is the button's token (≤ 64 bytes); `ack` is what
    /// [`Platform::ack_button`] needs to stop the client's spinner.
    Button {
        chat: ChatId,
        from: Sender,
        message: MessageRef,
        token: String,
        ack: String,
    },
}

/// One piece of an outgoing message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Block {
    /// Plain prose (the adapter escapes it for its markup).
    Text(String),
    /// Prose with light emphasis: shown bold where the platform can.
    Bold(String),
    /// A short code block, shown inline in monospace.
    Code { lang: Option<String>, code: String },
    /// A PNG (rendered code, a diff, an image the agent produced) with a caption.
    Image { png: Vec<u8>, caption: String },
}

/// A button under a message; `token` comes back in [`Inbound::Button`]. At most 64 bytes (Telegram's
/// `callback_data` limit): ids are kept server-side and the token only names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    pub token: String,
}

/// A message to send or an edit to make.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    pub blocks: Vec<Block>,
    /// Rows of buttons under the (last part of the) message.
    pub buttons: Vec<Vec<Button>>,
}

impl Outbound {
    pub fn text(s: impl Into<String>) -> Self {
        Outbound {
            blocks: vec![Block::Text(s.into())],
            buttons: Vec::new(),
        }
    }
}

/// What an adapter reports when a call fails after its own retries.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Cannot go on: a refused token, another poller on the same bot (Telegram 409). Reported, never looped.
    #[error("{0}")]
    Fatal(String),
    /// The platform refused this one message (too long, malformed); the bridge drops or reshapes it.
    #[error("{0}")]
    Refused(String),
    /// Retries exhausted on network errors or server failures; the bridge keeps the message for later.
    #[error("{0}")]
    Unavailable(String),
}

/// How a platform wants output shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The longest text message, in characters (Telegram 4096).
    pub max_text_chars: usize,
    /// Code blocks longer than this many lines are sent as images (DingTalk: 0, every block is an image).
    pub inline_code_max_lines: usize,
}

#[async_trait]
pub trait Platform: Send + Sync + 'static {
    /// "telegram", "dingtalk": the platform's name in logs, the store and the QR link.
    fn name(&self) -> &'static str;
    fn shape(&self) -> Shape;
    /// Receives updates and pushes them into `tx` until `tx` closes; returns an error only when it cannot go on
    /// ([`PlatformError::Fatal`]); transient failures are retried inside with backoff.
    async fn receive(&self, tx: mpsc::Sender<Inbound>) -> Result<(), PlatformError>;
    /// Sends one message; an adapter may split it into several platform messages (returned in order, the last
    /// one carrying the buttons).
    async fn send(&self, chat: &ChatId, msg: &Outbound) -> Result<Vec<MessageRef>, PlatformError>;
    /// Replaces the text and buttons of a sent message (a progress line, an answered approval).
    async fn edit(
        &self,
        chat: &ChatId,
        at: &MessageRef,
        msg: &Outbound,
    ) -> Result<(), PlatformError>;
    /// Acknowledges a button press, with an optional short notice.
    async fn ack_button(&self, ack: &str, notice: Option<&str>) -> Result<(), PlatformError>;
    /// A deep link that starts a chat with the bot carrying `payload` (Telegram `t.me/<bot>?start=`), if the
    /// platform has one.
    async fn deep_link(&self, payload: &str) -> Result<Option<String>, PlatformError>;
}
pub mod telegram;
