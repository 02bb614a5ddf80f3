//! OpenCode's side of a box: follows the event stream, rebuilds its view from the API on every (re)connect (the
//! stream has no replay), delivers finished turns exactly once, forwards approvals and questions, and sends
//! prompts that waited for their session to become idle.
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::opencode::{
    self, Event, MessageWithParts, PermissionRequest, QuestionRequest, SessionStatus,
};
use crate::platform::{Block, Button, ChatId, MessageRef, Outbound};
use crate::store::Prompt;

use super::{progress, Bridge};

/// Follows one box's events forever, reconnecting with backoff.
pub async fn watch(bridge: Arc<Bridge>, box_id: String) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let client = bridge.boxes[&box_id].opencode.clone();
        match client.events().await {
            Ok(mut stream) => {
                backoff = Duration::from_secs(1);
                if let Err(e) = resync(&bridge, &box_id).await {
                    tracing::warn!(box_id, "rebuilding after connect failed: {e}");
                }
                let mut last_event = tokio::time::Instant::now();
                let every = bridge.settings.outstanding_check;
                let mut check =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        item = stream.next() => {
                            last_event = tokio::time::Instant::now();
                            match item {
                                None => {
                                    tracing::warn!(box_id, "OpenCode closed the event stream: reconnecting");
                                    break;
                                }
                                Some(Err(e)) => {
                                    tracing::warn!(box_id, "{e}");
                                    if e.starts_with("the event stream broke") {
                                        break;
                                    }
                                }
                                Some(Ok(ev)) => on_event(&bridge, &box_id, ev).await,
                            }
                        }
                        _ = tokio::time::sleep_until(last_event + bridge.settings.stream_silence) => {
                            tracing::warn!(
                                box_id,
                                "no event or heartbeat for {:?}: reconnecting",
                                bridge.settings.stream_silence
                            );
                            break;
                        }
                        _ = check.tick() => {
                            if let Err(e) = check_outstanding(&bridge, &box_id).await {
                                tracing::warn!(box_id, "looking at unanswered prompts failed: {e}");
                            }
                        }
                    }
                }
                bridge
                    .metrics
                    .stream_reconnects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(
                    box_id,
                    "the event stream cannot be opened: {e}; retrying in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// While prompts of this box wait for an answer, their sessions are looked at directly now and then: a stream
/// that keeps sending heartbeats but lost the subscription's events would otherwise leave them unanswered until
/// the next reconnect. Idempotent with the events (answers are queued once).
async fn check_outstanding(
    bridge: &Arc<Bridge>,
    box_id: &str,
) -> Result<(), opencode::OpencodeError> {
    let sessions = prompted_sessions(bridge, box_id);
    if sessions.is_empty() {
        return Ok(());
    }
    settle(bridge, box_id, sessions, Ended::IfAnswered).await
}

/// Sessions with prompts from chat (queued, being sent, or sent and not answered yet).
fn prompted_sessions(bridge: &Arc<Bridge>, box_id: &str) -> Vec<String> {
    bridge
        .store
        .prompts(box_id, None)
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.session)
        .collect()
}

/// Reads OpenCode's status once and brings each of `sessions` up to date: a busy one gets its progress line, an
/// idle one its turn closed (as `ended` allows).
async fn settle(
    bridge: &Arc<Bridge>,
    box_id: &str,
    mut sessions: Vec<String>,
    ended: Ended,
) -> Result<(), opencode::OpencodeError> {
    sessions.sort();
    sessions.dedup();
    let status = bridge.boxes[box_id].opencode.status().await?;
    for session in sessions {
        match status.get(&session) {
            Some(SessionStatus::Busy | SessionStatus::Retry { .. }) => {
                ensure_progress(bridge, box_id, &session).await
            }
            _ => turn_ended(bridge, box_id, &session, ended).await,
        }
    }
    Ok(())
}

/// After a (re)connect: what happened while the stream was down is read from the API.
async fn resync(bridge: &Arc<Bridge>, box_id: &str) -> Result<(), opencode::OpencodeError> {
    let client = &bridge.boxes[box_id].opencode;
    // Sessions the bridge follows: those with prompts from chat, and those already delivered from.
    let mut followed = prompted_sessions(bridge, box_id);
    followed.extend(bridge.store.followed_sessions(box_id).unwrap_or_default());
    settle(bridge, box_id, followed, Ended::Surely).await?;
    for p in client.permissions().await? {
        permission_asked(bridge, box_id, &p);
    }
    for q in client.questions().await? {
        question_asked(bridge, box_id, &q);
    }
    Ok(())
}

async fn on_event(bridge: &Arc<Bridge>, box_id: &str, ev: Event) {
    match ev {
        Event::Status {
            session,
            status: SessionStatus::Busy,
        } => ensure_progress(bridge, box_id, &session).await,
        Event::Status {
            session,
            status: SessionStatus::Idle,
        }
        | Event::Idle { session } => turn_ended(bridge, box_id, &session, Ended::Surely).await,
        Event::PartUpdated { session, part } if part.kind == "tool" => {
            if let Some(state) = part.state.as_ref().filter(|s| s.status == "running") {
                let key = (box_id.to_string(), session.clone());
                let line = progress::describe_tool(
                    part.tool.as_deref().unwrap_or("tool"),
                    &state.input,
                    state.title.as_deref(),
                );
                if let Some(h) = bridge
                    .progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                {
                    h.tool(line);
                }
            }
        }
        Event::SessionUpdated { session, title } if !title.is_empty() => {
            bridge
                .titles
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((box_id.to_string(), session), title);
        }
        Event::PermissionAsked(p) => permission_asked(bridge, box_id, &p),
        Event::PermissionReplied { request, reply, .. } => {
            let what = match reply.as_str() {
                "once" => "✅ Allowed once",
                "always" => "✅ Allowed always",
                _ => "🚫 Rejected",
            };
            close_request(bridge, &format!("perm:{request}"), &request, what).await
        }
        Event::QuestionAsked(q) => question_asked(bridge, box_id, &q),
        Event::QuestionClosed { request, .. } => {
            close_request(
                bridge,
                &format!("question:{request}"),
                &request,
                "✅ Answered",
            )
            .await
        }
        _ => {}
    }
}

/// A turn started (from chat or from the browser): the session is followed from the last message it had.
async fn ensure_progress(bridge: &Arc<Bridge>, box_id: &str, session: &str) {
    if bridge
        .store
        .watermark(box_id, session)
        .ok()
        .flatten()
        .is_none()
    {
        // Unknown session (started in the browser): deliver from now on, not its history.
        let mark = latest_assistant(bridge, box_id, session)
            .await
            .unwrap_or_else(|| "msg_".into());
        let _ = bridge.store.set_watermark(box_id, session, &mark);
    }
    let key = (box_id.to_string(), session.to_string());
    if bridge
        .progress
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&key)
    {
        return;
    }
    let title = session_title(bridge, box_id, session).await;
    let handle = progress::start(bridge.clone(), box_id.to_string(), title);
    bridge
        .progress
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert(handle);
}

async fn latest_assistant(bridge: &Bridge, box_id: &str, session: &str) -> Option<String> {
    let msgs = bridge.boxes[box_id]
        .opencode
        .messages(session, 20)
        .await
        .ok()?;
    msgs.iter()
        .filter(|m| m.info.role == "assistant")
        .map(|m| m.info.id.clone())
        .max()
}

pub async fn session_title(bridge: &Bridge, box_id: &str, session: &str) -> String {
    let key = (box_id.to_string(), session.to_string());
    if let Some(t) = bridge
        .titles
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return t.clone();
    }
    match bridge.boxes[box_id].opencode.session(session).await {
        Ok(s) if !s.title.is_empty() => {
            bridge
                .titles
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, s.title.clone());
            s.title
        }
        _ => session.to_string(),
    }
}

/// What the caller knows of a session reported idle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// OpenCode said so (an idle event, or idle at a resync): close the turn even without an answer.
    Surely,
    /// Only seen idle by a periodic look: the turn ended only if an answer is there.
    IfAnswered,
}

/// A session became idle: deliver its new assistant messages once, close the progress line, then send the next
/// prompt that waited for it.
async fn turn_ended(bridge: &Arc<Bridge>, box_id: &str, session: &str, ended: Ended) {
    let client = bridge.boxes[box_id].opencode.clone();
    let Some(mark) = bridge.store.watermark(box_id, session).ok().flatten() else {
        return; // never followed: nothing of it was asked from chat
    };
    let msgs = match client.messages(session, 50).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(box_id, session, "the finished turn cannot be read yet: {e}");
            return;
        }
    };
    let fresh: Vec<&MessageWithParts> = msgs
        .iter()
        .filter(|m| {
            m.info.role == "assistant"
                && m.info.id > mark
                && (m.info.time.completed.is_some() || m.info.error.is_some())
        })
        .collect();
    if fresh.is_empty() && ended == Ended::IfAnswered {
        // No answer yet (idle for a moment before a sent prompt's turn starts, say): nothing ended. A prompt
        // that only waits in the queue of an idle session can go now (send_queued leaves it while one is sent).
        send_queued(bridge, box_id, session).await;
        return;
    }
    let outcome = if let Some(last) = fresh.last() {
        let title = session_title(bridge, box_id, session).await;
        let (body, outcome) = answer(&title, &fresh, bridge.online_footer(box_id));
        bridge.broadcast(
            box_id,
            &body,
            None,
            Some(&format!("answer:{box_id}:{}", last.info.id)),
        );
        let _ = bridge.store.set_watermark(box_id, session, &last.info.id);
        // Prompts of this session are answered now.
        for p in bridge
            .store
            .prompts(box_id, Some(session))
            .unwrap_or_default()
        {
            if p.state == "sent" {
                let _ = bridge.store.remove_prompt(&p.message_id);
            }
        }
        outcome
    } else {
        "✅ Done".to_string()
    };
    let handle = bridge
        .progress
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(box_id.to_string(), session.to_string()));
    if let Some(h) = handle {
        h.finish(outcome);
    }
    send_queued(bridge, box_id, session).await;
}

/// The chat message of a finished turn: the assistant's text in full (code blocks as blocks), failures said
/// plainly, images the agent attached, and the online footer.
fn answer(title: &str, msgs: &[&MessageWithParts], footer: String) -> (Outbound, String) {
    let mut blocks = vec![Block::Bold(format!("[{title}]"))];
    let mut outcome = "✅ Done".to_string();
    for m in msgs {
        for p in &m.parts {
            match p.kind.as_str() {
                "text" if p.synthetic != Some(true) => {
                    if let Some(t) = &p.text {
                        blocks.extend(crate::format::blocks(t));
                    }
                }
                "file" if p.mime.as_deref().is_some_and(|m| m.starts_with("image/")) => {
                    if let Some(png) = p.url.as_deref().and_then(data_url_bytes) {
                        blocks.push(Block::Image {
                            png,
                            caption: "image".into(),
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(err) = &m.info.error {
            let name = err.get("name").and_then(|v| v.as_str()).unwrap_or("error");
            let msg = err
                .pointer("/data/message")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            outcome = if name == "MessageAbortedError" {
                "⏹ Cancelled".into()
            } else {
                format!("❌ Failed: {name}")
            };
            blocks.push(Block::Text(if msg.is_empty() {
                outcome.clone()
            } else {
                format!("{outcome} — {msg}")
            }));
        }
    }
    if blocks.len() == 1 {
        blocks.push(Block::Text(outcome.clone()));
    }
    blocks.push(Block::Text(footer));
    (
        Outbound {
            blocks,
            buttons: vec![],
        },
        outcome,
    )
}

fn data_url_bytes(url: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let (_, b64) = url.strip_prefix("data:")?.split_once(";base64,")?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Sends the oldest queued prompt of an idle session.
async fn send_queued(bridge: &Arc<Bridge>, box_id: &str, session: &str) {
    let queued = bridge
        .store
        .prompts(box_id, Some(session))
        .unwrap_or_default();
    if queued.iter().any(|p| p.state == "sent") {
        return;
    }
    if let Some(p) = queued
        .into_iter()
        .find(|p| p.state == "queued" || p.state == SENDING)
    {
        submit(bridge, &p).await;
    }
}

/// A prompt whose call to OpenCode started and has not been seen through: the process may have stopped while
/// OpenCode was taking it.
const SENDING: &str = "sending";

/// Sends a prompt to OpenCode exactly once: its message id is ours, so after a failed call — or when an earlier
/// process stopped during the call — the message is looked up before sending again.
pub async fn submit(bridge: &Arc<Bridge>, p: &Prompt) {
    let claimed = bridge
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(p.message_id.clone());
    if !claimed {
        return; // another task of this process is sending it
    }
    submit_claimed(bridge, p).await;
    bridge
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&p.message_id);
}

async fn submit_claimed(bridge: &Arc<Bridge>, p: &Prompt) {
    let client = bridge.boxes[&p.box_id].opencode.clone();
    if p.state == SENDING {
        match client.has_message(&p.session, &p.message_id).await {
            Ok(true) => {
                let _ = bridge.store.set_prompt_state(&p.message_id, "sent");
                return;
            }
            Ok(false) => {}
            Err(e) => {
                // Unknown: sending again could run it twice. The next resync or idle event looks again.
                tracing::warn!(
                    session = p.session,
                    "a prompt's earlier send cannot be checked: {e}"
                );
                return;
            }
        }
    }
    if let Err(e) = bridge.store.set_prompt_state(&p.message_id, SENDING) {
        tracing::error!(
            session = p.session,
            "the prompt is not sent: its state cannot be kept: {e}"
        );
        return;
    }
    if bridge
        .store
        .watermark(&p.box_id, &p.session)
        .ok()
        .flatten()
        .is_none()
    {
        let mark = latest_assistant(bridge, &p.box_id, &p.session)
            .await
            .unwrap_or_else(|| "msg_".into());
        let _ = bridge.store.set_watermark(&p.box_id, &p.session, &mark);
    }
    let mut backoff = Duration::from_millis(500);
    for _ in 0..6 {
        match client
            .prompt_async(&p.session, &p.message_id, &p.text)
            .await
        {
            Ok(()) => {
                let _ = bridge.store.set_prompt_state(&p.message_id, "sent");
                bridge
                    .metrics
                    .prompts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::warn!(session = p.session, "the prompt was not accepted: {e}");
                if let Ok(true) = client.has_message(&p.session, &p.message_id).await {
                    let _ = bridge.store.set_prompt_state(&p.message_id, "sent");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    // Left queued: the next resync or idle event tries again.
    tracing::error!(
        session = p.session,
        "the prompt stays queued: OpenCode did not take it"
    );
}

fn permission_asked(bridge: &Arc<Bridge>, box_id: &str, p: &PermissionRequest) {
    let what = match p.permission.as_str() {
        "bash" => format!("run `{}`", p.patterns.join(" ")),
        "edit" => format!("edit {}", p.patterns.join(", ")),
        "external_directory" => format!("work outside the workspace: {}", p.patterns.join(", ")),
        other => format!("use {other}: {}", p.patterns.join(", ")),
    };
    let token = |reply: &str| {
        bridge
            .store
            .put_token(&json!({ "kind": "permission", "box": box_id, "id": p.id, "reply": reply }))
            .unwrap_or_default()
    };
    let buttons = vec![
        vec![
            Button {
                label: "Allow once".into(),
                token: token("once"),
            },
            Button {
                label: "Always".into(),
                token: token("always"),
            },
        ],
        vec![
            Button {
                label: "Reject".into(),
                token: token("reject"),
            },
            Button {
                label: "Reject with feedback".into(),
                token: token("feedback"),
            },
        ],
    ];
    let body = Outbound {
        blocks: vec![
            Block::Bold("🔐 Approval needed".into()),
            Block::Text(format!("The agent wants to {what}.")),
        ],
        buttons,
    };
    bridge.broadcast(
        box_id,
        &body,
        Some(&format!("perm:{}", p.id)),
        Some(&format!("perm:{}", p.id)),
    );
}

fn question_asked(bridge: &Arc<Bridge>, box_id: &str, q: &QuestionRequest) {
    let mut blocks = vec![Block::Bold("❓ The agent asks".into())];
    let mut buttons = Vec::new();
    for (i, info) in q.questions.iter().enumerate() {
        blocks.push(Block::Text(info.question.clone()));
        for o in &info.options {
            let token = bridge
                .store
                .put_token(&json!({ "kind": "question", "box": box_id, "id": q.id, "index": i, "label": o.label,
                                    "count": q.questions.len() }))
                .unwrap_or_default();
            buttons.push(vec![Button {
                label: o.label.clone(),
                token,
            }]);
        }
    }
    blocks.push(Block::Text("Or reply with your own answer.".into()));
    let body = Outbound { blocks, buttons };
    bridge.broadcast(
        box_id,
        &body,
        Some(&format!("question:{}", q.id)),
        Some(&format!("question:{}", q.id)),
    );
}

/// A permission or question was answered (here or in the browser): every chat copy loses its buttons and says so.
async fn close_request(bridge: &Arc<Bridge>, tag: &str, request: &str, what: &str) {
    let by = bridge
        .answered_by
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(request);
    let line = match by {
        Some(name) => format!("{what} by {name}."),
        None => format!("{what} (in the browser)."),
    };
    for (platform, chat, at) in bridge.store.sent_refs(tag).unwrap_or_default() {
        if let Some(p) = bridge.platform(&platform) {
            if let Err(e) = p
                .edit(
                    &ChatId(chat),
                    &MessageRef(at),
                    &Outbound::text(line.clone()),
                )
                .await
            {
                tracing::debug!("an answered request's message was not updated: {e}");
            }
        }
    }
    let _ = bridge.store.forget_refs(tag);
}
