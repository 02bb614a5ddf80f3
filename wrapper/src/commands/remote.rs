//! Runs one command on a deployed stack's host over the provider's SSH transport (`cloudcode_ssh`), with the
//! host key pinned to the one recorded in state; shared by `logs` and `otc`.

use std::time::Duration;

use cloudcode_ssh::{
    ConnectOptions, Credentials, Endpoint, ExecOutput, HostKeyPin, HostKeyPolicy, Session,
};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stack::StackDir;

/// `docker compose <args>` in the stack's directory on its host; returns the output whatever the status.
pub fn compose(stack: &StackDir, args: &str) -> Result<ExecOutput> {
    stack.require()?;
    let cfg = stack.read_config()?;
    let eng = Engine::new(stack)?;
    let values = super::status::stack_values(&eng)?;
    let pinned = values["host_key"]
        .as_str()
        .map(str::to_string)
        .or(cfg.host_key.clone());
    let host_key = match pinned {
        Some(k) => {
            HostKeyPolicy::Pinned(HostKeyPin::parse(&k).map_err(|e| Error::Ssh(e.to_string()))?)
        }
        None => HostKeyPolicy::TrustOnFirstUse,
    };
    let dir = values["remote_dir"]
        .as_str()
        .unwrap_or(cloudcode_bundle::settings::DEFAULT_REMOTE_DIR)
        .to_string();
    let mut opts = ConnectOptions::new(Endpoint {
        host: cfg.host.clone(),
        port: cfg.ssh_port,
        user: cfg.ssh_user.clone(),
        credentials: Credentials::key_file(&cfg.private_key_path),
        host_key,
    });
    opts.timeout = Duration::from_secs(60);
    let command = format!(
        "cd {} && docker compose -f docker-compose.yml {args}",
        shell_quote(&dir)
    );
    let rt = tokio::runtime::Runtime::new().map_err(|e| Error::Ssh(e.to_string()))?;
    rt.block_on(async {
        let s = Session::connect(opts).await?;
        let out = s.exec(&command, None).await;
        s.close().await;
        out
    })
    .map_err(|e| Error::Ssh(e.to_string()))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
