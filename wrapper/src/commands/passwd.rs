//! `cloudcode passwd`: sets a new login password. The portal cannot change it (its users file is the
//! provider's, mounted read-only, and there is no mail server for a reset): the new password goes through the
//! write-only argument with its version bumped, so only Authelia is recreated and the password never reaches
//! a file, the state or the plan. Asks twice on a terminal, or takes `CLOUDCODE_ADMIN_PASSWORD`.

use cloudcode_bundle::validate;

use crate::engine::{Engine, Secrets};
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::StackDir;

use super::input::{invalid, secret};

pub fn run(name: &str, given: Option<String>, yes: bool) -> Result<()> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    let password = secret(
        given,
        yes,
        (
            "New admin password (12+ characters)",
            "新的管理员密码（至少 12 个字符）",
        ),
        true,
    )?
    .ok_or_else(|| {
        Error::input(
            "a new password is needed: set CLOUDCODE_ADMIN_PASSWORD or run cloudcode passwd on a terminal",
            "需要新密码：请设置 CLOUDCODE_ADMIN_PASSWORD，或在终端中运行 cloudcode passwd",
        )
    })?;
    validate::password(&password).map_err(|e| invalid("the admin password", "管理员密码", e))?;
    let _lock = stack.lock()?;
    let before = stack.read_config()?;
    let eng = Engine::new(&stack)?;
    let mut cfg = before.clone();
    cfg.admin_password_version += 1;
    stack.write_config(&cfg)?;
    // Saved once applied: a later `deploy` given this password (e.g. from CI's environment) recognises it.
    let mut fingerprints = super::deploy::Fingerprints::load(&stack.path)?;
    fingerprints.record("admin_password", &password);
    let secrets = Secrets {
        admin_password: Some(password),
        ..Secrets::default()
    };
    let applied = eng
        .init()
        .and_then(|()| eng.plan_and_apply(&secrets, None, &[]));
    if let Err(e) = applied {
        // The host still has the old password: the stack's files say so again.
        stack.write_config(&before)?;
        return Err(e);
    }
    fingerprints.save()?;
    println!(
        "{}",
        tr(
            format!(
                "Password changed for {} (version {}); only Authelia was restarted, so log in again.",
                cfg.admin_username, cfg.admin_password_version
            ),
            format!(
                "{} 的密码已更改（版本 {}）；仅重启了 Authelia，请重新登录。",
                cfg.admin_username, cfg.admin_password_version
            ),
        )
    );
    Ok(())
}
