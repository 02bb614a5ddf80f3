//! Test support: a real OpenSSH server (`/usr/sbin/sshd -D -e`) on 127.0.0.1 with a generated host key,
//! authorized keys in its own temp dir and its log captured; test keys made by `ssh-keygen`; a real
//! `ssh-agent`; an unlocked non-root user with passwordless sudo. Processes are killed by PID on drop.
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// The non-root login user the tests create once (unlocked, passwordless sudo).
pub const TEST_USER: &str = "cloudcode-ssh-test";

/// Key types the tests generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    /// 3072-bit RSA in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), to cover the PEM format too.
    RsaPem,
    EcdsaP256,
}

/// A generated key pair.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private_path: PathBuf,
    pub private_text: String,
    /// `ssh-ed25519 AAAA... comment`
    pub public_line: String,
    /// `SHA256:...`
    pub fingerprint: String,
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Generates a key with `ssh-keygen` into `dir/name` (`name.pub` next to it).
pub fn generate_key(
    dir: &Path,
    name: &str,
    kind: KeyKind,
    passphrase: Option<&str>,
) -> Result<KeyPair> {
    let path = dir.join(name);
    let _ = fs::remove_file(&path);
    let _ = fs::remove_file(path.with_extension("pub"));
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-C", name, "-N", passphrase.unwrap_or(""), "-f"])
        .arg(&path);
    match kind {
        KeyKind::Ed25519 => cmd.args(["-t", "ed25519"]),
        KeyKind::RsaPem => cmd.args(["-t", "rsa", "-b", "3072", "-m", "PEM"]),
        KeyKind::EcdsaP256 => cmd.args(["-t", "ecdsa", "-b", "256"]),
    };
    run(&mut cmd)?;
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    let public_line = fs::read_to_string(&pub_path)?.trim().to_string();
    let listing = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&pub_path))?;
    let fingerprint = listing
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("ssh-keygen -l: {listing}"))?
        .to_string();
    Ok(KeyPair {
        private_text: fs::read_to_string(&path)?,
        private_path: path,
        public_line,
        fingerprint,
    })
}

static USER_LOCK: Mutex<()> = Mutex::new(());

/// Creates [`TEST_USER`] once: home directory, `/bin/sh`, password field `*` (unlocked for key logins but
/// no password), and `NOPASSWD` sudo. Needs root.
pub fn ensure_test_user() -> Result<()> {
    let _guard = USER_LOCK
        .lock()
        .map_err(|_| anyhow!("user lock poisoned"))?;
    let exists = Command::new("id")
        .arg(TEST_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !exists {
        // Another test process may create the user at the same moment: useradd's "already in use" (9) is fine.
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", TEST_USER])
            .output()
            .context("running useradd")?;
        if !out.status.success() && out.status.code() != Some(9) {
            bail!(
                "useradd {TEST_USER} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    run(Command::new("usermod").args(["-p", "*", TEST_USER]))?;
    let sudoers = format!("/etc/sudoers.d/{TEST_USER}");
    if !Path::new(&sudoers).exists() {
        fs::write(&sudoers, format!("{TEST_USER} ALL=(ALL) NOPASSWD:ALL\n"))?;
        fs::set_permissions(&sudoers, fs::Permissions::from_mode(0o440))?;
    }
    Ok(())
}

/// What the server accepts.
#[derive(Debug, Clone, Default)]
pub struct SshdConfig {
    /// `(user, public key line)` pairs written to the server's own authorized-keys files.
    pub authorized: Vec<(String, String)>,
    /// `AllowTcpForwarding` (needed on a jump host).
    pub allow_tcp_forwarding: bool,
    /// Host key type (Ed25519 when `None`).
    pub host_key_kind: Option<KeyKind>,
}

impl SshdConfig {
    pub fn authorize(mut self, user: &str, public_line: &str) -> Self {
        self.authorized
            .push((user.to_string(), public_line.to_string()));
        self
    }

    pub fn with_tcp_forwarding(mut self) -> Self {
        self.allow_tcp_forwarding = true;
        self
    }
}

/// A configured server, not started yet (its port is reserved).
pub struct PreparedSshd {
    dir: tempfile::TempDir,
    port: u16,
    config_path: PathBuf,
    log_path: PathBuf,
    host_key: KeyPair,
}

impl PreparedSshd {
    pub fn new(config: &SshdConfig) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("cloudcode-sshd-")
            .tempdir()?;
        // Authorized-keys files are read with the login user's privileges.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        fs::create_dir_all("/run/sshd")?;
        let keys_dir = dir.path().join("authorized_keys");
        fs::create_dir(&keys_dir)?;
        fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o755))?;
        for (user, line) in &config.authorized {
            let path = keys_dir.join(user);
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(f, "{line}")?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        }
        let host_key = generate_key(
            dir.path(),
            "ssh_host_key",
            config.host_key_kind.unwrap_or(KeyKind::Ed25519),
            None,
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config_path = dir.path().join("sshd_config");
        let log_path = dir.path().join("sshd.log");
        let text = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {pid}\n\
             AuthorizedKeysFile {keys}/%u\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             AllowTcpForwarding {fwd}\nSubsystem sftp internal-sftp\nLogLevel DEBUG1\nMaxStartups 100\n\
             MaxSessions 100\nPrintMotd no\n",
            host_key = host_key.private_path.display(),
            pid = dir.path().join("sshd.pid").display(),
            keys = keys_dir.display(),
            fwd = if config.allow_tcp_forwarding { "yes" } else { "no" },
        );
        fs::write(&config_path, text)?;
        run(Command::new("/usr/sbin/sshd")
            .arg("-t")
            .arg("-f")
            .arg(&config_path))?;
        Ok(PreparedSshd {
            dir,
            port,
            config_path,
            log_path,
            host_key,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host_key(&self) -> &KeyPair {
        &self.host_key
    }

    /// Starts sshd and waits until it accepts connections.
    pub fn start(self) -> Result<Sshd> {
        // `-E file`, not `-e`: with `-e` the session processes' debug lines would reach the client's stderr.
        let log = fs::File::create(&self.log_path)?;
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-E")
            .arg(&self.log_path)
            .arg("-f")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting /usr/sbin/sshd")?;
        let mut sshd = Sshd {
            child,
            prepared: self,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Readiness from the log, not a probe connection (tests count connections in the log).
            if sshd.log().contains("Server listening on") {
                return Ok(sshd);
            }
            if let Some(status) = sshd.child.try_wait()? {
                bail!("sshd exited ({status}): {}", sshd.log());
            }
            if Instant::now() > deadline {
                bail!("sshd did not listen within 15 s: {}", sshd.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running sshd, killed (by PID) on drop with all its per-connection processes.
pub struct Sshd {
    child: Child,
    prepared: PreparedSshd,
}

impl Sshd {
    /// Prepares and starts a server.
    pub fn start(config: &SshdConfig) -> Result<Self> {
        PreparedSshd::new(config)?.start()
    }

    pub fn port(&self) -> u16 {
        self.prepared.port
    }

    pub fn host_key(&self) -> &KeyPair {
        &self.prepared.host_key
    }

    pub fn dir(&self) -> &Path {
        self.prepared.dir.path()
    }

    /// The server's log so far (`LogLevel DEBUG1`).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.prepared.log_path).unwrap_or_default()
    }

    /// SIGKILLs every per-connection process (the listener keeps running): drops all open connections
    /// abruptly, as a network failure or a reboot would. Returns how many processes were killed.
    pub fn kill_connections(&self) -> usize {
        let pids = descendants(self.child.id());
        for pid in &pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        pids.len()
    }
}

/// PIDs of all descendants of `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command name: state, ppid, ...
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = after
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, _) in parents.iter().filter(|(_, ppid)| *ppid == p) {
            found.push(*pid);
            frontier.push(*pid);
        }
    }
    found
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_connections();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `ssh-agent` in the foreground on its own socket; killed by PID on drop.
pub struct Agent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("cloudcode-agent-")
            .tempdir()?;
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ssh-agent")?;
        let agent = Agent {
            child,
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            if Instant::now() > deadline {
                bail!("ssh-agent did not create its socket");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(agent)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `ssh-add` of an unencrypted key.
    pub fn add(&self, key: &KeyPair) -> Result<()> {
        run(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &self.socket)
            .arg(&key.private_path))?;
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
