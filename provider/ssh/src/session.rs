//! Connecting (direct or through a jump host, with retries and backoff bounded by the caller's deadline,
//! honouring a cancellation token) and the [`Session`]: one SSH connection per operation, reused for every
//! command and upload, with counters for the benchmarks. Commands run through `sudo -n` when the login
//! user is not root.
use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{Config, Handle};
use russh::{ChannelMsg, Preferred};
use tokio_util::sync::CancellationToken;

use crate::auth::{Credentials, LoadedCredentials};
use crate::error::{display_command, tail_lines, SshError, STDERR_TAIL_LINES};
use crate::hostkey::{HostKeyCheck, HostKeyPin, HostKeyPolicy, ObservedHostKey, Verdict};
use crate::sftp::Sftp;

/// What a command reads on stdin.
enum Stdin<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(tokio::fs::File, Encoding),
}

/// How a streamed file crosses the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As it is.
    Raw,
    /// Compressed on the fly with zstd at this level: the receiving command must read zstd (`docker load` does).
    Zstd(i32),
}

/// One SSH server to log in to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub credentials: Credentials,
    pub host_key: HostKeyPolicy,
}

impl Endpoint {
    /// `user@host:port`, as shown in logs and errors.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Whether commands and uploads go through `sudo -n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SudoMode {
    /// Use sudo when the login user is not `root`.
    #[default]
    Auto,
    Never,
    Always,
}

/// Everything needed to open a [`Session`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub target: Endpoint,
    /// A bastion: the target is reached through a `direct-tcpip` channel opened on it.
    pub jump: Option<Endpoint>,
    /// Overall deadline for connecting, retries included (the resource's `timeouts`).
    pub timeout: Duration,
    /// Upper bound for one attempt (TCP connect + handshake + authentication).
    pub attempt_timeout: Duration,
    /// Cancelled by StopProvider: stops waits and commands.
    pub cancel: CancellationToken,
    pub sudo: SudoMode,
}

impl ConnectOptions {
    /// Defaults: no jump host, 5 minute deadline, 30 s per attempt, sudo when not root.
    pub fn new(target: Endpoint) -> Self {
        ConnectOptions {
            target,
            jump: None,
            timeout: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(30),
            cancel: CancellationToken::new(),
            sudo: SudoMode::Auto,
        }
    }
}

/// Counters of one session (for benchmarks and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connect attempts made (1 when the first attempt succeeded).
    pub connect_attempts: u32,
    /// SSH connections established (1, or 2 through a jump host).
    pub connections: u32,
    /// Remote commands run (including those used internally by uploads as a non-root user).
    pub commands: u32,
    /// Files uploaded.
    pub uploads: u32,
    /// SFTP subsystem channels opened (at most 1 per session).
    pub sftp_channels: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connect_attempts: AtomicU32,
    pub connections: AtomicU32,
    pub commands: AtomicU32,
    pub uploads: AtomicU32,
    pub sftp_channels: AtomicU32,
    /// The shortest time a channel took to open, in µs (one round trip); 0 until one has opened.
    pub min_channel_open_us: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU32) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The result of a remote command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the command was killed by a signal (see `exit_signal`).
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_status == Some(0)
    }

    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// `exit status 3`, `killed by signal KILL` or `no exit status`.
    pub fn status_text(&self) -> String {
        match (&self.exit_status, &self.exit_signal) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "no exit status".to_string(),
        }
    }

    /// `Ok(self)` on exit status 0, else a [`SshError::Command`] with host, command, status and stderr tail.
    pub fn check(self, host: &str, command: &str) -> Result<Self, SshError> {
        if self.success() {
            Ok(self)
        } else {
            Err(SshError::Command {
                host: host.to_string(),
                command: display_command(command),
                status: self.status_text(),
                stderr_tail: tail_lines(&self.stderr, STDERR_TAIL_LINES),
            })
        }
    }
}

/// One authenticated SSH connection, reused for every command and upload of an operation.
pub struct Session {
    pub(crate) label: String,
    handle: Handle<HostKeyCheck>,
    /// Kept alive: the target connection runs over a channel of this one.
    _jump: Option<Handle<HostKeyCheck>>,
    host_key: ObservedHostKey,
    jump_host_key: Option<ObservedHostKey>,
    pub(crate) sudo: bool,
    pub(crate) cancel: CancellationToken,
    pub(crate) counters: Counters,
    pub(crate) sftp: tokio::sync::Mutex<Option<Arc<Sftp>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.label)
            .field("host_key", &self.host_key.fingerprint)
            .field("sudo", &self.sudo)
            .field("stats", &self.stats())
            .finish()
    }
}

enum AttemptError {
    Fatal(SshError),
    Retry(String),
    /// The host answered and refused the credentials: retried (keys may still be on their way, e.g. while
    /// an instance boots), and reported as [`SshError::AuthRejected`] if it never accepts them.
    Rejected(String),
}

impl From<SshError> for AttemptError {
    fn from(e: SshError) -> Self {
        if e.is_retryable() {
            AttemptError::Retry(e.to_string())
        } else {
            AttemptError::Fatal(e)
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Session {
    /// Connects and authenticates, retrying refused connections, timeouts, dropped handshakes and rejected
    /// keys with exponential backoff until `options.timeout`. A host-key mismatch, a bad key or a
    /// cancellation stop at once.
    pub async fn connect(options: ConnectOptions) -> Result<Session, SshError> {
        let label = options.target.label();
        let target_creds = options.target.credentials.load()?;
        if target_creds.is_empty() {
            return Err(SshError::NoCredentials { host: label });
        }
        let jump_creds = match &options.jump {
            Some(j) => {
                let c = j.credentials.load()?;
                if c.is_empty() {
                    return Err(SshError::NoCredentials { host: j.label() });
                }
                Some(c)
            }
            None => None,
        };
        let counters = Counters::default();
        let deadline = Instant::now() + options.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u32;
        // The last answer that was not a timeout, and whether it was a refusal of the credentials.
        let mut last_answer: Option<(String, bool)> = None;
        loop {
            attempts += 1;
            Counters::bump(&counters.connect_attempts);
            let per_attempt = deadline
                .saturating_duration_since(Instant::now())
                .min(options.attempt_timeout);
            let attempt = attempt_once(&options, &target_creds, jump_creds.as_ref(), &counters);
            let outcome = tokio::select! {
                _ = options.cancel.cancelled() => {
                    return Err(SshError::Cancelled { host: label, doing: "connecting to" });
                }
                r = tokio::time::timeout(per_attempt, attempt) => r,
            };
            let last_error = match outcome {
                Ok(Ok(parts)) => {
                    tracing::debug!(host = %label, attempts, "ssh connected");
                    return Ok(Session {
                        label,
                        handle: parts.handle,
                        _jump: parts.jump,
                        host_key: parts.host_key,
                        jump_host_key: parts.jump_host_key,
                        sudo: match options.sudo {
                            SudoMode::Auto => options.target.user != "root",
                            SudoMode::Always => true,
                            SudoMode::Never => false,
                        },
                        cancel: options.cancel.clone(),
                        counters,
                        sftp: tokio::sync::Mutex::new(None),
                    });
                }
                Ok(Err(AttemptError::Fatal(e))) => return Err(e),
                Ok(Err(AttemptError::Retry(msg))) => {
                    last_answer = Some((msg.clone(), false));
                    msg
                }
                Ok(Err(AttemptError::Rejected(msg))) => {
                    last_answer = Some((msg.clone(), true));
                    msg
                }
                // An attempt cut short by the deadline says less than the answer before it.
                Err(_) if per_attempt < options.attempt_timeout && last_answer.is_some() => {
                    last_answer
                        .as_ref()
                        .map(|(m, _)| m.clone())
                        .unwrap_or_default()
                }
                Err(_) => {
                    last_answer = None;
                    format!("attempt timed out after {per_attempt:?}")
                }
            };
            tracing::info!(host = %label, attempt = attempts, error = %last_error, "ssh connect failed; will retry");
            let now = Instant::now();
            if now + Duration::from_millis(50) >= deadline {
                if let Some((_, true)) = last_answer {
                    return Err(SshError::AuthRejected {
                        host: label,
                        timeout: options.timeout,
                        attempts,
                        last_error,
                    });
                }
                return Err(SshError::ConnectTimeout {
                    host: label,
                    timeout: options.timeout,
                    attempts,
                    last_error,
                });
            }
            let pause = backoff.min(deadline - now);
            tokio::select! {
                _ = options.cancel.cancelled() => {
                    return Err(SshError::Cancelled { host: label, doing: "waiting to reconnect to" });
                }
                _ = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// `user@host:port`.
    pub fn host(&self) -> &str {
        &self.label
    }

    /// The target's host key as presented (record it in state for trust on first use).
    pub fn host_key(&self) -> &ObservedHostKey {
        &self.host_key
    }

    /// The jump host's key, when connected through one.
    pub fn jump_host_key(&self) -> Option<&ObservedHostKey> {
        self.jump_host_key.as_ref()
    }

    /// Whether the connection has ended (dropped by the network, the server or [`Session::close`]).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Resolves once the connection has ended. Pending SFTP requests do not notice a dead connection until
    /// their own timeout, so uploads and reads race against this.
    pub(crate) async fn connection_lost(&self) {
        while !self.handle.is_closed() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether commands run through `sudo -n`.
    pub fn uses_sudo(&self) -> bool {
        self.sudo
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            connect_attempts: c.connect_attempts.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            commands: c.commands.load(Ordering::Relaxed),
            uploads: c.uploads.load(Ordering::Relaxed),
            sftp_channels: c.sftp_channels.load(Ordering::Relaxed),
        }
    }

    /// `command` as sent: wrapped in `sudo -n sh -c '...'` when sudo is on.
    pub(crate) fn wrap(&self, command: &str) -> String {
        if self.sudo {
            format!("sudo -n -- sh -c {}", quote(command))
        } else {
            command.to_string()
        }
    }

    pub(crate) fn handle(&self) -> &Handle<HostKeyCheck> {
        &self.handle
    }

    /// Runs `command` (as root via sudo when needed), feeding `stdin` (then EOF). Returns the output
    /// whatever the exit status; see [`ExecOutput::check`].
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, SshError> {
        self.exec_wrapped(command, &self.wrap(command), stdin).await
    }

    /// The shortest round trip seen on this connection (opening a channel is one), `None` before any command.
    pub fn round_trip(&self) -> Option<Duration> {
        match self.counters.min_channel_open_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Like [`Session::exec`], with the local file `path` streamed as stdin in chunks (never whole in memory),
    /// encoded as `encoding` on the way: the command consumes it while it is still being sent (`docker load` of
    /// an image archive).
    pub async fn exec_file(
        &self,
        command: &str,
        path: &Path,
        encoding: Encoding,
    ) -> Result<ExecOutput, SshError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| SshError::LocalFile {
                host: self.label.clone(),
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        self.exec_stdin(command, &self.wrap(command), Stdin::File(file, encoding))
            .await
    }

    /// Runs `sent` exactly as given; `shown` is what errors report.
    pub(crate) async fn exec_wrapped(
        &self,
        shown: &str,
        sent: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let stdin = match stdin {
            Some(bytes) => Stdin::Bytes(bytes),
            None => Stdin::Empty,
        };
        self.exec_stdin(shown, sent, stdin).await
    }

    async fn exec_stdin(
        &self,
        shown: &str,
        sent: &str,
        stdin: Stdin<'_>,
    ) -> Result<ExecOutput, SshError> {
        Counters::bump(&self.counters.commands);
        let transport = |doing: &'static str, message: String| SshError::Transport {
            host: self.label.clone(),
            doing,
            command: display_command(shown),
            message,
        };
        tracing::debug!(host = %self.label, command = %display_command(shown), "ssh exec");
        let opening = Instant::now();
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| transport("opening a channel for", e.to_string()))?;
        let took = (opening.elapsed().as_micros() as u64).max(1);
        let _ = self.counters.min_channel_open_us.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |seen| (seen == 0 || took < seen).then_some(took),
        );
        channel
            .exec(true, sent.as_bytes())
            .await
            .map_err(|e| transport("starting", e.to_string()))?;
        let (mut read, write) = channel.split();
        let writer = async move {
            match stdin {
                Stdin::Empty => {}
                Stdin::Bytes(bytes) => write.data(bytes).await?,
                Stdin::File(file, Encoding::Raw) => {
                    write
                        .data(tokio::io::BufReader::with_capacity(1 << 20, file))
                        .await?
                }
                Stdin::File(file, Encoding::Zstd(level)) => {
                    use async_compression::tokio::bufread::ZstdEncoder;
                    let reader = tokio::io::BufReader::with_capacity(1 << 20, file);
                    let zstd =
                        ZstdEncoder::with_quality(reader, async_compression::Level::Precise(level));
                    write
                        .data(tokio::io::BufReader::with_capacity(1 << 20, zstd))
                        .await?
                }
            }
            write.eof().await
        };
        let reader = async move {
            let mut out = ExecOutput::default();
            let mut refused = false;
            while let Some(msg) = read.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.exit_signal = Some(format!("{signal_name:?}"))
                    }
                    ChannelMsg::Failure => refused = true,
                    _ => {}
                }
            }
            (out, refused)
        };
        // The reader decides: once the channel closes (the command exited, or the connection died) a writer
        // still waiting for window space to send stdin would wait forever, so it is dropped.
        let both = async {
            tokio::pin!(writer, reader);
            let mut write_result = None;
            loop {
                tokio::select! {
                    w = &mut writer, if write_result.is_none() => write_result = Some(w),
                    r = &mut reader => break (write_result.unwrap_or(Ok(())), r),
                }
            }
        };
        let (write_result, (out, refused)) = tokio::select! {
            _ = self.cancel.cancelled() => {
                return Err(SshError::Cancelled { host: self.label.clone(), doing: "running a command on" });
            }
            r = both => r,
        };
        if refused {
            return Err(transport(
                "starting",
                "the server refused to run the command".into(),
            ));
        }
        if out.exit_status.is_none() && out.exit_signal.is_none() {
            let why = match write_result {
                Err(e) => format!("the connection failed while sending stdin: {e}"),
                Ok(()) => {
                    "the channel closed before the command exited (connection lost?)".to_string()
                }
            };
            return Err(transport("running", why));
        }
        Ok(out)
    }

    /// Disconnects politely (dropping the session also closes it).
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// POSIX-shell single quoting (`'it'\''s'`), valid for any byte string without NUL.
pub(crate) fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(Cow::into_owned)
        .unwrap_or_else(|_| format!("'{}'", s.replace('\'', r"'\''")))
}

struct Connected {
    handle: Handle<HostKeyCheck>,
    jump: Option<Handle<HostKeyCheck>>,
    host_key: ObservedHostKey,
    jump_host_key: Option<ObservedHostKey>,
}

fn client_config(policy: &HostKeyPolicy) -> Arc<Config> {
    Arc::new(Config {
        preferred: Preferred {
            key: Cow::Owned(HostKeyPin::preferred_algorithms(policy.pin())),
            ..Preferred::default()
        },
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        nodelay: true,
        ..Config::default()
    })
}

/// What went wrong in a handshake: a pinned-key mismatch (fatal) or anything else (retryable).
fn handshake_error(
    endpoint: &Endpoint,
    verdict: &Mutex<Verdict>,
    err: russh::Error,
) -> AttemptError {
    let mismatch = verdict.lock().ok().and_then(|v| v.mismatch.clone());
    match mismatch {
        Some((expected, presented)) => AttemptError::Fatal(SshError::HostKeyMismatch {
            host: endpoint.label(),
            expected,
            presented,
        }),
        None => AttemptError::Retry(format!("{}: {err}", endpoint.label())),
    }
}

fn observed(
    endpoint: &Endpoint,
    verdict: &Mutex<Verdict>,
) -> Result<ObservedHostKey, AttemptError> {
    verdict
        .lock()
        .ok()
        .and_then(|v| v.observed.clone())
        .ok_or_else(|| {
            AttemptError::Retry(format!("{}: no host key was checked", endpoint.label()))
        })
}

async fn authenticate(
    endpoint: &Endpoint,
    creds: &LoadedCredentials,
    handle: &mut Handle<HostKeyCheck>,
) -> Result<(), AttemptError> {
    match creds.authenticate(handle, &endpoint.user).await? {
        Ok(()) => Ok(()),
        Err(msg) => Err(AttemptError::Rejected(format!(
            "{}: {msg}",
            endpoint.label()
        ))),
    }
}

async fn attempt_once(
    options: &ConnectOptions,
    target_creds: &LoadedCredentials,
    jump_creds: Option<&LoadedCredentials>,
    counters: &Counters,
) -> Result<Connected, AttemptError> {
    let target = &options.target;
    let (target_check, target_verdict) = HostKeyCheck::new(target.host_key.clone());
    let target_config = client_config(&target.host_key);
    let (mut handle, jump, jump_host_key) = match (&options.jump, jump_creds) {
        (Some(jump), Some(jump_creds)) => {
            let (check, verdict) = HostKeyCheck::new(jump.host_key.clone());
            let mut jh = russh::client::connect(
                client_config(&jump.host_key),
                (jump.host.as_str(), jump.port),
                check,
            )
            .await
            .map_err(|e| handshake_error(jump, &verdict, e))?;
            let jump_key = observed(jump, &verdict)?;
            // The jump host refusing the key is not the target refusing it (AuthRejected is the target's).
            authenticate(jump, jump_creds, &mut jh)
                .await
                .map_err(|e| match e {
                    AttemptError::Rejected(m) => AttemptError::Retry(m),
                    other => other,
                })?;
            Counters::bump(&counters.connections);
            let channel = jh
                .channel_open_direct_tcpip(
                    target.host.as_str(),
                    u32::from(target.port),
                    "127.0.0.1",
                    0,
                )
                .await
                .map_err(|e| {
                    AttemptError::Retry(format!(
                        "{} could not reach {}: {e}",
                        jump.label(),
                        target.label()
                    ))
                })?;
            let handle =
                russh::client::connect_stream(target_config, channel.into_stream(), target_check)
                    .await
                    .map_err(|e| handshake_error(target, &target_verdict, e))?;
            (handle, Some(jh), Some(jump_key))
        }
        _ => {
            let handle = russh::client::connect(
                target_config,
                (target.host.as_str(), target.port),
                target_check,
            )
            .await
            .map_err(|e| handshake_error(target, &target_verdict, e))?;
            (handle, None, None)
        }
    };
    let host_key = observed(target, &target_verdict)?;
    authenticate(target, target_creds, &mut handle).await?;
    Counters::bump(&counters.connections);
    Ok(Connected {
        handle,
        jump,
        host_key,
        jump_host_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_a_real_shell() {
        for text in [
            "plain",
            "it's a test",
            "$HOME `id` \"q\" \\ ;|&*?",
            "line1\nline2",
            "",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(text)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        }
    }

    #[test]
    fn failed_command_output_becomes_an_error_with_the_stderr_tail() {
        let out = ExecOutput {
            stderr: b"a\nb\nboom\n".to_vec(),
            exit_status: Some(2),
            ..Default::default()
        };
        let msg = out
            .check("root@h:22", "false")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("exit status 2") && msg.contains("boom") && msg.contains("root@h:22"),
            "{msg}"
        );
        let ok = ExecOutput {
            exit_status: Some(0),
            ..Default::default()
        };
        assert!(ok.check("h", "true").is_ok());
        let killed = ExecOutput {
            exit_signal: Some("KILL".into()),
            ..Default::default()
        };
        assert_eq!(killed.status_text(), "killed by signal KILL");
    }
}
