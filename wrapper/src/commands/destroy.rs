//! `cloudcode destroy [--force] [--dry-run] [--keep-snapshot | --no-snapshot]`: removes the stack through
//! Terraform. A cloud stack keeps a snapshot of its disk by default, and then keeps its working directory (the
//! settings and key) so that the next `deploy` restores it. `--no-snapshot` first applies
//! `snapshot_on_destroy = false`, because a resource's Delete sees only its prior state.

use crate::engine::{Engine, Secrets};
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{StackConfig, StackDir, StackLock};

/// The backup resource whose `snapshot_on_destroy` must be applied before a destroy that changes it.
const BACKUP: &str = "module.cloudcode.cloudcode_snapshot_backup.this";

/// Writes the stack's working directory with the snapshot choice (cloud stacks); returns it locked, and whether
/// the choice differs from what was applied before.
pub fn configure(
    name: &str,
    keep_snapshot: bool,
) -> Result<(StackDir, StackConfig, StackLock, bool)> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    let lock = stack.lock()?;
    let mut cfg = stack.read_config()?;
    let changed = cfg.is_cloud() && cfg.snapshot_on_destroy != keep_snapshot;
    if changed {
        cfg.snapshot_on_destroy = keep_snapshot;
        stack.write_config(&cfg)?;
    }
    Ok((stack, cfg, lock, changed))
}

pub fn run(name: &str, force: bool, dry_run: bool, keep_snapshot: bool) -> Result<()> {
    let (stack, cfg, lock, changed) = if dry_run {
        // A dry run changes nothing, not even the snapshot choice.
        let stack = StackDir::new(name)?;
        stack.require()?;
        let lock = stack.lock()?;
        let cfg = stack.read_config()?;
        (stack, cfg, lock, false)
    } else {
        configure(name, keep_snapshot)?
    };
    let eng = Engine::new(&stack)?;
    eng.init()?;
    let plan = eng.run_json(
        "plan -destroy",
        &["plan", "-destroy", "-json", "-input=false"],
        &Secrets::default(),
    )?;
    let (_, _, remove) = plan.changes.unwrap_or_default();
    eprintln!(
        "{}",
        tr(
            format!("{remove} resources will be destroyed:"),
            format!("将删除 {remove} 个资源：")
        )
    );
    for (addr, _) in plan.planned.iter().filter(|(_, action)| action == "delete") {
        eprintln!("  - {}", addr.trim_start_matches("module.cloudcode."));
    }
    let snapshot = cfg.is_cloud() && keep_snapshot;
    if cfg.is_cloud() {
        eprintln!(
            "{}",
            if snapshot {
                tr(
                    "A snapshot of the disk is kept (about $0.40/month); the next `cloudcode deploy` of this stack restores it.",
                    "将保留磁盘快照（约每月 0.40 美元）；下次 `cloudcode deploy` 此栈时会从快照恢复。",
                )
            } else {
                tr(
                    "No snapshot is kept: the workspace, sessions and passkeys are lost.",
                    "不保留快照：工作区、会话和通行密钥将丢失。",
                )
            }
        );
    }
    if dry_run {
        return Ok(());
    }
    if !force
        && !super::input::confirm(&tr(
            format!("Destroy stack \"{name}\"?"),
            format!("删除栈 \"{name}\"？"),
        ))
    {
        return Err(Error::Input(
            tr("not confirmed", "未确认")
                + &super::input::need_tty_hint().replace("--yes", "--force"),
        ));
    }
    if changed {
        let target = format!("-target={BACKUP}");
        eng.plan_and_apply(&Secrets::default(), None, &[target.as_str()])?;
    }
    eng.run_json(
        "destroy",
        &["destroy", "-auto-approve", "-json", "-input=false"],
        &Secrets::default(),
    )?;
    drop(lock);
    if snapshot {
        println!(
            "{}",
            tr(
                format!("Stack \"{name}\" destroyed; its snapshot and settings are kept in {} for the next deploy.", stack.path.display()),
                format!("栈 \"{name}\" 已删除；快照和设置保存在 {}，供下次部署使用。", stack.path.display()),
            )
        );
        return Ok(());
    }
    std::fs::remove_dir_all(&stack.path).map_err(Error::io(&stack.path))?;
    println!(
        "{}",
        tr(
            format!("Stack \"{name}\" destroyed."),
            format!("栈 \"{name}\" 已删除。")
        )
    );
    Ok(())
}
