//! `cloudcode logs [service] [-f]`: container logs read on the host over SSH (see [`super::remote`]); with
//! `-f` they stream until Ctrl-C. [`show`] is shared with `cloudcode app logs`.

use super::remote::{self, check_service, Run};
use crate::error::{Error, Result};
use crate::stack::StackDir;

pub fn run(name: &str, service: Option<&str>, tail: u32, follow: bool) -> Result<()> {
    if let Some(s) = service {
        check_service(s)?;
    }
    show(&StackDir::new(name)?, service, tail, follow)
}

/// Prints the logs of one Compose service (a name already checked), or of all of them.
pub(crate) fn show(stack: &StackDir, service: Option<&str>, tail: u32, follow: bool) -> Result<()> {
    let args = format!(
        "logs --no-color --tail {tail}{} {}",
        if follow { " --follow" } else { "" },
        service.map(remote::service_arg).unwrap_or("")
    );
    if follow {
        return match remote::attach(stack, Run::Compose(&args), false)? {
            Some(0) | None => Ok(()),
            Some(code) => Err(Error::RemoteExit(code)),
        };
    }
    let out = remote::compose(stack, &args)?;
    print!("{}", out.stdout_lossy());
    if !out.success() {
        return Err(Error::Ssh(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
