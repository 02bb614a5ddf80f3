//! The Telegram adapter: Bot API long polling (no inbound port), HTML built by us with every user string escaped,
//! a plain-text fallback when Telegram still cannot parse it, 4096-character splitting that keeps code blocks
//! closed, photos for images, `retry_after` honoured, edits throttled, network errors retried with backoff.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::multipart;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{
    Block, Button, ChatId, Inbound, MessageRef, Outbound, Platform, PlatformError, Sender, Shape,
    UserId,
};
use crate::format;

/// Telegram's limit on a message's text after entity parsing.
pub const MAX_TEXT: usize = 4096;
/// Captions of photos.
const MAX_CAPTION: usize = 1024;
/// The long-poll timeout asked of getUpdates; the HTTP timeout is longer.
const POLL_SECS: u64 = 25;
/// Edits of one message at most this often (Telegram answers 429 to faster edits).
const EDIT_INTERVAL: Duration = Duration::from_millis(1100);
/// Network errors and 5xx: this many attempts with backoff (1 s doubling to 30 s: about 3 minutes) per call.
const ATTEMPTS: u32 = 10;

pub struct TelegramConfig {
    pub token: String,
    /// `https://api.telegram.org`, a self-hosted Bot API server, or a test double.
    pub api_base: String,
    /// `http://`, `https://` or `socks5://` proxy for all Bot API traffic.
    pub proxy: Option<String>,
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

pub struct Telegram {
    http: reqwest::Client,
    base: String,
    username: tokio::sync::OnceCell<String>,
    last_edit: Mutex<HashMap<(String, String), Instant>>,
    /// Chats Telegram asked us to leave alone until an instant (429 `retry_after` holds every call for that
    /// chat — sends and edits alike — not just the refused one). The empty key holds calls without a chat.
    holds: Mutex<HashMap<String, Instant>>,
    /// One call at a time per chat: a call in flight when Telegram imposes a hold would otherwise hit it, and
    /// the chat's messages keep their order.
    chat_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How a Bot API call failed.
#[derive(Debug)]
enum CallError {
    /// 400: the request itself is wrong (description from Telegram).
    BadRequest(String),
    Fatal(String),
    Unavailable(String),
}

impl From<CallError> for PlatformError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::BadRequest(d) => PlatformError::Refused(d),
            CallError::Fatal(d) => PlatformError::Fatal(d),
            CallError::Unavailable(d) => PlatformError::Unavailable(d),
        }
    }
}

enum Body {
    Json(Value),
    Photo {
        fields: Vec<(String, String)>,
        png: Vec<u8>,
    },
}

impl Telegram {
    pub fn new(cfg: TelegramConfig) -> Result<Self, PlatformError> {
        let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        if let Some(p) = &cfg.proxy {
            let proxy = reqwest::Proxy::all(p).map_err(|_| {
                PlatformError::Fatal(
                    "the IM proxy is not a valid http(s):// or socks5:// URL".into(),
                )
            })?;
            b = b.proxy(proxy);
        }
        let http = b
            .build()
            .map_err(|e| PlatformError::Fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Telegram {
            http,
            base: format!("{}/bot{}", cfg.api_base.trim_end_matches('/'), cfg.token),
            username: tokio::sync::OnceCell::new(),
            last_edit: Mutex::new(HashMap::new()),
            holds: Mutex::new(HashMap::new()),
            chat_locks: Mutex::new(HashMap::new()),
        })
    }

    /// One Bot API call with Telegram's failure handling: 429 waits `retry_after`, network errors and 5xx back
    /// off, 401/404 and 409 are fatal, other 4xx are the request's fault. The token never appears in errors.
    async fn call(
        &self,
        method: &str,
        body: Body,
        http_timeout: Duration,
    ) -> Result<Value, CallError> {
        let chat = match &body {
            Body::Json(v) => v
                .get("chat_id")
                .map(|c| c.to_string().trim_matches('"').to_string()),
            Body::Photo { fields, .. } => fields
                .iter()
                .find(|(k, _)| k == "chat_id")
                .map(|(_, v)| v.clone()),
        }
        .unwrap_or_default();
        let lock = (!chat.is_empty()).then(|| {
            self.chat_locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(chat.clone())
                .or_default()
                .clone()
        });
        let _turn = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let mut backoff = Duration::from_secs(1);
        let mut failures = 0;
        loop {
            let hold = self
                .holds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&chat)
                .copied();
            if let Some(until) = hold.filter(|u| *u > Instant::now()) {
                tokio::time::sleep_until(until.into()).await;
            }
            let rb = self
                .http
                .post(format!("{}/{method}", self.base))
                .timeout(http_timeout);
            let rb = match &body {
                Body::Json(v) => rb.json(v),
                Body::Photo { fields, png } => {
                    let mut form = multipart::Form::new();
                    for (k, v) in fields {
                        form = form.text(k.clone(), v.clone());
                    }
                    let part = multipart::Part::bytes(png.clone())
                        .file_name("image.png")
                        .mime_str("image/png")
                        .map_err(|e| CallError::Fatal(e.to_string()))?;
                    rb.multipart(form.part("photo", part))
                }
            };
            let outcome: Result<(), String> = match rb.send().await {
                Err(e) => Err(format!("Telegram cannot be reached ({})", strip_url(&e))),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let desc = v["description"].as_str().unwrap_or("").to_string();
                    match status {
                        200 if v["ok"] == true => return Ok(v["result"].clone()),
                        429 => {
                            let after = v["parameters"]["retry_after"].as_u64().unwrap_or(1).clamp(1, 600);
                            tracing::info!(method, retry_after = after, "Telegram asked to slow down");
                            let until = Instant::now() + Duration::from_secs(after);
                            self.holds.lock().unwrap_or_else(|p| p.into_inner()).insert(chat.clone(), until);
                            continue;
                        }
                        401 | 404 => {
                            return Err(CallError::Fatal(format!(
                                "Telegram refused the bot token ({status} {desc}): check the token from @BotFather"
                            )))
                        }
                        409 => {
                            return Err(CallError::Fatal(format!(
                                "Telegram reports another poller or a webhook on this bot token ({desc}): only one \
                                 cloudcode-im may use a bot token"
                            )))
                        }
                        400..=499 => return Err(CallError::BadRequest(desc)),
                        _ => Err(format!("Telegram answered {status} {}", desc.chars().take(200).collect::<String>())),
                    }
                }
            };
            let why = outcome.unwrap_err();
            failures += 1;
            if failures >= ATTEMPTS {
                return Err(CallError::Unavailable(why));
            }
            tracing::warn!(
                method,
                attempt = failures,
                "{why}; retrying in {:?}",
                backoff
            );
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    async fn json(&self, method: &str, body: Value) -> Result<Value, CallError> {
        self.call(method, Body::Json(body), Duration::from_secs(30))
            .await
    }

    /// Sends text as HTML; when Telegram cannot parse it after all, the same words go as plain text.
    async fn send_text(
        &self,
        chat: &ChatId,
        html: &str,
        plain: &str,
        markup: Option<&Value>,
    ) -> Result<String, CallError> {
        let mut body = json!({ "chat_id": chat.0, "text": html, "parse_mode": "HTML",
                               "link_preview_options": { "is_disabled": true } });
        if let Some(m) = markup {
            body["reply_markup"] = m.clone();
        }
        let sent = match self.json("sendMessage", body.clone()).await {
            Err(CallError::BadRequest(d)) if d.contains("can't parse entities") => {
                tracing::warn!("Telegram could not parse our HTML ({d}); sending plain text");
                body["text"] = Value::String(plain.to_string());
                body.as_object_mut().map(|o| o.remove("parse_mode"));
                self.json("sendMessage", body).await?
            }
            other => other?,
        };
        Ok(message_id(&sent))
    }

    async fn throttle_edit(&self, chat: &ChatId, at: &MessageRef) {
        let key = (chat.0.clone(), at.0.clone());
        let wait = {
            let mut m = self.last_edit.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let next = m
                .get(&key)
                .map(|t| *t + EDIT_INTERVAL)
                .unwrap_or(now)
                .max(now);
            m.insert(key, next);
            if m.len() > 10_000 {
                m.retain(|_, t| *t + Duration::from_secs(60) > now);
            }
            next - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    d + Duration::from_millis(rand::rng().random_range(0..250))
}

/// reqwest errors name the URL, which holds the token: keep only the kind of failure.
fn strip_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    kind.to_string()
}

fn message_id(v: &Value) -> String {
    v["message_id"]
        .as_i64()
        .map(|i| i.to_string())
        .unwrap_or_default()
}

/// Escapes text for Telegram's HTML: only `<`, `>` and `&` (and `"` in attributes) need it.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

/// Prose to HTML: `inline code` and **bold** become tags (only when closed), everything else is escaped.
fn prose_html(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        out.push_str(&bold_html(&rest[..open]));
        out.push_str(&format!(
            "<code>{}</code>",
            escape(&rest[open + 1..open + 1 + len])
        ));
        rest = &rest[open + 2 + len..];
    }
    out.push_str(&bold_html(rest));
    out
}

fn bold_html(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find("**") {
        let Some(len) = rest[open + 2..].find("**") else {
            break;
        };
        out.push_str(&escape(&rest[..open]));
        out.push_str(&format!(
            "<b>{}</b>",
            escape(&rest[open + 2..open + 2 + len])
        ));
        rest = &rest[open + 4 + len..];
    }
    out.push_str(&escape(rest));
    out
}

/// A message piece ready to send: text (HTML and its plain twin) or a photo.
#[derive(Debug, PartialEq)]
enum Piece {
    Text { html: String, plain: String },
    Photo { png: Vec<u8>, caption: String },
}

/// Lays blocks out as Telegram messages: consecutive text and inline code share a message while it stays under
/// the limit; a long code block becomes several closed `<pre>` blocks; images are photos.
fn pieces(msg: &Outbound, max: usize) -> Vec<Piece> {
    let mut out = Vec::new();
    let (mut html, mut plain) = (String::new(), String::new());
    let flush = |html: &mut String, plain: &mut String, out: &mut Vec<Piece>| {
        if !plain.trim().is_empty() {
            out.push(Piece::Text {
                html: std::mem::take(html).trim().to_string(),
                plain: std::mem::take(plain).trim().to_string(),
            });
        }
        html.clear();
        plain.clear();
    };
    let push =
        |h: String, p: String, html: &mut String, plain: &mut String, out: &mut Vec<Piece>| {
            if plain.chars().count() + p.chars().count() + 2 > max {
                flush(html, plain, out);
            }
            if !plain.is_empty() {
                html.push_str("\n\n");
                plain.push_str("\n\n");
            }
            html.push_str(&h);
            plain.push_str(&p);
        };
    for b in &msg.blocks {
        match b {
            Block::Text(t) | Block::Bold(t) => {
                for part in format::split_prose(t, max) {
                    let h = if matches!(b, Block::Bold(_)) {
                        format!("<b>{}</b>", escape(&part))
                    } else {
                        prose_html(&part)
                    };
                    push(h, part, &mut html, &mut plain, &mut out);
                }
            }
            Block::Code { lang, code } => {
                for part in format::split_code(code, max - 16) {
                    let h = match lang {
                        Some(l)
                            if l.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(c)) =>
                        {
                            format!(
                                "<pre><code class=\"language-{}\">{}</code></pre>",
                                escape(l),
                                escape(&part)
                            )
                        }
                        _ => format!("<pre>{}</pre>", escape(&part)),
                    };
                    push(h, part, &mut html, &mut plain, &mut out);
                }
            }
            Block::Image { png, caption } => {
                flush(&mut html, &mut plain, &mut out);
                out.push(Piece::Photo {
                    png: png.clone(),
                    caption: caption.chars().take(MAX_CAPTION).collect(),
                });
            }
        }
    }
    flush(&mut html, &mut plain, &mut out);
    out
}

fn keyboard(rows: &[Vec<Button>]) -> Option<Value> {
    if rows.is_empty() {
        return None;
    }
    let rows: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|b| json!({ "text": b.label, "callback_data": b.token }))
                .collect()
        })
        .collect();
    Some(json!({ "inline_keyboard": rows }))
}

fn sender(from: &Value) -> Sender {
    let name = from["username"]
        .as_str()
        .map(|u| format!("@{u}"))
        .or_else(|| from["first_name"].as_str().map(str::to_string))
        .unwrap_or_else(|| "someone".into());
    Sender {
        user: UserId(
            from["id"]
                .as_i64()
                .map(|i| i.to_string())
                .unwrap_or_default(),
        ),
        name,
    }
}

/// One update as the bridge sees it (None for kinds it ignores: edits, channel posts, stickers…).
fn inbound(u: &Value) -> Option<Inbound> {
    if let Some(m) = u.get("message") {
        let text = m["text"].as_str()?;
        return Some(Inbound::Text {
            chat: ChatId(m["chat"]["id"].as_i64()?.to_string()),
            from: sender(&m["from"]),
            text: text.to_string(),
        });
    }
    if let Some(q) = u.get("callback_query") {
        let m = &q["message"];
        return Some(Inbound::Button {
            chat: ChatId(m["chat"]["id"].as_i64()?.to_string()),
            from: sender(&q["from"]),
            message: MessageRef(message_id(m)),
            token: q["data"].as_str().unwrap_or_default().to_string(),
            ack: q["id"].as_str()?.to_string(),
        });
    }
    None
}

#[async_trait]
impl Platform for Telegram {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn shape(&self) -> Shape {
        Shape {
            max_text_chars: MAX_TEXT,
            inline_code_max_lines: 10,
        }
    }

    async fn receive(&self, tx: mpsc::Sender<Inbound>) -> Result<(), PlatformError> {
        // getUpdates is refused while a webhook is set; keep pending updates (they are the user's messages).
        self.json("deleteWebhook", json!({ "drop_pending_updates": false }))
            .await?;
        let commands = json!({ "commands": crate::bridge::COMMANDS.iter()
            .map(|(c, d)| json!({ "command": c, "description": d })).collect::<Vec<_>>() });
        if let Err(e) = self.json("setMyCommands", commands).await {
            tracing::warn!("the command menu was not set: {e:?}");
        }
        let mut offset: i64 = 0;
        loop {
            let body = json!({ "offset": offset, "timeout": POLL_SECS, "allowed_updates": ["message", "callback_query"] });
            let updates = match self
                .call(
                    "getUpdates",
                    Body::Json(body),
                    Duration::from_secs(POLL_SECS + 15),
                )
                .await
            {
                Ok(u) => u,
                Err(CallError::Unavailable(why)) => {
                    // Retries exhausted: keep polling after a pause; the bridge must outlive any outage.
                    tracing::warn!("getUpdates keeps failing ({why}); polling again in 30 s");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for u in updates.as_array().into_iter().flatten() {
                if let Some(id) = u["update_id"].as_i64() {
                    offset = offset.max(id + 1);
                }
                if let Some(ev) = inbound(u) {
                    if tx.send(ev).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn send(&self, chat: &ChatId, msg: &Outbound) -> Result<Vec<MessageRef>, PlatformError> {
        let pieces = pieces(msg, MAX_TEXT);
        let markup = keyboard(&msg.buttons);
        let last = pieces.len().saturating_sub(1);
        let mut refs = Vec::new();
        for (i, p) in pieces.into_iter().enumerate() {
            let m = if i == last { markup.as_ref() } else { None };
            let id = match p {
                Piece::Text { html, plain } => self.send_text(chat, &html, &plain, m).await?,
                Piece::Photo { png, caption } => {
                    let mut fields = vec![
                        ("chat_id".to_string(), chat.0.clone()),
                        ("caption".to_string(), caption),
                    ];
                    if let Some(m) = m {
                        fields.push(("reply_markup".into(), m.to_string()));
                    }
                    let sent = self
                        .call(
                            "sendPhoto",
                            Body::Photo { fields, png },
                            Duration::from_secs(60),
                        )
                        .await?;
                    message_id(&sent)
                }
            };
            refs.push(MessageRef(id));
        }
        Ok(refs)
    }

    async fn edit(
        &self,
        chat: &ChatId,
        at: &MessageRef,
        msg: &Outbound,
    ) -> Result<(), PlatformError> {
        self.throttle_edit(chat, at).await;
        let (html, plain) = match pieces(msg, MAX_TEXT).into_iter().next() {
            Some(Piece::Text { html, plain }) => (html, plain),
            _ => {
                return Err(PlatformError::Refused(
                    "only a text message can be edited".into(),
                ))
            }
        };
        let mut body = json!({ "chat_id": chat.0, "message_id": at.0.parse::<i64>().unwrap_or(0), "text": html,
                               "parse_mode": "HTML", "link_preview_options": { "is_disabled": true },
                               "reply_markup": keyboard(&msg.buttons).unwrap_or(json!({ "inline_keyboard": [] })) });
        match self.json("editMessageText", body.clone()).await {
            Ok(_) => Ok(()),
            Err(CallError::BadRequest(d)) if d.contains("message is not modified") => Ok(()),
            Err(CallError::BadRequest(d)) if d.contains("can't parse entities") => {
                body["text"] = Value::String(plain);
                body.as_object_mut().map(|o| o.remove("parse_mode"));
                self.json("editMessageText", body)
                    .await
                    .map(|_| ())
                    .map_err(Into::into)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn ack_button(&self, ack: &str, notice: Option<&str>) -> Result<(), PlatformError> {
        let mut body = json!({ "callback_query_id": ack });
        if let Some(n) = notice {
            body["text"] = Value::String(n.chars().take(200).collect());
        }
        match self.json("answerCallbackQuery", body).await {
            // A press older than Telegram's window cannot be answered any more: nothing to do.
            Err(CallError::BadRequest(_)) => Ok(()),
            r => r.map(|_| ()).map_err(Into::into),
        }
    }

    async fn deep_link(&self, payload: &str) -> Result<Option<String>, PlatformError> {
        let name = self
            .username
            .get_or_try_init(|| async {
                let me = self.json("getMe", json!({})).await?;
                me["username"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or(CallError::Unavailable("getMe gave no username".into()))
            })
            .await?;
        Ok(Some(format!("https://t.me/{name}?start={payload}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_and_inline_code_and_bold_become_tags() {
        assert_eq!(
            prose_html("a < b && **c** `x<y>`"),
            "a &lt; b &amp;&amp; <b>c</b> <code>x&lt;y&gt;</code>"
        );
        assert_eq!(prose_html("a single ` stays"), "a single ` stays");
        assert_eq!(prose_html("odd **bold"), "odd **bold");
    }

    #[test]
    fn a_long_code_block_is_split_into_closed_pre_blocks_under_the_limit() {
        let code = (0..600)
            .map(|i| format!("let v{i} = {i};"))
            .collect::<Vec<_>>()
            .join("\n");
        let msg = Outbound {
            blocks: vec![Block::Code {
                lang: Some("rust".into()),
                code: code.clone(),
            }],
            buttons: vec![],
        };
        let ps = pieces(&msg, MAX_TEXT);
        assert!(ps.len() > 1);
        let mut joined = Vec::new();
        for p in &ps {
            let Piece::Text { html, plain } = p else {
                panic!()
            };
            assert!(
                plain.chars().count() <= MAX_TEXT,
                "{}",
                plain.chars().count()
            );
            assert_eq!(
                html.matches("<pre>").count(),
                html.matches("</pre>").count()
            );
            joined.push(plain.clone());
        }
        assert_eq!(joined.join("\n"), code);
    }

    #[test]
    fn an_image_is_a_photo_between_texts() {
        let msg = Outbound {
            blocks: vec![
                Block::Text("before".into()),
                Block::Image {
                    png: vec![1],
                    caption: "c".into(),
                },
                Block::Text("after".into()),
            ],
            buttons: vec![],
        };
        let ps = pieces(&msg, MAX_TEXT);
        assert_eq!(ps.len(), 3);
        assert!(matches!(ps[1], Piece::Photo { .. }));
    }

    #[test]
    fn updates_decode_to_texts_and_button_presses() {
        let m = json!({"update_id": 5, "message": {"message_id": 9, "chat": {"id": 42}, "from": {"id": 7, "first_name": "Ann"}, "text": "/status"}});
        assert_eq!(
            inbound(&m),
            Some(Inbound::Text {
                chat: ChatId("42".into()),
                from: Sender {
                    user: UserId("7".into()),
                    name: "Ann".into()
                },
                text: "/status".into()
            })
        );
        let q = json!({"update_id": 6, "callback_query": {"id": "cq1", "from": {"id": 7, "username": "ann"}, "data": "tok",
                       "message": {"message_id": 9, "chat": {"id": 42}}}});
        assert!(
            matches!(inbound(&q), Some(Inbound::Button { ref token, ref ack, .. }) if token == "tok" && ack == "cq1")
        );
        assert_eq!(
            inbound(&json!({"update_id": 7, "edited_message": {}})),
            None
        );
    }
}
