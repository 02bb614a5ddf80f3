//! Streaming sessions for the CLI (`cloudcode ssh`, `exec`, `logs -f`): the remote command's output is copied
//! to local writers as it arrives and local input is forwarded, optionally on a pseudo-terminal. The terminal's
//! own mode (raw or not) is the caller's business.

use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::display_command;
use crate::{Session, SshError};

/// A pseudo-terminal request.
#[derive(Debug, Clone)]
pub struct Pty {
    /// `TERM`, e.g. `xterm-256color`.
    pub term: String,
    pub cols: u32,
    pub rows: u32,
}

impl Session {
    /// Runs `command` (or the login shell when `None`) and streams: `input` to its stdin (EOF when `input`
    /// ends), its stdout and stderr to `out` and `err` as they arrive. Returns the exit status (`None` when it
    /// was ended by a signal).
    pub async fn attach<I, O, E>(
        &self,
        command: Option<&str>,
        pty: Option<&Pty>,
        mut input: I,
        mut out: O,
        mut err: E,
    ) -> Result<Option<u32>, SshError>
    where
        I: AsyncRead + Unpin + Send,
        O: AsyncWrite + Unpin + Send,
        E: AsyncWrite + Unpin + Send,
    {
        let shown = command.unwrap_or("<login shell>");
        let transport = |doing: &'static str, message: String| SshError::Transport {
            host: self.host().to_string(),
            doing,
            command: display_command(shown),
            message,
        };
        let channel = self
            .handle()
            .channel_open_session()
            .await
            .map_err(|e| transport("opening a channel for", e.to_string()))?;
        if let Some(p) = pty {
            channel
                .request_pty(true, &p.term, p.cols, p.rows, 0, 0, &[])
                .await
                .map_err(|e| transport("requesting a terminal for", e.to_string()))?;
        }
        match command {
            Some(c) => channel.exec(true, self.wrap(c).as_bytes()).await,
            None => channel.request_shell(true).await,
        }
        .map_err(|e| transport("starting", e.to_string()))?;
        let (mut read, write) = channel.split();
        let mut buf = vec![0u8; 16 * 1024];
        let mut input_open = true;
        let mut status = None;
        loop {
            tokio::select! {
                n = input.read(&mut buf), if input_open => match n {
                    Ok(0) | Err(_) => {
                        input_open = false;
                        let _ = write.eof().await;
                    }
                    Ok(n) => {
                        write.data(&buf[..n]).await.map_err(|e| transport("sending input to", e.to_string()))?;
                    }
                },
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        let _ = out.write_all(&data).await;
                        let _ = out.flush().await;
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        let _ = err.write_all(&data).await;
                        let _ = err.flush().await;
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(ChannelMsg::Failure) => {
                        return Err(transport("starting", "the server refused to run the command".into()));
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
        Ok(status)
    }
}
