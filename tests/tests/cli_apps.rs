//! `cloudcode app add|list|logs|remove` driven as a user runs them (the real binary), on a host stack whose engine
//! is a stand-in that records how it was run: the vars file holds each app with an absolute build path and only
//! the names of its secret env; the values reach the engine only as `TF_VAR_app_secret_env`, with the version
//! bumped when they change; bad files are refused with one sentence naming the key; `--no-apply` runs no engine;
//! `remove` drops the app and says its volumes stay; `deploy` keeps the apps. Then the root the CLI generated,
//! with an app built from a directory and a static site, plans under every engine with the real provider
//! (planning connects to nothing).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cloudcode_tests::engine::{self, Engine};
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::Workdir;
use serde_json::Value as Json;

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const PASSWORD: &str = "apps-test-password-5150";
const SECRET: &str = "db-secret-7c1f0e9a";
const SECRET_2: &str = "db-secret-rotated-44b2";
const DOMAIN: &str = "code.example.com";
const STACK: &str = "box";

/// A user's machine: `CLOUDCODE_HOME`, an engine stand-in that logs each run (its first argument and the secret
/// env it was given) and the app's directory.
struct User {
    home: tempfile::TempDir,
    tools: tempfile::TempDir,
    project: tempfile::TempDir,
}

impl User {
    fn new() -> User {
        let user = User {
            home: tempfile::tempdir().unwrap(),
            tools: tempfile::tempdir().unwrap(),
            project: tempfile::tempdir().unwrap(),
        };
        let fake = user.tools.path().join("tofu");
        std::fs::write(
            &fake,
            "#!/bin/sh\nif [ \"$1\" = version ]; then echo 'OpenTofu v1.12.6'; echo 'on linux_amd64'; exit 0; fi\n\
             printf '%s secret=%s\\n' \"$1\" \"${TF_VAR_app_secret_env:-unset}\" >> \"$FAKE_ENGINE_LOG\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let key = user.tools.path().join("id_ed25519");
        assert!(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success());
        let p = user.project.path();
        std::fs::create_dir_all(p.join("api")).unwrap();
        std::fs::write(
            p.join("api/Dockerfile"),
            "FROM python:3.12-slim\nCOPY app.py /app.py\nCMD [\"python3\", \"-m\", \"http.server\", \"8000\"]\n",
        )
        .unwrap();
        std::fs::write(p.join("api/app.py"), "print('hello')\n").unwrap();
        std::fs::create_dir_all(p.join("site")).unwrap();
        std::fs::write(p.join("site/index.html"), "<h1>docs</h1>\n").unwrap();
        user
    }

    fn stack(&self) -> PathBuf {
        self.home.path().join(STACK)
    }

    fn engine_log(&self) -> String {
        std::fs::read_to_string(self.tools.path().join("engine.log")).unwrap_or_default()
    }

    /// Writes `text` as a TOML file of the project; returns its path.
    fn toml(&self, file: &str, text: &str) -> PathBuf {
        let p = self.project.path().join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        // The stack by name unless the command names one itself.
        let named = args.iter().any(|a| *a == "--name" || *a == "--stack");
        let out = Command::new(CLI)
            .args(if named {
                &[][..]
            } else {
                &["--name", STACK][..]
            })
            .args(args)
            .env("CLOUDCODE_HOME", self.home.path())
            .env("CLOUDCODE_TF_BIN", self.tools.path().join("tofu"))
            .env("FAKE_ENGINE_LOG", self.tools.path().join("engine.log"))
            .env("LANG", "C.UTF-8")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("CLOUDCODE_STACK")
            .env_remove("CLOUDCODE_ENGINE")
            .env_remove("DB_PASSWORD")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        for text in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(SECRET) && !text.contains(SECRET_2) && !text.contains(PASSWORD),
                "a secret in the output of {args:?}: {text}"
            );
        }
        out
    }

    fn ok(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.run(env, args);
        assert!(
            out.status.success(),
            "cloudcode {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The one sentence a refused command printed.
    fn refused(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.run(env, args);
        assert!(!out.status.success(), "cloudcode {args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
        stderr
    }

    fn vars(&self) -> Json {
        serde_json::from_str::<Json>(
            &std::fs::read_to_string(self.stack().join("terraform.tfvars.json")).unwrap(),
        )
        .unwrap()["stack"]
            .clone()
    }

    fn deploy(&self) {
        let key = self.tools.path().join("id_ed25519");
        self.ok(
            &[("CLOUDCODE_ADMIN_PASSWORD", PASSWORD)],
            &[
                "deploy",
                "--host",
                "root@127.0.0.1:9",
                "--ssh-key",
                key.to_str().unwrap(),
                "--domain",
                DOMAIN,
                "--admin-email",
                "me@example.com",
                "--yes",
            ],
        );
    }
}

/// Every file below `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_holding(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) {
            hits.push(p);
        }
    }
    hits
}

const API_TOML: &str = r#"name = "api"
build = "./api"
port = 8000
host = "/api"
auth = "public"
health = "/"
memory = "256m"
secret_env = ["DB_PASSWORD"]

[env]
LOG_LEVEL = "info"

[volumes]
data = "/var/lib/api"
"#;

const DOCS_TOML: &str = "name = \"docs\"\ndir = \"site\"\nhost = \"help\"\nauth = \"one_factor\"\n";

#[test]
fn apps_are_added_listed_and_removed_through_the_vars_file_with_secrets_only_in_the_engines_environment(
) {
    let user = User::new();
    user.deploy();
    let vars = user.vars();
    assert_eq!(
        vars["apps"],
        serde_json::json!({}),
        "a new stack has no apps"
    );
    let api = user.toml("cloudcode-app.toml", API_TOML);
    let api = api.to_str().unwrap();
    let log_after_deploy = user.engine_log();

    // --no-apply: the vars file holds the app with its absolute build path and only the secret's name; the
    // engine is not run and the secret is not read.
    let out = user.ok(
        &[("DB_PASSWORD", SECRET)],
        &["app", "add", api, "--no-apply"],
    );
    assert!(out.contains("not applied"), "{out}");
    assert_eq!(
        user.engine_log(),
        log_after_deploy,
        "--no-apply ran the engine"
    );
    let vars = user.vars();
    let build = std::fs::canonicalize(user.project.path().join("api")).unwrap();
    let app = &vars["apps"]["api"];
    assert_eq!(app["build"], build.to_str().unwrap(), "{vars:#}");
    assert_eq!(app["port"], 8000);
    assert_eq!(app["host"], "/api");
    assert_eq!(app["auth"], "public");
    assert_eq!(app["env"]["LOG_LEVEL"], "info");
    assert_eq!(app["volumes"]["data"], "/var/lib/api");
    assert_eq!(app["memory"], "256m");
    assert!(
        app.get("image").is_none() && app.get("secret_env_wo_version").is_none(),
        "{app:#}"
    );
    assert_eq!(
        vars["app_secret_env"]["api"],
        serde_json::json!(["DB_PASSWORD"])
    );
    // The root passes them to the module.
    let main_tf = std::fs::read_to_string(user.stack().join("main.tf")).unwrap();
    for line in [
        "apps           = var.stack.apps",
        "static_sites   = var.stack.static_sites",
        "app_secret_env = var.app_secret_env",
    ] {
        assert!(main_tf.contains(line), "{line} missing:\n{main_tf}");
    }

    // Applied with the value from the environment: version 1, the value only in the engine's environment.
    let out = user.ok(&[("DB_PASSWORD", SECRET)], &["app", "add", api]);
    assert!(
        out.contains("Deployed app api: https://code.example.com/api/"),
        "{out}"
    );
    let runs = user.engine_log()[log_after_deploy.len()..].to_string();
    let expected = format!(r#"{{"api" = {{"DB_PASSWORD" = "{SECRET}"}}}}"#);
    assert!(runs.contains(&format!("plan secret={expected}")), "{runs}");
    assert!(runs.contains(&format!("apply secret={expected}")), "{runs}");
    assert_eq!(user.vars()["apps"]["api"]["secret_env_wo_version"], 1);
    assert!(
        files_holding(&user.stack(), SECRET).is_empty(),
        "the secret is stored in the stack directory"
    );

    // The same value again: nothing to send, the version stays. Another value: the next version.
    let before = user.engine_log().len();
    user.ok(&[("DB_PASSWORD", SECRET)], &["app", "add", api]);
    assert!(
        user.engine_log()[before..].contains("apply secret=unset"),
        "{}",
        user.engine_log()
    );
    assert_eq!(user.vars()["apps"]["api"]["secret_env_wo_version"], 1);
    user.ok(
        &[("DB_PASSWORD", SECRET_2)],
        &["--stack", STACK, "app", "add", api],
    );
    assert_eq!(user.vars()["apps"]["api"]["secret_env_wo_version"], 2);
    assert!(files_holding(&user.stack(), SECRET_2).is_empty());
    // No value and no terminal: the host keeps what it has.
    user.ok(&[], &["app", "add", api]);
    assert_eq!(user.vars()["apps"]["api"]["secret_env_wo_version"], 2);

    // A static site from a directory beside its file.
    let docs = user.toml("docs.toml", DOCS_TOML);
    user.ok(&[], &["app", "add", docs.to_str().unwrap()]);
    let site = std::fs::canonicalize(user.project.path().join("site")).unwrap();
    assert_eq!(
        user.vars()["static_sites"]["docs"]["dir"],
        site.to_str().unwrap()
    );

    // list: both, with URL, login and source.
    let list = user.ok(&[], &["app", "list"]);
    let api_line = list
        .lines()
        .find(|l| l.starts_with("api "))
        .unwrap_or_else(|| panic!("{list}"));
    for cell in [
        "app",
        "https://code.example.com/api/",
        "public",
        &format!("build {}", build.display()),
    ] {
        assert!(api_line.contains(cell), "{cell} missing: {list}");
    }
    let docs_line = list
        .lines()
        .find(|l| l.starts_with("docs "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        docs_line.contains("https://help.code.example.com/") && docs_line.contains("one_factor"),
        "{list}"
    );
    let rows: Json = serde_json::from_str(&user.ok(&[], &["app", "list", "--json"])).unwrap();
    assert_eq!(rows[0]["name"], "api");
    assert_eq!(rows[0]["secret_env"], serde_json::json!(["DB_PASSWORD"]));
    assert_eq!(rows[1]["kind"], "static_site");

    // A re-deploy keeps the apps and their secret's version.
    user.deploy();
    let vars = user.vars();
    assert_eq!(vars["apps"]["api"]["secret_env_wo_version"], 2, "{vars:#}");
    assert!(vars["static_sites"]["docs"].is_object());

    // logs of something that is not an app: one sentence, before any SSH.
    let e = user.refused(&[], &["app", "logs", "nope"]);
    assert!(e.contains("stack \"box\" has no app \"nope\""), "{e}");
    let e = user.refused(&[], &["app", "logs", "docs"]);
    assert!(e.contains("is a static site"), "{e}");

    // remove: gone from the vars file, applied, the volumes said to stay.
    let before = user.engine_log().len();
    let out = user.ok(&[], &["app", "remove", "api"]);
    assert!(
        out.contains("Removed api.")
            && out.contains("volumes are kept")
            && out.contains("app_api_data"),
        "{out}"
    );
    assert!(
        user.engine_log()[before..].contains("apply "),
        "remove applies"
    );
    let vars = user.vars();
    assert!(
        vars["apps"].get("api").is_none() && vars.get("app_secret_env").is_none(),
        "{vars:#}"
    );
    let e = user.refused(&[], &["app", "remove", "api"]);
    assert!(e.contains("has no app or static site \"api\""), "{e}");
    user.ok(&[], &["app", "remove", "docs", "--no-apply"]);
    assert_eq!(user.vars()["static_sites"], serde_json::json!({}));
}

#[test]
fn bad_app_files_are_refused_with_one_sentence_naming_the_key_and_change_nothing() {
    let user = User::new();
    user.deploy();
    let vars = user.vars();
    let log = user.engine_log();
    let cases = [
        (
            "name = \"api\"\nimage = \"nginx:1\"\nport = 80\nauth = \"none\"\n",
            "auth \"none\" is not one of \"two_factor\", \"one_factor\", \"public\"",
        ),
        (
            "name = \"api\"\nimage = \"nginx:1\"\nbuild = \"api\"\nport = 80\n",
            "build set either image or build, not both",
        ),
        (
            "name = \"api\"\nimage = \"nginx:1\"\nport = 80\nimgae = \"x\"\n",
            "line 4: unknown field `imgae`",
        ),
        ("name = \"api\"\nimage = \"nginx:1\"\n", "port is required"),
        (
            "name = \"auth\"\nimage = \"nginx:1\"\nport = 80\n",
            "name \"auth\" is the login portal's name",
        ),
        (
            "name = \"api\"\nimage = \"nginx:1\"\nport = 80\nhost = \"/terminal\"\n",
            "host \"/terminal\" is a path OpenCode or the terminal answers on",
        ),
        (
            "name = \"api\"\nbuild = \"site\"\nport = 80\n",
            "has no Dockerfile",
        ),
    ];
    for (text, expected) in cases {
        let file = user.toml("bad.toml", text);
        let e = user.refused(&[], &["app", "add", file.to_str().unwrap()]);
        assert!(
            e.contains(&format!("{}", file.display())),
            "the file is named: {e}"
        );
        assert!(e.contains(expected), "expected {expected:?} in {e}");
    }
    // The allowed twin of the first case goes through.
    let file = user.toml(
        "good.toml",
        "name = \"api\"\nimage = \"nginx:1\"\nport = 80\nauth = \"one_factor\"\n",
    );
    assert_eq!(user.vars(), vars, "a refused file changed the stack");
    assert_eq!(user.engine_log(), log, "a refused file ran the engine");
    user.ok(&[], &["app", "add", file.to_str().unwrap(), "--no-apply"]);
    assert_eq!(user.vars()["apps"]["api"]["auth"], "one_factor");

    // A secret env name without a value and no terminal: refused before the engine runs.
    let file = user.toml(
        "secret.toml",
        "name = \"db\"\nimage = \"postgres:16\"\nport = 5432\nsecret_env = [\"DB_PASSWORD\"]\n",
    );
    let e = user.refused(&[], &["app", "add", file.to_str().unwrap(), "--yes"]);
    assert!(
        e.contains("secret env DB_PASSWORD of app db has no value"),
        "{e}"
    );
    assert_eq!(user.engine_log(), log);
    // No stack: one sentence.
    let e = user.refused(&[], &["--name", "other", "app", "list"]);
    assert!(e.contains("stack \"other\" does not exist"), "{e}");
}

#[test]
fn the_generated_root_with_apps_plans_under_every_engine_with_the_real_provider() {
    let user = User::new();
    user.deploy();
    let api = user.toml("cloudcode-app.toml", API_TOML);
    user.ok(&[], &["app", "add", api.to_str().unwrap(), "--no-apply"]);
    let docs = user.toml("docs.toml", DOCS_TOML);
    user.ok(&[], &["app", "add", docs.to_str().unwrap(), "--no-apply"]);
    // As `app add` would apply it: the secret's version set, its value in the environment only.
    let vars_file = user.stack().join("terraform.tfvars.json");
    let mut vars: Json =
        serde_json::from_str(&std::fs::read_to_string(&vars_file).unwrap()).unwrap();
    vars["stack"]["apps"]["api"]["secret_env_wo_version"] = 1.into();
    std::fs::write(&vars_file, vars.to_string()).unwrap();
    engine::each(&engine::smoke(), |e: &Engine| {
        let mut wd = Workdir::empty_on(e, provider_bin!()).unwrap();
        wd.copy_tree(&user.stack(), "root").unwrap();
        wd.init_in("root").unwrap();
        let valid = wd
            .tf_in("root", &["validate", "-json", "-no-color"])
            .unwrap();
        assert_eq!(valid.json().unwrap()["valid"], true, "{}", valid.stdout);
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env(
            "TF_VAR_app_secret_env",
            &format!(r#"{{"api" = {{"DB_PASSWORD" = "{SECRET}"}}}}"#),
        );
        let plan = wd
            .tf_in(
                "root",
                &["plan", "-input=false", "-no-color", "-out=app.tfplan"],
            )
            .unwrap();
        assert!(
            plan.success,
            "plan under {e}:\n{}\n{}",
            plan.stdout, plan.stderr
        );
        let shown = wd.tf_in("root", &["show", "-json", "app.tfplan"]).unwrap();
        let doc = shown.json().unwrap();
        let stack = doc["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "cloudcode_stack")
            .unwrap_or_else(|| panic!("no stack in the plan: {}", shown.stdout))["change"]["after"]
            .clone();
        assert_eq!(
            stack["apps"]["api"]["build"], vars["stack"]["apps"]["api"]["build"],
            "{stack:#}"
        );
        assert_eq!(stack["apps"]["api"]["secret_env_wo_version"], 1);
        assert_eq!(stack["static_sites"]["docs"]["host"], "help");
        assert!(
            stack["app_secret_env_wo"].is_null(),
            "write-only: not in the plan"
        );
        assert_eq!(
            doc["planned_values"]["outputs"]["app_urls"]["value"],
            serde_json::json!({
                "api": "https://code.example.com/api/",
                "docs": "https://help.code.example.com/",
            })
        );
        assert!(!shown.stdout.contains(SECRET), "the secret is in the plan");
    });
}
