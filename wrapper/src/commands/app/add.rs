//! `cloudcode app add <file.toml> [--no-apply] [--yes]`: reads the file, checks it with the bundle's rules
//! against the whole stack, stores it in the vars file and applies. Secret env: the file names the variables;
//! their values come from the environment variables of the same names, else a hidden prompt, and reach the host
//! through the write-only `app_secret_env_wo` only. The app's `secret_env_wo_version` is bumped when the values
//! differ from those last applied (keyed fingerprints, as `deploy` keeps for its secrets).

use std::collections::BTreeMap;
use std::path::Path;

use cloudcode_bundle::apps::{secret_env_value, validate};

use super::manifest::{self, rule_error, Entry, Manifest};
use crate::commands::deploy::Fingerprints;
use crate::commands::input::secret;
use crate::engine::Secrets;
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{StackConfig, StackDir};

pub fn run(stack_name: &str, file: &Path, no_apply: bool, yes: bool) -> Result<()> {
    let stack = StackDir::new(stack_name)?;
    stack.require()?;
    let Manifest { name, entry } = manifest::read(file)?;
    let shown = file.display().to_string();
    let _lock = stack.lock()?;
    let before = stack.read_config()?;
    let mut cfg = before.clone();
    let kind = entry.kind();
    let secret_names = put(&mut cfg, &name, entry, &shown)?;
    check(&cfg, &name, &shown)?;

    let mut fingerprints = Fingerprints::load(&stack.path)?;
    let mut secrets = Secrets::default();
    if let Some(names) = secret_names.filter(|n| !n.is_empty() && !no_apply) {
        let previous = before.apps.get(&name).and_then(|a| a.secret_env_wo_version);
        let same_names = before.app_secret_env.get(&name) == Some(&names);
        let version = match values(&name, &names, yes)? {
            Some(values) => {
                let canonical = serde_json::to_string(&values).unwrap_or_default();
                let v =
                    fingerprints.next_version(&fingerprint_key(&name), Some(&canonical), previous);
                if v != previous {
                    secrets.app_secret_env = Some(BTreeMap::from([(name.clone(), values)]));
                }
                v
            }
            // Nothing given, nothing changed: the host keeps the values it has.
            None if same_names && previous.is_some() => previous,
            None => return Err(missing(&name, &names[0])),
        };
        if let Some(app) = cfg.apps.get_mut(&name) {
            app.secret_env_wo_version = version;
        }
    }

    if no_apply {
        stack.write_config(&cfg)?;
        println!(
            "{}",
            tr(
                format!("Saved {kind} {name} in stack \"{stack_name}\" (not applied: the next `cloudcode app add` or `cloudcode deploy` applies it)."),
                format!("已在栈 \"{stack_name}\" 中保存 {name}（尚未应用：下一次 `cloudcode app add` 或 `cloudcode deploy` 会应用它）。"),
            )
        );
        if cfg.app_secret_env.contains_key(&name) {
            println!(
                "{}",
                tr(
                    "Its secret env is not read with --no-apply: run `cloudcode app add` without it to send the values.",
                    "使用 --no-apply 时不读取其机密环境变量：请不带该参数运行 `cloudcode app add` 以发送这些值。",
                )
            );
        }
        return Ok(());
    }
    let applied = super::apply(&stack, &before, &cfg, &secrets)?;
    fingerprints.save()?;
    let url = applied
        .outputs
        .get("app_urls")
        .and_then(|o| o["value"][name.as_str()].as_str())
        .map(str::to_string)
        .or_else(|| {
            let host = cfg
                .apps
                .get(&name)
                .and_then(|a| a.host.as_deref())
                .or_else(|| cfg.static_sites.get(&name).and_then(|s| s.host.as_deref()));
            super::served_domain(&cfg, None).and_then(|d| super::url(&name, host, &d))
        })
        .unwrap_or_default();
    println!(
        "{}",
        tr(
            format!("Deployed {kind} {name}: {url}"),
            format!("已部署 {name}：{url}"),
        )
    );
    if kind == "app" {
        println!(
            "{}",
            tr(
                format!("Logs: cloudcode app logs {name}"),
                format!("日志：cloudcode app logs {name}"),
            )
        );
    }
    Ok(())
}

/// Puts the entry into `cfg` (replacing the one of that name); returns an app's secret env names.
fn put(cfg: &mut StackConfig, name: &str, entry: Entry, file: &str) -> Result<Option<Vec<String>>> {
    let taken_by_other = match &entry {
        Entry::App { .. } => cfg.static_sites.contains_key(name),
        Entry::Site(_) => cfg.apps.contains_key(name),
    };
    if taken_by_other {
        let other = if matches!(entry, Entry::App { .. }) {
            "static site"
        } else {
            "app"
        };
        return Err(Error::input(
            format!("{file}: name \"{name}\" is already a {other} of this stack: remove it first (cloudcode app remove {name}) or choose another name"),
            format!("{file}：名称 \"{name}\" 已被本栈的另一个应用或静态站点使用：请先删除（cloudcode app remove {name}）或换一个名称"),
        ));
    }
    Ok(match entry {
        Entry::App {
            mut app,
            secret_env,
        } => {
            // The version stays until new values are applied.
            app.secret_env_wo_version = cfg
                .apps
                .get(name)
                .and_then(|a| a.secret_env_wo_version)
                .filter(|_| !secret_env.is_empty());
            cfg.apps.insert(name.to_string(), app);
            if secret_env.is_empty() {
                cfg.app_secret_env.remove(name);
            } else {
                cfg.app_secret_env
                    .insert(name.to_string(), secret_env.clone());
            }
            Some(secret_env)
        }
        Entry::Site(site) => {
            cfg.static_sites.insert(name.to_string(), site);
            None
        }
    })
}

/// The bundle's rules over every app and site of the stack; a refusal of this file's entry names its key.
fn check(cfg: &StackConfig, name: &str, file: &str) -> Result<()> {
    let errors = validate(&cfg.apps, &cfg.static_sites, &super::rules_domain(cfg));
    let own = |field: &str| {
        ["apps", "static_sites"].iter().find_map(|kind| {
            let rest = field.strip_prefix(&format!("{kind}.{name}"))?;
            match rest {
                "" => Some("name".to_string()),
                r => r.strip_prefix('.').map(str::to_string),
            }
        })
    };
    let mut others = None;
    for (field, e) in errors {
        match own(&field) {
            Some(key) => return Err(rule_error(file, &key, e)),
            None => {
                others.get_or_insert((field, e));
            }
        }
    }
    match others {
        Some((field, e)) => Err(rule_error(file, &format!("(with the stack's {field})"), e)),
        None => Ok(()),
    }
}

fn fingerprint_key(app: &str) -> String {
    format!("app_secret_env.{app}")
}

/// The values of an app's secret env: each from the environment variable of its name, else a hidden prompt.
/// `None` when none was given at all.
fn values(app: &str, names: &[String], yes: bool) -> Result<Option<BTreeMap<String, String>>> {
    let mut found = BTreeMap::new();
    for n in names {
        let given = std::env::var(n).ok().filter(|v| !v.is_empty());
        let prompt = (
            format!("Secret {n} of app {app} (empty: keep what the host has)"),
            format!("应用 {app} 的机密变量 {n}（留空则保留主机上的值）"),
        );
        if let Some(v) = secret(given, yes, (&prompt.0, &prompt.1), false)? {
            let refused = secret_env_value(&v)
                .err()
                .map(|e| e.message().to_string())
                .or_else(|| control_characters(&v));
            if let Some(why) = refused {
                return Err(Error::input(
                    format!("secret env {n} of app {app}: {why}"),
                    format!("应用 {app} 的机密变量 {n} 无效：{why}"),
                ));
            }
            found.insert(n.clone(), v);
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    match names.iter().find(|n| !found.contains_key(*n)) {
        Some(n) => Err(missing(app, n)),
        None => Ok(Some(found)),
    }
}

/// The engine reads the values as HCL strings, which have no escape for most control characters.
fn control_characters(v: &str) -> Option<String> {
    v.chars()
        .any(|c| c.is_control() && c != '\t')
        .then(|| "a secret env value cannot hold control characters".to_string())
}

fn missing(app: &str, n: &str) -> Error {
    Error::input(
        format!("secret env {n} of app {app} has no value: set the environment variable {n}, or run on a terminal to be asked (all of the app's secret env is sent together)"),
        format!("应用 {app} 的机密变量 {n} 没有值：请设置环境变量 {n}，或在终端中运行以输入（应用的机密变量需一起提供）"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudcode_bundle::apps::{App, StaticSite};

    fn app(image: &str, port: u16) -> Entry {
        Entry::App {
            app: App {
                image: Some(image.into()),
                port,
                ..App::default()
            },
            secret_env: vec![],
        }
    }

    #[test]
    fn a_name_is_one_app_or_one_site() {
        let mut cfg = StackConfig::blank();
        cfg.domain = "code.example.com".into();
        put(
            &mut cfg,
            "docs",
            Entry::Site(StaticSite {
                dir: "/srv/docs".into(),
                ..StaticSite::default()
            }),
            "f",
        )
        .unwrap();
        let e = put(&mut cfg, "docs", app("nginx:1", 80), "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("name \"docs\" is already a static site"), "{e}");
        // The same kind replaces it.
        put(&mut cfg, "api", app("x:1", 80), "f").unwrap();
        put(&mut cfg, "api", app("x:2", 81), "f").unwrap();
        assert_eq!(cfg.apps["api"].port, 81);
        check(&cfg, "api", "f").unwrap();
    }

    #[test]
    fn the_rules_name_the_files_key_or_the_clashing_entry() {
        let mut cfg = StackConfig::blank();
        cfg.domain = "code.example.com".into();
        let mut bad = App {
            image: Some("x:1".into()),
            port: 80,
            auth: Some("none".into()),
            ..App::default()
        };
        put(
            &mut cfg,
            "api",
            Entry::App {
                app: bad.clone(),
                secret_env: vec![],
            },
            "f",
        )
        .unwrap();
        let e = check(&cfg, "api", "app.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("app.toml: auth \"none\" is not one of"),
            "{e}"
        );
        bad.auth = None;
        bad.build = Some("/srv/api".into());
        put(
            &mut cfg,
            "api",
            Entry::App {
                app: bad,
                secret_env: vec![],
            },
            "f",
        )
        .unwrap();
        let e = check(&cfg, "api", "app.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("app.toml: build set either image or build, not both"),
            "{e}"
        );
        put(&mut cfg, "Api", app("x:1", 80), "f").unwrap();
        let e = check(&cfg, "Api", "app.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("app.toml: name \"Api\" is not a valid name"),
            "{e}"
        );
    }

    #[test]
    fn secret_env_is_kept_as_names_with_the_version_until_new_values() {
        let mut cfg = StackConfig::blank();
        let with_secret = || Entry::App {
            app: App {
                image: Some("x:1".into()),
                port: 80,
                ..App::default()
            },
            secret_env: vec!["DB_PASSWORD".into()],
        };
        put(&mut cfg, "api", with_secret(), "f").unwrap();
        assert_eq!(cfg.app_secret_env["api"], ["DB_PASSWORD"]);
        assert_eq!(cfg.apps["api"].secret_env_wo_version, None);
        cfg.apps.get_mut("api").unwrap().secret_env_wo_version = Some(2);
        put(&mut cfg, "api", with_secret(), "f").unwrap();
        assert_eq!(cfg.apps["api"].secret_env_wo_version, Some(2));
        // Without secret_env the app has none.
        put(&mut cfg, "api", app("x:1", 80), "f").unwrap();
        assert_eq!(cfg.apps["api"].secret_env_wo_version, None);
        assert!(!cfg.app_secret_env.contains_key("api"));
    }

    #[test]
    fn control_characters_are_refused_in_secret_values() {
        assert_eq!(control_characters("p@ss\tword$%{x}"), None);
        assert!(control_characters("a\u{8}b").is_some());
    }
}
