//! OpenCode's `/event` server-sent event stream, decoded into the events the bridge acts on.
use std::pin::Pin;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::{MessageInfo, Part, PermissionRequest, QuestionRequest, SessionStatus};

/// An event of the stream. Anything the bridge does not act on is [`Event::Other`] (it still proves the stream
/// is alive, like the server's heartbeats).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connected,
    Heartbeat,
    Status {
        session: String,
        status: SessionStatus,
    },
    Idle {
        session: String,
    },
    /// A session's info changed (its title, once OpenCode named it).
    SessionUpdated {
        session: String,
        title: String,
    },
    MessageUpdated {
        session: String,
        info: Box<MessageInfo>,
    },
    PartUpdated {
        session: String,
        part: Box<Part>,
    },
    PartDelta {
        session: String,
        message: String,
        part: String,
        field: String,
        delta: String,
    },
    PermissionAsked(Box<PermissionRequest>),
    PermissionReplied {
        session: String,
        request: String,
        reply: String,
    },
    QuestionAsked(Box<QuestionRequest>),
    /// A question answered or rejected (anywhere: the browser, another chat user).
    QuestionClosed {
        session: String,
        request: String,
    },
    SessionError {
        session: Option<String>,
        error: Value,
    },
    Other(String),
}

impl Event {
    /// Decodes one event's JSON (`{"type": ..., "properties": {...}}`). An event of a known type whose
    /// properties do not match is reported as an error rather than silently dropped.
    pub fn parse(data: &str) -> Result<Event, String> {
        let v: Value =
            serde_json::from_str(data).map_err(|e| format!("an event is not JSON: {e}"))?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let p = v.get("properties").cloned().unwrap_or(Value::Null);
        let s = |k: &str| {
            p.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(match kind.as_str() {
            "server.connected" => Event::Connected,
            "server.heartbeat" => Event::Heartbeat,
            "session.status" => Event::Status {
                session: s("sessionID"),
                status: serde_json::from_value(p.get("status").cloned().unwrap_or(Value::Null))
                    .map_err(|e| format!("a session.status event: {e}"))?,
            },
            "session.idle" => Event::Idle {
                session: s("sessionID"),
            },
            "session.updated" | "session.created" => Event::SessionUpdated {
                session: p
                    .pointer("/info/id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| s("sessionID")),
                title: p
                    .pointer("/info/title")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
            "message.updated" => Event::MessageUpdated {
                session: s("sessionID"),
                info: Box::new(typed(&kind, p.get("info").cloned().unwrap_or(Value::Null))?),
            },
            "message.part.updated" => Event::PartUpdated {
                session: s("sessionID"),
                part: Box::new(typed(&kind, p.get("part").cloned().unwrap_or(Value::Null))?),
            },
            "message.part.delta" => Event::PartDelta {
                session: s("sessionID"),
                message: s("messageID"),
                part: s("partID"),
                field: s("field"),
                delta: s("delta"),
            },
            "permission.asked" => Event::PermissionAsked(Box::new(typed(&kind, p)?)),
            "permission.replied" => Event::PermissionReplied {
                session: s("sessionID"),
                request: s("requestID"),
                reply: s("reply"),
            },
            "question.asked" => Event::QuestionAsked(Box::new(typed(&kind, p)?)),
            "question.replied" | "question.rejected" => Event::QuestionClosed {
                session: s("sessionID"),
                request: s("requestID"),
            },
            "session.error" => Event::SessionError {
                session: p
                    .get("sessionID")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                error: p.get("error").cloned().unwrap_or(Value::Null),
            },
            _ => Event::Other(kind),
        })
    }
}

fn typed<T: serde::de::DeserializeOwned>(kind: &str, val: Value) -> Result<T, String> {
    serde_json::from_value(val).map_err(|e| format!("a {kind} event: {e}"))
}

type Inner = Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// The open stream. `next` yields events until the connection ends (`None`) or breaks (`Some(Err)`).
pub struct EventStream {
    inner: Inner,
}

impl EventStream {
    pub(super) fn new(resp: reqwest::Response) -> Self {
        let inner = resp.bytes_stream().eventsource().map(|item| match item {
            Ok(ev) => Event::parse(&ev.data),
            Err(e) => Err(format!("the event stream broke: {e}")),
        });
        EventStream {
            inner: Box::pin(inner),
        }
    }

    pub async fn next(&mut self) -> Option<Result<Event, String>> {
        self.inner.next().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_busy_and_idle_decode() {
        let busy = r#"{"id":"evt_1","type":"session.status","properties":{"sessionID":"ses_a","status":{"type":"busy"}}}"#;
        assert_eq!(
            Event::parse(busy).unwrap(),
            Event::Status {
                session: "ses_a".into(),
                status: SessionStatus::Busy
            }
        );
        let idle = r#"{"type":"session.idle","properties":{"sessionID":"ses_a"}}"#;
        assert_eq!(
            Event::parse(idle).unwrap(),
            Event::Idle {
                session: "ses_a".into()
            }
        );
    }

    #[test]
    fn permission_asked_keeps_its_id_and_patterns() {
        let j = r#"{"type":"permission.asked","properties":{"id":"per_1","sessionID":"ses_a","permission":"bash",
            "patterns":["echo hi"],"metadata":{"command":"echo hi"},"always":["echo *"],"tool":{"messageID":"msg_1","callID":"c1"}}}"#;
        match Event::parse(j).unwrap() {
            Event::PermissionAsked(p) => {
                assert_eq!((p.id.as_str(), p.permission.as_str()), ("per_1", "bash"));
                assert_eq!(p.patterns, vec!["echo hi".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_known_event_with_wrong_properties_is_an_error_not_a_silent_drop() {
        let j = r#"{"type":"session.status","properties":{"sessionID":"ses_a","status":{"type":"sleeping"}}}"#;
        assert!(Event::parse(j).unwrap_err().contains("session.status"));
    }

    #[test]
    fn unknown_events_are_other() {
        assert_eq!(
            Event::parse(r#"{"type":"lsp.updated","properties":{}}"#).unwrap(),
            Event::Other("lsp.updated".into())
        );
    }
}
