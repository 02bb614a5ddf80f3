//! `deploy --host user@ip[:port]`: the stack goes onto an existing machine over SSH (modules/cloudcode-host).

use std::path::PathBuf;

use cloudcode_bundle::validate;

use super::Target;
use crate::cli::DeployArgs;
use crate::commands::input::invalid;
use crate::error::{Error, Result};
use crate::stack::{StackConfig, MODE_HOST};

/// `user@host[:port]` → (user, host, port).
pub fn parse_host(s: &str) -> Result<(String, String, u16)> {
    let bad = || {
        Error::input(
            format!(
                "--host \"{}\" is not of the form user@host[:port]",
                s.escape_debug()
            ),
            format!("--host \"{}\" 格式应为 user@host[:port]", s.escape_debug()),
        )
    };
    let (user, rest) = s.split_once('@').ok_or_else(bad)?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().map_err(|_| bad())?),
        _ => (rest, 22),
    };
    if user.is_empty() || port == 0 {
        return Err(bad());
    }
    validate::host(host).map_err(|e| invalid("--host", "--host ", e))?;
    Ok((user.to_string(), host.to_string(), port))
}

fn default_key() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|k| home.join(".ssh").join(k))
        .find(|p| p.is_file())
}

/// The machine and the key to reach it.
pub(super) fn target(host_arg: &str, a: &DeployArgs) -> Result<Target> {
    let (user, host, port) = parse_host(host_arg)?;
    let key = a.ssh_key.clone().or_else(default_key).ok_or_else(|| {
        Error::input(
            "no SSH key: pass --ssh-key (none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists)",
            "没有 SSH 私钥：请使用 --ssh-key（~/.ssh/id_ed25519、id_ecdsa、id_rsa 都不存在）",
        )
    })?;
    let key = std::fs::canonicalize(&key).map_err(Error::io(&key))?;
    Ok(Target {
        cfg: StackConfig {
            mode: MODE_HOST.into(),
            host,
            ssh_port: port,
            ssh_user: user,
            private_key_path: key.display().to_string(),
            host_key: a.host_key.clone(),
            ..StackConfig::blank()
        },
        generate_key: false,
    })
}
