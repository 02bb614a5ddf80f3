//! `cloudcode logs [service]`: container logs read on the host over SSH (see [`super::remote`]).

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
    let out = super::remote::compose(
        &stack,
        &format!("logs --no-color --tail {tail} {}", service.unwrap_or("")),
    )?;
    print!("{}", out.stdout_lossy());
    if !out.success() {
        return Err(Error::Ssh(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
