//! The bridge's settings: a JSON file the stack renders (no secrets in it) and secret files beside it (bot token,
//! app secret, proxy with credentials), each refused with one sentence naming the field when it is wrong.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the bridge's configuration {path} cannot be read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the bridge's configuration {path} is not valid: {detail}")]
    Parse { path: String, detail: String },
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
}

fn field(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field,
        problem: problem.into(),
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the SQLite database lives (a volume).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    pub boxes: Vec<BoxEntry>,
    #[serde(default)]
    pub telegram: Option<TelegramEntry>,
    #[serde(default)]
    pub dingtalk: Option<DingTalkEntry>,
    /// A file holding the proxy URL for the platforms' traffic (it may carry credentials).
    #[serde(default)]
    pub proxy_file: Option<PathBuf>,
    #[serde(default = "default_backlog")]
    pub backlog: usize,
    #[serde(default = "default_rate")]
    pub rate_per_minute: u32,
    #[serde(default = "default_online")]
    pub online_minutes: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxEntry {
    pub id: String,
    pub name: String,
    pub opencode_url: String,
    #[serde(default)]
    pub opencode_password_file: Option<PathBuf>,
    #[serde(default)]
    pub web_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramEntry {
    pub token_file: PathBuf,
    #[serde(default = "default_telegram_api")]
    pub api_base: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingTalkEntry {
    pub client_id: String,
    pub client_secret_file: PathBuf,
    #[serde(default)]
    pub robot_code: Option<String>,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default)]
    pub oapi_base: Option<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/data")
}
fn default_backlog() -> usize {
    20
}
fn default_rate() -> u32 {
    20
}
fn default_online() -> u64 {
    15
}
fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        let cfg: FileConfig = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.boxes.is_empty() {
            return Err(field("boxes", "at least one box is needed"));
        }
        for b in &self.boxes {
            if b.id.is_empty()
                || b.id.len() > crate::binding::MAX_BOX_ID
                || !b.id.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(field(
                    "boxes.id",
                    format!(
                        "{:?} must be 1–{} ASCII letters or digits",
                        b.id,
                        crate::binding::MAX_BOX_ID
                    ),
                ));
            }
            url::Url::parse(&b.opencode_url).map_err(|_| {
                field(
                    "boxes.opencode_url",
                    format!("{:?} is not a URL", b.opencode_url),
                )
            })?;
        }
        if self.telegram.is_none() && self.dingtalk.is_none() {
            return Err(field(
                "telegram",
                "configure telegram or dingtalk (or both)",
            ));
        }
        if let Some(t) = &self.telegram {
            check_http_url("telegram.api_base", &t.api_base)?;
        }
        if let Some(d) = &self.dingtalk {
            if d.client_id.trim().is_empty() {
                return Err(field("dingtalk.client_id", "is empty"));
            }
            for (name, base) in [
                ("dingtalk.api_base", &d.api_base),
                ("dingtalk.oapi_base", &d.oapi_base),
            ] {
                if let Some(b) = base {
                    check_http_url(name, b)?;
                }
            }
        }
        if self.backlog == 0 || self.backlog > 1000 {
            return Err(field("backlog", "must be between 1 and 1000"));
        }
        Ok(())
    }

    pub fn online_window(&self) -> Duration {
        Duration::from_secs(self.online_minutes * 60)
    }
}

fn check_http_url(name: &'static str, s: &str) -> Result<(), ConfigError> {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(field(name, format!("{s:?} is not an http(s) URL"))),
    }
}

/// Reads a secret file (trailing newline removed). Its content never appears in an error.
pub fn read_secret(name: &'static str, path: &Path) -> Result<String, ConfigError> {
    let s = std::fs::read_to_string(path).map_err(|e| {
        field(
            name,
            format!("the file {} cannot be read: {e}", path.display()),
        )
    })?;
    let s = s.trim().to_string();
    if s.is_empty() {
        return Err(field(name, format!("the file {} is empty", path.display())));
    }
    Ok(s)
}

/// Checks a proxy URL and returns how it is shown to users: scheme, host and port, never credentials.
pub fn check_proxy(url: &str) -> Result<String, ConfigError> {
    let u = url::Url::parse(url).map_err(|_| {
        field(
            "proxy",
            "is not a URL (http://, https:// or socks5://host:port)",
        )
    })?;
    if !matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(field(
            "proxy",
            format!(
                "the scheme {:?} is not one of http, https, socks5",
                u.scheme()
            ),
        ));
    }
    let host = u.host_str().ok_or_else(|| field("proxy", "has no host"))?;
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_shown_without_its_credentials_and_a_bad_scheme_is_refused() {
        assert_eq!(
            check_proxy("http://user:s3cret@proxy.local:3128").unwrap(),
            "http://proxy.local:3128"
        );
        assert_eq!(
            check_proxy("socks5://10.0.0.1:1080").unwrap(),
            "socks5://10.0.0.1:1080"
        );
        let e = check_proxy("ftp://x:1").unwrap_err().to_string();
        assert!(e.starts_with("proxy:"), "{e}");
        assert!(!check_proxy("http://user:s3cret@")
            .unwrap_err()
            .to_string()
            .contains("s3cret"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = r#"{"boxes":[{"id":"abc","name":"n","opencode_url":"http://devbox:4096"}],"telegram":{"token_file":"/t"}}"#;
        let ok: FileConfig = serde_json::from_str(base).unwrap();
        ok.validate().unwrap();
        let bad_id = base.replace("\"abc\"", "\"a-b\"");
        let e = serde_json::from_str::<FileConfig>(&bad_id)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("boxes.id:"), "{e}");
        let no_platform =
            r#"{"boxes":[{"id":"abc","name":"n","opencode_url":"http://devbox:4096"}]}"#;
        let e = serde_json::from_str::<FileConfig>(no_platform)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("telegram:"), "{e}");
        assert!(
            serde_json::from_str::<FileConfig>(&base.replace("\"boxes\"", "\"boxs\"")).is_err()
        );
    }
}
