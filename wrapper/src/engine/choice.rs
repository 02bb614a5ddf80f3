//! Which engine runs a stack: finds `tofu`/`terraform`, reads its name and version, checks them against the
//! supported range, and records the choice in the stack's directory so a stack stays on the engine that
//! created it (switching is `cloudcode migrate-engine`, never a side effect of what happens to be installed).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stack::StackDir;

/// The file in a stack's directory that records its engine.
pub const RECORD_FILE: &str = "engine.json";
/// The oldest Terraform with write-only arguments and ephemeral variables.
pub const MIN_TERRAFORM: Version = Version(1, 11, 0);

/// The two engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tofu,
    Terraform,
}

impl Kind {
    /// The command's name.
    pub fn command(self) -> &'static str {
        match self {
            Kind::Tofu => "tofu",
            Kind::Terraform => "terraform",
        }
    }

    /// The registry host a host-less source address (`cloudcode-dev/cloudcode`) means to this engine.
    pub fn registry_host(self) -> &'static str {
        match self {
            Kind::Tofu => "registry.opentofu.org",
            Kind::Terraform => "registry.terraform.io",
        }
    }

    pub fn other(self) -> Kind {
        match self {
            Kind::Tofu => Kind::Terraform,
            Kind::Terraform => Kind::Tofu,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.command())
    }
}

/// A `major.minor.patch` version (pre-release suffixes are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>());
        let v = Version(
            parts.next()?.ok()?,
            parts.next().unwrap_or(Ok(0)).ok()?,
            parts.next().unwrap_or(Ok(0)).ok()?,
        );
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A version constraint as Terraform and OpenTofu write it: `>= 1.11.6, != 1.11.12, < 2.0.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    text: String,
    terms: Vec<(Op, Version)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl Constraint {
    pub fn parse(text: &str) -> Option<Constraint> {
        let mut terms = Vec::new();
        for term in text.split(',') {
            let term = term.trim();
            let (op, rest) = [
                (">=", Op::Ge),
                ("<=", Op::Le),
                ("!=", Op::Ne),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("=", Op::Eq),
            ]
            .into_iter()
            .find_map(|(p, op)| term.strip_prefix(p).map(|r| (op, r)))
            .unwrap_or((Op::Eq, term));
            terms.push((op, Version::parse(rest)?));
        }
        (!terms.is_empty()).then(|| Constraint {
            text: text.trim().to_string(),
            terms,
        })
    }

    pub fn allows(&self, v: Version) -> bool {
        self.terms.iter().all(|&(op, t)| match op {
            Op::Ge => v >= t,
            Op::Gt => v > t,
            Op::Le => v <= t,
            Op::Lt => v < t,
            Op::Eq => v == t,
            Op::Ne => v != t,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The OpenTofu versions cloudcode supports, stated once: the `required_version` of
/// `modules/cloudcode/versions.tofu` (the file OpenTofu reads in place of `versions.tf`). The generated root
/// repeats it, and `tests` check every other `versions.tofu` against it.
pub fn tofu_range() -> &'static Constraint {
    static RANGE: OnceLock<Constraint> = OnceLock::new();
    RANGE.get_or_init(|| {
        let text = crate::stack::module_file("modules/cloudcode", "versions.tofu")
            .and_then(required_version)
            .and_then(Constraint::parse);
        // The module is embedded at build time and its guard is checked by a unit test: this cannot fail.
        text.unwrap_or_else(|| Constraint::parse(">= 1.11.6").expect("literal constraint"))
    })
}

/// The string value of the first `required_version = "..."` line of an HCL file.
pub fn required_version(hcl: &str) -> Option<&str> {
    hcl.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("required_version")?.trim_start();
        let rest = rest.strip_prefix('=')?.trim_start().strip_prefix('"')?;
        rest.split('"').next()
    })
}

/// One engine binary, identified by running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub bin: PathBuf,
    pub version: Version,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.version)
    }
}

impl Found {
    /// Runs `<bin> version`, which prints `OpenTofu v1.12.6` or `Terraform v1.11.4`.
    pub fn identify(bin: &Path) -> Result<Found> {
        let out = Command::new(bin)
            .arg("version")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_CLI_CONFIG_FILE")
            .output()
            .map_err(Error::io(bin))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // Warnings about the CLI configuration may come first: take the line that names the engine.
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("OpenTofu v") || l.starts_with("Terraform v"))
            .unwrap_or_else(|| text.lines().next().unwrap_or_default().trim());
        let (kind, version) = match first.split_once(' ') {
            Some(("OpenTofu", v)) => (Kind::Tofu, Version::parse(v)),
            Some(("Terraform", v)) => (Kind::Terraform, Version::parse(v)),
            _ => (Kind::Terraform, None),
        };
        let version = version.ok_or_else(|| {
            Error::input(
                format!(
                    "{} is neither OpenTofu nor Terraform (its `version` printed \"{}\")",
                    bin.display(),
                    first.escape_debug()
                ),
                format!(
                    "{} 既不是 OpenTofu 也不是 Terraform（`version` 输出 \"{}\"）",
                    bin.display(),
                    first.escape_debug()
                ),
            )
        })?;
        Ok(Found {
            kind,
            bin: bin.to_path_buf(),
            version,
        })
    }

    /// Fails with one sentence naming the supported range unless this engine may run cloudcode.
    pub fn check_supported(&self) -> Result<()> {
        let ok = match self.kind {
            Kind::Terraform => self.version >= MIN_TERRAFORM,
            Kind::Tofu => tofu_range().allows(self.version),
        };
        if ok {
            return Ok(());
        }
        Err(Error::input(
            format!(
                "{self} is not supported: cloudcode needs {} (write-only secrets; known-bad releases excluded)",
                supported_sentence()
            ),
            format!(
                "不支持 {self}：cloudcode 需要 {}（只写密钥；已排除有缺陷的版本）",
                supported_sentence()
            ),
        ))
    }
}

/// "OpenTofu >= 1.11.6, != 1.11.12, != 1.12.4 or Terraform >= 1.11.0".
pub fn supported_sentence() -> String {
    format!(
        "OpenTofu {} or Terraform >= {MIN_TERRAFORM}",
        tofu_range().text()
    )
}

/// The engine asked for on the command line (`--engine`, `CLOUDCODE_ENGINE`), set once by the dispatcher.
static REQUESTED: OnceLock<Option<Kind>> = OnceLock::new();

pub fn set_requested(kind: Option<Kind>) {
    let _ = REQUESTED.set(kind);
}

fn requested() -> Option<Kind> {
    REQUESTED.get().copied().flatten()
}

/// Finds an engine binary: `$CLOUDCODE_TF_BIN` (either engine), else `kind` on PATH, else (no kind) `tofu`
/// and then `terraform` on PATH.
pub fn find(kind: Option<Kind>) -> Result<Found> {
    if let Some(p) = std::env::var_os("CLOUDCODE_TF_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(Error::NoEngine);
        }
        let found = Found::identify(&p)?;
        if let Some(k) = kind.filter(|k| *k != found.kind) {
            return Err(Error::input(
                format!("CLOUDCODE_TF_BIN is {found}, but {k} is needed here"),
                format!("CLOUDCODE_TF_BIN 指向 {found}，但这里需要 {k}"),
            ));
        }
        return Ok(found);
    }
    let kinds = match kind {
        Some(k) => vec![k],
        None => vec![Kind::Tofu, Kind::Terraform],
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    for k in kinds {
        if let Some(bin) = std::env::split_paths(&path)
            .map(|d| d.join(k.command()))
            .find(|c| c.is_file())
        {
            return Found::identify(&bin);
        }
    }
    Err(match kind {
        Some(k) => Error::input(
            format!("{k} was not found on PATH (install it, or set CLOUDCODE_TF_BIN)"),
            format!("在 PATH 中找不到 {k}（请安装，或设置 CLOUDCODE_TF_BIN）"),
        ),
        None => Error::NoEngine,
    })
}

/// What a stack's directory records about its engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub engine: Kind,
    /// The version that created the stack (or first ran it with this engine, after `migrate-engine`).
    pub created_with: String,
    /// The version that last ran it.
    pub last_used: String,
}

pub fn read_record(stack: &StackDir) -> Result<Option<Record>> {
    let p = stack.path.join(RECORD_FILE);
    match std::fs::read_to_string(&p) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::io(&p)(std::io::Error::other(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&p)(e)),
    }
}

/// Records `found` as the stack's engine: keeps the creating version while the engine stays the same.
pub fn write_record(stack: &StackDir, found: &Found) -> Result<()> {
    let p = stack.path.join(RECORD_FILE);
    let previous = read_record(stack).ok().flatten();
    let version = found.version.to_string();
    let rec = Record {
        engine: found.kind,
        created_with: previous
            .as_ref()
            .filter(|r| r.engine == found.kind)
            .map_or_else(|| version.clone(), |r| r.created_with.clone()),
        last_used: version,
    };
    if previous.as_ref() == Some(&rec) {
        return Ok(());
    }
    let text =
        serde_json::to_string_pretty(&rec).map_err(|e| Error::io(&p)(std::io::Error::other(e)))?;
    let tmp = stack.path.join(format!("{RECORD_FILE}.tmp"));
    std::fs::write(&tmp, format!("{text}\n")).map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, &p).map_err(Error::io(&p))
}

/// The engine of a stack whose directory predates [`RECORD_FILE`]: the registry host in its state (each
/// engine writes provider addresses under its own host), else in its lock file; `None` when it never ran.
pub fn detect_from_files(dir: &Path) -> Option<Kind> {
    ["terraform.tfstate", ".terraform.lock.hcl"]
        .iter()
        .find_map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).ok()?;
            [Kind::Tofu, Kind::Terraform]
                .into_iter()
                .find(|k| text.contains(&format!("{}/cloudcode-dev/cloudcode", k.registry_host())))
        })
}

/// The engine that runs `stack`: the recorded one (or, for a stack that never recorded one, the one its
/// files show), else the requested one, else what is installed. Asking for the other engine than the
/// stack's is refused with a sentence that names `cloudcode migrate-engine`.
pub fn for_stack(stack: &StackDir) -> Result<Found> {
    let recorded = read_record(stack)?
        .map(|r| r.engine)
        .or_else(|| detect_from_files(&stack.path));
    let found = match (recorded, requested()) {
        (Some(r), Some(q)) if r != q => {
            return Err(Error::input(
                format!(
                    "stack \"{}\" is managed with {r}; running it with {q} could corrupt its state. To move it on purpose, run: cloudcode --name {} migrate-engine --to {q}",
                    stack.name, stack.name
                ),
                format!(
                    "栈 \"{}\" 由 {r} 管理；用 {q} 运行可能损坏其状态。如需有意迁移，请运行：cloudcode --name {} migrate-engine --to {q}",
                    stack.name, stack.name
                ),
            ))
        }
        (Some(r), _) => find(Some(r)).map_err(|_| {
            Error::input(
                format!(
                    "stack \"{}\" is managed with {r}, which was not found (install it or set CLOUDCODE_TF_BIN; to move the stack to {} instead, run: cloudcode --name {} migrate-engine --to {})",
                    stack.name, r.other(), stack.name, r.other()
                ),
                format!(
                    "栈 \"{}\" 由 {r} 管理，但找不到它（请安装或设置 CLOUDCODE_TF_BIN；如要改用 {}，请运行：cloudcode --name {} migrate-engine --to {}）",
                    stack.name, r.other(), stack.name, r.other()
                ),
            )
        })?,
        (None, q) => find(q)?,
    };
    found.check_supported()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tofu_range_comes_from_the_modules_versions_tofu() {
        let r = tofu_range();
        assert_eq!(r.text(), ">= 1.11.6, != 1.11.12, != 1.12.4");
        for ok in ["1.11.6", "1.11.14", "1.12.6", "1.13.0"] {
            assert!(r.allows(Version::parse(ok).unwrap()), "{ok}");
        }
        for bad in ["1.10.0", "1.11.5", "1.11.12", "1.12.4", "0.9.9"] {
            assert!(!r.allows(Version::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn versions_and_constraints_parse_as_the_engines_write_them() {
        assert_eq!(Version::parse("v1.12.6"), Some(Version(1, 12, 6)));
        assert_eq!(Version::parse("1.11.0-beta1"), Some(Version(1, 11, 0)));
        assert_eq!(Version::parse("1.x"), None);
        let c = Constraint::parse(">= 1.240.0, < 2.0.0").unwrap();
        assert!(
            c.allows(Version(1, 240, 0))
                && !c.allows(Version(2, 0, 0))
                && !c.allows(Version(1, 239, 9))
        );
        assert!(Constraint::parse(">= one").is_none());
        assert_eq!(
            required_version("terraform {\n  required_version = \">= 1.11\" # why\n"),
            Some(">= 1.11")
        );
    }

    #[test]
    fn an_unsupported_engine_is_refused_with_the_range() {
        let old = Found {
            kind: Kind::Tofu,
            bin: "tofu".into(),
            version: Version(1, 10, 0),
        };
        let msg = old.check_supported().unwrap_err().to_string();
        assert!(msg.starts_with("tofu 1.10.0 is not supported"), "{msg}");
        assert!(msg.contains(">= 1.11.6, != 1.11.12, != 1.12.4"), "{msg}");
        let bad_patch = Found {
            version: Version(1, 12, 4),
            ..old.clone()
        };
        assert!(bad_patch.check_supported().is_err());
        let tf = Found {
            kind: Kind::Terraform,
            version: Version(1, 11, 4),
            ..old
        };
        assert!(tf.check_supported().is_ok());
    }

    #[test]
    fn the_record_keeps_the_creating_version_until_the_engine_changes() {
        let dir = tempfile::tempdir().unwrap();
        let stack = StackDir {
            name: "s".into(),
            path: dir.path().to_path_buf(),
        };
        let found = |kind, v: &str| Found {
            kind,
            bin: "x".into(),
            version: Version::parse(v).unwrap(),
        };
        write_record(&stack, &found(Kind::Tofu, "1.11.14")).unwrap();
        write_record(&stack, &found(Kind::Tofu, "1.12.6")).unwrap();
        let r = read_record(&stack).unwrap().unwrap();
        assert_eq!(
            (r.engine, r.created_with.as_str(), r.last_used.as_str()),
            (Kind::Tofu, "1.11.14", "1.12.6")
        );
        write_record(&stack, &found(Kind::Terraform, "1.11.4")).unwrap();
        let r = read_record(&stack).unwrap().unwrap();
        assert_eq!(
            (r.engine, r.created_with.as_str()),
            (Kind::Terraform, "1.11.4")
        );
    }

    #[test]
    fn a_stack_without_a_record_is_recognised_by_its_registry_host() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect_from_files(dir.path()), None);
        std::fs::write(
            dir.path().join(".terraform.lock.hcl"),
            "provider \"registry.terraform.io/cloudcode-dev/cloudcode\" {\n}\n",
        )
        .unwrap();
        assert_eq!(detect_from_files(dir.path()), Some(Kind::Terraform));
        std::fs::write(
            dir.path().join("terraform.tfstate"),
            r#"{"resources":[{"provider":"provider[\"registry.opentofu.org/cloudcode-dev/cloudcode\"]"}]}"#,
        )
        .unwrap();
        assert_eq!(detect_from_files(dir.path()), Some(Kind::Tofu));
    }
}
