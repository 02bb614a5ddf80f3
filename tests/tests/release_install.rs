//! The release path end to end on the host platform: `scripts/release/package.sh` + `checksums.sh` build the
//! release layout from the provider binary cargo just built, `install.sh` installs it from that local directory
//! into a temporary HOME, and the real `terraform init` and `tofu init` find the provider there (the implied
//! mirror `~/.terraform.d/plugins` both engines search, no CLI configuration; the provider is laid out under each
//! engine's registry host). A tampered archive is refused and nothing is installed.
//! The `cloudcode` CLI goes through the same path: packaged, checksummed, installed into `~/.local/bin`, and
//! `cloudcode version` runs from there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cloudcode_tests::engine::{self, Engine};
use cloudcode_tests::provider_bin;
use cloudcode_tests::release::{build_release, host_platform, install, run};
use cloudcode_tests::terraform::{NAMESPACE, REGISTRY_HOSTS, VERSION};

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");

/// Where install.sh puts the provider for the engine whose registry host is `host`.
fn installed_provider(home: &Path, host: &str) -> PathBuf {
    let (os, arch) = host_platform();
    home.join(format!(
        ".terraform.d/plugins/{host}/{NAMESPACE}/cloudcode/{VERSION}/{os}_{arch}/terraform-provider-cloudcode_v{VERSION}"
    ))
}

/// `<engine> <args>` in `dir` with only `home` to find providers in.
fn tf(e: &Engine, dir: &Path, home: &Path, args: &[&str]) -> Output {
    run(e
        .command()
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("TF_CLI_CONFIG_FILE")
        .env_remove("TERRAFORM_CONFIG")
        .env_remove("TF_PLUGIN_CACHE_DIR")
        .env_remove("XDG_DATA_HOME")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0"))
}

#[test]
fn release_layout_has_registry_artifacts_and_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let release = build_release(tmp.path(), provider_bin!(), Path::new(CLI));
    let (os, arch) = host_platform();
    let prefix = format!("terraform-provider-cloudcode_{VERSION}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(release.join(format!("{prefix}_manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["version"], 1);
    assert_eq!(
        manifest["metadata"]["protocol_versions"],
        serde_json::json!(["6.0"])
    );
    let sums = std::fs::read_to_string(release.join(format!("{prefix}_SHA256SUMS"))).unwrap();
    let listed: Vec<&str> = sums
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        listed,
        vec![
            format!("{prefix}_{os}_{arch}.zip"),
            format!("{prefix}_manifest.json")
        ]
    );
    let cli_sums =
        std::fs::read_to_string(release.join(format!("cloudcode_{VERSION}_SHA256SUMS"))).unwrap();
    assert!(
        cli_sums.contains(&format!("cloudcode_{VERSION}_{os}_{arch}.tar.gz")),
        "{cli_sums}"
    );
    // `sha256sum -c` agrees with every line.
    let out = run(Command::new("sha256sum")
        .args(["-c", &format!("{prefix}_SHA256SUMS")])
        .current_dir(&release));
    assert!(out.status.success());
}

#[test]
fn installed_provider_is_found_by_either_engines_init_without_cli_config() {
    let tmp = tempfile::tempdir().unwrap();
    let release = build_release(tmp.path(), provider_bin!(), Path::new(CLI));
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let out = install(&release, &home);
    assert!(out.status.success(), "install.sh failed");
    for host in REGISTRY_HOSTS {
        assert_eq!(
            std::fs::read(installed_provider(&home, host)).unwrap(),
            std::fs::read(provider_bin!()).unwrap(),
            "the provider installed under {host} is the binary that was packaged"
        );
    }

    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    cloudcode = {{\n      source  = \"{NAMESPACE}/cloudcode\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n\noutput \"domain\" {{\n  value = provider::cloudcode::fallback_domain(\"47.1.2.3\")\n}}\n"
        ),
    )
    .unwrap();
    engine::each(&engine::smoke(), |e| {
        let _ = std::fs::remove_dir_all(config.join(".terraform"));
        let _ = std::fs::remove_file(config.join(".terraform.lock.hcl"));
        let init = tf(e, &config, &home, &["init", "-no-color"]);
        assert!(
            init.status.success(),
            "{e} init did not find the installed provider"
        );
        let stdout = String::from_utf8_lossy(&init.stdout);
        assert!(
            stdout.contains(&format!("Installing {NAMESPACE}/cloudcode v{VERSION}")),
            "{stdout}"
        );
        let lock = std::fs::read_to_string(config.join(".terraform.lock.hcl")).unwrap();
        assert!(
            lock.contains(&format!(
                "provider \"{}\"",
                e.provider_addr("cloudcode-dev/cloudcode")
            )),
            "{e} locks the provider under its own host:\n{lock}"
        );
        // The installed binary really serves: validate calls into it.
        let validate = tf(e, &config, &home, &["validate", "-no-color"]);
        assert!(validate.status.success(), "{e} validate");
    });

    // The CLI: installed into ~/.local/bin, executable, the packaged bytes, and it runs.
    let cli = home.join(".local/bin/cloudcode");
    assert_eq!(std::fs::read(&cli).unwrap(), std::fs::read(CLI).unwrap());
    let version = run(Command::new(&cli).arg("version").env("HOME", &home));
    assert!(version.status.success());
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(text.contains(VERSION), "cloudcode version: {text}");
    assert!(
        text.contains("commit"),
        "cloudcode version names the commit: {text}"
    );
}

#[test]
fn tampered_provider_archive_is_refused_and_nothing_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let release = build_release(tmp.path(), provider_bin!(), Path::new(CLI));
    let (os, arch) = host_platform();
    let zip = release.join(format!(
        "terraform-provider-cloudcode_{VERSION}_{os}_{arch}.zip"
    ));
    let mut bytes = std::fs::read(&zip).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&zip, bytes).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let out = install(&release, &home);
    assert!(
        !out.status.success(),
        "install.sh accepted a tampered archive"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum mismatch for terraform-provider-cloudcode_"),
        "{stderr}"
    );
    for host in REGISTRY_HOSTS {
        assert!(!installed_provider(&home, host).exists());
    }
    assert!(!home.join(".terraform.d").exists());
}
