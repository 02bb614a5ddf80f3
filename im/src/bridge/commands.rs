//! What users say: binding by code, the slash commands, button presses (approvals, answers, session picks) and
//! prompts, which go to the user's current session or wait in its queue while a turn runs.
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::binding;
use crate::opencode::{PermissionReply, SessionStatus};
use crate::platform::{Block, Button, ChatId, Inbound, Outbound, Platform, Sender};
use crate::store::{Binding, Prompt, StoreError};

use super::{sessions, Bridge, COMMANDS};

pub async fn handle_all(
    bridge: Arc<Bridge>,
    platform: Arc<dyn Platform>,
    mut rx: mpsc::Receiver<Inbound>,
) {
    while let Some(ev) = rx.recv().await {
        let (chat, from) = match &ev {
            Inbound::Text { chat, from, .. } | Inbound::Button { chat, from, .. } => {
                (chat.clone(), from.clone())
            }
        };
        let reply = match handle(&bridge, platform.as_ref(), ev).await {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => Outbound::text(format!("⚠️ {e}")),
        };
        // Replies to the user go straight out (they are answers to what the user just did); an unreachable
        // platform here only loses this reply, never a task's answer (those go through the outbox).
        if let Err(e) = platform.send(&chat, &reply).await {
            tracing::warn!(user = from.user.0, "a reply was not sent: {e}");
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error("{0}")]
    Say(String),
    #[error("the box's OpenCode did not answer: {0}")]
    Opencode(#[from] crate::opencode::OpencodeError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

type Reply = Result<Option<Outbound>, CommandError>;

fn say(s: impl Into<String>) -> CommandError {
    CommandError::Say(s.into())
}

async fn handle(bridge: &Arc<Bridge>, platform: &dyn Platform, ev: Inbound) -> Reply {
    let pname = platform.name();
    match ev {
        Inbound::Text { chat, from, text } => {
            let text = text.trim().to_string();
            let (cmd, arg) = split_command(&text);
            if cmd.as_deref() == Some("start") && !arg.is_empty() {
                return bind(bridge, pname, &chat, &from, &arg).await;
            }
            let bound = bridge.store.bindings_of_user(pname, &from.user)?;
            if bound.is_empty() {
                return Ok(Some(Outbound::text(
                    "👋 This is a cloudcode box's bot. To use it, scan the box's QR code: run `cloudcode im qr` \
                     where you deployed the box, and open the link it shows.",
                )));
            }
            bridge.store.touch(pname, &from.user)?;
            if !within_rate(bridge, pname, &from) {
                return Ok(Some(Outbound::text(
                    "⏳ Too many messages in a minute; wait a moment and send it again.",
                )));
            }
            let current = current(bridge, pname, &from, &bound)?;
            match cmd.as_deref() {
                None => prompt_or_answer(bridge, pname, &from, &current, &text).await,
                Some(c) => command(bridge, platform, &from, &bound, &current, c, &arg).await,
            }
        }
        Inbound::Button {
            from, token, ack, ..
        } => {
            let action = bridge.store.token(&token)?;
            let bound = bridge.store.bindings_of_user(pname, &from.user)?;
            let notice = match (action, bound.is_empty()) {
                (_, true) => Some("You are not bound to this box.".to_string()),
                (None, false) => Some("This button has expired.".to_string()),
                (Some(a), false) => {
                    bridge.store.touch(pname, &from.user)?;
                    match press(bridge, pname, &from, &bound, &a).await {
                        Ok(n) => n,
                        Err(e) => Some(e.to_string()),
                    }
                }
            };
            if let Err(e) = platform.ack_button(&ack, notice.as_deref()).await {
                tracing::debug!("a button press was not acknowledged: {e}");
            }
            Ok(None)
        }
    }
}

/// `/cmd@bot arg` → ("cmd", "arg"); plain text → (None, "").
fn split_command(text: &str) -> (Option<String>, String) {
    let Some(rest) = text.strip_prefix('/') else {
        return (None, String::new());
    };
    let (head, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = head
        .split('@')
        .next()
        .unwrap_or_default()
        .to_lowercase()
        .replace('-', "_");
    (Some(name), arg.trim().to_string())
}

fn within_rate(bridge: &Bridge, platform: &str, from: &Sender) -> bool {
    let mut recent = bridge.recent.lock().unwrap_or_else(|p| p.into_inner());
    let times = recent
        .entry((platform.to_string(), from.user.0.clone()))
        .or_default();
    let now = Instant::now();
    times.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
    if times.len() as u32 >= bridge.settings.rate_per_minute {
        return false;
    }
    times.push(now);
    true
}

fn current(
    bridge: &Bridge,
    platform: &str,
    from: &Sender,
    bound: &[Binding],
) -> Result<Binding, CommandError> {
    let id = bridge.store.current_box(platform, &from.user)?;
    let b = bound
        .iter()
        .find(|b| Some(&b.box_id) == id.as_ref() && bridge.boxes.contains_key(&b.box_id))
        .or_else(|| bound.iter().find(|b| bridge.boxes.contains_key(&b.box_id)))
        .ok_or_else(|| {
            say("None of your boxes is served by this bot any more; scan a box's QR code to bind.")
        })?;
    Ok(b.clone())
}

async fn bind(
    bridge: &Arc<Bridge>,
    platform: &str,
    chat: &ChatId,
    from: &Sender,
    payload: &str,
) -> Reply {
    let refused = |e: binding::BindError| Ok(Some(Outbound::text(format!("🚫 Not bound: {e}."))));
    let (box_id, tag) = match binding::parse(payload) {
        Ok(x) => x,
        Err(e) => return refused(e),
    };
    let Some(cfg) = bridge.boxes.get(box_id) else {
        return refused(binding::BindError::UnknownBox);
    };
    let secret = bridge.store.secret(box_id)?;
    if let Err(e) = binding::verify(box_id, tag, &secret) {
        tracing::warn!(box_id, user = from.user.0, "a bind code was refused: {e}");
        return refused(e);
    }
    let new = bridge
        .store
        .bind(platform, &from.user, &chat.0, &from.name, box_id, &cfg.name)?;
    bridge.store.touch(platform, &from.user)?;
    let label = bridge
        .store
        .bindings_of_user(platform, &from.user)?
        .into_iter()
        .find(|b| b.box_id == box_id)
        .map(|b| b.label)
        .unwrap_or_else(|| cfg.name.clone());
    let head = if new {
        format!("✅ Bound to {label}.")
    } else {
        format!("✅ You were already bound to {label}; it is your current box.")
    };
    Ok(Some(with_footer(
        bridge,
        box_id,
        vec![Block::Text(format!(
            "{head} Send a message to talk to its agent; /help lists the commands."
        ))],
    )))
}

fn with_footer(bridge: &Bridge, box_id: &str, mut blocks: Vec<Block>) -> Outbound {
    blocks.push(Block::Text(bridge.online_footer(box_id)));
    Outbound {
        blocks,
        buttons: vec![],
    }
}

/// The user's session on a box: the one they picked, else the most recent one, else a new one.
async fn session_for(
    bridge: &Arc<Bridge>,
    platform: &str,
    from: &Sender,
    b: &Binding,
) -> Result<String, CommandError> {
    if let Some(s) = bridge.store.focus(platform, &from.user, &b.box_id)? {
        return Ok(s);
    }
    let client = &bridge.boxes[&b.box_id].opencode;
    let mut sessions = client.sessions().await?;
    sessions.retain(|s| s.parent_id.is_none());
    sessions.sort_by(|a, b| {
        b.time
            .as_ref()
            .map(|t| t.updated)
            .partial_cmp(&a.time.as_ref().map(|t| t.updated))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let id = match sessions.first() {
        Some(s) => s.id.clone(),
        None => client.create_session(Some("From chat")).await?.id,
    };
    bridge
        .store
        .set_focus(platform, &from.user, &b.box_id, &id)?;
    Ok(id)
}

async fn prompt_or_answer(
    bridge: &Arc<Bridge>,
    platform: &str,
    from: &Sender,
    b: &Binding,
    text: &str,
) -> Reply {
    // A text that answers something the user was asked (feedback for a rejection, a custom answer).
    if let Some(awaiting) = bridge.store.awaiting(platform, &from.user)? {
        bridge.store.set_awaiting(platform, &from.user, None)?;
        let a: Value = serde_json::from_str(&awaiting).unwrap_or(Value::Null);
        let box_id = a["box"].as_str().unwrap_or(&b.box_id).to_string();
        let id = a["id"].as_str().unwrap_or_default().to_string();
        let client = &bridge
            .boxes
            .get(&box_id)
            .ok_or_else(|| say("that box is gone"))?
            .opencode;
        remember_answer(bridge, &id, from);
        match a["kind"].as_str() {
            Some("feedback") => {
                client
                    .reply_permission(&id, PermissionReply::Reject, Some(text))
                    .await?;
                return Ok(Some(Outbound::text(
                    "🚫 Rejected; your feedback went to the agent.",
                )));
            }
            Some("custom") => {
                client
                    .reply_question(&id, &[vec![text.to_string()]])
                    .await?;
                return Ok(Some(Outbound::text("✅ Answer sent.")));
            }
            _ => {}
        }
    }
    let client = bridge.boxes[&b.box_id].opencode.clone();
    // A pending question of the box takes a typed answer (its first question).
    if let Some(q) = client
        .questions()
        .await?
        .into_iter()
        .find(|q| q.questions.len() == 1)
    {
        remember_answer(bridge, &q.id, from);
        client
            .reply_question(&q.id, &[vec![text.to_string()]])
            .await?;
        return Ok(Some(Outbound::text("✅ Answer sent.")));
    }
    let session = session_for(bridge, platform, from, b).await?;
    let busy = matches!(
        client.status().await?.get(&session),
        Some(SessionStatus::Busy | SessionStatus::Retry { .. })
    );
    let waiting = bridge.store.prompts(&b.box_id, Some(&session))?;
    let p = Prompt {
        message_id: crate::opencode::new_message_id(),
        box_id: b.box_id.clone(),
        session: session.clone(),
        platform: platform.to_string(),
        user: from.user.0.clone(),
        text: text.to_string(),
        state: "queued".into(),
    };
    bridge.store.add_prompt(&p)?;
    if busy || !waiting.is_empty() {
        let n = waiting.iter().filter(|p| p.state == "queued").count() + 1;
        return Ok(Some(Outbound::text(format!(
            "🕒 Queued ({n} waiting): the agent is still working. /cancel stops the running task instead."
        ))));
    }
    sessions::submit(bridge, &p).await;
    Ok(None)
}

fn remember_answer(bridge: &Bridge, request: &str, from: &Sender) {
    bridge
        .answered_by
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(request.to_string(), from.name.clone());
}

async fn press(
    bridge: &Arc<Bridge>,
    platform: &str,
    from: &Sender,
    bound: &[Binding],
    a: &Value,
) -> Result<Option<String>, CommandError> {
    let box_id = a["box"].as_str().unwrap_or_default();
    if !bound.iter().any(|b| b.box_id == box_id) {
        return Ok(Some("You are not bound to that box.".into()));
    }
    let client = &bridge
        .boxes
        .get(box_id)
        .ok_or_else(|| say("that box is gone"))?
        .opencode;
    let id = a["id"].as_str().unwrap_or_default();
    match a["kind"].as_str() {
        Some("permission") => {
            let reply = match a["reply"].as_str() {
                Some("once") => PermissionReply::Once,
                Some("always") => PermissionReply::Always,
                Some("reject") => PermissionReply::Reject,
                _ => {
                    bridge.store.set_awaiting(
                        platform,
                        &from.user,
                        Some(&json!({ "kind": "feedback", "box": box_id, "id": id }).to_string()),
                    )?;
                    return Ok(Some("Send your feedback as the next message.".into()));
                }
            };
            remember_answer(bridge, id, from);
            match client.reply_permission(id, reply, None).await {
                Ok(()) => Ok(Some("Sent.".into())),
                Err(crate::opencode::OpencodeError::NotFound { .. }) => {
                    Ok(Some("Already answered.".into()))
                }
                Err(e) => Err(e.into()),
            }
        }
        Some("question") => {
            let label = a["label"].as_str().unwrap_or_default().to_string();
            let count = a["count"].as_u64().unwrap_or(1) as usize;
            let index = a["index"].as_u64().unwrap_or(0) as usize;
            // Each question gets the pressed option; the others (if several) their first option's answer is
            // left empty, as a partial answer OpenCode accepts.
            let mut answers = vec![Vec::<String>::new(); count];
            if index < count {
                answers[index] = vec![label];
            }
            remember_answer(bridge, id, from);
            match client.reply_question(id, &answers).await {
                Ok(()) => Ok(Some("Answer sent.".into())),
                Err(crate::opencode::OpencodeError::NotFound { .. }) => {
                    Ok(Some("Already answered.".into()))
                }
                Err(e) => Err(e.into()),
            }
        }
        Some("session") => {
            bridge.store.set_focus(platform, &from.user, box_id, id)?;
            Ok(Some("Switched session.".into()))
        }
        Some("box") => {
            bridge.store.set_current_box(platform, &from.user, box_id)?;
            Ok(Some("Switched box.".into()))
        }
        _ => Ok(Some("This button does nothing any more.".into())),
    }
}

async fn command(
    bridge: &Arc<Bridge>,
    platform: &dyn Platform,
    from: &Sender,
    bound: &[Binding],
    b: &Binding,
    cmd: &str,
    arg: &str,
) -> Reply {
    let pname = platform.name();
    let cfg = &bridge.boxes[&b.box_id];
    let text = match cmd {
        "start" | "help" => {
            let lines: Vec<String> = COMMANDS.iter().map(|(c, d)| format!("/{c} — {d}")).collect();
            format!("Send any message to prompt the agent of your current box ({}).\n\n{}", b.label, lines.join("\n"))
        }
        "status" => {
            let client = &cfg.opencode;
            let health = client.health().await.map(|v| v["version"].as_str().unwrap_or("up").to_string());
            let status = client.status().await.unwrap_or_default();
            let busy = status.values().filter(|s| matches!(s, SessionStatus::Busy | SessionStatus::Retry { .. })).count();
            let session = bridge.store.focus(pname, &from.user, &b.box_id)?;
            let queued = bridge.store.prompts(&b.box_id, None)?.iter().filter(|p| p.state == "queued").count();
            format!(
                "📦 {} — OpenCode {}\nBusy sessions: {busy}; queued messages: {queued}\nYour session: {}",
                b.label,
                match health {
                    Ok(v) => format!("{v}, up"),
                    Err(e) => format!("unreachable ({e})"),
                },
                session.unwrap_or_else(|| "none yet".into()),
            )
        }
        "list" => {
            let lines: Vec<String> = bound
                .iter()
                .map(|x| format!("{} {}", if x.box_id == b.box_id { "▶" } else { "•" }, x.label))
                .collect();
            format!("Your boxes:\n{}\n\n/switch <name> to change.", lines.join("\n"))
        }
        "switch" => {
            if arg.is_empty() {
                let buttons = bound
                    .iter()
                    .filter(|x| bridge.boxes.contains_key(&x.box_id))
                    .map(|x| {
                        let token = bridge.store.put_token(&json!({ "kind": "box", "box": x.box_id })).unwrap_or_default();
                        vec![Button { label: x.label.clone(), token }]
                    })
                    .collect();
                return Ok(Some(Outbound { blocks: vec![Block::Text("Which box?".into())], buttons }));
            }
            let target = bound.iter().find(|x| x.label == arg).ok_or_else(|| say(format!("You have no box named {arg:?}; /list shows yours.")))?;
            if !bridge.boxes.contains_key(&target.box_id) {
                return Err(say(format!("{arg} is not served by this bot any more.")));
            }
            bridge.store.set_current_box(pname, &from.user, &target.box_id)?;
            return Ok(Some(with_footer(bridge, &target.box_id, vec![Block::Text(format!("▶ Now on {}.", target.label))])));
        }
        "rename" => {
            let name = arg.trim();
            if name.is_empty() || name.chars().count() > 32 || name.chars().any(char::is_control) {
                return Err(say("Give the new name after /rename (1–32 characters)."));
            }
            bridge.store.rename(pname, &from.user, &b.box_id, name)?;
            format!("Renamed {} to {name}.", b.label)
        }
        "unbind" => {
            let target = if arg.is_empty() { b.clone() } else {
                bound.iter().find(|x| x.label == arg).cloned().ok_or_else(|| say(format!("You have no box named {arg:?}.")))?
            };
            bridge.store.unbind(pname, &from.user, &target.box_id)?;
            return Ok(Some(Outbound::text(format!("Unbound from {}. Scan its QR code to bind again.", target.label))));
        }
        "reset_qr" => {
            let gone = bridge.store.rotate_secret(&b.box_id)?;
            for g in gone.iter().filter(|g| !(g.platform == pname && g.user == from.user.0)) {
                bridge.enqueue(g, &Outbound::text(format!("🔄 {} was given a new QR code by {}; you were unbound. Ask for the new code to bind again.", g.label, from.name)), None, None);
            }
            return Ok(Some(Outbound::text(format!(
                "🔄 New QR code for {}: the old one no longer works and all {} users were unbound (you too). \
                 Show the new code with `cloudcode im qr`.",
                b.label,
                gone.len()
            ))));
        }
        "web" => match &cfg.web_url {
            Some(u) => format!("🌐 {u} — OpenCode's web UI; the terminal is at {}/terminal/", u.trim_end_matches('/')),
            None => "This box has no web address configured.".into(),
        },
        "sessions" => {
            let mut sessions = cfg.opencode.sessions().await?;
            sessions.retain(|s| s.parent_id.is_none());
            sessions.sort_by(|x, y| y.time.as_ref().map(|t| t.updated).partial_cmp(&x.time.as_ref().map(|t| t.updated)).unwrap_or(std::cmp::Ordering::Equal));
            let focus = bridge.store.focus(pname, &from.user, &b.box_id)?;
            let buttons: Vec<Vec<Button>> = sessions
                .iter()
                .take(8)
                .map(|s| {
                    let token = bridge.store.put_token(&json!({ "kind": "session", "box": b.box_id, "id": s.id })).unwrap_or_default();
                    let mark = if Some(&s.id) == focus.as_ref() { "▶ " } else { "" };
                    let title = if s.title.is_empty() { s.id.clone() } else { s.title.chars().take(40).collect() };
                    vec![Button { label: format!("{mark}{title}"), token }]
                })
                .collect();
            let head = if buttons.is_empty() { "No sessions yet: send a message or /new." } else { "Recent sessions (tap to switch):" };
            return Ok(Some(Outbound { blocks: vec![Block::Text(head.into())], buttons }));
        }
        "new" => {
            let title = if arg.is_empty() { None } else { Some(arg) };
            let s = cfg.opencode.create_session(title).await?;
            bridge.store.set_focus(pname, &from.user, &b.box_id, &s.id)?;
            format!("🆕 New session {}; your next message goes there.", if s.title.is_empty() { &s.id } else { &s.title })
        }
        "cancel" => {
            let session = bridge.store.focus(pname, &from.user, &b.box_id)?.ok_or_else(|| say("You have no session to cancel."))?;
            let mut dropped = 0;
            for p in bridge.store.prompts(&b.box_id, Some(&session))? {
                if p.state == "queued" {
                    bridge.store.remove_prompt(&p.message_id)?;
                    dropped += 1;
                }
            }
            let aborted = cfg.opencode.abort(&session).await?;
            // An abort leaves the session's pending approvals listed (and their buttons live): reject them.
            for p in cfg.opencode.permissions().await?.into_iter().filter(|p| p.session_id == session) {
                remember_answer(bridge, &p.id, from);
                cfg.opencode.reply_permission(&p.id, PermissionReply::Reject, None).await?;
            }
            format!("⏹ {}; {dropped} queued message{} dropped.", if aborted { "Stopped the running task" } else { "Nothing was running" }, if dropped == 1 { "" } else { "s" })
        }
        "verbosity" => match arg {
            "quiet" | "normal" | "verbose" => {
                bridge.store.set_verbosity(pname, &from.user, arg)?;
                format!("Progress: {arg}.")
            }
            _ => "Say /verbosity quiet (answers only), normal (one progress line) or verbose (every tool step).".into(),
        },
        "proxy" => match &bridge.settings.proxy_shown {
            Some(p) => format!("The bot reaches {} through the proxy {p}. Change it in the box's deployment (im.proxy).", platform.name()),
            None => format!("The bot reaches {} directly. Set im.proxy in the box's deployment to use a proxy.", platform.name()),
        },
        other => format!("Unknown command /{other}; /help lists them."),
    };
    Ok(Some(with_footer(
        bridge,
        &b.box_id,
        vec![Block::Text(text)],
    )))
}
