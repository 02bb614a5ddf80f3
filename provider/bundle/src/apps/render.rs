//! What the apps and static sites add to a bundle: their uploaded files, their secret env files, and the values the
//! Compose, Caddy and Authelia templates render them from.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    routes, secret_env_path, service, volume, App, Place, Route, APPS_DIR, SECRET_ENV_SOURCE,
    SITES_DIR,
};
use crate::render::{File, FileKind, RenderError};
use crate::settings::{Secrets, Settings};
use crate::tree::{self, Tree};
use crate::validate::Invalid;

/// One app's Compose service as the template writes it.
#[derive(Debug, Clone, Serialize)]
pub struct ComposeApp {
    pub service: String,
    pub image: String,
    /// The build context relative to `remote_dir` (`./apps/<name>`), with `build`.
    pub build: Option<String>,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `./secrets/app-<name>.env`, with a secret env.
    pub env_file: Option<String>,
    /// `volume:path` pairs.
    pub volumes: Vec<(String, String)>,
    pub memory: Option<String>,
    /// The configuration-hash label.
    pub hash: String,
}

/// A host route's site block, on each port the stack serves.
#[derive(Debug, Clone, Serialize)]
pub struct HostRoute {
    pub host: String,
    pub route: Route,
}

/// What the apps and sites add to a bundle.
#[derive(Debug, Clone, Default)]
pub struct RenderedApps {
    /// Build contexts under `apps/<name>/`, sites under `sites/<name>/`, and the secret env files supplied now.
    pub files: BTreeMap<String, File>,
    pub compose: Vec<ComposeApp>,
    /// Routes on their own names.
    pub host_routes: Vec<HostRoute>,
    /// Routes under a path of the main site: served without the login, and behind it.
    pub public_paths: Vec<Route>,
    pub login_paths: Vec<Route>,
    /// A rule per route on its own name behind a login (public ones never reach Authelia).
    pub auth_rules: Vec<AuthRule>,
    /// Caddy mounts `sites/`.
    pub has_sites: bool,
}

impl RenderedApps {
    /// Every Compose volume the apps use.
    pub fn volumes(&self) -> Vec<&str> {
        self.compose
            .iter()
            .flat_map(|c| c.volumes.iter().map(|(v, _)| v.as_str()))
            .collect()
    }
}

/// One Authelia access rule.
#[derive(Debug, Clone, Serialize)]
pub struct AuthRule {
    pub domain: String,
    pub policy: &'static str,
}

/// What an app's container is made of (not where or behind which login Caddy serves it), for its label's hash: a
/// change of `host`, `auth` or `health` reloads Caddy without replacing the container.
#[derive(Serialize)]
struct ContainerInputs<'a> {
    image: &'a str,
    port: u16,
    env: &'a [(String, String)],
    secret_env_wo_version: Option<i64>,
    volumes: &'a [(String, String)],
    command: &'a [String],
    memory: Option<&'a str>,
}

/// Reads the apps' build directories and the sites' directories and renders what they add. Unreadable or
/// unusable directories are [`RenderError::Invalid`] naming the attribute.
pub fn render(s: &Settings, secrets: &Secrets) -> Result<RenderedApps, RenderError> {
    let mut out = RenderedApps::default();
    let tree_hashes = read_trees(s, &mut out.files)?;
    out.files.extend(secret_env_files(s, secrets)?);
    for (name, app) in &s.apps {
        out.compose
            .push(compose_app(s, name, app, tree_hashes.get(name.as_str())));
    }
    out.has_sites = !s.static_sites.is_empty();
    for r in routes(&s.apps, &s.static_sites, &s.domain) {
        match &r.place {
            Place::Host(h) => {
                if !r.is_public() {
                    out.auth_rules.push(AuthRule {
                        domain: h.clone(),
                        policy: r.policy(),
                    });
                }
                out.host_routes.push(HostRoute {
                    host: h.clone(),
                    route: r,
                });
            }
            Place::Path(_) if r.is_public() => out.public_paths.push(r),
            Place::Path(_) => out.login_paths.push(r),
        }
    }
    Ok(out)
}

/// The build and site directories' files into `files`; the tree hash of each app's build.
fn read_trees<'s>(
    s: &'s Settings,
    files: &mut BTreeMap<String, File>,
) -> Result<BTreeMap<&'s str, String>, RenderError> {
    let mut errors = Vec::new();
    let mut tree_hashes = BTreeMap::new();
    for (name, app) in &s.apps {
        let Some(dir) = &app.build else { continue };
        match read_build(Path::new(dir)) {
            Ok(t) => {
                tree_hashes.insert(name.as_str(), t.hash());
                add_tree(files, &format!("{APPS_DIR}/{name}"), t);
            }
            Err(e) => errors.push((format!("apps.{name}.build"), e)),
        }
    }
    for (name, site) in &s.static_sites {
        match tree::read(Path::new(&site.dir)) {
            Ok(t) => add_tree(files, &format!("{SITES_DIR}/{name}"), t),
            Err(e) => errors.push((format!("static_sites.{name}.dir"), e)),
        }
    }
    if errors.is_empty() {
        Ok(tree_hashes)
    } else {
        Err(RenderError::Invalid(errors))
    }
}

/// The secret env files this apply supplies (apps with a `secret_env_wo_version` only), single-quoted values.
fn secret_env_files(
    s: &Settings,
    secrets: &Secrets,
) -> Result<BTreeMap<String, File>, RenderError> {
    let mut files = BTreeMap::new();
    for (name, env) in &secrets.app_secret_env {
        if s.apps
            .get(name)
            .and_then(|a| a.secret_env_wo_version)
            .is_none()
        {
            continue;
        }
        let mut text = format!(
            "# Rendered by cloudcode {}: the secret env of app {name} (app_secret_env_wo).\n",
            crate::CLOUDCODE_VERSION
        );
        for (k, v) in env {
            let quoted = crate::escape::dotenv_quote(v).map_err(|_| {
                RenderError::Invalid(vec![(
                    format!("app_secret_env_wo.{name}.{k}"),
                    Invalid::new("cannot be written to an env file"),
                )])
            })?;
            text.push_str(&format!("{k}={quoted}\n"));
        }
        files.insert(
            secret_env_path(name),
            File {
                bytes: text.into_bytes(),
                mode: 0o600,
                kind: FileKind::Secret {
                    source: SECRET_ENV_SOURCE,
                },
            },
        );
    }
    Ok(files)
}

/// One app's Compose service.
fn compose_app(s: &Settings, name: &str, app: &App, tree_hash: Option<&String>) -> ComposeApp {
    let image = super::image(name, app, tree_hash.map(String::as_str));
    let volumes: Vec<(String, String)> = app
        .volumes
        .iter()
        .map(|(v, path)| (volume(name, v), path.clone()))
        .collect();
    // The stack's time zone unless the app sets its own (a second TZ key would break the Compose file).
    let env: Vec<(String, String)> = (!app.env.contains_key("TZ"))
        .then(|| ("TZ".to_string(), s.timezone.clone()))
        .into_iter()
        .chain(app.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    // The image name carries a build's tree hash; serde_json keeps the order written here.
    let inputs = ContainerInputs {
        image: &image,
        port: app.port,
        env: &env,
        secret_env_wo_version: app.secret_env_wo_version,
        volumes: &volumes,
        command: &app.command,
        memory: app.memory.as_deref(),
    };
    let hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&inputs).unwrap_or_default(),
    ));
    ComposeApp {
        service: service(name),
        build: app.build.as_ref().map(|_| format!("./{APPS_DIR}/{name}")),
        command: app.command.clone(),
        env,
        env_file: app
            .secret_env_wo_version
            .map(|_| format!("./{}", secret_env_path(name))),
        volumes,
        memory: app.memory.clone(),
        hash,
        image,
    }
}

fn read_build(dir: &Path) -> Result<Tree, Invalid> {
    let t = tree::read(dir)?;
    if !t.files.contains_key("Dockerfile") {
        return Err(Invalid::new(format!(
            "{} has no Dockerfile at its top; build needs one",
            dir.display()
        )));
    }
    Ok(t)
}

fn add_tree(files: &mut BTreeMap<String, File>, prefix: &str, t: Tree) {
    for (rel, f) in t.files {
        files.insert(
            format!("{prefix}/{rel}"),
            File {
                bytes: f.bytes,
                mode: f.mode,
                kind: FileKind::Managed,
            },
        );
    }
}

/// The host's files of apps and sites the bundle no longer has (deleted from a directory, or a removed app's or
/// site's), and the secret env files of apps without one now: what a deploy removes.
pub fn stale<'h>(
    bundle: &crate::Bundle,
    host_files: impl IntoIterator<Item = &'h str>,
    host_secrets: impl IntoIterator<Item = &'h str>,
) -> Vec<String> {
    let in_tree =
        |p: &str| p.starts_with(&format!("{APPS_DIR}/")) || p.starts_with(&format!("{SITES_DIR}/"));
    let wanted_secret = |name: &str| {
        bundle.manifest.inputs.apps.iter().any(|(app, a)| {
            a.secret_env_wo_version.is_some() && secret_env_path(app) == format!("secrets/{name}")
        })
    };
    // Only names the host's removal can carry (a hand-made `apps/x/a b` is left alone rather than split).
    host_files
        .into_iter()
        .filter(|p| in_tree(p) && tree::carried(p) && !bundle.files.contains_key(*p))
        .map(str::to_string)
        .chain(
            host_secrets
                .into_iter()
                .filter(|n| n.starts_with(super::SERVICE_PREFIX) && n.ends_with(".env"))
                .filter(|n| !wanted_secret(n))
                .map(|n| format!("secrets/{n}")),
        )
        .collect()
}
