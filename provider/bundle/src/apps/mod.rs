//! The user's own apps and static sites (`apps`, `static_sites` of `cloudcode_stack`): their settings, their rules,
//! and where and behind which login each is served.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::validate::{image_ref, is_label, shown, Invalid};

pub mod render;
pub use render::{stale, RenderedApps};

/// An app's Compose service is `app-<name>`; its secret env file `secrets/app-<name>.env`.
pub const SERVICE_PREFIX: &str = "app-";
/// Where an app's build directory goes on the host, below `remote_dir` (`apps/<name>/`).
pub const APPS_DIR: &str = "apps";
/// Where a static site's files go on the host, below `remote_dir` (`sites/<name>/`), mounted into Caddy.
pub const SITES_DIR: &str = "sites";
/// Where Caddy sees `sites/`.
pub const SITES_MOUNT: &str = "/srv/sites";
/// The write-only attribute an app's secret env comes from.
pub const SECRET_ENV_SOURCE: &str = "app_secret_env_wo";
/// `auth` values, strongest first; `two_factor` is the default.
pub const AUTH_MODES: [&str; 3] = ["two_factor", "one_factor", "public"];

/// One app (`apps.<name>`): a container from an image, or built on the host from a local directory, served over
/// HTTPS on its own name or under a path of the main domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct App {
    /// An image reference; exactly one of `image` and `build`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A local directory with a `Dockerfile`, uploaded (changed files only) and built on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// The port the app listens on inside its container.
    pub port: u16,
    /// `None`: `<name>.<domain>`; a DNS label: `<label>.<domain>`; a name under the domain; or `/prefix` on the
    /// main domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `two_factor` (default), `one_factor` or `public`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Version of its entry in the write-only `app_secret_env_wo`; `None`: the app has no secret env.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_env_wo_version: Option<i64>,
    /// Volume name → path in the container (Compose volume `app_<name>_<volume>`, kept on destroy).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, String>,
    /// An HTTP path Caddy checks (active health check) before sending requests to the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Memory limit such as `256m` or `1g`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// One static site (`static_sites.<name>`): a local directory served by Caddy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StaticSite {
    pub dir: String,
    /// As [`App::host`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// As [`App::auth`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// Where an app or site is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum Place {
    /// Its own site block: the (ASCII) host name.
    Host(String),
    /// A path prefix of the main site, without the trailing slash (`/api`).
    Path(String),
}

/// What answers at a [`Place`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// `reverse_proxy` to the app's service.
    App {
        upstream: String,
        health: Option<String>,
    },
    /// `file_server` from the site's directory as Caddy sees it.
    Site { root: String },
}

/// An app or site as Caddy and Authelia see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub name: String,
    pub place: Place,
    /// One of [`AUTH_MODES`].
    pub auth: String,
    pub target: Target,
}

impl Route {
    /// Authelia's policy for a route on its own name (`public` ones get no rule and no login).
    pub fn policy(&self) -> &'static str {
        match self.auth.as_str() {
            "one_factor" => "one_factor",
            _ => "two_factor",
        }
    }

    /// A route of the main site that Caddy serves without the login.
    pub fn is_public(&self) -> bool {
        self.auth == "public"
    }
}

/// The Compose service of app `name`.
pub fn service(name: &str) -> String {
    format!("{SERVICE_PREFIX}{name}")
}

/// The secret env file of app `name`, relative to `remote_dir`.
pub fn secret_env_path(name: &str) -> String {
    format!("secrets/{SERVICE_PREFIX}{name}.env")
}

/// The image an app runs: its `image`, or the tag its build gets on the host (named after the build's tree hash, so
/// changed files make a new image and Compose builds it).
pub fn image(name: &str, app: &App, tree_hash: Option<&str>) -> String {
    match &app.image {
        Some(i) => i.clone(),
        None => {
            let h = tree_hash.unwrap_or_default();
            format!("cloudcode-app-{name}:{}", &h[..h.len().min(16)])
        }
    }
}

/// The Compose volume of an app's volume.
pub fn volume(app: &str, volume: &str) -> String {
    format!("app_{}_{}", app.replace('-', "_"), volume.replace('-', "_"))
}

/// Paths of the main site that OpenCode and the terminal answer on: an app or site may not take them.
const MAIN_SITE_PATHS: [&str; 24] = [
    "/terminal",
    "/pty",
    "/global",
    "/session",
    "/event",
    "/assets",
    "/config",
    "/file",
    "/find",
    "/project",
    "/provider",
    "/agent",
    "/path",
    "/mode",
    "/tui",
    "/auth",
    "/log",
    "/lsp",
    "/mcp",
    "/experimental",
    "/doc",
    "/command",
    "/instance",
    "/permission",
];

/// An app's or site's name: `^[a-z][a-z0-9-]{0,30}$`, not ending in `-`, not `auth`.
pub fn name(v: &str) -> Result<(), Invalid> {
    let ok = v.len() <= 31 && v.starts_with(|c: char| c.is_ascii_lowercase()) && is_label(v);
    if !ok {
        return Err(Invalid::new(format!(
            "{} is not a valid name: use 1 to 31 lower-case letters, digits and '-', starting with a letter",
            shown(v)
        )));
    }
    if v == "auth" {
        return Err(Invalid::new(
            "\"auth\" is the login portal's name (auth.<domain>); choose another name",
        ));
    }
    Ok(())
}

/// Where `host` (as [`App::host`]) puts `name` on `domain` (ASCII).
pub fn place(name: &str, host: Option<&str>, domain: &str) -> Result<Place, Invalid> {
    let Some(h) = host else {
        return Ok(Place::Host(format!("{name}.{domain}")));
    };
    if let Some(rest) = h.strip_prefix('/') {
        let segments_ok = !rest.is_empty()
            && rest.split('/').all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                    && s != "."
                    && s != ".."
            });
        if !segments_ok {
            return Err(Invalid::new(format!(
                "{} is not a path prefix such as \"/api\": use letters, digits, '-', '_' and '.' between \
                 slashes, without a trailing slash",
                shown(h)
            )));
        }
        let first = format!("/{}", rest.split('/').next().unwrap_or_default());
        if MAIN_SITE_PATHS.contains(&first.to_ascii_lowercase().as_str()) {
            return Err(Invalid::new(format!(
                "{} is a path OpenCode or the terminal answers on; choose another prefix such as \"/apps{h}\"",
                shown(h)
            )));
        }
        return Ok(Place::Path(h.to_string()));
    }
    let lower = crate::validate::ascii_domain(h);
    let full = if lower.contains('.') {
        lower
    } else {
        format!("{lower}.{domain}")
    };
    let under = full
        .strip_suffix(domain)
        .and_then(|p| p.strip_suffix('.'))
        .filter(|p| !p.is_empty() && p.split('.').all(is_label));
    match under {
        Some("auth") => Err(Invalid::new(format!(
            "{} is the login portal's name; choose another",
            shown(&full)
        ))),
        Some(_) => Ok(Place::Host(full)),
        None => Err(Invalid::new(format!(
            "{} is neither a name under {domain} (one login covers {domain} and its subdomains), a DNS label, \
             nor a path prefix such as \"/api\"",
            shown(h)
        ))),
    }
}

fn auth(v: Option<&str>) -> Result<&str, Invalid> {
    match v {
        None => Ok("two_factor"),
        Some(a) if AUTH_MODES.contains(&a) => Ok(a),
        Some(a) => Err(Invalid::new(format!(
            "{} is not one of \"two_factor\", \"one_factor\", \"public\"",
            shown(a)
        ))),
    }
}

/// An environment variable name.
pub fn env_name(v: &str) -> Result<(), Invalid> {
    let ok = v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not an environment variable name (letters, digits and '_', not starting with a digit)",
            shown(v)
        )))
    }
}

/// A secret env value: it goes into a Compose env file single-quoted ([`crate::escape::dotenv_quote`]).
pub fn secret_env_value(v: &str) -> Result<(), Invalid> {
    match crate::escape::dotenv_quote(v) {
        Ok(_) if !v.contains('\0') => Ok(()),
        _ => Err(Invalid::new(
            "a secret env value cannot hold a single quote, a backslash, a line break or a NUL (Compose's env-file \
             format)",
        )),
    }
}

fn memory(v: &str) -> Result<(), Invalid> {
    let lower = v.to_ascii_lowercase();
    let (digits, unit) = lower.split_at(lower.trim_end_matches(['b', 'k', 'm', 'g']).len());
    let factor: u64 = match unit {
        "b" | "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => 0,
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .filter(|_| !digits.is_empty() && factor > 0)
        .map(|n| n.saturating_mul(factor));
    match bytes {
        Some(b) if b >= 6 << 20 => Ok(()),
        Some(_) => Err(Invalid::new(format!(
            "{} is below Docker's smallest memory limit, 6m",
            shown(v)
        ))),
        None => Err(Invalid::new(format!(
            "{} is not a memory size such as \"256m\" or \"1g\"",
            shown(v)
        ))),
    }
}

fn container_path(v: &str) -> Result<(), Invalid> {
    if v.starts_with('/') && v != "/" && !v.contains([':', ',', '\n', '\0']) {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not an absolute path in the container (other than \"/\", without ':' or ',')",
            shown(v)
        )))
    }
}

fn http_path(v: &str) -> Result<(), Invalid> {
    // What the Caddyfile carries as one bare token (the template writes it with `caddy_token`).
    if v.starts_with('/') && crate::escape::caddy_token(v).is_ok() {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{} is not an HTTP path such as \"/health\"",
            shown(v)
        )))
    }
}

/// Every rule of `apps` and `static_sites` for a stack on `domain`: (field, error), fields named like
/// `apps.api.port` and `apps.api.env.KEY`.
pub fn validate(
    apps: &BTreeMap<String, App>,
    sites: &BTreeMap<String, StaticSite>,
    domain: &str,
) -> Vec<(String, Invalid)> {
    let mut out = Vec::new();
    let mut check = |field: String, r: Result<(), Invalid>| {
        if let Err(e) = r {
            out.push((field, e));
        }
    };
    for (n, app) in apps {
        let f = |attr: &str| format!("apps.{n}.{attr}");
        check(format!("apps.{n}"), name(n));
        match (&app.image, &app.build) {
            (Some(i), None) => check(f("image"), image_ref(i)),
            (None, Some(_)) => {}
            (Some(_), Some(_)) => check(
                f("build"),
                Err(Invalid::new(
                    "set either image or build, not both: build makes the image on the host",
                )),
            ),
            (None, None) => check(
                f("image"),
                Err(Invalid::new(
                    "set image (an image reference) or build (a local directory with a Dockerfile)",
                )),
            ),
        }
        if app.port == 0 {
            check(
                f("port"),
                Err(Invalid::new("must be a TCP port between 1 and 65535")),
            );
        }
        check(f("auth"), auth(app.auth.as_deref()).map(|_| ()));
        for (k, v) in &app.env {
            check(f(&format!("env.{k}")), env_name(k));
            if v.contains('\0') {
                check(
                    f(&format!("env.{k}")),
                    Err(Invalid::new("holds a NUL character")),
                );
            }
        }
        if let Some(v) = app.secret_env_wo_version.filter(|v| *v < 1) {
            check(
                f("secret_env_wo_version"),
                Err(Invalid::new(format!("must be 1 or more, got {v}"))),
            );
        }
        for (vol, path) in &app.volumes {
            let ok = vol.len() <= 31
                && vol.starts_with(|c: char| c.is_ascii_lowercase())
                && vol
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                check(
                    f(&format!("volumes.{vol}")),
                    Err(Invalid::new(format!(
                        "{} is not a volume name: use 1 to 31 lower-case letters, digits and '_', starting with a \
                         letter",
                        shown(vol)
                    ))),
                );
            }
            check(f(&format!("volumes.{vol}")), container_path(path));
        }
        if let Some(h) = &app.health {
            check(f("health"), http_path(h));
        }
        if let Some(m) = &app.memory {
            check(f("memory"), memory(m));
        }
        if app.command.iter().any(|c| c.contains('\0')) {
            check(
                f("command"),
                Err(Invalid::new("an argument holds a NUL character")),
            );
        }
    }
    for (n, site) in sites {
        check(format!("static_sites.{n}"), name(n));
        check(
            format!("static_sites.{n}.auth"),
            auth(site.auth.as_deref()).map(|_| ()),
        );
        if site.dir.is_empty() {
            check(
                format!("static_sites.{n}.dir"),
                Err(Invalid::new("must name a local directory")),
            );
        }
    }
    // Where each is served: valid, and no two in one place.
    let mut taken: BTreeMap<Place, String> = BTreeMap::new();
    let hosts = apps
        .iter()
        .map(|(n, a)| (format!("apps.{n}"), n, a.host.as_deref(), a.auth.as_deref()))
        .chain(sites.iter().map(|(n, s)| {
            (
                format!("static_sites.{n}"),
                n,
                s.host.as_deref(),
                s.auth.as_deref(),
            )
        }));
    for (field, n, host, login) in hosts {
        match place(n, host, domain) {
            // Caddy decides which requests of the main site need no login (on the path it matches, cleaned), so a
            // path is either behind the site's login or public; a weaker login needs a name of its own.
            Ok(Place::Path(p)) if login == Some("one_factor") => check(
                format!("{field}.auth"),
                Err(Invalid::new(format!(
                    "\"one_factor\" needs the app on its own name (e.g. host = \"{n}\"): {p} is a path of the main \
                     site, which is either behind its login (two_factor) or public"
                ))),
            ),
            Ok(p) => {
                if let Some(other) = taken.get(&p) {
                    check(
                        format!("{field}.host"),
                        Err(Invalid::new(format!(
                            "{other} is already served there; give one of them another host"
                        ))),
                    );
                } else {
                    taken.insert(p, field);
                }
            }
            Err(e) => check(format!("{field}.host"), Err(e)),
        }
    }
    out
}

impl PartialOrd for Place {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Place {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |p: &Place| match p {
            Place::Host(h) => (0, h.clone()),
            Place::Path(x) => (1, x.clone()),
        };
        key(self).cmp(&key(other))
    }
}

/// The routes of valid settings, apps first, each kind by name.
pub fn routes(
    apps: &BTreeMap<String, App>,
    sites: &BTreeMap<String, StaticSite>,
    domain: &str,
) -> Vec<Route> {
    let route = |n: &str, host: Option<&str>, a: Option<&str>, target: Target| {
        Some(Route {
            name: n.to_string(),
            place: place(n, host, domain).ok()?,
            auth: auth(a).ok()?.to_string(),
            target,
        })
    };
    apps.iter()
        .filter_map(|(n, a)| {
            route(
                n,
                a.host.as_deref(),
                a.auth.as_deref(),
                Target::App {
                    upstream: format!("{}:{}", service(n), a.port),
                    health: a.health.clone(),
                },
            )
        })
        .chain(sites.iter().filter_map(|(n, s)| {
            route(
                n,
                s.host.as_deref(),
                s.auth.as_deref(),
                Target::Site {
                    root: format!("{SITES_MOUNT}/{n}"),
                },
            )
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_default_to_the_name_and_take_labels_names_and_paths() {
        let d = "example.com";
        assert_eq!(
            place("api", None, d).unwrap(),
            Place::Host("api.example.com".into())
        );
        assert_eq!(
            place("api", Some("v1"), d).unwrap(),
            Place::Host("v1.example.com".into())
        );
        assert_eq!(
            place("api", Some("API.Example.com"), d).unwrap(),
            Place::Host("api.example.com".into())
        );
        assert_eq!(
            place("api", Some("/api/v1"), d).unwrap(),
            Place::Path("/api/v1".into())
        );
        for bad in [
            "other.org",
            "example.com",
            "auth",
            "/terminal",
            "/session/x",
            "/api/",
            "/a b",
            "/../x",
            "x_y",
        ] {
            assert!(place("api", Some(bad), d).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names_memory_and_paths_are_checked() {
        assert!(name("api-2").is_ok());
        for bad in ["", "2api", "api-", "Api", "auth", &"a".repeat(32)] {
            assert!(name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(memory("256m").is_ok() && memory("1G").is_ok());
        for bad in ["1m", "m", "12x", "", "-1m"] {
            assert!(memory(bad).is_err(), "{bad:?} accepted");
        }
        assert!(container_path("/data").is_ok());
        assert!(container_path("data").is_err() && container_path("/a:b").is_err());
    }

    #[test]
    fn a_path_of_the_main_site_is_behind_its_login_or_public_never_one_factor() {
        let app = |host: &str, auth: &str| App {
            image: Some("x:1".into()),
            port: 80,
            host: Some(host.into()),
            auth: Some(auth.into()),
            ..App::default()
        };
        let sites = BTreeMap::new();
        for auth in ["two_factor", "public"] {
            let apps = BTreeMap::from([("a".to_string(), app("/a", auth))]);
            assert!(validate(&apps, &sites, "example.com").is_empty(), "{auth}");
        }
        let apps = BTreeMap::from([("a".to_string(), app("/a", "one_factor"))]);
        let errors = validate(&apps, &sites, "example.com");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "apps.a.auth");
        assert!(
            errors[0].1.to_string().contains("its own name"),
            "{errors:?}"
        );
        // On its own name, one_factor is fine.
        let apps = BTreeMap::from([("a".to_string(), app("a", "one_factor"))]);
        assert!(validate(&apps, &sites, "example.com").is_empty());
    }

    #[test]
    fn paths_and_health_use_the_characters_a_caddyfile_token_carries() {
        assert!(http_path("/healthz?full=1").is_ok());
        for bad in ["/~me", "health", "/a b", "/\"x"] {
            assert!(http_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(place("a", Some("/~me"), "example.com").is_err());
    }
}
