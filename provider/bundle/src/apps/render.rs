//! What the apps and static sites add to a bundle: their uploaded files, their secret env files, and the values the
//! Compose, Caddy and Authelia templates render them from.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    routes, secret_env_path, service, volume, Place, Route, APPS_DIR, SECRET_ENV_SOURCE, SITES_DIR,
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
    /// Every Compose volume the apps use.
    pub volumes: Vec<String>,
    /// Routes on their own names, and under a path of the main site.
    pub host_routes: Vec<HostRoute>,
    pub path_routes: Vec<Route>,
    /// Routes Authelia needs a rule for (not the public ones on their own names, which Caddy never asks about).
    pub auth_rules: Vec<AuthRule>,
    /// Caddy mounts `sites/`.
    pub has_sites: bool,
}

/// One Authelia access rule.
#[derive(Debug, Clone, Serialize)]
pub struct AuthRule {
    pub domain: String,
    pub resource: Option<String>,
    pub policy: &'static str,
}

/// Reads the apps' build directories and the sites' directories and renders what they add. Unreadable or
/// unusable directories are [`RenderError::Invalid`] naming the attribute.
pub fn render(s: &Settings, secrets: &Secrets) -> Result<RenderedApps, RenderError> {
    let mut out = RenderedApps::default();
    let mut errors = Vec::new();
    let mut trees: BTreeMap<&str, Tree> = BTreeMap::new();
    for (name, app) in &s.apps {
        let Some(dir) = &app.build else { continue };
        match read_build(Path::new(dir)) {
            Ok(t) => {
                add_tree(&mut out.files, &format!("{APPS_DIR}/{name}"), &t);
                trees.insert(name, t);
            }
            Err(e) => errors.push((format!("apps.{name}.build"), e)),
        }
    }
    for (name, site) in &s.static_sites {
        match tree::read(Path::new(&site.dir)) {
            Ok(t) => add_tree(&mut out.files, &format!("{SITES_DIR}/{name}"), &t),
            Err(e) => errors.push((format!("static_sites.{name}.dir"), e)),
        }
    }
    if !errors.is_empty() {
        return Err(RenderError::Invalid(errors));
    }
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
            text.push_str(&format!("{k}='{v}'\n"));
        }
        out.files.insert(
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
    for (name, app) in &s.apps {
        let tree_hash = trees.get(name.as_str()).map(Tree::hash);
        let image = super::image(name, app, tree_hash.as_deref());
        let volumes: Vec<(String, String)> = app
            .volumes
            .iter()
            .map(|(v, path)| (volume(name, v), path.clone()))
            .collect();
        out.volumes.extend(volumes.iter().map(|(v, _)| v.clone()));
        let mut h = Sha256::new();
        // serde_json of the settings is deterministic (maps are sorted); the tree hash stands for the build's files.
        h.update(serde_json::to_vec(app).unwrap_or_default());
        h.update(format!(
            "\ntree={}\n",
            tree_hash.as_deref().unwrap_or("none")
        ));
        h.update(format!("timezone={}\n", s.timezone));
        out.compose.push(ComposeApp {
            service: service(name),
            image,
            build: app.build.as_ref().map(|_| format!("./{APPS_DIR}/{name}")),
            command: app.command.clone(),
            env: app
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            env_file: app
                .secret_env_wo_version
                .map(|_| format!("./{}", secret_env_path(name))),
            volumes,
            memory: app.memory.clone(),
            hash: hex::encode(h.finalize()),
        });
    }
    out.has_sites = !s.static_sites.is_empty();
    for r in routes(&s.apps, &s.static_sites, &s.domain) {
        if let Place::Host(h) = &r.place {
            if r.auth != "public" {
                out.auth_rules.push(AuthRule {
                    domain: h.clone(),
                    resource: None,
                    policy: r.policy(),
                });
            }
            out.host_routes.push(HostRoute {
                host: h.clone(),
                route: r,
            });
        } else {
            out.auth_rules.push(AuthRule {
                domain: s.domain.clone(),
                resource: r.resource(),
                policy: r.policy(),
            });
            out.path_routes.push(r);
        }
    }
    // Longer prefixes first, so Authelia's first matching rule is the most specific one.
    out.auth_rules
        .sort_by_key(|r| std::cmp::Reverse(r.resource.as_ref().map_or(0, String::len)));
    Ok(out)
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

fn add_tree(files: &mut BTreeMap<String, File>, prefix: &str, t: &Tree) {
    for (rel, f) in &t.files {
        files.insert(
            format!("{prefix}/{rel}"),
            File {
                bytes: f.bytes.clone(),
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
    host_files
        .into_iter()
        .filter(|p| in_tree(p) && !bundle.files.contains_key(*p))
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
