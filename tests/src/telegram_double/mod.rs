//! Telegram Bot API contract double: a local HTTP server at `{base}/bot{token}/{method}` that checks what
//! Telegram checks (markup, lengths, buttons, files, callback queries, long-poll conflicts, flood waits) with
//! Telegram's error descriptions, and the driver tests use to play the user and inspect what the bot sent.
//! See docs/engineering/im-doubles.md for the rules, their sources and what is approximated.
//!
//! It runs on its own thread and Tokio runtime, so tests may block without starving it. Dropping the handle
//! stops the server.

mod methods;
pub mod parse;
mod server;
mod state;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

pub use parse::Entity;
pub use state::{
    Button, CallRecord, CallbackAnswer, Counters, Document, Failure, MessageVersion, Photo,
    SentMessage,
};

use server::{lock, Inner, Shared};
use state::{EditFlood, World};

use crate::double_server::DoubleServer;

/// A driver call that cannot be honoured (the double itself never fails a test silently).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("chat {chat_id} has no message {message_id}")]
    NoSuchMessage { chat_id: i64, message_id: i64 },
    #[error("message {message_id} has no button with callback_data {data:?}")]
    NoSuchButton { message_id: i64, data: String },
    #[error("timed out after {0:?} waiting for the chat to match")]
    Timeout(Duration),
}

/// A running double. Point the bridge at [`TelegramDouble::base_url`] with [`TelegramDouble::token`].
pub struct TelegramDouble {
    addr: SocketAddr,
    shared: Shared,
    _server: DoubleServer,
}

fn generate_token() -> (String, i64) {
    let mut rng = rand::rng();
    let bot_id: i64 = rng.random_range(6_000_000_000..8_000_000_000);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let secret: String = (0..35)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    (format!("{bot_id}:AA{}", &secret[2..]), bot_id)
}

impl TelegramDouble {
    /// Starts the double on `bind` (use `127.0.0.1:0` unless a container must reach it). Panics when the
    /// address cannot be bound; see [`TelegramDouble::try_start`].
    pub fn start(bind: SocketAddr) -> TelegramDouble {
        Self::try_start(bind)
            .unwrap_or_else(|e| panic!("telegram double cannot listen on {bind}: {e}"))
    }

    /// Starts it on 127.0.0.1 with an ephemeral port.
    pub fn start_local() -> TelegramDouble {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn try_start(bind: SocketAddr) -> std::io::Result<TelegramDouble> {
        let (token, bot_id) = generate_token();
        let shared: Shared = Arc::new(Inner {
            world: Mutex::new(World::new(token, bot_id, "cloudcode_test_bot".into())),
            updates: tokio::sync::Notify::new(),
        });
        let app = server::router(shared.clone());
        let server = DoubleServer::start("telegram-double", bind, 2, move |listener, stop| {
            server::serve(listener, app, stop)
        })?;
        let addr = server.addr();
        Ok(Self {
            addr,
            shared,
            _server: server,
        })
    }

    /// `http://<addr>` — the Bot API base URL; the bridge calls `{base}/bot{token}/{method}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bot token the double accepts (`<bot id>:<35 characters>`); any other gets 401 Unauthorized.
    pub fn token(&self) -> String {
        lock(&self.shared).token.clone()
    }

    /// The bot's username (without '@').
    pub fn username(&self) -> String {
        lock(&self.shared).username.clone()
    }

    pub fn bot_id(&self) -> i64 {
        lock(&self.shared).bot_id
    }

    /// The user writes `text` in the private chat `chat_id`; returns the update_id of the queued update.
    pub fn user_says(&self, chat_id: i64, from: (i64, &str), text: &str) -> i64 {
        let id = lock(&self.shared).user_says(chat_id, from, text);
        self.shared.updates.notify_waiters();
        id
    }

    /// The user presses the inline button with `callback_data` under the bot's message; returns the
    /// callback_query id the bot must answer.
    pub fn press_button(
        &self,
        chat_id: i64,
        from: (i64, &str),
        message_id: i64,
        callback_data: &str,
    ) -> Result<String, DriverError> {
        let id = lock(&self.shared).press_button(chat_id, from, message_id, callback_data)?;
        self.shared.updates.notify_waiters();
        Ok(id)
    }

    /// The bot's messages in the chat that are not deleted, in sending order, in their current state.
    pub fn messages(&self, chat_id: i64) -> Vec<SentMessage> {
        lock(&self.shared)
            .chats
            .get(&chat_id)
            .map(|c| c.messages.iter().filter(|m| !m.deleted).cloned().collect())
            .unwrap_or_default()
    }

    /// Every message the bot sent in the chat, deleted ones included.
    pub fn all_messages(&self, chat_id: i64) -> Vec<SentMessage> {
        lock(&self.shared)
            .chats
            .get(&chat_id)
            .map(|c| c.messages.clone())
            .unwrap_or_default()
    }

    /// The chat actions ("typing", ...) the bot sent to the chat.
    pub fn chat_actions(&self, chat_id: i64) -> Vec<String> {
        lock(&self.shared)
            .chats
            .get(&chat_id)
            .map(|c| c.actions.clone())
            .unwrap_or_default()
    }

    /// The log of every call, in arrival order (long polls are logged when they answer).
    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.shared).calls.clone()
    }

    /// The calls of one method (case-insensitive).
    pub fn calls_of(&self, method: &str) -> Vec<CallRecord> {
        lock(&self.shared)
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }

    pub fn counters(&self) -> Counters {
        lock(&self.shared).counters
    }

    /// Calls refused because the client came back before an earlier 429's retry_after elapsed.
    pub fn refused_during_hold(&self) -> u64 {
        lock(&self.shared).counters.refused_during_hold
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        lock(&self.shared).callback_answers.clone()
    }

    /// The commands of the last accepted setMyCommands.
    pub fn commands(&self) -> Vec<(String, String)> {
        lock(&self.shared).commands.clone()
    }

    /// True while a getUpdates long poll is waiting (the bridge is listening).
    pub fn poll_pending(&self) -> bool {
        lock(&self.shared).poll_pending
    }

    /// Updates queued and not yet confirmed by an offset.
    pub fn pending_updates(&self) -> usize {
        lock(&self.shared).updates.len()
    }

    /// The next `count` calls of `method` fail with `failure` (before any other check but auth and holds).
    pub fn fail_next(&self, method: &str, count: usize, failure: Failure) {
        let mut world = lock(&self.shared);
        let queue = world.faults.entry(method.to_ascii_lowercase()).or_default();
        queue.extend(std::iter::repeat_n(failure, count));
    }

    /// Every call answers 502 Bad Gateway for `duration`.
    pub fn set_unavailable(&self, duration: Duration) {
        lock(&self.shared).unavailable_until = Some(Instant::now() + duration);
    }

    /// The built-in flood limit: more than `max_per_second` edits of one message within a second get 429
    /// (default 3); None switches it off.
    pub fn set_edit_flood_limit(&self, max_per_second: Option<u32>) {
        lock(&self.shared).edit_flood = max_per_second.map(|m| EditFlood {
            max_per_second: m.max(1),
        });
    }

    /// Polls the chat's messages until `predicate` holds (blocking); returns them.
    pub fn wait_for(
        &self,
        chat_id: i64,
        predicate: impl Fn(&[SentMessage]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<SentMessage>, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages(chat_id);
            if predicate(&messages) {
                return Ok(messages);
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Timeout(timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`TelegramDouble::wait_for`] for async tests.
    pub async fn wait_for_async(
        &self,
        chat_id: i64,
        predicate: impl Fn(&[SentMessage]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<SentMessage>, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages(chat_id);
            if predicate(&messages) {
                return Ok(messages);
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
