//! Runs the real `opencode serve` offline against an [`LlmDouble`], in its own temp HOME and git workspace.
//!
//! The binary comes from `CLOUDCODE_OPENCODE_BIN`, else `$CLOUDCODE_TEST_CACHE/testvm/downloads/bin/opencode`;
//! [`opencode_binary`] says why neither is usable so tests can skip. Configuration and environment follow
//! docs/engineering/opencode-api.md (openai-compatible provider, models.dev fetch and autoupdate off).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::llm_double::LlmDouble;

/// The provider id the fixture configures for the double (`model` is `double/double`).
pub const PROVIDER_ID: &str = "double";
/// Basic-auth user name OpenCode expects with `OPENCODE_SERVER_PASSWORD`.
pub const SERVER_USERNAME: &str = "opencode";

/// The opencode binary to test against, or the reason there is none.
pub fn opencode_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CLOUDCODE_OPENCODE_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "CLOUDCODE_OPENCODE_BIN={} is not a file",
                p.display()
            ))
        };
    }
    match std::env::var_os("CLOUDCODE_TEST_CACHE") {
        Some(cache) => {
            let p = PathBuf::from(cache).join("testvm/downloads/bin/opencode");
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "CLOUDCODE_OPENCODE_BIN is unset and {} does not exist",
                    p.display()
                ))
            }
        }
        None => Err("neither CLOUDCODE_OPENCODE_BIN nor CLOUDCODE_TEST_CACHE is set".into()),
    }
}

/// How to start the server beyond the defaults.
#[derive(Debug, Clone)]
pub struct OpencodeOptions {
    /// The config's `permission` block, e.g. `json!({"bash": "ask"})` (`Value::Null` leaves it out).
    pub permission: Value,
    /// Sets `OPENCODE_SERVER_PASSWORD` (HTTP basic auth, user [`SERVER_USERNAME`]).
    pub password: Option<String>,
    /// How long to wait for `/global/health` (start-up takes 5–20 s on a loaded machine).
    pub ready_timeout: Duration,
}

impl Default for OpencodeOptions {
    fn default() -> Self {
        Self {
            permission: Value::Null,
            password: None,
            ready_timeout: Duration::from_secs(120),
        }
    }
}

/// A running `opencode serve`; killed (and its temp dir removed) on drop.
pub struct OpencodeServer {
    child: Child,
    port: u16,
    password: Option<String>,
    workspace: PathBuf,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl OpencodeServer {
    /// Starts opencode pointed at `llm` with the given `permission` config block.
    pub fn start(llm: &LlmDouble, permission_config: Value) -> Result<Self, String> {
        Self::start_with(
            llm,
            OpencodeOptions {
                permission: permission_config,
                ..Default::default()
            },
        )
    }

    pub fn start_with(llm: &LlmDouble, opts: OpencodeOptions) -> Result<Self, String> {
        let bin = opencode_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("opencode-fixture")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let home = dir.path().join("home");
        let workspace = dir.path().join("workspace");
        for d in [&home, &workspace] {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        init_workspace(&workspace)?;
        let config_path = dir.path().join("opencode.json");
        let config = config_json(llm, &opts.permission);
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("write {}: {e}", config_path.display()))?;
        let log_path = dir.path().join("serve.log");
        let port = crate::net::free_port(std::net::Ipv4Addr::LOCALHOST.into())?;
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&bin);
        cmd.args([
            "serve",
            "--port",
            &port.to_string(),
            "--hostname",
            "127.0.0.1",
            "--print-logs",
        ])
        .current_dir(&workspace)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("OPENCODE_CONFIG", &config_path)
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .env_remove("OPENCODE_SERVER_PASSWORD")
        .env_remove("OPENCODE_SERVER_USERNAME")
        .env_remove("OPENCODE_CONFIG_CONTENT")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
        if let Some(pw) = &opts.password {
            cmd.env("OPENCODE_SERVER_PASSWORD", pw);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut server = Self {
            child,
            port,
            password: opts.password.clone(),
            workspace,
            log_path,
            _dir: dir,
        };
        server.wait_ready(opts.ready_timeout)?;
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `(user, password)` for basic auth, when started with a password.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.password.as_deref().map(|p| (SERVER_USERNAME, p))
    }

    /// The server's cwd: a git repository with one commit (so sessions get a real project id and diffs work).
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// What the server printed so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "opencode exited with {status} before it was ready:\n{}",
                    self.log()
                ));
            }
            if health_ok(addr, self.password.as_deref()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "opencode not healthy after {timeout:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for OpencodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The opencode.json for `llm` (see docs/engineering/opencode-api.md).
pub fn config_json(llm: &LlmDouble, permission: &Value) -> Value {
    let model = format!("{PROVIDER_ID}/{}", llm.model_id());
    let mut config = json!({
        "$schema": "https://opencode.ai/config.json",
        "model": model,
        "small_model": model,
        "autoupdate": false,
        "share": "disabled",
        "provider": {
            PROVIDER_ID: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "LLM double",
                "options": {"baseURL": llm.base_url(), "apiKey": llm.api_key()},
                "models": {
                    llm.model_id(): {"name": "Double", "tool_call": true, "limit": {"context": 100000, "output": 8000}}
                }
            }
        }
    });
    if !permission.is_null() {
        config["permission"] = permission.clone();
    }
    config
}

fn init_workspace(ws: &Path) -> Result<(), String> {
    std::fs::write(ws.join("README.md"), "# fixture workspace\n").map_err(|e| e.to_string())?;
    let git = |args: &[&str]| {
        Command::new("git")
            .args([
                "-c",
                "user.email=fixture@example.invalid",
                "-c",
                "user.name=fixture",
            ])
            .args(args)
            .current_dir(ws)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    // Without git the session's project is "global": still usable, only diffs and project ids differ.
    let _ = git(&["init", "-q"]) && git(&["add", "-A"]) && git(&["commit", "-qm", "fixture"]);
    Ok(())
}

/// A blocking `GET /global/health` answering 200.
fn health_ok(addr: SocketAddr, password: Option<&str>) -> bool {
    use base64::Engine as _;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let auth = password
        .map(|p| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{SERVER_USERNAME}:{p}"));
            format!("Authorization: Basic {token}\r\n")
        })
        .unwrap_or_default();
    let req =
        format!("GET /global/health HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200")
}
