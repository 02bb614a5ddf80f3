//! The real `opencode serve`, offline, against the LLM double: a streamed plain turn, and bash permissions.

use std::time::{Duration, Instant};

use cloudcode_tests::llm_double::{LlmDouble, Step};
use cloudcode_tests::opencode_fixture::{opencode_binary, OpencodeOptions, OpencodeServer};
use serde_json::{json, Value};

const TURN_TIMEOUT: Duration = Duration::from_secs(120);

fn start(permission: Value) -> Option<(LlmDouble, OpencodeServer)> {
    if let Err(reason) = opencode_binary() {
        eprintln!("skipping: no opencode binary ({reason})");
        return None;
    }
    let llm = LlmDouble::start("127.0.0.1:0".parse().expect("addr"), "sk-fixture")
        .expect("start llm double");
    let oc =
        OpencodeServer::start(&llm, permission).unwrap_or_else(|e| panic!("start opencode: {e}"));
    Some((llm, oc))
}

/// A reader of OpenCode's `/event` stream (`data: {json}` lines).
struct Events {
    resp: reqwest::Response,
    buf: String,
    seen: Vec<Value>,
}

impl Events {
    async fn open(oc: &OpencodeServer) -> Self {
        let resp = reqwest::get(format!("{}/event", oc.base_url()))
            .await
            .expect("GET /event");
        assert_eq!(resp.status(), 200);
        let mut ev = Self {
            resp,
            buf: String::new(),
            seen: Vec::new(),
        };
        let first = ev.next().await.expect("first event");
        assert_eq!(first["type"], "server.connected", "{first}");
        ev
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    if let Ok(v) = serde_json::from_str::<Value>(data) {
                        self.seen.push(v.clone());
                        return Some(v);
                    }
                }
                continue;
            }
            let chunk = self.resp.chunk().await.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The first event (from now on) matching `pred`; panics after [`TURN_TIMEOUT`].
    async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TURN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.next()).await {
                Ok(Some(v)) if pred(&v) => return v,
                Ok(Some(_)) => {}
                Ok(None) => panic!("event stream ended while waiting for {what}"),
                Err(_) => panic!(
                    "no {what} within {TURN_TIMEOUT:?}; seen: {:?}",
                    self.types()
                ),
            }
        }
    }

    async fn idle(&mut self, sid: &str) -> Value {
        self.until("session.idle", |e| {
            e["type"] == "session.idle" && e["properties"]["sessionID"] == sid
        })
        .await
    }

    fn types(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| e["type"].as_str().map(str::to_string))
            .collect()
    }
}

async fn post(oc: &OpencodeServer, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", oc.base_url()))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(oc: &OpencodeServer, path: &str) -> Value {
    reqwest::get(format!("{}{path}", oc.base_url()))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}

async fn new_session(oc: &OpencodeServer) -> String {
    let (status, s) = post(oc, "/session", json!({})).await;
    assert_eq!(status, 200, "{s}");
    s["id"].as_str().expect("session id").to_string()
}

async fn prompt(oc: &OpencodeServer, sid: &str, text: &str) {
    let (status, body) = post(
        oc,
        &format!("/session/{sid}/prompt_async"),
        json!({"parts": [{"type": "text", "text": text}]}),
    )
    .await;
    assert_eq!(status, 204, "prompt_async: {body}");
}

/// All parts of the session's messages with the given type.
async fn parts(oc: &OpencodeServer, sid: &str, kind: &str) -> Vec<Value> {
    let msgs = get(oc, &format!("/session/{sid}/message")).await;
    msgs.as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["parts"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["type"] == kind)
        .collect()
}

#[tokio::test]
async fn plain_turn_streams_the_double_answer() {
    let Some((llm, oc)) = start(Value::Null) else {
        return;
    };
    llm.when(
        "greet me",
        vec![Step::text("Hello from the LLM double, streamed in pieces.")],
    );
    let sid = new_session(&oc).await;
    let mut ev = Events::open(&oc).await;
    prompt(&oc, &sid, "please greet me").await;
    ev.idle(&sid).await;
    let deltas: String = ev
        .seen
        .iter()
        .filter(|e| {
            e["type"] == "message.part.delta" && e["properties"]["sessionID"] == sid.as_str()
        })
        .filter_map(|e| e["properties"]["delta"].as_str())
        .collect();
    assert_eq!(
        deltas,
        "Hello from the LLM double, streamed in pieces.",
        "events: {:?}",
        ev.types()
    );
    let texts: Vec<String> = parts(&oc, &sid, "text")
        .await
        .iter()
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "Hello from the LLM double, streamed in pieces."),
        "{texts:?}"
    );
    assert!(llm.requests().iter().all(|r| r.authorized));
    assert!(!llm.turn_requests().is_empty());
}

#[tokio::test]
async fn bash_permission_always_runs_the_tool_and_is_not_asked_again() {
    let Some((llm, oc)) = start(json!({"bash": "ask"})) else {
        return;
    };
    llm.when(
        "run the greeting",
        vec![Step::bash("echo hi-from-bash"), Step::text("ran it")],
    );
    let sid = new_session(&oc).await;
    let mut ev = Events::open(&oc).await;
    prompt(&oc, &sid, "run the greeting").await;
    let asked = ev
        .until("permission.asked", |e| e["type"] == "permission.asked")
        .await;
    let p = &asked["properties"];
    assert_eq!(p["sessionID"], sid.as_str());
    assert_eq!(p["permission"], "bash");
    assert_eq!(p["patterns"], json!(["echo hi-from-bash"]));
    let id = p["id"].as_str().expect("permission id").to_string();
    let pending = get(&oc, "/permission").await;
    assert!(
        pending
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == id.as_str())),
        "{pending}"
    );
    let (status, answer) = post(
        &oc,
        &format!("/permission/{id}/reply"),
        json!({"reply": "always"}),
    )
    .await;
    assert_eq!((status, answer), (200, json!(true)));
    ev.idle(&sid).await;

    prompt(&oc, &sid, "run the greeting").await;
    let before = ev.seen.len();
    ev.idle(&sid).await;
    assert!(
        !ev.seen[before..]
            .iter()
            .any(|e| e["type"] == "permission.asked"),
        "asked again after always: {:?}",
        ev.types()
    );
    let tools = parts(&oc, &sid, "tool").await;
    let outputs: Vec<&str> = tools
        .iter()
        .filter(|t| t["tool"] == "bash" && t["state"]["status"] == "completed")
        .filter_map(|t| t["state"]["output"].as_str())
        .collect();
    assert_eq!(outputs.len(), 2, "{tools:?}");
    assert!(outputs.iter().all(|o| o.contains("hi-from-bash")));
    // The tool result went back to the model, and the script's second step answered it.
    assert!(llm.turn_requests().iter().any(|b| {
        b["messages"].as_array().is_some_and(|m| {
            m.iter().any(|x| {
                x["role"] == "tool"
                    && x["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("hi-from-bash"))
            })
        })
    }));
    let texts = parts(&oc, &sid, "text").await;
    assert!(texts.iter().any(|t| t["text"] == "ran it"));
}

#[tokio::test]
async fn rejected_permission_feedback_reaches_the_model_as_the_tool_result() {
    let Some((llm, oc)) = start(json!({"bash": "ask"})) else {
        return;
    };
    llm.when(
        "list the files",
        vec![Step::bash("ls"), Step::text("understood")],
    );
    let sid = new_session(&oc).await;
    let mut ev = Events::open(&oc).await;
    prompt(&oc, &sid, "list the files").await;
    let asked = ev
        .until("permission.asked", |e| e["type"] == "permission.asked")
        .await;
    let id = asked["properties"]["id"].as_str().expect("id").to_string();
    let (status, _) = post(
        &oc,
        &format!("/permission/{id}/reply"),
        json!({"reply": "reject", "message": "use git status instead"}),
    )
    .await;
    assert_eq!(status, 200);
    ev.idle(&sid).await;
    let tool_results: Vec<String> = llm
        .turn_requests()
        .iter()
        .flat_map(|b| b["messages"].as_array().cloned().unwrap_or_default())
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .collect();
    assert!(
        tool_results
            .iter()
            .any(|c| c.contains("use git status instead")),
        "{tool_results:?}"
    );
    assert!(parts(&oc, &sid, "text")
        .await
        .iter()
        .any(|t| t["text"] == "understood"));
}

#[tokio::test]
async fn question_tool_reply_reaches_the_model() {
    let Some((llm, oc)) = start(Value::Null) else {
        return;
    };
    let question = json!({"questions": [{"question": "Which colour?", "header": "Colour",
        "options": [{"label": "red", "description": "Red"}, {"label": "blue", "description": "Blue"}]}]});
    llm.when(
        "pick a colour",
        vec![Step::tool("question", question), Step::text("blue it is")],
    );
    let sid = new_session(&oc).await;
    let mut ev = Events::open(&oc).await;
    prompt(&oc, &sid, "pick a colour").await;
    let asked = ev
        .until("question.asked", |e| e["type"] == "question.asked")
        .await;
    assert_eq!(asked["properties"]["sessionID"], sid.as_str());
    assert_eq!(
        asked["properties"]["questions"][0]["options"][1]["label"],
        "blue"
    );
    let id = asked["properties"]["id"].as_str().expect("id").to_string();
    let pending = get(&oc, "/question").await;
    assert!(
        pending
            .as_array()
            .is_some_and(|a| a.iter().any(|q| q["id"] == id.as_str())),
        "{pending}"
    );
    let (status, answer) = post(
        &oc,
        &format!("/question/{id}/reply"),
        json!({"answers": [["blue"]]}),
    )
    .await;
    assert_eq!((status, answer), (200, json!(true)));
    ev.idle(&sid).await;
    assert!(llm.any_request_contains("\"Which colour?\"=\"blue\""));
    assert!(parts(&oc, &sid, "text")
        .await
        .iter()
        .any(|t| t["text"] == "blue it is"));
}

#[tokio::test]
async fn abort_cuts_a_slow_answer() {
    let Some((llm, oc)) = start(Value::Null) else {
        return;
    };
    llm.when(
        "take your time",
        vec![Step::Slow {
            text: "one two three four five six seven eight nine ten".into(),
            chunk_chars: 4,
            delay: Duration::from_millis(700),
        }],
    );
    let sid = new_session(&oc).await;
    let mut ev = Events::open(&oc).await;
    prompt(&oc, &sid, "take your time").await;
    ev.until("a text delta", |e| {
        e["type"] == "message.part.delta" && e["properties"]["sessionID"] == sid.as_str()
    })
    .await;
    let status = get(&oc, "/session/status").await;
    assert_eq!(status[sid.as_str()]["type"], "busy", "{status}");
    let (code, answer) = post(&oc, &format!("/session/{sid}/abort"), json!({})).await;
    assert_eq!((code, answer), (200, json!(true)));
    let err = ev
        .until("session.error", |e| {
            e["type"] == "session.error" && e["properties"]["sessionID"] == sid.as_str()
        })
        .await;
    assert_eq!(err["properties"]["error"]["name"], "MessageAbortedError");
    ev.idle(&sid).await;
    let texts = parts(&oc, &sid, "text").await;
    let partial = texts
        .last()
        .and_then(|t| t["text"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        partial.starts_with("one") && !partial.contains("ten"),
        "partial answer kept: {partial:?}"
    );
    assert_eq!(get(&oc, "/session/status").await, json!({}));
}

#[tokio::test]
async fn server_password_requires_basic_auth_as_opencode() {
    if let Err(reason) = opencode_binary() {
        eprintln!("skipping: no opencode binary ({reason})");
        return;
    }
    let llm =
        LlmDouble::start("127.0.0.1:0".parse().expect("addr"), "sk-fixture").expect("llm double");
    let opts = OpencodeOptions {
        password: Some("s3cret".into()),
        ..Default::default()
    };
    let oc =
        OpencodeServer::start_with(&llm, opts).unwrap_or_else(|e| panic!("start opencode: {e}"));
    let (user, pw) = oc.credentials().expect("credentials");
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", oc.base_url());
    for path in ["/session", "/event", "/global/health"] {
        let r = client.get(url(path)).send().await.expect("GET");
        assert_eq!(r.status(), 401, "{path} without credentials");
        let r = client
            .get(url(path))
            .basic_auth("someone", Some(pw))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 401, "{path} with the wrong user");
    }
    let r = client
        .get(url("/session"))
        .basic_auth(user, Some(pw))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    let mut r = client
        .get(url("/event"))
        .basic_auth(user, Some(pw))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.expect("chunk").expect("data");
    assert!(String::from_utf8_lossy(&first).contains("server.connected"));
}
