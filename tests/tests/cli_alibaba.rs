//! The `cloudcode` CLI in Alibaba Cloud mode, where no cloud is reachable: the working directories that
//! `deploy`, `suspend`, `resume` and `destroy` generate (through the same functions the commands run before
//! Terraform) validate against the real alicloud provider (1.240.0) and our provider, and
//! `terraform test` over the generated root with `mock_provider "alicloud"` plans what each command means:
//! create, Stopped with StopCharging, Running, and `snapshot_on_destroy` as asked with the backup depending on
//! the stack. `import-legacy` (the real binary) turns a Go-tool state file into import blocks that validate.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use clap::Parser;
use cloudcode_cli::cli::{Cli, Command as CliCommand, DeployArgs};
use cloudcode_cli::commands::{deploy, destroy, power};
use cloudcode_cli::stack::VARS_FILE;
use cloudcode_tests::engine::{self, Engine};
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{module_mock_providers, Workdir};
use serde_json::Value as Json;

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const PASSWORD: &str = "alibaba-mode-password-1234";
const API_KEY: &str = "sk-alibaba-mode-test-key";
const ACCESS_SECRET: &str = "alibaba-mode-access-secret";

/// The commands' functions read CLOUDCODE_HOME and the credentials from this process's environment.
static ENV: Mutex<()> = Mutex::new(());

fn deploy_args(args: &[&str]) -> DeployArgs {
    let mut argv = vec!["cloudcode", "--name", "work", "deploy"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).unwrap().command {
        CliCommand::Deploy(a) => a,
        other => panic!("parsed {other:?}"),
    }
}

/// A copy of the stack's working directory as the command left it.
fn snapshot(stack: &Path, into: &Path) {
    let status = Command::new("cp")
        .args(["-a", &format!("{}/.", stack.display())])
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success());
}

fn vars(dir: &Path) -> Json {
    serde_json::from_str::<Json>(&std::fs::read_to_string(dir.join(VARS_FILE)).unwrap()).unwrap()
        ["stack"]
        .clone()
}

/// A workdir on `e` holding both providers with `dir` copied in as `sub`, initialised.
fn workdir_with(e: &Engine, dirs: &[(&Path, &str)]) -> Workdir {
    let wd = Workdir::with_alicloud(e, provider_bin!()).unwrap();
    for (dir, sub) in dirs {
        wd.copy_tree(dir, sub).unwrap();
        wd.init_in(sub).unwrap();
    }
    wd
}

fn assert_valid(wd: &Workdir, sub: &str) {
    let run = wd.tf_in(sub, &["validate", "-json", "-no-color"]).unwrap();
    let v = run.json().unwrap();
    assert_eq!(
        v["valid"],
        true,
        "{sub}: {:?}\n{}",
        run.errors(),
        run.stdout
    );
}

/// HCL accepts a JSON object as an expression: the vars file's `stack` becomes a run's variable. Every
/// ephemeral secret is set in every run (the chat bridge's to a placeholder it never uses: without their versions
/// the bridge is off): under `terraform test` (1.11) an ephemeral variable left unset — or set to null — at plan
/// time fails the apply phase ("must remain unset"), unlike a real `terraform apply`.
fn run_block(name: &str, command: &str, stack: &Json, asserts: &[(&str, &str)]) -> String {
    let mut s = format!(
        "run \"{name}\" {{\n  command = {command}\n  variables {{\n    stack = {stack}\n    admin_password = \"{PASSWORD}\"\n    llm_api_key = \"{API_KEY}\"\n    im_telegram_token = \"unused\"\n    im_dingtalk_client_secret = \"unused\"\n    im_proxy = \"unused\"\n    proxy = \"unused\"\n    app_secret_env = {{}}\n  }}\n"
    );
    for (cond, msg) in asserts {
        s.push_str(&format!(
            "  assert {{\n    condition     = {cond}\n    error_message = \"{msg}\"\n  }}\n"
        ));
    }
    s.push_str("}\n\n");
    s
}

#[test]
fn cloud_commands_generate_roots_that_plan_create_suspend_resume_and_destroy_as_asked() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let copies = tempfile::tempdir().unwrap();
    std::env::set_var("CLOUDCODE_HOME", home.path());
    std::env::set_var("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIalibabamodetest");
    std::env::set_var("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_SECRET);
    std::env::set_var("LANG", "C.UTF-8");

    // deploy: every prompt answered by a flag, --yes; the key pair is generated in the stack's directory.
    let args = deploy_args(&[
        "--yes",
        "--region",
        "cn-hangzhou",
        "--instance-type",
        "ecs.e-c1m2.large",
        "--ssh-cidr",
        "203.0.113.7/32",
        "--admin-email",
        "me@example.com",
        "--admin-password",
        PASSWORD,
        "--llm-provider",
        "anthropic",
        "--llm-api-key",
        API_KEY,
        // A mainland region with the cn mirrors: the root must still validate with the real alicloud provider.
        "--mirrors",
        "cn",
        "--idle-suspend-after",
        "2h",
    ]);
    // The refused case first: a limit under a minute is one sentence naming the flag, and nothing is written.
    let mut short = args.clone();
    short.idle_suspend_after = Some("30s".into());
    let refused = match deploy::configure("short", &short) {
        Ok(_) => panic!("30s is refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("--idle-suspend-after") && refused.contains("shorter than one minute"),
        "{refused}"
    );
    assert!(!home.path().join("short").join(VARS_FILE).exists());
    let configured = deploy::configure("work", &args).unwrap();
    let stack = configured.stack.path.clone();
    drop(configured);

    // The generated key: RSA 4096, 0600, and real OpenSSH derives the same public key from it.
    let key = stack.join("id_rsa");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let derived = Command::new("ssh-keygen")
        .args(["-y", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        derived.status.success(),
        "{}",
        String::from_utf8_lossy(&derived.stderr)
    );
    let public = std::fs::read_to_string(stack.join("id_rsa.pub")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout)
            .split_whitespace()
            .nth(1),
        public.split_whitespace().nth(1)
    );
    let bits = Command::new("ssh-keygen")
        .args(["-l", "-f"])
        .arg(stack.join("id_rsa.pub"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&bits.stdout).starts_with("4096 "),
        "{}",
        String::from_utf8_lossy(&bits.stdout)
    );

    // No secret in any generated file.
    let deploy_vars = vars(&stack);
    for f in ["main.tf", "versions.tf", "versions.tofu", VARS_FILE] {
        let text = std::fs::read_to_string(stack.join(f)).unwrap();
        for secret in [PASSWORD, API_KEY, ACCESS_SECRET] {
            assert!(!text.contains(secret), "{f} holds a secret");
        }
    }
    assert_eq!(deploy_vars["mode"], "alibaba");
    assert_eq!(deploy_vars["cloud_name"], "work");
    assert_eq!(deploy_vars["ssh_allowed_cidrs"][0], "203.0.113.7/32");
    assert_eq!(deploy_vars["running"], true);
    assert_eq!(deploy_vars["mirrors"]["preset"], "cn");
    assert_eq!(deploy_vars["idle_suspend_after"], "2h");
    let main_tf = std::fs::read_to_string(stack.join("main.tf")).unwrap();
    assert!(
        main_tf.contains("idle_suspend_after = var.stack.idle_suspend_after")
            && main_tf.contains("running = var.stack.running ? (var.resume ? true : null) : false"),
        "the root passes the idle limit and leaves running null unless resuming:\n{main_tf}"
    );
    assert!(
        std::fs::read_to_string(stack.join("main.tf"))
            .unwrap()
            .contains("mirrors       = var.stack.mirrors"),
        "the root passes the mirrors to the module"
    );
    let dirs: Vec<(String, PathBuf)> = [
        "deploy",
        "suspend",
        "resume",
        "destroy-no-snapshot",
        "destroy-keep",
    ]
    .iter()
    .map(|n| (n.to_string(), copies.path().join(n)))
    .collect();
    for (_, d) in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    snapshot(&stack, &dirs[0].1);

    let (_, _, lock) = power::configure("work", false).unwrap();
    drop(lock);
    snapshot(&stack, &dirs[1].1);
    let (_, _, lock) = power::configure("work", true).unwrap();
    drop(lock);
    snapshot(&stack, &dirs[2].1);
    let (_, cfg, lock, changed) = destroy::configure("work", false).unwrap();
    assert!(changed && !cfg.snapshot_on_destroy);
    drop(lock);
    snapshot(&stack, &dirs[3].1);
    let (_, cfg, lock, changed) = destroy::configure("work", true).unwrap();
    assert!(changed && cfg.snapshot_on_destroy);
    drop(lock);
    snapshot(&stack, &dirs[4].1);

    // Host-mode commands do not apply to a cloud stack and vice versa.
    assert!(power::configure("nonexistent", false).is_err());
    // Only the vars differ between the commands' roots: the module and root are the same files.
    for (name, d) in &dirs[1..] {
        for f in ["main.tf", "versions.tf", "versions.tofu"] {
            assert_eq!(
                std::fs::read_to_string(d.join(f)).unwrap(),
                std::fs::read_to_string(dirs[0].1.join(f)).unwrap(),
                "{name}/{f}"
            );
        }
    }
    let tofu_guard = std::fs::read_to_string(stack.join("versions.tofu")).unwrap();
    assert!(
        tofu_guard.contains("required_version = \">= 1.11.6, != 1.11.12, != 1.12.4\""),
        "the generated root carries OpenTofu's range:\n{tofu_guard}"
    );

    engine::each(&engine::matrix(), |e| {
        generated_roots_plan_as_asked(e, &stack, &dirs)
    });
}

/// The generated roots under `e`: fmt-clean, valid, the backup depends on the stack, and `test` over the
/// deploy root, each run with the vars a command wrote, plans what each command means.
fn generated_roots_plan_as_asked(e: &Engine, stack: &Path, dirs: &[(String, PathBuf)]) {
    // `tofu fmt` reads versions.tofu too.
    let fmt = e
        .command()
        .args(["fmt", "-check", "-diff", "main.tf", "versions.tf"])
        .args(e.is_tofu().then_some("versions.tofu"))
        .current_dir(stack)
        .output()
        .unwrap();
    assert!(
        fmt.status.success(),
        "{}",
        String::from_utf8_lossy(&fmt.stdout)
    );

    // Every generated root validates against the alicloud schema and our provider's schema.
    let subs: Vec<(&Path, &str)> = dirs
        .iter()
        .map(|(n, d)| (d.as_path(), n.as_str()))
        .collect();
    let wd = workdir_with(e, &subs);
    for (name, _) in dirs {
        assert_valid(&wd, name);
    }

    // The backup depends on the stack (the engine destroys it first, while the host still exists).
    let graph = wd.tf_in("deploy", &["graph"]).unwrap().ok().unwrap();
    assert!(
        graph.stdout.lines().any(|l| l.contains("->")
            && l.contains("cloudcode_snapshot_backup.this")
            && l.split("->")
                .nth(1)
                .is_some_and(|to| to.contains("cloudcode_stack.this"))),
        "no backup -> stack edge:\n{}",
        graph.stdout
    );

    // `test` over the deploy root, each run with the vars a command wrote (the module tests' mocks). The mocked
    // cloudcode provider has no preflight to give (the module's own preflight test overrides its answer).
    let v = |i: usize| {
        let mut stack = vars(&dirs[i].1);
        assert_eq!(
            stack["preflight"], true,
            "the CLI's roots run the preflight"
        );
        stack["preflight"] = Json::Bool(false);
        stack
    };
    let mut test = module_mock_providers();
    test += "\n";
    test += &run_block(
        "deploy_plans_a_running_instance",
        "plan",
        &v(0),
        &[
            (
                "output.instance_status == \"Running\"",
                "deploy creates a running instance",
            ),
            ("output.host_running == true", "the stack deploys"),
            (
                "output.snapshot_on_destroy == true",
                "snapshots are kept by default",
            ),
        ],
    );
    test += &run_block("deploy", "apply", &v(0), &[]);
    test += &run_block("suspend_plans_stopped_with_stop_charging", "plan", &v(1), &[
        ("output.instance_status == \"Stopped\" && output.instance_stopped_mode == \"StopCharging\"", "suspend stops the instance in StopCharging mode"),
        ("output.host_running == false", "the stack does not connect while suspended"),
    ]);
    test += &run_block("suspend", "apply", &v(1), &[]);
    test += &run_block(
        "resume_plans_running",
        "plan",
        &v(2),
        &[
            (
                "output.instance_status == \"Running\"",
                "resume starts the instance",
            ),
            ("output.host_running == true", "the stack connects again"),
        ],
    );
    test += &run_block("resume", "apply", &v(2), &[]);
    test += &run_block(
        "destroy_no_snapshot_plans_it_off_first",
        "plan",
        &v(3),
        &[(
            "output.snapshot_on_destroy == false",
            "--no-snapshot applies snapshot_on_destroy = false before the destroy",
        )],
    );
    test += &run_block(
        "destroy_keep_snapshot",
        "plan",
        &v(4),
        &[(
            "output.snapshot_on_destroy == true",
            "--keep-snapshot keeps snapshot_on_destroy",
        )],
    );
    let tests_dir = wd.path().join("deploy/tests");
    std::fs::create_dir_all(&tests_dir).unwrap();
    std::fs::write(tests_dir.join("cli_commands.tftest.hcl"), &test).unwrap();
    let (report, run) = wd.test_in("deploy", &[]).unwrap();
    assert_eq!(
        report.summary["status"], "pass",
        "{}\n{}\n{}",
        report.summary, run.stdout, run.stderr
    );
    assert!(
        report.runs.values().all(|status| status == "pass"),
        "{:?}",
        report.runs
    );
    assert_eq!(report.runs.len(), 8, "{:?}", report.runs);
}

#[test]
fn import_legacy_turns_the_go_tools_state_into_import_blocks_that_validate() {
    let home = tempfile::tempdir().unwrap();
    let dot = home.path().join(".cloudcode");
    std::fs::create_dir_all(&dot).unwrap();
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(dot.join("ssh_key"))
        .status()
        .unwrap();
    assert!(keygen.success());
    // The Go tool's state file (design v2.7 §5.1.4, v0.2 §3.4.7).
    std::fs::write(
        dot.join("state.json"),
        r#"{
  "version": "1.0",
  "created_at": "2026-02-14T10:30:00Z",
  "region": "ap-southeast-1",
  "os_image": "ubuntu_24_04_x64",
  "resources": {
    "vpc": { "id": "vpc-t4n0legacy", "cidr": "192.168.0.0/16" },
    "vswitch": { "id": "vsw-t4n0legacy", "zone": "ap-southeast-1a" },
    "security_group": { "id": "sg-t4n0legacy" },
    "ecs": { "id": "i-t4n0legacy", "instance_type": "ecs.e-c1m2.large", "system_disk_size": 60,
             "public_ip": "47.0.0.10", "private_ip": "192.168.1.100" },
    "eip": { "id": "eip-t4n0legacy", "ip": "47.0.0.10" },
    "ssh_key_pair": { "name": "cloudcode-ssh-key", "private_key_path": ".cloudcode/ssh_key" }
  },
  "cloudcode": { "username": "admin", "domain": "opencode.example.com" },
  "status": "running"
}"#,
    )
    .unwrap();
    let stacks = home.path().join("stacks");
    let import_legacy = || {
        Command::new(CLI)
            .args(["--name", "legacy", "import-legacy"])
            .args([
                "--admin-email",
                "me@example.com",
                "--ssh-cidr",
                "203.0.113.7/32",
            ])
            .env("HOME", home.path())
            .env("CLOUDCODE_HOME", &stacks)
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap()
    };
    let out = import_legacy();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack = stacks.join("legacy");
    let imports = std::fs::read_to_string(stack.join("imports.tf")).unwrap();
    for (to, id) in [
        ("alicloud_vpc.this", "vpc-t4n0legacy"),
        ("alicloud_vswitch.this", "vsw-t4n0legacy"),
        ("alicloud_security_group.this", "sg-t4n0legacy"),
        ("alicloud_ecs_key_pair.this", "cloudcode-ssh-key"),
        ("alicloud_instance.this", "i-t4n0legacy"),
        ("alicloud_eip_address.this[0]", "eip-t4n0legacy"),
        (
            "alicloud_eip_association.this",
            "eip-t4n0legacy:i-t4n0legacy",
        ),
    ] {
        assert!(
            imports.contains(&format!("to = module.cloudcode.{to}\n  id = \"{id}\"")),
            "{to}:\n{imports}"
        );
    }
    let v = vars(&stack);
    assert_eq!(v["region"], "ap-southeast-1");
    assert_eq!(v["domain"], "opencode.example.com");
    assert_eq!(v["running"], true);
    assert!(v["ssh_public_key"]
        .as_str()
        .unwrap()
        .starts_with("ssh-rsa "));

    // Terraform checks import targets against the configuration at validate: the generated one validates, and
    // a misspelt target would not (so the check above means something).
    engine::each(&engine::matrix(), |e| {
        let wd = workdir_with(e, &[(&stack, "legacy")]);
        assert_valid(&wd, "legacy");
        std::fs::write(
            wd.path().join("legacy/imports.tf"),
            imports.replace("alicloud_vswitch.this", "alicloud_vswitch.missing"),
        )
        .unwrap();
        let run = wd
            .tf_in("legacy", &["validate", "-json", "-no-color"])
            .unwrap();
        // OpenTofu's validate does not resolve import targets (its plan does): the misspelt target passes
        // there, which is why the generated file is also checked against Terraform's validate.
        assert_eq!(
            run.json().unwrap()["valid"],
            e.is_tofu(),
            "{e}: {}",
            run.stdout
        );
    });

    // A second import onto the same stack name is refused; nothing is overwritten.
    let again = import_legacy();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
