//! The host's work of a deploy in one remote command: the changed files, what the provider decided and the
//! host-side scripts packed as one tar stream on the command's stdin, `scripts/apply.sh` run on it under a lock,
//! and its one answer parsed (steps, the healthy host's facts, or the failed step with the services' logs).

use std::time::Duration;

use cloudcode_bundle::runtime;
use cloudcode_bundle::{OPENCODE_PORT, TTYD_PORT};
use cloudcode_ssh::Remote;
use tokio_util::sync::CancellationToken;

use super::devbox::DevboxPlan;
use super::host::{parse_facts, sh_quote, Facts, HostError, INSPECT, LOG_LINES};

const APPLY: &str = include_str!("scripts/apply.sh");
const SWITCH: &str = include_str!("scripts/devbox.sh");
/// How long the old devbox may keep connections after the switch before it is stopped (Kamal's default drain).
const DRAIN: Duration = Duration::from_secs(30);
/// How long a service may stay unhealthy before the deploy gives up on it (before the overall health timeout).
const UNHEALTHY_GRACE: Duration = Duration::from_secs(60);
/// The exit status of the command when another deploy to the same directory held the lock: it waited for that
/// one to end and changed nothing, so the provider looks at the host again and runs once more.
const BUSY: u32 = 75;

/// What the host must do, decided by the provider from one look at it.
pub struct Work<'a> {
    pub dir: &'a str,
    /// Changed files (path relative to `dir`), the manifest excluded.
    pub files: Vec<(&'a str, &'a cloudcode_bundle::File)>,
    /// The manifest, when it changed: installed last, once the generation is healthy.
    pub manifest: Option<(&'a str, &'a cloudcode_bundle::File)>,
    pub caddyfile_changed: bool,
    pub devbox: DevboxPlan,
    /// The services every deploy checks (`devbox`: the serving colour).
    pub services: &'a [String],
    pub build_devbox: bool,
    pub terminal: bool,
    pub ensure_secrets: &'a str,
    pub domain: &'a str,
    /// Files these settings no longer use, relative to `dir`.
    pub retired: Vec<String>,
    pub health_timeout: Duration,
}

/// The answer of a deploy that went well.
#[derive(Debug)]
pub struct Answer {
    /// Seconds since the start at the end of each step, e.g. `files=0 up=2 switched=14 healthy=15 done=15`.
    pub steps: String,
    pub caddy_reloaded: bool,
    /// The healthy host.
    pub facts: Facts,
}

/// Runs `work` on the host: `Ok(None)` when another deploy to the same directory was running (this one waited for
/// it and changed nothing: look again and retry).
pub async fn run(
    r: &dyn Remote,
    work: &Work<'_>,
    cancel: &CancellationToken,
) -> Result<Option<Answer>, HostError> {
    let host = r.host();
    let upload = pack(work).map_err(|e| HostError::Step {
        host: host.to_string(),
        step: "packing the upload",
        detail: e.to_string(),
    })?;
    let command = command(work.dir, work.health_timeout);
    // Once the upload is whole the script runs to its end on the host even if this connection drops (its output
    // goes to a file first): an interrupted apply leaves a finished generation or a restored one, never half.
    let out = tokio::select! {
        _ = cancel.cancelled() => return Err(HostError::Cancelled),
        out = r.exec(&command, Some(&upload)) => out?,
    };
    if out.exit_status == Some(BUSY) {
        tracing::info!(
            host,
            "another deploy to this host was running; looking again"
        );
        return Ok(None);
    }
    let stdout = out.stdout_lossy();
    let logs = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    let (head, facts) = match stdout.split_once("\nok\n") {
        Some((head, facts)) if out.success() => (head, Some(facts)),
        _ => (stdout.as_ref(), None),
    };
    let field = |key: &str| {
        head.lines()
            .filter_map(|l| l.strip_prefix(key))
            .next_back()
            .map(str::to_string)
    };
    let steps = field("steps\t").unwrap_or_default();
    let switch_steps = field("switch\t");
    if let Some(s) = &switch_steps {
        tracing::info!(host, steps = %s, "devbox switched");
    }
    tracing::info!(host, steps = %steps, "host-side deploy steps");
    let Some(facts) = facts else {
        let (step, why) = match field("failed\t") {
            Some(f) => match f.split_once('\t') {
                Some((step, why)) => (known_step(step), why.to_string()),
                None => ("deploying", f),
            },
            None => (
                "deploying",
                format!(
                    "the deploy script ended without an answer ({})",
                    out.status_text()
                ),
            ),
        };
        return Err(HostError::Unhealthy {
            host: host.to_string(),
            reason: HostError::Step {
                host: host.to_string(),
                step,
                detail: why,
            }
            .to_string(),
            restore: field("restore\t").unwrap_or_default(),
            logs,
        });
    };
    Ok(Some(Answer {
        steps,
        caddy_reloaded: head.lines().any(|l| l == "reloaded"),
        facts: parse_facts(facts),
    }))
}

/// The step names `apply.sh` reports, as the provider's own errors name them.
fn known_step(step: &str) -> &'static str {
    const STEPS: [&str; 8] = [
        "uploading files",
        "creating Authelia's secrets",
        "configuring the Docker daemon",
        "docker compose up",
        "reloading Caddy",
        "switching the devbox",
        "waiting for healthy containers",
        "removing leftover containers",
    ];
    STEPS
        .into_iter()
        .find(|s| *s == step)
        .unwrap_or("deploying")
}

/// The one remote command: under the directory's lock, the upload extracted into a private `.incoming/`, the
/// script run with its output kept in files until it ends (a dropped connection does not stop it halfway),
/// then the answer and the removal of the upload (secrets included).
fn command(dir: &str, wait: Duration) -> String {
    let d = sh_quote(dir);
    let inc = sh_quote(&format!("{dir}/.incoming"));
    format!(
        "mkdir -p {d} && exec 9>{d}/.lock && {{ flock -n 9 || {{ flock -w {wait} 9; exit {BUSY}; }}; }} && \
         rm -rf {inc} && (umask 077 && mkdir {inc}) && tar -x --no-same-owner -C {inc} && \
         {{ sh {inc}/apply.sh {d} {inc} >{inc}/out 2>{inc}/err </dev/null; rc=$?; \
         cat {inc}/out; cat {inc}/err >&2; rm -rf {inc}; exit $rc; }}",
        wait = wait.as_secs().max(1)
    )
}

/// The tar stream: the scripts, `plan`, the run-time Caddy files and `files/` (modes as they will be on the host).
fn pack(w: &Work<'_>) -> Result<Vec<u8>, String> {
    let serving = runtime::devbox_caddy(w.devbox.serving()).map_err(|e| e.to_string())?;
    let mut entries: Vec<(String, Vec<u8>, u32)> = vec![
        ("apply.sh".into(), APPLY.into(), 0o644),
        ("devbox.sh".into(), SWITCH.into(), 0o644),
        ("inspect.sh".into(), INSPECT.into(), 0o644),
        ("plan".into(), plan(w).into_bytes(), 0o644),
        ("devbox.caddy".into(), serving.into_bytes(), 0o644),
    ];
    if let DevboxPlan::Switch { new, .. } = &w.devbox {
        let text = runtime::devbox_caddy(new).map_err(|e| e.to_string())?;
        entries.push(("devbox.caddy.new".into(), text.into_bytes(), 0o644));
    }
    for (path, f) in &w.files {
        entries.push((format!("files/{path}"), f.bytes.clone(), f.mode));
    }
    if let Some((_, m)) = w.manifest {
        entries.push(("manifest".into(), m.bytes.clone(), m.mode));
    }
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode & 0o7777);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &path, bytes.as_slice())
            .map_err(|e| format!("{path}: {e}"))?;
    }
    tar.into_inner().map_err(|e| e.to_string())
}

/// `IN/plan`: shell assignments for `apply.sh`, every value quoted.
fn plan(w: &Work<'_>) -> String {
    let mut up: Vec<&str> = w
        .services
        .iter()
        .map(String::as_str)
        .filter(|s| !runtime::is_devbox(s))
        .collect();
    if let DevboxPlan::Start { service } = &w.devbox {
        up.push(service);
    }
    let (old, new) = match &w.devbox {
        DevboxPlan::Switch { old_id, new, .. } => (old_id.as_str(), *new),
        _ => ("", ""),
    };
    let vars: [(&str, String); 17] = [
        ("services", w.services.join(" ")),
        ("up", up.join(" ")),
        ("build", u8::from(w.build_devbox).to_string()),
        (
            "caddyfile_changed",
            u8::from(w.caddyfile_changed).to_string(),
        ),
        ("switch_old", old.to_string()),
        ("switch_new", new.to_string()),
        ("target", w.devbox.target().to_string()),
        ("opencode_port", OPENCODE_PORT.to_string()),
        (
            "ttyd_port",
            if w.terminal { TTYD_PORT } else { 0 }.to_string(),
        ),
        ("health_s", w.health_timeout.as_secs().max(1).to_string()),
        ("grace_s", UNHEALTHY_GRACE.as_secs().to_string()),
        ("drain_s", DRAIN.as_secs().to_string()),
        ("domain", w.domain.to_string()),
        ("retired", w.retired.join(" ")),
        ("log_lines", LOG_LINES.to_string()),
        ("ensure_secrets", w.ensure_secrets.to_string()),
        (
            "manifest",
            w.manifest.map(|(p, _)| p).unwrap_or_default().to_string(),
        ),
    ];
    vars.iter()
        .map(|(k, v)| format!("{k}={}\n", sh_quote(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudcode_bundle::FileKind;

    fn file(text: &str, mode: u32) -> cloudcode_bundle::File {
        cloudcode_bundle::File {
            bytes: text.as_bytes().to_vec(),
            mode,
            kind: FileKind::Managed,
        }
    }

    static SERVICES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

    fn work<'a>(files: Vec<(&'a str, &'a cloudcode_bundle::File)>, devbox: DevboxPlan) -> Work<'a> {
        Work {
            dir: "/opt/cloud code",
            files,
            manifest: None,
            caddyfile_changed: false,
            devbox,
            services: SERVICES
                .get_or_init(|| ["caddy", "authelia", "devbox"].map(String::from).to_vec()),
            build_devbox: false,
            terminal: true,
            ensure_secrets: "bin/ensure-secrets.sh",
            domain: "box.example.com",
            retired: vec![],
            health_timeout: Duration::from_secs(600),
        }
    }

    fn entries(bytes: &[u8]) -> Vec<(String, u32, String)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let mode = e.header().mode().unwrap();
                let mut text = String::new();
                std::io::Read::read_to_string(&mut e, &mut text).unwrap();
                (path, mode, text)
            })
            .collect()
    }

    #[test]
    fn the_upload_holds_the_scripts_the_plan_and_each_changed_file_with_its_mode() {
        let secret = file("s3cret", 0o600);
        let caddy = file("caddyfile", 0o644);
        let plan = DevboxPlan::Switch {
            old: "devbox_blue".into(),
            old_id: "abc".into(),
            new: "devbox_green",
        };
        let w = work(
            vec![
                ("caddy/Caddyfile", &caddy),
                ("secrets/llm_api_key", &secret),
            ],
            plan,
        );
        let got = entries(&pack(&w).unwrap());
        let names: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "apply.sh",
                "devbox.sh",
                "inspect.sh",
                "plan",
                "devbox.caddy",
                "devbox.caddy.new",
                "files/caddy/Caddyfile",
                "files/secrets/llm_api_key"
            ]
        );
        let secret_entry = &got[7];
        assert_eq!((secret_entry.1, secret_entry.2.as_str()), (0o600, "s3cret"));
        // The run-time Caddy files name the serving colour and the new one.
        assert_eq!(
            runtime::active_in(&got[4].2),
            Some("devbox_blue"),
            "{}",
            got[4].2
        );
        assert_eq!(runtime::active_in(&got[5].2), Some("devbox_green"));
        // The plan: a switch from the old container to green; Compose brings up the others only.
        let plan_text = &got[3].2;
        for line in [
            "switch_old='abc'",
            "switch_new='devbox_green'",
            "target='devbox_green'",
            "up='caddy authelia'",
            "services='caddy authelia devbox'",
            "ttyd_port='7681'",
        ] {
            assert!(plan_text.lines().any(|l| l == line), "{line}\n{plan_text}");
        }
        // No secret in the plan (it is never on a command line either: the tar goes on stdin).
        assert!(!plan_text.contains("s3cret"));
    }

    #[test]
    fn a_first_devbox_is_brought_up_with_the_others_and_no_switch_is_planned() {
        let start = DevboxPlan::Start {
            service: "devbox_blue".into(),
        };
        let w = work(vec![], start);
        let text = plan(&w);
        assert!(text.contains("up='caddy authelia devbox_blue'\n"), "{text}");
        assert!(text.contains("switch_new=''\n"), "{text}");
        let names: Vec<String> = entries(&pack(&w).unwrap())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert!(!names.contains(&"devbox.caddy.new".to_string()));
    }

    #[test]
    fn the_command_quotes_the_directory_and_takes_the_lock_before_touching_it() {
        let c = command("/opt/cloud code", Duration::from_secs(90));
        assert!(c.starts_with("mkdir -p '/opt/cloud code' && exec 9>'/opt/cloud code'/.lock"));
        assert!(c.contains("flock -w 90 9; exit 75;"), "{c}");
        let lock = c.find("flock -n 9").unwrap();
        assert!(lock < c.find("rm -rf").unwrap());
        assert!(lock < c.find("tar -x").unwrap());
    }

    #[test]
    fn a_failed_step_is_named_as_the_provider_names_it() {
        assert_eq!(known_step("switching the devbox"), "switching the devbox");
        assert_eq!(known_step("something else"), "deploying");
    }
}
