//! `cloudcode app remove <name>`: drops an app or static site from the stack's vars file and applies. An app's
//! volumes stay on the host (the provider never deletes them unless `destroy_volumes`).

use crate::engine::Secrets;
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::StackDir;

pub fn run(stack_name: &str, name: &str, no_apply: bool) -> Result<()> {
    let stack = StackDir::new(stack_name)?;
    stack.require()?;
    let _lock = stack.lock()?;
    let before = stack.read_config()?;
    let mut cfg = before.clone();
    let app = cfg.apps.remove(name);
    let site = cfg.static_sites.remove(name);
    cfg.app_secret_env.remove(name);
    if app.is_none() && site.is_none() {
        return Err(Error::input(
            format!(
                "stack \"{stack_name}\" has no app or static site \"{}\" (cloudcode app list shows them)",
                name.escape_debug()
            ),
            format!(
                "栈 \"{stack_name}\" 没有名为 \"{}\" 的应用或静态站点（cloudcode app list 可列出）",
                name.escape_debug()
            ),
        ));
    }
    if no_apply {
        stack.write_config(&cfg)?;
    } else {
        super::apply(&stack, &before, &cfg, &Secrets::default())?;
    }
    let volumes: Vec<String> = app
        .iter()
        .flat_map(|a| a.volumes.keys())
        .map(|v| cloudcode_bundle::apps::volume(name, v))
        .collect();
    let done = if no_apply {
        tr(
            format!(
                "Removed {name} from stack \"{stack_name}\"'s configuration (not applied yet)."
            ),
            format!("已从栈 \"{stack_name}\" 的配置中删除 {name}（尚未应用）。"),
        )
    } else {
        tr(format!("Removed {name}."), format!("已删除 {name}。"))
    };
    println!("{done}");
    if !volumes.is_empty() {
        println!(
            "{}",
            tr(
                format!("Its volumes are kept on the host: {}.", volumes.join(", ")),
                format!("其数据卷仍保留在主机上：{}。", volumes.join("、")),
            )
        );
    }
    Ok(())
}
