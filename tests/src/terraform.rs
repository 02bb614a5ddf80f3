//! Drives the real `terraform` binary against the real provider in a throw-away working directory laid out
//! for offline `init` (`terraform.d/plugins/registry.terraform.io/<namespace>/cloudcode/<version>/linux_amd64/`),
//! and returns parsed results, so a scenario is a few lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use serde_json::Value as Json;

/// The provider's registry namespace: `registry.terraform.io/cloudcode-dev/cloudcode`.
pub const NAMESPACE: &str = "cloudcode-dev";
/// The version the harness installs the provider as.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The minimum Terraform the project supports (write-only attributes).
pub const MIN_TERRAFORM: (u64, u64) = (1, 11);

/// The path of the provider binary built by this crate; use in integration tests only.
#[macro_export]
macro_rules! provider_bin {
    () => {
        std::path::Path::new(env!("CARGO_BIN_EXE_cloudcode-provider-under-test"))
    };
}

/// The path of the schema-only alicloud stub built by this crate; use in integration tests only.
#[macro_export]
macro_rules! alicloud_stub_bin {
    () => {
        std::path::Path::new(env!("CARGO_BIN_EXE_alicloud-schema-stub"))
    };
}

/// The `required_providers` block every test configuration starts with.
pub fn required_providers() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    cloudcode = {{\n      source  = \"{NAMESPACE}/cloudcode\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n"
    )
}

/// The result of one terraform command.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(args: &[&str], out: Output) -> Self {
        Self {
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
                "terraform {} failed\n--- stdout\n{}\n--- stderr\n{}",
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
                "terraform {} did not print JSON: {}",
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

    /// The diagnostics of a `-json` run: from `validate -json` (one document) or from UI lines.
    /// The error diagnostics of a `-json` run.
    pub fn errors(&self) -> Vec<Json> {
        self.diagnostics()
            .into_iter()
            .filter(|d| d["severity"] == "error")
            .collect()
    }

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

/// A working directory with the provider installed for offline use.
pub struct Workdir {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Workdir {
    /// Lays out a working directory holding `main.tf` (prefixed with [`required_providers`]).
    pub fn new(provider_bin: &Path, main_tf: &str) -> Result<Self> {
        let wd = Self::empty(provider_bin)?;
        wd.write("main.tf", &format!("{}\n{main_tf}", required_providers()))?;
        Ok(wd)
    }

    /// Lays out a working directory with the provider installed and no configuration: fill it with
    /// [`Workdir::copy_tree`] / [`Workdir::write`] and run commands in subdirectories with [`Workdir::tf_in`].
    pub fn empty(provider_bin: &Path) -> Result<Self> {
        check_terraform_version()?;
        let dir = tempfile::Builder::new().prefix("cloudcode-tf-").tempdir()?;
        let plugins = dir.path().join("terraform.d/plugins");
        let target = plugins.join(format!(
            "registry.terraform.io/{NAMESPACE}/cloudcode/{VERSION}/linux_amd64"
        ));
        std::fs::create_dir_all(&target)?;
        std::fs::copy(
            provider_bin,
            target.join(format!("terraform-provider-cloudcode_v{VERSION}")),
        )
        .with_context(|| format!("copying the provider from {}", provider_bin.display()))?;
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
        Ok(Self { dir, env })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// [`Workdir::empty`] with the alicloud schema stub installed too, serving the default schema file.
    pub fn with_alicloud_stub(provider_bin: &Path, stub_bin: &Path) -> Result<Self> {
        let mut wd = Self::empty(provider_bin)?;
        wd.install_alicloud_stub(stub_bin, &crate::alicloud_stub::default_schema_path())?;
        Ok(wd)
    }

    /// Installs the schema-only alicloud stub (the `alicloud-schema-stub` binary, see
    /// [`crate::alicloud_stub`]) in the filesystem mirror as `registry.terraform.io/aliyun/alicloud`
    /// [`crate::alicloud_stub::VERSION`], serving `schema` (the JSON of `terraform providers schema -json`).
    pub fn install_alicloud_stub(&mut self, stub_bin: &Path, schema: &Path) -> Result<()> {
        let v = crate::alicloud_stub::VERSION;
        let target = self.dir.path().join(format!(
            "terraform.d/plugins/registry.terraform.io/aliyun/alicloud/{v}/linux_amd64"
        ));
        std::fs::create_dir_all(&target)?;
        std::fs::copy(
            stub_bin,
            target.join(format!("terraform-provider-alicloud_v{v}")),
        )
        .with_context(|| format!("copying the alicloud stub from {}", stub_bin.display()))?;
        let schema = schema
            .canonicalize()
            .with_context(|| format!("the alicloud schema {} is missing", schema.display()))?;
        self.set_env(
            crate::alicloud_stub::SCHEMA_ENV,
            &schema.display().to_string(),
        );
        Ok(())
    }

    /// Copies the directory `src` (recursively, without `.terraform*` and state files) to `dest` inside the
    /// working directory, e.g. the repository's `modules/` so that relative module sources resolve.
    pub fn copy_tree(&self, src: &Path, dest: &str) -> Result<()> {
        copy_tree(src, &self.dir.path().join(dest))
    }

    /// Runs `terraform <args>` in the subdirectory `sub` of the working directory.
    pub fn tf_in(&self, sub: &str, args: &[&str]) -> Result<Run> {
        let out = Command::new(terraform())
            .args(args)
            .current_dir(self.dir.path().join(sub))
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PATH")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .context("running terraform (is it on PATH?)")?;
        Ok(Run::from(args, out))
    }

    /// `terraform init -backend=false` in the subdirectory `sub` (providers from the local mirror); fails on error.
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

    /// Writes or replaces a file in the working directory.
    pub fn write(&self, name: &str, content: &str) -> Result<()> {
        Ok(std::fs::write(self.dir.path().join(name), content)?)
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

/// The repository's root directory (where `modules/` and `examples/` live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The terraform binary: `$TERRAFORM` or `terraform` on PATH.
pub fn terraform() -> PathBuf {
    std::env::var_os("TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"))
}

/// Fails clearly when terraform is missing or older than [`MIN_TERRAFORM`].
pub fn check_terraform_version() -> Result<(u64, u64, u64)> {
    let out = Command::new(terraform())
        .args(["version", "-json"])
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .context("terraform was not found on PATH; install Terraform >= 1.11")?;
    let v: Json = serde_json::from_slice(&out.stdout).context("terraform version -json")?;
    let text = v["terraform_version"].as_str().unwrap_or_default();
    let parts: Vec<u64> = text.split('.').filter_map(|p| p.parse().ok()).collect();
    let (maj, min, patch) = (
        parts.first().copied().unwrap_or(0),
        parts.get(1).copied().unwrap_or(0),
        parts.get(2).copied().unwrap_or(0),
    );
    if (maj, min) < MIN_TERRAFORM {
        bail!("terraform {text} is too old: cloudcode needs Terraform >= 1.11 (write-only attributes)");
    }
    Ok((maj, min, patch))
}
