//! The bridge: wires platforms, boxes and the store together and runs the tasks (one receiver and one outbox
//! worker per platform, one event watcher per box). Commands live in `commands.rs`, OpenCode's side in
//! `sessions.rs`, delivery in `outbox.rs`, the per-turn progress line in `progress.rs`.
mod commands;
mod outbox;
mod progress;
mod sessions;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};

use crate::opencode;
use crate::platform::{Outbound, Platform, PlatformError};
use crate::store::{Binding, Store};

pub use outbox::shape_for;

/// How long a stopping bridge keeps handling messages its platforms already handed over (`docker stop` waits
/// 10 s before it kills).
const HANDLER_DRAIN: Duration = Duration::from_secs(5);

/// The bot's commands with their one-line descriptions (Telegram's command menu, `/help`).
pub const COMMANDS: &[(&str, &str)] = &[
    ("start", "bind this chat to a box (scan the box's QR code)"),
    ("help", "what the bot can do"),
    ("status", "the current box, its sessions and who is online"),
    ("list", "the boxes you are bound to"),
    ("switch", "switch to another of your boxes: /switch <name>"),
    ("rename", "rename the current box for you: /rename <name>"),
    ("unbind", "unbind the current box (or /unbind <name>)"),
    (
        "reset_qr",
        "new QR code for the current box; unbinds everyone",
    ),
    ("web", "the box's web address (OpenCode and the terminal)"),
    ("sessions", "recent sessions of the current box"),
    ("new", "start a new session: /new [title]"),
    ("cancel", "stop the running task and drop queued messages"),
    (
        "verbosity",
        "how much progress to show: quiet, normal or verbose",
    ),
    ("proxy", "the outbound proxy the bot uses"),
];

/// One box the bridge serves: its OpenCode server and how it is named and reached.
pub struct BoxConfig {
    /// The short box id used in bind codes (letters and digits).
    pub id: String,
    /// The default name users see (`/rename` changes it per user).
    pub name: String,
    pub opencode: opencode::Client,
    /// `https://<domain>`: the web UI, for `/web`.
    pub web_url: Option<String>,
}

/// Settings of the bridge's behaviour.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Users active within this window are listed as online.
    pub online_window: Duration,
    /// Messages a user may send per minute before being asked to slow down.
    pub rate_per_minute: u32,
    /// The outbound proxy as shown to users (scheme, host and port; never credentials).
    pub proxy_shown: Option<String>,
    /// Without an event (OpenCode sends heartbeats) for this long, the stream is considered dead and rebuilt.
    pub stream_silence: Duration,
    /// How often the sessions of unanswered prompts are looked at directly, whatever the stream says.
    pub outstanding_check: Duration,
    /// Minimum time between two edits of a progress message.
    pub progress_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            online_window: Duration::from_secs(15 * 60),
            rate_per_minute: 20,
            proxy_shown: None,
            stream_silence: Duration::from_secs(45),
            outstanding_check: Duration::from_secs(15),
            progress_interval: Duration::from_secs(3),
        }
    }
}

/// Counters for `status` and the benchmarks.
#[derive(Default)]
pub struct Metrics {
    pub delivered: AtomicU64,
    pub prompts: AtomicU64,
    pub stream_reconnects: AtomicU64,
}

impl Metrics {
    fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Bridge {
    pub store: Arc<Store>,
    boxes: BTreeMap<String, BoxConfig>,
    platforms: BTreeMap<&'static str, Arc<dyn Platform>>,
    settings: Settings,
    /// Wakes a platform's outbox worker (a stored permit, so a wake before the worker waits is not lost).
    outbox_wake: BTreeMap<&'static str, Notify>,
    pub metrics: Metrics,
    /// Per-user message times for the rate limit.
    recent: Mutex<HashMap<(String, String), Vec<Instant>>>,
    /// Progress lines of running turns, by (box, session).
    progress: Mutex<HashMap<(String, String), progress::Handle>>,
    /// Who answered a permission or question from the chat (request id → name), for the edited message.
    answered_by: Mutex<HashMap<String, String>>,
    /// Session titles by (box, session), kept current from `session.updated` events: a finished turn is
    /// delivered without asking OpenCode for the title again.
    titles: Mutex<HashMap<(String, String), String>>,
    /// Prompts (message ids) whose call to OpenCode is in progress in this process: a resync or a periodic look
    /// that finds one still marked queued or sending leaves it to that call.
    in_flight: Mutex<std::collections::HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{platform}: {source}")]
    Platform {
        platform: &'static str,
        source: PlatformError,
    },
}

impl Bridge {
    pub fn new(
        store: Arc<Store>,
        boxes: Vec<BoxConfig>,
        platforms: Vec<Arc<dyn Platform>>,
        settings: Settings,
    ) -> Arc<Self> {
        let outbox_wake = platforms
            .iter()
            .map(|p| (p.name(), Notify::new()))
            .collect();
        Arc::new(Bridge {
            store,
            boxes: boxes.into_iter().map(|b| (b.id.clone(), b)).collect(),
            platforms: platforms.into_iter().map(|p| (p.name(), p)).collect(),
            settings,
            outbox_wake,
            metrics: Metrics::default(),
            recent: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            answered_by: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(std::collections::HashSet::new()),
            titles: Mutex::new(HashMap::new()),
        })
    }

    pub fn boxes(&self) -> impl Iterator<Item = &BoxConfig> {
        self.boxes.values()
    }

    pub fn platform(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.platforms.get(name)
    }

    /// Runs until a platform fails fatally (another poller on the token, a refused token) or `shutdown` fires.
    /// Every other failure is retried inside the tasks.
    pub async fn run(
        self: Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<(), BridgeError> {
        let mut tasks = tokio::task::JoinSet::new();
        // Command handlers finish what their platform already handed over (Telegram counts an update as
        // delivered once the next poll asks past it, so a prompt dropped here would be lost).
        let mut handlers = tokio::task::JoinSet::new();
        // Outbox workers stop between two messages on shutdown, so a message is never sent without being marked.
        let mut outboxes = tokio::task::JoinSet::new();
        for b in self.boxes.keys() {
            tasks.spawn(sessions::watch(self.clone(), b.clone()).map_ok());
        }
        for p in self.platforms.values() {
            let (tx, rx) = mpsc::channel(256);
            let (pl, me) = (p.clone(), self.clone());
            tasks.spawn(async move {
                if let Err(e) = pl.receive(tx).await {
                    tracing::error!("{}: {e}", pl.name());
                    if let Err(e) = me.store.set_fault(pl.name(), &e.to_string()) {
                        tracing::error!("the fault was not recorded: {e}");
                    }
                }
                Ok(())
            });
            let me = self.clone();
            handlers.spawn(commands::handle_all(me, p.clone(), rx));
            outboxes.spawn(outbox::run(self.clone(), p.clone(), shutdown.clone()));
        }
        // A platform that cannot go on (refused token, another poller on it) is reported — logged and kept in
        // the store for `cloudcode-im status` — and not retried: the rest keeps serving until shutdown.
        shutdown.cancelled().await;
        shutdown.cancel();
        // Stopping the receivers closes the handlers' queues: each handler drains its queue, then ends.
        tasks.abort_all();
        if tokio::time::timeout(HANDLER_DRAIN, async {
            while handlers.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!("messages still being handled after {HANDLER_DRAIN:?}: stopping anyway");
            handlers.abort_all();
        }
        if tokio::time::timeout(Duration::from_secs(20), async {
            while outboxes.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!("an outbox worker did not stop in 20 s");
        }
        Ok(())
    }

    /// The "online" footer for a box: who was active recently, by name.
    fn online_footer(&self, box_id: &str) -> String {
        let cutoff = crate::store::now() - self.settings.online_window.as_secs() as i64;
        let mut names: Vec<String> = self
            .store
            .bindings_of_box(box_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.last_seen >= cutoff)
            .map(|b| b.name)
            .collect();
        names.dedup();
        if names.is_empty() {
            "📡 Online: nobody".into()
        } else {
            format!("📡 Online: {}", names.join(", "))
        }
    }

    /// Queues a message for every user bound to a box. `once` makes it at most once per user (answers,
    /// approvals); `tag` remembers where it went, to edit it later.
    fn broadcast(&self, box_id: &str, body: &Outbound, tag: Option<&str>, once: Option<&str>) {
        for b in self.store.bindings_of_box(box_id).unwrap_or_default() {
            self.enqueue(&b, body, tag, once);
        }
    }

    fn enqueue(&self, to: &Binding, body: &Outbound, tag: Option<&str>, once: Option<&str>) {
        match self.store.enqueue(to, body, tag, once) {
            Ok(true) => {
                if let Some(n) = self.outbox_wake.get(to.platform.as_str()) {
                    n.notify_one();
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!("a message could not be queued: {e}"),
        }
    }
}

/// Tasks that never fail fatally end as Ok.
trait MapOk: std::future::Future<Output = ()> + Sized {
    fn map_ok(self) -> impl std::future::Future<Output = Result<(), BridgeError>> {
        async move {
            self.await;
            Ok(())
        }
    }
}
impl<F: std::future::Future<Output = ()>> MapOk for F {}
