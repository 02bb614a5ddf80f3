//! An OpenAI-compatible chat-completions double for OpenCode: scripted streamed answers and tool calls, a request log.
//!
//! OpenCode 1.18 calls `POST {baseURL}/chat/completions` with `stream: true` for everything, including title
//! generation (recognised here by its system prompt, answered without touching the script). The answer for a
//! model call is chosen by the first rule whose needle occurs in the last user message; which step of that
//! rule is used is the number of assistant messages after that user message (each tool round trip adds
//! one), so the double keeps no per-turn state and concurrent sessions do not disturb each other.
//! It runs on its own thread and Tokio runtime; dropping the handle stops it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::double_server::DoubleServer;

/// The model id the double serves (`provider/model` in OpenCode is `<provider id>/double`).
pub const MODEL_ID: &str = "double";
/// The title the double gives every session (OpenCode's title-generation call).
pub const TITLE: &str = "Double session title";
/// The answer to any other auxiliary call without tools (e.g. a compaction summary).
pub const SUMMARY: &str = "Summary: the user talked to the LLM double.";

/// Needles of the built-in rules (put one in a prompt to get the canned answer).
pub const TRIGGER_LONG: &str = "@double:long";
pub const TRIGGER_CODE: &str = "@double:code";
pub const TRIGGER_DIFF: &str = "@double:diff";
pub const TRIGGER_SLOW: &str = "@double:slow";
pub const TRIGGER_CUT: &str = "@double:cut";

/// What the double answers to one model call.
#[derive(Debug, Clone)]
pub enum Step {
    /// Streamed text (in chunks of about 16 characters), `finish_reason: "stop"`.
    Text(String),
    /// One streamed tool call (arguments sent in pieces), `finish_reason: "tool_calls"`.
    ToolCall { name: String, args: Value },
    /// Text streamed in `chunk_chars` pieces with `delay` before each piece, then `stop`.
    Slow {
        text: String,
        chunk_chars: usize,
        delay: Duration,
    },
    /// Streams `text`, then drops the connection without `finish_reason` or `[DONE]`.
    Cut(String),
    /// An HTTP error in OpenAI's error format instead of a stream.
    Error { status: u16, message: String },
}

impl Step {
    pub fn text(s: impl Into<String>) -> Self {
        Step::Text(s.into())
    }

    pub fn tool(name: impl Into<String>, args: Value) -> Self {
        Step::ToolCall {
            name: name.into(),
            args,
        }
    }

    /// `bash` with a command and OpenCode's required description.
    pub fn bash(command: &str) -> Self {
        Step::tool(
            "bash",
            json!({"command": command, "description": format!("Run {command}")}),
        )
    }
}

/// One request the double received (also unauthorised or malformed ones).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Whether `Authorization: Bearer <key>` matched.
    pub authorized: bool,
    /// The JSON body (`Value::Null` when absent or not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// A title/summary call (no `tools`), as opposed to an agent turn.
    pub fn is_auxiliary(&self) -> bool {
        self.body.get("messages").is_some() && self.body.get("tools").is_none()
    }
}

struct Rule {
    needle: String,
    steps: Vec<Step>,
}

struct Inner {
    api_key: String,
    rules: Vec<Rule>,
    log: Vec<RecordedRequest>,
    next_call: u64,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running double; see the module docs.
pub struct LlmDouble {
    addr: SocketAddr,
    shared: Shared,
    _server: DoubleServer,
}

impl LlmDouble {
    /// Listens on `bind` (port 0 for an ephemeral one) and accepts `Authorization: Bearer <api_key>`.
    pub fn start(bind: SocketAddr, api_key: &str) -> std::io::Result<Self> {
        let shared: Shared = Arc::new(Mutex::new(Inner {
            api_key: api_key.to_string(),
            rules: builtin_rules(),
            log: Vec::new(),
            next_call: 0,
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = DoubleServer::axum("llm-double", bind, 1, app)?;
        let addr = server.addr();
        Ok(Self {
            addr,
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>/v1` — OpenCode's `options.baseURL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> String {
        lock(&self.shared).api_key.clone()
    }

    /// The model id to configure (`MODEL_ID`).
    pub fn model_id(&self) -> &'static str {
        MODEL_ID
    }

    /// When the last user message contains `needle`, answer the successive model calls of that turn with
    /// `steps` (the last step repeats if OpenCode calls again). Rules added later win over earlier ones and
    /// over the built-in triggers.
    pub fn when(&self, needle: &str, steps: Vec<Step>) {
        lock(&self.shared).rules.insert(
            0,
            Rule {
                needle: needle.to_string(),
                steps,
            },
        );
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).log.clone()
    }

    /// The bodies of the agent-turn chat requests (title/summary calls left out).
    pub fn turn_requests(&self) -> Vec<Value> {
        lock(&self.shared)
            .log
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions") && !r.is_auxiliary())
            .map(|r| r.body.clone())
            .collect()
    }

    /// Whether any logged request body contains `needle` anywhere (e.g. a permission's feedback).
    pub fn any_request_contains(&self, needle: &str) -> bool {
        lock(&self.shared)
            .log
            .iter()
            .any(|r| contains_str(&r.body, needle))
    }
}

fn contains_str(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|x| contains_str(x, needle)),
        Value::Object(o) => o.values().any(|x| contains_str(x, needle)),
        _ => false,
    }
}

/// The canned answers of the built-in triggers.
pub mod canned {
    /// A > 4096-character answer: several paragraphs with a fenced code block in the middle.
    pub fn long_answer() -> String {
        let para = |i: usize| {
            format!(
                "Paragraph {i}. The bridge must split long answers at paragraph boundaries where it can, keep \
                 each piece under the chat platform's limit and never cut a code fence in half. This sentence \
                 pads the paragraph so that the whole answer comfortably exceeds four thousand characters."
            )
        };
        let mut out = String::new();
        for i in 1..=10 {
            out.push_str(&para(i));
            out.push_str("\n\n");
        }
        out.push_str("```python\ndef greet(name):\n    return f\"hello {name}\"\n\nprint(greet(\"world\"))\n```\n\n");
        for i in 11..=20 {
            out.push_str(&para(i));
            out.push_str("\n\n");
        }
        out.push_str("End of the long answer.");
        out
    }

    /// A 60-line Rust program in a ```rust fence (60 lines between the fences).
    pub fn rust_code_block() -> String {
        let mut out = String::from("Here is the code:\n\n```rust\n");
        out.push_str("fn main() {\n");
        for i in 1..=58 {
            out.push_str(&format!("    println!(\"line {i:02}\");\n"));
        }
        out.push_str("}\n```\n");
        out
    }

    /// A unified diff in a ```diff fence.
    pub fn unified_diff() -> String {
        "I changed the greeting:\n\n```diff\n--- a/src/main.rs\n+++ b/src/main.rs\n@@ -1,5 +1,6 @@\n fn main() {\n-    println!(\"hello\");\n+    let name = \"world\";\n+    println!(\"hello {name}\");\n }\n \n fn unused() {}\n```\n".to_string()
    }

    /// The text of the slow trigger: 20 numbered sentences.
    pub fn slow_text() -> String {
        (1..=20).map(|i| format!("Slow sentence {i}. ")).collect()
    }
}

fn builtin_rules() -> Vec<Rule> {
    vec![
        Rule {
            needle: TRIGGER_LONG.into(),
            steps: vec![Step::Text(canned::long_answer())],
        },
        Rule {
            needle: TRIGGER_CODE.into(),
            steps: vec![Step::Text(canned::rust_code_block())],
        },
        Rule {
            needle: TRIGGER_DIFF.into(),
            steps: vec![Step::Text(canned::unified_diff())],
        },
        Rule {
            needle: TRIGGER_SLOW.into(),
            steps: vec![Step::Slow {
                text: canned::slow_text(),
                chunk_chars: 20,
                delay: Duration::from_millis(500),
            }],
        },
        Rule {
            needle: TRIGGER_CUT.into(),
            steps: vec![Step::Cut("This answer will be cut off in the".into())],
        },
    ]
}

/// The text of a chat message's `content` (a string, or an array of `{type:"text",text}` parts).
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The last user message's text and how many assistant messages follow it.
fn turn_position(messages: &[Value]) -> (String, usize) {
    let mut after = 0;
    for m in messages.iter().rev() {
        match m.get("role").and_then(Value::as_str) {
            Some("user") => return (content_text(m.get("content")), after),
            Some("assistant") => after += 1,
            _ => {}
        }
    }
    (String::new(), after)
}

fn system_text(messages: &[Value]) -> String {
    messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("system"))
        .map(|m| content_text(m.get("content")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorized = {
        let inner = lock(&shared);
        let expected = format!("Bearer {}", inner.api_key);
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
    };
    lock(&shared).log.push(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        authorized,
        body: json_body.clone(),
    });
    if !authorized {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        );
    }
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/v1/models") => axum::Json(json!({
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "llm-double"}]
        }))
        .into_response(),
        ("POST", "/v1/chat/completions") => chat(&shared, &body, json_body),
        _ => openai_error(
            StatusCode::NOT_FOUND,
            &format!("Unknown route {method} {path}"),
            "invalid_request_error",
            None,
        ),
    }
}

fn bad_request(message: &str) -> Response {
    openai_error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        None,
    )
}

fn chat(shared: &Shared, raw: &Bytes, body: Value) -> Response {
    if body.is_null() {
        let msg = if raw.is_empty() {
            "We could not parse the JSON body of your request."
        } else {
            "Invalid JSON body."
        };
        return bad_request(msg);
    }
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return bad_request("you must provide a model parameter");
    };
    let Some(messages) = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return bad_request("'messages' must be a non-empty array");
    };
    if messages
        .iter()
        .any(|m| m.get("role").and_then(Value::as_str).is_none())
    {
        return bad_request("every message needs a 'role'");
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad_request("'stream' must be a boolean"),
    };
    let model = model.to_string();
    let has_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let step = if has_tools {
        let (user, index) = turn_position(messages);
        let inner = lock(shared);
        match inner
            .rules
            .iter()
            .find(|r| !r.needle.is_empty() && user.contains(&r.needle))
        {
            Some(rule) if !rule.steps.is_empty() => {
                rule.steps[index.min(rule.steps.len() - 1)].clone()
            }
            _ => Step::Text(format!("You said: {user}")),
        }
    } else if system_text(messages).to_lowercase().contains("title") {
        Step::Text(TITLE.to_string())
    } else {
        Step::Text(SUMMARY.to_string())
    };
    let call_no = {
        let mut inner = lock(shared);
        inner.next_call += 1;
        inner.next_call
    };
    if let Step::Error { status, message } = &step {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return openai_error(status, message, "server_error", None);
    }
    if stream {
        stream_response(model, call_no, step)
    } else {
        complete_response(&model, call_no, &step)
    }
}

fn complete_response(model: &str, call_no: u64, step: &Step) -> Response {
    let (message, finish) = match step {
        Step::ToolCall { name, args } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{call_no}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]}),
            "tool_calls",
        ),
        Step::Text(t) | Step::Slow { text: t, .. } | Step::Cut(t) => {
            (json!({"role": "assistant", "content": t}), "stop")
        }
        Step::Error { .. } => (json!({"role": "assistant", "content": ""}), "stop"),
    };
    axum::Json(json!({
        "id": format!("chatcmpl-double-{call_no}"), "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .into_response()
}

/// Splits on character boundaries into pieces of at most `n` characters.
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

fn stream_response(model: String, call_no: u64, step: Step) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let id = format!("chatcmpl-double-{call_no}");
        let chunk = |delta: Value, finish: Option<&str>| {
            let c = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            Ok::<_, std::io::Error>(Bytes::from(format!("data: {c}\n\n")))
        };
        // Each send fails once the client went away (abort): stop quietly.
        macro_rules! send {
            ($e:expr) => {
                if tx.send($e).await.is_err() {
                    return;
                }
            };
        }
        send!(chunk(json!({"role": "assistant", "content": ""}), None));
        let finish = match step {
            Step::Text(t) => {
                for p in pieces(&t, 16) {
                    send!(chunk(json!({"content": p}), None));
                }
                "stop"
            }
            Step::Slow {
                text,
                chunk_chars,
                delay,
            } => {
                for p in pieces(&text, chunk_chars) {
                    tokio::time::sleep(delay).await;
                    send!(chunk(json!({"content": p}), None));
                }
                "stop"
            }
            Step::Cut(t) => {
                for p in pieces(&t, 16) {
                    send!(chunk(json!({"content": p}), None));
                }
                let _ = tx
                    .send(Err(std::io::Error::other("llm double cut the stream")))
                    .await;
                return;
            }
            Step::ToolCall { name, args } => {
                send!(chunk(
                    json!({"tool_calls": [{"index": 0, "id": format!("call_{call_no}"), "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    None
                ));
                for p in pieces(&args.to_string(), 12) {
                    send!(chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                        None
                    ));
                }
                "tool_calls"
            }
            Step::Error { .. } => "stop",
        };
        send!(chunk(json!({}), Some(finish)));
        let usage = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
        send!(Ok(Bytes::from(format!("data: {usage}\n\n"))));
        send!(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test";

    fn double() -> LlmDouble {
        LlmDouble::start("127.0.0.1:0".parse().expect("addr"), KEY).expect("start double")
    }

    fn turn(user: &str) -> Value {
        json!({"model": MODEL_ID, "stream": true, "tools": [{"type": "function", "function": {"name": "bash"}}],
            "messages": [{"role": "system", "content": "You are opencode"}, {"role": "user", "content": user}]})
    }

    async fn post(d: &LlmDouble, key: &str, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/chat/completions", d.base_url()))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// The `data:` payloads of an SSE body, `[DONE]` included as a string.
    async fn sse(resp: reqwest::Response) -> Vec<Value> {
        let text = resp.text().await.expect("body");
        text.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_string())))
            .collect()
    }

    fn streamed_text(events: &[Value]) -> String {
        events
            .iter()
            .filter_map(|e| {
                e.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
            })
            .collect()
    }

    fn finish(events: &[Value]) -> Option<String> {
        events.iter().find_map(|e| {
            e.pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    #[tokio::test]
    async fn wrong_key_gets_openai_401_and_is_logged() {
        let d = double();
        let r = post(&d, "sk-wrong", &turn("hi")).await;
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        let log = d.requests();
        assert_eq!(log.len(), 1);
        assert!(!log[0].authorized);
    }

    #[tokio::test]
    async fn lists_the_model() {
        let d = double();
        let r = reqwest::Client::new()
            .get(format!("{}/models", d.base_url()))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("send");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["data"][0]["id"], MODEL_ID);
    }

    #[tokio::test]
    async fn malformed_requests_get_400() {
        let d = double();
        for body in [
            json!({"messages": []}),
            json!({"model": "double"}),
            json!({"model": "double", "messages": [{}]}),
            json!({"model": "double", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
        ] {
            let r = post(&d, KEY, &body).await;
            assert_eq!(r.status(), 400, "{body}");
            let e: Value = r.json().await.expect("json");
            assert_eq!(e["error"]["type"], "invalid_request_error");
        }
        let r = reqwest::Client::new()
            .post(format!("{}/chat/completions", d.base_url()))
            .bearer_auth(KEY)
            .body("not json")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400);
    }

    #[tokio::test]
    async fn default_answer_echoes_the_prompt_as_sse_chunks() {
        let d = double();
        let ev = sse(post(&d, KEY, &turn("hello there")).await).await;
        assert_eq!(streamed_text(&ev), "You said: hello there");
        assert_eq!(finish(&ev).as_deref(), Some("stop"));
        assert_eq!(ev.last(), Some(&Value::String("[DONE]".into())));
        assert!(ev.iter().any(|e| e.get("usage").is_some()));
        assert_eq!(ev[0]["object"], "chat.completion.chunk");
    }

    #[tokio::test]
    async fn script_steps_follow_the_tool_round_trips() {
        let d = double();
        let args = json!({"command": "echo hi", "description": "greet"});
        d.when(
            "RUN IT",
            vec![Step::tool("bash", args.clone()), Step::text("done")],
        );
        let first = sse(post(&d, KEY, &turn("please RUN IT now")).await).await;
        assert_eq!(finish(&first).as_deref(), Some("tool_calls"));
        let calls: Vec<&Value> = first
            .iter()
            .filter_map(|e| e.pointer("/choices/0/delta/tool_calls/0"))
            .collect();
        assert!(calls.len() > 2, "arguments arrive in pieces");
        assert_eq!(calls[0]["function"]["name"], "bash");
        let id = calls[0]["id"].as_str().expect("id").to_string();
        let joined: String = calls
            .iter()
            .filter_map(|c| c.pointer("/function/arguments").and_then(Value::as_str))
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&joined).expect("args json"),
            args
        );
        let mut second = turn("please RUN IT now");
        let msgs = second["messages"].as_array_mut().expect("messages");
        msgs.push(
            json!({"role": "assistant", "content": "", "tool_calls": [{"id": id, "type": "function",
            "function": {"name": "bash", "arguments": joined}}]}),
        );
        msgs.push(json!({"role": "tool", "tool_call_id": id, "content": "hi"}));
        let ev = sse(post(&d, KEY, &second).await).await;
        assert_eq!(streamed_text(&ev), "done");
        assert!(d.any_request_contains("\"hi\"") || d.any_request_contains("hi"));
        assert_eq!(d.turn_requests().len(), 2);
    }

    #[tokio::test]
    async fn title_requests_do_not_use_the_script() {
        let d = double();
        d.when("RUN IT", vec![Step::bash("echo hi")]);
        let body = json!({"model": MODEL_ID, "stream": true, "messages": [
            {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
            {"role": "user", "content": "Generate a title for this conversation:\n"},
            {"role": "user", "content": "RUN IT"}]});
        let ev = sse(post(&d, KEY, &body).await).await;
        assert_eq!(streamed_text(&ev), TITLE);
        assert!(d.turn_requests().is_empty());
    }

    #[tokio::test]
    async fn non_stream_requests_get_a_completion() {
        let d = double();
        let mut body = turn("plain");
        body["stream"] = json!(false);
        let r: Value = post(&d, KEY, &body).await.json().await.expect("json");
        assert_eq!(r["object"], "chat.completion");
        assert_eq!(r["choices"][0]["message"]["content"], "You said: plain");
    }

    #[tokio::test]
    async fn canned_answers_have_the_promised_shape() {
        let d = double();
        let long = streamed_text(&sse(post(&d, KEY, &turn(TRIGGER_LONG)).await).await);
        assert!(long.chars().count() > 4096);
        let fence = long.find("```python").expect("code fence");
        assert!(
            fence > 1000 && fence < long.len() - 1000,
            "fence in the middle"
        );
        let code = streamed_text(&sse(post(&d, KEY, &turn(TRIGGER_CODE)).await).await);
        let inner = code
            .split("```rust\n")
            .nth(1)
            .and_then(|r| r.split("```").next())
            .expect("rust fence");
        assert_eq!(inner.lines().count(), 60);
        let diff = streamed_text(&sse(post(&d, KEY, &turn(TRIGGER_DIFF)).await).await);
        assert!(
            diff.contains("```diff\n--- a/") && diff.contains("\n+++ b/") && diff.contains("\n@@ ")
        );
    }

    #[tokio::test]
    async fn slow_and_cut_streams() {
        let d = double();
        d.when(
            "SLOWLY",
            vec![Step::Slow {
                text: "abcdef".into(),
                chunk_chars: 2,
                delay: Duration::from_millis(150),
            }],
        );
        let t0 = std::time::Instant::now();
        let ev = sse(post(&d, KEY, &turn("SLOWLY")).await).await;
        assert_eq!(streamed_text(&ev), "abcdef");
        assert!(t0.elapsed() >= Duration::from_millis(400));
        let r = post(&d, KEY, &turn(TRIGGER_CUT)).await;
        assert!(
            r.text().await.is_err(),
            "a cut stream ends in a transport error"
        );
    }
}
