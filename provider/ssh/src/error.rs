//! The transport's error type: every remote failure names the host, the command (never secrets: those go
//! via stdin), the exit status and the tail of stderr; key material never appears in any message.
use std::time::Duration;

/// How many trailing stderr lines a command failure reports.
pub const STDERR_TAIL_LINES: usize = 20;
/// Commands longer than this are shortened in error messages.
const COMMAND_DISPLAY_CHARS: usize = 300;

/// Errors of the SSH transport.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The server presented a host key other than the pinned one. Never retried; no authentication was
    /// attempted on that connection.
    #[error(
        "host key mismatch for {host}: expected {expected}, but the server presented {presented}; refusing to \
         connect (no authentication was attempted). If the host was legitimately rebuilt, update `host_key`."
    )]
    HostKeyMismatch {
        host: String,
        expected: String,
        presented: String,
    },

    /// `host_key` could not be parsed as a public key line or a `SHA256:` fingerprint.
    #[error("invalid host key pin {pin:?}: {reason}")]
    InvalidHostKeyPin { pin: String, reason: String },

    /// The private key could not be read or decrypted (the message never contains key material).
    #[error("private key {source_desc}: {reason}")]
    PrivateKey { source_desc: String, reason: String },

    /// No credentials were configured (no key and no agent).
    #[error("no SSH credentials for {host}: set a private key or enable the SSH agent")]
    NoCredentials { host: String },

    /// The SSH agent could not be reached or used.
    #[error("SSH agent: {0}")]
    Agent(String),

    /// Connecting (TCP, handshake, or a jump host's authentication) kept failing until the caller's deadline.
    #[error("could not connect to {host} within {timeout:?} ({attempts} attempts); last error: {last_error}")]
    ConnectTimeout {
        host: String,
        timeout: Duration,
        attempts: u32,
        last_error: String,
    },

    /// The host answered but kept refusing every configured credential until the caller's deadline.
    #[error(
        "{host} refused the SSH credentials ({attempts} attempts within {timeout:?}); last answer: {last_error}"
    )]
    AuthRejected {
        host: String,
        timeout: Duration,
        attempts: u32,
        last_error: String,
    },

    /// The wait was cancelled (StopProvider).
    #[error("cancelled while {doing} {host}")]
    Cancelled { host: String, doing: &'static str },

    /// A remote command ran and failed.
    #[error("command on {host} failed ({status}): `{command}`{}", stderr_section(.stderr_tail))]
    Command {
        host: String,
        command: String,
        status: String,
        stderr_tail: String,
    },

    /// The SSH connection failed while running or starting a command.
    #[error("SSH transport error on {host} while {doing} `{command}`: {message}")]
    Transport {
        host: String,
        doing: &'static str,
        command: String,
        message: String,
    },

    /// An SFTP operation failed.
    #[error("SFTP {op} of {path} on {host} failed: {message}")]
    Sftp {
        host: String,
        op: &'static str,
        path: String,
        message: String,
    },

    /// A local file to be streamed to a command could not be read.
    #[error("could not read {path} to send it to {host}: {message}")]
    LocalFile {
        host: String,
        path: String,
        message: String,
    },

    /// A caller error (e.g. a relative upload path).
    #[error("invalid request for {host}: {message}")]
    InvalidRequest { host: String, message: String },
}

impl SshError {
    /// Whether a connect attempt that failed with this error may be retried before the deadline.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            SshError::HostKeyMismatch { .. }
                | SshError::InvalidHostKeyPin { .. }
                | SshError::PrivateKey { .. }
                | SshError::NoCredentials { .. }
                | SshError::Agent(_)
                | SshError::Cancelled { .. }
                | SshError::InvalidRequest { .. }
                | SshError::LocalFile { .. }
        )
    }
}

fn stderr_section(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\nstderr (last {STDERR_TAIL_LINES} lines):\n{tail}")
    }
}

/// The last `lines` lines of `bytes`, lossily decoded, without a trailing newline.
pub fn tail_lines(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_end_matches(['\n', '\r']);
    let all: Vec<&str> = trimmed.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// A command shortened for error messages.
pub(crate) fn display_command(command: &str) -> String {
    if command.chars().count() <= COMMAND_DISPLAY_CHARS {
        command.to_string()
    } else {
        let head: String = command.chars().take(COMMAND_DISPLAY_CHARS).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_only_the_last_lines() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let tail = tail_lines(text.as_bytes(), 20);
        assert!(tail.starts_with("line 11\n"), "{tail}");
        assert!(tail.ends_with("line 30"), "{tail}");
        assert_eq!(tail.lines().count(), 20);
    }

    #[test]
    fn command_failure_message_names_host_command_status_and_stderr() {
        let err = SshError::Command {
            host: "root@10.0.0.5:22".into(),
            command: "docker compose up -d".into(),
            status: "exit status 1".into(),
            stderr_tail: "no such service: web".into(),
        };
        let msg = err.to_string();
        for part in [
            "root@10.0.0.5:22",
            "docker compose up -d",
            "exit status 1",
            "no such service: web",
        ] {
            assert!(msg.contains(part), "{msg}");
        }
    }

    #[test]
    fn long_commands_are_shortened_in_messages() {
        let long = "x".repeat(1000);
        assert_eq!(
            display_command(&long).chars().count(),
            COMMAND_DISPLAY_CHARS + 1
        );
        assert_eq!(display_command("ls"), "ls");
    }
}
