//! SSH transport of cloudcode: the [`Remote`] seam the stack resource and the CLI use, implemented by
//! [`Session`] (one russh connection per operation, reused for every command and SFTP upload), with pinned or
//! trust-on-first-use host keys, key/agent authentication, jump hosts, bounded connect retries and atomic
//! uploads. Design notes: docs/engineering/ssh.md.
mod auth;
mod error;
mod hostkey;
mod interactive;
mod keyfix;
mod keygen;
mod session;
mod sftp;

pub use auth::{AgentMode, Credentials, PrivateKeySource};
pub use error::{tail_lines, SshError, STDERR_TAIL_LINES};
pub use hostkey::{HostKeyPin, HostKeyPolicy, ObservedHostKey};
pub use interactive::Pty;
pub use keygen::{generate_rsa, GeneratedKey};
pub use session::{ConnectOptions, Encoding, Endpoint, ExecOutput, Session, Stats, SudoMode};
pub use tokio_util::sync::CancellationToken;

/// What the deployment code needs from a host. [`Session`] is the SSH implementation.
#[async_trait::async_trait]
pub trait Remote: Send + Sync {
    /// `user@host:port`, for messages.
    fn host(&self) -> &str;

    /// Runs a shell command (as root: through `sudo -n` for other users). Secrets go in `stdin`, never in
    /// `command`. Returns the output whatever the exit status.
    async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, SshError>;

    /// Like [`Remote::exec`], but a non-zero exit is an error naming host, command, status and stderr tail.
    async fn run(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, SshError> {
        self.exec(command, stdin).await?.check(self.host(), command)
    }

    /// Like [`Remote::exec`], with the local file `path` streamed as stdin (never whole in memory), encoded as
    /// `encoding` in transit.
    async fn exec_file(
        &self,
        command: &str,
        path: &std::path::Path,
        encoding: Encoding,
    ) -> Result<ExecOutput, SshError>;

    /// The shortest round trip seen to the host so far (`None` when unknown).
    fn round_trip(&self) -> Option<std::time::Duration> {
        None
    }

    /// Replaces `path` (absolute) with `bytes` and permission bits `mode`, atomically.
    async fn upload_atomic(&self, path: &str, bytes: &[u8], mode: u32) -> Result<(), SshError>;

    /// The file's content, or `None` when it does not exist.
    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SshError>;
}

#[async_trait::async_trait]
impl Remote for Session {
    fn host(&self) -> &str {
        Session::host(self)
    }

    async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, SshError> {
        Session::exec(self, command, stdin).await
    }

    async fn exec_file(
        &self,
        command: &str,
        path: &std::path::Path,
        encoding: Encoding,
    ) -> Result<ExecOutput, SshError> {
        Session::exec_file(self, command, path, encoding).await
    }

    fn round_trip(&self) -> Option<std::time::Duration> {
        Session::round_trip(self)
    }

    async fn upload_atomic(&self, path: &str, bytes: &[u8], mode: u32) -> Result<(), SshError> {
        Session::upload_atomic(self, path, bytes, mode).await
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        Session::read_file(self, path).await
    }
}
