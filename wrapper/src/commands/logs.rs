//! `cloudcode logs [service]`: container logs over the provider's SSH transport (`cloudcode_ssh`), with the
//! host key pinned to the one recorded in state.

use std::time::Duration;

use cloudcode_ssh::{ConnectOptions, Credentials, Endpoint, HostKeyPin, HostKeyPolicy, Session};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stack::StackDir;

const SERVICES: [&str; 3] = ["caddy", "authelia", "devbox"];

pub fn run(name: &str, service: Option<&str>, tail: u32) -> Result<()> {
    if let Some(s) = service {
        if !SERVICES.contains(&s) {
            return Err(Error::input(
                format!(
                    "unknown service \"{}\": use caddy, authelia or devbox",
                    s.escape_debug()
                ),
                format!(
                    "未知服务 \"{}\"：请使用 caddy、authelia 或 devbox",
                    s.escape_debug()
                ),
            ));
        }
    }
    let stack = StackDir::new(name)?;
    stack.require()?;
    let cfg = stack.read_config()?;
    let eng = Engine::new(&stack)?;
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
        "cd '{dir}' && docker compose -f docker-compose.yml logs --no-color --tail {tail} {}",
        service.unwrap_or("")
    );
    let rt = tokio::runtime::Runtime::new().map_err(|e| Error::Ssh(e.to_string()))?;
    let out = rt.block_on(async {
        let s = Session::connect(opts).await?;
        let out = s.exec(&command, None).await;
        s.close().await;
        out
    });
    let out = out.map_err(|e| Error::Ssh(e.to_string()))?;
    print!("{}", out.stdout_lossy());
    if !out.success() {
        return Err(Error::Ssh(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
