//! The DingTalk adapter: an enterprise internal app's robot in Stream mode (docs/engineering/im-dingtalk.md).

// Messages arrive over the Stream WebSocket (`POST /v1.0/gateway/connections/open` hands out an endpoint and a
// single-use ticket); replies go out through the robot OpenAPI (`oToMessages/batchSend` for one-to-one chats,
// `groupMessages/send` for groups) with an app access token. Chat ids are self-describing so they survive a
// restart: `user:<staffId>` for a one-to-one chat, `group:<openConversationId>` for a group.
//
// Buttons: robot messages carry no callback buttons without a console-made interactive card template, so each
// button is a `dtmd://dingtalkclient/sendMessage?content=/btn%20<token>` link in the Markdown body; a tap makes
// the user's client send `/btn <token>` to the bot, which arrives here as [`Inbound::Button`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use super::{
    Block, Button, ChatId, Inbound, MessageRef, Outbound, Platform, PlatformError, Sender, Shape,
    UserId,
};

/// The Stream topic robot messages arrive on.
pub const BOT_MESSAGE_TOPIC: &str = "/v1.0/im/bot/messages/get";
/// What a button link makes the user's client send: `/btn <token>`.
pub const BUTTON_COMMAND: &str = "/btn";
/// The longest Markdown body the adapter sends in one message, in characters. DingTalk documents no hard limit
/// for `sampleMarkdown`; its clients stop rendering Markdown well past ~3500 characters, and its webhook refuses
/// bodies over 20000 bytes. The bridge shapes text to this; the adapter splits anything longer itself.
pub const MARKDOWN_MAX_CHARS: usize = 3500;
/// The same limit in UTF-8 bytes (CJK text is three bytes a character), kept well under 20000 with the JSON
/// quoting of `msgParam` around it.
pub const MARKDOWN_MAX_BYTES: usize = 12_000;
const DEFAULT_TITLE: &str = "cloudcode";
const TITLE_MAX_CHARS: usize = 24;
/// How many recent inbound message ids are remembered to drop redeliveries.
const SEEN_IDS: usize = 512;
/// How many button tokens / edited messages are remembered.
const REMEMBERED: usize = 1024;

/// Timings of the stream and the retries; the defaults suit production, tests shorten them.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// The client sends a WebSocket ping this often; a connection that has received nothing (no frame, no pong)
    /// for twice this long is taken as dead and reopened.
    pub keepalive: Duration,
    /// First reconnect delay; doubled per consecutive failure up to `reconnect_cap`, with jitter.
    pub reconnect_base: Duration,
    pub reconnect_cap: Duration,
    /// Retries of a send on network errors, 429 and 5xx before [`PlatformError::Unavailable`].
    pub send_retries: u32,
    /// First send retry delay, doubled per retry, with jitter.
    pub retry_base: Duration,
    /// Timeout of one HTTP call.
    pub http_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            keepalive: Duration::from_secs(30),
            reconnect_base: Duration::from_secs(1),
            reconnect_cap: Duration::from_secs(60),
            send_retries: 3,
            retry_base: Duration::from_millis(500),
            http_timeout: Duration::from_secs(30),
        }
    }
}

/// How to reach the app. The secret never appears in logs or `Debug` output.
#[derive(Clone, Debug)]
pub struct DingTalkConfig {
    /// The app's Client ID (formerly AppKey).
    pub client_id: String,
    /// The app's Client Secret (formerly AppSecret).
    pub client_secret: SecretString,
    /// The robot's code; an internal app's robot code is its client id, the default.
    pub robot_code: Option<String>,
    /// `https://api.dingtalk.com` unless pointed at a double.
    pub api_base: String,
    /// `https://oapi.dingtalk.com` (media upload) unless pointed at a double.
    pub oapi_base: String,
    /// `http://`, `socks5://` or `socks5h://` proxy for every call and the WebSocket.
    pub proxy: Option<String>,
    pub tuning: Tuning,
}

impl DingTalkConfig {
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        DingTalkConfig {
            client_id: client_id.into(),
            client_secret,
            robot_code: None,
            api_base: "https://api.dingtalk.com".into(),
            oapi_base: "https://oapi.dingtalk.com".into(),
            proxy: None,
            tuning: Tuning::default(),
        }
    }

    fn robot_code(&self) -> &str {
        self.robot_code.as_deref().unwrap_or(&self.client_id)
    }
}

/// Where a [`ChatId`] points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A one-to-one chat with this staff id (userId).
    User(String),
    /// A group, by its openConversationId.
    Group(String),
}

impl Target {
    pub fn parse(chat: &ChatId) -> Option<Target> {
        if let Some(id) = chat.0.strip_prefix("user:") {
            return (!id.is_empty()).then(|| Target::User(id.to_string()));
        }
        if let Some(id) = chat.0.strip_prefix("group:") {
            return (!id.is_empty()).then(|| Target::Group(id.to_string()));
        }
        None
    }

    pub fn chat_id(&self) -> ChatId {
        match self {
            Target::User(id) => ChatId(format!("user:{id}")),
            Target::Group(id) => ChatId(format!("group:{id}")),
        }
    }
}

struct CachedToken {
    token: String,
    refresh_at: Instant,
}

/// A bounded insertion-ordered map: the oldest entries go first.
struct Recent<V> {
    order: VecDeque<String>,
    map: HashMap<String, V>,
    cap: usize,
}

impl<V> Recent<V> {
    fn new(cap: usize) -> Self {
        Recent {
            order: VecDeque::new(),
            map: HashMap::new(),
            cap,
        }
    }

    /// Inserts; returns whether the key was new.
    fn insert(&mut self, key: String, value: V) -> bool {
        if self.map.insert(key.clone(), value).is_some() {
            return false;
        }
        self.order.push_back(key);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        true
    }

    /// Inserts or replaces.
    fn upsert(&mut self, key: String, value: V) {
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = value;
        } else {
            self.insert(key, value);
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }
}

/// The adapter. Cheap to share behind an `Arc`; `receive` runs once, sends run concurrently.
pub struct DingTalk {
    cfg: DingTalkConfig,
    http: reqwest::Client,
    proxy: Option<url::Url>,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    /// Inbound message ids already delivered (DingTalk may push a frame twice).
    seen: StdMutex<Recent<()>>,
    /// Button token → the message that carried it, for [`Inbound::Button::message`].
    buttons: StdMutex<Recent<MessageRef>>,
    /// Message → what was last sent for it, so an edit that changes nothing sends nothing.
    edits: StdMutex<Recent<String>>,
}

impl std::fmt::Debug for DingTalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DingTalk")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What ended one Stream session.
enum SessionEnd {
    /// The bridge stopped listening.
    Closed,
    /// The server announced a graceful disconnect: reconnect at once.
    Disconnect,
    /// The connection failed or went silent; `healthy` when it had worked for a while.
    Lost { reason: String, healthy: bool },
}

enum OpenError {
    Fatal(String),
    Transient(String),
}

impl DingTalk {
    pub fn new(cfg: DingTalkConfig) -> Result<Self, PlatformError> {
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.tuning.http_timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cloudcode-im/", env!("CARGO_PKG_VERSION")));
        let mut proxy = None;
        if let Some(p) = cfg.proxy.as_deref().filter(|p| !p.trim().is_empty()) {
            let parsed = url::Url::parse(p).map_err(|e| {
                PlatformError::Fatal(format!("the DingTalk proxy is not a URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "socks5" | "socks5h") {
                return Err(PlatformError::Fatal(format!(
                    "the DingTalk proxy scheme {:?} is not supported (http, socks5, socks5h)",
                    parsed.scheme()
                )));
            }
            let rp = reqwest::Proxy::all(p).map_err(|e| {
                PlatformError::Fatal(format!("the DingTalk proxy is unusable: {e}"))
            })?;
            builder = builder.proxy(rp);
            proxy = Some(parsed);
        }
        let http = builder
            .build()
            .map_err(|e| PlatformError::Fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(DingTalk {
            cfg,
            http,
            proxy,
            token: tokio::sync::Mutex::new(None),
            seen: StdMutex::new(Recent::new(SEEN_IDS)),
            buttons: StdMutex::new(Recent::new(REMEMBERED)),
            edits: StdMutex::new(Recent::new(REMEMBERED)),
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.api_base.trim_end_matches('/'))
    }

    fn backoff(base: Duration, cap: Duration, attempt: u32) -> Duration {
        let exp = base.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(cap);
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        capped.mul_f64(jitter)
    }

    // ---- the Stream side ----

    /// Registers a Stream connection: the endpoint and ticket of a WebSocket.
    async fn open_connection(&self) -> Result<(String, String), OpenError> {
        let body = json!({
            "clientId": self.cfg.client_id,
            "clientSecret": self.cfg.client_secret.expose_secret(),
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_MESSAGE_TOPIC}],
            "ua": concat!("cloudcode-im/", env!("CARGO_PKG_VERSION")),
            "localIp": "",
        });
        let resp = self
            .http
            .post(self.api("/v1.0/gateway/connections/open"))
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| OpenError::Transient(format!("connections/open: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = doc.get("code").and_then(Value::as_str).unwrap_or("");
        if status == 401 || status == 403 || code == "authFailed" {
            return Err(OpenError::Fatal(format!(
                "DingTalk refused the app's client id and secret when opening the Stream connection ({}): check the DingTalk client id and client secret.",
                if code.is_empty() { status.to_string() } else { code.to_string() }
            )));
        }
        if status != 200 {
            return Err(OpenError::Transient(format!(
                "connections/open answered {status} {code}"
            )));
        }
        let endpoint = doc.get("endpoint").and_then(Value::as_str).unwrap_or("");
        let ticket = doc.get("ticket").and_then(Value::as_str).unwrap_or("");
        if endpoint.is_empty() || ticket.is_empty() {
            return Err(OpenError::Transient(
                "connections/open answered without endpoint or ticket".into(),
            ));
        }
        Ok((endpoint.to_string(), ticket.to_string()))
    }

    async fn connect_ws(
        &self,
        endpoint: &str,
        ticket: &str,
    ) -> Result<WebSocketStream<Box<dyn Io>>, String> {
        let mut url = url::Url::parse(endpoint).map_err(|e| format!("bad Stream endpoint: {e}"))?;
        url.query_pairs_mut().append_pair("ticket", ticket);
        let host = url
            .host_str()
            .ok_or("Stream endpoint without host")?
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or("Stream endpoint without port")?;
        let tcp = match &self.proxy {
            Some(p) => tunnel(p, &host, port)
                .await
                .map_err(|e| format!("proxy tunnel: {e}"))?,
            None => TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| format!("connect: {e}"))?,
        };
        let io: Box<dyn Io> = match url.scheme() {
            "wss" => Box::new(tls_connect(&host, tcp).await?),
            "ws" => Box::new(tcp),
            other => return Err(format!("Stream endpoint scheme {other:?}")),
        };
        let (ws, _) = tokio_tungstenite::client_async(url.as_str(), io)
            .await
            .map_err(|e| format!("WebSocket handshake: {e}"))?;
        Ok(ws)
    }

    async fn run_session(
        &self,
        endpoint: &str,
        ticket: &str,
        tx: &mpsc::Sender<Inbound>,
    ) -> SessionEnd {
        let connect =
            tokio::time::timeout(Duration::from_secs(20), self.connect_ws(endpoint, ticket));
        let mut ws = match connect.await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                return SessionEnd::Lost {
                    reason: e,
                    healthy: false,
                }
            }
            Err(_) => {
                return SessionEnd::Lost {
                    reason: "WebSocket connect timed out".into(),
                    healthy: false,
                }
            }
        };
        tracing::info!("dingtalk: Stream connected");
        let started = Instant::now();
        let keepalive = self.cfg.tuning.keepalive;
        let mut tick = tokio::time::interval(keepalive);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last_rx = Instant::now();
        let mut frames = 0u64;
        let healthy = |frames: u64| frames > 0 || started.elapsed() > keepalive * 2;
        loop {
            tokio::select! {
                _ = tx.closed() => {
                    let _ = ws.close(None).await;
                    return SessionEnd::Closed;
                }
                _ = tick.tick() => {
                    if last_rx.elapsed() >= keepalive * 2 {
                        return SessionEnd::Lost { reason: "no traffic for twice the keepalive".into(), healthy: true };
                    }
                    if let Err(e) = ws.send(WsMessage::Ping(Vec::new().into())).await {
                        return SessionEnd::Lost { reason: format!("ping: {e}"), healthy: healthy(frames) };
                    }
                }
                next = ws.next() => {
                    let msg = match next {
                        None => return SessionEnd::Lost { reason: "closed".into(), healthy: healthy(frames) },
                        Some(Err(e)) => return SessionEnd::Lost { reason: e.to_string(), healthy: healthy(frames) },
                        Some(Ok(m)) => m,
                    };
                    last_rx = Instant::now();
                    let text = match msg {
                        WsMessage::Text(t) => t.as_str().to_string(),
                        WsMessage::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                        WsMessage::Close(_) => return SessionEnd::Lost { reason: "server closed".into(), healthy: healthy(frames) },
                        _ => continue,
                    };
                    frames += 1;
                    match handle_frame(&text) {
                        Step::Reply(ack) => {
                            if let Err(e) = ws.send(WsMessage::Text(ack.into())).await {
                                return SessionEnd::Lost { reason: format!("ack: {e}"), healthy: true };
                            }
                        }
                        Step::Disconnect(reason) => {
                            tracing::info!(%reason, "dingtalk: server asked to reconnect");
                            let _ = ws.close(None).await;
                            return SessionEnd::Disconnect;
                        }
                        Step::Ignore(why) => tracing::debug!(%why, "dingtalk: frame ignored"),
                        Step::Message { ack, msg, message_id } => {
                            if let Some(msg) = msg {
                                let id = if msg.msg_id.is_empty() { message_id.clone() } else { msg.msg_id.clone() };
                                let fresh = id.is_empty() || lock(&self.seen).insert(id, ());
                                if fresh {
                                    if let Some(inbound) = msg.to_inbound(|t| lock(&self.buttons).get(t).cloned()) {
                                        if tx.send(inbound).await.is_err() {
                                            let _ = ws.send(WsMessage::Text(ack.into())).await;
                                            let _ = ws.close(None).await;
                                            return SessionEnd::Closed;
                                        }
                                    } else {
                                        tracing::debug!(msgtype = %msg.msgtype, "dingtalk: message type not handled");
                                    }
                                } else {
                                    tracing::debug!("dingtalk: duplicate message dropped");
                                }
                            }
                            if let Err(e) = ws.send(WsMessage::Text(ack.into())).await {
                                return SessionEnd::Lost { reason: format!("ack: {e}"), healthy: true };
                            }
                        }
                    }
                }
            }
        }
    }

    // ---- the OpenAPI side ----

    async fn access_token(&self) -> Result<String, PlatformError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok(t.token.clone());
            }
        }
        let body = json!({"appKey": self.cfg.client_id, "appSecret": self.cfg.client_secret.expose_secret()});
        let mut last = String::new();
        for attempt in 0..=self.cfg.tuning.send_retries {
            if attempt > 0 {
                tokio::time::sleep(Self::backoff(
                    self.cfg.tuning.retry_base,
                    Duration::from_secs(30),
                    attempt - 1,
                ))
                .await;
            }
            let resp = match self
                .http
                .post(self.api("/v1.0/oauth2/accessToken"))
                .json(&body)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = format!("oauth2/accessToken: {}", e.without_url());
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let doc: Value = resp.json().await.unwrap_or(Value::Null);
            let code = doc.get("code").and_then(Value::as_str).unwrap_or("");
            if status == 200 {
                let token = doc.get("accessToken").and_then(Value::as_str).unwrap_or("");
                if token.is_empty() {
                    last = "oauth2/accessToken answered without a token".into();
                    continue;
                }
                let expire = doc.get("expireIn").and_then(Value::as_u64).unwrap_or(7200);
                let lead = if expire > 600 {
                    expire - 300
                } else {
                    expire / 2
                };
                *cached = Some(CachedToken {
                    token: token.to_string(),
                    refresh_at: Instant::now() + Duration::from_secs(lead),
                });
                return Ok(token.to_string());
            }
            if status == 429 || status >= 500 {
                last = format!("oauth2/accessToken answered {status} {code}");
                continue;
            }
            return Err(PlatformError::Fatal(format!(
                "DingTalk refused the app's client id and secret when asked for an access token ({}): check the DingTalk client id and client secret.",
                if code.is_empty() { status.to_string() } else { code.to_string() }
            )));
        }
        Err(PlatformError::Unavailable(last))
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Posts to a robot API with the access token header; retries transient failures.
    async fn robot_post(&self, path: &str, body: &Value) -> Result<Value, PlatformError> {
        let mut last = String::new();
        let mut refreshed = false;
        let mut attempt = 0u32;
        while attempt <= self.cfg.tuning.send_retries {
            let token = self.access_token().await?;
            let resp = self
                .http
                .post(self.api(path))
                .header("x-acs-dingtalk-access-token", token)
                .json(body)
                .send()
                .await;
            let retry = match resp {
                Err(e) => {
                    last = format!("{path}: {}", e.without_url());
                    true
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let doc: Value = resp.json().await.unwrap_or(Value::Null);
                    let code = doc
                        .get("code")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let message = doc
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if status == 200 {
                        return Ok(doc);
                    }
                    if status == 401 || code.eq_ignore_ascii_case("InvalidAuthentication") {
                        self.forget_token().await;
                        if !refreshed {
                            refreshed = true;
                            continue;
                        }
                        return Err(PlatformError::Fatal(format!(
                            "DingTalk refuses the app's fresh access token on {path} ({code}): check the app's robot permissions."
                        )));
                    }
                    if status == 429
                        || status >= 500
                        || code.contains("QpsLimit")
                        || code.contains("Throttling")
                    {
                        last = format!("{path} answered {status} {code}");
                        true
                    } else {
                        return Err(PlatformError::Refused(format!(
                            "DingTalk refused {path}: {status} {code} {message}"
                        )));
                    }
                }
            };
            if retry {
                attempt += 1;
                if attempt <= self.cfg.tuning.send_retries {
                    tokio::time::sleep(Self::backoff(
                        self.cfg.tuning.retry_base,
                        Duration::from_secs(30),
                        attempt - 1,
                    ))
                    .await;
                }
            }
        }
        Err(PlatformError::Unavailable(format!(
            "giving up after retries: {last}"
        )))
    }

    async fn robot_send(
        &self,
        target: &Target,
        msg_key: &str,
        param: &Value,
    ) -> Result<MessageRef, PlatformError> {
        let msg_param = param.to_string();
        match target {
            Target::User(staff) => {
                let body = json!({
                    "robotCode": self.cfg.robot_code(),
                    "userIds": [staff],
                    "msgKey": msg_key,
                    "msgParam": msg_param,
                });
                let mut throttled = 0u32;
                loop {
                    let doc = self
                        .robot_post("/v1.0/robot/oToMessages/batchSend", &body)
                        .await?;
                    let listed = |field: &str| {
                        doc.get(field)
                            .and_then(Value::as_array)
                            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(staff.as_str())))
                    };
                    if listed("invalidStaffIdList") {
                        return Err(PlatformError::Refused(format!(
                            "DingTalk cannot reach user {staff} (not a staff id within the app's visible range)"
                        )));
                    }
                    if listed("flowControlledStaffIdList") {
                        throttled += 1;
                        if throttled > self.cfg.tuning.send_retries {
                            return Err(PlatformError::Unavailable(format!(
                                "DingTalk keeps flow-controlling user {staff}"
                            )));
                        }
                        tokio::time::sleep(Self::backoff(
                            self.cfg.tuning.retry_base,
                            Duration::from_secs(30),
                            throttled - 1,
                        ))
                        .await;
                        continue;
                    }
                    let key = doc
                        .get("processQueryKey")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    return Ok(MessageRef(key.to_string()));
                }
            }
            Target::Group(conversation) => {
                let body = json!({
                    "robotCode": self.cfg.robot_code(),
                    "openConversationId": conversation,
                    "msgKey": msg_key,
                    "msgParam": msg_param,
                });
                let doc = self
                    .robot_post("/v1.0/robot/groupMessages/send", &body)
                    .await?;
                let key = doc
                    .get("processQueryKey")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Ok(MessageRef(key.to_string()))
            }
        }
    }

    /// Uploads an image (`media/upload`, multipart field `media`); returns its media_id.
    async fn upload_image(&self, bytes: &[u8]) -> Result<String, PlatformError> {
        let (file_name, mime) = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            ("image.jpg", "image/jpeg")
        } else {
            ("image.png", "image/png")
        };
        let mut last = String::new();
        let mut refreshed = false;
        let mut attempt = 0u32;
        while attempt <= self.cfg.tuning.send_retries {
            let token = self.access_token().await?;
            let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name(file_name)
                .mime_str(mime)
                .map_err(|e| PlatformError::Refused(format!("image part: {e}")))?;
            let form = reqwest::multipart::Form::new().part("media", part);
            let url = format!("{}/media/upload", self.cfg.oapi_base.trim_end_matches('/'));
            let resp = self
                .http
                .post(url)
                .query(&[("access_token", token.as_str()), ("type", "image")])
                .multipart(form)
                .send()
                .await;
            match resp {
                Err(e) => last = format!("media/upload: {}", e.without_url()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let doc: Value = resp.json().await.unwrap_or(Value::Null);
                    let errcode = doc.get("errcode").and_then(Value::as_i64).unwrap_or(-1);
                    let errmsg = doc
                        .get("errmsg")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if status == 200 && errcode == 0 {
                        if let Some(id) = doc.get("media_id").and_then(Value::as_str) {
                            return Ok(id.to_string());
                        }
                        last = "media/upload answered without media_id".into();
                    } else if status == 200 && matches!(errcode, 40001 | 40014 | 42001) {
                        self.forget_token().await;
                        if !refreshed {
                            refreshed = true;
                            continue;
                        }
                        return Err(PlatformError::Fatal(format!(
                            "DingTalk refuses the app's fresh access token on media/upload ({errcode} {errmsg})."
                        )));
                    } else if status == 429 || status >= 500 || (status == 200 && errcode == -1) {
                        last = format!("media/upload answered {status} {errcode} {errmsg}");
                    } else {
                        return Err(PlatformError::Refused(format!(
                            "DingTalk refused the image: {status} {errcode} {errmsg}"
                        )));
                    }
                }
            }
            attempt += 1;
            if attempt <= self.cfg.tuning.send_retries {
                tokio::time::sleep(Self::backoff(
                    self.cfg.tuning.retry_base,
                    Duration::from_secs(30),
                    attempt - 1,
                ))
                .await;
            }
        }
        Err(PlatformError::Unavailable(format!(
            "giving up after retries: {last}"
        )))
    }
}

#[async_trait]
impl Platform for DingTalk {
    fn name(&self) -> &'static str {
        "dingtalk"
    }

    fn shape(&self) -> Shape {
        Shape {
            max_text_chars: MARKDOWN_MAX_CHARS,
            inline_code_max_lines: 0,
        }
    }

    async fn receive(&self, tx: mpsc::Sender<Inbound>) -> Result<(), PlatformError> {
        let tuning = self.cfg.tuning.clone();
        let mut failures = 0u32;
        loop {
            if tx.is_closed() {
                return Ok(());
            }
            let wait = match self.open_connection().await {
                Err(OpenError::Fatal(m)) => return Err(PlatformError::Fatal(m)),
                Err(OpenError::Transient(m)) => {
                    failures += 1;
                    tracing::warn!(error = %m, failures, "dingtalk: cannot open a Stream connection");
                    Some(Self::backoff(
                        tuning.reconnect_base,
                        tuning.reconnect_cap,
                        failures - 1,
                    ))
                }
                Ok((endpoint, ticket)) => match self.run_session(&endpoint, &ticket, &tx).await {
                    SessionEnd::Closed => return Ok(()),
                    SessionEnd::Disconnect => {
                        failures = 0;
                        None
                    }
                    SessionEnd::Lost { reason, healthy } => {
                        failures = if healthy { 1 } else { failures + 1 };
                        tracing::warn!(%reason, failures, "dingtalk: Stream connection lost");
                        Some(Self::backoff(
                            tuning.reconnect_base,
                            tuning.reconnect_cap,
                            failures - 1,
                        ))
                    }
                },
            };
            if let Some(wait) = wait {
                tokio::select! {
                    _ = tx.closed() => return Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    async fn send(&self, chat: &ChatId, msg: &Outbound) -> Result<Vec<MessageRef>, PlatformError> {
        let target = Target::parse(chat).ok_or_else(|| {
            PlatformError::Refused(format!("{:?} is not a DingTalk chat id", chat.0))
        })?;
        let mut refs = Vec::new();
        for part in plan(msg) {
            let sent = match &part {
                Part::Markdown { title, text } => {
                    self.robot_send(
                        &target,
                        "sampleMarkdown",
                        &json!({"title": title, "text": text}),
                    )
                    .await?
                }
                Part::Image { bytes } => {
                    let media_id = self.upload_image(bytes).await?;
                    self.robot_send(&target, "sampleImageMsg", &json!({"photoURL": media_id}))
                        .await?
                }
            };
            refs.push(sent);
        }
        if let Some(last) = refs.last() {
            let mut buttons = lock(&self.buttons);
            for b in msg.buttons.iter().flatten() {
                buttons.upsert(b.token.clone(), last.clone());
            }
        }
        Ok(refs)
    }

    /// Robot messages cannot be edited: a changed message is sent afresh (the bridge throttles progress edits);
    /// an edit that changes nothing since the last one for the same message sends nothing.
    async fn edit(
        &self,
        chat: &ChatId,
        at: &MessageRef,
        msg: &Outbound,
    ) -> Result<(), PlatformError> {
        let fingerprint = fingerprint(msg);
        if lock(&self.edits).get(&at.0) == Some(&fingerprint) {
            return Ok(());
        }
        self.send(chat, msg).await?;
        lock(&self.edits).upsert(at.0.clone(), fingerprint);
        Ok(())
    }

    /// A link tap has no spinner to stop: nothing to do.
    async fn ack_button(&self, _ack: &str, _notice: Option<&str>) -> Result<(), PlatformError> {
        Ok(())
    }

    /// A DingTalk robot has no start link carrying a payload.
    async fn deep_link(&self, _payload: &str) -> Result<Option<String>, PlatformError> {
        Ok(None)
    }
}

// ---- frames ----

/// A Stream frame as the server pushes it. Header values are strings, `time` sometimes a number.
#[derive(Debug, Deserialize)]
pub struct Frame {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    #[serde(default)]
    pub data: Value,
}

impl Frame {
    pub fn header(&self, name: &str) -> String {
        match self.headers.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }

    /// `data` is a JSON document inside a string.
    fn data_text(&self) -> String {
        match &self.data {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// What to do with one frame.
#[derive(Debug)]
pub enum Step {
    /// Send this back (a ping's answer, an ack of a topic not handled).
    Reply(String),
    /// The server will close the connection: reconnect.
    Disconnect(String),
    /// A robot message (when it parses) and its ack.
    Message {
        ack: String,
        msg: Option<Box<RobotMessage>>,
        message_id: String,
    },
    /// Nothing to do (malformed, unknown type).
    Ignore(String),
}

/// The acknowledgement of a pushed frame: code 200, the frame's messageId, `data` a JSON string.
pub fn ack_frame(code: u16, message_id: &str, message: &str, data: &str) -> String {
    json!({
        "code": code,
        "headers": {"contentType": "application/json", "messageId": message_id},
        "message": message,
        "data": data,
    })
    .to_string()
}

/// Classifies one text frame from the Stream; never panics.
pub fn handle_frame(text: &str) -> Step {
    let frame: Frame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return Step::Ignore(format!("not a frame: {e}")),
    };
    let topic = frame.header("topic");
    let message_id = frame.header("messageId");
    match frame.kind.as_str() {
        "SYSTEM" => match topic.as_str() {
            "ping" => Step::Reply(ack_frame(200, &message_id, "OK", &frame.data_text())),
            "disconnect" => {
                let reason = serde_json::from_str::<Value>(&frame.data_text())
                    .ok()
                    .and_then(|d| d.get("reason").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                Step::Disconnect(reason)
            }
            other => Step::Ignore(format!("SYSTEM topic {other:?}")),
        },
        "CALLBACK" if topic == BOT_MESSAGE_TOPIC => {
            let ack = ack_frame(200, &message_id, "OK", r#"{"response":null}"#);
            let msg = serde_json::from_str::<RobotMessage>(&frame.data_text())
                .ok()
                .map(Box::new);
            Step::Message {
                ack,
                msg,
                message_id,
            }
        }
        "CALLBACK" | "EVENT" => {
            if message_id.is_empty() {
                Step::Ignore(format!("{} {topic:?} without messageId", frame.kind))
            } else {
                Step::Reply(ack_frame(
                    404,
                    &message_id,
                    "topic not handled",
                    r#"{"response":null}"#,
                ))
            }
        }
        other => Step::Ignore(format!("frame type {other:?}")),
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct TextContent {
    #[serde(default)]
    pub content: String,
}

/// The `data` of a robot message callback (the fields the bridge uses).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RobotMessage {
    pub conversation_id: String,
    /// "1" one-to-one, "2" group.
    pub conversation_type: String,
    pub sender_staff_id: String,
    pub sender_id: String,
    pub sender_nick: String,
    pub msgtype: String,
    pub text: Option<TextContent>,
    /// richText / audio bodies.
    pub content: Option<Value>,
    pub msg_id: String,
    pub robot_code: String,
}

impl RobotMessage {
    pub fn chat(&self) -> ChatId {
        if self.conversation_type == "2" {
            Target::Group(self.conversation_id.clone()).chat_id()
        } else {
            Target::User(self.sender().user.0).chat_id()
        }
    }

    pub fn sender(&self) -> Sender {
        let user = if self.sender_staff_id.is_empty() {
            &self.sender_id
        } else {
            &self.sender_staff_id
        };
        Sender {
            user: UserId(user.clone()),
            name: self.sender_nick.clone(),
        }
    }

    /// The text the user wrote, when the message has one.
    pub fn text(&self) -> Option<String> {
        let text = match self.msgtype.as_str() {
            "text" => self.text.as_ref().map(|t| t.content.clone()),
            "richText" => self
                .content
                .as_ref()
                .and_then(|c| c.get("richText"))
                .and_then(Value::as_array)
                .map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("")
                }),
            "audio" => self
                .content
                .as_ref()
                .and_then(|c| c.get("recognition"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        }?;
        let text = text.trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    /// The inbound event: a `/btn <token>` text is a button tap. `button_ref` finds the message a token was sent on.
    pub fn to_inbound(&self, button_ref: impl Fn(&str) -> Option<MessageRef>) -> Option<Inbound> {
        let text = self.text()?;
        let chat = self.chat();
        let from = self.sender();
        if let Some(rest) = text.strip_prefix(BUTTON_COMMAND) {
            if rest.starts_with(char::is_whitespace) {
                let token = rest.trim().to_string();
                if !token.is_empty() && token.len() <= 64 && !token.contains(char::is_whitespace) {
                    let message = button_ref(&token).unwrap_or_else(|| MessageRef(String::new()));
                    return Some(Inbound::Button {
                        chat,
                        from,
                        message,
                        token,
                        ack: String::new(),
                    });
                }
            }
        }
        Some(Inbound::Text { chat, from, text })
    }
}

// ---- Markdown ----

const NBSP: char = '\u{a0}';

/// Escapes prose for DingTalk's Markdown: backslash before the characters that start emphasis, links, code and
/// (at a line's start) headings, quotes and lists; `<` as an entity (DingTalk renders some HTML such as `<font>`);
/// leading spaces kept as no-break spaces; lines joined by a hard break.
pub fn escape_markdown(text: &str) -> String {
    text.lines()
        .map(escape_line)
        .collect::<Vec<_>>()
        .join("  \n")
}

fn escape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let body = line.trim_start_matches(' ');
    for _ in 0..(line.len() - body.len()) {
        out.push(NBSP);
    }
    let mut at_start = true;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '*' | '_' | '`' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '#' | '>' | '-' | '+' | '|' if at_start => {
                out.push('\\');
                out.push(c);
            }
            d if at_start && d.is_ascii_digit() => {
                // "1. item" would become a numbered list.
                out.push(d);
                let mut digits = String::new();
                while let Some(n) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(n);
                    chars.next();
                }
                out.push_str(&digits);
                if chars.peek() == Some(&'.') {
                    chars.next();
                    out.push_str("\\.");
                }
            }
            _ => out.push(c),
        }
        at_start = false;
    }
    out
}

fn bold(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("**{}**", escape_line(l.trim()))
            }
        })
        .collect::<Vec<_>>()
        .join("  \n")
}

/// A stray code block (the bridge turns code into images for DingTalk): plain text indented by four no-break
/// spaces, escaped like prose.
fn indented_code(code: &str) -> String {
    code.lines()
        .map(|l| format!("{NBSP}{NBSP}{NBSP}{NBSP}{}", escape_line(l)))
        .collect::<Vec<_>>()
        .join("  \n")
}

/// The link a button becomes: tapping it makes the client send `/btn <token>` to the bot.
pub fn button_url(token: &str) -> String {
    let content = format!("{BUTTON_COMMAND} {token}");
    format!(
        "dtmd://dingtalkclient/sendMessage?content={}",
        utf8_percent_encode(&content, NON_ALPHANUMERIC)
    )
}

fn button_rows(rows: &[Vec<Button>]) -> String {
    rows.iter()
        .filter(|r| !r.is_empty())
        .map(|row| {
            row.iter()
                .map(|b| {
                    format!(
                        "[{}]({})",
                        escape_line(b.label.trim()),
                        button_url(&b.token)
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .collect::<Vec<_>>()
        .join("  \n")
}

/// One platform message of a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Markdown { title: String, text: String },
    Image { bytes: Vec<u8> },
}

fn title_of(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(DEFAULT_TITLE);
    let mut t: String = first.chars().take(TITLE_MAX_CHARS).collect();
    if first.chars().count() > TITLE_MAX_CHARS {
        t.push('…');
    }
    t
}

/// Splits Markdown at line ends so each piece fits both limits; an overlong line is cut at a character.
pub fn split_markdown(text: &str, max_chars: usize, max_bytes: usize) -> Vec<String> {
    let fits = |s: &str| s.chars().count() <= max_chars && s.len() <= max_bytes;
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.split_inclusive('\n') {
        if fits(&format!("{cur}{line}")) {
            cur.push_str(line);
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur).trim_end().to_string());
        }
        if fits(line) {
            cur.push_str(line);
            continue;
        }
        for c in line.chars() {
            if !fits(&format!("{cur}{c}")) {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim_end().to_string());
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

/// Turns a message into DingTalk messages: Markdown runs split to the limits, each image its own message (its
/// caption opens the next Markdown run), the buttons as links at the end of the last Markdown message.
pub fn plan(msg: &Outbound) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let mut plain: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>,
                 plain: &mut Vec<String>,
                 parts: &mut Vec<Part>,
                 tail: Option<String>| {
        let body = run.join("\n\n");
        let title = title_of(&plain.join("\n"));
        let mut chunks = split_markdown(&body, MARKDOWN_MAX_CHARS, MARKDOWN_MAX_BYTES);
        if let Some(tail) = tail.filter(|t| !t.is_empty()) {
            let joined = chunks.last().map(|last| format!("{last}\n\n{tail}"));
            match joined {
                Some(j)
                    if j.chars().count() <= MARKDOWN_MAX_CHARS && j.len() <= MARKDOWN_MAX_BYTES =>
                {
                    if let Some(last) = chunks.last_mut() {
                        *last = j;
                    }
                }
                _ => chunks.push(tail),
            }
        }
        for text in chunks {
            parts.push(Part::Markdown {
                title: title.clone(),
                text,
            });
        }
        run.clear();
        plain.clear();
    };
    for block in &msg.blocks {
        match block {
            Block::Text(t) if !t.trim().is_empty() => {
                run.push(escape_markdown(t));
                plain.push(t.clone());
            }
            Block::Bold(t) if !t.trim().is_empty() => {
                run.push(bold(t));
                plain.push(t.clone());
            }
            Block::Code { code, .. } if !code.trim().is_empty() => {
                run.push(indented_code(code));
                plain.push(code.clone());
            }
            Block::Image { png, caption } => {
                flush(&mut run, &mut plain, &mut parts, None);
                parts.push(Part::Image { bytes: png.clone() });
                if !caption.trim().is_empty() {
                    run.push(escape_markdown(caption));
                    plain.push(caption.clone());
                }
            }
            _ => {}
        }
    }
    let buttons = button_rows(&msg.buttons);
    if run.is_empty() && !buttons.is_empty() {
        plain.push(
            msg.buttons
                .iter()
                .flatten()
                .map(|b| b.label.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    flush(&mut run, &mut plain, &mut parts, Some(buttons));
    parts
}

/// What an edit would send, to recognise an edit that changes nothing.
fn fingerprint(msg: &Outbound) -> String {
    plan(msg)
        .iter()
        .map(|p| match p {
            Part::Markdown { text, .. } => text.clone(),
            Part::Image { bytes } => {
                format!("image:{}:{:?}", bytes.len(), &bytes[..bytes.len().min(64)])
            }
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

// ---- the socket under the WebSocket ----

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("TLS name: {e}"))?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))
}

fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Opens a TCP stream to `host:port` through an HTTP CONNECT or SOCKS5 proxy.
async fn tunnel(proxy: &url::Url, host: &str, port: u16) -> std::io::Result<TcpStream> {
    let err = |m: String| std::io::Error::other(m);
    let phost = proxy
        .host_str()
        .ok_or_else(|| err("proxy without host".into()))?;
    let pport = proxy
        .port_or_known_default()
        .unwrap_or(if proxy.scheme() == "http" { 80 } else { 1080 });
    let mut s = TcpStream::connect((phost, pport)).await?;
    let user = decoded(proxy.username());
    let pass = decoded(proxy.password().unwrap_or(""));
    match proxy.scheme() {
        "http" => {
            use base64::Engine;
            let mut req = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
            if !user.is_empty() {
                let cred =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                req.push_str(&format!("Proxy-Authorization: Basic {cred}\r\n"));
            }
            req.push_str("\r\n");
            s.write_all(req.as_bytes()).await?;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if head.len() > 8192 || s.read(&mut byte).await? == 0 {
                    return Err(err("proxy closed during CONNECT".into()));
                }
                head.push(byte[0]);
            }
            let status = String::from_utf8_lossy(&head);
            let ok = status.split_whitespace().nth(1) == Some("200");
            if !ok {
                return Err(err(format!(
                    "proxy refused CONNECT: {}",
                    status.lines().next().unwrap_or("")
                )));
            }
            Ok(s)
        }
        "socks5" | "socks5h" => {
            let auth = !user.is_empty();
            s.write_all(if auth {
                &[5u8, 2, 0, 2][..]
            } else {
                &[5u8, 1, 0][..]
            })
            .await?;
            let mut reply = [0u8; 2];
            s.read_exact(&mut reply).await?;
            match reply {
                [5, 0] => {}
                [5, 2] if auth => {
                    let mut m = vec![1, user.len().min(255) as u8];
                    m.extend_from_slice(&user.as_bytes()[..user.len().min(255)]);
                    m.push(pass.len().min(255) as u8);
                    m.extend_from_slice(&pass.as_bytes()[..pass.len().min(255)]);
                    s.write_all(&m).await?;
                    let mut r = [0u8; 2];
                    s.read_exact(&mut r).await?;
                    if r[1] != 0 {
                        return Err(err("SOCKS5 proxy refused the credentials".into()));
                    }
                }
                _ => return Err(err("SOCKS5 proxy offers no usable authentication".into())),
            }
            if host.len() > 255 {
                return Err(err("host name too long for SOCKS5".into()));
            }
            let mut m = vec![5, 1, 0, 3, host.len() as u8];
            m.extend_from_slice(host.as_bytes());
            m.extend_from_slice(&port.to_be_bytes());
            s.write_all(&m).await?;
            let mut head = [0u8; 4];
            s.read_exact(&mut head).await?;
            if head[1] != 0 {
                return Err(err(format!(
                    "SOCKS5 proxy refused the connection (reply {})",
                    head[1]
                )));
            }
            let skip = match head[3] {
                1 => 4,
                4 => 16,
                3 => {
                    let mut len = [0u8; 1];
                    s.read_exact(&mut len).await?;
                    len[0] as usize
                }
                _ => return Err(err("SOCKS5 reply with an unknown address type".into())),
            };
            let mut rest = vec![0u8; skip + 2];
            s.read_exact(&mut rest).await?;
            Ok(s)
        }
        other => Err(err(format!("proxy scheme {other:?} not supported"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot_frame(data: &Value) -> String {
        json!({
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": "app", "connectionId": "c1", "contentType": "application/json",
                "messageId": "m-1", "time": "1690362102194", "topic": BOT_MESSAGE_TOPIC,
            },
            "data": data.to_string(),
        })
        .to_string()
    }

    fn text_data(kind: &str, text: &str) -> Value {
        json!({
            "conversationId": "cid1", "conversationType": kind, "senderStaffId": "staff1",
            "senderId": "$:LWCP:x", "senderNick": "Ann", "msgtype": "text", "text": {"content": text},
            "msgId": "msg-1", "robotCode": "robot",
        })
    }

    #[test]
    fn ping_is_answered_with_its_own_data_and_message_id() {
        let frame = r#"{"specVersion":"1.0","type":"SYSTEM","headers":{"topic":"ping","messageId":"p-7","contentType":"application/json"},"data":"{\"opaque\":\"abc\"}"}"#;
        let Step::Reply(ack) = handle_frame(frame) else {
            panic!("expected a reply")
        };
        let ack: Value = serde_json::from_str(&ack).unwrap();
        assert_eq!(ack["code"], 200);
        assert_eq!(ack["headers"]["messageId"], "p-7");
        assert_eq!(ack["headers"]["contentType"], "application/json");
        assert_eq!(ack["data"], r#"{"opaque":"abc"}"#);
    }

    #[test]
    fn disconnect_asks_for_a_reconnect_with_its_reason() {
        let frame = r#"{"type":"SYSTEM","headers":{"topic":"disconnect"},"data":"{\"reason\":\"connection is expired\"}"}"#;
        match handle_frame(frame) {
            Step::Disconnect(r) => assert_eq!(r, "connection is expired"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn robot_callback_is_acked_with_a_null_response() {
        let Step::Message {
            ack,
            msg,
            message_id,
        } = handle_frame(&robot_frame(&text_data("1", "hi")))
        else {
            panic!("expected a message")
        };
        assert_eq!(message_id, "m-1");
        let ack: Value = serde_json::from_str(&ack).unwrap();
        assert_eq!(ack["code"], 200);
        assert_eq!(ack["message"], "OK");
        assert_eq!(ack["headers"]["messageId"], "m-1");
        assert_eq!(ack["data"], r#"{"response":null}"#);
        assert_eq!(msg.unwrap().sender_nick, "Ann");
    }

    #[test]
    fn one_to_one_text_becomes_text_from_the_staff_id() {
        let msg: RobotMessage = serde_json::from_value(text_data("1", "  /status ")).unwrap();
        let inbound = msg.to_inbound(|_| None).unwrap();
        assert_eq!(
            inbound,
            Inbound::Text {
                chat: ChatId("user:staff1".into()),
                from: Sender {
                    user: UserId("staff1".into()),
                    name: "Ann".into()
                },
                text: "/status".into(),
            }
        );
    }

    #[test]
    fn group_text_is_addressed_to_the_conversation() {
        let msg: RobotMessage = serde_json::from_value(text_data("2", " hello")).unwrap();
        let Some(Inbound::Text { chat, .. }) = msg.to_inbound(|_| None) else {
            panic!()
        };
        assert_eq!(chat, ChatId("group:cid1".into()));
        assert_eq!(Target::parse(&chat), Some(Target::Group("cid1".into())));
    }

    #[test]
    fn button_text_becomes_a_button_press_with_the_carrying_message() {
        let msg: RobotMessage = serde_json::from_value(text_data("1", "/btn ap:12")).unwrap();
        let inbound = msg
            .to_inbound(|t| (t == "ap:12").then(|| MessageRef("pqk".into())))
            .unwrap();
        match inbound {
            Inbound::Button {
                token,
                message,
                ack,
                ..
            } => {
                assert_eq!(token, "ap:12");
                assert_eq!(message, MessageRef("pqk".into()));
                assert_eq!(ack, "");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bare_btn_word_stays_text() {
        let msg: RobotMessage = serde_json::from_value(text_data("1", "/btnx y")).unwrap();
        assert!(matches!(
            msg.to_inbound(|_| None),
            Some(Inbound::Text { .. })
        ));
        let msg: RobotMessage = serde_json::from_value(text_data("1", "/btn")).unwrap();
        assert!(matches!(
            msg.to_inbound(|_| None),
            Some(Inbound::Text { .. })
        ));
    }

    #[test]
    fn malformed_frames_are_ignored_without_panicking() {
        for bad in [
            "",
            "null",
            "[]",
            "{",
            r#"{"type":5}"#,
            r#"{"type":"CALLBACK","headers":{"topic":"/v1.0/im/bot/messages/get"},"data":"{not json"}"#,
            r#"{"type":"WHAT"}"#,
        ] {
            let _ = handle_frame(bad);
        }
        assert!(matches!(handle_frame("{"), Step::Ignore(_)));
        let Step::Message { msg, .. } = handle_frame(
            r#"{"type":"CALLBACK","headers":{"topic":"/v1.0/im/bot/messages/get","messageId":"x"},"data":"{not json"}"#,
        ) else {
            panic!()
        };
        assert!(msg.is_none());
    }

    #[test]
    fn unknown_callback_topic_is_acked_404() {
        let frame = r#"{"type":"CALLBACK","headers":{"topic":"/v1.0/card/instances/callback","messageId":"q"},"data":"{}"}"#;
        let Step::Reply(ack) = handle_frame(frame) else {
            panic!()
        };
        assert_eq!(serde_json::from_str::<Value>(&ack).unwrap()["code"], 404);
    }

    #[test]
    fn numeric_time_header_is_tolerated() {
        let frame = r#"{"type":"SYSTEM","headers":{"topic":"ping","messageId":"p","time":1690106592000},"data":"{}"}"#;
        assert!(matches!(handle_frame(frame), Step::Reply(_)));
    }

    #[test]
    fn markdown_specials_are_escaped() {
        assert_eq!(
            escape_markdown("a*b_c`d[e]f\\g"),
            "a\\*b\\_c\\`d\\[e\\]f\\\\g"
        );
        assert_eq!(escape_markdown("# not a heading"), "\\# not a heading");
        assert_eq!(escape_markdown("> not a quote"), "\\> not a quote");
        assert_eq!(escape_markdown("- not a list"), "\\- not a list");
        assert_eq!(escape_markdown("12. not numbered"), "12\\. not numbered");
        assert_eq!(escape_markdown("<font color=red>x"), "&lt;font color=red>x");
        assert_eq!(escape_markdown("a - b # c"), "a - b # c");
    }

    #[test]
    fn markdown_lines_break_hard_and_keep_indentation() {
        assert_eq!(escape_markdown("one\n  two"), "one  \n\u{a0}\u{a0}two");
    }

    #[test]
    fn stray_code_block_is_sent_as_indented_text() {
        let msg = Outbound {
            blocks: vec![Block::Code {
                lang: None,
                code: "let *x = 1;".into(),
            }],
            buttons: vec![],
        };
        let parts = plan(&msg);
        assert_eq!(
            parts,
            vec![Part::Markdown {
                title: "let *x = 1;".into(),
                text: "\u{a0}\u{a0}\u{a0}\u{a0}let \\*x = 1;".into()
            }]
        );
    }

    #[test]
    fn bold_and_text_join_as_paragraphs() {
        let msg = Outbound {
            blocks: vec![Block::Bold("Done".into()), Block::Text("all *good*".into())],
            buttons: vec![],
        };
        let Part::Markdown { title, text } = &plan(&msg)[0] else {
            panic!()
        };
        assert_eq!(title, "Done");
        assert_eq!(text, "**Done**\n\nall \\*good\\*");
    }

    #[test]
    fn buttons_become_dtmd_links_on_the_last_message() {
        let msg = Outbound {
            blocks: vec![Block::Text("Allow?".into())],
            buttons: vec![vec![
                Button {
                    label: "Allow".into(),
                    token: "a 1".into(),
                },
                Button {
                    label: "Deny".into(),
                    token: "d".into(),
                },
            ]],
        };
        let parts = plan(&msg);
        assert_eq!(parts.len(), 1);
        let Part::Markdown { text, .. } = &parts[0] else {
            panic!()
        };
        assert_eq!(
            text,
            "Allow?\n\n[Allow](dtmd://dingtalkclient/sendMessage?content=%2Fbtn%20a%201) · [Deny](dtmd://dingtalkclient/sendMessage?content=%2Fbtn%20d)"
        );
    }

    #[test]
    fn image_is_its_own_message_and_its_caption_opens_the_next() {
        let msg = Outbound {
            blocks: vec![
                Block::Text("before".into()),
                Block::Image {
                    png: vec![1, 2],
                    caption: "diff.rs".into(),
                },
            ],
            buttons: vec![vec![Button {
                label: "OK".into(),
                token: "ok".into(),
            }]],
        };
        let parts = plan(&msg);
        assert_eq!(parts.len(), 3);
        assert!(matches!(&parts[0], Part::Markdown { text, .. } if text == "before"));
        assert_eq!(parts[1], Part::Image { bytes: vec![1, 2] });
        assert!(
            matches!(&parts[2], Part::Markdown { text, .. } if text.starts_with("diff.rs\n\n[OK](dtmd:"))
        );
    }

    #[test]
    fn buttons_alone_after_an_image_still_get_a_message() {
        let msg = Outbound {
            blocks: vec![Block::Image {
                png: vec![9],
                caption: String::new(),
            }],
            buttons: vec![vec![Button {
                label: "Retry".into(),
                token: "r".into(),
            }]],
        };
        let parts = plan(&msg);
        assert_eq!(parts.len(), 2);
        assert!(
            matches!(&parts[1], Part::Markdown { title, text } if title == "Retry" && text.starts_with("[Retry]"))
        );
    }

    #[test]
    fn long_text_is_split_under_both_limits() {
        let line = "字".repeat(100);
        let text = vec![line.as_str(); 200].join("\n");
        let msg = Outbound::text(text);
        let parts = plan(&msg);
        assert!(parts.len() > 1);
        for p in &parts {
            let Part::Markdown { text, .. } = p else {
                panic!()
            };
            assert!(text.chars().count() <= MARKDOWN_MAX_CHARS);
            assert!(text.len() <= MARKDOWN_MAX_BYTES);
        }
    }

    #[test]
    fn an_overlong_line_is_cut_at_characters() {
        let pieces = split_markdown(&"é".repeat(25), 10, 1000);
        assert_eq!(
            pieces.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
    }

    #[test]
    fn title_is_the_first_line_shortened() {
        assert_eq!(
            title_of("\n  Build finished successfully at last\nmore"),
            "Build finished successfu…"
        );
        assert_eq!(title_of(""), DEFAULT_TITLE);
    }

    #[test]
    fn chat_ids_round_trip_and_reject_foreign_ids() {
        assert_eq!(
            Target::parse(&ChatId("user:s".into())),
            Some(Target::User("s".into()))
        );
        assert_eq!(Target::parse(&ChatId("12345".into())), None);
        assert_eq!(Target::parse(&ChatId("user:".into())), None);
    }

    #[test]
    fn secret_is_not_in_debug_output() {
        let cfg = DingTalkConfig::new("id", SecretString::from("s3cr3t-value"));
        assert!(!format!("{cfg:?}").contains("s3cr3t-value"));
        let dt = DingTalk::new(cfg).unwrap();
        assert!(!format!("{dt:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn unsupported_proxy_scheme_is_fatal() {
        let mut cfg = DingTalkConfig::new("id", SecretString::from("s"));
        cfg.proxy = Some("ftp://proxy:21".into());
        assert!(matches!(DingTalk::new(cfg), Err(PlatformError::Fatal(_))));
    }

    #[test]
    fn backoff_stays_under_the_cap() {
        for n in 0..40 {
            let d = DingTalk::backoff(Duration::from_secs(1), Duration::from_secs(60), n);
            assert!(d <= Duration::from_secs(60));
            assert!(d >= Duration::from_millis(500) || n == 0);
        }
    }
}
