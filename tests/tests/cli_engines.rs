//! A newcomer's flow with one engine installed, for each engine of the matrix: `install.sh` from the release
//! layout into a fresh HOME, `cloudcode deploy --host … --yes` onto the test VM → the site answers →
//! `cloudcode status` → `destroy`, every message naming the engine actually used. And a stack created with
//! terraform, run later while both engines are installed, stays on terraform: asking for tofu is refused with
//! the sentence that names `cloudcode migrate-engine`, which then moves it on purpose (state backed up,
//! provider addresses under OpenTofu's registry host, an empty plan) so that tofu runs it from then on.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use cloudcode_tests::authelia::Totp;
use cloudcode_tests::engine::{self, Engine, Kind};
use cloudcode_tests::provider_bin;
use cloudcode_tests::release::{build_release, install};
use cloudcode_tests::stack_fixture::{
    assert_recreated, browser, cli_deploy_args, container_ids, curl, API_KEY, DOMAIN, PASSWORD,
};
use cloudcode_tests::vm::{TestVm, VmOptions};
use serde_json::Value as Json;

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const STACK: &str = "newbox";

/// A user's machine: a HOME where install.sh put cloudcode, and a directory holding only the engines given.
struct User {
    home: PathBuf,
    engines_dir: tempfile::TempDir,
}

impl User {
    fn with_engines(home: &Path, engines: &[&Engine]) -> User {
        let engines_dir = tempfile::tempdir().unwrap();
        for e in engines {
            symlink(&e.bin, engines_dir.path().join(e.command_name())).unwrap();
        }
        User {
            home: home.to_path_buf(),
            engines_dir,
        }
    }

    /// `cloudcode <args>` as installed, with PATH = ~/.local/bin, the engines, and the system's directories
    /// (terraform comes with this machine in /usr/local/bin, which is left out).
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&[], args)
    }

    /// [`User::run`] with more environment variables (set after the defaults).
    fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let path = format!(
            "{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
            self.home.join(".local/bin").display(),
            self.engines_dir.path().display()
        );
        let out = Command::new(self.home.join(".local/bin/cloudcode"))
            .args(["--name", STACK])
            .args(args)
            .env("HOME", &self.home)
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .env("CLOUDCODE_ADMIN_PASSWORD", PASSWORD)
            .env("CLOUDCODE_LLM_API_KEY", API_KEY)
            .env_remove("CLOUDCODE_HOME")
            .env_remove("CLOUDCODE_PROVIDER_DIR")
            .env_remove("CLOUDCODE_TF_BIN")
            .env_remove("CLOUDCODE_ENGINE")
            .env_remove("TF_CLI_CONFIG_FILE")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        for text in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(PASSWORD) && !text.contains(API_KEY),
                "a secret in the output of {args:?}"
            );
        }
        out
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "cloudcode {args:?} failed:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }

    fn stack_dir(&self) -> PathBuf {
        self.home.join(".cloudcode").join(STACK)
    }

    fn record(&self) -> Json {
        serde_json::from_str(
            &std::fs::read_to_string(self.stack_dir().join("engine.json")).unwrap(),
        )
        .unwrap()
    }

    fn state(&self) -> String {
        std::fs::read_to_string(self.stack_dir().join("terraform.tfstate")).unwrap_or_default()
    }
}

/// Deploys as a newcomer with only `e` installed; the site answers and status reads the host.
fn newcomer_deploys(vm: &TestVm, user: &User, e: &Engine, totp: &Mutex<Option<Totp>>) {
    let args = cli_deploy_args(vm, DOMAIN);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (stdout, stderr) = user.ok(&args);
    assert!(stdout.contains(&format!("https://{DOMAIN}/")), "{stdout}");
    assert!(
        stderr.contains(&format!("Preparing {e}")),
        "the CLI names the engine it runs: {stderr}"
    );
    let record = user.record();
    assert_eq!(record["engine"], e.command_name(), "{record}");
    assert_eq!(record["created_with"], e.version.as_str(), "{record}");
    assert_eq!(record["last_used"], e.version.as_str(), "{record}");
    assert!(
        user.state()
            .contains(&e.provider_addr("cloudcode-dev/cloudcode")),
        "{e} wrote its own registry host into the state"
    );
    // Both versions files were generated; each engine read its own.
    for f in ["versions.tf", "versions.tofu"] {
        assert!(user.stack_dir().join(f).is_file(), "{f}");
    }

    let (code, head, _) = curl(vm, "/", None);
    assert!(matches!(code, 302 | 303), "HTTP {code}\n{head}");
    assert!(
        head.to_lowercase()
            .contains(&format!("location: https://auth.{DOMAIN}/")),
        "{head}"
    );

    // Signing in as the newcomer does: the password, then the one-time code `cloudcode otc` reads over SSH
    // from Authelia's notifier, a TOTP registration, a TOTP login — and OpenCode answers. A later deploy on the
    // same host (the next engine) finds the registration kept in `authelia_data` and logs in with it.
    let mut b = browser(vm, None);
    b.first_factor("admin", PASSWORD).expect_ok(200, "password");
    let mut slot = totp.lock().unwrap();
    if slot.is_none() {
        b.elevate(&|| user.ok(&["otc"]).0.trim().to_string());
        *slot = Some(b.register_totp());
    } else {
        let info = b.api("GET", "/api/user/info", None).json();
        assert_eq!(
            info["data"]["has_totp"], true,
            "the TOTP registration was kept: {info}"
        );
    }
    b.totp_login(slot.as_mut().unwrap())
        .expect_ok(200, "TOTP login");
    let health = b.site("/global/health", true);
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["healthy"], true);

    let (status, _) = user.ok(&["status", "--json"]);
    let status: Json = serde_json::from_str(&status).unwrap();
    assert_eq!(status["url"], format!("https://{DOMAIN}/"), "{status:#}");
    for service in ["caddy", "authelia", "devbox"] {
        assert_eq!(status["services"][service], "running", "{status:#}");
    }
    let (doctor, _) = user.ok(&["doctor"]);
    assert!(doctor.contains(&format!("engine: {e} at ")), "{doctor}");
}

/// `cloudcode passwd`: a too-short password is refused before anything changes; a good one bumps the
/// password's version and recreates Authelia alone, and no file of the stack holds it.
fn passwd_recreates_only_authelia(vm: &TestVm, user: &User) {
    let vars = || -> Json {
        serde_json::from_str(
            &std::fs::read_to_string(user.stack_dir().join("terraform.tfvars.json")).unwrap(),
        )
        .unwrap()
    };
    let before = container_ids(vm);
    let version = vars()["stack"]["admin_password_version"].as_i64().unwrap();

    let short = user.run_with(
        &[("CLOUDCODE_ADMIN_PASSWORD", "short")],
        &["passwd", "--yes"],
    );
    assert!(!short.status.success());
    assert_eq!(
        vars()["stack"]["admin_password_version"].as_i64(),
        Some(version)
    );

    const NEW: &str = "a-new-password-for-the-box-4471";
    let out = user.run_with(&[("CLOUDCODE_ADMIN_PASSWORD", NEW)], &["passwd", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(NEW));
    assert_eq!(
        vars()["stack"]["admin_password_version"].as_i64(),
        Some(version + 1)
    );
    // Authelia gets the new users file; Caddy and the devbox keep running.
    assert_recreated(&before, &container_ids(vm), &["authelia"]);
    assert_eq!(
        browser(vm, None).first_factor("admin", PASSWORD).status,
        401,
        "the old password"
    );
    browser(vm, None)
        .first_factor("admin", NEW)
        .expect_ok(200, "the new password");
    let stored = std::process::Command::new("grep")
        .args(["-rl", NEW])
        .arg(user.stack_dir())
        .output()
        .unwrap();
    assert!(
        stored.stdout.is_empty(),
        "the new password is stored in {}",
        String::from_utf8_lossy(&stored.stdout)
    );
}

fn destroys(vm: &TestVm, user: &User) {
    user.ok(&["destroy", "--force"]);
    assert!(!user.stack_dir().exists(), "the stack directory is removed");
    assert!(container_ids(vm).is_empty(), "containers left behind");
}

#[test]
fn a_newcomer_with_only_one_engine_deploys_checks_status_and_destroys() {
    let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
    let tmp = tempfile::tempdir().unwrap();
    let release = build_release(tmp.path(), provider_bin!(), Path::new(CLI));
    let totp = Mutex::new(None);
    engine::each(&engine::matrix(), |e| {
        let home = tempfile::tempdir().unwrap();
        assert!(
            install(&release, home.path()).status.success(),
            "install.sh"
        );
        let user = User::with_engines(home.path(), &[e]);
        newcomer_deploys(&vm, &user, e, &totp);
        if e.kind == Kind::Terraform {
            stays_on_terraform_until_migrated(&vm, home.path());
        } else {
            passwd_recreates_only_authelia(&vm, &user);
            destroys(&vm, &user);
        }
    });
}

/// A terraform stack with both engines installed: tofu is found first on PATH, yet the stack stays on
/// terraform; `--engine tofu` is refused; `migrate-engine --to tofu` moves it; tofu then runs and destroys it.
fn stays_on_terraform_until_migrated(vm: &TestVm, home: &Path) {
    let terraform = engine::terraform();
    let tofu = engine::scenario(Kind::Tofu);
    assert!(tofu.is_tofu(), "the matrix has no tofu to migrate to");
    let both = User::with_engines(home, &[&terraform, &tofu]);

    let (_, stderr) = both.ok(&["status", "--json"]);
    assert_eq!(both.record()["engine"], "terraform", "{stderr}");
    assert!(both
        .state()
        .contains("registry.terraform.io/cloudcode-dev/cloudcode"));
    assert!(!both.state().contains("registry.opentofu.org"));

    let refused = both.run(&["--engine", "tofu", "status"]);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        text.contains(&format!("stack \"{STACK}\" is managed with terraform"))
            && text.contains(&format!(
                "cloudcode --name {STACK} migrate-engine --to tofu"
            )),
        "{text}"
    );
    assert_eq!(text.trim().lines().count(), 1, "one sentence: {text}");

    let state_before = both.state();
    let (stdout, _) = both.ok(&["migrate-engine", "--to", "tofu"]);
    assert!(
        stdout.contains(&format!("now managed with {tofu}")),
        "{stdout}"
    );
    assert_eq!(both.record()["engine"], "tofu");
    assert_eq!(both.record()["created_with"], tofu.version.as_str());
    let state = both.state();
    assert!(
        state.contains("registry.opentofu.org/cloudcode-dev/cloudcode"),
        "{state}"
    );
    assert!(
        !state.contains("registry.terraform.io/cloudcode-dev/cloudcode"),
        "{state}"
    );
    // The backup holds the state as it was.
    let backups: Vec<PathBuf> = std::fs::read_dir(both.stack_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("backup-migrate-engine-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read_to_string(backups[0].join("terraform.tfstate")).unwrap(),
        state_before
    );

    // From now on tofu runs it, even with terraform asked for by name it is refused the other way round.
    let (doctor, _) = both.ok(&["doctor"]);
    assert!(doctor.contains(&format!("engine: {tofu} at ")), "{doctor}");
    let refused = both.run(&["--engine", "terraform", "status"]);
    assert!(!refused.status.success());
    let (status, _) = both.ok(&["status", "--json"]);
    let status: Json = serde_json::from_str(&status).unwrap();
    assert_eq!(status["services"]["devbox"], "running", "{status:#}");
    destroys(vm, &both);
}
