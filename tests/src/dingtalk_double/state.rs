//! The double's world: app credentials, tickets, tokens, open streams, frames awaiting acks, sent messages, media.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

pub(crate) type Shared = Arc<Mutex<World>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, World> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

pub const BOT_TOPIC: &str = "/v1.0/im/bot/messages/get";
/// A ticket is good for one connection within 90 seconds (the Stream protocol description).
const TICKET_LIFETIME: Duration = Duration::from_secs(90);
const TOKEN_LIFETIME_SECS: u64 = 7200;
/// The double's limit on a robot message's `msgParam` (DingTalk's webhook refuses bodies over 20000 bytes).
pub const MSG_PARAM_MAX_BYTES: usize = 20_000;
/// The double's limit on a `sampleMarkdown` text, in characters (an approximation; see the engineering doc).
pub const MARKDOWN_MAX_CHARS: usize = 5000;
/// media/upload's image size limit.
pub const IMAGE_MAX_BYTES: usize = 20 * 1024 * 1024;

/// One request or stream event, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `connections/open`, `accessToken`, `batchSend`, `groupMessages/send`, `media/upload`, `ws/connect`,
    /// `ws/ack`, `ws/unacked`, `ws/redelivered`, `ws/ping-ack`, `ws/closed`.
    pub api: String,
    /// HTTP status (0 for stream events).
    pub status: u16,
    /// `OK` or the error code / a short note.
    pub outcome: String,
}

/// An uploaded image as sent in a `sampleImageMsg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentImage {
    pub media_id: String,
    pub bytes: Vec<u8>,
    /// "png" or "jpeg".
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
}

/// A robot message the double accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    /// The staff id (one-to-one) or openConversationId (group) it went to.
    pub target: String,
    pub msg_key: String,
    /// `msgParam`, parsed.
    pub param: Value,
    /// For `sampleImageMsg` with an uploaded media id.
    pub image: Option<SentImage>,
    pub process_query_key: String,
}

pub(crate) enum Push {
    Frame(String),
    /// Close the connection abruptly (no close handshake).
    Drop,
}

pub(crate) struct Conn {
    pub id: u64,
    pub tx: UnboundedSender<Push>,
}

pub(crate) struct Pending {
    pub frame: String,
    pub conn: u64,
    pub sent_at: Instant,
    pub attempts: u32,
    /// For pings: the data the ack must echo.
    pub ping_data: Option<String>,
}

pub(crate) struct Media {
    pub bytes: Vec<u8>,
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
}

/// An error answer of the OpenAPI: status and `{code, message}`.
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &str, message: &str) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

pub(crate) struct World {
    pub client_id: String,
    pub client_secret: String,
    pub robot_code: String,
    pub base: String,
    pub tickets: HashMap<String, Instant>,
    pub tokens: HashMap<String, Instant>,
    pub conns: Vec<Conn>,
    pub pending: HashMap<String, Pending>,
    pub groups: HashMap<String, String>,
    pub staff: HashSet<String>,
    pub sent: Vec<SentMessage>,
    pub media: HashMap<String, Media>,
    pub calls: Vec<Call>,
    pub faults: HashMap<String, (u32, u16)>,
    pub ping_interval: Duration,
    pub ack_timeout: Duration,
    pub redeliver: bool,
    pub pings_acked: usize,
    pub unacked: Vec<String>,
    seq: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// The fields each supported msgKey's msgParam must carry (the robot message types reference).
fn required_fields(msg_key: &str) -> Option<Vec<String>> {
    let base = |extra: &[&str]| {
        let mut v = vec!["title".to_string(), "text".to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cards = |n: usize| {
        let mut v = base(&[]);
        for i in 1..=n {
            v.push(format!("actionTitle{i}"));
            v.push(format!("actionURL{i}"));
        }
        v
    };
    Some(match msg_key {
        "sampleText" => vec!["content".into()],
        "sampleMarkdown" => base(&[]),
        "sampleImageMsg" => vec!["photoURL".into()],
        "sampleLink" => vec![
            "text".into(),
            "title".into(),
            "picUrl".into(),
            "messageUrl".into(),
        ],
        "sampleActionCard" => base(&["singleTitle", "singleURL"]),
        "sampleActionCard2" => cards(2),
        "sampleActionCard3" => cards(3),
        "sampleActionCard4" => cards(4),
        "sampleActionCard5" => cards(5),
        "sampleActionCard6" => base(&["buttonTitle1", "buttonUrl1", "buttonTitle2", "buttonUrl2"]),
        "sampleAudio" => vec!["mediaId".into(), "duration".into()],
        "sampleFile" => vec!["mediaId".into(), "fileName".into(), "fileType".into()],
        "sampleVideo" => vec![
            "duration".into(),
            "videoMediaId".into(),
            "videoType".into(),
            "picMediaId".into(),
        ],
        _ => return None,
    })
}

/// (format, width, height) of a PNG or baseline/progressive JPEG.
pub(crate) fn image_info(bytes: &[u8]) -> Option<(&'static str, u32, u32)> {
    if bytes.len() >= 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR" {
        let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        return Some(("png", w, h));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 9 < bytes.len() {
            if bytes[i] != 0xFF {
                return None;
            }
            let marker = bytes[i + 1];
            let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]) as u32;
                let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]) as u32;
                return Some(("jpeg", w, h));
            }
            i += 2 + len;
        }
    }
    None
}

impl World {
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        World {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            robot_code: client_id.into(),
            base: String::new(),
            tickets: HashMap::new(),
            tokens: HashMap::new(),
            conns: Vec::new(),
            pending: HashMap::new(),
            groups: HashMap::new(),
            staff: HashSet::new(),
            sent: Vec::new(),
            media: HashMap::new(),
            calls: Vec::new(),
            faults: HashMap::new(),
            ping_interval: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(5),
            redeliver: false,
            pings_acked: 0,
            unacked: Vec::new(),
            seq: 0,
        }
    }

    pub fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{:08x}{:04x}", now_ms() & 0xffff_ffff, self.seq)
    }

    pub fn record(&mut self, api: &str, status: u16, outcome: impl Into<String>) {
        self.calls.push(Call {
            api: api.into(),
            status,
            outcome: outcome.into(),
        });
    }

    /// An injected failure for this call, if one is armed.
    pub fn take_fault(&mut self, api: &str) -> Option<u16> {
        let entry = self.faults.get_mut(api)?;
        if entry.0 == 0 {
            return None;
        }
        entry.0 -= 1;
        Some(entry.1)
    }

    pub fn fault_error(status: u16) -> ApiError {
        match status {
            429 => ApiError::new(
                429,
                "Forbidden.AccessDenied.QpsLimitForApi",
                "调用频率超过限制",
            ),
            s if s >= 500 => ApiError::new(s, "ServiceUnavailable", "服务暂不可用"),
            s => ApiError::new(s, "injected", "injected failure"),
        }
    }

    pub fn open_connection(&mut self, body: &Value) -> Result<Value, ApiError> {
        if let Some(status) = self.take_fault("connections/open") {
            return Err(Self::fault_error(status));
        }
        if str_field(body, "clientId") != Some(self.client_id.as_str())
            || str_field(body, "clientSecret") != Some(self.client_secret.as_str())
        {
            return Err(ApiError::new(401, "authFailed", "鉴权失败"));
        }
        let subs = body
            .get("subscriptions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let valid = !subs.is_empty()
            && subs.iter().all(|s| {
                matches!(str_field(s, "type"), Some("EVENT" | "CALLBACK" | "SYSTEM"))
                    && str_field(s, "topic").is_some_and(|t| !t.is_empty())
            });
        if !valid {
            return Err(ApiError::new(
                400,
                "invalidParameter.subscriptions",
                "subscriptions 不合法",
            ));
        }
        let ticket = self.next_id("tk-");
        self.tickets.insert(ticket.clone(), Instant::now());
        Ok(
            json!({"endpoint": format!("{}/connect", self.base.replacen("http", "ws", 1)), "ticket": ticket}),
        )
    }

    /// Consumes a ticket: single use, 90 seconds.
    pub fn use_ticket(&mut self, ticket: &str) -> bool {
        match self.tickets.remove(ticket) {
            Some(issued) => issued.elapsed() <= TICKET_LIFETIME,
            None => false,
        }
    }

    pub fn access_token(&mut self, body: &Value) -> Result<Value, ApiError> {
        if let Some(status) = self.take_fault("accessToken") {
            return Err(Self::fault_error(status));
        }
        if str_field(body, "appKey") != Some(self.client_id.as_str())
            || str_field(body, "appSecret") != Some(self.client_secret.as_str())
        {
            return Err(ApiError::new(
                400,
                "invalidClientIdOrSecret",
                "无效的clientId或者clientSecret",
            ));
        }
        let token = self.next_id("at-");
        self.tokens.insert(
            token.clone(),
            Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
        );
        Ok(json!({"accessToken": token, "expireIn": TOKEN_LIFETIME_SECS}))
    }

    pub fn token_valid(&self, token: Option<&str>) -> bool {
        token
            .and_then(|t| self.tokens.get(t))
            .is_some_and(|exp| Instant::now() < *exp)
    }

    /// Checks robotCode, msgKey and msgParam as the robot send APIs do; returns (msgKey, parsed msgParam).
    fn check_message(&self, body: &Value) -> Result<(String, Value), ApiError> {
        if str_field(body, "robotCode") != Some(self.robot_code.as_str()) {
            return Err(ApiError::new(
                400,
                "invalidParameter.robotCode",
                "robotCode 不存在",
            ));
        }
        let msg_key = str_field(body, "msgKey").unwrap_or("").to_string();
        let Some(required) = required_fields(&msg_key) else {
            return Err(ApiError::new(
                400,
                "invalidParameter.msgKey",
                "msgKey 不合法",
            ));
        };
        let Some(raw) = str_field(body, "msgParam") else {
            return Err(ApiError::new(
                400,
                "invalidParameter.msgParam",
                "msgParam 必须是 JSON 字符串",
            ));
        };
        if raw.len() > MSG_PARAM_MAX_BYTES {
            return Err(ApiError::new(
                400,
                "invalidParameter.msgParam.tooLong",
                "消息内容超过长度限制",
            ));
        }
        let param: Value = serde_json::from_str(raw).map_err(|_| {
            ApiError::new(400, "invalidParameter.msgParam", "msgParam 不是合法的 JSON")
        })?;
        for field in &required {
            if str_field(&param, field).is_none_or(|v| v.is_empty()) {
                return Err(ApiError::new(
                    400,
                    "invalidParameter.msgParam",
                    &format!("msgParam 缺少 {field}"),
                ));
            }
        }
        if msg_key == "sampleMarkdown"
            && str_field(&param, "text").is_some_and(|t| t.chars().count() > MARKDOWN_MAX_CHARS)
        {
            return Err(ApiError::new(
                400,
                "invalidParameter.msgParam.tooLong",
                "markdown 内容超过长度限制",
            ));
        }
        if msg_key == "sampleImageMsg" {
            let url = str_field(&param, "photoURL").unwrap_or("");
            let known = self.media.contains_key(url)
                || url.starts_with("http://")
                || url.starts_with("https://");
            if !known {
                return Err(ApiError::new(
                    400,
                    "invalidParameter.photoURL",
                    "photoURL 不是有效的图片地址或 mediaId",
                ));
            }
        }
        Ok((msg_key, param))
    }

    fn image_of(&self, msg_key: &str, param: &Value) -> Option<SentImage> {
        if msg_key != "sampleImageMsg" {
            return None;
        }
        let id = str_field(param, "photoURL")?;
        let m = self.media.get(id)?;
        Some(SentImage {
            media_id: id.into(),
            bytes: m.bytes.clone(),
            format: m.format,
            width: m.width,
            height: m.height,
        })
    }

    pub fn batch_send(&mut self, token: Option<&str>, body: &Value) -> Result<Value, ApiError> {
        if !self.token_valid(token) {
            return Err(ApiError::new(
                401,
                "InvalidAuthentication",
                "不合法的access_token",
            ));
        }
        if let Some(status) = self.take_fault("batchSend") {
            return Err(Self::fault_error(status));
        }
        let (msg_key, param) = self.check_message(body)?;
        let users: Vec<String> = body
            .get("userIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if users.is_empty() || users.len() > 20 {
            return Err(ApiError::new(
                400,
                "invalidParameter.userIds",
                "userIds 数量需在 1 到 20 之间",
            ));
        }
        let key = self.next_id("pqk-");
        let image = self.image_of(&msg_key, &param);
        let mut invalid = Vec::new();
        for u in users {
            if self.staff.contains(&u) {
                self.sent.push(SentMessage {
                    target: u,
                    msg_key: msg_key.clone(),
                    param: param.clone(),
                    image: image.clone(),
                    process_query_key: key.clone(),
                });
            } else {
                invalid.push(u);
            }
        }
        Ok(
            json!({"processQueryKey": key, "invalidStaffIdList": invalid, "flowControlledStaffIdList": []}),
        )
    }

    pub fn group_send(&mut self, token: Option<&str>, body: &Value) -> Result<Value, ApiError> {
        if !self.token_valid(token) {
            return Err(ApiError::new(
                401,
                "InvalidAuthentication",
                "不合法的access_token",
            ));
        }
        if let Some(status) = self.take_fault("groupMessages/send") {
            return Err(Self::fault_error(status));
        }
        let (msg_key, param) = self.check_message(body)?;
        let conversation = str_field(body, "openConversationId")
            .unwrap_or("")
            .to_string();
        if !self.groups.contains_key(&conversation) {
            return Err(ApiError::new(
                400,
                "resource.not.found",
                "群会话不存在或机器人不在群中",
            ));
        }
        let key = self.next_id("pqk-");
        let image = self.image_of(&msg_key, &param);
        self.sent.push(SentMessage {
            target: conversation,
            msg_key,
            param,
            image,
            process_query_key: key.clone(),
        });
        Ok(json!({"processQueryKey": key}))
    }

    /// media/upload answers HTTP 200 with `errcode` (the old oapi style).
    pub fn upload(
        &mut self,
        token: Option<&str>,
        kind: Option<&str>,
        media: Option<Vec<u8>>,
    ) -> Value {
        if !self.token_valid(token) {
            return json!({"errcode": 40014, "errmsg": "不合法的access_token"});
        }
        if !matches!(kind, Some("image" | "voice" | "video" | "file")) {
            return json!({"errcode": 40004, "errmsg": "不合法的媒体文件类型"});
        }
        let Some(bytes) = media else {
            return json!({"errcode": 41004, "errmsg": "缺少 media 文件"});
        };
        if kind == Some("image") {
            if bytes.len() > IMAGE_MAX_BYTES {
                return json!({"errcode": 40006, "errmsg": "不合法的文件长度"});
            }
            let Some((format, width, height)) = image_info(&bytes) else {
                return json!({"errcode": 40005, "errmsg": "不合法的文件类型"});
            };
            let id = format!("@lA{}", self.next_id("d"));
            self.media.insert(
                id.clone(),
                Media {
                    bytes,
                    format,
                    width,
                    height,
                },
            );
            return json!({"errcode": 0, "errmsg": "ok", "media_id": id, "created_at": now_ms(), "type": "image"});
        }
        let id = format!("@lA{}", self.next_id("f"));
        self.media.insert(
            id.clone(),
            Media {
                bytes,
                format: "file",
                width: 0,
                height: 0,
            },
        );
        json!({"errcode": 0, "errmsg": "ok", "media_id": id, "created_at": now_ms(), "type": kind})
    }

    /// A robot-message CALLBACK frame as the Stream pushes it; returns (messageId, frame).
    pub fn robot_frame(
        &mut self,
        conn: u64,
        conversation_id: &str,
        staff_id: &str,
        nick: &str,
        text: &str,
    ) -> (String, String) {
        let message_id = self.next_id("msgid-");
        let group = self.groups.get(conversation_id).cloned();
        let now = now_ms();
        let mut data = json!({
            "conversationId": conversation_id,
            "atUsers": [],
            "chatbotCorpId": "dingcorpdouble",
            "chatbotUserId": "$:LWCP_v1:$robot",
            "msgId": self.next_id("msg"),
            "senderNick": nick,
            "isAdmin": false,
            "senderStaffId": staff_id,
            "sessionWebhookExpiredTime": now + 90 * 60 * 1000,
            "createAt": now,
            "senderCorpId": "dingcorpdouble",
            "conversationType": if group.is_some() { "2" } else { "1" },
            "senderId": format!("$:LWCP_v1:${staff_id}"),
            "isInAtList": true,
            "sessionWebhook": format!("{}/robot/sendBySession?session=double", self.base),
            // In groups the text after the @mention arrives with a leading space.
            "text": {"content": if group.is_some() { format!(" {text}") } else { text.to_string() }},
            "robotCode": self.robot_code,
            "msgtype": "text",
        });
        if let (Some(title), Some(obj)) = (group, data.as_object_mut()) {
            obj.insert("conversationTitle".into(), json!(title));
        }
        let frame = json!({
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": "double-app",
                "connectionId": format!("conn-{conn}"),
                "contentType": "application/json",
                "messageId": message_id,
                "time": now.to_string(),
                "topic": BOT_TOPIC,
            },
            "data": data.to_string(),
        });
        (message_id, frame.to_string())
    }

    pub fn ping_frame(&mut self, conn: u64) -> (String, String, String) {
        let message_id = self.next_id("ping-");
        let data = json!({"opaque": self.next_id("op-")}).to_string();
        let frame = json!({
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {
                "connectionId": format!("conn-{conn}"),
                "contentType": "application/json",
                "messageId": message_id,
                "time": now_ms().to_string(),
                "topic": "ping",
            },
            "data": data,
        });
        (message_id, frame.to_string(), data)
    }

    /// Takes an ack off the stream: `{code, headers:{messageId, contentType}, message, data}`.
    pub fn take_ack(&mut self, text: &str) {
        let Ok(doc) = serde_json::from_str::<Value>(text) else {
            self.record("ws/ack", 0, "not JSON");
            return;
        };
        let id = doc
            .pointer("/headers/messageId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let code = doc.get("code").and_then(Value::as_u64).unwrap_or(0);
        let data_is_string = doc.get("data").is_some_and(Value::is_string);
        let Some(p) = self.pending.remove(&id) else {
            self.record("ws/ack", 0, format!("unknown messageId {id:?}"));
            return;
        };
        if let Some(expected) = p.ping_data {
            let echoed = doc.get("data").and_then(Value::as_str) == Some(expected.as_str());
            if code == 200 && echoed {
                self.pings_acked += 1;
                self.record("ws/ping-ack", 0, "OK");
            } else {
                self.record(
                    "ws/ping-ack",
                    0,
                    format!("bad answer code={code} echoed={echoed}"),
                );
            }
            return;
        }
        let outcome = if code == 200 && data_is_string {
            "OK".to_string()
        } else {
            format!("code={code} data_is_string={data_is_string}")
        };
        self.record("ws/ack", 0, outcome);
    }

    /// Logs frames of `conn` whose ack is overdue and, when redelivery is on, pushes CALLBACKs again.
    pub fn overdue(&mut self, conn: u64) -> Vec<String> {
        let timeout = self.ack_timeout;
        let overdue: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.conn == conn && p.sent_at.elapsed() > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        let mut resend = Vec::new();
        for id in overdue {
            let Some(mut p) = self.pending.remove(&id) else {
                continue;
            };
            if p.ping_data.is_some() {
                self.record("ws/ping-unacked", 0, id);
                continue;
            }
            self.record("ws/unacked", 0, id.clone());
            self.unacked.push(id.clone());
            if self.redeliver && p.attempts < 3 {
                p.attempts += 1;
                p.sent_at = Instant::now();
                resend.push(p.frame.clone());
                self.pending.insert(id.clone(), p);
                self.record("ws/redelivered", 0, id);
            }
        }
        resend
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_dimensions_are_read_from_ihdr() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_info(&png), Some(("png", 640, 480)));
        assert_eq!(image_info(b"GIF89a"), None);
    }

    #[test]
    fn markdown_msg_param_needs_title_and_text() {
        let w = World::new("id", "secret");
        let body =
            json!({"robotCode": "id", "msgKey": "sampleMarkdown", "msgParam": "{\"title\":\"t\"}"});
        assert!(w.check_message(&body).is_err());
        let body = json!({"robotCode": "id", "msgKey": "sampleMarkdown", "msgParam": "{\"title\":\"t\",\"text\":\"x\"}"});
        assert!(w.check_message(&body).is_ok());
        let body = json!({"robotCode": "id", "msgKey": "markdown", "msgParam": "{}"});
        assert_eq!(
            w.check_message(&body).err().map(|e| e.code),
            Some("invalidParameter.msgKey".into())
        );
    }
}
