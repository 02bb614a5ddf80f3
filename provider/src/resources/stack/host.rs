//! What `cloudcode_stack` does on the host, over one [`Remote`] session: inspect it (one command), deploy a
//! bundle (Docker, changed files only, atomic uploads, previous generation kept, Compose, the devbox by
//! blue/green, health, rollback) and tear it down. No Terraform types here: the resource maps state to [`DeployParams`] and back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloudcode_bundle::runtime::{self, DEVBOX_CADDY};
use cloudcode_bundle::{paths, Bundle, FileKind};
use cloudcode_ssh::{Encoding, Remote, SshError};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::devbox::{self, DevboxPlan, SwitchParams};
pub use cloudcode_bundle::runtime::sh_quote;

const INSPECT: &str = include_str!("scripts/inspect.sh");
const DOCKER: &str = include_str!("scripts/docker.sh");
/// How many log lines of each unhealthy container a failure reports.
pub(super) const LOG_LINES: u32 = 30;
/// The services every bundle runs.
pub const SERVICES: [&str; 3] = ["caddy", "authelia", "devbox"];

/// The services a bundle runs: [`SERVICES`], and the chat bridge with the `im` block.
pub fn services(im: bool) -> &'static [&'static str] {
    const WITH_IM: [&str; 4] = ["caddy", "authelia", "devbox", cloudcode_bundle::IM_SERVICE];
    if im {
        &WITH_IM
    } else {
        &SERVICES
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

fn parse_facts(text: &str) -> Facts {
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
    /// The services that must run (see [`services`]).
    pub services: &'static [&'static str],
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

/// Deploys `p.bundle` to the host: see the module comment for the order of steps.
pub async fn deploy(r: &dyn Remote, p: &DeployParams<'_>) -> Result<DeployOutcome, HostError> {
    let host = r.host().to_string();
    let mut facts = inspect(r, p.dir, &[]).await?;

    // 1. Docker and Compose v2, installed with the distribution's packages if allowed, daemon running.
    crate::progress::report("install", "start", &host);
    if !facts.docker_running() {
        if facts.docker.is_none() && !p.install_docker {
            return Err(HostError::DockerMissing { host });
        }
        let mode = if p.install_docker { "install" } else { "start" };
        tracing::info!(host = %host, mode, "preparing Docker");
        r.run(&format!("sh -s -- {mode}"), Some(DOCKER.as_bytes()))
            .await
            .map_err(|e| step(&host, "installing Docker", e))?;
        facts = inspect(r, p.dir, &[]).await?;
    }
    crate::progress::report("install", "done", &host);
    check_cancel(p.cancel)?;

    // 2. Image archives the host cannot pull, before any file changes (a failure here changes nothing). All at
    //    once, each on its own channel of the one connection: sshd grants every channel its own window (2 MiB
    //    with OpenSSH), so one stream moves at most a window per round trip and three move three times that.
    check_cancel(p.cancel)?;
    futures::future::try_join_all(
        p.image_archives
            .iter()
            .map(|archive| load_archive(r, p.dir, archive, &facts)),
    )
    .await?;
    check_cancel(p.cancel)?;

    // 3. Changed files only (manifest last, after health): managed files by hash, secret files when supplied.
    let changed: Vec<(&String, &cloudcode_bundle::File)> = p
        .bundle
        .files
        .iter()
        .filter(|(path, _)| path.as_str() != paths::MANIFEST)
        .filter(|(path, f)| match f.kind {
            FileKind::Managed => facts.files.get(*path) != Some(&f.sha256()),
            FileKind::Secret { .. } => true,
        })
        .collect();
    let caddyfile_changed = changed.iter().any(|(p, _)| p.as_str() == paths::CADDYFILE);
    let existing: Vec<&String> = changed
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| facts.has_file(p))
        .collect();
    let created: Vec<&String> = changed
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !facts.has_file(p))
        .collect();

    // 4. Keep the previous generation of what is about to change.
    let dirs: BTreeSet<String> = changed
        .iter()
        .filter_map(|(p, _)| p.rsplit_once('/').map(|(d, _)| d.to_string()))
        .collect();
    let mut prep = format!("mkdir -p {}", sh_quote(p.dir));
    for d in &dirs {
        prep.push_str(&format!(" {}", sh_quote(&format!("{}/{d}", p.dir))));
    }
    prep.push_str(&format!(
        " && cd {} && rm -rf .previous && mkdir -p .previous && printf '%s\\n' {} > .previous/.created",
        sh_quote(p.dir),
        created.iter().map(|c| sh_quote(c)).collect::<Vec<_>>().join(" ")
    ));
    if !existing.is_empty() {
        prep.push_str(&format!(
            " && cp -a --parents {} .previous/",
            existing
                .iter()
                .map(|c| sh_quote(c))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    r.run(&prep, None).await?;

    let mut outcome = DeployOutcome::default();
    crate::progress::report("upload", "start", &format!("{} files", changed.len()));
    // All at once: each atomic upload is several SFTP round trips (open, write, close, rename), one file after
    // the other cost ~0.5 s per file at 50 ms RTT.
    check_cancel(p.cancel)?;
    let targets: Vec<String> = changed
        .iter()
        .map(|(path, _)| format!("{}/{path}", p.dir))
        .collect();
    futures::future::try_join_all(
        changed
            .iter()
            .zip(&targets)
            .map(|((_, f), target)| r.upload_atomic(target, &f.bytes, f.mode)),
    )
    .await?;
    check_cancel(p.cancel)?;
    for (path, f) in &changed {
        outcome.uploaded.push(path.to_string());
        outcome.uploaded_bytes += f.bytes.len();
    }
    crate::progress::report(
        "upload",
        "done",
        &format!("{} bytes", outcome.uploaded_bytes),
    );
    if !changed.is_empty() {
        tracing::info!(host = %host, files = ?outcome.uploaded, bytes = outcome.uploaded_bytes, "uploaded changed files");
    }

    // 5. Authelia's secrets, created once on the host.
    r.run(
        &format!(
            "sh {}/{} {}",
            sh_quote(p.dir),
            paths::ENSURE_SECRETS,
            sh_quote(p.dir)
        ),
        None,
    )
    .await
    .map_err(|e| step(&host, "creating Authelia's secrets", e))?;

    // 6. Compose for every service but a serving devbox, the devbox by blue/green, Caddy reloaded in place;
    //    7. health; 8. leftovers of an interrupted switch removed.
    let result = up_and_switch(r, p, &facts, caddyfile_changed, &mut outcome).await;
    if let Err(e) = result {
        if matches!(e, HostError::Cancelled) {
            return Err(e);
        }
        let logs = unhealthy_logs(r, p.dir, p.services).await;
        let restore = match restore_previous(r, p.dir, p.services).await {
            Ok(()) => String::new(),
            Err(re) => format!(" (restoring failed too: {re})"),
        };
        return Err(HostError::Unhealthy {
            host,
            reason: e.to_string(),
            restore,
            logs,
        });
    }

    // 9. Files these settings no longer use (the chat bridge's once its block is gone): its container is gone now.
    let retired: Vec<String> = p
        .bundle
        .retired
        .iter()
        .filter(|f| facts.has_file(f))
        .map(|f| sh_quote(f))
        .collect();
    if !retired.is_empty() {
        let files = retired;
        r.run(
            &format!(
                "cd {} && rm -f {} && {{ rmdir im 2>/dev/null || true; }}",
                sh_quote(p.dir),
                files.join(" ")
            ),
            None,
        )
        .await
        .map_err(|e| step(&host, "removing unused files", e))?;
    }

    // 10. The manifest marks a complete generation (import reads it).
    if let Some(m) = p.bundle.files.get(paths::MANIFEST) {
        if facts.files.get(paths::MANIFEST) != Some(&m.sha256()) {
            r.upload_atomic(&format!("{}/{}", p.dir, paths::MANIFEST), &m.bytes, m.mode)
                .await?;
            outcome.uploaded.push(paths::MANIFEST.to_string());
            outcome.uploaded_bytes += m.bytes.len();
        }
    }
    tracing::info!(host = %host, recreated = ?outcome.recreated, caddy_reloaded = outcome.caddy_reloaded, "deployed");
    outcome.facts_before = facts;
    Ok(outcome)
}

/// Steps 6–8 of [`deploy`]: the services up, the devbox kept, started or switched, health, leftovers removed.
async fn up_and_switch(
    r: &dyn Remote,
    p: &DeployParams<'_>,
    facts: &Facts,
    caddyfile_changed: bool,
    outcome: &mut DeployOutcome,
) -> Result<(), HostError> {
    let host = r.host();
    let image = p.bundle.manifest.inputs.devbox_image();
    let before = inspect(r, p.dir, &[&image]).await?;
    let plan = DevboxPlan::decide(
        &before,
        &p.bundle.devbox_hash,
        before.image_ids.get(&image).map(String::as_str),
    );
    tracing::info!(host = %host, plan = ?plan, "devbox");

    // The run-time Caddy file names the serving devbox before Caddy may (re)start with a Caddyfile importing it.
    let text =
        runtime::devbox_caddy(plan.serving()).map_err(|e| step(host, "naming the devbox", e))?;
    let devbox_caddy_changed =
        before.files.get(DEVBOX_CADDY) != Some(&hex::encode(Sha256::digest(text.as_bytes())));
    if devbox_caddy_changed {
        r.upload_atomic(&format!("{}/{DEVBOX_CADDY}", p.dir), text.as_bytes(), 0o644)
            .await?;
    }

    let others: Vec<&str> = p
        .services
        .iter()
        .copied()
        .filter(|s| !runtime::is_devbox(s))
        .collect();
    let mut up: Vec<String> = others.iter().map(|s| s.to_string()).collect();
    let mut build = "";
    if let DevboxPlan::Start { service } = &plan {
        up.push(service.clone());
        if p.build_devbox {
            build = " --build";
        }
    }
    crate::progress::report("up", "start", host);
    r.run(
        &compose(p.dir, &format!("up -d{build} {}", up.join(" "))),
        None,
    )
    .await
    .map_err(|e| step(host, "docker compose up", e))?;
    let after = inspect(r, p.dir, &[]).await?;
    let caddy_recreated = before.containers.get("caddy").map(|x| &x.id)
        != after.containers.get("caddy").map(|x| &x.id);
    if (caddyfile_changed || devbox_caddy_changed) && !caddy_recreated {
        reload_caddy(r, p.dir).await?;
        outcome.caddy_reloaded = true;
    }
    if let DevboxPlan::Switch { old_id, new, .. } = &plan {
        check_cancel(p.cancel)?;
        let sp = SwitchParams {
            dir: p.dir,
            build: p.build_devbox,
            terminal: p.bundle.manifest.inputs.terminal_enabled,
            timeout: p.health_timeout,
        };
        devbox::switch(r, old_id, new, &sp).await?;
        outcome.caddy_reloaded = true;
    }
    crate::progress::report("up", "done", host);

    crate::progress::report("health", "start", p.domain);
    let healthy = wait_healthy(r, p, host).await?;
    crate::progress::report("health", "done", p.domain);
    outcome.recreated = p
        .services
        .iter()
        .filter(|s| {
            facts.services.get(**s).map(|x| &x.id) != healthy.services.get(**s).map(|x| &x.id)
        })
        .map(|s| s.to_string())
        .collect();

    // Leftovers: a second devbox means a switch was cut short, maybe after `devbox.caddy` named the new colour
    // but before Caddy loaded it, so Caddy reloads before the old one goes.
    let gone = devbox::leftovers(&healthy, p.services, plan.target());
    if !gone.is_empty() {
        tracing::info!(host = %host, containers = ?gone, "removing leftover containers");
        if gone.iter().any(|(name, _)| runtime::is_devbox(name)) && !outcome.caddy_reloaded {
            reload_caddy(r, p.dir).await?;
            outcome.caddy_reloaded = true;
        }
        let ids: Vec<String> = gone.iter().map(|(_, id)| sh_quote(id)).collect();
        r.run(&format!("docker rm -f {} >/dev/null", ids.join(" ")), None)
            .await
            .map_err(|e| step(host, "removing leftover containers", e))?;
    }
    outcome.services = healthy.services;
    Ok(())
}

/// Caddy's in-place reload of the Caddyfile and the `devbox.caddy` it imports (no connection is dropped but
/// proxied streams, which reconnect).
async fn reload_caddy(r: &dyn Remote, dir: &str) -> Result<(), HostError> {
    r.run(
        &compose(
            dir,
            "exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile",
        ),
        None,
    )
    .await
    .map_err(|e| step(r.host(), "reloading Caddy", e))?;
    Ok(())
}

fn check_cancel(c: &CancellationToken) -> Result<(), HostError> {
    if c.is_cancelled() {
        Err(HostError::Cancelled)
    } else {
        Ok(())
    }
}

/// Streams an archive straight into `docker load` over the SSH channel (no copy on the host; the load runs while
/// the archive is still being sent) unless the host already loaded one with the same sha256. The archive
/// (hundreds of MB) is hashed streaming and sent in chunks, never read whole into memory.
async fn load_archive(
    r: &dyn Remote,
    dir: &str,
    archive: &PathBuf,
    facts: &Facts,
) -> Result<(), HostError> {
    let archive_error = |e: std::io::Error| HostError::Archive {
        path: archive.display().to_string(),
        error: e.to_string(),
    };
    let sha = hash_file(archive).await.map_err(archive_error)?;
    if facts.images.contains(&sha) {
        return Ok(());
    }
    let images = format!("{dir}/.images");
    let encoding = archive_encoding(r.round_trip(), facts.docker.as_deref());
    tracing::info!(archive = %archive.display(), ?encoding, "streaming image archive into docker load");
    let command = format!(
        "mkdir -p {0} && docker load -q && touch {1}",
        sh_quote(&images),
        sh_quote(&format!("{images}/{sha}.loaded"))
    );
    r.exec_file(&command, archive, encoding)
        .await?
        .check(r.host(), &command)
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

/// How often the deploy looks at the containers while waiting for health (one command per look).
const HEALTH_POLL: Duration = Duration::from_millis(500);

/// How long a service may stay unhealthy before the deploy gives up on it (before the overall health timeout).
const UNHEALTHY_GRACE: Duration = Duration::from_secs(60);

/// Waits until every service runs (and is healthy where it has a health check) and the site answers through
/// Caddy on the host.
async fn wait_healthy(
    r: &dyn Remote,
    p: &DeployParams<'_>,
    host: &str,
) -> Result<Facts, HostError> {
    let deadline = Instant::now() + p.health_timeout;
    let mut last;
    // Since when each service has been reported unhealthy without a break.
    let mut unhealthy_since: BTreeMap<&str, Instant> = BTreeMap::new();
    loop {
        check_cancel(p.cancel)?;
        let facts = inspect_checked(r, p.dir).await?;
        let bad: Vec<String> = p
            .services
            .iter()
            .filter_map(|s| match facts.services.get(*s) {
                Some(x) if x.status() == "running" => None,
                Some(x) => Some(format!("{s}: {}", x.status())),
                None => Some(format!("{s}: missing")),
            })
            .collect();
        for s in p.services.iter().copied() {
            if bad
                .iter()
                .any(|b| b.starts_with(&format!("{s}:")) && b.contains("unhealthy"))
            {
                unhealthy_since.entry(s).or_insert_with(Instant::now);
            } else {
                unhealthy_since.remove(s);
            }
        }
        // A stopped container is final; an unhealthy one may recover (a health check that timed out on a
        // busy first boot), so it fails the deploy only after UNHEALTHY_GRACE without a healthy report.
        let failed = bad
            .iter()
            .any(|b| b.contains("exited") || b.contains("dead"))
            || unhealthy_since
                .values()
                .any(|since| since.elapsed() >= UNHEALTHY_GRACE);
        if bad.is_empty() {
            let site = site_answers(r, p.domain).await;
            match site {
                Ok(()) => return Ok(facts),
                Err(e) => {
                    tracing::debug!(
                        host,
                        "containers healthy, the site does not answer yet: {e}"
                    );
                    last = e
                }
            }
        } else {
            last = bad.join(", ");
            tracing::debug!(host, waiting_for = %last, "not healthy yet");
            if failed {
                return Err(step(host, "waiting for healthy containers", &last));
            }
        }
        if Instant::now() >= deadline {
            return Err(step(
                host,
                "waiting for healthy containers",
                format!("not ready after {:?}: {last}", p.health_timeout),
            ));
        }
        tokio::select! {
            _ = p.cancel.cancelled() => return Err(HostError::Cancelled),
            _ = tokio::time::sleep(HEALTH_POLL) => {}
        }
    }
}

/// The site answers through Caddy on the host (any HTTP status below 500: the login redirect is fine).
async fn site_answers(r: &dyn Remote, domain: &str) -> Result<(), String> {
    let cmd = format!(
        "curl -sk -o /dev/null -w '%{{http_code}}' --max-time 10 --resolve {d}:443:127.0.0.1 https://{d}/",
        d = sh_quote(domain).trim_matches('\'')
    );
    match r.exec(&cmd, None).await {
        Ok(out) => {
            let code = out.stdout_lossy().trim().to_string();
            match code.parse::<u16>() {
                Ok(c) if (200..500).contains(&c) => Ok(()),
                _ => Err(format!(
                    "the site does not answer through Caddy yet (HTTP {code})"
                )),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The last log lines of every service that is not running healthy.
async fn unhealthy_logs(r: &dyn Remote, dir: &str, services: &[&str]) -> String {
    let Ok(facts) = inspect(r, dir, &[]).await else {
        return String::new();
    };
    let mut out = String::new();
    for s in services.iter().copied() {
        let ok = facts
            .services
            .get(s)
            .is_some_and(|x| x.status() == "running");
        if ok {
            continue;
        }
        let logs = r
            .exec(
                &compose(
                    dir,
                    &format!(
                        "logs --no-color --tail {LOG_LINES} {}",
                        runtime::service_arg(s)
                    ),
                ),
                None,
            )
            .await
            .map(|o| format!("{}{}", o.stdout_lossy(), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_else(|e| e.to_string());
        out.push_str(&format!(
            "--- last {LOG_LINES} log lines of {s}:\n{}\n",
            logs.trim_end()
        ));
    }
    out
}

/// Puts the previous generation back (changed files restored, new ones removed) and restarts Compose on it for
/// every service but the devbox (the serving colour is never recreated in place; a switch that failed already
/// left the old one serving).
async fn restore_previous(r: &dyn Remote, dir: &str, services: &[&str]) -> Result<(), HostError> {
    let others: Vec<&str> = services
        .iter()
        .copied()
        .filter(|s| !runtime::is_devbox(s))
        .collect();
    let script = format!(
        "cd {} && if [ -d .previous ]; then \
           (cd .previous && find . -type f ! -name .created -print | while IFS= read -r f; do \
              mkdir -p \"../$(dirname \"$f\")\" && cp -a \"$f\" \"../$f\"; done) && \
           while IFS= read -r f; do [ -n \"$f\" ] && rm -f \"$f\"; done < .previous/.created; \
         fi && if [ -f docker-compose.yml ]; then {}; fi",
        sh_quote(dir),
        compose(dir, &format!("up -d {}", others.join(" ")))
    );
    r.run(&script, None).await?;
    Ok(())
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
    let script = format!(
        "if [ -f {d}/docker-compose.yml ]; then {down}; fi; \
         if [ -d {d} ]; then cd {d} && rm -rf .previous .images {devbox_caddy} {files} && \
         find . -mindepth 1 -type d -empty ! -path ./secrets -delete 2>/dev/null; fi; true",
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
