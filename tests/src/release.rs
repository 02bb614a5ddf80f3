//! The release path, shared by the tests that install cloudcode as a user does: `scripts/release/package.sh` +
//! `checksums.sh` build the release layout for the host platform, and `install.sh --release-dir` installs it
//! into a HOME.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::terraform::{repo_root, VERSION};

/// The host platform in release naming: (`linux`|`darwin`, `amd64`|`arm64`).
pub fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    eprintln!(
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the release layout for the host platform into `dir/release` with the shared release scripts, from
/// the `provider` and `cli` binaries cargo built.
pub fn build_release(dir: &Path, provider: &Path, cli: &Path) -> PathBuf {
    let release = dir.join("release");
    let (os, arch) = host_platform();
    let scripts = repo_root().join("scripts/release");
    let out = run(Command::new("bash")
        .arg(scripts.join("package.sh"))
        .args([
            "--version",
            VERSION,
            "--os",
            os,
            "--arch",
            arch,
            "--provider",
        ])
        .arg(provider)
        .arg("--cli")
        .arg(cli)
        .arg("--out")
        .arg(&release));
    assert!(out.status.success(), "package.sh failed");
    let out = run(Command::new("bash")
        .arg(scripts.join("checksums.sh"))
        .args(["--version", VERSION, "--dir"])
        .arg(&release));
    assert!(out.status.success(), "checksums.sh failed");
    release
}

/// Runs `install.sh --release-dir` with HOME set to `home`.
pub fn install(release: &Path, home: &Path) -> Output {
    run(Command::new("sh")
        .arg(repo_root().join("install.sh"))
        .arg("--release-dir")
        .arg(release)
        .env("HOME", home)
        .env_remove("CLOUDCODE_VERSION")
        .env_remove("CLOUDCODE_BIN_DIR")
        .env_remove("CLOUDCODE_PLUGIN_DIR"))
}
