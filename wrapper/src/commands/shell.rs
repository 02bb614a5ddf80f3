//! `cloudcode ssh [service]` (an interactive shell on the host, or in a service's container) and
//! `cloudcode exec [--service S] -- command...` (one command, output streamed, its exit status returned).

use super::remote::{self, check_service, shell_quote, Run};
use crate::error::{Error, Result};
use crate::stack::StackDir;

/// A shell inside a container: bash when the image has it, else sh.
const CONTAINER_SHELL: &str = "sh -c 'command -v bash >/dev/null && exec bash -l || exec sh -l'";

fn finish(status: Option<u32>) -> Result<()> {
    match status {
        Some(0) => Ok(()),
        Some(code) => Err(Error::RemoteExit(code)),
        None => Err(Error::RemoteExit(255)),
    }
}

pub fn ssh(name: &str, service: Option<&str>) -> Result<()> {
    let stack = StackDir::new(name)?;
    let status = match service {
        None => remote::attach(&stack, Run::Shell, true)?,
        Some(s) => {
            check_service(s)?;
            remote::attach(
                &stack,
                Run::Compose(&format!(
                    "exec {} {CONTAINER_SHELL}",
                    remote::service_arg(s)
                )),
                true,
            )?
        }
    };
    finish(status)
}

pub fn exec(name: &str, service: Option<&str>, command: &[String]) -> Result<()> {
    let stack = StackDir::new(name)?;
    let quoted: Vec<String> = command.iter().map(|a| shell_quote(a)).collect();
    let line = quoted.join(" ");
    let status = match service {
        None => remote::attach(&stack, Run::Host(&line), false)?,
        Some(s) => {
            check_service(s)?;
            let s = remote::service_arg(s);
            remote::attach(&stack, Run::Compose(&format!("exec -T {s} {line}")), false)?
        }
    };
    finish(status)
}
