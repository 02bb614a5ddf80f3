//! `cloudcode app logs <name> [-f] [--tail N]`: the app container's logs, read like `cloudcode logs` does.

use crate::error::{Error, Result};
use crate::stack::StackDir;

pub fn run(stack_name: &str, app: &str, tail: u32, follow: bool) -> Result<()> {
    let stack = StackDir::new(stack_name)?;
    stack.require()?;
    let cfg = stack.read_config()?;
    if !cfg.apps.contains_key(app) {
        let site = cfg.static_sites.contains_key(app);
        return Err(Error::input(
            if site {
                format!("\"{app}\" is a static site: Caddy serves it, so its requests are in `cloudcode logs caddy`")
            } else {
                format!(
                    "stack \"{stack_name}\" has no app \"{}\" (cloudcode app list shows its apps)",
                    app.escape_debug()
                )
            },
            if site {
                format!("\"{app}\" 是静态站点，由 Caddy 提供：请求日志见 `cloudcode logs caddy`")
            } else {
                format!(
                    "栈 \"{stack_name}\" 没有应用 \"{}\"（cloudcode app list 可列出应用）",
                    app.escape_debug()
                )
            },
        ));
    }
    crate::commands::logs::show(
        &stack,
        Some(&cloudcode_bundle::apps::service(app)),
        tail,
        follow,
    )
}
