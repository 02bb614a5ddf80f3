//! Delivery: one worker per platform sends the outbox in order, renders long code to images for that platform,
//! prefixes "you missed N messages" after an overflow, and keeps a message until the platform takes it.
use std::sync::Arc;
use std::time::Duration;

use crate::format;
use crate::platform::{Block, ChatId, Outbound, Platform, PlatformError, Shape};
use crate::render;

use super::Bridge;

/// Replaces code blocks the platform should get as images by rendered PNGs (a block that cannot be rendered
/// stays text).
pub fn shape_for(msg: &Outbound, shape: Shape) -> Outbound {
    let blocks = msg
        .blocks
        .iter()
        .map(|b| match b {
            Block::Code { lang, code }
                if format::wants_image(lang.as_deref(), code, shape.inline_code_max_lines) =>
            {
                match render::render_code(code, lang.as_deref()) {
                    Ok(png) => Block::Image {
                        png: png.bytes,
                        caption: caption(lang.as_deref(), code),
                    },
                    Err(e) => {
                        tracing::warn!("a code block stays text: {e}");
                        b.clone()
                    }
                }
            }
            _ => b.clone(),
        })
        .collect();
    Outbound {
        blocks,
        buttons: msg.buttons.clone(),
    }
}

fn caption(lang: Option<&str>, code: &str) -> String {
    let n = code.lines().count();
    match lang {
        Some(l) => format!("{l} · {n} lines"),
        None => format!("{n} lines"),
    }
}

pub async fn run(
    bridge: Arc<Bridge>,
    platform: Arc<dyn Platform>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let name = platform.name();
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        let next = match bridge.store.next_outgoing(name) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("the outbox cannot be read: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let Some(out) = next else {
            // Woken by enqueue; the timeout is a safety net.
            if let Some(n) = bridge.outbox_wake.get(name) {
                tokio::select! {
                    _ = tokio::time::timeout(Duration::from_secs(5), n.notified()) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            continue;
        };
        let chat = ChatId(out.chat.clone());
        let result = async {
            let missed = bridge.store.take_missed(name, &out.user).unwrap_or(0);
            if missed > 0 {
                let note = Outbound::text(format!(
                    "⚠️ You missed {missed} message{} while you could not be reached; here are the newest.",
                    if missed == 1 { "" } else { "s" }
                ));
                if let Err(e) = platform.send(&chat, &note).await {
                    let _ = bridge.store.add_missed(name, &out.user, missed);
                    return Err(e);
                }
            }
            platform.send(&chat, &shape_for(&out.body, platform.shape())).await
        }
        .await;
        match result {
            Ok(refs) => {
                backoff = Duration::from_secs(1);
                let refs: Vec<String> = refs.into_iter().map(|r| r.0).collect();
                if let Err(e) = bridge.store.delivered(&out, &refs) {
                    tracing::error!("a delivered message stays in the outbox: {e}");
                }
                bridge.metrics.delivered();
            }
            Err(PlatformError::Refused(why)) => {
                // The platform will never take this one as it is: drop it rather than block the queue.
                tracing::error!(platform = name, "a message was refused and dropped: {why}");
                let _ = bridge.store.delivered(&out, &[]);
            }
            Err(e) => {
                tracing::warn!(
                    platform = name,
                    "delivery paused: {e}; retrying in {backoff:?}"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}
