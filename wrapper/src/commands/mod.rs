//! One file per command; `run` dispatches.

pub mod app;
mod completions;
pub mod deploy;
pub mod destroy;
mod doctor;
pub mod im;
pub mod import_legacy;
pub(crate) mod input;
pub(crate) mod logs;
mod migrate_engine;
pub mod otc;
mod passwd;
pub mod power;
mod preflight;
mod remote;
mod render;
mod shell;
mod status;
mod version;

use crate::cli::{Cli, Command};
use crate::error::Result;

pub fn run(cli: Cli) -> Result<()> {
    crate::engine::choice::set_requested(cli.engine);
    match cli.command {
        Command::Deploy(a) => deploy::run(&cli.name, a),
        Command::Status { json } => status::run(&cli.name, json),
        Command::Logs {
            service,
            tail,
            follow,
        } => logs::run(&cli.name, service.as_deref(), tail, follow),
        Command::Ssh { service } => shell::ssh(&cli.name, service.as_deref()),
        Command::Exec { service, command } => shell::exec(&cli.name, service.as_deref(), &command),
        Command::Doctor { region } => doctor::run(&cli.name, region.as_deref()),
        Command::ImportLegacy {
            state,
            admin_email,
            ssh_cidr,
        } => import_legacy::run(&cli.name, state.as_deref(), &admin_email, &ssh_cidr),
        Command::Otc { file } => otc::run(&cli.name, file.as_deref()),
        Command::Im(c) => im::run(&cli.name, c),
        Command::App(c) => app::run(&cli.name, c),
        Command::Passwd { password, yes } => passwd::run(&cli.name, password, yes),
        Command::Render { out } => render::run(&cli.name, &out),
        Command::Suspend => power::run(&cli.name, false),
        Command::Resume => power::run(&cli.name, true),
        Command::Destroy {
            force,
            dry_run,
            keep_snapshot: _,
            no_snapshot,
        } => destroy::run(&cli.name, force, dry_run, !no_snapshot),
        Command::MigrateEngine { to } => migrate_engine::run(&cli.name, to),
        Command::Version => {
            version::run();
            Ok(())
        }
        Command::Completions { shell } => {
            completions::run(shell);
            Ok(())
        }
    }
}
