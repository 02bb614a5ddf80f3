//! The progress line of a running turn: one message per user, edited in place as tools run ("Reading 3 files…"),
//! at most once per interval, and closed with the outcome. It is a courtesy, not a delivery: a failed edit is skipped.
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::platform::{ChatId, MessageRef, Outbound, Platform};

use super::Bridge;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Line {
    pub tools: u32,
    /// What the agent does now: "Running `cargo test`", "Reading src/main.rs".
    pub now: String,
    /// Every tool step, for verbose users (the newest 15).
    pub log: Vec<String>,
    /// Set when the turn is over: "✅ Done", "❌ Failed: …", "⏹ Cancelled".
    pub done: Option<String>,
}

pub struct Handle {
    tx: watch::Sender<Line>,
}

impl Handle {
    pub fn tool(&self, what: String) {
        self.tx.send_modify(|l| {
            l.tools += 1;
            l.log.push(what.clone());
            if l.log.len() > 15 {
                l.log.remove(0);
            }
            l.now = what;
        });
    }

    pub fn finish(&self, outcome: String) {
        self.tx.send_modify(|l| l.done = Some(outcome));
    }
}

struct Target {
    platform: Arc<dyn Platform>,
    chat: ChatId,
    at: MessageRef,
    verbose: bool,
}

fn render(title: &str, l: &Line, verbose: bool, secs: u64) -> Outbound {
    let head = match &l.done {
        Some(d) => format!(
            "{d} · {title} · {secs} s · {} tool step{}",
            l.tools,
            if l.tools == 1 { "" } else { "s" }
        ),
        None if l.tools == 0 => format!("⏳ Working on {title}…"),
        None => format!(
            "⏳ {title} · {} tool step{} · {}",
            l.tools,
            if l.tools == 1 { "" } else { "s" },
            l.now
        ),
    };
    if verbose && !l.log.is_empty() {
        Outbound::text(format!(
            "{head}\n{}",
            l.log
                .iter()
                .map(|s| format!("• {s}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    } else {
        Outbound::text(head)
    }
}

/// Starts the progress line of a turn for the box's users who want one.
pub fn start(bridge: Arc<Bridge>, box_id: String, title: String) -> Handle {
    let (tx, mut rx) = watch::channel(Line::default());
    tokio::spawn(async move {
        let started = Instant::now();
        let mut targets = Vec::new();
        for b in bridge.store.bindings_of_box(&box_id).unwrap_or_default() {
            let verbosity = bridge
                .store
                .verbosity(&b.platform, &b.user)
                .unwrap_or_default();
            let Some(p) = bridge.platform(&b.platform).cloned() else {
                continue;
            };
            if verbosity == "quiet" {
                continue;
            }
            let chat = ChatId(b.chat.clone());
            if let Ok(refs) = p
                .send(&chat, &render(&title, &Line::default(), false, 0))
                .await
            {
                if let Some(at) = refs.into_iter().last() {
                    targets.push(Target {
                        platform: p,
                        chat,
                        at,
                        verbose: verbosity == "verbose",
                    });
                }
            }
        }
        let mut shown = Line::default();
        loop {
            let closed = rx.changed().await.is_err();
            // Coalesce: whatever changed during the interval goes out in one edit.
            if !closed && rx.borrow().done.is_none() {
                tokio::time::sleep(bridge.settings.progress_interval).await;
            }
            let line = rx.borrow_and_update().clone();
            if line != shown {
                let secs = started.elapsed().as_secs();
                for t in &targets {
                    if let Err(e) = t
                        .platform
                        .edit(&t.chat, &t.at, &render(&title, &line, t.verbose, secs))
                        .await
                    {
                        tracing::debug!("a progress edit was skipped: {e}");
                    }
                }
                shown = line;
            }
            if closed || shown.done.is_some() {
                break;
            }
        }
    });
    Handle { tx }
}

/// A short description of a tool step from its name and input.
pub fn describe_tool(tool: &str, input: &serde_json::Value, title: Option<&str>) -> String {
    let s = |k: &str| input.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let short = |v: &str| {
        let v = v.lines().next().unwrap_or_default();
        if v.chars().count() > 60 {
            format!("{}…", v.chars().take(60).collect::<String>())
        } else {
            v.to_string()
        }
    };
    match tool {
        "bash" => format!("Running `{}`", short(s("command"))),
        "read" => format!("Reading {}", short(s("filePath"))),
        "edit" | "write" | "patch" => format!("Editing {}", short(s("filePath"))),
        "glob" | "grep" | "list" => format!(
            "Searching {}",
            short(if s("pattern").is_empty() {
                s("path")
            } else {
                s("pattern")
            })
        ),
        "webfetch" => format!("Fetching {}", short(s("url"))),
        _ => match title {
            Some(t) if !t.is_empty() => format!("{tool}: {}", short(t)),
            _ => format!("Using {tool}"),
        },
    }
}
