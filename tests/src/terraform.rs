//! Drives a real engine (`terraform` or `tofu`, see [`crate::engine`]) against the real provider in a throw-away
//! working directory laid out for offline `init` (a filesystem mirror holding the provider under both registry
//! hosts, `registry.terraform.io` and `registry.opentofu.org`), and returns parsed results, so a scenario is a
//! few lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use serde_json::Value as Json;

use crate::engine::{self, Engine};

/// The provider's registry namespace: `cloudcode-dev/cloudcode` (under each engine's registry host).
pub const NAMESPACE: &str = "cloudcode-dev";
/// The provider's source address without a host.
pub const SOURCE: &str = "cloudcode-dev/cloudcode";
/// The registry hosts the offline mirror lays every provider out under.
pub const REGISTRY_HOSTS: [&str; 2] = ["registry.terraform.io", "registry.opentofu.org"];
/// The version the harness installs the provider as.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The path of the provider binary built by this crate; use in integration tests only.
#[macro_export]
macro_rules! provider_bin {
    () => {
        std::path::Path::new(env!("CARGO_BIN_EXE_cloudcode-provider-under-test"))
    };
}

/// The `required_providers` block every test configuration starts with.
pub fn required_providers() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    cloudcode = {{\n      source  = \"{NAMESPACE}/cloudcode\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n"
    )
}

/// The result of one engine command.
#[derive(Debug)]
pub struct Run {
    /// The engine that ran it (`tofu 1.12.6`): every failure message names it.
    pub engine: String,
    pub args: Vec<String>,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(engine: &Engine, args: &[&str], out: Output) -> Self {
        Self {
            engine: engine.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Fails with the command's output unless it succeeded.
    pub fn ok(self) -> Result<Self> {
        if !self.success {
            bail!(
                "{} {} failed\n--- stdout\n{}\n--- stderr\n{}",
                self.engine,
                self.args.join(" "),
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> Result<Json> {
        serde_json::from_str(&self.stdout).with_context(|| {
            format!(
                "{} {} did not print JSON: {}",
                self.engine,
                self.args.join(" "),
                self.stdout
            )
        })
    }

    /// stdout parsed as `-json` UI lines (one object per line).
    pub fn json_lines(&self) -> Vec<Json> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The last value of `key=` on a provider log line containing `marker` (stderr with `TF_LOG_PROVIDER=info`),
    /// e.g. `logged("cloudcode_stack read", "commands")`.
    pub fn logged(&self, marker: &str, key: &str) -> Option<String> {
        self.stderr
            .lines()
            .filter(|l| l.contains(marker))
            .filter_map(|l| {
                let at = l.find(&format!("{key}="))? + key.len() + 1;
                let rest = &l[at..];
                let end = if rest.starts_with('[') {
                    rest.find(']').map(|i| i + 1)
                } else {
                    rest.find(char::is_whitespace)
                }
                .unwrap_or(rest.len());
                Some(rest[..end].trim_matches('"').to_string())
            })
            .next_back()
    }

    /// The error diagnostics of a `-json` run.
    pub fn errors(&self) -> Vec<Json> {
        self.diagnostics()
            .into_iter()
            .filter(|d| d["severity"] == "error")
            .collect()
    }

    /// The diagnostics of a `-json` run: from `validate -json` (one document) or from UI lines.
    pub fn diagnostics(&self) -> Vec<Json> {
        if let Ok(doc) = self.json() {
            if let Some(d) = doc.get("diagnostics").and_then(Json::as_array) {
                return d.clone();
            }
        }
        self.json_lines()
            .into_iter()
            .filter(|l| l["type"] == "diagnostic")
            .map(|l| l["diagnostic"].clone())
            .collect()
    }
}

/// What `test -json` reported, read the same for both engines: Terraform writes a `test_run` line per
/// progress step (`starting`, `running`, `complete`), OpenTofu one line per finished run without `progress`.
#[derive(Debug, Default)]
pub struct TestReport {
    /// Run name -> status (`pass`, `fail`, `error`, `skip`), for each finished run.
    pub runs: std::collections::BTreeMap<String, String>,
    /// The `test_summary` object (`status`, `passed`, `failed`, `errored`, `skipped`).
    pub summary: Json,
}

impl Run {
    /// The report of a `test -json` run.
    pub fn test_report(&self) -> TestReport {
        let mut r = TestReport::default();
        for line in self.json_lines() {
            match line["type"].as_str() {
                Some("test_run") => {
                    let run = &line["test_run"];
                    let progress = run["progress"].as_str().unwrap_or("complete");
                    if progress == "complete" {
                        r.runs.insert(
                            run["run"].as_str().unwrap_or_default().to_string(),
                            run["status"].as_str().unwrap_or_default().to_string(),
                        );
                    }
                }
                Some("test_summary") => r.summary = line["test_summary"].clone(),
                _ => {}
            }
        }
        r
    }
}

/// A working directory with the provider installed for offline use, bound to one engine.
pub struct Workdir {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    engine: Engine,
}

impl Workdir {
    /// Lays out a working directory holding `main.tf` (prefixed with [`required_providers`]), run by the
    /// primary engine ([`engine::primary`]).
    pub fn new(provider_bin: &Path, main_tf: &str) -> Result<Self> {
        Self::new_on(&engine::primary(), provider_bin, main_tf)
    }

    /// [`Workdir::new`] run by `engine`.
    pub fn new_on(engine: &Engine, provider_bin: &Path, main_tf: &str) -> Result<Self> {
        let wd = Self::empty_on(engine, provider_bin)?;
        wd.write("main.tf", &format!("{}\n{main_tf}", required_providers()))?;
        Ok(wd)
    }

    /// [`Workdir::empty_on`] the primary engine.
    pub fn empty(provider_bin: &Path) -> Result<Self> {
        Self::empty_on(&engine::primary(), provider_bin)
    }

    /// Lays out a working directory with the provider installed and no configuration: fill it with
    /// [`Workdir::copy_tree`] / [`Workdir::write`] and run commands in subdirectories with [`Workdir::tf_in`].
    pub fn empty_on(engine: &Engine, provider_bin: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("cloudcode-tf-").tempdir()?;
        let plugins = dir.path().join("terraform.d/plugins");
        install_in_mirror(
            &plugins,
            SOURCE,
            VERSION,
            provider_bin,
            "terraform-provider-cloudcode",
        )?;
        // Only the local mirror: nothing is fetched from the network.
        let cli_config = dir.path().join("terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
                plugins.display()
            ),
        )?;
        let env = vec![
            (
                "TF_CLI_CONFIG_FILE".into(),
                cli_config.display().to_string(),
            ),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
        ];
        Ok(Self {
            dir,
            env,
            engine: engine.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The engine every command of this working directory runs.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// [`Workdir::empty_on`] with the real official `aliyun/alicloud` provider
    /// ([`crate::engine::ALICLOUD_VERSION`], from the test cache) installed too, under both registry hosts.
    pub fn with_alicloud(engine: &Engine, provider_bin: &Path) -> Result<Self> {
        let wd = Self::empty_on(engine, provider_bin)?;
        link_in_mirror(
            &wd.dir.path().join("terraform.d/plugins"),
            "aliyun/alicloud",
            crate::engine::ALICLOUD_VERSION,
            &crate::engine::cached_alicloud(),
            "terraform-provider-alicloud",
        )?;
        Ok(wd)
    }

    /// Copies the directory `src` (recursively, without `.terraform*` and state files) to `dest` inside the
    /// working directory, e.g. the repository's `modules/` so that relative module sources resolve.
    pub fn copy_tree(&self, src: &Path, dest: &str) -> Result<()> {
        copy_tree(src, &self.dir.path().join(dest))
    }

    /// `<engine> <args>` in the working directory with its environment, to spawn and steer by hand.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = self.engine.command();
        c.args(args)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Runs `<engine> <args>` in the subdirectory `sub` of the working directory.
    pub fn tf_in(&self, sub: &str, args: &[&str]) -> Result<Run> {
        let out = self
            .command(args)
            .current_dir(self.dir.path().join(sub))
            .output()
            .with_context(|| format!("running {}", self.engine))?;
        Ok(Run::from(&self.engine, args, out))
    }

    /// `<engine> test -json` in `sub` (e.g. `-filter=tests/x.tftest.hcl` in `extra`), read into a report.
    pub fn test_in(&self, sub: &str, extra: &[&str]) -> Result<(TestReport, Run)> {
        let mut args = vec!["test", "-json", "-no-color"];
        args.extend_from_slice(extra);
        let run = self.tf_in(sub, &args)?;
        Ok((run.test_report(), run))
    }

    /// `init -backend=false` in the subdirectory `sub` (providers from the local mirror); fails on error.
    pub fn init_in(&self, sub: &str) -> Result<Run> {
        self.tf_in(
            sub,
            &["init", "-backend=false", "-no-color", "-input=false"],
        )?
        .ok()
    }

    /// Adds an environment variable to every later command (e.g. `TF_VAR_password`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Removes an environment variable [`Self::set_env`] added.
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Writes or replaces a file in the working directory (its directories created).
    pub fn write(&self, name: &str, content: &str) -> Result<()> {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(std::fs::write(path, content)?)
    }

    /// Runs `terraform <args>` here.
    pub fn tf(&self, args: &[&str]) -> Result<Run> {
        self.tf_in(".", args)
    }

    pub fn init(&self) -> Result<Run> {
        self.tf(&["init", "-no-color", "-input=false"])?.ok()
    }

    /// `terraform validate -json` (does not fail on diagnostics).
    pub fn validate(&self) -> Result<Run> {
        self.tf(&["validate", "-json", "-no-color"])
    }

    /// `terraform plan -out=<file>` then `terraform show -json <file>`: (plan run, plan JSON).
    pub fn plan_saved(&self, file: &str) -> Result<(Run, Json)> {
        let out = format!("-out={file}");
        let plan = self
            .tf(&["plan", "-no-color", "-input=false", &out])?
            .ok()?;
        let show = self.tf(&["show", "-json", "-no-color", file])?.ok()?;
        Ok((plan, show.json()?))
    }

    /// `terraform apply -auto-approve -json` (does not fail on errors: inspect `success`/diagnostics).
    pub fn apply(&self) -> Result<Run> {
        self.tf(&["apply", "-auto-approve", "-json", "-input=false"])
    }

    /// `terraform output -json` as a map.
    pub fn outputs(&self) -> Result<Json> {
        self.tf(&["output", "-json"])?.ok()?.json()
    }

    /// `terraform providers schema -json`.
    pub fn schema(&self) -> Result<Json> {
        self.tf(&["providers", "schema", "-json"])?.ok()?.json()
    }

    /// The state file's text (empty when there is none).
    pub fn state_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("terraform.tfstate")).unwrap_or_default()
    }
}

fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str.starts_with(".terraform") || name_str.contains(".tfstate") {
            continue;
        }
        let to = dest.join(&name);
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The `mock_provider` blocks of the module's tests (`modules/cloudcode/tests/default_plan.tftest.hcl`; every
/// test file repeats the same blocks, since OpenTofu's `mock_provider` cannot load them from a directory).
pub fn module_mock_providers() -> String {
    let file = repo_root().join("modules/cloudcode/tests/default_plan.tftest.hcl");
    mock_provider_blocks(&std::fs::read_to_string(&file).unwrap_or_default())
}

/// The top-level `mock_provider` blocks of a test file's text, each up to its closing `}` line.
pub fn mock_provider_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("mock_provider ") {
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
            if line == "}" {
                inside = false;
                out.push('\n');
            }
        }
    }
    out
}

/// The repository's root directory (where `modules/` and `examples/` live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The terraform binary: `$TERRAFORM` or `terraform` on PATH (for engine-independent checks such as `fmt`).
pub fn terraform() -> PathBuf {
    engine::terraform().bin
}

/// Puts `bin` into the filesystem mirror at `plugins` as `<host>/<source>/<version>/linux_amd64/<name>_v<version>`
/// under both registry hosts: a copy (then a hard link for the second host, a copy where linking fails).
pub fn install_in_mirror(
    plugins: &Path,
    source: &str,
    version: &str,
    bin: &Path,
    name: &str,
) -> Result<()> {
    put_in_mirror(plugins, source, version, bin, name, false)
}

/// [`install_in_mirror`] for a large binary kept in the test cache (the alicloud provider is 275 MB): a hard link
/// where the file system allows it, else a symbolic link, never a copy.
pub fn link_in_mirror(
    plugins: &Path,
    source: &str,
    version: &str,
    bin: &Path,
    name: &str,
) -> Result<()> {
    put_in_mirror(plugins, source, version, bin, name, true)
}

fn put_in_mirror(
    plugins: &Path,
    source: &str,
    version: &str,
    bin: &Path,
    name: &str,
    link: bool,
) -> Result<()> {
    let mut first: Option<PathBuf> = None;
    for host in REGISTRY_HOSTS {
        let dir = plugins.join(format!("{host}/{source}/{version}/linux_amd64"));
        std::fs::create_dir_all(&dir)?;
        let target = dir.join(format!("{name}_v{version}"));
        let _ = std::fs::remove_file(&target);
        let from = first.as_deref().unwrap_or(bin);
        if std::fs::hard_link(from, &target).is_err() {
            if link {
                std::os::unix::fs::symlink(bin, &target)
                    .with_context(|| format!("linking {} into the mirror", bin.display()))?;
            } else {
                std::fs::copy(bin, &target)
                    .with_context(|| format!("copying {} into the mirror", bin.display()))?;
            }
        }
        first.get_or_insert(target);
    }
    Ok(())
}
