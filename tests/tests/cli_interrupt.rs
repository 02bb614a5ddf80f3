//! Ctrl-C during `cloudcode deploy`: the CLI forwards one SIGINT to terraform, waits for it, exits 130 with one
//! sentence, and the stack's state is never half-written; meanwhile the stack's lock refuses a second command.
//! The target is a closed port on loopback, so the provider is still retrying its SSH connection when the
//! interrupt arrives (real terraform, real provider; no VM needed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloudcode_tests::provider_bin;

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");

fn cli(home: &Path, providers: &Path) -> Command {
    let mut c = Command::new(CLI);
    c.env("CLOUDCODE_HOME", home)
        .env("CLOUDCODE_PROVIDER_DIR", providers)
        .env("CLOUDCODE_ADMIN_PASSWORD", "interrupt-test-password-1")
        .env("LANG", "C.UTF-8");
    c
}

#[test]
fn ctrl_c_during_deploy_stops_terraform_cleanly_and_the_lock_holds_meanwhile() {
    let home = tempfile::tempdir().unwrap();
    let providers = tempfile::tempdir().unwrap();
    std::fs::copy(
        provider_bin!(),
        providers.path().join("terraform-provider-cloudcode"),
    )
    .unwrap();
    let key = home.path().join("id_ed25519");
    let kg = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(kg.success());
    // Port 9 on loopback: nothing listens, every SSH attempt is refused and retried.
    let mut deploy = cli(home.path(), providers.path())
        .args([
            "--name",
            "intr",
            "deploy",
            "--host",
            "root@127.0.0.1:9",
            "--ssh-key",
        ])
        .arg(&key)
        .args([
            "--domain",
            "intr.cloudcode.test",
            "--admin-email",
            "a@example.com",
            "--yes",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stack = home.path().join("intr");
    let progress = stack.join("progress.jsonl");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&progress).unwrap_or_default();
        if text.contains(r#""step":"connect","status":"start""#) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the provider never started connecting"
        );
        assert!(deploy.try_wait().unwrap().is_none(), "deploy ended early");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The lock: a second command on the same stack is refused at once.
    let second = cli(home.path(), providers.path())
        .args(["--name", "intr", "status"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another cloudcode command is running on stack \"intr\""),
        "{err}"
    );

    // Positive control for the check below: terraform is running with this stack's progress file.
    let marker = format!("CLOUDCODE_PROGRESS_FILE={}", progress.display());
    assert!(
        !processes_with_env(&marker).is_empty(),
        "terraform is running"
    );

    // Ctrl-C: the terminal's SIGINT goes to the CLI (terraform runs in its own process group).
    let t = Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", &deploy.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = deploy.wait_with_output().unwrap();
    eprintln!("stopped {:?} after the interrupt", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "terraform did not stop promptly"
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        ["terraform ", "tofu "]
            .iter()
            .any(|e| err.contains(&format!("interrupted; {e}")))
            && err.contains(" was stopped cleanly"),
        "{err}"
    );
    // Terraform is gone and the state is a complete document (or absent), never partial.
    // Terraform and the provider carry CLOUDCODE_PROGRESS_FILE=<this stack>/progress.jsonl in their environment.
    let survivors = processes_with_env(&marker);
    assert!(
        survivors.is_empty(),
        "terraform/provider outlived the CLI: {survivors:?}"
    );
    let state = stack.join("terraform.tfstate");
    if state.exists() {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert!(v["version"].is_number());
    }
    // The lock is released with the process: it can be taken again.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(stack.join(".cloudcode.lock"))
        .unwrap();
    lock.try_lock()
        .expect("the stack lock is free after the CLI exited");
}

/// PIDs whose environment contains the exact `KEY=value` entry.
fn processes_with_env(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
                .unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
