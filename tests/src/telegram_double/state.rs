//! The double's world: chats and the bot's messages in them, the update queue, callback queries, injected
//! failures, retry-after holds, the edit flood limit and the call log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::parse::Entity;

/// An inline keyboard button as the bot sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub text: String,
    pub callback_data: Option<String>,
    pub url: Option<String>,
}

/// An uploaded photo, checked to be a real PNG or JPEG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub width: u32,
    pub height: u32,
    /// "png" or "jpeg".
    pub format: &'static str,
    pub bytes: Vec<u8>,
    pub file_id: String,
}

/// An uploaded document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub bytes: Vec<u8>,
    pub file_id: String,
}

/// One version of a message (the original, then each accepted edit).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageVersion {
    pub text: String,
    pub entities: Vec<Entity>,
    pub parse_mode: Option<String>,
    pub buttons: Vec<Vec<Button>>,
    pub at: Instant,
}

/// A message the bot sent, in its current state.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub message_id: i64,
    pub chat_id: i64,
    /// Plain text after markup parsing (the caption, for a photo or document).
    pub text: String,
    pub entities: Vec<Entity>,
    /// The parse_mode of the latest version ("HTML", "MarkdownV2"), None for plain text or explicit entities.
    pub parse_mode: Option<String>,
    pub buttons: Vec<Vec<Button>>,
    pub photo: Option<Photo>,
    pub document: Option<Document>,
    pub disable_notification: bool,
    pub link_preview_disabled: bool,
    /// Number of accepted edits (text or markup).
    pub edit_count: u32,
    /// Every version, oldest first; the last equals the current state.
    pub history: Vec<MessageVersion>,
    pub deleted: bool,
    pub date: i64,
}

impl SentMessage {
    /// How many of `ms` began as the bridge's per-turn progress line ("⏳ Working on …", later edited into the
    /// outcome): one per turn started.
    pub fn progress_lines(ms: &[SentMessage]) -> usize {
        ms.iter()
            .filter(|m| {
                m.history
                    .first()
                    .is_some_and(|v| v.text.contains("Working on"))
            })
            .count()
    }

    /// All callback_data values of its inline keyboard.
    pub fn callback_data(&self) -> Vec<String> {
        self.buttons
            .iter()
            .flatten()
            .filter_map(|b| b.callback_data.clone())
            .collect()
    }

    /// True when an entity of this Bot API type (e.g. "pre", "bold") is present.
    pub fn has_entity(&self, kind: &str) -> bool {
        self.entities.iter().any(|e| e.kind == kind)
    }
}

/// A failure a test injects with [`super::TelegramDouble::fail_next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429 "Too Many Requests: retry after N" with `parameters.retry_after`; the (kind, chat) stays refused for N s.
    TooManyRequests { retry_after_s: u64 },
    /// 502 with an nginx HTML page, as Telegram's front end answers when the backend is away.
    BadGateway,
    /// The connection is closed without any answer.
    Drop,
}

/// One call the double answered (or dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The method as the client spelled it.
    pub method: String,
    pub chat_id: Option<i64>,
    /// HTTP status (0 when the connection was dropped).
    pub status: u16,
    pub at: Instant,
    /// The error description, None on success.
    pub description: Option<String>,
    /// Refused because an earlier 429's retry_after had not elapsed.
    pub refused_by_hold: bool,
}

/// Counters of refused calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every 429 answered (injected, flood limit, or hold).
    pub too_many_requests: u64,
    /// 429s answered because the client came back before retry_after elapsed.
    pub refused_during_hold: u64,
    pub bad_gateway: u64,
    pub dropped: u64,
    pub conflicts: u64,
}

/// answerCallbackQuery as the bot sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
}

pub(crate) struct Chat {
    pub first_name: String,
    pub next_message_id: i64,
    pub messages: Vec<SentMessage>,
    pub actions: Vec<String>,
}

pub(crate) struct PendingUpdate {
    pub update_id: i64,
    pub kind: &'static str,
    pub body: Value,
}

pub(crate) struct CallbackQuery {
    pub answered: bool,
}

/// The built-in flood limit on edits of one message (see docs/engineering/im-doubles.md).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EditFlood {
    pub max_per_second: u32,
}

pub(crate) struct World {
    pub token: String,
    pub bot_id: i64,
    pub username: String,
    pub first_name: String,
    pub chats: BTreeMap<i64, Chat>,
    pub updates: VecDeque<PendingUpdate>,
    pub next_update_id: i64,
    pub allowed_updates: Option<Vec<String>>,
    /// Generation of the long poll allowed to answer; a newer getUpdates bumps it.
    pub poll_generation: u64,
    pub poll_pending: bool,
    pub callback_queries: HashMap<String, CallbackQuery>,
    pub callback_answers: Vec<CallbackAnswer>,
    pub next_callback_id: u64,
    pub faults: HashMap<String, VecDeque<Failure>>,
    /// (kind, chat) → refused until.
    pub holds: HashMap<(String, Option<i64>), Instant>,
    pub edit_times: HashMap<(i64, i64), VecDeque<Instant>>,
    /// Per chat: last flood violation and the retry_after then given (for escalation).
    pub flood_strikes: HashMap<i64, (Instant, u64)>,
    pub edit_flood: Option<EditFlood>,
    pub unavailable_until: Option<Instant>,
    pub calls: Vec<CallRecord>,
    pub counters: Counters,
    pub commands: Vec<(String, String)>,
    pub next_file: u64,
}

/// The unit holds are kept per: sending and editing share Telegram's per-chat limits.
pub(crate) fn hold_kind(method_lc: &str) -> String {
    match method_lc {
        "sendmessage"
        | "sendphoto"
        | "senddocument"
        | "editmessagetext"
        | "editmessagereplymarkup" => "messages".into(),
        other => other.into(),
    }
}

impl World {
    pub fn new(token: String, bot_id: i64, username: String) -> Self {
        Self {
            token,
            bot_id,
            username,
            first_name: "cloudcode test bot".into(),
            chats: BTreeMap::new(),
            updates: VecDeque::new(),
            next_update_id: 100_000_001,
            allowed_updates: None,
            poll_generation: 0,
            poll_pending: false,
            callback_queries: HashMap::new(),
            callback_answers: Vec::new(),
            next_callback_id: 4_242_000_000_000_000_001,
            faults: HashMap::new(),
            holds: HashMap::new(),
            edit_times: HashMap::new(),
            flood_strikes: HashMap::new(),
            edit_flood: Some(EditFlood { max_per_second: 3 }),
            unavailable_until: None,
            calls: Vec::new(),
            counters: Counters::default(),
            commands: Vec::new(),
            next_file: 1,
        }
    }

    pub fn unix_now() -> i64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    pub fn bot_user(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": self.first_name,
            "username": self.username,
        })
    }

    pub fn chat_json(&self, chat_id: i64) -> Value {
        let name = self
            .chats
            .get(&chat_id)
            .map(|c| c.first_name.clone())
            .unwrap_or_default();
        json!({"id": chat_id, "first_name": name, "type": "private"})
    }

    pub fn file_id(&mut self, prefix: &str) -> String {
        let n = self.next_file;
        self.next_file += 1;
        format!("{prefix}{n:08}AAMCAgADGQEAAQ")
    }

    fn chat_mut(&mut self, chat_id: i64, from: (i64, &str)) -> &mut Chat {
        self.chats.entry(chat_id).or_insert_with(|| Chat {
            first_name: from.1.to_string(),
            next_message_id: 1,
            messages: Vec::new(),
            actions: Vec::new(),
        })
    }

    pub fn user_says(&mut self, chat_id: i64, from: (i64, &str), text: &str) -> i64 {
        let chat = self.chat_mut(chat_id, from);
        let message_id = chat.next_message_id;
        chat.next_message_id += 1;
        let update_id = self.next_update_id;
        self.next_update_id += 1;
        let mut message = json!({
            "message_id": message_id,
            "from": {"id": from.0, "is_bot": false, "first_name": from.1, "language_code": "en"},
            "chat": {"id": chat_id, "first_name": from.1, "type": "private"},
            "date": Self::unix_now(),
            "text": text,
        });
        let commands = super::parse::detect_bot_command(text);
        if !commands.is_empty() {
            message["entities"] = Value::Array(commands.iter().map(Entity::to_json).collect());
        }
        self.updates.push_back(PendingUpdate {
            update_id,
            kind: "message",
            body: json!({"update_id": update_id, "message": message}),
        });
        update_id
    }

    pub fn press_button(
        &mut self,
        chat_id: i64,
        from: (i64, &str),
        message_id: i64,
        data: &str,
    ) -> Result<String, super::DriverError> {
        let message = self
            .chats
            .get(&chat_id)
            .and_then(|c| {
                c.messages
                    .iter()
                    .find(|m| m.message_id == message_id && !m.deleted)
            })
            .ok_or(super::DriverError::NoSuchMessage {
                chat_id,
                message_id,
            })?;
        if !message.callback_data().iter().any(|d| d == data) {
            return Err(super::DriverError::NoSuchButton {
                message_id,
                data: data.to_string(),
            });
        }
        let message_json = self.message_json(message);
        let id = self.next_callback_id.to_string();
        self.next_callback_id += 1;
        self.callback_queries
            .insert(id.clone(), CallbackQuery { answered: false });
        let update_id = self.next_update_id;
        self.next_update_id += 1;
        self.updates.push_back(PendingUpdate {
            update_id,
            kind: "callback_query",
            body: json!({"update_id": update_id, "callback_query": {
                "id": id,
                "from": {"id": from.0, "is_bot": false, "first_name": from.1, "language_code": "en"},
                "message": message_json,
                "chat_instance": format!("-{}", chat_id.unsigned_abs().wrapping_mul(7919).wrapping_add(13)),
                "data": data,
            }}),
        });
        Ok(id)
    }

    /// The Bot API Message object of a sent message.
    pub fn message_json(&self, m: &SentMessage) -> Value {
        let mut v = json!({
            "message_id": m.message_id,
            "from": self.bot_user(),
            "chat": self.chat_json(m.chat_id),
            "date": m.date,
        });
        let entities: Vec<Value> = m.entities.iter().map(Entity::to_json).collect();
        let (text_key, entities_key) = if m.photo.is_some() || m.document.is_some() {
            ("caption", "caption_entities")
        } else {
            ("text", "entities")
        };
        if !m.text.is_empty() {
            v[text_key] = json!(m.text);
        }
        if !entities.is_empty() {
            v[entities_key] = Value::Array(entities);
        }
        if let Some(p) = &m.photo {
            v["photo"] = json!([{
                "file_id": p.file_id,
                "file_unique_id": format!("AQAD{}", &p.file_id[..8.min(p.file_id.len())]),
                "width": p.width,
                "height": p.height,
                "file_size": p.bytes.len(),
            }]);
        }
        if let Some(d) = &m.document {
            let mut doc = json!({
                "file_id": d.file_id,
                "file_unique_id": format!("AgAD{}", &d.file_id[..8.min(d.file_id.len())]),
                "file_size": d.bytes.len(),
            });
            if let Some(n) = &d.file_name {
                doc["file_name"] = json!(n);
            }
            if let Some(t) = &d.mime_type {
                doc["mime_type"] = json!(t);
            }
            v["document"] = doc;
        }
        if m.edit_count > 0 {
            v["edit_date"] = json!(Self::unix_now());
        }
        if !m.buttons.is_empty() {
            let rows: Vec<Value> = m
                .buttons
                .iter()
                .map(|row| {
                    Value::Array(
                        row.iter()
                            .map(|b| {
                                let mut o = json!({"text": b.text});
                                if let Some(d) = &b.callback_data {
                                    o["callback_data"] = json!(d);
                                }
                                if let Some(u) = &b.url {
                                    o["url"] = json!(u);
                                }
                                o
                            })
                            .collect(),
                    )
                })
                .collect();
            v["reply_markup"] = json!({"inline_keyboard": rows});
        }
        v
    }

    /// The deliverable updates after `offset` handling, filtered by allowed_updates.
    pub fn take_updates(&mut self, offset: Option<i64>, limit: usize) -> Vec<Value> {
        match offset {
            Some(o) if o < 0 => {
                let keep = o.unsigned_abs() as usize;
                while self.updates.len() > keep {
                    self.updates.pop_front();
                }
            }
            Some(o) => {
                while self.updates.front().is_some_and(|u| u.update_id < o) {
                    self.updates.pop_front();
                }
            }
            None => {}
        }
        let allowed = self.allowed_updates.clone();
        // Updates of a kind the bot did not ask for are never delivered.
        self.updates.retain(|u| match &allowed {
            Some(list) if !list.is_empty() => list.iter().any(|k| k == u.kind),
            _ => true,
        });
        self.updates
            .iter()
            .take(limit)
            .map(|u| u.body.clone())
            .collect()
    }

    pub fn record(&mut self, call: CallRecord) {
        if call.status == 429 {
            self.counters.too_many_requests += 1;
            if call.refused_by_hold {
                self.counters.refused_during_hold += 1;
            }
        }
        match call.status {
            502 => self.counters.bad_gateway += 1,
            409 => self.counters.conflicts += 1,
            0 => self.counters.dropped += 1,
            _ => {}
        }
        self.calls.push(call);
    }

    /// Applies the built-in edit flood limit to one more edit of (chat, message); Err(retry_after) refuses it.
    pub fn edit_flood_check(
        &mut self,
        chat_id: i64,
        message_id: i64,
        now: Instant,
    ) -> Result<(), u64> {
        let Some(limit) = self.edit_flood else {
            return Ok(());
        };
        let times = self.edit_times.entry((chat_id, message_id)).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            times.pop_front();
        }
        if times.len() as u32 >= limit.max_per_second {
            // Escalate like Telegram's growing waits: 1 s, then doubling while violations keep coming (cap 8 s).
            let retry = match self.flood_strikes.get(&chat_id) {
                Some((at, last)) if now.duration_since(*at) < Duration::from_secs(60) => {
                    (last * 2).min(8)
                }
                _ => 1,
            };
            self.flood_strikes.insert(chat_id, (now, retry));
            return Err(retry);
        }
        times.push_back(now);
        Ok(())
    }
}
