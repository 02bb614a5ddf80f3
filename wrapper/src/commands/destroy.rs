//! `cloudcode destroy [--force] [--dry-run]`: removes the stack through Terraform, then its working directory.

use crate::engine::{Engine, Secrets};
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::StackDir;

pub fn run(name: &str, force: bool, dry_run: bool) -> Result<()> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    let lock = stack.lock()?;
    let eng = Engine::new(&stack)?;
    eng.init()?;
    let plan = eng.run_json(
        "terraform plan -destroy",
        &["plan", "-destroy", "-json", "-input=false"],
        &Secrets::default(),
    )?;
    let (_, _, remove) = plan.changes.unwrap_or_default();
    eprintln!(
        "{}",
        tr(
            format!("{remove} resources will be destroyed."),
            format!("将删除 {remove} 个资源。")
        )
    );
    if dry_run {
        return Ok(());
    }
    if !force
        && !super::confirm(&tr(
            format!("Destroy stack \"{name}\"?"),
            format!("删除栈 \"{name}\"？"),
        ))
    {
        return Err(Error::Input(
            tr("not confirmed", "未确认") + &super::need_tty_hint().replace("--yes", "--force"),
        ));
    }
    eng.run_json(
        "terraform destroy",
        &["destroy", "-auto-approve", "-json", "-input=false"],
        &Secrets::default(),
    )?;
    drop(lock);
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
