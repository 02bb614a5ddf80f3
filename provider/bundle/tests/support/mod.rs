//! Shared test support for the bundle tests: sample settings, writing a bundle to disk, locating the real external
//! binaries (failing clearly when missing), and a Caddyfile tokenizer for in-process checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cloudcode_bundle::{hash_password, render, Bundle, Secrets, Settings};

/// A known test password (not a real secret).
pub const PASSWORD: &str = "correct horse battery staple";
pub const API_KEY: &str = "sk-test-0123456789abcdef$#\"x";

/// Custom-domain settings with a key and a model.
pub fn custom_domain() -> Settings {
    let mut s = Settings::default_for("code.example.com", "alice", "alice@example.com");
    s.admin_display_name = Some("Alice Example".into());
    s.llm_provider = "anthropic".into();
    s.llm_model = Some("claude-sonnet-4-5".into());
    s.llm_api_key_wo_version = Some(1);
    s.timezone = "Asia/Shanghai".into();
    s
}

/// Fallback domain, terminal off, 8443 on, internal TLS, OpenAI-compatible endpoint, devbox built on the host.
pub fn fallback_terminal_off_8443() -> Settings {
    let domain = cloudcode_bundle::fallback_domain("47.1.2.3").unwrap();
    let mut s = Settings::default_for(&domain, "admin", "ops@example.org");
    s.terminal_enabled = false;
    s.https_alt_port = Some(8443);
    s.tls_mode = "internal".into();
    s.llm_provider = "openai_compatible".into();
    s.llm_base_url = Some("https://llm.example.net/v1".into());
    s.llm_model = Some("qwen2.5-coder:32b".into());
    s.llm_api_key_wo_version = Some(3);
    s.admin_password_wo_version = 2;
    s.devbox_build = true;
    s
}

/// A fixed (not random) argon2id PHC string, so golden files are stable.
pub const FIXED_HASH: &str =
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

pub fn secrets_fixed() -> Secrets {
    Secrets {
        admin_password_hash: Some(FIXED_HASH.into()),
        llm_api_key: Some(API_KEY.into()),
        ..Default::default()
    }
}

pub fn secrets_real_hash() -> Secrets {
    Secrets {
        admin_password_hash: Some(hash_password(PASSWORD).unwrap()),
        llm_api_key: Some(API_KEY.into()),
        ..Default::default()
    }
}

pub fn render_ok(s: &Settings, secrets: &Secrets) -> Bundle {
    render(s, secrets).unwrap_or_else(|e| panic!("render failed: {e}"))
}

/// Writes the bundle under `dir`, with modes, then runs its `bin/ensure-secrets.sh` as the SSH layer does on a
/// host (host secrets and an empty `.env` when no LLM key was supplied).
pub fn write_bundle(b: &Bundle, dir: &Path) {
    write_files(b, dir);
    run_ok(
        Command::new("sh")
            .arg(dir.join(cloudcode_bundle::paths::ENSURE_SECRETS))
            .arg(dir),
    );
}

/// Writes only the bundle's files under `dir`, with modes.
pub fn write_files(b: &Bundle, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The run-time file the provider writes before Caddy starts: blue serves.
    let devbox = dir.join(cloudcode_bundle::runtime::DEVBOX_CADDY);
    std::fs::create_dir_all(devbox.parent().unwrap()).unwrap();
    std::fs::write(
        &devbox,
        cloudcode_bundle::runtime::devbox_caddy("devbox_blue").unwrap(),
    )
    .unwrap();
    for (p, f) in &b.files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &f.bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode)).unwrap();
    }
}

pub fn text(b: &Bundle, path: &str) -> String {
    String::from_utf8(
        b.files
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing"))
            .bytes
            .clone(),
    )
    .unwrap()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Finds an executable on PATH or in `$REPO/.cache/bin`; panics with how to install it when missing.
pub fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.insert(0, repo_root().join(".cache/bin"));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found on PATH or in .cache/bin: run `bash scripts/deps/20-bundle.sh` (CI runs it via scripts/test.sh)")
}

/// python3 with argon2-cffi and dockerfile importable.
pub fn python() -> PathBuf {
    let py = tool("python3");
    let ok = Command::new(&py)
        .args(["-c", "import argon2, dockerfile"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 lacks argon2-cffi/dockerfile: run `bash scripts/deps/20-bundle.sh`"
    );
    py
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    out
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `caddy validate` on a Caddyfile at `path` (fails the test with Caddy's output otherwise).
pub fn caddy_validate(path: &Path) -> String {
    let home = path.parent().unwrap().join(".caddy-home");
    run_ok(
        Command::new(tool("caddy"))
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(path)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config")),
    )
}

/// `caddy adapt` → the JSON config Caddy would run.
pub fn caddy_adapt(path: &Path) -> serde_json::Value {
    let home = path.parent().unwrap().join(".caddy-home");
    let out = run_ok(
        Command::new(tool("caddy"))
            .args(["adapt", "--adapter", "caddyfile", "--config"])
            .arg(path)
            .env("HOME", &home),
    );
    serde_json::from_str(&out).unwrap()
}

/// `docker compose config --format json` with the standalone Compose v2 binary; no Docker engine is contacted.
/// Its output is itself a Compose file, so every `$` in it is written `$$`; this undoes that in all strings, giving
/// the values the containers would see.
pub fn compose_config(dir: &Path) -> serde_json::Value {
    let mut v = compose_config_raw(dir);
    unescape_dollars(&mut v);
    v
}

fn unescape_dollars(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = s.replace("$$", "$"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(unescape_dollars),
        serde_json::Value::Object(m) => m.values_mut().for_each(unescape_dollars),
        _ => {}
    }
}

/// `docker compose config --format json` output as printed.
pub fn compose_config_raw(dir: &Path) -> serde_json::Value {
    let out = run_ok(
        Command::new(tool("docker-compose"))
            .arg("-f")
            .arg(dir.join("docker-compose.yml"))
            .arg("--project-directory")
            .arg(dir)
            .args(["config", "--format", "json"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env(
                "COMPOSE_PROFILES",
                cloudcode_bundle::runtime::COMPOSE_PROFILES,
            )
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_FILE"),
    );
    serde_json::from_str(&out).unwrap()
}

/// A Caddyfile token: text plus the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub line: usize,
    pub quoted: bool,
}

/// Tokenizes a Caddyfile like Caddy's lexer: whitespace separates tokens, newlines end lines, `#` at token start
/// begins a comment, `"..."` (with `\"`) and `` `...` `` quote, `{`/`}` are ordinary tokens when standalone.
pub fn caddy_tokens(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start_line = line;
        let mut t = String::new();
        if c == '"' || c == '`' {
            let q = c;
            i += 1;
            while i < chars.len() && chars[i] != q {
                if q == '"' && chars[i] == '\\' && i + 1 < chars.len() && chars[i + 1] == '"' {
                    i += 1;
                }
                if chars[i] == '\n' {
                    line += 1;
                }
                t.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Token {
                text: t,
                line: start_line,
                quoted: true,
            });
            continue;
        }
        while i < chars.len() && !chars[i].is_whitespace() {
            t.push(chars[i]);
            i += 1;
        }
        out.push(Token {
            text: t,
            line: start_line,
            quoted: false,
        });
    }
    out
}

/// The tokens of each line, in order.
pub fn caddy_lines(src: &str) -> Vec<Vec<String>> {
    let mut lines: Vec<(usize, Vec<String>)> = Vec::new();
    for t in caddy_tokens(src) {
        match lines.last_mut() {
            Some((l, v)) if *l == t.line => v.push(t.text),
            _ => lines.push((t.line, vec![t.text])),
        }
    }
    lines.into_iter().map(|(_, v)| v).collect()
}
