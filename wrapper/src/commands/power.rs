//! `cloudcode suspend` / `resume`: sets `running` of a cloud stack and applies it. The instance stops in
//! StopCharging mode (or starts again); the stack resource neither connects nor changes while stopped. No secret
//! is needed: the write-only values stay null and their versions unchanged, so the host keeps what it has.

use crate::engine::{Engine, Secrets};
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{StackConfig, StackDir, StackLock};

/// Writes the stack's working directory with `running` set; returns it locked for the apply.
pub fn configure(name: &str, running: bool) -> Result<(StackDir, StackConfig, StackLock)> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    let lock = stack.lock()?;
    let mut cfg = stack.read_config()?;
    if !cfg.is_cloud() {
        return Err(Error::input(
            format!("stack \"{name}\" runs on a machine you manage (--host): suspend and resume apply to cloud stacks"),
            format!("栈 \"{name}\" 运行在你自己管理的机器上（--host）：暂停和恢复只适用于云上的栈"),
        ));
    }
    cfg.running = running;
    stack.write_config(&cfg)?;
    Ok((stack, cfg, lock))
}

pub fn run(name: &str, running: bool) -> Result<()> {
    let (stack, _cfg, _lock) = configure(name, running)?;
    let eng = Engine::new(&stack)?;
    eng.init()?;
    // Resume also starts a box that suspended itself for idleness (the root's `resume`).
    let extra: &[&str] = if running {
        &["-var", "resume=true"]
    } else {
        &[]
    };
    eng.plan_and_apply(&Secrets::default(), None, extra)?;
    println!(
        "{}",
        if running {
            tr(
                format!("Stack \"{name}\" resumed."),
                format!("栈 \"{name}\" 已恢复运行。"),
            )
        } else {
            tr(
                format!("Stack \"{name}\" suspended: CPU and memory are no longer billed; the disk and address are. `cloudcode resume` starts it again."),
                format!("栈 \"{name}\" 已暂停：不再收取 CPU 和内存费用，磁盘和地址仍计费。`cloudcode resume` 可恢复运行。"),
            )
        }
    );
    Ok(())
}
