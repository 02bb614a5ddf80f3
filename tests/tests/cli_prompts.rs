//! `cloudcode deploy` answered interactively in a pseudo-terminal (driven by Python's `pty` module): every
//! question is asked with its default, the password twice (hidden), then the plan summary and the
//! confirmation; answering "n" stops before apply with nothing deployed. Real terraform and provider plan
//! against a closed loopback port (planning does not connect), so no VM is needed.

use std::process::Command;

use cloudcode_tests::provider_bin;

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const PASSWORD: &str = "pty-test-password-4821";

#[test]
fn interactive_deploy_asks_every_question_and_stops_when_not_confirmed() {
    let home = tempfile::tempdir().unwrap();
    let providers = tempfile::tempdir().unwrap();
    std::fs::copy(
        provider_bin!(),
        providers.path().join("terraform-provider-cloudcode"),
    )
    .unwrap();
    let key = home.path().join("id_ed25519");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let steps = serde_json::json!([
        ["Domain (empty: <ip>.sslip.io)", "\r"],
        ["Admin user", "\r"],
        ["Admin e-mail", "owner@example.com\r"],
        ["Admin password (12+ characters)", format!("{PASSWORD}\r")],
        ["Repeat it", format!("{PASSWORD}\r")],
        ["LLM provider", "anthropic\r"],
        ["LLM API key (empty: none)", "\r"],
        ["Plan: 1 to create", ""],
        ["Apply these changes?", "n"],
    ]);
    let out = Command::new("python3")
        .arg("-c")
        .arg(cloudcode_tests::pty::DRIVER)
        .arg(steps.to_string())
        .args([
            CLI,
            "--name",
            "pty",
            "deploy",
            "--host",
            "root@127.0.0.1:9",
            "--ssh-key",
        ])
        .arg(&key)
        .env("CLOUDCODE_HOME", home.path())
        .env("CLOUDCODE_PROVIDER_DIR", providers.path())
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm")
        .env_remove("CLOUDCODE_ADMIN_PASSWORD")
        .env_remove("CLOUDCODE_LLM_API_KEY")
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "driver failed: {}\n{transcript}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!transcript.contains(PASSWORD), "the password was echoed");
    assert!(
        transcript.contains("cancelled; nothing was changed"),
        "{transcript}"
    );
    assert!(transcript.contains("EXIT=1"), "{transcript}");
    // The answers were recorded (defaults included) and nothing was deployed.
    let stack = home.path().join("pty");
    let vars: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.join("terraform.tfvars.json")).unwrap())
            .unwrap();
    assert_eq!(vars["stack"]["admin_username"], "admin");
    assert_eq!(vars["stack"]["admin_email"], "owner@example.com");
    assert_eq!(vars["stack"]["llm_provider"], "anthropic");
    assert_eq!(vars["stack"]["domain"], "");
    assert!(
        !stack.join("terraform.tfstate").exists(),
        "nothing was applied"
    );
    assert!(
        !stack.join("cloudcode.tfplan").exists(),
        "the saved plan (secrets) is removed"
    );
}
