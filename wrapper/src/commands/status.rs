//! `cloudcode status [--json]`: refreshes the stack through Terraform (the provider reads the host over SSH)
//! and shows URLs and per-service container states from the state.

use serde_json::{json, Value as Json};

use crate::engine::{Engine, Secrets};
use crate::error::Result;
use crate::i18n::tr;
use crate::stack::StackDir;

/// The state as `terraform show -json` prints it.
fn show(eng: &Engine) -> Result<Json> {
    let text = eng.plain("show", &["show", "-json", "-no-color"])?;
    Ok(serde_json::from_str(&text).unwrap_or(Json::Null))
}

/// The stack resource's values from `terraform show -json`.
pub fn stack_values(eng: &Engine) -> Result<Json> {
    Ok(stack_in(&show(eng)?))
}

/// The stack resource's values in a `show -json` document.
fn stack_in(v: &Json) -> Json {
    let mods = v["values"]["root_module"]["child_modules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    mods.iter()
        .flat_map(|m| m["resources"].as_array().cloned().unwrap_or_default())
        .find(|r| r["type"] == "cloudcode_stack")
        .map(|r| r["values"].clone())
        .unwrap_or(Json::Null)
}

pub fn run(name: &str, as_json: bool) -> Result<()> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    let _lock = stack.lock()?;
    let cfg = stack.read_config()?;
    let eng = Engine::new(&stack)?;
    eng.init()?;
    eng.run_json(
        "refresh",
        &[
            "apply",
            "-refresh-only",
            "-auto-approve",
            "-json",
            "-input=false",
        ],
        &Secrets::default(),
    )?;
    let state = show(&eng)?;
    let v = stack_in(&state);
    let host = v["host"].as_str().unwrap_or(&cfg.host).to_string();
    // Cloud stacks: the instance's state from the root's outputs ("Running", or "Stopped" while suspended).
    let instance = state["values"]["outputs"]["instance_status"]["value"].clone();
    // Set while the box is stopped because it suspended itself for idleness (RFC 3339).
    let idle_suspended_at = state["values"]["outputs"]["idle_suspended_at"]["value"].clone();
    let out = json!({
        "name": name,
        "mode": cfg.mode,
        "host": host,
        "instance": instance,
        "idle_suspended_at": idle_suspended_at,
        "idle_suspend_after": cfg.idle_suspend_after,
        "region": cfg.region,
        "deployed": !v.is_null(),
        "url": v["url"],
        "auth_url": v["auth_url"],
        "terminal_url": v["terminal_url"],
        "domain": v["domain"],
        "services": v["services"],
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    println!("{}: {}", tr("Stack", "栈"), name);
    println!("{}: {}", tr("Host", "主机"), host);
    if let Some(state) = instance.as_str() {
        println!("{}: {state}", tr("Instance", "实例"));
    }
    if let Some(at) = idle_suspended_at.as_str() {
        println!(
            "{}",
            tr(
                format!("Suspended for idleness at {at} (nobody used it for {}); `cloudcode resume` starts it.", cfg.idle_suspend_after.as_deref().unwrap_or("the limit")),
                format!("因空闲于 {at} 自动暂停（{} 无人使用）；`cloudcode resume` 可恢复运行。", cfg.idle_suspend_after.as_deref().unwrap_or("超过时限")),
            )
        );
    }
    println!("URL: {}", v["url"].as_str().unwrap_or("-"));
    if let Some(services) = v["services"].as_object() {
        for (s, state) in services {
            println!("  {s}: {}", state.as_str().unwrap_or("?"));
        }
    }
    Ok(())
}
