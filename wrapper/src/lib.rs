//! The `cloudcode` CLI: argument parsing, validation, the Terraform engine and one module per command.
//! `main_entry` is the binary's whole body (shared with the test harness' copy of the binary).

pub mod cli;
pub mod commands;
pub mod engine;
pub mod error;
pub mod i18n;
pub mod stack;

use clap::Parser;

pub use error::{Error, Result};

/// Parses arguments, runs the command, prints the error as one sentence; exit 1 on error, 130 on Ctrl-C.
pub fn main_entry() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    engine::install_ctrlc();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudcode: {e}");
            if matches!(e, Error::Interrupted(_)) {
                std::process::ExitCode::from(130)
            } else if let Error::RemoteExit(code) = e {
                std::process::ExitCode::from(u8::try_from(code).unwrap_or(255).max(1))
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
