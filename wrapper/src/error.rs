//! The CLI's error type: every variant displays as one sentence in the user's language (see [`crate::i18n`]),
//! never containing a secret.

use std::path::PathBuf;

use crate::i18n::tr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the sentence is already localised.
    #[error("{0}")]
    Input(String),
    #[error("{}", tr(
        "neither tofu nor terraform was found on PATH (install OpenTofu >= 1.11.6 or Terraform >= 1.11, or set CLOUDCODE_TF_BIN)",
        "在 PATH 中找不到 tofu 或 terraform（请安装 OpenTofu >= 1.11.6 或 Terraform >= 1.11，或设置 CLOUDCODE_TF_BIN）"))]
    NoEngine,
    #[error("{}", tr(format!("another cloudcode command is running on stack \"{}\"; wait for it to finish", .0),
        format!("栈 \"{}\" 上已有另一个 cloudcode 命令在运行，请等待其结束", .0)))]
    Locked(String),
    #[error("{}", tr(format!("stack \"{}\" does not exist (deploy it first, or pass --name)", .0),
        format!("栈 \"{}\" 不存在（请先部署，或使用 --name 指定）", .0)))]
    NoStack(String),
    #[error("{}", tr(format!("{} failed: {}", .0, .1), format!("{} 失败：{}", .0, .1)))]
    Engine(String, String),
    /// Ctrl-C: the engine (named, e.g. `tofu 1.12.6`) got one SIGINT and stopped.
    #[error("{}", tr(format!("interrupted; {} was stopped cleanly", .0), format!("已中断；{} 已安全停止", .0)))]
    Interrupted(String),
    #[error("{}", tr("cancelled; nothing was changed", "已取消，未做任何更改"))]
    Cancelled,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", tr(format!("SSH to the host failed: {}", .0), format!("SSH 连接主机失败：{}", .0)))]
    Ssh(String),
    /// A command run on the host exited non-zero; the CLI exits with the same status.
    #[error("{}", tr(format!("the remote command exited with status {}", .0), format!("远程命令退出状态为 {}", .0)))]
    RemoteExit(u32),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub fn input(en: impl Into<String>, zh: impl Into<String>) -> Error {
        Error::Input(tr(en, zh))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
