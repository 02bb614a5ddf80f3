//! Apps and static sites (`apps`, `static_sites`) in the rendered bundle: one Compose service per app, a Caddy site
//! per name with the login only where `auth` asks for it, Authelia rules per auth, uploaded trees, secret env kept
//! out of the manifest — read back by the real Caddy and Compose.
mod support;

use std::collections::BTreeMap;
use std::path::Path;

use cloudcode_bundle::apps::{App, StaticSite};
use cloudcode_bundle::{paths, render, FileKind, RenderError, Settings};
use support::{caddy_adapt, compose_config, custom_domain, render_ok, secrets_fixed, write_bundle};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `api` (public, built from a directory), `admin` (two_factor image, volume, memory, secret env), `docs` (a
/// static site on a path, behind the login), `www` (a public static site on its own name).
fn with_apps(root: &Path) -> Settings {
    write(root, "api/Dockerfile", "FROM python:3.12-slim\n");
    write(root, "api/app.py", "print('hi')\n");
    write(root, "docs/index.html", "<h1>docs</h1>\n");
    write(root, "docs/app.0123abcd.js", "x\n");
    write(root, "www/index.html", "<h1>www</h1>\n");
    let mut s = custom_domain();
    s.apps.insert(
        "api".into(),
        App {
            build: Some(root.join("api").display().to_string()),
            port: 8000,
            auth: Some("public".into()),
            env: BTreeMap::from([("MODE".to_string(), "a $b 'c'".to_string())]),
            health: Some("/healthz".into()),
            command: vec!["gunicorn".into(), "-b".into(), "0.0.0.0:8000".into()],
            ..App::default()
        },
    );
    s.apps.insert(
        "admin".into(),
        App {
            image: Some("docker.io/library/nginx:1.27".into()),
            port: 80,
            secret_env_wo_version: Some(1),
            volumes: BTreeMap::from([("data".to_string(), "/data".to_string())]),
            memory: Some("256m".into()),
            ..App::default()
        },
    );
    s.static_sites.insert(
        "docs".into(),
        StaticSite {
            dir: root.join("docs").display().to_string(),
            host: Some("/docs".into()),
            auth: None,
        },
    );
    s.static_sites.insert(
        "www".into(),
        StaticSite {
            dir: root.join("www").display().to_string(),
            host: None,
            auth: Some("public".into()),
        },
    );
    s
}

/// The fixed secrets plus the `admin` app's secret env.
fn secrets() -> cloudcode_bundle::Secrets {
    let mut s = secrets_fixed();
    s.app_secret_env.insert(
        "admin".into(),
        BTreeMap::from([("DB_PASSWORD".to_string(), "hunter2-secret".to_string())]),
    );
    s
}

fn text(b: &cloudcode_bundle::Bundle, path: &str) -> String {
    String::from_utf8(b.files[path].bytes.clone()).unwrap()
}

#[test]
fn each_app_is_a_compose_service_and_the_real_compose_reads_it_back() {
    let root = tempfile::tempdir().unwrap();
    let b = render_ok(&with_apps(root.path()), &secrets());
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&b, dir.path());
    let cfg = compose_config(dir.path());
    let api = &cfg["services"]["app-api"];
    assert_eq!(
        api["build"]["context"],
        dir.path().join("apps/api").display().to_string()
    );
    assert!(api["image"]
        .as_str()
        .unwrap()
        .starts_with("cloudcode-app-api:"));
    assert_eq!(api["environment"]["MODE"], "a $b 'c'", "no interpolation");
    assert_eq!(
        api["command"],
        serde_json::json!(["gunicorn", "-b", "0.0.0.0:8000"])
    );
    assert!(api.get("ports").is_none(), "apps publish nothing");
    let admin = &cfg["services"]["app-admin"];
    assert_eq!(admin["image"], "docker.io/library/nginx:1.27");
    assert_eq!(admin["volumes"][0]["source"], "app_admin_data");
    assert_eq!(admin["volumes"][0]["target"], "/data");
    assert_eq!(admin["mem_limit"], "268435456");
    assert!(cfg["volumes"].get("app_admin_data").is_some());
    // Caddy serves the sites read-only.
    let caddy_mounts = cfg["services"]["caddy"]["volumes"].as_array().unwrap();
    assert!(caddy_mounts
        .iter()
        .any(|m| m["target"] == "/srv/sites" && m["read_only"] == true));
    // The build context and the site files are in the bundle, with their bytes; the app's secret env is not.
    assert_eq!(text(&b, "apps/api/app.py"), "print('hi')\n");
    assert_eq!(text(&b, "sites/www/index.html"), "<h1>www</h1>\n");
    assert!(!render_ok(&with_apps(root.path()), &secrets_fixed())
        .files
        .contains_key("secrets/app-admin.env"));
    // Compose reads the secret env file into the container's environment.
    assert_eq!(admin["environment"]["DB_PASSWORD"], "hunter2-secret");
    let manifest = text(&b, paths::MANIFEST);
    assert!(manifest.contains("\"secrets/app-admin.env\""));
    assert!(b.manifest.files.contains_key("sites/docs/app.0123abcd.js"));
}

#[test]
fn caddy_asks_for_the_login_only_where_auth_says_and_serves_sites_with_cache_headers() {
    let root = tempfile::tempdir().unwrap();
    let b = render_ok(&with_apps(root.path()), &secrets());
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&b, dir.path());
    let cfg = caddy_adapt(&dir.path().join(paths::CADDYFILE));
    let routes = cfg["apps"]["http"]["servers"]["srv0"]["routes"]
        .as_array()
        .unwrap();
    let by_host = |h: &str| {
        routes
            .iter()
            .find(|r| {
                r["match"][0]["host"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == h))
            })
            .unwrap_or_else(|| panic!("no site for {h}"))
            .to_string()
    };
    let api = by_host("api.code.example.com");
    assert!(
        api.contains("app-api:8000") && api.contains("/healthz"),
        "{api}"
    );
    assert!(
        !api.contains("forward-auth"),
        "a public app has no login: {api}"
    );
    assert!(
        api.contains("Strict-Transport-Security"),
        "HSTS on public apps too"
    );
    let admin = by_host("admin.code.example.com");
    assert!(
        admin.contains("app-admin:80") && admin.contains("forward-auth"),
        "{admin}"
    );
    let www = by_host("www.code.example.com");
    assert!(
        www.contains("file_server") && www.contains("/srv/sites/www"),
        "{www}"
    );
    assert!(
        www.contains("immutable") && www.contains("no-cache") && www.contains("zstd"),
        "{www}"
    );
    let main = by_host("code.example.com");
    assert!(
        main.contains("/srv/sites/docs") && main.contains("/docs/*"),
        "{main}"
    );
}

#[test]
fn authelia_gets_a_rule_per_name_behind_a_login_and_none_for_public_names_or_paths() {
    let root = tempfile::tempdir().unwrap();
    let b = render_ok(&with_apps(root.path()), &secrets());
    let cfg: serde_yaml::Value =
        serde_yaml::from_slice(&b.files[paths::AUTHELIA_CONFIG].bytes).unwrap();
    let rules: Vec<(String, String)> = cfg["access_control"]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(
                r.get("resources").is_none(),
                "paths are Caddy's to decide: {r:?}"
            );
            (
                r["domain"].as_str().unwrap().to_string(),
                r["policy"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The app on its own name behind the login gets its rule; the public names (api, www) none; the path (docs)
    // is the main site's.
    assert_eq!(
        rules,
        [
            ("admin.code.example.com".into(), "two_factor".into()),
            ("code.example.com".into(), "two_factor".into()),
        ]
    );
}

#[test]
fn a_supplied_secret_env_goes_to_a_0600_secret_file_and_never_into_the_manifest() {
    let root = tempfile::tempdir().unwrap();
    let mut secrets = secrets();
    let b = render_ok(&with_apps(root.path()), &secrets);
    let f = &b.files["secrets/app-admin.env"];
    assert_eq!(f.mode, 0o600);
    assert!(matches!(f.kind, FileKind::Secret { .. }));
    assert!(String::from_utf8_lossy(&f.bytes).contains("DB_PASSWORD='hunter2-secret'"));
    for (p, f) in &b.files {
        if f.kind == FileKind::Managed {
            assert!(
                !String::from_utf8_lossy(&f.bytes).contains("hunter2"),
                "{p}"
            );
        }
    }
    // A value the env file cannot carry is refused, naming the key and not the value.
    secrets
        .app_secret_env
        .get_mut("admin")
        .unwrap()
        .insert("BAD".into(), "it's".into());
    let e = render(&with_apps(root.path()), &secrets)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("app_secret_env_wo.admin.BAD") && !e.contains("it's"),
        "{e}"
    );
}

#[test]
fn a_changed_build_file_changes_only_that_apps_label_and_file() {
    let root = tempfile::tempdir().unwrap();
    let s = with_apps(root.path());
    let before = render_ok(&s, &secrets_fixed());
    write(root.path(), "api/app.py", "print('changed')\n");
    let after = render_ok(&s, &secrets_fixed());
    let changed: Vec<&String> = after
        .managed_hashes()
        .iter()
        .filter(|(p, h)| before.managed_hashes().get(*p) != Some(h))
        .map(|(p, _)| p)
        .filter(|p| p.as_str() != paths::MANIFEST)
        .collect::<Vec<_>>()
        .into_iter()
        .map(|p| after.files.get_key_value(p).unwrap().0)
        .collect();
    assert_eq!(changed, ["apps/api/app.py", "docker-compose.yml"]);
    let label = |b: &cloudcode_bundle::Bundle, svc: &str| {
        let c: serde_yaml::Value = serde_yaml::from_slice(&b.files[paths::COMPOSE].bytes).unwrap();
        c["services"][svc]["labels"][cloudcode_bundle::HASH_LABEL]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(label(&before, "app-api"), label(&after, "app-api"));
    assert_eq!(label(&before, "app-admin"), label(&after, "app-admin"));
    assert_eq!(label(&before, "devbox_blue"), label(&after, "devbox_blue"));
}

#[test]
fn bad_apps_are_refused_naming_the_field() {
    let root = tempfile::tempdir().unwrap();
    let mut s = with_apps(root.path());
    let mut both = s.apps["admin"].clone();
    both.build = Some("/tmp".into());
    s.apps.insert("both".into(), both);
    s.apps.insert(
        "neither".into(),
        App {
            port: 80,
            ..App::default()
        },
    );
    s.apps.insert(
        "Bad_Name".into(),
        App {
            image: Some("x:1".into()),
            port: 1,
            ..App::default()
        },
    );
    let nodocker = App {
        build: Some(root.path().join("www").display().to_string()),
        port: 1,
        ..App::default()
    };
    s.apps.insert("nodocker".into(), nodocker.clone());
    s.apps.get_mut("admin").unwrap().auth = Some("none".into());
    s.static_sites.get_mut("www").unwrap().host = Some("api".into());
    let Err(RenderError::Invalid(errors)) = render(&s, &secrets_fixed()) else {
        panic!("accepted")
    };
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    for want in [
        "apps.both.build",
        "apps.neither.image",
        "apps.Bad_Name",
        "apps.admin.auth",
        "static_sites.www.host",
    ] {
        assert!(fields.contains(&want), "{want} not in {fields:?}");
    }
    // The directory rule runs once the settings pass.
    let mut s = with_apps(root.path());
    s.apps.insert("nodocker".into(), nodocker);
    let e = render(&s, &secrets_fixed()).unwrap_err().to_string();
    assert!(
        e.contains("apps.nodocker.build") && e.contains("no Dockerfile"),
        "{e}"
    );
}

#[test]
fn a_stack_without_apps_renders_no_app_service_mount_or_rule() {
    let b = render_ok(&custom_domain(), &secrets_fixed());
    let compose = text(&b, paths::COMPOSE);
    assert!(!compose.contains("app-") && !compose.contains("/srv/sites"));
    assert!(!text(&b, paths::AUTHELIA_CONFIG).contains("resources"));
    assert!(!b
        .files
        .keys()
        .any(|p| p.starts_with("apps/") || p.starts_with("sites/")));
}

#[test]
fn an_apps_own_tz_replaces_the_stacks_and_the_real_compose_reads_one_value() {
    let root = tempfile::tempdir().unwrap();
    let mut s = with_apps(root.path());
    s.apps
        .get_mut("api")
        .unwrap()
        .env
        .insert("TZ".into(), "Europe/Berlin".into());
    let b = render_ok(&s, &secrets());
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&b, dir.path());
    let cfg = compose_config(dir.path());
    assert_eq!(
        cfg["services"]["app-api"]["environment"]["TZ"],
        "Europe/Berlin"
    );
    assert_eq!(
        cfg["services"]["app-admin"]["environment"]["TZ"],
        s.timezone.as_str()
    );
}

#[test]
fn where_and_behind_which_login_an_app_is_served_does_not_replace_its_container() {
    let root = tempfile::tempdir().unwrap();
    let s = with_apps(root.path());
    let label = |s: &Settings| {
        let b = render_ok(s, &secrets());
        let c: serde_yaml::Value = serde_yaml::from_slice(&b.files[paths::COMPOSE].bytes).unwrap();
        c["services"]["app-api"]["labels"][cloudcode_bundle::HASH_LABEL]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = label(&s);
    let mut routed = s.clone();
    let api = routed.apps.get_mut("api").unwrap();
    api.host = Some("v2".into());
    api.auth = Some("one_factor".into());
    api.health = Some("/ready".into());
    assert_eq!(label(&routed), before, "only Caddy's configuration changes");
    let mut env = s.clone();
    env.apps
        .get_mut("api")
        .unwrap()
        .env
        .insert("NEW".into(), "1".into());
    assert_ne!(label(&env), before, "the container's environment changes");
}

#[test]
fn stale_files_are_the_hosts_app_and_site_files_the_bundle_no_longer_has() {
    let root = tempfile::tempdir().unwrap();
    let mut s = with_apps(root.path());
    let b = render_ok(&s, &secrets());
    let host_files = [
        "apps/api/app.py",      // still there
        "apps/api/removed.py",  // deleted locally
        "apps/gone/Dockerfile", // a removed app
        "sites/www/index.html", // still there
        "sites/www/old.html",   // deleted locally
        "apps/api/a b.txt",     // a hand-made name the removal could not carry: left alone
        "caddy/Caddyfile",      // not an app's or site's
    ];
    let host_secrets = ["app-admin.env", "app-gone.env", "authelia_session_secret"];
    let stale = cloudcode_bundle::apps::stale(&b, host_files, host_secrets);
    assert_eq!(
        stale,
        [
            "apps/api/removed.py",
            "apps/gone/Dockerfile",
            "sites/www/old.html",
            "secrets/app-gone.env"
        ]
    );
    // Without its secret env version, the app's env file goes too.
    s.apps.get_mut("admin").unwrap().secret_env_wo_version = None;
    let b = render_ok(&s, &secrets_fixed());
    let stale = cloudcode_bundle::apps::stale(&b, [], host_secrets);
    assert_eq!(stale, ["secrets/app-admin.env", "secrets/app-gone.env"]);
}
