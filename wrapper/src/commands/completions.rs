//! `cloudcode completions <shell>`: the shell completion script on stdout.

use clap::CommandFactory;

pub fn run(shell: clap_complete::Shell) {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(shell, &mut cmd, "cloudcode", &mut std::io::stdout());
}
