//! Authelia in the tests: the contract double (`tests/vm/images/authelia/authelia_double/`) run locally for
//! the replay test, and a browser-like client of the login portal (cookie, first factor, elevation, TOTP,
//! WebAuthn, passkey) that talks either to a local double — doing Caddy's forward-auth part itself — or to
//! the real Caddy of a stack on the test VM.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::webauthn::SoftAuthenticator;

/// The Authelia version the bundle pins (the tag of `DEFAULT_AUTHELIA_IMAGE`).
pub fn pinned_version() -> &'static str {
    cloudcode_bundle::settings::DEFAULT_AUTHELIA_IMAGE
        .rsplit_once(':')
        .map(|(_, v)| v)
        .expect("a tagged image")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A file of `tests/fixtures/authelia/` (the repository's copy of the recordings of the real Authelia).
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/authelia").join(name)
}

/// The double's directory (the `authelia_double` package and its pinned requirements).
pub fn double_dir() -> PathBuf {
    repo().join("tests/vm/images/authelia")
}

/// The double's Python libraries, installed once per version of its requirements file into the test cache.
pub fn double_site() -> PathBuf {
    crate::engine::pip_cached(
        "authelia-double",
        &double_dir().join("requirements.txt"),
        "--target",
        &["install", "--no-deps"],
    )
}

/// The double running on this host against a rendered bundle's `authelia/` files, with its container's
/// mounts mapped under `root` (`/config`, `/data`, `/run/secrets`).
pub struct LocalDouble {
    child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The files a double reads: `authelia/configuration.yml`, `authelia/users_database.yml` and the three
/// secrets, as the bundle lays them out on a host.
pub struct DoubleFiles {
    pub configuration: String,
    pub users: String,
    /// (environment variable, content)
    pub secrets: Vec<(&'static str, String)>,
}

impl DoubleFiles {
    /// From a rendered bundle (the users file needs the admin password supplied), with fresh random secrets.
    pub fn from_bundle(b: &cloudcode_bundle::Bundle) -> Self {
        let text = |p: &str| String::from_utf8(b.files[p].bytes.clone()).unwrap();
        let secrets = cloudcode_bundle::HOST_SECRETS
            .iter()
            .map(|s| {
                let mut bytes = vec![0u8; s.length / 2];
                rand::fill(&mut bytes[..]);
                (s.env, hex::encode(bytes))
            })
            .collect();
        Self {
            configuration: text(cloudcode_bundle::paths::AUTHELIA_CONFIG),
            users: text(cloudcode_bundle::paths::USERS_DATABASE),
            secrets,
        }
    }
}

impl LocalDouble {
    /// Starts the double and waits for `/api/health`; Err(its output) when it refuses to start.
    pub fn start(files: &DoubleFiles) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for d in ["config", "data", "run/secrets"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("config/configuration.yml"), &files.configuration).unwrap();
        std::fs::write(root.join("config/users_database.yml"), &files.users).unwrap();
        for (env, content) in &files.secrets {
            std::fs::write(root.join("run/secrets").join(env), content).unwrap();
        }
        let mut me = Self {
            child: None,
            port: 0,
            log: root.join("double.log"),
            root,
            _dir: dir,
        };
        me.spawn(files)?;
        Ok(me)
    }

    fn spawn(&mut self, files: &DoubleFiles) -> Result<(), String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new("python3");
        let pythonpath = std::env::join_paths([double_site(), double_dir()]).unwrap();
        cmd.args(["-s", "-m", "authelia_double"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PYTHONPATH", pythonpath)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .env("AUTHELIA_DOUBLE_ROOT", &self.root)
            .env("AUTHELIA_DOUBLE_PORT", port.to_string())
            .env(
                "AUTHELIA_DOUBLE_KEYS",
                fixture(&format!("config-keys-{}.txt", pinned_version())),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (env, _) in &files.secrets {
            cmd.env(env, self.root.join("run/secrets").join(env));
        }
        let mut child = cmd.spawn().expect("python3");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("exited with {status}: {}", self.log_text()));
            }
            let r = curl(
                &["-s", "-o", "/dev/null", "-w", "%{http_code}"],
                &format!("http://127.0.0.1:{port}/api/health"),
            );
            if r.trim() == "200" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the double did not answer: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
        self.port = port;
        Ok(())
    }

    /// Stops and starts it again with the same storage (as an Authelia container recreated on its volume).
    pub fn restart(&mut self, files: &DoubleFiles) -> Result<(), String> {
        self.stop();
        self.spawn(files)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Everything it logged (one JSON object per line).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its log lines as JSON.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The notifier's file (`/data/notification.txt` in the container).
    pub fn notification(&self) -> String {
        std::fs::read_to_string(self.root.join("data/notification.txt")).unwrap_or_default()
    }
}

impl Drop for LocalDouble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn curl(args: &[&str], url: &str) -> String {
    let out = Command::new("curl")
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one-time code in a notifier file's `text`, as the user gets it: `cloudcode otc --file` run by the CLI
/// binary `cli` on a copy.
pub fn cloudcode_otc(cli: &Path, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notification.txt");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(cli)
        .args(["otc", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cloudcode otc --file: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// (lower-case name, value), in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("HTTP {}: not JSON ({e}): {}", self.status, self.body))
    }

    /// `{"status":"OK"}` with HTTP `status`, or a panic naming what came instead.
    pub fn expect_ok(self, status: u16, what: &str) -> Self {
        assert!(
            self.status == status && self.json()["status"] == "OK",
            "{what}: HTTP {} {}",
            self.status,
            self.body
        );
        self
    }
}

/// Where a [`Browser`] sends its requests.
#[derive(Debug, Clone)]
pub enum Transport {
    /// A local double on this port; requests to the site go to its forward-auth as Caddy sends them, and an
    /// allowed one answers 200 with the body `upstream`.
    Direct { port: u16 },
    /// The real Caddy of a stack at this address (the site's names resolved to it), on `https_port`.
    Caddy { ip: String, https_port: u16 },
}

/// A browser of the portal: one session cookie, requests to the site and to `auth.<domain>`.
pub struct Browser {
    pub transport: Transport,
    pub domain: String,
    /// The HTTPS port in the URLs (None: 443).
    pub port: Option<u16>,
    pub cookie_name: String,
    pub cookie: Option<String>,
    /// Every `Location` the site answered with (to check where users are sent).
    pub locations: Vec<String>,
}

/// A reply from `curl -s -D -` output (the last header block, then the body).
pub fn parse_reply(out: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(out).into_owned();
    let mut rest = text.as_str();
    // The last header block (after any `100 Continue`).
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        if head.starts_with("HTTP/") && body.starts_with("HTTP/") {
            rest = body;
            continue;
        }
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Reply {
            status,
            headers,
            body: body.to_string(),
        };
    }
}

impl Browser {
    pub fn new(transport: Transport, domain: &str, port: Option<u16>) -> Self {
        Self {
            transport,
            domain: domain.to_string(),
            port,
            cookie_name: "cloudcode_session".into(),
            cookie: None,
            locations: Vec::new(),
        }
    }

    fn host(&self, name: &str) -> String {
        match self.port {
            Some(p) => format!("{name}:{p}"),
            None => name.to_string(),
        }
    }

    pub fn site_host(&self) -> String {
        self.host(&self.domain)
    }

    pub fn auth_host(&self) -> String {
        self.host(&format!("auth.{}", self.domain))
    }

    pub fn site_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.site_host())
    }

    /// One request; `host` is `site` or `auth`. Keeps the session cookie it is given.
    pub fn send(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let host_header = if host == "site" {
            self.site_host()
        } else {
            self.auth_host()
        };
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-k", "--max-time", "30", "-D", "-", "-X", method]);
        let url = match &self.transport {
            Transport::Caddy { ip, https_port } => {
                let name = host_header.split(':').next().unwrap().to_string();
                cmd.arg("--resolve")
                    .arg(format!("{name}:{https_port}:{ip}"));
                format!("https://{name}:{https_port}{path}")
            }
            Transport::Direct { port } if host == "site" => {
                // What Caddy's forward_auth sends: the original headers, X-Forwarded-*, GET, our URI.
                let uri = path;
                cmd.args(["-H", &format!("X-Forwarded-Method: {method}")])
                    .args(["-H", "X-Forwarded-Proto: https"])
                    .args(["-H", &format!("X-Forwarded-Host: {host_header}")])
                    .args(["-H", &format!("X-Forwarded-Uri: {uri}")])
                    .args(["-H", "X-Forwarded-For: 127.0.0.1"])
                    .args(["-X", "GET"]);
                format!(
                    "http://127.0.0.1:{port}{}",
                    cloudcode_bundle::render::forward_auth_uri(&self.domain, self.port)
                )
            }
            Transport::Direct { port } => {
                cmd.args(["-H", "X-Forwarded-Proto: https"])
                    .args(["-H", &format!("X-Forwarded-Host: {host_header}")])
                    .args(["-H", "X-Forwarded-For: 127.0.0.1"]);
                format!("http://127.0.0.1:{port}{path}")
            }
        };
        cmd.args(["-H", &format!("Host: {host_header}")]);
        for (n, v) in headers {
            cmd.args(["-H", &format!("{n}: {v}")]);
        }
        if let Some(c) = &self.cookie {
            cmd.args(["-H", &format!("Cookie: {}={c}", self.cookie_name)]);
        }
        let input = body.map(|b| b.to_string());
        if input.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(&url).stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("curl");
        if let Some(text) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().expect("curl");
        let mut reply = parse_reply(&out.stdout);
        if matches!(self.transport, Transport::Direct { .. })
            && host == "site"
            && (200..300).contains(&reply.status)
        {
            reply = Reply {
                status: 200,
                headers: Vec::new(),
                body: "upstream".into(),
            };
        }
        for (n, v) in &reply.headers {
            if n == "set-cookie" {
                if let Some((name, rest)) = v.split_once('=') {
                    if name == self.cookie_name {
                        let value = rest.split(';').next().unwrap_or("");
                        self.cookie = (!value.is_empty()).then(|| value.to_string());
                    }
                }
            }
        }
        if host == "site" {
            if let Some(l) = reply.header("location") {
                self.locations.push(l.to_string());
            }
        }
        reply
    }

    /// A page of the site as a browser asks for it (HTML), or as a script does (`xhr`: JSON + X-Requested-With).
    pub fn site(&mut self, path: &str, xhr: bool) -> Reply {
        if xhr {
            self.send(
                "GET",
                "site",
                path,
                &[
                    ("Accept", "application/json"),
                    ("X-Requested-With", "XMLHttpRequest"),
                ],
                None,
            )
        } else {
            self.send("GET", "site", path, &[("Accept", "text/html")], None)
        }
    }

    /// A call to the portal's API.
    pub fn api(&mut self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.send(
            method,
            "auth",
            path,
            &[("Accept", "application/json")],
            body,
        )
    }

    pub fn first_factor(&mut self, username: &str, password: &str) -> Reply {
        let target = self.site_url("/");
        self.api(
            "POST",
            "/api/firstfactor",
            Some(
                &json!({"username": username, "password": password, "targetURL": target,
                         "requestMethod": "GET", "keepMeLoggedIn": false}),
            ),
        )
    }

    /// Elevates the session with the one-time code `read_code` finds after the portal sent it.
    pub fn elevate(&mut self, read_code: &dyn Fn() -> String) {
        self.api("POST", "/api/user/session/elevation", None)
            .expect_ok(200, "elevation request");
        let code = read_code();
        self.api(
            "PUT",
            "/api/user/session/elevation",
            Some(&json!({"otc": code})),
        )
        .expect_ok(200, "elevation with the one-time code");
    }

    /// Registers TOTP (the session must be elevated); returns the authenticator app's view of it.
    pub fn register_totp(&mut self) -> Totp {
        let r = self
            .api(
                "PUT",
                "/api/secondfactor/totp/register",
                Some(&json!({"algorithm": "SHA1", "length": 6, "period": 30})),
            )
            .expect_ok(200, "TOTP registration options");
        let data = &r.json()["data"];
        let mut totp = Totp {
            secret: data["base32_secret"]
                .as_str()
                .expect("base32_secret")
                .to_string(),
            digits: 6,
            period: 30,
            used: Vec::new(),
        };
        let token = totp.next_code();
        self.api(
            "POST",
            "/api/secondfactor/totp/register",
            Some(&json!({"token": token})),
        )
        .expect_ok(200, "TOTP registration");
        totp
    }

    pub fn totp_login(&mut self, totp: &mut Totp) -> Reply {
        let token = totp.next_code();
        let target = self.site_url("/");
        self.api(
            "POST",
            "/api/secondfactor/totp",
            Some(&json!({"token": token, "targetURL": target})),
        )
    }

    /// Registers `key` as a WebAuthn credential (the session must be elevated).
    pub fn register_webauthn(&mut self, key: &mut SoftAuthenticator, description: &str) -> Reply {
        let r = self
            .api(
                "PUT",
                "/api/secondfactor/webauthn/credential/register",
                Some(&json!({"description": description})),
            )
            .expect_ok(200, "WebAuthn registration options");
        let credential = key.create(&r.json()["data"]["publicKey"]);
        self.api(
            "POST",
            "/api/secondfactor/webauthn/credential/register",
            Some(&credential),
        )
    }

    /// WebAuthn as the second factor (after the password).
    pub fn webauthn_login(&mut self, key: &mut SoftAuthenticator) -> Reply {
        let r = self
            .api("GET", "/api/secondfactor/webauthn", None)
            .expect_ok(200, "WebAuthn assertion options");
        let assertion = key.get(&r.json()["data"]["publicKey"]);
        let target = self.site_url("/");
        self.api(
            "POST",
            "/api/secondfactor/webauthn",
            Some(&json!({"targetURL": target, "response": assertion})),
        )
    }

    /// A passkey as the first factor; the password then follows as the second (two_factor rules).
    pub fn passkey_login(&mut self, key: &mut SoftAuthenticator) -> Reply {
        let r = self
            .api("GET", "/api/firstfactor/passkey", None)
            .expect_ok(200, "passkey options");
        let assertion = key.get(&r.json()["data"]["publicKey"]);
        let target = self.site_url("/");
        self.api(
            "POST",
            "/api/firstfactor/passkey",
            Some(&json!({"targetURL": target, "requestMethod": "GET", "keepMeLoggedIn": false, "response": assertion})),
        )
    }

    pub fn second_factor_password(&mut self, password: &str) -> Reply {
        let target = self.site_url("/");
        self.api(
            "POST",
            "/api/secondfactor/password",
            Some(&json!({"password": password, "targetURL": target})),
        )
    }
}

/// An authenticator app's TOTP entry. A code is used once: the next one comes from another time step within
/// the skew (±1), or waits for the next step.
pub struct Totp {
    pub secret: String,
    pub digits: u32,
    pub period: u64,
    used: Vec<u64>,
}

impl Totp {
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.into(),
            digits: 6,
            period: 30,
            used: Vec::new(),
        }
    }

    pub fn code_at(&self, step: u64) -> String {
        let key = data_encoding::BASE32_NOPAD
            .decode(self.secret.trim_end_matches('=').as_bytes())
            .expect("a base32 TOTP secret");
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
        mac.update(&step.to_be_bytes());
        let h = mac.finalize().into_bytes();
        let off = (h[h.len() - 1] & 0x0f) as usize;
        let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
        format!(
            "{:0width$}",
            bin % 10u32.pow(self.digits),
            width = self.digits as usize
        )
    }

    /// The current step, for codes other than the app's.
    pub fn step_now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / self.period
    }

    /// A code not used before: now, then the next step (within the skew), else wait.
    pub fn next_code(&mut self) -> String {
        loop {
            let now = self.step_now();
            if let Some(step) = [now, now + 1].into_iter().find(|s| !self.used.contains(s)) {
                self.used.push(step);
                return self.code_at(step);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
