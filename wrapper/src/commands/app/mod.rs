//! `cloudcode app add|list|logs|remove`: your own apps and static sites on a stack. Each is described by a
//! `cloudcode-app.toml` ([`manifest`]); the stack's vars file stays the single source of truth — these commands
//! only edit its `apps` / `static_sites` and apply, the way `deploy` does. Secret env values are read from the
//! environment or a hidden prompt at apply time and travel only as `TF_VAR_app_secret_env`.

mod add;
mod list;
mod logs;
pub mod manifest;
mod remove;

use cloudcode_bundle::apps::{place, Place};

use crate::cli::AppCommand;
use crate::engine::{Engine, RunResult, Secrets};
use crate::error::Result;
use crate::stack::{StackConfig, StackDir};

pub fn run(name: &str, c: AppCommand) -> Result<()> {
    match c {
        AppCommand::Add {
            file,
            no_apply,
            yes,
        } => add::run(name, &file, no_apply, yes),
        AppCommand::List { json } => list::run(name, json),
        AppCommand::Logs { app, tail, follow } => logs::run(name, &app, tail, follow),
        AppCommand::Remove { app, no_apply } => remove::run(name, &app, no_apply),
    }
}

/// The domain the stack serves, as far as the configuration tells it: its own, else the wildcard-DNS name of its
/// host; `None` for a cloud stack without a domain before its address is known (`state_domain` says it then).
fn served_domain(cfg: &StackConfig, state_domain: Option<&str>) -> Option<String> {
    if let Some(d) = state_domain.filter(|d| !d.is_empty()) {
        return Some(d.to_string());
    }
    if !cfg.domain.is_empty() {
        return Some(cfg.domain.clone());
    }
    cloudcode_bundle::fallback_domain_on(&cfg.host, &cfg.fallback_domain_service).ok()
}

/// The domain the rules check hosts against: a cloud stack whose address is not known yet is checked with a
/// placeholder address (as `deploy` does).
fn rules_domain(cfg: &StackConfig) -> String {
    served_domain(cfg, None).unwrap_or_else(|| {
        cloudcode_bundle::fallback_domain_on("192.0.2.1", &cfg.fallback_domain_service)
            .unwrap_or_else(|_| "192-0-2-1.sslip.io".into())
    })
}

/// The https URL of an app or site named `name` served at `host` on `domain`.
fn url(name: &str, host: Option<&str>, domain: &str) -> Option<String> {
    match place(name, host, domain).ok()? {
        Place::Host(h) => Some(format!("https://{h}/")),
        Place::Path(p) => Some(format!("https://{domain}{p}/")),
    }
}

/// Writes `cfg` and applies it (no question: the command said what to change); on failure the stack's files
/// go back to `before`, which is what the host still runs.
fn apply(
    stack: &StackDir,
    before: &StackConfig,
    cfg: &StackConfig,
    secrets: &Secrets,
) -> Result<RunResult> {
    let eng = Engine::new(stack)?;
    stack.write_config(cfg)?;
    let applied = eng
        .init()
        .and_then(|()| eng.plan_and_apply(secrets, None, &[]));
    if applied.is_err() {
        stack.write_config(before)?;
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_name_is_not_the_stack_name() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "cloudcode",
            "--stack",
            "box",
            "app",
            "logs",
            "api",
            "-f",
        ])
        .unwrap();
        assert_eq!(cli.name, "box");
        assert!(matches!(
            cli.command,
            crate::cli::Command::App(AppCommand::Logs { ref app, follow: true, tail: 200 }) if app == "api"
        ));
        let cli =
            crate::cli::Cli::try_parse_from(["cloudcode", "app", "remove", "api", "--name", "s"])
                .unwrap();
        assert_eq!(cli.name, "s");
        assert!(
            matches!(cli.command, crate::cli::Command::App(AppCommand::Remove { ref app, no_apply: false }) if app == "api")
        );
    }

    #[test]
    fn urls_are_the_own_name_or_a_path_of_the_site() {
        let d = "code.example.com";
        assert_eq!(
            url("api", None, d).as_deref(),
            Some("https://api.code.example.com/")
        );
        assert_eq!(
            url("api", Some("v1"), d).as_deref(),
            Some("https://v1.code.example.com/")
        );
        assert_eq!(
            url("api", Some("/api"), d).as_deref(),
            Some("https://code.example.com/api/")
        );
        assert_eq!(url("api", Some("other.org"), d), None);
    }

    #[test]
    fn a_cloud_stack_without_an_address_is_checked_on_a_placeholder() {
        let mut cfg = StackConfig::blank();
        assert_eq!(served_domain(&cfg, None), None);
        assert_eq!(rules_domain(&cfg), "192-0-2-1.sslip.io");
        assert_eq!(
            served_domain(&cfg, Some("47-1-2-3.sslip.io")).as_deref(),
            Some("47-1-2-3.sslip.io")
        );
        cfg.host = "203.0.113.7".into();
        assert_eq!(rules_domain(&cfg), "203-0-113-7.sslip.io");
        cfg.domain = "code.example.com".into();
        assert_eq!(rules_domain(&cfg), "code.example.com");
    }
}
