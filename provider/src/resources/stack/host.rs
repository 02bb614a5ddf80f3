//! What `cloudcode_stack` does on the host, over one [`Remote`] session: inspect it (one command), deploy a
//! bundle (Docker, changed files only, atomic uploads, previous generation kept, Compose, health, rollback)
//! and tear it down. No Terraform types here: the resource maps state to [`DeployParams`] and back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloudcode_bundle::{paths, Bundle, FileKind};
use cloudcode_ssh::{Remote, SshError};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const INSPECT: &str = include_str!("scripts/inspect.sh");
const DOCKER: &str = include_str!("scripts/docker.sh");
/// How many log lines of each unhealthy container a failure reports.
const LOG_LINES: u32 = 30;
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
    pub services: BTreeMap<String, Service>,
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
}

/// Quotes a string for the remote POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs [`INSPECT`] for `dir` and parses its output.
pub async fn inspect(r: &dyn Remote, dir: &str) -> Result<Facts, HostError> {
    let out = r
        .run(
            &format!("sh -s -- {}", sh_quote(dir)),
            Some(INSPECT.as_bytes()),
        )
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
            ["service", name, state, health, id] => {
                f.services.insert(
                    name.to_string(),
                    Service {
                        state: state.to_string(),
                        health: health.to_string(),
                        id: id.to_string(),
                    },
                );
            }
            _ => {}
        }
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

fn step(host: &str, step: &'static str, e: impl std::fmt::Display) -> HostError {
    HostError::Step {
        host: host.to_string(),
        step,
        detail: e.to_string(),
    }
}

/// `docker compose` in the stack's directory.
fn compose(dir: &str, args: &str) -> String {
    format!(
        "cd {} && docker compose -f docker-compose.yml {args}",
        sh_quote(dir)
    )
}

/// Deploys `p.bundle` to the host: see the module comment for the order of steps.
pub async fn deploy(r: &dyn Remote, p: &DeployParams<'_>) -> Result<DeployOutcome, HostError> {
    let host = r.host().to_string();
    let mut facts = inspect(r, p.dir).await?;

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
        facts = inspect(r, p.dir).await?;
    }
    crate::progress::report("install", "done", &host);
    check_cancel(p.cancel)?;

    // 2. Image archives the host cannot pull, before any file changes (a failure here changes nothing).
    for archive in p.image_archives {
        check_cancel(p.cancel)?;
        load_archive(r, p.dir, archive, &facts).await?;
    }

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
    for (path, f) in &changed {
        check_cancel(p.cancel)?;
        r.upload_atomic(&format!("{}/{path}", p.dir), &f.bytes, f.mode)
            .await?;
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

    // 6. Compose, then Caddy's in-place reload for a Caddyfile change; 7. health.
    let result = async {
        let build = if p.build_devbox { " --build" } else { "" };
        crate::progress::report("up", "start", &host);
        r.run(
            &compose(p.dir, &format!("up -d --remove-orphans{build}")),
            None,
        )
        .await
        .map_err(|e| step(&host, "docker compose up", e))?;
        let after = inspect(r, p.dir).await?;
        outcome.recreated = p
            .services
            .iter()
            .filter(|s| {
                facts.services.get(**s).map(|x| &x.id) != after.services.get(**s).map(|x| &x.id)
            })
            .map(|s| s.to_string())
            .collect();
        if caddyfile_changed && !outcome.recreated.iter().any(|s| s == "caddy") {
            r.run(
                &compose(
                    p.dir,
                    "exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile",
                ),
                None,
            )
            .await
            .map_err(|e| step(&host, "reloading Caddy", e))?;
            outcome.caddy_reloaded = true;
        }
        crate::progress::report("up", "done", &host);
        crate::progress::report("health", "start", p.domain);
        outcome.services = wait_healthy(r, p, &host).await?;
        crate::progress::report("health", "done", p.domain);
        Ok::<(), HostError>(())
    }
    .await;

    if let Err(e) = result {
        if matches!(e, HostError::Cancelled) {
            return Err(e);
        }
        let logs = unhealthy_logs(r, p.dir, p.services).await;
        let restore = match restore_previous(r, p.dir).await {
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

    // 8. Files these settings no longer use (the chat bridge's once its block is gone): its container is gone now.
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

    // 9. The manifest marks a complete generation (import reads it).
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

fn check_cancel(c: &CancellationToken) -> Result<(), HostError> {
    if c.is_cancelled() {
        Err(HostError::Cancelled)
    } else {
        Ok(())
    }
}

/// Uploads and `docker load`s an archive unless the host already loaded one with the same sha256.
/// The archive (hundreds of MB) is hashed streaming; it is read into memory only when it must be sent.
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
    let bytes = tokio::fs::read(archive).await.map_err(archive_error)?;
    let remote = format!("{dir}/.images/{sha}.tar");
    tracing::info!(archive = %archive.display(), bytes = bytes.len(), "uploading image archive");
    r.run(
        &format!("mkdir -p {}", sh_quote(&format!("{dir}/.images"))),
        None,
    )
    .await?;
    r.upload_atomic(&remote, &bytes, 0o600).await?;
    r.run(
        &format!(
            "docker load -q -i {0} && rm -f {0} && touch {1}",
            sh_quote(&remote),
            sh_quote(&format!("{dir}/.images/{sha}.loaded"))
        ),
        None,
    )
    .await
    .map_err(|e| step(r.host(), "loading an image archive", e))?;
    Ok(())
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

/// How long a service may stay unhealthy before the deploy gives up on it (before the overall health timeout).
const UNHEALTHY_GRACE: Duration = Duration::from_secs(60);

/// Waits until every service runs (and is healthy where it has a health check) and the site answers through
/// Caddy on the host.
async fn wait_healthy(
    r: &dyn Remote,
    p: &DeployParams<'_>,
    host: &str,
) -> Result<BTreeMap<String, Service>, HostError> {
    let deadline = Instant::now() + p.health_timeout;
    let mut last;
    // Since when each service has been reported unhealthy without a break.
    let mut unhealthy_since: BTreeMap<&str, Instant> = BTreeMap::new();
    loop {
        check_cancel(p.cancel)?;
        let facts = inspect(r, p.dir).await?;
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
                Ok(()) => return Ok(facts.services),
                Err(e) => last = e,
            }
        } else {
            last = bad.join(", ");
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
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
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
    let Ok(facts) = inspect(r, dir).await else {
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
                &compose(dir, &format!("logs --no-color --tail {LOG_LINES} {s}")),
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

/// Puts the previous generation back (changed files restored, new ones removed) and restarts Compose on it.
async fn restore_previous(r: &dyn Remote, dir: &str) -> Result<(), HostError> {
    let script = format!(
        "cd {} && if [ -d .previous ]; then \
           (cd .previous && find . -type f ! -name .created -print | while IFS= read -r f; do \
              mkdir -p \"../$(dirname \"$f\")\" && cp -a \"$f\" \"../$f\"; done) && \
           while IFS= read -r f; do [ -n \"$f\" ] && rm -f \"$f\"; done < .previous/.created; \
         fi && if [ -f docker-compose.yml ]; then docker compose -f docker-compose.yml up -d --remove-orphans; fi",
        sh_quote(dir)
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
        "if [ -f {d}/docker-compose.yml ]; then cd {d} && docker compose -f docker-compose.yml down --remove-orphans{volumes}; fi; \
         if [ -d {d} ]; then cd {d} && rm -rf .previous .images {files} && \
         find . -mindepth 1 -type d -empty ! -path ./secrets -delete 2>/dev/null; fi; true",
        d = sh_quote(dir),
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
    fn facts_parse_every_kind_of_line() {
        let f = parse_facts(
            "os\tubuntu\t24.04\ndocker\t26.1.3\ncompose\t2.27.1\nfile\tabc\tcaddy/Caddyfile\nsecret\tauthelia_session_secret\n\
             image\tdeadbeef\nservice\tdevbox\trunning\thealthy\t0123\nservice\tcaddy\texited\t\t4567\n",
        );
        assert_eq!(f.os, "ubuntu 24.04");
        assert!(f.docker_running());
        assert_eq!(f.files["caddy/Caddyfile"], "abc");
        assert!(f.secrets.contains("authelia_session_secret"));
        assert!(f.has_file("secrets/authelia_session_secret") && f.has_file("caddy/Caddyfile"));
        assert!(!f.has_file("secrets/im_telegram_token"));
        assert!(f.images.contains("deadbeef"));
        assert_eq!(f.services["devbox"].status(), "running");
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
