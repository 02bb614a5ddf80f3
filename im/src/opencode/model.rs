//! The subset of OpenCode's JSON the bridge reads (sessions, messages and parts, permissions, questions, diffs).
//! Unknown fields are ignored and most fields are optional, so a newer OpenCode that adds fields keeps working.
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Session {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub directory: String,
    #[serde(rename = "parentID", default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub time: Option<SessionTime>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct SessionTime {
    #[serde(default)]
    pub created: f64,
    #[serde(default)]
    pub updated: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SessionStatus {
    Idle,
    Busy,
    Retry {
        #[serde(default)]
        attempt: u64,
        #[serde(default)]
        message: String,
    },
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MessageWithParts {
    pub info: MessageInfo,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MessageInfo {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub role: String,
    #[serde(default)]
    pub time: MessageTime,
    /// Set on an assistant message that failed (provider error, aborted…).
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(rename = "parentID", default)]
    pub parent_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct MessageTime {
    #[serde(default)]
    pub created: f64,
    #[serde(default)]
    pub completed: Option<f64>,
}

/// One part of a message. Only text and tool parts matter to the chat; the rest is kept as raw JSON.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Part {
    pub id: String,
    #[serde(rename = "messageID", default)]
    pub message_id: String,
    #[serde(rename = "sessionID", default)]
    pub session_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub synthetic: Option<bool>,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub state: Option<ToolState>,
    #[serde(default)]
    pub time: Option<Value>,
    /// `file` parts: a data: or file URL with the mime type (images the agent produced).
    #[serde(default)]
    pub mime: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ToolState {
    pub status: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PermissionRequest {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// What is asked for: `bash`, `edit`, `external_directory`, `webfetch`…
    pub permission: String,
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub metadata: Value,
    #[serde(default)]
    pub always: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionReply {
    Once,
    Always,
    Reject,
}

impl PermissionReply {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionReply::Once => "once",
            PermissionReply::Always => "always",
            PermissionReply::Reject => "reject",
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct QuestionRequest {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub questions: Vec<QuestionInfo>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct QuestionInfo {
    pub question: String,
    #[serde(default)]
    pub header: String,
    #[serde(default)]
    pub options: Vec<QuestionOption>,
    #[serde(default)]
    pub multiple: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct QuestionOption {
    pub label: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct FileDiff {
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub patch: String,
    #[serde(default)]
    pub additions: f64,
    #[serde(default)]
    pub deletions: f64,
    #[serde(default)]
    pub status: Option<String>,
}
