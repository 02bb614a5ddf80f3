//! Commands on a deployed stack's host over the provider's SSH transport (`cloudcode_ssh`), with the host key
//! pinned to the one recorded in state and the address, port and user the state holds (a cloud stack's EIP is
//! known only there); shared by `logs`, `otc`, `ssh` and `exec`.

use std::io::IsTerminal;
use std::time::Duration;

use cloudcode_ssh::{
    ConnectOptions, Credentials, Endpoint, ExecOutput, HostKeyPin, HostKeyPolicy, Pty, Session,
};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stack::StackDir;

/// Services of a stack (compose service names; `im` only runs with the chat bridge).
pub const SERVICES: [&str; 4] = ["caddy", "authelia", "devbox", cloudcode_bundle::IM_SERVICE];

/// Checks a service name given on the command line.
pub fn check_service(s: &str) -> Result<()> {
    if SERVICES.contains(&s) {
        return Ok(());
    }
    Err(Error::input(
        format!(
            "unknown service \"{}\": use caddy, authelia, devbox or im",
            s.escape_debug()
        ),
        format!(
            "未知服务 \"{}\"：请使用 caddy、authelia、devbox 或 im",
            s.escape_debug()
        ),
    ))
}

/// How to reach a stack's host, and where its files are.
struct Target {
    options: ConnectOptions,
    dir: String,
}

fn target(stack: &StackDir) -> Result<Target> {
    stack.require()?;
    let cfg = stack.read_config()?;
    let eng = Engine::new(stack)?;
    let values = super::status::stack_values(&eng)?;
    let host = values["host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .unwrap_or(cfg.host.clone());
    if host.is_empty() {
        return Err(Error::input(
            "the stack has no host yet: deploy it first",
            "该栈还没有主机：请先部署",
        ));
    }
    let port = values["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(cfg.ssh_port);
    let user = values["user"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(cfg.ssh_user.clone());
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
    let mut options = ConnectOptions::new(Endpoint {
        host,
        port,
        user,
        credentials: Credentials::key_file(&cfg.private_key_path),
        host_key,
    });
    options.timeout = Duration::from_secs(60);
    Ok(Target { options, dir })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().map_err(|e| Error::Ssh(e.to_string()))
}

/// `docker compose <args>` in `dir`, seeing both devbox colours (see [`cloudcode_bundle::runtime`]).
fn compose_command(dir: &str, args: &str) -> String {
    cloudcode_bundle::runtime::compose_command(dir, args)
}

pub use cloudcode_bundle::runtime::service_arg;

/// `docker compose <args>` in the stack's directory on its host; returns the output whatever the status.
pub fn compose(stack: &StackDir, args: &str) -> Result<ExecOutput> {
    let t = target(stack)?;
    let command = compose_command(&t.dir, args);
    runtime()?
        .block_on(async {
            let s = Session::connect(t.options).await?;
            let out = s.exec(&command, None).await;
            s.close().await;
            out
        })
        .map_err(|e| Error::Ssh(e.to_string()))
}

/// What [`attach`] runs on the host.
pub enum Run<'a> {
    /// The login shell.
    Shell,
    /// A shell command on the host.
    Host(&'a str),
    /// `docker compose <args>` in the stack's directory.
    Compose(&'a str),
}

/// Runs on the host with output streamed to this terminal and input forwarded; on a terminal with a remote
/// pseudo-terminal in raw mode (`tty`). Returns the remote exit status (`None`: ended by a signal).
pub fn attach(stack: &StackDir, run: Run<'_>, tty: bool) -> Result<Option<u32>> {
    let t = target(stack)?;
    let command = match run {
        Run::Shell => None,
        Run::Host(c) => Some(c.to_string()),
        Run::Compose(args) => Some(compose_command(&t.dir, args)),
    };
    let tty = tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let pty = tty.then(|| {
        let (cols, rows) = terminal_size();
        Pty {
            term: std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()),
            cols,
            rows,
        }
    });
    let rt = runtime()?;
    let result = rt.block_on(async {
        let s = Session::connect(t.options).await?;
        let _raw = tty.then(RawMode::enter);
        let status = s
            .attach(
                command.as_deref(),
                pty.as_ref(),
                tokio::io::stdin(),
                tokio::io::stdout(),
                tokio::io::stderr(),
            )
            .await;
        s.close().await;
        status
    });
    // A blocked read of the local stdin must not keep the process alive once the remote side has ended.
    rt.shutdown_background();
    result.map_err(|e| Error::Ssh(e.to_string()))
}

/// The local terminal's size (columns, rows), 80×24 when unknown.
fn terminal_size() -> (u32, u32) {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            return (u32::from(ws.ws_col), u32::from(ws.ws_row));
        }
    }
    (80, 24)
}

/// The local terminal in raw mode (keys go to the remote side unprocessed) until dropped.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter() -> Self {
        // SAFETY: tcgetattr/tcsetattr on stdin with a termios struct we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return Self(None);
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw);
            Self(Some(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the attributes read in `enter`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

/// Quotes for the remote POSIX shell.
pub(crate) use cloudcode_bundle::runtime::sh_quote as shell_quote;
