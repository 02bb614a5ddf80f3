//! `cloudcode` refuses bad input with one clear sentence and a non-zero exit, before creating anything
//! (no stack directory under CLOUDCODE_HOME); messages follow LANG. No VM, no terraform run.

use std::path::Path;
use std::process::Command;

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const PASSWORD: &str = "input-test-password-1234";

struct Outcome {
    code: i32,
    stderr: String,
}

fn cloudcode(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Outcome {
    let mut c = Command::new(CLI);
    c.args(args)
        .env("CLOUDCODE_HOME", home)
        .env("LANG", "C.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("CLOUDCODE_TF_BIN");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_refused(o: &Outcome, home: &Path, expect: &str) {
    assert_ne!(o.code, 0, "must fail: {}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one sentence, got: {}", o.stderr);
    assert!(
        lines[0].contains(expect),
        "expected {expect:?} in {:?}",
        lines[0]
    );
    assert!(
        !o.stderr.contains(PASSWORD),
        "the password leaked: {}",
        o.stderr
    );
    let created: Vec<_> = std::fs::read_dir(home).unwrap().collect();
    assert!(created.is_empty(), "nothing may be created: {created:?}");
}

fn host_args<'a>(key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "deploy",
        "--host",
        "root@127.0.0.1",
        "--ssh-key",
        key,
        "--yes",
    ];
    v.extend_from_slice(extra);
    if !extra.contains(&"--admin-email") {
        v.extend_from_slice(&["--admin-email", "a@example.com"]);
    }
    v
}

#[test]
fn bad_input_is_one_sentence_and_creates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let key_file = tempfile::NamedTempFile::new().unwrap();
    let key = key_file.path().to_str().unwrap();
    let pw = [("CLOUDCODE_ADMIN_PASSWORD", PASSWORD)];

    let o = cloudcode(
        home.path(),
        &pw,
        &host_args(key, &["--domain", "Not_A.Domain"]),
    );
    assert_refused(&o, home.path(), "is not an RFC 1123 host name");

    let o = cloudcode(
        home.path(),
        &[("CLOUDCODE_ADMIN_PASSWORD", "short-pw")],
        &host_args(key, &[]),
    );
    assert_refused(&o, home.path(), "at least 12 characters");

    let o = cloudcode(home.path(), &[], &host_args(key, &[]));
    assert_refused(&o, home.path(), "admin password is required");

    let o = cloudcode(
        home.path(),
        &pw,
        &host_args(key, &["--admin-email", "not-an-email"]),
    );
    assert_refused(&o, home.path(), "is not an e-mail address");

    let o = cloudcode(
        home.path(),
        &pw,
        &["deploy", "--region", "mars-north-1", "--yes"],
    );
    assert_refused(&o, home.path(), "unknown region \"mars-north-1\"");

    let o = cloudcode(
        home.path(),
        &pw,
        &["deploy", "--region", "cn-hangzhou", "--yes"],
    );
    assert_refused(&o, home.path(), "missing Alibaba Cloud credentials");

    let o = cloudcode(
        home.path(),
        &[("PATH", "/nonexistent"), pw[0]],
        &host_args(key, &[]),
    );
    assert_refused(&o, home.path(), "neither tofu nor terraform was found");

    let o = cloudcode(
        home.path(),
        &[("CLOUDCODE_TF_BIN", "/nonexistent/tofu"), pw[0]],
        &host_args(key, &[]),
    );
    assert_refused(&o, home.path(), "neither tofu nor terraform was found");

    let o = cloudcode(home.path(), &[], &["status"]);
    assert_refused(&o, home.path(), "stack \"default\" does not exist");
    let o = cloudcode(home.path(), &[pw[0]], &["passwd", "--yes"]);
    assert_refused(&o, home.path(), "stack \"default\" does not exist");

    let o = cloudcode(home.path(), &[pw[0]], &["--engine", "opentofu", "status"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("invalid value 'opentofu'"),
        "{}",
        o.stderr
    );
}

#[test]
fn an_unsupported_opentofu_is_refused_before_anything_is_written() {
    // The real OpenTofu 1.10.0 where it was built (scripts/deps/10-opentofu.sh), else a stand-in that
    // answers `version` like it: the CLI reads the engine's own `version` output either way.
    let home = tempfile::tempdir().unwrap();
    let tools = tempfile::tempdir().unwrap();
    let key = tools.path().join("id_ed25519");
    std::fs::write(&key, "").unwrap();
    let tofu = match cloudcode_tests::engine::cached_tofu(cloudcode_tests::engine::TOFU_UNSUPPORTED)
    {
        Some(bin) => bin,
        None => {
            let fake = tools.path().join("tofu");
            std::fs::write(
                &fake,
                "#!/bin/sh\necho 'OpenTofu v1.10.0'\necho 'on linux_amd64'\n",
            )
            .unwrap();
            let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(&fake, exec).unwrap();
            fake
        }
    };
    let o = cloudcode(
        home.path(),
        &[
            ("CLOUDCODE_TF_BIN", tofu.to_str().unwrap()),
            ("CLOUDCODE_ADMIN_PASSWORD", PASSWORD),
        ],
        &host_args(key.to_str().unwrap(), &[]),
    );
    assert_refused(
        &o,
        home.path(),
        "tofu 1.10.0 is not supported: cloudcode needs OpenTofu >= 1.11.6, != 1.11.12, != 1.12.4 or Terraform >= 1.11.0",
    );
}

#[test]
fn messages_are_chinese_when_lang_is_zh() {
    let home = tempfile::tempdir().unwrap();
    let o = cloudcode(
        home.path(),
        &[("LANG", "zh_CN.UTF-8"), ("ALIBABA_CLOUD_ACCESS_KEY_ID", "")],
        &["deploy", "--region", "mars-north-1", "--yes"],
    );
    assert_refused(&o, home.path(), "未知地域 \"mars-north-1\"");
}

#[test]
fn version_names_commit_and_build_date() {
    let out = Command::new(CLI).arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!("cloudcode {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains(", built "), "{text}");
}

#[test]
fn completions_cover_every_command() {
    let out = Command::new(CLI)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for c in [
        "deploy",
        "status",
        "logs",
        "render",
        "destroy",
        "version",
        "passwd",
        "migrate-engine",
    ] {
        assert!(text.contains(c), "{c} missing");
    }
}

#[test]
fn otc_prints_the_code_from_each_notifier_file_the_real_authelia_wrote() {
    // tests/fixtures/authelia/: the filesystem notifier's file from Authelia 4.38.19, 4.39.15 (the old pin) and
    // 4.39.20 (the pin), each after two elevation requests (the file holds only the last message).
    let fixtures = cloudcode_tests::terraform::repo_root().join("tests/fixtures/authelia");
    for (version, code) in [
        ("4.38.19", "MDKQNHFW"),
        ("4.39.15", "L4TCMYDK"),
        ("4.39.20", "GEQGXGXK"),
    ] {
        let file = fixtures.join(format!("notification-{version}.txt"));
        let out = Command::new(CLI)
            .args(["otc", "--file", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Authelia {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{code}\n"),
            "Authelia {version}"
        );
    }

    // No code yet: one sentence, non-zero.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notification.txt");
    std::fs::write(&file, "").unwrap();
    let o = cloudcode(dir.path(), &[], &["otc", "--file", file.to_str().unwrap()]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("no one-time code yet"), "{}", o.stderr);
}
