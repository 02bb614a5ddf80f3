//! `apps`, `static_sites` and `app_secret_env_wo` of `cloudcode_stack`: their state types, the bundle settings they
//! stand for (and back, for import), and which apps' secret env an apply supplies.

use std::collections::BTreeMap;

use cloudcode_bundle::apps::{App, StaticSite};
use serde::{Deserialize, Serialize};

/// One element of `apps` as Terraform holds it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppState {
    pub image: Option<String>,
    pub build: Option<String>,
    pub port: Option<i64>,
    pub host: Option<String>,
    pub auth: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    pub secret_env_wo_version: Option<i64>,
    pub volumes: Option<BTreeMap<String, String>>,
    pub health: Option<String>,
    pub command: Option<Vec<String>>,
    pub memory: Option<String>,
}

/// One element of `static_sites` as Terraform holds it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteState {
    pub dir: String,
    pub host: Option<String>,
    pub auth: Option<String>,
}

impl AppState {
    /// The bundle's app (a port outside 1–65535 becomes 0, which the bundle's rule refuses).
    pub fn to_app(&self) -> App {
        App {
            image: self.image.clone(),
            build: self.build.clone(),
            port: self.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            host: self.host.clone(),
            auth: self.auth.clone(),
            env: self.env.clone().unwrap_or_default(),
            secret_env_wo_version: self.secret_env_wo_version,
            volumes: self.volumes.clone().unwrap_or_default(),
            health: self.health.clone(),
            command: self.command.clone().unwrap_or_default(),
            memory: self.memory.clone(),
        }
    }

    /// The state of an app read from a host's manifest (import).
    pub fn from_app(a: &App) -> Self {
        let nonempty_map = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
        Self {
            image: a.image.clone(),
            build: a.build.clone(),
            port: Some(i64::from(a.port)),
            host: a.host.clone(),
            auth: a.auth.clone(),
            env: nonempty_map(&a.env),
            secret_env_wo_version: a.secret_env_wo_version,
            volumes: nonempty_map(&a.volumes),
            health: a.health.clone(),
            command: (!a.command.is_empty()).then(|| a.command.clone()),
            memory: a.memory.clone(),
        }
    }
}

impl SiteState {
    pub fn to_site(&self) -> StaticSite {
        StaticSite {
            dir: self.dir.clone(),
            host: self.host.clone(),
            auth: self.auth.clone(),
        }
    }

    pub fn from_site(s: &StaticSite) -> Self {
        Self {
            dir: s.dir.clone(),
            host: s.host.clone(),
            auth: s.auth.clone(),
        }
    }
}

/// The bundle's apps of a state.
pub fn apps(m: &Option<BTreeMap<String, AppState>>) -> BTreeMap<String, App> {
    m.iter()
        .flatten()
        .map(|(k, a)| (k.clone(), a.to_app()))
        .collect()
}

/// The bundle's static sites of a state.
pub fn sites(m: &Option<BTreeMap<String, SiteState>>) -> BTreeMap<String, StaticSite> {
    m.iter()
        .flatten()
        .map(|(k, s)| (k.clone(), s.to_site()))
        .collect()
}

/// The secret env this apply puts on the host: the configured entry of each app whose `secret_env_wo_version` is set
/// and differs from the prior state's (a new app counts as changed).
pub fn secret_env_to_apply(
    planned: &Option<BTreeMap<String, AppState>>,
    prior: Option<&Option<BTreeMap<String, AppState>>>,
    config: &Option<BTreeMap<String, BTreeMap<String, String>>>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    bumped(planned, prior)
        .into_iter()
        .filter_map(|name| {
            config
                .as_ref()
                .and_then(|c| c.get(name))
                .map(|env| (name.to_string(), env.clone()))
        })
        .collect()
}

/// The apps whose `secret_env_wo_version` is set and differs from the prior state's (a new app counts as changed):
/// those whose entry of `app_secret_env_wo` this apply must carry.
pub fn bumped<'a>(
    planned: &'a Option<BTreeMap<String, AppState>>,
    prior: Option<&Option<BTreeMap<String, AppState>>>,
) -> Vec<&'a str> {
    let before = |name: &str| {
        prior
            .and_then(|m| m.as_ref())
            .and_then(|m| m.get(name))
            .and_then(|a| a.secret_env_wo_version)
    };
    planned
        .iter()
        .flatten()
        .filter(|(name, a)| {
            a.secret_env_wo_version.is_some()
                && (prior.is_none() || before(name) != a.secret_env_wo_version)
        })
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Problems with the values of `app_secret_env_wo` (never echoed): (app, variable, sentence) — a name Compose's
/// env file cannot carry, a value it cannot, and a variable the app's `env` sets too (Compose would silently take
/// `env`'s).
pub fn secret_env_problems(
    apps: &Option<BTreeMap<String, AppState>>,
    config: &Option<BTreeMap<String, BTreeMap<String, String>>>,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (app, env) in config.iter().flatten() {
        let plain = apps
            .as_ref()
            .and_then(|m| m.get(app))
            .and_then(|a| a.env.as_ref());
        for (k, v) in env {
            let rules = [
                cloudcode_bundle::apps::env_name(k)
                    .err()
                    .map(|e| e.to_string()),
                cloudcode_bundle::apps::secret_env_value(v)
                    .err()
                    .map(|e| e.to_string()),
                plain.filter(|p| p.contains_key(k)).map(|_| {
                    format!("{k} is also in apps.{app}.env; a variable is either plain or secret")
                }),
            ];
            out.extend(
                rules
                    .into_iter()
                    .flatten()
                    .map(|why| (app.clone(), k.clone(), why)),
            );
        }
    }
    out
}

/// Apps named in `app_secret_env_wo` that do not exist or have no `secret_env_wo_version` (their values would never
/// be applied).
pub fn secret_env_without_version(
    apps: &Option<BTreeMap<String, AppState>>,
    config: &Option<BTreeMap<String, BTreeMap<String, String>>>,
) -> Vec<String> {
    config
        .iter()
        .flatten()
        .map(|(name, _)| name)
        .filter(|name| {
            apps.as_ref()
                .and_then(|m| m.get(*name))
                .and_then(|a| a.secret_env_wo_version)
                .is_none()
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(version: Option<i64>) -> AppState {
        AppState {
            image: Some("x:1".into()),
            port: Some(80),
            secret_env_wo_version: version,
            ..AppState::default()
        }
    }

    #[test]
    fn secret_env_is_applied_for_new_apps_and_bumped_versions_only() {
        let env = |v: &str| BTreeMap::from([("K".to_string(), v.to_string())]);
        let config = Some(BTreeMap::from([
            ("a".to_string(), env("1")),
            ("b".to_string(), env("2")),
            ("c".to_string(), env("3")),
        ]));
        let planned = Some(BTreeMap::from([
            ("a".to_string(), app(Some(1))),
            ("b".to_string(), app(Some(2))),
            ("c".to_string(), app(None)),
        ]));
        let prior = Some(BTreeMap::from([
            ("a".to_string(), app(Some(1))),
            ("b".to_string(), app(Some(1))),
        ]));
        assert_eq!(bumped(&planned, Some(&prior)), ["b"]);
        let got = secret_env_to_apply(&planned, Some(&prior), &config);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["b"]);
        let create = secret_env_to_apply(&planned, None, &config);
        assert_eq!(create.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(secret_env_without_version(&planned, &config), ["c"]);
    }

    #[test]
    fn secret_env_problems_name_the_variable_and_never_the_value() {
        let mut a = app(Some(1));
        a.env = Some(BTreeMap::from([("PLAIN".to_string(), "x".to_string())]));
        let apps = Some(BTreeMap::from([("a".to_string(), a)]));
        let config = Some(BTreeMap::from([(
            "a".to_string(),
            BTreeMap::from([
                ("OK".to_string(), "fine-value".to_string()),
                ("PLAIN".to_string(), "x".to_string()),
                ("1BAD".to_string(), "v".to_string()),
                ("QUOTE".to_string(), "it's-secret".to_string()),
            ]),
        )]));
        let problems = secret_env_problems(&apps, &config);
        let vars: Vec<&str> = problems.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(vars, ["1BAD", "PLAIN", "QUOTE"]);
        assert!(problems
            .iter()
            .all(|(_, _, why)| !why.contains("it's-secret")));
    }

    #[test]
    fn an_app_reads_back_from_the_manifest_as_configured() {
        let mut a = app(Some(3));
        a.env = Some(BTreeMap::from([("A".to_string(), "b".to_string())]));
        a.command = Some(vec!["run".into()]);
        assert!(AppState::from_app(&a.to_app()) == a);
        let bad = AppState {
            port: Some(70000),
            ..a
        };
        assert_eq!(bad.to_app().port, 0);
    }
}
