//! The binary's edge (arguments, logging, runtime): `serve` runs the bridge until SIGTERM/SIGINT; `link`, `status`
//! and `users` answer the CLI (`cloudcode im qr|status|users`, run in the container over SSH) as one JSON line.
use std::path::PathBuf;
use std::sync::Arc;

use crate::bridge::{BoxConfig, Bridge, Settings};
use crate::config::{self, FileConfig};
use crate::platform::dingtalk::{DingTalk, DingTalkConfig};
use crate::platform::telegram::{Telegram, TelegramConfig};
use crate::platform::Platform;
use crate::store::Store;
use crate::{binding, opencode};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "cloudcode-im",
    version,
    about = "cloudcode's chat bridge between Telegram/DingTalk and OpenCode"
)]
struct Args {
    /// The bridge's configuration (rendered by the cloudcode stack).
    #[arg(
        long,
        env = "CLOUDCODE_IM_CONFIG",
        default_value = "/etc/cloudcode-im/config.json",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge (the default).
    Serve,
    /// Print a box's bind code and deep link as JSON (what `cloudcode im qr` shows as a QR code).
    Link {
        /// The box (default: the first one).
        #[arg(long = "box")]
        box_id: Option<String>,
    },
    /// Print the bridge's state as JSON: boxes, bound users, waiting messages.
    Status,
    /// Print the bound users as JSON, with how many messages wait for each and how many they missed.
    Users,
}

/// `main` of `cloudcode-im` (and of the test harness's copy of it).
pub fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let cfg = FileConfig::load(&args.config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match args.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(cfg).await,
            Command::Link { box_id } => link(cfg, box_id).await,
            Command::Status => status(cfg),
            Command::Users => users(cfg),
        }
    })
}

fn open_store(cfg: &FileConfig) -> Result<Arc<Store>> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data_dir {} cannot be created", cfg.data_dir.display()))?;
    Ok(Arc::new(Store::open(
        &cfg.data_dir.join("im.db"),
        cfg.backlog,
    )?))
}

fn proxy(cfg: &FileConfig) -> Result<Option<(String, String)>> {
    match &cfg.proxy_file {
        None => Ok(None),
        Some(p) => {
            let url = config::read_secret("proxy_file", p)?;
            let shown = config::check_proxy(&url)?;
            Ok(Some((url, shown)))
        }
    }
}

fn platforms(cfg: &FileConfig, proxy: Option<&str>) -> Result<Vec<Arc<dyn Platform>>> {
    let mut out: Vec<Arc<dyn Platform>> = Vec::new();
    if let Some(t) = &cfg.telegram {
        let token = config::read_secret("telegram.token_file", &t.token_file)?;
        out.push(Arc::new(Telegram::new(TelegramConfig {
            token,
            api_base: t.api_base.clone(),
            proxy: proxy.map(str::to_string),
        })?));
    }
    if let Some(d) = &cfg.dingtalk {
        let secret = config::read_secret("dingtalk.client_secret_file", &d.client_secret_file)?;
        let mut c = DingTalkConfig::new(d.client_id.clone(), secret.into());
        c.robot_code = d.robot_code.clone();
        if let Some(b) = &d.api_base {
            c.api_base = b.clone();
        }
        if let Some(b) = &d.oapi_base {
            c.oapi_base = b.clone();
        }
        c.proxy = proxy.map(str::to_string);
        out.push(Arc::new(DingTalk::new(c)?));
    }
    Ok(out)
}

fn boxes(cfg: &FileConfig) -> Result<Vec<BoxConfig>> {
    cfg.boxes
        .iter()
        .map(|b| {
            let password = match &b.opencode_password_file {
                Some(p) => Some(config::read_secret("boxes.opencode_password_file", p)?),
                None => None,
            };
            Ok(BoxConfig {
                id: b.id.clone(),
                name: b.name.clone(),
                opencode: opencode::Client::new(&b.opencode_url, password)?,
                web_url: b.web_url.clone(),
            })
        })
        .collect()
}

async fn serve(cfg: FileConfig) -> Result<()> {
    let proxy = proxy(&cfg)?;
    let store = open_store(&cfg)?;
    let settings = Settings {
        online_window: cfg.online_window(),
        rate_per_minute: cfg.rate_per_minute,
        proxy_shown: proxy.as_ref().map(|(_, s)| s.clone()),
        ..Settings::default()
    };
    let bridge = Bridge::new(
        store,
        boxes(&cfg)?,
        platforms(&cfg, proxy.as_ref().map(|(u, _)| u.as_str()))?,
        settings,
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping: finishing the message being sent");
        stop.cancel();
    });
    tracing::info!(
        boxes = cfg.boxes.len(),
        "cloudcode-im {} serving",
        env!("CARGO_PKG_VERSION")
    );
    for p in ["telegram", "dingtalk"] {
        store_clear(&bridge, p);
    }
    bridge.run(shutdown).await?;
    Ok(())
}

fn store_clear(bridge: &Bridge, platform: &str) {
    if let Err(e) = bridge.store.clear_fault(platform) {
        tracing::warn!("an old fault was not cleared: {e}");
    }
}

async fn link(cfg: FileConfig, box_id: Option<String>) -> Result<()> {
    let b = match &box_id {
        Some(id) => cfg
            .boxes
            .iter()
            .find(|b| &b.id == id)
            .with_context(|| format!("box: no box {id:?} here"))?,
        None => &cfg.boxes[0],
    };
    let store = open_store(&cfg)?;
    let payload = binding::payload(&b.id, &store.secret(&b.id)?);
    let proxy = proxy(&cfg)?;
    let mut links = serde_json::Map::new();
    for p in platforms(&cfg, proxy.as_ref().map(|(u, _)| u.as_str()))? {
        let link = p.deep_link(&payload).await?;
        links.insert(p.name().to_string(), json!(link));
    }
    let out = json!({ "box": b.id, "name": b.name, "payload": payload, "generation": store.generation(&b.id)?, "links": links });
    println!("{out}");
    Ok(())
}

fn status(cfg: FileConfig) -> Result<()> {
    let store = open_store(&cfg)?;
    let boxes: Vec<_> = cfg
        .boxes
        .iter()
        .map(|b| json!({ "id": b.id, "name": b.name, "users": store.bindings_of_box(&b.id).map(|v| v.len()).unwrap_or(0) }))
        .collect();
    let mut waiting = serde_json::Map::new();
    for p in ["telegram", "dingtalk"] {
        waiting.insert(p.into(), json!(store.outbox_len(p)?));
    }
    let platforms: Vec<&str> = [
        cfg.telegram.as_ref().map(|_| "telegram"),
        cfg.dingtalk.as_ref().map(|_| "dingtalk"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let faults: serde_json::Map<String, serde_json::Value> = store
        .faults()?
        .into_iter()
        .map(|(p, m, at)| (p, json!({ "message": m, "at": at })))
        .collect();
    println!(
        "{}",
        json!({ "platforms": platforms, "boxes": boxes, "waiting": waiting, "faults": faults })
    );
    Ok(())
}

fn users(cfg: FileConfig) -> Result<()> {
    let store = open_store(&cfg)?;
    let list: Vec<_> = store
        .all_bindings()?
        .into_iter()
        .map(|b| {
            let (waiting, missed) = store.backlog(&b.platform, &b.user).unwrap_or((0, 0));
            json!({ "platform": b.platform, "user": b.user, "name": b.name, "box": b.box_id, "label": b.label,
                    "last_seen": b.last_seen, "waiting": waiting, "missed": missed })
        })
        .collect();
    println!("{}", json!({ "users": list }));
    Ok(())
}
