//! Build-time metadata for `cloudcode version`: commit and build date from the release workflow's env
//! (`CLOUDCODE_COMMIT`, `CLOUDCODE_BUILD_DATE`), else from git, else "unknown". Rebuilt when modules change.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CLOUDCODE_COMMIT");
    println!("cargo:rerun-if-env-changed=CLOUDCODE_BUILD_DATE");
    println!("cargo:rerun-if-changed=../modules");
    let commit = std::env::var("CLOUDCODE_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // The commit time, not the wall clock: reproducible builds.
    let date = std::env::var("CLOUDCODE_BUILD_DATE")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CLOUDCODE_COMMIT={commit}");
    println!("cargo:rustc-env=CLOUDCODE_BUILD_DATE={date}");
}
