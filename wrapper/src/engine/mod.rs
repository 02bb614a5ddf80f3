//! Runs `tofu`/`terraform` in a stack's working directory: the stack's engine ([`choice`]), the CLI config and the
//! secrets (as `TF_VAR_*` for the ephemeral variables, never in files or arguments), parses the `-json` UI
//! stream and the provider's progress file into an indicatif display, and forwards one SIGINT on Ctrl-C.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{hcl_string, StackDir};

pub mod choice;

pub use choice::{Found, Kind};

/// PID of the running terraform child (0: none); the Ctrl-C handler forwards one SIGINT to it.
static CHILD: AtomicI32 = AtomicI32::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler once per process: the first Ctrl-C is forwarded to terraform (which stops
/// gracefully and writes its state); the CLI then waits for it to exit.
pub fn install_ctrlc() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            return; // only one SIGINT: a second would make terraform abandon its work
        }
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) with a PID we spawned; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        } else {
            std::process::exit(130);
        }
    });
}

/// A CLI configuration file used instead of the one cloudcode writes for each stack (mirrors for air-gapped
/// machines and CI): it must provide `cloudcode-dev/cloudcode` and, for cloud stacks, `aliyun/alicloud`.
pub const ENV_CLI_CONFIG: &str = "CLOUDCODE_TF_CLI_CONFIG";

/// Our provider binary: `$CLOUDCODE_PROVIDER_DIR/terraform-provider-cloudcode`, else next to this executable.
pub fn find_provider() -> Option<PathBuf> {
    let name = "terraform-provider-cloudcode";
    if let Some(d) = std::env::var_os("CLOUDCODE_PROVIDER_DIR") {
        let p = PathBuf::from(d).join(name);
        return p.is_file().then_some(p);
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join(name);
    p.is_file().then_some(p)
}

/// Secrets for one run, passed only as environment variables of the child.
#[derive(Default)]
pub struct Secrets {
    pub admin_password: Option<String>,
    pub llm_api_key: Option<String>,
    pub im_telegram_token: Option<String>,
    pub im_dingtalk_client_secret: Option<String>,
    pub im_proxy: Option<String>,
    pub proxy: Option<String>,
    /// The apps' secret env (app → name → value) whose versions this run bumps (`cloudcode app add`).
    pub app_secret_env: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// `TF_VAR_app_secret_env`: a complex variable's value is read as an HCL expression, so every key and value is
/// an HCL string literal (nothing interpolated).
fn app_secret_env_var(env: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let object = |entries: Vec<String>| format!("{{{}}}", entries.join(", "));
    object(
        env.iter()
            .map(|(app, vars)| {
                let vars = vars
                    .iter()
                    .map(|(k, v)| format!("{} = {}", hcl_string(k), hcl_string(v)))
                    .collect();
                format!("{} = {}", hcl_string(app), object(vars))
            })
            .collect(),
    )
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// What one `-json` run reported.
#[derive(Debug, Default)]
pub struct RunResult {
    pub errors: Vec<String>,
    pub outputs: serde_json::Map<String, Json>,
    /// `change_summary`: (add, change, remove).
    pub changes: Option<(u64, u64, u64)>,
    /// `planned_change`: (resource address, action), in the order the engine reported them.
    pub planned: Vec<(String, String)>,
}

/// (variable users set, variable the alicloud provider reads).
const CREDENTIAL_ALIASES: [(&str, &str); 3] = [
    ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY"),
    ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY"),
    ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN"),
];

/// Alibaba Cloud credentials from the environment, under either naming: (access key id, secret).
pub fn cloud_credentials() -> Option<(String, String)> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    CREDENTIAL_ALIASES[..2]
        .iter()
        .map(|(ours, theirs)| get(ours).or_else(|| get(theirs)))
        .collect::<Option<Vec<_>>>()
        .map(|v| (v[0].clone(), v[1].clone()))
}

/// The engine bound to one stack directory.
#[derive(Debug)]
pub struct Engine {
    found: Found,
    dir: PathBuf,
    cli_config: PathBuf,
    progress_file: PathBuf,
}

impl Engine {
    /// The stack's engine ([`choice::for_stack`]), recorded in its directory from now on.
    pub fn new(stack: &StackDir) -> Result<Self> {
        let found = choice::for_stack(stack)?;
        choice::write_record(stack, &found)?;
        Self::with(stack, found)
    }

    /// `found` on `stack`, whatever the stack records (`migrate-engine` tries the new engine this way).
    pub fn with(stack: &StackDir, found: Found) -> Result<Self> {
        let cli_config = match std::env::var_os(ENV_CLI_CONFIG).filter(|v| !v.is_empty()) {
            // Absolute: the engine runs in the stack's directory.
            Some(own) => std::path::absolute(&own)
                .ok()
                .filter(|p| p.is_file())
                .ok_or_else(|| {
                    let shown = PathBuf::from(&own).display().to_string();
                    Error::input(
                        format!("{ENV_CLI_CONFIG} names {shown}, which is not a file"),
                        format!("{ENV_CLI_CONFIG} 指向的 {shown} 不是文件"),
                    )
                })?,
            None => stack.write_cli_config(find_provider().as_deref())?,
        };
        Ok(Self {
            found,
            dir: stack.path.clone(),
            cli_config,
            progress_file: stack.path.join("progress.jsonl"),
        })
    }

    fn command(&self, args: &[&str], secrets: &Secrets) -> Command {
        let mut c = Command::new(&self.found.bin);
        c.args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("CLOUDCODE_PROGRESS_FILE", &self.progress_file)
            .env_remove("TF_VAR_admin_password")
            .env_remove("TF_VAR_llm_api_key")
            .env_remove("TF_VAR_im_telegram_token")
            .env_remove("TF_VAR_im_dingtalk_client_secret")
            .env_remove("TF_VAR_im_proxy")
            .env_remove("TF_VAR_proxy")
            .env_remove("TF_VAR_app_secret_env")
            .stdin(Stdio::null())
            // Own process group: the terminal's Ctrl-C reaches only us; we forward exactly one SIGINT.
            .process_group(0);
        // The alicloud provider reads ALICLOUD_*; the CLI (like Alibaba's own tools) also takes ALIBABA_CLOUD_*.
        for (ours, theirs) in CREDENTIAL_ALIASES {
            if std::env::var_os(theirs).is_none() {
                if let Some(v) = std::env::var_os(ours) {
                    c.env(theirs, v);
                }
            }
        }
        if let Some(p) = &secrets.admin_password {
            c.env("TF_VAR_admin_password", p);
        }
        for (var, value) in [
            ("TF_VAR_llm_api_key", &secrets.llm_api_key),
            ("TF_VAR_im_telegram_token", &secrets.im_telegram_token),
            (
                "TF_VAR_im_dingtalk_client_secret",
                &secrets.im_dingtalk_client_secret,
            ),
            ("TF_VAR_im_proxy", &secrets.im_proxy),
            ("TF_VAR_proxy", &secrets.proxy),
        ] {
            if let Some(v) = value {
                c.env(var, v);
            }
        }
        if let Some(env) = &secrets.app_secret_env {
            c.env("TF_VAR_app_secret_env", app_secret_env_var(env));
        }
        c
    }

    /// Which engine this is (`tofu 1.12.6`): every message about a run names it.
    pub fn found(&self) -> &Found {
        &self.found
    }

    /// "tofu plan": the engine's name before what it does.
    fn label(&self, what: &str) -> String {
        format!("{} {what}", self.found.kind)
    }

    /// Runs a command whose output is plain (init, show, output); returns stdout. `what` names the step
    /// for messages (`init`, `show`), after the engine's name.
    pub fn plain(&self, what: &str, args: &[&str]) -> Result<String> {
        let out = self
            .command(args, &Secrets::default())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(Error::io(&self.found.bin))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Engine(self.label(what), last_lines(&err, 15)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `init`; with `-upgrade` when the dependency lock file records another version of our provider than
    /// this CLI pins (the CLI was upgraded), so that the new provider is taken while other providers stay
    /// as locked otherwise.
    pub fn init(&self) -> Result<()> {
        let mut args = vec!["init", "-input=false", "-no-color"];
        if !lock_pins_our_provider(&self.dir, self.found.kind) {
            args.push("-upgrade");
        }
        self.plain("init", &args).map(|_| ())
    }

    /// `plan -detailed-exitcode`: whether the plan is empty (no change to any resource or output).
    pub fn plan_is_empty(&self) -> Result<bool> {
        let out = self
            .command(
                &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
                &Secrets::default(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(Error::io(&self.found.bin))?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(2) => Ok(false),
            _ => Err(Error::Engine(
                self.label("plan"),
                last_lines(&String::from_utf8_lossy(&out.stderr), 15),
            )),
        }
    }

    /// Runs a `-json` command with a progress display; Ctrl-C stops it gracefully. `what` as in [`Engine::plain`].
    pub fn run_json(&self, what: &str, args: &[&str], secrets: &Secrets) -> Result<RunResult> {
        let what = self.label(what);
        let _ = std::fs::remove_file(&self.progress_file);
        let mut child = self
            .command(args, secrets)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::io(&self.found.bin))?;
        CHILD.store(child.id() as i32, Ordering::SeqCst);
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(what.to_string());
        let done = Arc::new(AtomicBool::new(false));
        let tail = spawn_progress_tail(self.progress_file.clone(), bar.clone(), done.clone());
        let stderr = child.stderr.take().map(|e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = std::io::Read::read_to_string(&mut BufReader::new(e), &mut s);
                s
            })
        });
        let mut result = RunResult::default();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                if let Ok(ev) = serde_json::from_str::<Json>(&line) {
                    handle_event(&ev, &bar, &mut result);
                }
            }
        }
        let status = child.wait().map_err(Error::io(&self.found.bin))?;
        CHILD.store(0, Ordering::SeqCst);
        done.store(true, Ordering::SeqCst);
        let _ = tail.join();
        bar.finish_and_clear();
        let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err(Error::Interrupted(self.found.to_string()));
        }
        if !status.success() {
            let mut msg = result.errors.join("; ");
            if msg.is_empty() {
                msg = last_lines(&stderr, 10);
            }
            return Err(Error::Engine(what, msg));
        }
        Ok(result)
    }

    /// `plan` into a saved plan, print its summary, ask `question` (unless `None`), then apply exactly that plan.
    /// A declined confirmation removes the saved plan and applies nothing.
    pub fn plan_and_apply(
        &self,
        secrets: &Secrets,
        question: Option<&str>,
        extra: &[&str],
    ) -> Result<RunResult> {
        const PLAN: &str = "cloudcode.tfplan";
        let plan_file = self.dir.join(PLAN);
        let out = format!("-out={PLAN}");
        let mut args = vec!["plan", "-json", "-input=false", out.as_str()];
        args.extend_from_slice(extra);
        let plan = self.run_json("plan", &args, secrets)?;
        let (add, change, remove) = plan.changes.unwrap_or_default();
        eprintln!(
            "{}",
            tr(
                format!("Plan: {add} to create, {change} to update, {remove} to remove."),
                format!("计划：新建 {add}，更新 {change}，删除 {remove}。"),
            )
        );
        if let Some(q) = question {
            if !crate::commands::input::confirm(q) {
                let _ = std::fs::remove_file(&plan_file);
                return Err(if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    Error::Cancelled
                } else {
                    Error::Input(
                        tr("confirmation needed", "需要确认")
                            + &crate::commands::input::need_tty_hint(),
                    )
                });
            }
        }
        let applied = self.run_json("apply", &["apply", "-json", "-input=false", PLAN], secrets);
        let _ = std::fs::remove_file(&plan_file);
        applied
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// True when there is no lock file yet, or it locks our provider (under `kind`'s registry host) at this
/// CLI's version.
fn lock_pins_our_provider(dir: &Path, kind: Kind) -> bool {
    let Ok(lock) = std::fs::read_to_string(dir.join(".terraform.lock.hcl")) else {
        return true;
    };
    let addr = format!(
        "{}/{}\"",
        kind.registry_host(),
        crate::stack::PROVIDER_SOURCE
    );
    let block = lock.split("provider \"").find(|b| b.starts_with(&addr));
    match block {
        Some(b) => b.contains(&format!(
            "version     = \"{}\"",
            crate::stack::PROVIDER_VERSION
        )),
        None => true,
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One `-json` UI event → the progress display and the collected result.
fn handle_event(ev: &Json, bar: &indicatif::ProgressBar, result: &mut RunResult) {
    let addr = ev["hook"]["resource"]["addr"].as_str().unwrap_or("");
    match ev["type"].as_str().unwrap_or("") {
        "apply_start" => bar.set_message(format!(
            "{} {addr}",
            ev["hook"]["action"].as_str().unwrap_or("")
        )),
        "apply_progress" => bar.set_message(format!(
            "{addr} ({}s)",
            ev["hook"]["elapsed_seconds"].as_u64().unwrap_or(0)
        )),
        "apply_complete" => bar.println(format!("✓ {addr}")),
        "apply_errored" => bar.println(format!("✗ {addr}")),
        "diagnostic" => {
            let d = &ev["diagnostic"];
            let text = format!(
                "{}: {}",
                d["summary"].as_str().unwrap_or(""),
                d["detail"].as_str().unwrap_or("")
            );
            if d["severity"] == "error" {
                result.errors.push(text.trim_end_matches(": ").to_string());
            } else {
                bar.println(format!("! {}", text.trim_end_matches(": ")));
            }
        }
        "planned_change" => {
            let c = &ev["change"];
            if let (Some(addr), Some(action)) =
                (c["resource"]["addr"].as_str(), c["action"].as_str())
            {
                result.planned.push((addr.to_string(), action.to_string()));
            }
        }
        "change_summary" => {
            let c = &ev["changes"];
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            result.changes = Some((n("add"), n("change"), n("remove")));
        }
        "outputs" => {
            if let Some(o) = ev["outputs"].as_object() {
                result.outputs = o.clone();
            }
        }
        _ => {}
    }
}

/// Follows the provider's progress file (JSON lines) and shows each sub-step.
fn spawn_progress_tail(
    path: PathBuf,
    bar: indicatif::ProgressBar,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut seen = 0usize;
        loop {
            let finished = done.load(Ordering::SeqCst);
            if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines().skip(seen) {
                    seen += 1;
                    if let Ok(ev) = serde_json::from_str::<Json>(line) {
                        let step = ev["step"].as_str().unwrap_or("");
                        let label = step_label(step);
                        if ev["status"] == "done" {
                            bar.println(format!("  ✓ {label}"));
                        } else {
                            bar.set_message(format!("{label}…"));
                        }
                    }
                }
            }
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

fn step_label(step: &str) -> String {
    match step {
        "connect" => tr("connecting over SSH", "SSH 连接"),
        "install" => tr("preparing Docker", "准备 Docker"),
        "upload" => tr("uploading files", "上传文件"),
        "up" => tr("starting containers", "启动容器"),
        "health" => tr("waiting for health checks", "等待健康检查"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_secret_env_is_an_hcl_object_of_literal_strings() {
        let env = BTreeMap::from([(
            "api".to_string(),
            BTreeMap::from([
                ("DB_PASSWORD".to_string(), "p\"w${x}%{y}".to_string()),
                ("TOKEN".to_string(), "t".to_string()),
            ]),
        )]);
        assert_eq!(
            app_secret_env_var(&env),
            r#"{"api" = {"DB_PASSWORD" = "p\"w$${x}%%{y}", "TOKEN" = "t"}}"#
        );
        assert_eq!(app_secret_env_var(&BTreeMap::new()), "{}");
    }

    fn lock_with(host: &str, version: &str) -> String {
        format!(
            "# This file is maintained automatically by \"terraform init\".\n\n\
             provider \"{host}/aliyun/alicloud\" {{\n  version     = \"1.240.0\"\n  constraints = \">= 1.240.0, < 2.0.0\"\n}}\n\n\
             provider \"{host}/{}\" {{\n  version     = \"{version}\"\n  constraints = \"{version}\"\n  hashes = [\n    \"h1:abc=\",\n  ]\n}}\n",
            crate::stack::PROVIDER_SOURCE
        )
    }

    #[test]
    fn an_upgraded_cli_inits_with_upgrade_under_either_engine() {
        let ours = crate::stack::PROVIDER_VERSION;
        for kind in [Kind::Terraform, Kind::Tofu] {
            let dir = tempfile::tempdir().unwrap();
            assert!(lock_pins_our_provider(dir.path(), kind), "no lock file yet");
            let lock = dir.path().join(".terraform.lock.hcl");
            std::fs::write(&lock, lock_with(kind.registry_host(), ours)).unwrap();
            assert!(lock_pins_our_provider(dir.path(), kind), "{kind}");
            std::fs::write(&lock, lock_with(kind.registry_host(), "0.0.1")).unwrap();
            assert!(!lock_pins_our_provider(dir.path(), kind), "{kind}");
            // The other engine's entry says nothing about this engine's: init adds its own.
            std::fs::write(&lock, lock_with(kind.other().registry_host(), "0.0.1")).unwrap();
            assert!(lock_pins_our_provider(dir.path(), kind), "{kind}");
        }
    }
}
