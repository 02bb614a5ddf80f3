//! DingTalk Stream and robot OpenAPI contract double (what it checks: docs/engineering/im-dingtalk.md).

// One local HTTP server plays api.dingtalk.com (`/v1.0/...`), oapi.dingtalk.com (under `/oapi`) and the Stream
// gateway (`/connect`, a WebSocket). It runs on its own thread and Tokio runtime, like the ECS double, so a test
// may block without starving it; dropping the handle stops it.

mod server;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use state::{Call, SentImage, SentMessage, BOT_TOPIC, MARKDOWN_MAX_CHARS, MSG_PARAM_MAX_BYTES};

use state::{lock, Pending, Push, Shared, World};

use crate::double_server::DoubleServer;

/// A running double.
pub struct DingTalkDouble {
    addr: SocketAddr,
    shared: Shared,
    server: Option<DoubleServer>,
}

impl DingTalkDouble {
    pub const CLIENT_ID: &'static str = "dingdoubleclientid";
    pub const CLIENT_SECRET: &'static str = "double-client-secret-0123456789";

    /// Starts on `bind` (e.g. `127.0.0.1:0`).
    pub fn start(bind: &str) -> std::io::Result<Self> {
        let shared: Shared = Arc::new(Mutex::new(World::new(Self::CLIENT_ID, Self::CLIENT_SECRET)));
        let bind: std::net::SocketAddr = bind.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{bind}: {e}"))
        })?;
        let app = server::router(shared.clone());
        let server = DoubleServer::axum("dingtalk-double", bind, 1, app)?;
        let addr = server.addr();
        lock(&shared).base = format!("http://{addr}");
        Ok(Self {
            addr,
            shared,
            server: Some(server),
        })
    }

    /// Stands in for `https://api.dingtalk.com`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stands in for `https://oapi.dingtalk.com`.
    pub fn oapi_base(&self) -> String {
        format!("http://{}/oapi", self.addr)
    }

    pub fn client_id(&self) -> &'static str {
        Self::CLIENT_ID
    }

    pub fn client_secret(&self) -> &'static str {
        Self::CLIENT_SECRET
    }

    /// The robot code sends must carry (the client id, as for an internal app's robot).
    pub fn robot_code(&self) -> String {
        lock(&self.shared).robot_code.clone()
    }

    /// Makes `conversation_id` a group the robot is in (messages there have conversationType "2").
    pub fn add_group(&self, conversation_id: &str, title: &str) {
        lock(&self.shared)
            .groups
            .insert(conversation_id.into(), title.into());
    }

    /// Makes `staff_id` a user the robot can message without having heard from them.
    pub fn add_staff(&self, staff_id: &str) {
        lock(&self.shared).staff.insert(staff_id.into());
    }

    /// A user writes to the robot: pushes a CALLBACK frame on the newest open stream. Returns the frame's
    /// messageId, or an error when no stream is open.
    pub fn user_says(
        &self,
        conversation_id: &str,
        staff_id: &str,
        nick: &str,
        text: &str,
    ) -> Result<String, String> {
        let mut w = lock(&self.shared);
        let Some((conn, tx)) = w.conns.last().map(|c| (c.id, c.tx.clone())) else {
            return Err("no Stream connection is open".into());
        };
        w.staff.insert(staff_id.into());
        let (id, frame) = w.robot_frame(conn, conversation_id, staff_id, nick, text);
        w.pending.insert(
            id.clone(),
            Pending {
                frame: frame.clone(),
                conn,
                sent_at: Instant::now(),
                attempts: 1,
                ping_data: None,
            },
        );
        tx.send(Push::Frame(frame))
            .map_err(|_| "the stream just closed".to_string())?;
        Ok(id)
    }

    /// Pushes a SYSTEM disconnect on every open stream (the server's graceful hand-over).
    pub fn send_disconnect(&self) -> usize {
        let w = lock(&self.shared);
        let frame = serde_json::json!({
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {"topic": "disconnect", "contentType": "application/json", "messageId": "disconnect"},
            "data": "{\"reason\":\"connection is expired\"}",
        })
        .to_string();
        w.conns
            .iter()
            .filter(|c| c.tx.send(Push::Frame(frame.clone())).is_ok())
            .count()
    }

    /// Drops every open stream without a close handshake; returns how many there were.
    pub fn drop_stream(&self) -> usize {
        let w = lock(&self.shared);
        w.conns
            .iter()
            .filter(|c| c.tx.send(Push::Drop).is_ok())
            .count()
    }

    /// Open Stream connections.
    pub fn connections(&self) -> usize {
        lock(&self.shared).conns.len()
    }

    /// Messages the robot sent to `target` (a staff id or an openConversationId), in order.
    pub fn sent(&self, target: &str) -> Vec<SentMessage> {
        lock(&self.shared)
            .sent
            .iter()
            .filter(|m| m.target == target)
            .cloned()
            .collect()
    }

    /// Every request and stream event, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared).calls.clone()
    }

    pub fn calls_of(&self, api: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.api == api).collect()
    }

    /// Fails the next `n` calls of `api` (`connections/open`, `accessToken`, `batchSend`, `groupMessages/send`,
    /// `media/upload`) with `status` (429 as DingTalk's QPS limit, 5xx as a server failure).
    pub fn fail_next(&self, api: &str, n: u32, status: u16) {
        lock(&self.shared).faults.insert(api.into(), (n, status));
    }

    /// How often each new stream is pinged (default 10 s).
    pub fn set_ping_interval(&self, every: Duration) {
        lock(&self.shared).ping_interval = every;
    }

    /// How long a pushed frame may wait for its ack before it counts as unacked (default 5 s).
    pub fn set_ack_timeout(&self, timeout: Duration) {
        lock(&self.shared).ack_timeout = timeout;
    }

    /// Redelivers an unacked CALLBACK (up to 3 times). Off by default: DingTalk documents robot messages as
    /// fire-and-forget and only event pushes as redelivered.
    pub fn set_redeliver(&self, on: bool) {
        lock(&self.shared).redeliver = on;
    }

    /// messageIds of CALLBACK frames that went unacked past the timeout.
    pub fn unacked(&self) -> Vec<String> {
        lock(&self.shared).unacked.clone()
    }

    /// Pings answered with the right messageId and echoed data.
    pub fn pings_acked(&self) -> usize {
        lock(&self.shared).pings_acked
    }
}

impl Drop for DingTalkDouble {
    fn drop(&mut self) {
        {
            let w = lock(&self.shared);
            for c in &w.conns {
                let _ = c.tx.send(Push::Drop);
            }
        }
        drop(self.server.take());
    }
}
