//! OpenCode's HTTP server API as the bridge uses it: prompts, sessions, permissions, questions and the event stream.
//!
//! Only the routes of the pinned OpenCode 1.18.33 that its `/doc` lists are used (the older, stable family, not the
//! newer `/api/...` one): `POST /session/:id/prompt_async` (never the blocking message call), `/abort`,
//! `/session/status`, `/session/:id/message`, `/diff`, `/event`, `/permission/:id/reply`, `/question/:id/reply`.
mod events;
mod model;

pub use events::{Event, EventStream};
pub use model::*;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum OpencodeError {
    #[error("OpenCode at {url} cannot be reached: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("OpenCode refused {what} with HTTP {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("OpenCode answered {what} with something unexpected: {detail}")]
    Malformed { what: String, detail: String },
    #[error("OpenCode has no {what}")]
    NotFound { what: String },
    #[error("OpenCode at {url} did not answer {what} within {after:?}")]
    Silent {
        url: String,
        what: String,
        after: Duration,
    },
}

/// How long the event stream may take to answer with its headers. A server still starting can accept the
/// connection and never answer that request; without a bound the bridge waited on it forever, deaf to every event.
const EVENT_STREAM_OPEN: Duration = Duration::from_secs(10);

/// A client of one OpenCode server (one box's devbox).
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// `OPENCODE_SERVER_PASSWORD` when the server asks for one (user `opencode`).
    password: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(base: &str, password: Option<String>) -> Result<Self, OpencodeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // No overall timeout here: the event stream is long-lived. Each call sets its own.
            .build()
            .map_err(|e| OpencodeError::Unreachable {
                url: base.into(),
                source: e,
            })?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
            password,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{}", self.base, path));
        match &self.password {
            Some(p) => rb.basic_auth("opencode", Some(p)),
            None => rb,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        rb: RequestBuilder,
    ) -> Result<T, OpencodeError> {
        let resp = rb
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| OpencodeError::Unreachable {
                url: self.base.clone(),
                source: e,
            })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| OpencodeError::Unreachable {
            url: self.base.clone(),
            source: e,
        })?;
        if status == StatusCode::NOT_FOUND {
            return Err(OpencodeError::NotFound { what: what.into() });
        }
        if !status.is_success() {
            return Err(OpencodeError::Refused {
                what: what.into(),
                status: status.as_u16(),
                body: truncate(&body, 300),
            });
        }
        let body = if body.trim().is_empty() {
            "null"
        } else {
            body.as_str()
        };
        serde_json::from_str(body).map_err(|e| OpencodeError::Malformed {
            what: what.into(),
            detail: e.to_string(),
        })
    }

    /// `GET /global/health`: is the server up (and which version).
    pub async fn health(&self) -> Result<Value, OpencodeError> {
        self.call("health", self.request(Method::GET, "/global/health"))
            .await
    }

    pub async fn sessions(&self) -> Result<Vec<Session>, OpencodeError> {
        self.call("the session list", self.request(Method::GET, "/session"))
            .await
    }

    pub async fn session(&self, id: &str) -> Result<Session, OpencodeError> {
        self.call(
            &format!("session {id}"),
            self.request(Method::GET, &format!("/session/{id}")),
        )
        .await
    }

    pub async fn create_session(&self, title: Option<&str>) -> Result<Session, OpencodeError> {
        let body = match title {
            Some(t) => json!({ "title": t }),
            None => json!({}),
        };
        self.call(
            "a new session",
            self.request(Method::POST, "/session").json(&body),
        )
        .await
    }

    pub async fn rename_session(&self, id: &str, title: &str) -> Result<Session, OpencodeError> {
        let rb = self
            .request(Method::PATCH, &format!("/session/{id}"))
            .json(&json!({ "title": title }));
        self.call(&format!("renaming session {id}"), rb).await
    }

    /// `POST /session/:id/prompt_async` with a message id chosen by the bridge, so a prompt whose answer was lost
    /// can be looked up instead of being sent twice ([`Client::has_message`]).
    pub async fn prompt_async(
        &self,
        session: &str,
        message_id: &str,
        text: &str,
    ) -> Result<(), OpencodeError> {
        let body = json!({ "messageID": message_id, "parts": [{ "type": "text", "text": text }] });
        let rb = self
            .request(Method::POST, &format!("/session/{session}/prompt_async"))
            .json(&body);
        let _: Value = self
            .call(&format!("the prompt for session {session}"), rb)
            .await?;
        Ok(())
    }

    pub async fn has_message(
        &self,
        session: &str,
        message_id: &str,
    ) -> Result<bool, OpencodeError> {
        let rb = self.request(
            Method::GET,
            &format!("/session/{session}/message/{message_id}"),
        );
        match self.call::<Value>("a message", rb).await {
            Ok(_) => Ok(true),
            Err(OpencodeError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn abort(&self, session: &str) -> Result<bool, OpencodeError> {
        self.call(
            &format!("aborting session {session}"),
            self.request(Method::POST, &format!("/session/{session}/abort")),
        )
        .await
    }

    /// `GET /session/status`: the sessions that are not idle (busy or retrying), by id.
    pub async fn status(
        &self,
    ) -> Result<std::collections::BTreeMap<String, SessionStatus>, OpencodeError> {
        self.call(
            "the session status",
            self.request(Method::GET, "/session/status"),
        )
        .await
    }

    /// The newest `limit` messages of a session, oldest first.
    pub async fn messages(
        &self,
        session: &str,
        limit: usize,
    ) -> Result<Vec<MessageWithParts>, OpencodeError> {
        let rb = self
            .request(Method::GET, &format!("/session/{session}/message"))
            .query(&[("limit", limit)]);
        self.call(&format!("the messages of session {session}"), rb)
            .await
    }

    pub async fn diff(&self, session: &str) -> Result<Vec<FileDiff>, OpencodeError> {
        self.call(
            &format!("the diff of session {session}"),
            self.request(Method::GET, &format!("/session/{session}/diff")),
        )
        .await
    }

    pub async fn permissions(&self) -> Result<Vec<PermissionRequest>, OpencodeError> {
        self.call(
            "the pending permissions",
            self.request(Method::GET, "/permission"),
        )
        .await
    }

    pub async fn reply_permission(
        &self,
        id: &str,
        reply: PermissionReply,
        feedback: Option<&str>,
    ) -> Result<(), OpencodeError> {
        let mut body = json!({ "reply": reply.as_str() });
        if let Some(m) = feedback.filter(|m| !m.trim().is_empty()) {
            body["message"] = Value::String(m.to_string());
        }
        let rb = self
            .request(Method::POST, &format!("/permission/{id}/reply"))
            .json(&body);
        let _: Value = self
            .call(&format!("the reply to permission {id}"), rb)
            .await?;
        Ok(())
    }

    pub async fn questions(&self) -> Result<Vec<QuestionRequest>, OpencodeError> {
        self.call(
            "the pending questions",
            self.request(Method::GET, "/question"),
        )
        .await
    }

    /// Answers a question: one list of chosen labels per question, in order.
    pub async fn reply_question(
        &self,
        id: &str,
        answers: &[Vec<String>],
    ) -> Result<(), OpencodeError> {
        let rb = self
            .request(Method::POST, &format!("/question/{id}/reply"))
            .json(&json!({ "answers": answers }));
        let _: Value = self
            .call(&format!("the answer to question {id}"), rb)
            .await?;
        Ok(())
    }

    pub async fn reject_question(&self, id: &str) -> Result<(), OpencodeError> {
        let rb = self.request(Method::POST, &format!("/question/{id}/reject"));
        let _: Value = self.call(&format!("rejecting question {id}"), rb).await?;
        Ok(())
    }

    /// Opens `GET /event` (server-sent events). The stream has no replay: whoever reconnects rebuilds its view
    /// from [`Client::status`], [`Client::messages`], [`Client::permissions`] and [`Client::questions`].
    pub async fn events(&self) -> Result<EventStream, OpencodeError> {
        self.events_within(EVENT_STREAM_OPEN).await
    }

    /// [`Client::events`] with the bound on its answer given.
    pub async fn events_within(&self, open: Duration) -> Result<EventStream, OpencodeError> {
        let send = self
            .request(Method::GET, "/event")
            .header("accept", "text/event-stream")
            .send();
        let resp = tokio::time::timeout(open, send)
            .await
            .map_err(|_| OpencodeError::Silent {
                url: self.base.clone(),
                what: "the event stream".into(),
                after: open,
            })?
            .map_err(|e| OpencodeError::Unreachable {
                url: self.base.clone(),
                source: e,
            })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            return Err(OpencodeError::Refused {
                what: "the event stream".into(),
                status,
                body: truncate(&body, 300),
            });
        }
        Ok(EventStream::new(resp))
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A message id of OpenCode's shape (`msg_` + 12 hex digits of time + 14 base62 characters) that sorts after the
/// messages already in the session, as OpenCode's own ascending ids do.
pub fn new_message_id() -> String {
    use rand::Rng;
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let n = (ms as u64).wrapping_mul(0x1000) & 0xffff_ffff_ffff;
    let mut rng = rand::rng();
    let tail: String = (0..14)
        .map(|_| B62[rng.random_range(0..B62.len())] as char)
        .collect();
    format!("msg_{n:012x}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: OpenCode still starting accepted the bridge's `/event` connection and never answered it; the
    /// bridge waited forever and delivered nothing (im_stack, CI 2026-12-03).
    #[tokio::test]
    async fn an_event_stream_that_never_answers_is_given_up_not_waited_on_forever() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and reads, never answers.
        let server = tokio::spawn(async move {
            let mut held = vec![];
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                held.push(sock);
            }
        });
        let client = Client::new(&format!("http://{addr}"), None).unwrap();
        let started = std::time::Instant::now();
        let err = match client.events_within(Duration::from_millis(300)).await {
            Err(e) => e,
            Ok(_) => panic!("a server that never answered gave an event stream"),
        };
        assert!(matches!(err, OpencodeError::Silent { .. }), "{err}");
        assert!(
            err.to_string().contains("did not answer the event stream"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        server.abort();
    }
}
