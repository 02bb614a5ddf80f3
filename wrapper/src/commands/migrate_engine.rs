//! `cloudcode migrate-engine --to tofu|terraform`: moves a stack to the other engine on purpose. Each engine
//! reads a host-less provider source under its own registry host and writes that host into the state and
//! the lock file, so running a stack with the other engine by accident would orphan every resource. Here:
//! the state, lock file and engine record are backed up; the state's provider addresses are rewritten to
//! the new engine's host (the state format, v4, is the same for both engines, and each reads a state the
//! other stamped with its version); the new engine's `init` locks the providers under its host; and the
//! move is kept only if the new engine's plan is empty. Otherwise every file is restored and the stack stays
//! where it was.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::engine::choice::{self, Found, Kind};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::StackDir;

const STATE: &str = "terraform.tfstate";
const LOCK: &str = ".terraform.lock.hcl";
/// What the move touches; each is backed up (when present) and restored on failure.
const TOUCHED: [&str; 3] = [STATE, LOCK, choice::RECORD_FILE];

pub fn run(name: &str, to: Kind) -> Result<()> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    let _lock = stack.lock()?;
    let from = choice::read_record(&stack)?
        .map(|r| r.engine)
        .or_else(|| choice::detect_from_files(&stack.path));
    if from == Some(to) {
        println!(
            "{}",
            tr(
                format!("Stack \"{name}\" is already managed with {to}: nothing to do."),
                format!("栈 \"{name}\" 已由 {to} 管理：无需迁移。"),
            )
        );
        return Ok(());
    }
    let target = choice::find(Some(to))?;
    target.check_supported()?;
    let backup = back_up(&stack)?;
    eprintln!(
        "{}",
        tr(
            format!("Backed up the state and lock file to {}.", backup.display()),
            format!("已将状态和锁文件备份到 {}。", backup.display()),
        )
    );
    match move_to(&stack, &target) {
        Ok(()) => {
            choice::write_record(&stack, &target)?;
            println!(
                "{}",
                tr(
                    format!("Stack \"{name}\" is now managed with {target}; its plan under {target} is empty. The backup stays in {}.", backup.display()),
                    format!("栈 \"{name}\" 现由 {target} 管理；{target} 下的计划为空。备份保留在 {}。", backup.display()),
                )
            );
            Ok(())
        }
        Err(e) => {
            restore(&stack, &backup)?;
            Err(Error::input(
                format!("the move to {target} was undone (state and lock file restored; the stack stays as it was): {e}"),
                format!("已撤销迁移到 {target}（状态和锁文件已恢复，栈保持原样）：{e}"),
            ))
        }
    }
}

/// Rewrites the state for `target`, runs its `init`, and fails unless its plan is empty.
fn move_to(stack: &StackDir, target: &Found) -> Result<()> {
    let state_path = stack.path.join(STATE);
    if state_path.is_file() {
        let text = fs::read_to_string(&state_path).map_err(Error::io(&state_path))?;
        let state: Json = serde_json::from_str(&text)
            .map_err(|e| Error::io(&state_path)(std::io::Error::other(e)))?;
        let moved = rewrite_state(state, target);
        let out = serde_json::to_string_pretty(&moved)
            .map_err(|e| Error::io(&state_path)(std::io::Error::other(e)))?;
        let tmp = stack.path.join(format!("{STATE}.migrating"));
        fs::write(&tmp, format!("{out}\n")).map_err(Error::io(&tmp))?;
        fs::rename(&tmp, &state_path).map_err(Error::io(&state_path))?;
    }
    let eng = Engine::with(stack, target.clone())?;
    eng.init()?;
    if eng.plan_is_empty()? {
        Ok(())
    } else {
        Err(Error::input(
            format!("the plan under {target} is not empty"),
            format!("{target} 下的计划不为空"),
        ))
    }
}

/// The state with every provider address under the other engine's registry host moved to `target`'s host.
/// The serial goes up: the content changed.
fn rewrite_state(mut state: Json, target: &Found) -> Json {
    let from = format!("[\"{}/", target.kind.other().registry_host());
    let to = format!("[\"{}/", target.kind.registry_host());
    if let Some(resources) = state["resources"].as_array_mut() {
        for r in resources {
            if let Some(p) = r["provider"].as_str() {
                r["provider"] = Json::String(p.replace(&from, &to));
            }
        }
    }
    if let Some(serial) = state["serial"].as_u64() {
        state["serial"] = Json::from(serial + 1);
    }
    state
}

fn back_up(stack: &StackDir) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let dir = stack.path.join(format!("backup-migrate-engine-{stamp}"));
    fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    for f in TOUCHED {
        copy_if_present(&stack.path.join(f), &dir.join(f))?;
    }
    Ok(dir)
}

fn restore(stack: &StackDir, backup: &Path) -> Result<()> {
    for f in TOUCHED {
        let (saved, live) = (backup.join(f), stack.path.join(f));
        if saved.is_file() {
            fs::copy(&saved, &live).map_err(Error::io(&live))?;
        } else if live.is_file() {
            fs::remove_file(&live).map_err(Error::io(&live))?;
        }
    }
    Ok(())
}

fn copy_if_present(from: &Path, to: &Path) -> Result<()> {
    match fs::copy(from, to) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(from)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::choice::Version;

    fn state(host: &str, version: &str) -> Json {
        serde_json::json!({
            "version": 4,
            "terraform_version": version,
            "serial": 7,
            "lineage": "l-1",
            "resources": [
                {"module": "module.cloudcode", "mode": "managed", "type": "cloudcode_stack", "name": "this",
                 "provider": format!("provider[\"{host}/cloudcode-dev/cloudcode\"]"), "instances": []},
                {"module": "module.cloudcode", "mode": "managed", "type": "alicloud_vpc", "name": "this",
                 "provider": format!("provider[\"{host}/aliyun/alicloud\"]"), "instances": []}
            ]
        })
    }

    fn engine(kind: Kind, version: Version) -> Found {
        Found {
            kind,
            bin: kind.command().into(),
            version,
        }
    }

    #[test]
    fn tofu_to_terraform_moves_every_provider_and_keeps_the_rest() {
        let terraform = engine(Kind::Terraform, Version(1, 11, 4));
        let out = rewrite_state(state("registry.opentofu.org", "1.12.6"), &terraform);
        assert_eq!(out["terraform_version"], "1.12.6");
        assert_eq!(out["serial"], 8);
        assert_eq!(out["lineage"], "l-1");
        for r in out["resources"].as_array().unwrap() {
            let p = r["provider"].as_str().unwrap();
            assert!(p.starts_with("provider[\"registry.terraform.io/"), "{p}");
        }
    }

    #[test]
    fn terraform_to_tofu_moves_every_provider() {
        let tofu = engine(Kind::Tofu, Version(1, 12, 6));
        let out = rewrite_state(state("registry.terraform.io", "1.11.4"), &tofu);
        assert_eq!(out["terraform_version"], "1.11.4");
        let providers: Vec<&str> = out["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["provider"].as_str().unwrap())
            .collect();
        assert_eq!(
            providers,
            [
                "provider[\"registry.opentofu.org/cloudcode-dev/cloudcode\"]",
                "provider[\"registry.opentofu.org/aliyun/alicloud\"]"
            ]
        );
    }
}
