//! The `cloudcode` CLI end to end on the test VM (real sshd, dockerd, Caddy, OpenCode, ttyd; real terraform and
//! the real provider installed as the CLI's filesystem mirror): `deploy --host … --yes`, `status --json`,
//! `logs`, `render`, `destroy --force` — secrets only ever travel as environment variables.

use std::path::Path;
use std::process::{Command, Output};

use cloudcode_tests::provider_bin;
use cloudcode_tests::vm::{TestVm, VmOptions};

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const PASSWORD: &str = "cli-test-password-7719-otter";
const API_KEY: &str = "sk-test-cliapikey-5a4b3c2d1e0f9988";
const DOMAIN: &str = "cli.cloudcode.test";

struct Env {
    home: tempfile::TempDir,
    provider_dir: tempfile::TempDir,
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// [`Env::run`] with more environment variables.
    fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let out = Command::new(CLI)
            .args(args)
            .envs(extra.iter().copied())
            .env("CLOUDCODE_HOME", self.home.path())
            .env("CLOUDCODE_PROVIDER_DIR", self.provider_dir.path())
            .env("CLOUDCODE_ADMIN_PASSWORD", PASSWORD)
            .env("CLOUDCODE_LLM_API_KEY", API_KEY)
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap();
        for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(text);
            assert!(!text.contains(PASSWORD), "password in {what} of {args:?}");
            assert!(!text.contains(API_KEY), "API key in {what} of {args:?}");
        }
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cloudcode {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn grep_tree(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(grep_tree(&p, needle));
        } else if std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn deploy_host_status_logs_render_destroy() {
    let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
    let env = Env {
        home: tempfile::tempdir().unwrap(),
        provider_dir: tempfile::tempdir().unwrap(),
    };
    std::fs::copy(
        provider_bin!(),
        env.provider_dir.path().join("terraform-provider-cloudcode"),
    )
    .unwrap();
    let devbox = vm.image("devbox").unwrap().clone();
    let args = cloudcode_tests::stack_fixture::cli_deploy_args(&vm, DOMAIN);
    let mut deploy = vec!["--name", "vmbox"];
    deploy.extend(args.iter().map(String::as_str));

    // deploy --yes: the URL, the user and the next step.
    let out = env.ok(&deploy);
    assert!(out.contains(&format!("https://{DOMAIN}/")), "{out}");
    assert!(out.contains("User: admin"), "{out}");
    let stack = env.home.path().join("vmbox");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&stack).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the stack directory is private");
    // The provider's sub-steps arrived through CLOUDCODE_PROGRESS_FILE.
    let progress = std::fs::read_to_string(stack.join("progress.jsonl")).unwrap();
    for step in ["connect", "install", "upload", "up", "health"] {
        assert!(
            progress.contains(&format!(r#""step":"{step}","status":"done""#)),
            "{step} missing in {progress}"
        );
    }
    // No secret in any file of the working directory (state, vars, plan leftovers).
    for secret in [PASSWORD, API_KEY] {
        assert!(
            grep_tree(&stack, secret).is_empty(),
            "a secret is stored in the stack directory"
        );
    }
    assert_eq!(
        vm.exec_in_vm_ok(
            "docker ps --filter label=com.docker.compose.project=cloudcode -q | wc -l"
        )
        .unwrap()
        .trim(),
        "3"
    );

    // The same deploy again, secrets from the environment as CI passes them: no version bumped, no container
    // recreated; the keyed fingerprints that tell it are private and hold no secret.
    let ids = || {
        vm.exec_in_vm_ok(
            "docker ps --no-trunc --filter label=com.docker.compose.project=cloudcode -q | sort",
        )
        .unwrap()
    };
    let before = ids();
    env.ok(&deploy);
    assert_eq!(
        ids(),
        before,
        "a re-deploy with identical inputs recreated a container"
    );
    let vars: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(stack.join("terraform.tfvars.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(vars["stack"]["admin_password_version"], 1, "{vars:#}");
    assert_eq!(vars["stack"]["llm_api_key_version"], 1, "{vars:#}");
    let fingerprints = stack.join("secret-fingerprints.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&fingerprints).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the fingerprints are private");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fingerprints).unwrap()).unwrap();
    assert_eq!(
        stored["secrets"].as_object().map(|m| m.len()),
        Some(2),
        "{stored:#}"
    );

    // status --json reads the host through the provider.
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["--name", "vmbox", "status", "--json"])).unwrap();
    assert_eq!(status["url"], format!("https://{DOMAIN}/"), "{status:#}");
    assert_eq!(status["services"]["devbox"], "running", "{status:#}");
    assert_eq!(status["services"]["caddy"], "running", "{status:#}");
    assert_eq!(status["host"], vm.ssh_host);

    // logs over the SSH transport (host key pinned from state).
    let logs = env.ok(&["--name", "vmbox", "logs", "caddy", "--tail", "50"]);
    assert!(
        logs.contains("caddy"),
        "caddy's log lines are prefixed with the service: {logs}"
    );
    let bad = env.run(&["--name", "vmbox", "logs", "postgres"]);
    assert!(!bad.status.success());

    // Your own app from a cloudcode-app.toml: added (its secret env from the environment, never on disk), served
    // on its own name without a login, listed, its logs read, removed.
    let app_dir = tempfile::tempdir().unwrap();
    let toml = app_dir.path().join("cloudcode-app.toml");
    std::fs::write(
        &toml,
        format!(
            "name = \"hello\"\nimage = \"{}\"\nport = 8080\nauth = \"public\"\n\
             command = [\"caddy\", \"respond\", \"--listen\", \":8080\", \"hello from the CLI\"]\n\
             secret_env = [\"APP_TOKEN\"]\n",
            vm.image("caddy").unwrap().image
        ),
    )
    .unwrap();
    let token = "app-token-3391-heron";
    let added = env.run_with(
        &[
            "--name",
            "vmbox",
            "app",
            "add",
            toml.to_str().unwrap(),
            "--yes",
        ],
        &[("APP_TOKEN", token)],
    );
    let added_out = format!(
        "{}{}",
        String::from_utf8_lossy(&added.stdout),
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(added.status.success(), "app add: {added_out}");
    assert!(
        added_out.contains(&format!("https://hello.{DOMAIN}/")),
        "{added_out}"
    );
    assert!(!added_out.contains(token), "the secret was printed");
    assert!(
        grep_tree(env.home.path(), token).is_empty(),
        "the secret is on disk"
    );
    let hello = Command::new("curl")
        .args(["-sk", "--max-time", "20", "--resolve"])
        .arg(format!("hello.{DOMAIN}:443:{}", vm.ssh_host))
        .arg(format!("https://hello.{DOMAIN}/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello from the CLI");
    let env_seen = vm
        .exec_in_vm_ok(
            "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' \
             $(docker ps -q --filter label=com.docker.compose.service=app-hello)",
        )
        .unwrap();
    assert!(
        env_seen.contains(&format!("APP_TOKEN={token}")),
        "{env_seen}"
    );
    let list = env.ok(&["--name", "vmbox", "app", "list"]);
    assert!(
        list.contains("hello") && list.contains(&format!("https://hello.{DOMAIN}/")),
        "{list}"
    );
    let logs = env.ok(&["--name", "vmbox", "app", "logs", "hello", "--tail", "20"]);
    assert!(logs.contains("app-hello"), "the app's log lines: {logs}");
    env.ok(&["--name", "vmbox", "app", "remove", "hello"]);
    let gone = vm
        .exec_in_vm_ok("docker ps -aq --filter label=com.docker.compose.service=app-hello | wc -l; ls /opt/cloudcode/secrets")
        .unwrap();
    assert!(
        gone.trim_start().starts_with('0') && !gone.contains("app-hello.env"),
        "{gone}"
    );

    // exec on the host: output streamed back, the remote exit status becomes ours.
    let out = env.run(&[
        "--name",
        "vmbox",
        "exec",
        "--",
        "sh",
        "-c",
        "echo exec-$((6*7)); exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("exec-42"));
    // exec in a service's container.
    let version = env.ok(&[
        "--name",
        "vmbox",
        "exec",
        "--service",
        "caddy",
        "--",
        "caddy",
        "version",
    ]);
    assert!(
        version.trim_start().starts_with('v'),
        "caddy version: {version}"
    );

    // logs -f streams: a line arrives while the command still runs; Ctrl-C ends it.
    let mut follow = Command::new(CLI)
        .args(["--name", "vmbox", "logs", "caddy", "--tail", "3", "-f"])
        .env("CLOUDCODE_HOME", env.home.path())
        .env("CLOUDCODE_PROVIDER_DIR", env.provider_dir.path())
        .env("LANG", "C.UTF-8")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    assert!(first.contains("caddy"), "first streamed line: {first:?}");
    assert!(
        follow.try_wait().unwrap().is_none(),
        "logs -f keeps running"
    );
    // SAFETY: SIGINT to the child we spawned.
    unsafe { libc::kill(follow.id() as i32, libc::SIGINT) };
    let status = follow.wait().unwrap();
    assert_eq!(status.code(), Some(130));

    // ssh: an interactive login shell on a pseudo-terminal.
    let steps = serde_json::json!([["", "echo pty-$((6*7)); tty; exit 7\r"], ["pty-42", ""]]);
    let out = Command::new("python3")
        .arg("-c")
        .arg(cloudcode_tests::pty::DRIVER)
        .arg(steps.to_string())
        .args([CLI, "--name", "vmbox", "ssh"])
        .env("CLOUDCODE_HOME", env.home.path())
        .env("CLOUDCODE_PROVIDER_DIR", env.provider_dir.path())
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{transcript}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        transcript.contains("/dev/pts/"),
        "a remote pseudo-terminal: {transcript}"
    );
    assert!(
        transcript.contains("EXIT=7"),
        "the shell's exit status: {transcript}"
    );

    // render: every file, secrets masked.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().display().to_string();
    env.ok(&["--name", "vmbox", "render", "--out", &out]);
    let compose = std::fs::read_to_string(out_dir.path().join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains(&devbox.image),
        "rendered with the stack's settings"
    );
    assert!(
        !grep_tree(out_dir.path(), "MASKED-SECRET-NOT-DEPLOYED").is_empty(),
        "secret files are masked"
    );
    assert!(grep_tree(out_dir.path(), API_KEY).is_empty());

    // destroy --force: containers gone, working directory gone.
    env.ok(&["--name", "vmbox", "destroy", "--force"]);
    assert!(!stack.exists(), "the stack directory is removed");
    assert_eq!(
        vm.exec_in_vm_ok(
            "docker ps -a --filter label=com.docker.compose.project=cloudcode -q | wc -l"
        )
        .unwrap()
        .trim(),
        "0"
    );
}
