//! Errors of the Alibaba Cloud client (ECS, STS, BSS), named by action: Code, Message and RequestId as sent.

use std::time::Duration;

/// Everything the client and the snapshot life cycle can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with an error document.
    #[error(
        "Alibaba Cloud {action} failed: {code}: {message} (HTTP {status}, RequestId {request_id})"
    )]
    Api {
        action: String,
        status: u16,
        code: String,
        message: String,
        request_id: String,
        recommend: Option<String>,
    },
    /// A non-2xx answer without a parseable error document.
    #[error("Alibaba Cloud {action} failed: HTTP {status}: {body}")]
    Http {
        action: String,
        status: u16,
        body: String,
    },
    /// Connection, TLS or timeout failure.
    #[error("Alibaba Cloud {action}: request failed: {source}")]
    Transport {
        action: String,
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx answer whose JSON did not have the documented shape.
    #[error("Alibaba Cloud {action}: unexpected response: {message}")]
    Decode { action: String, message: String },
    #[error("no Alibaba Cloud {what} configured: set it in the provider block or via {env}")]
    MissingCredentials { what: &'static str, env: String },
    #[error("invalid Alibaba Cloud client configuration: {0}")]
    Config(String),
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    #[error("{0}")]
    NotFound(String),
    #[error("snapshot {snapshot_id} of disk {disk_id} failed (status {status})")]
    SnapshotFailed {
        snapshot_id: String,
        disk_id: String,
        status: String,
    },
}

impl Error {
    /// The API error code (`Throttling.User`, `SnapshotCreatedImage`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The RequestId of a failed API call, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// HTTP status of a failed call, if the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The error document ECS returns (`{"RequestId","HostId","Code","Message","Recommend"}`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub request_id: String,
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub recommend: Option<String>,
}

/// Turns a non-2xx response body into an [`Error`].
pub(crate) fn from_response(action: &str, status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(doc) => Error::Api {
            action: action.to_string(),
            status,
            code: doc.code,
            message: doc.message,
            request_id: doc.request_id,
            recommend: doc.recommend,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let snippet: String = text.chars().take(300).collect();
            Error::Http {
                action: action.to_string(),
                status,
                body: snippet,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_error_body_parses_into_code_message_request_id() {
        let body = br#"{"RequestId":"7B1A-REQ","HostId":"ecs.cn-hangzhou.aliyuncs.com","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation.","Recommend":"https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch"}"#;
        let err = from_response("DescribeInstances", 400, body);
        assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
        assert_eq!(err.request_id(), Some("7B1A-REQ"));
        assert_eq!(err.status(), Some(400));
        let text = err.to_string();
        assert!(
            text.contains("SignatureDoesNotMatch") && text.contains("7B1A-REQ"),
            "{text}"
        );
        assert!(text.contains("DescribeInstances"), "{text}");
    }

    #[test]
    fn non_json_error_body_keeps_status_and_a_bounded_snippet() {
        let body = "<html>".repeat(200);
        let err = from_response("DescribeDisks", 502, body.as_bytes());
        assert_eq!(err.status(), Some(502));
        assert_eq!(err.code(), None);
        assert!(err.to_string().len() < 450);
    }
}
