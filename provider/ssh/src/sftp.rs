//! SFTP on the session's connection (one subsystem channel, opened lazily and reused): atomic uploads
//! (temp file in the target's directory, fsync, chmod, POSIX rename) and file reads. As a non-root user the
//! bytes are staged in `~/.cloudcode-stage/` and moved into place by one `sudo -n sh -c` script that keeps
//! the same temp-file/fsync/rename discipline.
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use crate::error::SshError;
use crate::session::{quote, Counters, Session};

const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FSYNC: &str = "fsync@openssh.com";
/// Marks our temp files: `.<name>.cloudcode-tmp.<random>` next to the target.
const TMP_MARK: &str = ".cloudcode-tmp.";
/// Bytes per SFTP write; OpenSSH accepts up to 256 KiB, most servers at least 32 KiB.
const CHUNK: usize = 32 * 1024;
/// Writes in flight at once.
const PIPELINE: usize = 32;
/// Per-request response timeout in seconds.
const REQUEST_TIMEOUT_SECS: u64 = 60;
/// The non-root staging directory, relative to the login user's home.
const STAGE_DIR: &str = ".cloudcode-stage";

/// The session's SFTP channel and the server's extensions.
pub(crate) struct Sftp {
    raw: RawSftpSession,
    posix_rename: bool,
    fsync: bool,
    home: String,
}

fn status_code(err: &SftpError) -> Option<StatusCode> {
    match err {
        SftpError::Status(s) => Some(s.status_code),
        _ => None,
    }
}

/// `(dir, name)` of an absolute file path.
fn split_path(path: &str) -> Option<(&str, &str)> {
    if !path.starts_with('/') || path.ends_with('/') || path.contains('\0') {
        return None;
    }
    let idx = path.rfind('/')?;
    let name = &path[idx + 1..];
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some((if idx == 0 { "/" } else { &path[..idx] }, name))
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The SSH string encoding of the two paths of `posix-rename@openssh.com`.
fn rename_payload(from: &str, to: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + from.len() + to.len());
    for s in [from, to] {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

impl Session {
    fn sftp_error(&self, op: &'static str, path: &str, e: impl std::fmt::Display) -> SshError {
        SshError::Sftp {
            host: self.label.clone(),
            op,
            path: path.to_string(),
            message: e.to_string(),
        }
    }

    /// The session's SFTP channel, opened on first use.
    pub(crate) async fn sftp(&self) -> Result<Arc<Sftp>, SshError> {
        let mut slot = self.sftp.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let err = |e: &dyn std::fmt::Display| self.sftp_error("subsystem start", "-", e);
        let channel = self
            .handle()
            .channel_open_session()
            .await
            .map_err(|e| err(&e))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| err(&e))?;
        let raw = RawSftpSession::new(channel.into_stream());
        raw.set_timeout(REQUEST_TIMEOUT_SECS);
        let version = raw.init().await.map_err(|e| err(&e))?;
        let has = |name: &str| version.extensions.contains_key(name);
        let home = match raw.realpath(".").await {
            Ok(name) => name
                .files
                .first()
                .map(|f| f.filename.clone())
                .unwrap_or_else(|| "/".into()),
            Err(e) => return Err(err(&e)),
        };
        Counters::bump(&self.counters.sftp_channels);
        let sftp = Arc::new(Sftp {
            posix_rename: has(POSIX_RENAME),
            fsync: has(FSYNC),
            raw,
            home,
        });
        *slot = Some(sftp.clone());
        Ok(sftp)
    }

    /// Writes `bytes` to a new file `path` (created exclusively, mode 0600), fsyncs and closes it; removes
    /// the file again if writing fails (best effort: a dead connection leaves it for the next upload).
    async fn sftp_write_new(
        &self,
        sftp: &Sftp,
        path: &str,
        bytes: &[u8],
        exclusive: bool,
    ) -> Result<(), SshError> {
        let mut flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        if exclusive {
            flags |= OpenFlags::EXCLUDE;
        }
        let attrs = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        let handle = sftp
            .raw
            .open(path, flags, attrs)
            .await
            .map_err(|e| self.sftp_error("open", path, e))?
            .handle;
        let written = async {
            let h = handle.as_str();
            futures::stream::iter((0..bytes.len()).step_by(CHUNK))
                .map(|offset| {
                    let chunk = bytes[offset..(offset + CHUNK).min(bytes.len())].to_vec();
                    sftp.raw.write(h, offset as u64, chunk)
                })
                .buffer_unordered(PIPELINE)
                .try_for_each(|_| async { Ok(()) })
                .await
                .map_err(|e| self.sftp_error("write", path, e))?;
            if sftp.fsync {
                sftp.raw
                    .fsync(handle.as_str())
                    .await
                    .map_err(|e| self.sftp_error("fsync", path, e))?;
            }
            Ok::<(), SshError>(())
        }
        .await;
        let closed = sftp
            .raw
            .close(handle.as_str())
            .await
            .map_err(|e| self.sftp_error("close", path, e));
        if let Err(e) = written.and(closed.map(|_| ())) {
            let _ = sftp.raw.remove(path).await;
            return Err(e);
        }
        Ok(())
    }

    /// Removes leftovers `.<name>.cloudcode-tmp.*` of earlier interrupted uploads in `dir`.
    async fn remove_stale_temps(&self, sftp: &Sftp, dir: &str, name: &str) -> Result<(), SshError> {
        let prefix = format!(".{name}{TMP_MARK}");
        let handle = sftp
            .raw
            .opendir(dir)
            .await
            .map_err(|e| self.sftp_error("opendir", dir, e))?
            .handle;
        let mut stale = Vec::new();
        loop {
            match sftp.raw.readdir(handle.as_str()).await {
                Ok(batch) => stale.extend(
                    batch
                        .files
                        .into_iter()
                        .map(|f| f.filename)
                        .filter(|f| f.starts_with(&prefix)),
                ),
                Err(e) if status_code(&e) == Some(StatusCode::Eof) => break,
                Err(e) => {
                    let _ = sftp.raw.close(handle.as_str()).await;
                    return Err(self.sftp_error("readdir", dir, e));
                }
            }
        }
        let _ = sftp.raw.close(handle.as_str()).await;
        for file in stale {
            let p = join(dir, &file);
            tracing::debug!(host = %self.label, path = %p, "removing a temp file left by an interrupted upload");
            sftp.raw
                .remove(p.as_str())
                .await
                .map_err(|e| self.sftp_error("remove", &p, e))?;
        }
        Ok(())
    }

    /// Atomic upload as the login user (root): temp file next to the target, fsync, chmod, rename.
    async fn upload_direct(
        &self,
        path: &str,
        dir: &str,
        name: &str,
        bytes: &[u8],
        mode: u32,
    ) -> Result<(), SshError> {
        let sftp = self.sftp().await?;
        self.remove_stale_temps(&sftp, dir, name).await?;
        let tmp = join(dir, &format!(".{name}{TMP_MARK}{}", random_suffix()));
        self.sftp_write_new(&sftp, &tmp, bytes, true).await?;
        let renamed = async {
            let attrs = FileAttributes {
                permissions: Some(mode & 0o7777),
                ..FileAttributes::empty()
            };
            sftp.raw
                .setstat(tmp.as_str(), attrs)
                .await
                .map_err(|e| self.sftp_error("chmod", &tmp, e))?;
            if sftp.posix_rename {
                match sftp
                    .raw
                    .extended(POSIX_RENAME, rename_payload(&tmp, path))
                    .await
                {
                    Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                    Ok(Packet::Status(s)) => Err(self.sftp_error(
                        "rename",
                        path,
                        format!("{}: {}", s.status_code, s.error_message),
                    )),
                    Ok(_) => {
                        Err(self.sftp_error("rename", path, "unexpected reply to posix-rename"))
                    }
                    Err(e) => Err(self.sftp_error("rename", path, e)),
                }
            } else {
                // SFTP v3 rename refuses to replace; mv is rename(2) within one directory.
                let cmd = format!("mv -f -- {} {}", quote(&tmp), quote(path));
                self.exec_wrapped(&cmd, &cmd, None)
                    .await?
                    .check(&self.label, &cmd)
                    .map(|_| ())
            }
        }
        .await;
        if renamed.is_err() {
            let _ = sftp.raw.remove(tmp.as_str()).await;
        }
        renamed
    }

    /// Atomic upload as a non-root user: stage in `~/.cloudcode-stage/`, then one root script copies into a
    /// temp file next to the target, fsyncs, chmods and renames it over the target.
    async fn upload_sudo(
        &self,
        path: &str,
        dir: &str,
        name: &str,
        bytes: &[u8],
        mode: u32,
    ) -> Result<(), SshError> {
        let sftp = self.sftp().await?;
        let stage_dir = join(&sftp.home, STAGE_DIR);
        match sftp
            .raw
            .mkdir(
                stage_dir.as_str(),
                FileAttributes {
                    permissions: Some(0o700),
                    ..FileAttributes::empty()
                },
            )
            .await
        {
            Ok(_) => {}
            Err(_) if sftp.raw.stat(stage_dir.as_str()).await.is_ok() => {}
            Err(e) => return Err(self.sftp_error("mkdir", &stage_dir, e)),
        }
        let stage = join(&stage_dir, &path.replace('%', "%25").replace('/', "%2F"));
        self.sftp_write_new(&sftp, &stage, bytes, false).await?;
        let prefix = quote(&join(dir, &format!(".{name}{TMP_MARK}")));
        let script = format!(
            "set -e; rm -f -- {prefix}*; t=$(mktemp {prefix}XXXXXXXXXXXXXXXX); cat -- {stage} > \"$t\"; \
             chmod {mode:o} \"$t\"; sync -- \"$t\"; mv -f -- \"$t\" {target}",
            stage = quote(&stage),
            mode = mode & 0o7777,
            target = quote(path),
        );
        let shown = format!("install {path} (mode {:o}) via sudo", mode & 0o7777);
        let result = self
            .exec_wrapped(&shown, &self.wrap(&script), None)
            .await
            .and_then(|o| o.check(&self.label, &shown));
        let _ = sftp.raw.remove(stage.as_str()).await;
        result.map(|_| ())
    }

    /// Replaces `path` atomically with `bytes` and `mode`: readers see the old file or the new one, never a
    /// partial one, even if the connection drops mid-upload.
    pub async fn upload_atomic(&self, path: &str, bytes: &[u8], mode: u32) -> Result<(), SshError> {
        let (dir, name) = split_path(path).ok_or_else(|| SshError::InvalidRequest {
            host: self.label.clone(),
            message: format!("upload path {path:?} must be an absolute file path"),
        })?;
        Counters::bump(&self.counters.uploads);
        tracing::debug!(host = %self.label, path, bytes = bytes.len(), mode = format!("{mode:o}"), "ssh upload");
        let upload = async {
            if self.sudo {
                self.upload_sudo(path, dir, name, bytes, mode).await
            } else {
                self.upload_direct(path, dir, name, bytes, mode).await
            }
        };
        tokio::select! {
            _ = self.cancel.cancelled() => Err(SshError::Cancelled { host: self.label.clone(), doing: "uploading to" }),
            _ = self.connection_lost() => Err(self.sftp_error("upload", path, "the SSH connection was lost")),
            r = upload => r,
        }
    }

    /// The file's bytes, or `None` if it does not exist (read as root via sudo when needed).
    pub async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(SshError::Cancelled { host: self.label.clone(), doing: "reading from" }),
            _ = self.connection_lost() => Err(self.sftp_error("read", path, "the SSH connection was lost")),
            r = self.read_file_inner(path) => r,
        }
    }

    async fn read_file_inner(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        if self.sudo {
            let q = quote(path);
            let cmd = format!("if [ -e {q} ]; then printf 1; exec cat -- {q}; else printf 0; fi");
            let out = self.exec(&cmd, None).await?.check(&self.label, &cmd)?;
            return Ok(match out.stdout.split_first() {
                Some((b'1', rest)) => Some(rest.to_vec()),
                _ => None,
            });
        }
        let sftp = self.sftp().await?;
        let handle = match sftp
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) if status_code(&e) == Some(StatusCode::NoSuchFile) => return Ok(None),
            Err(e) => return Err(self.sftp_error("open", path, e)),
        };
        let mut data = Vec::new();
        let result = loop {
            match sftp
                .raw
                .read(handle.as_str(), data.len() as u64, CHUNK as u32)
                .await
            {
                Ok(chunk) if chunk.data.is_empty() => break Ok(()),
                Ok(chunk) => data.extend_from_slice(&chunk.data),
                Err(e) if status_code(&e) == Some(StatusCode::Eof) => break Ok(()),
                Err(e) => break Err(self.sftp_error("read", path, e)),
            }
        };
        let _ = sftp.raw.close(handle.as_str()).await;
        result.map(|_| Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_file_paths_are_uploadable() {
        assert_eq!(
            split_path("/opt/cloudcode/compose.yaml"),
            Some(("/opt/cloudcode", "compose.yaml"))
        );
        assert_eq!(split_path("/x"), Some(("/", "x")));
        for bad in ["relative/x", "/opt/", "/opt/..", "", "/a\0b"] {
            assert_eq!(split_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn posix_rename_payload_is_two_ssh_strings() {
        assert_eq!(
            rename_payload("ab", "c"),
            vec![0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c']
        );
    }
}
