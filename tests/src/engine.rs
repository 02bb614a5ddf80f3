//! The engines the acceptance tests run under, decided in one place: `CLOUDCODE_TEST_ENGINES`, a comma list of
//! `terraform`, `tofu` (the current OpenTofu, [`TOFU_CURRENT`]) and `tofu@<version>` (default
//! `terraform,tofu,tofu@1.11.14`). Tests that exercise engine behaviour run under [`matrix`] (terraform and
//! the current tofu) or [`smoke`] (every listed engine); long test-VM scenarios run once, under the engine
//! [`scenario`] picks. OpenTofu builds come from the test cache (`scripts/deps/10-opentofu.sh`). [`each`]
//! runs a scenario per engine, names the engine of every failure, and logs each result for the per-engine
//! counts `scripts/test.sh` prints.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use serde_json::Value as Json;

/// The current OpenTofu release: every engine-facing test runs under it beside Terraform.
pub const TOFU_CURRENT: &str = "1.12.6";
/// The oldest supported OpenTofu line the smoke subset runs under.
pub const TOFU_OLDEST: &str = "1.11.14";
/// An OpenTofu below the supported range, built only to show the version guard refusing it.
pub const TOFU_UNSUPPORTED: &str = "1.10.0";
const DEFAULT_ENGINES: &str = "terraform,tofu,tofu@1.11.14";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Terraform,
    Tofu,
}

/// One engine binary and the version it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub kind: Kind,
    pub bin: PathBuf,
    pub version: String,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.command_name(), self.version)
    }
}

impl Engine {
    /// `terraform` or `tofu`.
    pub fn command_name(&self) -> &'static str {
        match self.kind {
            Kind::Terraform => "terraform",
            Kind::Tofu => "tofu",
        }
    }

    /// The registry host a host-less source address means to this engine.
    pub fn registry_host(&self) -> &'static str {
        match self.kind {
            Kind::Terraform => "registry.terraform.io",
            Kind::Tofu => "registry.opentofu.org",
        }
    }

    /// `<host>/<ns>/<name>`: how this engine spells a provider in schemas, state and lock files.
    pub fn provider_addr(&self, source: &str) -> String {
        format!("{}/{source}", self.registry_host())
    }

    pub fn is_tofu(&self) -> bool {
        self.kind == Kind::Tofu
    }

    /// A command running this engine, with no ambient CLI configuration or checkpoint calls.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_CLI_CONFIG_FILE")
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PATH");
        c
    }

    /// Identifies the binary by running `version -json`.
    pub fn identify(kind: Kind, bin: PathBuf) -> Result<Engine> {
        let out = Command::new(&bin)
            .args(["version", "-json"])
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_CLI_CONFIG_FILE")
            .output()
            .with_context(|| format!("running {} version", bin.display()))?;
        let v: Json = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{} version -json did not print JSON", bin.display()))?;
        let version = v["terraform_version"]
            .as_str()
            .context("no terraform_version in `version -json`")?
            .to_string();
        Ok(Engine { kind, bin, version })
    }

    /// The version as (major, minor, patch).
    pub fn semver(&self) -> (u64, u64, u64) {
        let p: Vec<u64> = self
            .version
            .split(['.', '-'])
            .filter_map(|x| x.parse().ok())
            .collect();
        (
            p.first().copied().unwrap_or(0),
            p.get(1).copied().unwrap_or(0),
            p.get(2).copied().unwrap_or(0),
        )
    }
}

/// Where the Go-built test dependencies live: `$CLOUDCODE_TEST_CACHE`, default `~/.cache/cloudcode-test`.
pub fn test_cache() -> PathBuf {
    std::env::var_os("CLOUDCODE_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/cloudcode-test")
        })
}

/// `python3 -m pip <args> <into> -r <requirements>` run once per content of the requirements file, into
/// `<test cache>/<name>/<hash>` (`into` is `--target` or `-d`); later calls return the directory at once.
pub fn pip_cached(name: &str, requirements: &Path, into: &str, args: &[&str]) -> PathBuf {
    let text = std::fs::read(requirements).expect("the requirements file");
    let hash = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&text)[..8]);
    let dir = test_cache().join(name).join(hash);
    if dir.join(".complete").exists() {
        return dir;
    }
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let tmp = dir.with_extension(format!(
        "tmp{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = Command::new("python3")
        .args(["-m", "pip"])
        .args(args)
        .args(["-q", "--disable-pip-version-check", into])
        .arg(&tmp)
        .arg("-r")
        .arg(requirements)
        .output()
        .expect("python3 -m pip");
    assert!(
        out.status.success(),
        "pip for {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(tmp.join(".complete"), "").unwrap();
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp); // another test filled it meanwhile
    }
    dir
}

/// The official `aliyun/alicloud` provider version the module is tested against (built by
/// `scripts/deps/15-alicloud.sh`; the newest the Go module proxy serves here).
pub const ALICLOUD_VERSION: &str = "1.240.0";

/// The real alicloud provider binary in the test cache (`scripts/deps/15-alicloud.sh` builds it).
pub fn cached_alicloud() -> PathBuf {
    let p = test_cache().join(format!(
        "alicloud/{ALICLOUD_VERSION}/terraform-provider-alicloud_v{ALICLOUD_VERSION}"
    ));
    assert!(
        p.is_file(),
        "the alicloud provider {ALICLOUD_VERSION} is not built: run `bash scripts/deps/15-alicloud.sh` ({} missing)",
        p.display()
    );
    p
}

/// The OpenTofu build of `version` in the test cache, if it was built.
pub fn cached_tofu(version: &str) -> Option<PathBuf> {
    let p = test_cache().join(format!("tofu/{version}/tofu"));
    p.is_file().then_some(p)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Resolves one entry of `CLOUDCODE_TEST_ENGINES`.
fn resolve(spec: &str) -> Result<Engine> {
    match spec.split_once('@').unwrap_or((spec, "")) {
        ("terraform", want) => {
            let bin = std::env::var_os("TERRAFORM")
                .map(PathBuf::from)
                .or_else(|| on_path("terraform"))
                .context("terraform is not on PATH: the tests need Terraform >= 1.11")?;
            let e = Engine::identify(Kind::Terraform, bin)?;
            if e.semver() < (1, 11, 0) {
                bail!("{e} is too old: cloudcode needs Terraform >= 1.11 (write-only attributes)");
            }
            if !want.is_empty() && e.version != want {
                bail!("{e} is on PATH, but CLOUDCODE_TEST_ENGINES asks for terraform@{want}");
            }
            Ok(e)
        }
        ("tofu", want) => {
            let want = if want.is_empty() { TOFU_CURRENT } else { want };
            let bin = cached_tofu(want)
                .or_else(|| on_path("tofu"))
                .with_context(|| format!("tofu {want} is not built: run `bash scripts/deps/10-opentofu.sh`, or leave it out of CLOUDCODE_TEST_ENGINES"))?;
            let e = Engine::identify(Kind::Tofu, bin)?;
            if e.version != want {
                bail!("tofu {want} is not built ({e} found at {}): run `bash scripts/deps/10-opentofu.sh`", e.bin.display());
            }
            Ok(e)
        }
        _ => bail!("CLOUDCODE_TEST_ENGINES: unknown engine \"{spec}\" (use terraform, tofu or tofu@<version>)"),
    }
}

/// Every engine `CLOUDCODE_TEST_ENGINES` lists, resolved once per test process. A listed engine that is
/// missing fails every test that asks for it: CI must not pass by running fewer engines than it says.
pub fn listed() -> &'static [Engine] {
    static LISTED: OnceLock<Vec<Engine>> = OnceLock::new();
    LISTED.get_or_init(|| {
        let specs = std::env::var("CLOUDCODE_TEST_ENGINES")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENGINES.to_string());
        specs
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| resolve(s).unwrap_or_else(|e| panic!("{e:#}")))
            .collect()
    })
}

/// Terraform and the current OpenTofu (those of them that are listed): the provider's acceptance tests,
/// the module tests and the CLI's newcomer flow run under each.
pub fn matrix() -> Vec<Engine> {
    listed()
        .iter()
        .filter(|e| e.kind == Kind::Terraform || e.version == TOFU_CURRENT)
        .cloned()
        .collect()
}

/// Every listed engine, the oldest supported OpenTofu too: init, validate, one stack's
/// plan/apply/destroy and the module tests.
pub fn smoke() -> Vec<Engine> {
    listed().to_vec()
}

/// The engine a long, run-once scenario uses: `kind` (the current version for tofu) when listed, else the
/// first listed engine. Scenarios are split between the engines so both run end to end.
pub fn scenario(kind: Kind) -> Engine {
    let m = matrix();
    m.iter()
        .find(|e| e.kind == kind)
        .or(m.first())
        .or(listed().first())
        .cloned()
        .expect("CLOUDCODE_TEST_ENGINES lists no engine")
}

/// The engine of helpers that are not about the engine (formatting, schema dumps): Terraform when listed.
pub fn primary() -> Engine {
    scenario(Kind::Terraform)
}

/// Terraform, whether or not it is listed (for `fmt` checks and the like).
pub fn terraform() -> Engine {
    listed()
        .iter()
        .find(|e| e.kind == Kind::Terraform)
        .cloned()
        .unwrap_or_else(|| resolve("terraform").unwrap_or_else(|e| panic!("{e:#}")))
}

/// Runs `scenario` once per engine, every engine even after a failure, and panics naming each engine that
/// failed. Each result is appended to `$CLOUDCODE_TEST_ENGINE_LOG` (`engine<TAB>test<TAB>pass|fail`).
pub fn each(engines: &[Engine], scenario: impl Fn(&Engine)) {
    assert!(!engines.is_empty(), "no engine to run under");
    let failed: Vec<String> = engines
        .iter()
        .filter(|e| !run_one(e, || scenario(e)))
        .map(|e| e.to_string())
        .collect();
    if !failed.is_empty() {
        panic!("{} failed under {}", test_name(), failed.join(", "));
    }
}

/// Runs a run-once scenario under `e`, logging its result like [`each`].
pub fn once(e: &Engine, scenario: impl FnOnce(&Engine)) {
    if !run_one(e, || scenario(e)) {
        panic!("{} failed under {e}", test_name());
    }
}

/// The running test's name (cargo's test threads carry it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string()
}

fn run_one(e: &Engine, f: impl FnOnce()) -> bool {
    let test = test_name();
    eprintln!("--- {test} under {e}");
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
    if let Some(path) = std::env::var_os("CLOUDCODE_TEST_ENGINE_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{e}\t{test}\t{}", if ok { "pass" } else { "fail" });
        }
    }
    ok
}
