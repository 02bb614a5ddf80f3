//! What `cloudcode_stack` does on the host, over one [`Remote`] session: inspect it (one command), deploy a
//! bundle (Docker, image archives, then what changes decided here and done on the host by [`super::apply`] in one
//! command) and tear it down. No Terraform types here: the resource maps state to [`DeployParams`] and back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cloudcode_bundle::runtime::{self, DEVBOX_CADDY};
use cloudcode_bundle::{paths, Bundle, FileKind};
use cloudcode_ssh::{Encoding, Remote, SshError};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::apply::{self, Work};
use super::archive;
use super::devbox::DevboxPlan;
pub use cloudcode_bundle::runtime::sh_quote;

pub(super) const INSPECT: &str = include_str!("scripts/inspect.sh");
const DOCKER: &str = include_str!("scripts/docker.sh");
/// How many log lines of each unhealthy container a failure reports.
pub(super) const LOG_LINES: u32 = 30;
/// The services every bundle runs.
pub const SERVICES: [&str; 3] = ["caddy", "authelia", "devbox"];

/// The services a bundle runs: [`SERVICES`], the chat bridge with the `im` block, the idle agent with
/// `idle_suspend_after`.
pub fn services(im: bool, idle: bool) -> &'static [&'static str] {
    use cloudcode_bundle::{IDLE_SERVICE, IM_SERVICE};
    const WITH_IM: [&str; 4] = ["caddy", "authelia", "devbox", IM_SERVICE];
    const WITH_IDLE: [&str; 4] = ["caddy", "authelia", "devbox", IDLE_SERVICE];
    const WITH_BOTH: [&str; 5] = ["caddy", "authelia", "devbox", IM_SERVICE, IDLE_SERVICE];
    match (im, idle) {
        (false, false) => &SERVICES,
        (true, false) => &WITH_IM,
        (false, true) => &WITH_IDLE,
        (true, true) => &WITH_BOTH,
    }
}

/// Why an operation on the host failed. Messages name the host and never hold secrets.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("{host}: Docker is not installed and docker_install = \"skip\" forbids installing it")]
    DockerMissing { host: String },
    #[error("{host}: {step} failed: {detail}")]
    Step {
        host: String,
        step: &'static str,
        detail: String,
    },
    #[error("{reason}; the previous generation was restored{restore}.\n{logs}")]
    Unhealthy {
        host: String,
        reason: String,
        restore: String,
        logs: String,
    },
    #[error("cancelled (Terraform asked the provider to stop)")]
    Cancelled,
    #[error("cannot read image archive {path}: {error}")]
    Archive { path: String, error: String },
}

/// One container as Compose reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub state: String,
    pub health: String,
    pub id: String,
    /// The id of the image it runs (`sha256:…`).
    pub image: String,
    /// Its configuration-hash label ([`cloudcode_bundle::HASH_LABEL`]).
    pub label: String,
}

impl Service {
    /// `running`, or what is wrong: `exited`, `running (unhealthy)`, `running (starting)`.
    pub fn status(&self) -> String {
        match (self.state.as_str(), self.health.as_str()) {
            ("running", "" | "healthy") => "running".into(),
            ("running", h) => format!("running ({h})"),
            (s, _) => s.to_string(),
        }
    }

    /// What Read records: [`Service::status`], but a running container Docker has not judged yet ("starting") is
    /// `running`. Read runs such a container's check at once (`--check-starting`), allowing it one second; on a
    /// loaded host `docker exec` alone can take longer, and a plan right after a deploy then showed drift (1 of 10
    /// stacks applied in parallel, 2026-12-03). Being judged is not drift; unhealthy or stopped is.
    pub fn read_status(&self) -> String {
        if self.state == "running" && self.health == "starting" {
            "running".into()
        } else {
            self.status()
        }
    }
}

/// The facts [`inspect`] gathers in one round trip.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub os: String,
    /// `None`: not installed; `Some("stopped")`: client present, daemon not answering.
    pub docker: Option<String>,
    pub compose: Option<String>,
    /// Path relative to the remote dir → sha256.
    pub files: BTreeMap<String, String>,
    pub secrets: BTreeSet<String>,
    pub images: BTreeSet<String>,
    /// Containers by Compose service.
    pub containers: BTreeMap<String, Service>,
    /// By the names users know: [`Facts::containers`] but the devbox's, and `devbox` for the serving one.
    pub services: BTreeMap<String, Service>,
    /// The devbox service `caddy/devbox.caddy` names (none before the first blue/green deploy).
    pub active_devbox: Option<String>,
    /// Image reference → id, for the references [`inspect`] was asked about.
    pub image_ids: BTreeMap<String, String>,
}

impl Facts {
    /// Is the file on the host? Files under `secrets/` are known by name only (their content is never read), so
    /// a replaced secret is kept in the previous generation rather than taken for a new file.
    fn has_file(&self, path: &str) -> bool {
        self.files.contains_key(path)
            || path
                .strip_prefix("secrets/")
                .is_some_and(|name| self.secrets.contains(name))
    }

    fn docker_running(&self) -> bool {
        self.docker.as_deref().is_some_and(|d| d != "stopped") && self.compose.is_some()
    }

    /// The devbox Caddy sends requests to, and its container: the colour `caddy/devbox.caddy` names, or on a host
    /// deployed before blue/green its one `devbox`.
    pub fn serving_devbox(&self) -> Option<(&str, &Service)> {
        let name = self
            .active_devbox
            .as_deref()
            .unwrap_or(runtime::LEGACY_DEVBOX);
        self.containers.get(name).map(|c| (name, c))
    }
}

/// Runs [`INSPECT`] for `dir` (and the ids of `images`) and parses its output.
pub async fn inspect(r: &dyn Remote, dir: &str, images: &[&str]) -> Result<Facts, HostError> {
    inspect_with(r, dir, false, images).await
}

/// [`inspect`], with the health check of each container Docker still reports "starting" run at once: one that
/// passes counts as healthy. Docker (20.10) runs the first check a whole interval after the start, so the health
/// wait would wait for it, and a plan right after a deploy would see "starting" as drift.
pub async fn inspect_checked(r: &dyn Remote, dir: &str) -> Result<Facts, HostError> {
    inspect_with(r, dir, true, &[]).await
}

async fn inspect_with(
    r: &dyn Remote,
    dir: &str,
    check_starting: bool,
    images: &[&str],
) -> Result<Facts, HostError> {
    let mut args = sh_quote(dir);
    if check_starting {
        args.push_str(" --check-starting");
    }
    for i in images {
        args.push(' ');
        args.push_str(&sh_quote(i));
    }
    let out = r
        .run(&format!("sh -s -- {args}"), Some(INSPECT.as_bytes()))
        .await?;
    Ok(parse_facts(&out.stdout_lossy()))
}

pub(super) fn parse_facts(text: &str) -> Facts {
    let mut f = Facts::default();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols.as_slice() {
            ["os", id, version] => f.os = format!("{id} {version}").trim().to_string(),
            ["docker", "missing"] => f.docker = None,
            ["docker", v] => f.docker = Some(v.to_string()),
            ["compose", "missing"] => f.compose = None,
            ["compose", v] => f.compose = Some(v.to_string()),
            ["file", sha, path] => {
                f.files.insert(path.to_string(), sha.to_string());
            }
            ["secret", name] => {
                f.secrets.insert(name.to_string());
            }
            ["image", sha] => {
                f.images.insert(sha.to_string());
            }
            ["service", name, state, health, id, image, label] => {
                f.containers.insert(
                    name.to_string(),
                    Service {
                        state: state.to_string(),
                        health: health.to_string(),
                        id: id.to_string(),
                        image: image.to_string(),
                        label: label.to_string(),
                    },
                );
            }
            ["active", name] if runtime::is_devbox(name) => {
                f.active_devbox = Some(name.to_string())
            }
            ["imageid", image, id] => {
                f.image_ids.insert(image.to_string(), id.to_string());
            }
            _ => {}
        }
    }
    f.services = f
        .containers
        .iter()
        .filter(|(name, _)| !runtime::is_devbox(name))
        .map(|(name, c)| (name.clone(), c.clone()))
        .collect();
    if let Some((_, c)) = f.serving_devbox() {
        f.services
            .insert(runtime::LEGACY_DEVBOX.to_string(), c.clone());
    }
    f
}

/// Everything a deploy needs, already decided by the resource.
pub struct DeployParams<'a> {
    pub dir: &'a str,
    pub bundle: &'a Bundle,
    pub domain: &'a str,
    pub install_docker: bool,
    pub image_archives: &'a [PathBuf],
    pub build_devbox: bool,
    /// The services that must run (see [`services`]; the apps' after them).
    pub services: &'a [String],
    /// Until containers are healthy and the site answers.
    pub health_timeout: Duration,
    pub cancel: &'a CancellationToken,
}

/// What a deploy changed, for logs, tests and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct DeployOutcome {
    pub uploaded: Vec<String>,
    pub uploaded_bytes: usize,
    /// Services whose container was created or replaced.
    pub recreated: Vec<String>,
    pub caddy_reloaded: bool,
    pub services: BTreeMap<String, Service>,
    pub facts_before: Facts,
}

pub(super) fn step(host: &str, step: &'static str, e: impl std::fmt::Display) -> HostError {
    HostError::Step {
        host: host.to_string(),
        step,
        detail: e.to_string(),
    }
}

/// `docker compose` in the stack's directory, seeing both devbox colours (`$devbox`: the serving one).
fn compose(dir: &str, args: &str) -> String {
    runtime::compose_command(dir, args)
}

/// Deploys `p.bundle` to the host: see the module comment for the order of steps. A one-setting change costs two
/// remote commands on one connection: the look ([`inspect`]) and the host's work ([`apply::run`]).
pub async fn deploy(r: &dyn Remote, p: &DeployParams<'_>) -> Result<DeployOutcome, HostError> {
    let host = r.host().to_string();
    let image = p.bundle.manifest.inputs.devbox_image();
    let mut facts = inspect(r, p.dir, &[&image]).await?;
    let pending = archives_to_load(p.image_archives, &facts).await?;

    // 1. Docker and Compose v2, installed with the distribution's packages if allowed, daemon running. Meanwhile
    //    the image archives cross the wire into files on the host (`docker load` cannot read them yet): on a fresh
    //    host the transfer no longer waits for the install.
    crate::progress::report("install", "start", &host);
    let mut staged = false;
    if !facts.docker_running() {
        if facts.docker.is_none() && !p.install_docker {
            return Err(HostError::DockerMissing { host });
        }
        let mode = if p.install_docker { "install" } else { "start" };
        tracing::info!(host = %host, mode, archives = pending.len(), "preparing Docker");
        // The apt mirror (`mirrors.apt`), for this install only.
        let apt_mirror = p
            .bundle
            .manifest
            .inputs
            .mirrors
            .as_ref()
            .and_then(|m| m.apt.as_deref())
            .unwrap_or("");
        let command = format!("sh -s -- {mode} {}", sh_quote(apt_mirror));
        let install = async {
            r.run(&command, Some(DOCKER.as_bytes()))
                .await
                .map_err(|e| step(&host, "installing Docker", e))
        };
        let stage = futures::future::try_join_all(
            pending
                .iter()
                .map(|(archive, sha)| stage_archive(r, p.dir, archive, sha)),
        );
        let (installed, stage) = futures::join!(install, stage);
        installed?;
        stage?;
        staged = !pending.is_empty();
        facts = inspect(r, p.dir, &[&image]).await?;
    }
    crate::progress::report("install", "done", &host);
    check_cancel(p.cancel)?;

    // 2. Image archives the host cannot pull, before any file changes (a failure here changes nothing). All at
    //    once, each on its own channel of the one connection: sshd grants every channel its own window (2 MiB
    //    with OpenSSH), so one stream moves at most a window per round trip and three move three times that.
    //    Each without the layers the host already has (archive.rs). Archives staged during the install are loaded
    //    from their files.
    if staged {
        load_staged(r, p.dir, &pending).await?;
    } else if !pending.is_empty() {
        let layers = r
            .run(archive::HOST_LAYERS, None)
            .await
            .map_err(|e| step(&host, "listing the host's image layers", e))?;
        let chains = Arc::new(archive::host_chains(&layers.stdout_lossy()));
        futures::future::try_join_all(
            pending
                .iter()
                .map(|(archive, sha)| load_archive(r, p.dir, archive, sha, &chains, &facts)),
        )
        .await?;
    }
    if !pending.is_empty() {
        check_cancel(p.cancel)?;
        facts = inspect(r, p.dir, &[&image]).await?;
    }

    // 3.–10. The host's work in one command (scripts/apply.sh); it looks again first if another deploy held the
    //    host, as the files and containers it decided from may have changed.
    for attempt in 0..2 {
        let work = Work::decide(p, &facts, &image);
        crate::progress::report("upload", "start", &format!("{} files", work.files.len()));
        crate::progress::report("up", "start", &host);
        match apply::run(r, &work, p.cancel).await? {
            Some(answer) => return Ok(finish(p, &work, facts, answer)),
            None if attempt == 0 => facts = inspect(r, p.dir, &[&image]).await?,
            None => break,
        }
    }
    Err(step(
        &host,
        "deploying",
        "another deploy to this host is still running; apply again once it has ended",
    ))
}

impl<'a> Work<'a> {
    /// What the host must do for `p` from what it has (`facts`): the changed files only (managed files by hash,
    /// secret files when supplied), the devbox kept, started or switched, the files no longer used.
    fn decide(p: &'a DeployParams<'a>, facts: &Facts, image: &str) -> Work<'a> {
        let files: Vec<(&str, &cloudcode_bundle::File)> = p
            .bundle
            .files
            .iter()
            .filter(|(path, _)| path.as_str() != paths::MANIFEST)
            .filter(|(path, f)| match f.kind {
                FileKind::Managed => facts.files.get(*path) != Some(&f.sha256()),
                FileKind::Secret { .. } => true,
            })
            .map(|(path, f)| (path.as_str(), f))
            .collect();
        let manifest = p
            .bundle
            .files
            .get_key_value(paths::MANIFEST)
            .filter(|(_, m)| facts.files.get(paths::MANIFEST) != Some(&m.sha256()))
            .map(|(path, m)| (path.as_str(), m));
        let devbox = DevboxPlan::decide(
            facts,
            &p.bundle.devbox_hash,
            facts.image_ids.get(image).map(String::as_str),
        );
        tracing::info!(dir = %p.dir, plan = ?devbox, files = files.len(), "deploy plan");
        Work {
            dir: p.dir,
            caddyfile_changed: files.iter().any(|(path, _)| *path == paths::CADDYFILE),
            files,
            manifest,
            devbox,
            services: p.services,
            build_devbox: p.build_devbox,
            terminal: p.bundle.manifest.inputs.terminal_enabled,
            ensure_secrets: paths::ENSURE_SECRETS,
            domain: p.domain,
            retired: p
                .bundle
                .retired
                .iter()
                .filter(|f| facts.has_file(f))
                .cloned()
                .chain(cloudcode_bundle::apps::stale(
                    p.bundle,
                    facts.files.keys().map(String::as_str),
                    facts.secrets.iter().map(String::as_str),
                ))
                .collect(),
            health_timeout: p.health_timeout,
        }
    }
}

/// The outcome of a deploy the host answered `ok` to.
fn finish(
    p: &DeployParams<'_>,
    work: &Work<'_>,
    facts: Facts,
    answer: apply::Answer,
) -> DeployOutcome {
    let domain = p.domain;
    let sent = || work.files.iter().chain(&work.manifest);
    let mut outcome = DeployOutcome {
        uploaded: sent().map(|(path, _)| path.to_string()).collect(),
        uploaded_bytes: sent().map(|(_, f)| f.bytes.len()).sum(),
        ..Default::default()
    };
    crate::progress::report(
        "upload",
        "done",
        &format!("{} bytes", outcome.uploaded_bytes),
    );
    if !outcome.uploaded.is_empty() {
        tracing::info!(domain, files = ?outcome.uploaded, bytes = outcome.uploaded_bytes, "uploaded changed files");
    }
    crate::progress::report("up", "done", domain);
    crate::progress::report("health", "start", domain);
    crate::progress::report("health", "done", &answer.steps);
    outcome.recreated = p
        .services
        .iter()
        .filter(|s| {
            facts.services.get(s.as_str()).map(|x| &x.id)
                != answer.facts.services.get(s.as_str()).map(|x| &x.id)
        })
        .cloned()
        .collect();
    outcome.caddy_reloaded = answer.caddy_reloaded;
    // The facts were taken before leftover containers (a removed service's) were removed: only those that run.
    outcome.services = answer
        .facts
        .services
        .into_iter()
        .filter(|(name, _)| p.services.contains(name))
        .collect();
    tracing::info!(domain, recreated = ?outcome.recreated, caddy_reloaded = outcome.caddy_reloaded, "deployed");
    outcome.facts_before = facts;
    outcome
}

fn check_cancel(c: &CancellationToken) -> Result<(), HostError> {
    if c.is_cancelled() {
        Err(HostError::Cancelled)
    } else {
        Ok(())
    }
}

/// The archives the host has not loaded yet (by sha256, hashed at once, streaming), with their sha256.
async fn archives_to_load(
    archives: &[PathBuf],
    facts: &Facts,
) -> Result<Vec<(PathBuf, String)>, HostError> {
    let hashed = futures::future::try_join_all(archives.iter().map(|a| async move {
        let sha = hash_file(a).await.map_err(|e| HostError::Archive {
            path: a.display().to_string(),
            error: e.to_string(),
        })?;
        Ok::<_, HostError>((a.clone(), sha))
    }))
    .await?;
    Ok(hashed
        .into_iter()
        .filter(|(_, sha)| !facts.images.contains(sha))
        .collect())
}

/// Where the host keeps image archive markers (`<sha>.loaded`) and archives staged during a Docker install.
fn images_dir(dir: &str) -> String {
    format!("{dir}/.images")
}

/// Copies an archive to `DIR/.images/<sha>.tar` on a host whose Docker is being installed (written as `.part`, renamed
/// when whole, so a cut transfer is never taken for an archive).
async fn stage_archive(
    r: &dyn Remote,
    dir: &str,
    archive: &std::path::Path,
    sha: &str,
) -> Result<(), HostError> {
    let file = format!("{}/{sha}.tar", images_dir(dir));
    let command = format!(
        "mkdir -p {} && cat > {part} && mv -f {part} {}",
        sh_quote(&images_dir(dir)),
        sh_quote(&file),
        part = sh_quote(&format!("{file}.part"))
    );
    tracing::info!(archive = %archive.display(), "sending image archive while Docker is installed");
    r.exec_file(&command, archive, Encoding::Raw)
        .await?
        .check(r.host(), &command)
        .map_err(|e| step(r.host(), "sending an image archive", e))?;
    Ok(())
}

/// Loads the archives [`stage_archive`] put on the host, at once, in one command; each file is removed once loaded.
async fn load_staged(
    r: &dyn Remote,
    dir: &str,
    staged: &[(PathBuf, String)],
) -> Result<(), HostError> {
    let images = images_dir(dir);
    let loads: String = staged
        .iter()
        .map(|(_, sha)| {
            format!(
                "(docker load -q -i {sha}.tar >/dev/null && rm -f {sha}.tar && touch {sha}.loaded) & pids=\"$pids $!\"; ",
                sha = sh_quote(sha)
            )
        })
        .collect();
    let command = format!(
        "cd {} || exit 1; pids=''; {loads}ok=0; for p in $pids; do wait $p || ok=1; done; exit $ok",
        sh_quote(&images)
    );
    r.run(&command, None)
        .await
        .map_err(|e| step(r.host(), "loading the image archives", e))?;
    Ok(())
}

/// Streams an archive straight into `docker load` over the SSH channel (no copy on the host; the load runs while
/// the archive is still being sent), without the layer files whose chain the host has (`chains`). A trimmed archive
/// the host's Docker refuses (an image store that wants every blob) is sent again whole.
async fn load_archive(
    r: &dyn Remote,
    dir: &str,
    archive: &PathBuf,
    sha: &str,
    chains: &Arc<BTreeSet<String>>,
    facts: &Facts,
) -> Result<(), HostError> {
    let trimmed = if chains.is_empty() {
        None
    } else {
        let (a, c) = (archive.clone(), Arc::clone(chains));
        tokio::task::spawn_blocking(move || archive::trim(&a, &c, &std::env::temp_dir()))
            .await
            .map_err(|e| HostError::Archive {
                path: archive.display().to_string(),
                error: e.to_string(),
            })?
            .unwrap_or_else(|e| {
                tracing::warn!("{e}; sending it whole");
                None
            })
    };
    let images = images_dir(dir);
    let encoding = archive_encoding(r.round_trip(), facts.docker.as_deref());
    let command = format!(
        "mkdir -p {0} && docker load -q && touch {1} && rm -f {2} {2}.part",
        sh_quote(&images),
        sh_quote(&format!("{images}/{sha}.loaded")),
        sh_quote(&format!("{images}/{sha}.tar"))
    );
    let whole = tokio::fs::metadata(archive).await.map_or(0, |m| m.len());
    let (send, bytes, skipped) = match &trimmed {
        Some(t) => (t.path.as_path(), t.bytes, t.skipped),
        None => (archive.as_path(), whole, 0),
    };
    tracing::info!(archive = %archive.display(), ?encoding, bytes = %bytes, whole = %whole, skipped_layers = skipped, "streaming image archive into docker load");
    let mut out = r.exec_file(&command, send, encoding).await?;
    if !out.success() && trimmed.is_some() {
        tracing::warn!(archive = %archive.display(), status = %out.status_text(), stderr = %String::from_utf8_lossy(&out.stderr).trim(), "the host refused the archive without its present layers; sending it whole");
        out = r.exec_file(&command, archive, encoding).await?;
    }
    out.check(r.host(), &command)
        .map_err(|e| step(r.host(), "loading an image archive", e))?;
    Ok(())
}

/// Round trips from which image archives cross the wire compressed. A stream over one SSH channel moves at most
/// the window sshd grants (2 MiB with OpenSSH) per round trip, so past a few milliseconds the wire, not the CPU,
/// is the limit and zstd (2.8× smaller on our images) wins; on a LAN or loopback the CPU is the limit and raw is
/// faster. Measurements: docs/performance.md.
const COMPRESS_FROM_RTT: Duration = Duration::from_millis(5);

/// zstd level 1 compresses our devbox archive 2.8× at ~195 MB/s on one core; level 3 only 3.15× at ~124 MB/s,
/// which is slower than what a window-limited stream carries at moderate round trips.
const ZSTD_LEVEL: i32 = 1;

/// How an archive crosses the wire to a host whose Docker Engine is `docker` (its server version): zstd from
/// [`COMPRESS_FROM_RTT`] when the engine reads it, else raw. `docker load` reads zstd from Engine 23.0 (moby
/// #41759); Debian 12's 20.10.24 was seen refusing it ("archive/tar: invalid tar header").
fn archive_encoding(round_trip: Option<Duration>, docker: Option<&str>) -> Encoding {
    let reads_zstd = docker
        .and_then(super::version_triple)
        .is_some_and(|(major, minor, _)| (major, minor) >= (23, 0));
    match round_trip {
        Some(rtt) if reads_zstd && rtt >= COMPRESS_FROM_RTT => Encoding::Zstd(ZSTD_LEVEL),
        _ => Encoding::Raw,
    }
}

/// sha256 of a file, read in 1 MiB chunks.
async fn hash_file(path: &PathBuf) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// `docker compose down` and removal of the rendered files; never `secrets/` or volumes unless asked.
pub async fn teardown(
    r: &dyn Remote,
    dir: &str,
    rendered: &[String],
    destroy_volumes: bool,
) -> Result<(), HostError> {
    let volumes = if destroy_volumes { " -v" } else { "" };
    let files: Vec<String> = rendered.iter().map(|f| sh_quote(f)).collect();
    // The Docker daemon settings a deploy installed (`mirrors`) go too while they are still ours; the daemon
    // reloads without them.
    let script = format!(
        "if [ -f {d}/docker-compose.yml ]; then {down}; fi; \
         if [ -f {d}/.daemon.json.applied ] && cmp -s {d}/.daemon.json.applied /etc/docker/daemon.json; then \
         rm -f /etc/docker/daemon.json; p=$(cat /run/docker.pid 2>/dev/null || pidof dockerd 2>/dev/null); \
         [ -z \"$p\" ] || kill -HUP $p 2>/dev/null; fi; \
         if [ -d {d} ]; then cd {d} && rm -rf .previous .images .incoming .lock .daemon.json.applied {devbox_caddy} \
         {files} && find . -mindepth 1 -type d -empty ! -path ./secrets -delete 2>/dev/null; fi; true",
        d = sh_quote(dir),
        down = compose(dir, &format!("down --remove-orphans{volumes}")),
        devbox_caddy = sh_quote(DEVBOX_CADDY),
        files = files.join(" "),
    );
    r.run(&script, None)
        .await
        .map_err(|e| step(r.host(), "tearing down", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_compressed_only_past_a_few_milliseconds_and_for_an_engine_that_loads_zstd() {
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(
            archive_encoding(ms(50), Some("23.0.1")),
            Encoding::Zstd(ZSTD_LEVEL)
        );
        assert_eq!(
            archive_encoding(ms(5), Some("26.1.3")),
            Encoding::Zstd(ZSTD_LEVEL)
        );
        // Loopback or a LAN: the CPU is the limit.
        assert_eq!(archive_encoding(ms(0), Some("26.1.3")), Encoding::Raw);
        assert_eq!(archive_encoding(None, Some("26.1.3")), Encoding::Raw);
        // Engines before 23.0 cannot load zstd; an unknown or stopped one is not guessed at.
        assert_eq!(archive_encoding(ms(50), Some("20.10.24")), Encoding::Raw);
        assert_eq!(archive_encoding(ms(50), Some("stopped")), Encoding::Raw);
        assert_eq!(archive_encoding(ms(50), None), Encoding::Raw);
    }

    #[test]
    fn read_takes_a_container_docker_has_not_judged_yet_for_running_but_not_an_unhealthy_one() {
        let svc = |state: &str, health: &str| Service {
            state: state.into(),
            health: health.into(),
            id: String::new(),
            image: String::new(),
            label: String::new(),
        };
        assert_eq!(svc("running", "starting").read_status(), "running");
        assert_eq!(svc("running", "starting").status(), "running (starting)");
        assert_eq!(
            svc("running", "unhealthy").read_status(),
            "running (unhealthy)"
        );
        assert_eq!(svc("exited", "starting").read_status(), "exited");
    }

    #[test]
    fn facts_parse_every_kind_of_line() {
        let f = parse_facts(
            "os\tubuntu\t24.04\ndocker\t26.1.3\ncompose\t2.27.1\nfile\tabc\tcaddy/Caddyfile\nsecret\tauthelia_session_secret\n\
             image\tdeadbeef\nservice\tdevbox_green\trunning\thealthy\t0123\tsha256:aa\tL1\nservice\tcaddy\texited\t\t4567\tsha256:bb\t\n\
             active\tdevbox_green\nimageid\tcloudcode-devbox:1\tsha256:aa\n",
        );
        assert_eq!(f.os, "ubuntu 24.04");
        assert!(f.docker_running());
        assert_eq!(f.files["caddy/Caddyfile"], "abc");
        assert!(f.secrets.contains("authelia_session_secret"));
        assert!(f.has_file("secrets/authelia_session_secret") && f.has_file("caddy/Caddyfile"));
        assert!(!f.has_file("secrets/im_telegram_token"));
        assert!(f.images.contains("deadbeef"));
        assert_eq!(f.services["devbox"].status(), "running");
        assert_eq!(f.services["devbox"], f.containers["devbox_green"]);
        assert_eq!(f.containers["devbox_green"].label, "L1");
        assert_eq!(f.image_ids["cloudcode-devbox:1"], "sha256:aa");
        assert_eq!(f.serving_devbox().map(|(n, _)| n), Some("devbox_green"));
        assert_eq!(f.services["caddy"].status(), "exited");
    }

    #[test]
    fn a_stopped_daemon_is_not_running_docker() {
        let f = parse_facts("docker\tstopped\ncompose\t2.27.1\n");
        assert!(!f.docker_running());
        assert_eq!(f.docker.as_deref(), Some("stopped"));
    }

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }
}
