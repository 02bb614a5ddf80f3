//! Scenarios checked by the real consumers: Caddy (`caddy validate`/`adapt`), Docker Compose v2 (`docker compose
//! config`, no engine), Python argon2-cffi (verifies our hash), Docker's Dockerfile parser (PyPI `dockerfile`) and
//! `sh -n` for the shell scripts. Each binary must be installed (scripts/deps/20-bundle.sh); a missing one fails.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use cloudcode_bundle::{paths, Settings};
use serde_json::Value;
use support::*;

fn caddy_variants() -> Vec<(&'static str, Settings)> {
    let custom = custom_domain();
    let mut fallback = Settings::default_for(
        &cloudcode_bundle::fallback_domain("8.8.4.4").unwrap(),
        "admin",
        "a@example.com",
    );
    fallback.tls_mode = "internal".into();
    let mut terminal_off = custom_domain();
    terminal_off.terminal_enabled = false;
    let mut alt = custom_domain();
    alt.https_alt_port = Some(8443);
    // With idle suspend on, both site blocks also log every request as JSON for the agent.
    alt.idle_suspend = Some(cloudcode_bundle::IdleSuspend {
        after: "2h".into(),
        ecs_endpoint: None,
    });
    vec![
        ("custom domain", custom),
        ("fallback domain", fallback),
        ("terminal off", terminal_off),
        ("8443 on, idle suspend", alt),
    ]
}

/// All (host, path-matcher, upstream) triples of Caddy's adapted JSON, flattened from routes and subroutes.
fn routes(cfg: &Value) -> Vec<String> {
    fn walk(v: &Value, hosts: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                let mut hosts = hosts.to_string();
                if let Some(ms) = m.get("match") {
                    for mm in ms.as_array().into_iter().flatten() {
                        if let Some(h) = mm.get("host") {
                            hosts = h
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|x| x.as_str().unwrap())
                                .collect::<Vec<_>>()
                                .join(",");
                        }
                        if let Some(p) = mm.get("path") {
                            out.push(format!("{hosts} path={}", p));
                        }
                    }
                }
                if let Some(u) = m.get("upstreams") {
                    out.push(format!("{hosts} -> {}", u[0]["dial"].as_str().unwrap()));
                }
                for (k, v) in m {
                    if k != "match" {
                        walk(v, &hosts, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, hosts, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&cfg["apps"]["http"]["servers"], "", &mut out);
    out
}

#[test]
fn real_caddy_accepts_custom_fallback_terminal_off_and_8443_variants() {
    for (name, s) in caddy_variants() {
        let b = render_ok(&s, &secrets_fixed());
        let dir = tempfile::tempdir().unwrap();
        write_bundle(&b, dir.path());
        let file = dir.path().join(paths::CADDYFILE);
        caddy_validate(&file);
        let cfg = caddy_adapt(&file);
        let r = routes(&cfg).join("\n");
        let d = &s.domain;
        assert!(
            r.contains(&format!("{d} -> devbox_blue:4096")),
            "{name}: {r}"
        );
        assert!(
            r.contains(&format!("auth.{d} -> authelia:9091")),
            "{name}: {r}"
        );
        assert!(
            r.contains(&format!("{d} -> authelia:9091")),
            "{name}: forward_auth missing: {r}"
        );
        assert_eq!(
            r.contains("devbox_blue:7681"),
            s.terminal_enabled,
            "{name}: {r}"
        );
        let listen = cfg["apps"]["http"]["servers"].to_string();
        assert_eq!(
            listen.contains(":8443"),
            s.https_alt_port.is_some(),
            "{name}: {listen}"
        );
        let text = cfg.to_string();
        assert!(text.contains("Strict-Transport-Security"), "{name}");
        assert_eq!(
            cfg["logging"]["logs"]
                .to_string()
                .contains("/var/log/caddy/access.log"),
            s.idle_suspend.is_some(),
            "{name}: {}",
            cfg["logging"]
        );
        if s.tls_mode == "acme" {
            assert!(
                text.contains(s.acme_email_or_admin()),
                "{name}: global email missing"
            );
        } else {
            assert!(
                text.contains("\"internal\""),
                "{name}: internal issuer missing"
            );
        }
    }
}

#[test]
fn real_compose_accepts_the_file_without_an_engine_and_reads_back_the_values() {
    let mut s = custom_domain();
    s.images.caddy = Some("localhost:5000/mirror/caddy:2.10.2".into());
    s.images.devbox = Some("cloudcode-devbox:test".into());
    let b = render_ok(&s, &secrets_fixed());
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&b, dir.path());
    let cfg = compose_config(dir.path());
    let svc = &cfg["services"];
    let names: Vec<&String> = svc.as_object().unwrap().keys().collect();
    assert_eq!(names, ["authelia", "caddy", "devbox_blue", "devbox_green"]);
    // The two colours are one definition; only their profiles differ.
    let mut green = svc["devbox_green"].clone();
    green["profiles"] = svc["devbox_blue"]["profiles"].clone();
    assert_eq!(green, svc["devbox_blue"]);
    assert_eq!(
        svc["devbox_green"]["profiles"],
        serde_json::json!(["green"])
    );
    assert_eq!(svc["caddy"]["image"], "localhost:5000/mirror/caddy:2.10.2");
    assert_eq!(
        svc["authelia"]["image"],
        cloudcode_bundle::settings::DEFAULT_AUTHELIA_IMAGE
    );
    assert_eq!(svc["devbox_blue"]["image"], "cloudcode-devbox:test");
    // Only Caddy publishes ports.
    assert!(svc["authelia"].get("ports").is_none() && svc["devbox_blue"].get("ports").is_none());
    let ports: Vec<u64> = svc["caddy"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["published"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ports, [80, 443, 443]);
    assert_eq!(svc["devbox_blue"]["init"], true);
    assert_eq!(
        svc["devbox_blue"]["healthcheck"]["test"][3],
        "http://127.0.0.1:4096/global/health"
    );
    // The API key from the env file, exactly as given ($, #, " survive).
    assert_eq!(
        svc["devbox_blue"]["environment"]["ANTHROPIC_API_KEY"],
        API_KEY
    );
    assert_eq!(svc["devbox_blue"]["environment"]["TZ"], "Asia/Shanghai");
    for name in ["caddy", "authelia", "devbox_blue"] {
        assert_eq!(
            svc[name]["labels"][cloudcode_bundle::HASH_LABEL]
                .as_str()
                .unwrap()
                .len(),
            64,
            "{name}"
        );
    }
    let env = &svc["authelia"]["environment"];
    for h in cloudcode_bundle::HOST_SECRETS {
        assert_eq!(env[h.env], format!("/run/secrets/{}", h.name));
        assert_eq!(
            cfg["secrets"][h.name]["file"],
            dir.path().join(h.path).to_str().unwrap()
        );
    }
    let vols: Vec<&String> = cfg["volumes"].as_object().unwrap().keys().collect();
    assert_eq!(
        vols,
        [
            "authelia_data",
            "caddy_config",
            "caddy_data",
            "opencode_config",
            "opencode_data",
            "workspace"
        ]
    );

    // devbox_build adds a build section with the pinned OpenCode version; 8443 adds the port.
    let s = fallback_terminal_off_8443();
    let b = render_ok(&s, &cloudcode_bundle::Secrets::default());
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&b, dir.path());
    let cfg = compose_config(dir.path());
    assert_eq!(
        cfg["services"]["devbox_blue"]["build"]["args"]["OPENCODE_VERSION"],
        "1.18.33"
    );
    assert_eq!(
        cfg["services"]["devbox_blue"]["environment"]["CLOUDCODE_TERMINAL"],
        "0"
    );
    assert!(cfg["services"]["caddy"]["ports"]
        .to_string()
        .contains("8443"));
    // Without the write-only key supplied there is no .env and Compose still accepts the project.
    assert!(cfg["services"]["devbox_blue"]["environment"]
        .get("CLOUDCODE_LLM_API_KEY")
        .is_none());
}

fn python_verify(hash: &str, password: &str) -> bool {
    let mut child = Command::new(python())
        .args([
            "-c",
            "import sys, argon2\nh=sys.argv[1]\npw=sys.stdin.read()\ntry:\n    argon2.PasswordHasher().verify(h, pw)\n    print('ok')\nexcept argon2.exceptions.VerifyMismatchError:\n    print('mismatch')",
            hash,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    match String::from_utf8(out.stdout).unwrap().trim() {
        "ok" => true,
        "mismatch" => false,
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn argon2_cffi_verifies_the_hash_and_rejects_a_wrong_password() {
    let hash = cloudcode_bundle::hash_password(PASSWORD).unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
        "{hash}"
    );
    let parts: Vec<&str> = hash.split('$').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    assert_eq!(b64.decode(parts[4]).unwrap().len(), 16, "salt length");
    assert_eq!(b64.decode(parts[5]).unwrap().len(), 32, "key length");
    assert!(python_verify(&hash, PASSWORD));
    assert!(!python_verify(&hash, "correct horse battery stapler"));
    let unicode = "пароль-密码-🔑-long enough";
    assert!(python_verify(
        &cloudcode_bundle::hash_password(unicode).unwrap(),
        unicode
    ));
    assert_ne!(
        cloudcode_bundle::hash_password(PASSWORD).unwrap(),
        hash,
        "fresh salt each time"
    );
}

#[test]
fn dockerfile_parses_with_dockers_parser_and_scripts_pass_sh_n() {
    let b = render_ok(&fallback_terminal_off_8443(), &secrets_fixed());
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&b, dir.path());
    let out = run_ok(Command::new(python()).args([
        "-c",
        "import sys, json, dockerfile\nprint(json.dumps([[c.cmd, list(c.value)] for c in dockerfile.parse_file(sys.argv[1])]))",
        dir.path().join(paths::DOCKERFILE).to_str().unwrap(),
    ]));
    let cmds: Vec<(String, Vec<String>)> = serde_json::from_str(&out).unwrap();
    let find = |c: &str| {
        cmds.iter()
            .filter(|(k, _)| k == c)
            .map(|(_, v)| v.join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(cmds[0].0, "FROM");
    assert_eq!(cmds[0].1, ["docker.io/library/ubuntu:24.04"]);
    assert_eq!(find("ARG"), "OPENCODE_VERSION=1.18.33");
    let run = find("RUN");
    for needle in [
        "opencode-ai@${OPENCODE_VERSION}",
        " ttyd ",
        " gh ",
        " nodejs ",
        " python3 ",
        " git ",
        " sudo ",
        "useradd",
        "NOPASSWD",
        "chown -R dev:dev /home/dev",
    ] {
        assert!(run.contains(needle), "missing {needle:?} in RUN:\n{run}");
    }
    assert_eq!(find("ENTRYPOINT"), "/usr/local/bin/cloudcode-entrypoint");
    assert_eq!(
        find("COPY"),
        "entrypoint.sh /usr/local/bin/cloudcode-entrypoint"
    );
    assert!(
        !cmds.iter().any(|(k, _)| k == "USER"),
        "entrypoint drops privileges itself after fixing volume ownership"
    );

    let entry = text(&b, paths::ENTRYPOINT);
    for needle in [
        "opencode serve --hostname 0.0.0.0 --port 4096",
        "ttyd -W -b /terminal",
        "while :; do",
        "setpriv --reuid=dev",
    ] {
        assert!(entry.contains(needle), "entrypoint lacks {needle:?}");
    }
    for script in [paths::ENTRYPOINT, paths::ENSURE_SECRETS] {
        run_ok(Command::new("sh").arg("-n").arg(dir.path().join(script)));
    }
}

#[test]
fn real_compose_reads_the_idle_service_with_its_read_only_mounts_and_no_capabilities() {
    let mut s = custom_domain();
    s.idle_suspend = Some(cloudcode_bundle::IdleSuspend {
        after: "2h".into(),
        ecs_endpoint: Some("ecs-vpc.cn-hangzhou.aliyuncs.com".into()),
    });
    let b = render_ok(&s, &secrets_fixed());
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&b, dir.path());
    let cfg = compose_config(dir.path());
    let idle = &cfg["services"]["idle"];
    assert_eq!(idle["command"], serde_json::json!(["idle"]));
    assert_eq!(idle["read_only"], true);
    assert_eq!(idle["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        idle["environment"]["CLOUDCODE_IDLE_ECS_ENDPOINT"],
        "ecs-vpc.cn-hangzhou.aliyuncs.com"
    );
    let mounts: Vec<(String, String, bool)> = idle["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["source"].as_str().unwrap().to_string(),
                v["target"].as_str().unwrap().to_string(),
                v["read_only"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("caddy_logs".into(), "/var/log/caddy".into(), true),
            ("/run/utmp".into(), "/host/run/utmp".into(), true),
        ]
    );
    assert!(idle.get("ports").is_none());
}
