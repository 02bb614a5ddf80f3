//! Your own apps on the test VM (`apps`, `static_sites`): a `two_factor` app from an image (Caddy answering with
//! `caddy respond`), the design's Flask API built on the host from `examples/flask-app/api` (public, `api.<domain>`;
//! FROM an image the VM has, Flask and Gunicorn from wheels placed in the build directory, as nothing can be
//! downloaded there) and a public static site. Each answers through Caddy as its `auth` says; a secret env reaches
//! the app but not the state, plan or TF_LOG; drift on an app's file or container shows in the next plan; an update
//! of one build file moves only that file and replaces only that app; a deleted site file is removed.
use std::path::{Path, PathBuf};
use std::process::Command;

use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{
    apply_ok, assert_import_adopts, assert_no_secret, container_ids, in_vm, plan_exit, stack_hcl,
    with_requests, write_main, DOMAIN, PASSWORD,
};
use cloudcode_tests::terraform::Workdir;
use cloudcode_tests::vm::{TestVm, VmOptions};

const DB_URL: &str = "postgres://api:s3cret-db-7731@db/api";

/// Flask, Gunicorn and their dependencies as wheels for the VM images' CPython 3.11, downloaded once into the test
/// cache (PyPI is reachable from this host, not from the VM).
fn wheels() -> PathBuf {
    engine::pip_cached(
        "flask-wheels",
        &repo().join("examples/flask-app/api/requirements.txt"),
        "-d",
        &[
            "download",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "any",
        ],
    )
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A copy of the example's build directory, FROM `base` (an image the VM has), with the wheels in `wheels/`.
fn flask_build_dir(into: &Path, base: &str) -> PathBuf {
    let src = repo().join("examples/flask-app/api");
    let dst = into.join("api");
    std::fs::create_dir_all(dst.join("wheels")).unwrap();
    for f in ["app.py", "requirements.txt", "Dockerfile"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let dockerfile = std::fs::read_to_string(dst.join("Dockerfile")).unwrap();
    let from = "ARG BASE=docker.io/library/python:3.12-slim";
    assert!(dockerfile.contains(from), "the example's base line changed");
    std::fs::write(
        dst.join("Dockerfile"),
        dockerfile.replace(from, &format!("ARG BASE={base}")),
    )
    .unwrap();
    for w in std::fs::read_dir(wheels()).unwrap() {
        let p = w.unwrap().path();
        if p.extension().is_some_and(|e| e == "whl") {
            std::fs::copy(&p, dst.join("wheels").join(p.file_name().unwrap())).unwrap();
        }
    }
    dst
}

/// `curl` to the VM's Caddy for `https://<name><path>`: (status, headers, body).
fn get(vm: &TestVm, name: &str, path: &str) -> (u16, String, String) {
    get_at(&vm.ssh_host, name, path)
}

/// [`get`] once Caddy serves `name` at all: the deploy waits for the main site, while Caddy obtains the certificates of
/// the apps' and sites' names in the background after its reload (a TLS failure, status 0, for the first moments; seen
/// once in CI). Any HTTP answer counts; at most 30 s.
fn get_served(vm: &TestVm, name: &str, path: &str) -> (u16, String, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = get(vm, name, path);
        if answer.0 != 0 || std::time::Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// [`get`] to the VM at `vm_ip` (for threads: a `TestVm` cannot cross them).
fn get_at(vm_ip: &str, name: &str, path: &str) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("h");
    let out = Command::new("curl")
        // --path-as-is: `..` reaches Caddy as sent (as an attacker would send it).
        .args([
            "-sk",
            "--path-as-is",
            "--compressed",
            "--max-time",
            "20",
            "-D",
        ])
        .arg(&headers)
        .arg("--resolve")
        .arg(format!("{name}:443:{vm_ip}"))
        .arg(format!("https://{name}{path}"))
        .output()
        .expect("curl");
    let h = std::fs::read_to_string(&headers).unwrap_or_default();
    let code = h
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, h, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The files and bytes the provider logged as uploaded in a TF_LOG=debug apply.
fn uploaded(log: &str) -> (String, usize) {
    let line = log
        .lines()
        .find(|l| l.contains("uploaded changed files"))
        .unwrap_or_else(|| {
            panic!(
                "no upload logged:\n{}",
                &log[log.len().saturating_sub(4000)..]
            )
        });
    let bytes = line
        .split("bytes=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {line}"));
    (line.to_string(), bytes)
}

fn hcl(vm: &TestVm, api: &Path, site: &Path, with_admin_and_www: bool) -> String {
    let caddy = &vm.image("caddy").unwrap().image;
    let admin = format!(
        r#"
    admin = {{
      image                 = "{caddy}"
      command               = ["caddy", "respond", "--listen", ":8080", "private app"]
      port                  = 8080
      volumes               = {{ data = "/data" }}
      memory                = "128m"
      secret_env_wo_version = 1
    }}"#
    );
    let www = format!(
        r#"
    www = {{
      dir  = "{site}"
      auth = "public"
    }}"#,
        site = site.display()
    );
    let (admin, www) = if with_admin_and_www {
        (admin.as_str(), www.as_str())
    } else {
        ("", "")
    };
    let extra = format!(
        r#"
  apps = {{{admin}
    api = {{
      build  = "{api}"
      port   = 8000
      host   = "api"
      auth   = "public"
      health = "/health"
      env    = {{ GREETING = "hello from the VM" }}
    }}
  }}
  static_sites = {{{www}
    docs = {{
      dir  = "{site}"
      host = "/docs"
      auth = "public"
    }}
  }}
  app_secret_env_wo = var.app_secret_env
"#,
        api = api.display(),
        site = site.display()
    );
    stack_hcl(vm, &extra)
        + "\nvariable \"app_secret_env\" {\n  type      = map(map(string))\n  ephemeral = true\n  default   = null\n}\n"
}

#[test]
fn apps_and_a_static_site_answer_as_their_auth_says_and_updates_move_only_what_changed() {
    engine::once(&engine::scenario(Kind::Terraform), |e| {
        let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let work = tempfile::tempdir().unwrap();
        let api = flask_build_dir(work.path(), &vm.image("authelia").unwrap().image);
        let site = work.path().join("www");
        std::fs::create_dir_all(site.join("assets")).unwrap();
        std::fs::write(site.join("index.html"), "<h1>static site</h1>\n").unwrap();
        std::fs::write(
            site.join("assets/app.0123abcd.js"),
            "console.log(1)\n".repeat(200),
        )
        .unwrap();
        std::fs::write(site.join("old.html"), "old\n").unwrap();

        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl(&vm, &api, &site, true)).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env(
            "TF_VAR_app_secret_env",
            &format!(r#"{{"admin":{{"DATABASE_URL":"{DB_URL}"}}}}"#),
        );
        wd.init().unwrap();
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 2, "{}", plan.stderr);
        wd.set_env("TF_LOG", "debug");
        let first = apply_ok(&wd);
        wd.set_env("TF_LOG", "");
        for (what, text) in [
            ("plan output", format!("{}{}", plan.stdout, plan.stderr)),
            ("TF_LOG output", format!("{}{}", first.stdout, first.stderr)),
            ("state", wd.state_text()),
        ] {
            assert_no_secret(what, &text);
            assert!(
                !text.contains("s3cret-db-7731"),
                "the app's secret env is in the {what}"
            );
        }

        // 1. Each answers as its auth says: the two_factor app sends to the login, the public ones answer.
        let (code, headers, _) = get_served(&vm, &format!("admin.{DOMAIN}"), "/");
        assert_eq!(code, 302, "{headers}");
        assert!(
            headers.contains(&format!("https://auth.{DOMAIN}/")),
            "{headers}"
        );
        let (code, headers, body) = get_served(&vm, &format!("api.{DOMAIN}"), "/");
        assert_eq!(code, 200, "{headers}{body}");
        assert!(
            headers
                .to_ascii_lowercase()
                .contains("strict-transport-security"),
            "HSTS: {headers}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(json["message"], "hello from the VM");
        let (code, headers, body) = get_served(&vm, &format!("www.{DOMAIN}"), "/");
        assert_eq!(
            (code, body.as_str()),
            (200, "<h1>static site</h1>\n"),
            "{headers}"
        );
        assert!(headers.contains("no-cache"), "HTML revalidates: {headers}");
        // Under a path of the main site: public there (Authelia's rule for the path), while the site keeps its login.
        let (code, headers, body) = get(&vm, DOMAIN, "/docs/");
        assert_eq!(
            (code, body.as_str()),
            (200, "<h1>static site</h1>\n"),
            "{headers}"
        );
        let (code, headers, _) = get(&vm, DOMAIN, "/docsx");
        assert_eq!(code, 302, "only the prefix is public: {headers}");
        let (code, headers, _) = get(&vm, DOMAIN, "/docs");
        assert_eq!(code, 308, "{headers}");
        // Caddy decides on the cleaned path: climbing out of the public prefix lands behind the login.
        for sneaky in [
            "/docs/../global/health",
            "/docs/%2e%2e/global/health",
            "/docs/..%2fglobal/health",
        ] {
            let (code, headers, body) = get(&vm, DOMAIN, sneaky);
            assert!(
                code == 302 || code == 404,
                "{sneaky}: {code}\n{headers}{body}"
            );
            assert!(
                !body.contains("healthy"),
                "{sneaky} reached OpenCode: {body}"
            );
        }
        let (_, headers, _) = get(&vm, &format!("www.{DOMAIN}"), "/assets/app.0123abcd.js");
        assert!(
            headers.contains("immutable"),
            "hashed names are immutable: {headers}"
        );
        assert!(
            headers
                .to_ascii_lowercase()
                .contains("content-encoding: zstd")
                || headers
                    .to_ascii_lowercase()
                    .contains("content-encoding: gzip"),
            "{headers}"
        );
        // The secret env reached the app, from a 0600 file.
        let env = in_vm(&vm, "cd /opt/cloudcode && stat -c %a secrets/app-admin.env && docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' $(docker ps -q --filter label=com.docker.compose.service=app-admin)");
        assert!(
            env.starts_with("600") && env.contains(&format!("DATABASE_URL={DB_URL}")),
            "{env}"
        );
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "converged: {}", plan.stdout);

        // 2. Drift: a hand edit of an app's file, and a stopped app container, show in the next plan.
        in_vm(&vm, "echo '# edited' >> /opt/cloudcode/apps/api/app.py");
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 2, "a hand edit is drift: {}", plan.stdout);
        assert!(plan.stdout.contains("apps/api/app.py"), "{}", plan.stdout);
        apply_ok(&wd);
        in_vm(&vm, "cd /opt/cloudcode && docker compose stop app-admin");
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 2, "a stopped app is drift: {}", plan.stdout);
        assert!(plan.stdout.contains("app-admin"), "{}", plan.stdout);
        apply_ok(&wd);
        let (code, _, _) = get(&vm, &format!("admin.{DOMAIN}"), "/");
        assert_eq!(code, 302);

        // 3. One changed build file: only it moves, only the api is rebuilt and replaced; a deleted site file goes.
        let before = container_ids(&vm);
        let app_py = std::fs::read_to_string(api.join("app.py")).unwrap();
        std::fs::write(
            api.join("app.py"),
            app_py.replace(r#"os.environ.get("APP_VERSION", "dev")"#, r#""2""#),
        )
        .unwrap();
        std::fs::remove_file(site.join("old.html")).unwrap();
        wd.set_env("TF_LOG", "debug");
        // Requests to the API all along: Caddy holds them while the app is replaced, none fails.
        let vm_ip = vm.ssh_host.clone();
        let api_name = format!("api.{DOMAIN}");
        let (update, requests) = with_requests(
            |_| ("/".to_string(), get_at(&vm_ip, &api_name, "/").0),
            || apply_ok(&wd),
        );
        wd.set_env("TF_LOG", "");
        eprintln!("requests to the API during the update: {requests:?}");
        assert!(requests.total >= 5, "{requests:?}");
        assert!(
            requests.failed.is_empty(),
            "requests failed while the app was replaced: {requests:?}"
        );
        let (line, bytes) = uploaded(&format!("{}{}", update.stdout, update.stderr));
        let changed_py = std::fs::metadata(api.join("app.py")).unwrap().len() as usize;
        eprintln!("update moved {bytes} bytes: {line}");
        // The changed file, and the two rendered files that name it (the Compose file's label, the manifest): not
        // the rest of the build directory (the wheels alone are several hundred KB).
        assert!(
            line.contains(
                r#"files="[\"apps/api/app.py\", \"docker-compose.yml\", \"manifest.json\"]""#
            ),
            "{line}"
        );
        let sizes = in_vm(
            &vm,
            "cd /opt/cloudcode && stat -c %s apps/api/app.py docker-compose.yml manifest.json",
        );
        let on_host: usize = sizes
            .split_whitespace()
            .map(|n| n.parse::<usize>().unwrap())
            .sum();
        assert_eq!(bytes, on_host, "{sizes}");
        assert!(on_host > changed_py);
        let (_, _, body) = get(&vm, &format!("api.{DOMAIN}"), "/");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(json["version"], "2", "the new code answers: {body}");
        let after = container_ids(&vm);
        for (svc, id) in &before {
            let replaced = after.get(svc) != Some(id);
            assert_eq!(replaced, svc == "app-api", "{svc}: replaced={replaced}");
        }
        assert_eq!(
            in_vm(
                &vm,
                "test -e /opt/cloudcode/sites/www/old.html && echo there || echo gone"
            )
            .trim(),
            "gone"
        );
        let (code, _, _) = get(&vm, &format!("www.{DOMAIN}"), "/old.html");
        assert_eq!(code, 404);
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "converged: {}", plan.stdout);

        // 4. Import keeps working: a second working directory adopts the host with its apps and sites; nothing is
        //    replaced and the next plan is empty (no secret needed: its version is the host's).
        let adopt = assert_import_adopts(e, &vm, &hcl(&vm, &api, &site, true), provider_bin!());
        let state: serde_json::Value = serde_json::from_str(&adopt.state_text()).unwrap();
        let attrs = &state["resources"][0]["instances"][0]["attributes"];
        assert_eq!(attrs["apps"]["api"]["port"], 8000, "{attrs:#}");
        assert_eq!(attrs["static_sites"]["docs"]["host"], "/docs");

        // 5. Removing an app and a site: the container, its secret env file and the site's files go; the app's
        //    volume stays (nothing the user had is lost); the rest keeps running.
        write_main(&wd, &hcl(&vm, &api, &site, false));
        wd.unset_env("TF_VAR_app_secret_env");
        let before = container_ids(&vm);
        apply_ok(&wd);
        let after = container_ids(&vm);
        assert!(!after.contains_key("app-admin"), "{after:?}");
        assert_eq!(
            after.get("app-api"),
            before.get("app-api"),
            "the other app is kept"
        );
        let host = in_vm(
            &vm,
            "cd /opt/cloudcode && ls secrets; echo ---; ls sites; echo ---; docker volume ls --format '{{.Name}}'",
        );
        let parts: Vec<&str> = host.split("---").collect();
        assert!(!parts[0].contains("app-admin.env"), "{host}");
        assert!(
            !parts[1].contains("www") && parts[1].contains("docs"),
            "{host}"
        );
        assert!(
            parts[2].contains("app_admin_data"),
            "the volume is kept: {host}"
        );
        let (code, _, _) = get(&vm, &format!("admin.{DOMAIN}"), "/");
        assert_ne!(code, 302, "no site for the removed app any more");
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "converged: {}", plan.stdout);
    });
}
