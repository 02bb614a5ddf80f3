//! `cloudcode app list [--json]`: the stack's apps and static sites from its vars file, with each app
//! container's state from the stack's state (`services`, as the last apply or `cloudcode status` saw it) once the
//! stack is deployed.

use serde_json::{json, Value as Json};

use crate::engine::Engine;
use crate::error::Result;
use crate::i18n::tr;
use crate::stack::StackDir;

pub fn run(stack_name: &str, as_json: bool) -> Result<()> {
    let stack = StackDir::new(stack_name)?;
    stack.require()?;
    let cfg = stack.read_config()?;
    let state = deployed_values(&stack);
    let domain = super::served_domain(&cfg, state["domain"].as_str());
    let url = |name: &str, host: Option<&str>| {
        domain
            .as_deref()
            .and_then(|d| super::url(name, host, d))
            .map_or(Json::Null, Json::from)
    };
    let auth = |a: Option<&str>| a.unwrap_or("two_factor").to_string();
    let mut rows = Vec::new();
    for (name, a) in &cfg.apps {
        let from = match (&a.image, &a.build) {
            (Some(i), _) => format!("image {i}"),
            (None, Some(b)) => format!("build {b}"),
            (None, None) => String::new(),
        };
        rows.push(json!({
            "name": name,
            "kind": "app",
            "url": url(name, a.host.as_deref()),
            "auth": auth(a.auth.as_deref()),
            "from": from,
            "state": state["services"][cloudcode_bundle::apps::service(name)],
            "secret_env": cfg.app_secret_env.get(name).cloned().unwrap_or_default(),
        }));
    }
    for (name, s) in &cfg.static_sites {
        rows.push(json!({
            "name": name,
            "kind": "static_site",
            "url": url(name, s.host.as_deref()),
            "auth": auth(s.auth.as_deref()),
            "from": format!("dir {}", s.dir),
            "state": Json::Null,
            "secret_env": [],
        }));
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "{}",
            tr(
                format!("Stack \"{stack_name}\" has no apps or static sites (add one: cloudcode app add cloudcode-app.toml)."),
                format!("栈 \"{stack_name}\" 没有应用或静态站点（添加：cloudcode app add cloudcode-app.toml）。"),
            )
        );
        return Ok(());
    }
    let cell = |v: &Json| v.as_str().unwrap_or("-").to_string();
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                cell(&r["name"]),
                cell(&r["kind"]),
                cell(&r["url"]),
                cell(&r["auth"]),
                cell(&r["state"]),
                cell(&r["from"]),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "URL", "LOGIN", "STATE", "FROM"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&table) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&table) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(())
}

/// The stack resource's values from the state, once there is one (`Null` otherwise, or when the engine cannot
/// read it: the list then comes from the configuration alone).
fn deployed_values(stack: &StackDir) -> Json {
    if !stack.path.join("terraform.tfstate").is_file() {
        return Json::Null;
    }
    match Engine::new(stack).and_then(|eng| crate::commands::status::stack_values(&eng)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "{}",
                tr(
                    format!("(containers' state unknown: {e})"),
                    format!("（容器状态未知：{e}）"),
                )
            );
            Json::Null
        }
    }
}
