//! The reusable test VM: a "fresh" Debian bookworm host (sshd, no Docker) in its own network namespace,
//! which the provider reaches over real SSH, plus the locally built image archives it deploys.
//!
//! The heavy lifting is in `tests/vm/` (shell, because it is mount/namespace plumbing): `build.sh` builds and
//! caches the root filesystem, an offline apt repository with docker.io, and the caddy / devbox /
//! Authelia-double image archives; `vm.sh` runs one VM for as long as its standard input (our "lifeline" pipe)
//! stays open and tears everything down when it closes — also when this process dies without running
//! `Drop`, so a VM kept in a `static` is cleaned up at process exit. See docs/engineering/test-vm.md.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long `start` waits for the VM to report ready (the image build runs before, unbounded).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long teardown may take (killing processes, unmounting, deleting the VM's Docker data).
const DOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything that can go wrong while running a test VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("the test VM needs root (namespaces, mounts, chroot)")]
    NotRoot,
    #[error("building the test VM artifacts failed ({status}); see the output above")]
    Build { status: String },
    #[error("running `{command}` failed: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the test VM did not come up: {reason}\n--- vm.sh log ---\n{log}")]
    Boot { reason: String, log: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("command in the VM exited with {status}: {command}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")]
    Command {
        command: String,
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("the test VM did not shut down cleanly: {0}")]
    Teardown(String),
}

/// Options for [`TestVm::start`].
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// The login user. `root` (the default, like an Alibaba Cloud image) or a user created with
    /// passwordless sudo.
    pub user: String,
}

impl Default for VmOptions {
    fn default() -> Self {
        Self {
            user: "root".to_string(),
        }
    }
}

/// One locally built image, saved with `docker save`: upload `archive` and `docker load` it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmImage {
    /// `caddy`, `devbox` or `authelia`.
    pub role: String,
    /// The image reference inside the archive, e.g. `cloudcode-test/caddy:2.11.7`.
    pub image: String,
    /// Absolute path of the `docker save` tarball.
    pub archive: PathBuf,
}

/// Result of a command run inside the VM.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// A running test VM. Dropping it (or calling [`TestVm::shutdown`]) stops it and removes every trace.
pub struct TestVm {
    child: Option<Child>,
    lifeline: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    keydir: tempfile::TempDir,
    /// Slot number (several VMs can run at once, one per slot).
    pub slot: u32,
    /// Name of the VM's network namespace (`cctvmN`).
    pub netns: String,
    /// Address of the VM's sshd as seen from this host (`10.231.N.2`).
    pub ssh_host: String,
    pub ssh_port: u16,
    /// Address of this host as seen from the VM (`10.231.N.1`).
    pub host_ip: String,
    pub user: String,
    /// Private key (ed25519, generated per VM, no passphrase) authorised for `user` and root.
    pub private_key_path: PathBuf,
    /// `ssh-ed25519 AAAA...` of `private_key_path`.
    pub public_key: String,
    /// A known_hosts file pinning the VM's current ed25519 host key.
    pub known_hosts_path: PathBuf,
    host_key: String,
    root: PathBuf,
    pid1: u32,
    /// Milliseconds from slot taken to sshd started, as reported by vm.sh.
    pub boot_ms: u64,
    images: Vec<VmImage>,
}

impl std::fmt::Debug for TestVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestVm")
            .field("netns", &self.netns)
            .field("ssh_host", &self.ssh_host)
            .field("ssh_port", &self.ssh_port)
            .field("user", &self.user)
            .field("pid1", &self.pid1)
            .finish_non_exhaustive()
    }
}

static SHARED: OnceLock<Mutex<TestVm>> = OnceLock::new();
static SHARED_START: Mutex<()> = Mutex::new(());

/// One VM (root login) shared by every test of this test binary that asks for it, started on first use.
/// Holding the guard serialises the scenarios using it. It is never dropped: when the test process exits its
/// lifeline closes and vm.sh tears the VM down.
pub fn shared() -> Result<MutexGuard<'static, TestVm>, VmError> {
    if SHARED.get().is_none() {
        let _starting = SHARED_START.lock().unwrap_or_else(PoisonError::into_inner);
        if SHARED.get().is_none() {
            let vm = TestVm::start(VmOptions::default())?;
            let _ = SHARED.set(Mutex::new(vm));
        }
    }
    match SHARED.get() {
        Some(vm) => Ok(vm.lock().unwrap_or_else(PoisonError::into_inner)),
        None => Err(VmError::Boot {
            reason: "the shared VM was not stored".into(),
            log: String::new(),
        }),
    }
}

/// `tests/vm/<name>`.
pub fn vm_script(name: &str) -> PathBuf {
    repo_root().join("tests/vm").join(name)
}

/// The repository root (this crate lives in `<repo>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Where the cached artifacts live: `$CLOUDCODE_TESTVM_CACHE`, else `testvm/` of the test cache
/// ([`crate::engine::test_cache`], outside the checkout so a fresh clone on the same machine reuses it).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CLOUDCODE_TESTVM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::engine::test_cache().join("testvm"))
}

fn is_root() -> bool {
    // The effective uid is the owner of /proc/self.
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Builds the cached rootfs, apt repository and image archives if missing (a no-op taking milliseconds when
/// they are current). `scripts/deps/40-testvm.sh` runs the same script ahead of the tests.
pub fn ensure_built() -> Result<(), VmError> {
    if !is_root() {
        return Err(VmError::NotRoot);
    }
    let script = vm_script("build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .status()
        .map_err(|source| VmError::Spawn {
            command: script.display().to_string(),
            source,
        })?;
    if !status.success() {
        return Err(VmError::Build {
            status: status.to_string(),
        });
    }
    Ok(())
}

/// The image archives built by `tests/vm/build.sh`, from its `images.json`.
pub fn built_images() -> Result<Vec<VmImage>, VmError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        image: String,
        archive: String,
    }
    let dir = cache_dir().join("images");
    let path = dir.join("images.json");
    let text = fs::read_to_string(&path).map_err(|source| VmError::Read {
        path: path.clone(),
        source,
    })?;
    let entries: BTreeMap<String, Entry> =
        serde_json::from_str(&text).map_err(|e| VmError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    Ok(entries
        .into_iter()
        .map(|(role, e)| VmImage {
            role,
            image: e.image,
            archive: dir.join(e.archive),
        })
        .collect())
}

fn run(cmd: &mut Command) -> Result<Output, VmError> {
    cmd.output().map_err(|source| VmError::Spawn {
        command: format!("{cmd:?}"),
        source,
    })
}

fn output_of(out: Output) -> ExecOutput {
    ExecOutput {
        success: out.status.success(),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn read_line_until(rx: &mpsc::Receiver<String>, deadline: Instant) -> Option<String> {
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left).ok()
}

fn spawn_line_reader(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn parse_ready(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl TestVm {
    /// Builds the artifacts if needed, then boots a VM in a free slot and waits until sshd listens.
    pub fn start(opts: VmOptions) -> Result<TestVm, VmError> {
        ensure_built()?;
        let images = built_images()?;
        let keydir = tempfile::Builder::new()
            .prefix("cloudcode-testvm-")
            .tempdir()
            .map_err(|source| VmError::Read {
                path: std::env::temp_dir(),
                source,
            })?;
        let private_key_path = keydir.path().join("id_ed25519");
        let keygen = run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "cloudcode-test",
                "-f",
            ])
            .arg(&private_key_path))?;
        if !keygen.status.success() {
            return Err(VmError::Boot {
                reason: "ssh-keygen failed".into(),
                log: String::from_utf8_lossy(&keygen.stderr).into_owned(),
            });
        }
        let pub_path = private_key_path.with_extension("pub");
        let public_key = fs::read_to_string(&pub_path)
            .map_err(|source| VmError::Read {
                path: pub_path.clone(),
                source,
            })?
            .trim()
            .to_string();

        let log_path = keydir.path().join("vm.log");
        let log = fs::File::create(&log_path).map_err(|source| VmError::Read {
            path: log_path.clone(),
            source,
        })?;
        let script = vm_script("vm.sh");
        let mut child = Command::new("bash")
            .arg(&script)
            .args(["--user", &opts.user, "--authorized-key"])
            .arg(&pub_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|source| VmError::Spawn {
                command: script.display().to_string(),
                source,
            })?;
        let lifeline = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            return Err(VmError::Boot {
                reason: "no stdout pipe".into(),
                log: String::new(),
            });
        };
        let lines = spawn_line_reader(stdout);
        let boot_log = || fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = loop {
            match read_line_until(&lines, deadline) {
                Some(line) if line.starts_with("ready ") => break parse_ready(&line),
                Some(_) => continue,
                None => {
                    drop(lifeline);
                    let _ = child.wait();
                    return Err(VmError::Boot {
                        reason: "vm.sh exited or timed out before reporting ready".into(),
                        log: boot_log(),
                    });
                }
            }
        };
        let field = |k: &str| ready.get(k).cloned().unwrap_or_default();
        let mut vm = TestVm {
            child: Some(child),
            lifeline,
            lines,
            slot: field("slot").parse().unwrap_or(0),
            netns: field("ns"),
            ssh_host: field("ip"),
            ssh_port: field("port").parse().unwrap_or(22),
            host_ip: field("host_ip"),
            user: opts.user,
            private_key_path,
            public_key,
            known_hosts_path: keydir.path().join("known_hosts"),
            host_key: String::new(),
            root: PathBuf::from(field("root")),
            pid1: field("pid1").parse().unwrap_or(0),
            boot_ms: field("boot_ms").parse().unwrap_or(0),
            images,
            keydir,
        };
        if vm.pid1 == 0 || vm.ssh_host.is_empty() {
            return Err(VmError::Boot {
                reason: format!("unexpected ready line: {ready:?}"),
                log: boot_log(),
            });
        }
        vm.refresh_host_key()?;
        Ok(vm)
    }

    /// The VM's current ed25519 host key, `ssh-ed25519 AAAA...` (no comment), for pinning.
    /// root's `authorized_keys` inside the VM, as a path on this host.
    pub fn root_authorized_keys(&self) -> PathBuf {
        self.root.join("root/.ssh/authorized_keys")
    }

    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// The image archives (caddy, devbox, authelia) to hand to the provider.
    pub fn images(&self) -> &[VmImage] {
        &self.images
    }

    /// One image by role: `caddy`, `devbox` or `authelia`.
    pub fn image(&self, role: &str) -> Option<&VmImage> {
        self.images.iter().find(|i| i.role == role)
    }

    /// Host PID of the VM's PID 1 (its namespaces are the VM's).
    pub fn pid1(&self) -> u32 {
        self.pid1
    }

    /// `user@host` for ssh.
    /// Where a path of the VM's filesystem lies on this host (the VM's root is a directory here).
    pub fn path_in_vm(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    pub fn ssh_destination(&self) -> String {
        format!("{}@{}", self.user, self.ssh_host)
    }

    /// The directory holding the per-VM key, known_hosts and vm.sh's log (deleted with the VM).
    pub fn work_dir(&self) -> &Path {
        self.keydir.path()
    }

    fn refresh_host_key(&mut self) -> Result<(), VmError> {
        let path = self.root.join("etc/ssh/ssh_host_ed25519_key.pub");
        let text = fs::read_to_string(&path).map_err(|source| VmError::Read {
            path: path.clone(),
            source,
        })?;
        let mut parts = text.split_whitespace();
        let (Some(kind), Some(key)) = (parts.next(), parts.next()) else {
            return Err(VmError::Invalid {
                path,
                reason: "not an OpenSSH public key".into(),
            });
        };
        self.host_key = format!("{kind} {key}");
        let line = if self.ssh_port == 22 {
            format!("{} {}\n", self.ssh_host, self.host_key)
        } else {
            format!("[{}]:{} {}\n", self.ssh_host, self.ssh_port, self.host_key)
        };
        let mut f = fs::File::create(&self.known_hosts_path).map_err(|source| VmError::Read {
            path: self.known_hosts_path.clone(),
            source,
        })?;
        f.write_all(line.as_bytes())
            .map_err(|source| VmError::Read {
                path: self.known_hosts_path.clone(),
                source,
            })?;
        Ok(())
    }

    /// A real `ssh` client command logged in as `user` with the generated key, the host key pinned by
    /// `known_hosts_path` (strict checking), running `remote_command`.
    pub fn ssh(&self, remote_command: &str) -> Command {
        self.ssh_pinned(&self.known_hosts_path, remote_command)
    }

    /// Like [`ssh`](Self::ssh) with another known_hosts file (e.g. one pinning an older host key).
    pub fn ssh_pinned(&self, known_hosts: &Path, remote_command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-i")
            .arg(&self.private_key_path)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                "-p",
            ])
            .arg(self.ssh_port.to_string())
            .arg(self.ssh_destination())
            .arg("--")
            .arg(remote_command);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a bash script as root inside the VM without SSH (for set-up and assertions).
    pub fn exec_in_vm(&self, script: &str) -> Result<ExecOutput, VmError> {
        let out = run(Command::new("nsenter")
            .arg("-t")
            .arg(self.pid1.to_string())
            // Entering the mount namespace also enters the VM's root (boot.sh pivot_root'ed into it).
            .args(["-m", "-n", "-p", "-u", "--"])
            .args([
                "/usr/bin/env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                "LANG=C.UTF-8",
                "/bin/bash",
                "-c",
                script,
            ])
            .stdin(Stdio::null()))?;
        Ok(output_of(out))
    }

    /// [`exec_in_vm`](Self::exec_in_vm), failing unless the script exits 0; returns its stdout.
    pub fn exec_in_vm_ok(&self, script: &str) -> Result<String, VmError> {
        let out = self.exec_in_vm(script)?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(VmError::Command {
                command: script.to_string(),
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            })
        }
    }

    /// Gives the VM new host keys and restarts sshd (open sessions survive). Returns the new ed25519 host
    /// key; `known_hosts_path` is rewritten to pin it.
    pub fn restart_sshd_with_new_host_key(&mut self) -> Result<String, VmError> {
        self.exec_in_vm_ok(
            "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A -q >/dev/null && systemctl restart ssh",
        )?;
        self.refresh_host_key()?;
        Ok(self.host_key.clone())
    }

    /// Holds dpkg's frontend lock for `secs` seconds in the background, the way unattended-upgrades does on a
    /// freshly booted Ubuntu: `apt-get install` fails ("Could not get lock") unless it waits for the lock.
    /// Returns once the lock is held.
    pub fn hold_apt_lock(&self, secs: u32) -> Result<(), VmError> {
        // apt locks with fcntl(F_SETLK), so the holder must too: struct flock via perl (perl-base is Essential).
        let script = format!(
            r#"rm -f /run/cloudcode-apt-lock-held
setsid perl -MFcntl -e '
  my @h;
  for my $f ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock") {{
    open(my $fh, ">>", $f) or die "$f: $!"; push @h, $fh;
    my $lk = pack("ssx4qqix4", F_WRLCK, 0, 0, 0, 0);
    fcntl($fh, F_SETLKW, $lk) or die "lock $f: $!";
  }}
  open(my $m, ">", "/run/cloudcode-apt-lock-held"); close $m; sleep {secs};' </dev/null >/dev/null 2>&1 &
for _ in $(seq 1 100); do [ -e /run/cloudcode-apt-lock-held ] && exit 0; sleep 0.05; done
echo "lock holder did not start" >&2; exit 1"#
        );
        self.exec_in_vm_ok(&script).map(drop)
    }

    /// Stops dockerd (and its containerd and containers) through the VM's systemctl stand-in.
    pub fn stop_dockerd(&self) -> Result<(), VmError> {
        self.exec_in_vm_ok("systemctl stop docker").map(drop)
    }

    /// Starts dockerd through the VM's systemctl stand-in; returns once the API answers.
    pub fn start_dockerd(&self) -> Result<(), VmError> {
        self.exec_in_vm_ok("systemctl start docker").map(drop)
    }

    /// Stops the VM and waits until vm.sh reports everything removed (processes, mounts, namespace).
    pub fn shutdown(mut self) -> Result<(), VmError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), VmError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        drop(self.lifeline.take()); // EOF on vm.sh's stdin: tear down
        let deadline = Instant::now() + DOWN_TIMEOUT;
        let mut down = false;
        while let Some(line) = read_line_until(&self.lines, deadline) {
            if line == "down" {
                down = true;
                break;
            }
        }
        if !down {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| VmError::Teardown(e.to_string()))?;
        if down {
            Ok(())
        } else {
            let log = fs::read_to_string(self.keydir.path().join("vm.log")).unwrap_or_default();
            Err(VmError::Teardown(format!(
                "vm.sh did not report `down` ({status}); log:\n{log}"
            )))
        }
    }
}

impl Drop for TestVm {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("test VM {}: {e}", self.netns);
        }
    }
}
