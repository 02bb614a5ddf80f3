//! The stack's outbound proxy (`proxy_wo`): the devbox's proxy environment file, the URL file the chat bridge
//! falls back to, and the `NO_PROXY` list that keeps the stack's own names direct.

use minijinja::{context, Environment, Value};

use crate::render::{
    paths, render_one, File, FileKind, ImSecret, RenderError, AUTH_SERVICE, IM_SERVICE,
};
use crate::runtime::DEVBOX_COLOURS;
use crate::settings::{ImSettings, Secrets, Settings};

/// The write-only attribute both files come from.
pub const SOURCE: &str = "proxy_wo";

/// The proxy URL as a Compose secret, for a bridge without a proxy of its own.
pub const BRIDGE_SECRET: ImSecret = ImSecret {
    name: "proxy",
    path: paths::PROXY_URL,
    source: SOURCE,
};

/// Both files the proxy writes (relative to `remote_dir`).
pub const FILES: [&str; 2] = [paths::PROXY_ENV, paths::PROXY_URL];

/// Names that always bypass the proxy: loopback, the Compose services, and the site's own names.
pub fn no_proxy(s: &Settings) -> String {
    let mut names: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "::1",
        "caddy",
        AUTH_SERVICE,
        "devbox",
        IM_SERVICE,
    ]
    .into_iter()
    .chain(DEVBOX_COLOURS)
    .map(str::to_string)
    .collect();
    names.push(s.domain.clone());
    names.push(format!("auth.{}", s.domain));
    names.extend(s.no_proxy.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names.join(",")
}

/// The bridge's proxy secret: its own (`im.proxy_wo`) when set, else the stack's when set.
pub fn bridge_secret(s: &Settings, im: &ImSettings) -> Option<ImSecret> {
    if im.proxy() {
        Some(crate::render::IM_SECRETS[2])
    } else {
        s.proxy_wo_version.map(|_| BRIDGE_SECRET)
    }
}

/// The proxy's files when these settings have a proxy and `proxy_wo` is supplied in this apply (mode 0600): the
/// devbox's env file and the URL.
pub fn secret_files(
    env: &Environment<'static>,
    s: &Settings,
    secrets: &Secrets,
    base: &Value,
) -> Result<Vec<(String, File)>, RenderError> {
    let Some(url) = secrets
        .proxy
        .as_ref()
        .filter(|_| s.proxy_wo_version.is_some())
    else {
        return Ok(Vec::new());
    };
    // Bun (OpenCode) and npm speak only to HTTP proxies: a SOCKS proxy goes into ALL_PROXY alone (curl, git).
    let is_http = url.starts_with("http://") || url.starts_with("https://");
    let ctx =
        context! { ..base.clone(), ..context! { proxy_url => url, proxy_is_http => is_http } };
    let secret = |bytes: Vec<u8>| File {
        bytes,
        mode: 0o600,
        kind: FileKind::Secret { source: SOURCE },
    };
    Ok(vec![
        (
            paths::PROXY_ENV.to_string(),
            secret(render_one(env, paths::PROXY_ENV, &ctx)?),
        ),
        (
            paths::PROXY_URL.to_string(),
            secret(url.as_bytes().to_vec()),
        ),
    ])
}

/// The proxy's files when these settings have no proxy (removed after a healthy deploy).
pub fn retired(s: &Settings) -> Vec<String> {
    if s.proxy_wo_version.is_some() {
        Vec::new()
    } else {
        FILES.iter().map(|p| p.to_string()).collect()
    }
}
