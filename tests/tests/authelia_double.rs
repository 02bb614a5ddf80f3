//! The Authelia contract double held to the real Authelia: every recorded exchange of
//! `tests/fixtures/authelia/recordings-*.jsonl` replayed against the double (status, `Location`, cookie name and
//! attributes, content type, JSON shape), then what Authelia refuses at start-up and in its flows — each refused
//! case beside the allowed one.

use std::process::Command;

use std::path::Path;

use cloudcode_tests::authelia::{
    cloudcode_otc, fixture, pinned_version, Browser, DoubleFiles, LocalDouble, Reply, Totp,
    Transport,
};
use cloudcode_tests::webauthn::SoftAuthenticator;
use serde_json::{json, Value};

const PASSWORD: &str = "correct-horse-battery-staple-42";

/// A stack's Authelia files as `cloudcode_stack` renders them for `domain` (user alice).
fn files_for(domain: &str) -> DoubleFiles {
    let mut s = cloudcode_bundle::Settings::default_for(domain, "alice", "alice@example.com");
    s.admin_display_name = Some("Alice Example".into());
    s.tls_mode = "internal".into();
    let secrets = cloudcode_bundle::Secrets {
        admin_password_hash: Some(cloudcode_bundle::hash_password(PASSWORD).unwrap()),
        llm_api_key: None,
        ..Default::default()
    };
    DoubleFiles::from_bundle(&cloudcode_bundle::render(&s, &secrets).unwrap())
}

fn start(files: &DoubleFiles) -> LocalDouble {
    LocalDouble::start(files).unwrap_or_else(|e| panic!("the double did not start: {e}"))
}

/// The one-time code as `cloudcode otc --file` reads it from the double's notifier file.
fn otc(double: &LocalDouble) -> String {
    cloudcode_otc(
        Path::new(env!("CARGO_BIN_EXE_cloudcode-cli-under-test")),
        &double.notification(),
    )
}

/// A JSON value's shape: object keys with their shapes, an array as the shape of its first item, scalars by type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// The object keys of a (possibly truncated) JSON text, in order.
fn keys_in_order(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("\":") {
        let before = &rest[..i];
        if let Some(j) = before.rfind('"') {
            keys.push(before[j + 1..].to_string());
        }
        rest = &rest[i + 2..];
    }
    keys
}

/// Set-Cookie without its value and expiry date: `name`, then the attributes in order.
fn cookie_shape(header: &str) -> (String, Vec<String>) {
    let mut parts = header.split("; ");
    let name = parts.next().unwrap().split('=').next().unwrap().to_string();
    let attrs = parts
        .map(|a| {
            if a.to_ascii_lowercase().starts_with("expires=") {
                "expires=<date>".into()
            } else {
                a.to_string()
            }
        })
        .collect();
    (name, attrs)
}

fn compare(version: &str, line: usize, recorded: &Value, got: &Reply, through_upstream: bool) {
    let what = format!(
        "recordings-{version}.jsonl line {line} ({} {})",
        recorded["request"]["method"], recorded["request"]["path"]
    );
    let want = &recorded["response"];
    assert_eq!(
        got.status as u64,
        want["status"].as_u64().unwrap(),
        "{what}: status; body {}",
        got.body
    );
    if through_upstream {
        return; // OpenCode or ttyd answered: nothing of Authelia's to compare.
    }
    let headers = &want["headers"];
    assert_eq!(
        got.header("location"),
        headers["Location"].as_str(),
        "{what}: Location"
    );
    assert_eq!(
        got.header("content-type"),
        headers["Content-Type"].as_str(),
        "{what}: Content-Type"
    );
    match headers["Set-Cookie"].as_str() {
        Some(c) => {
            let g = got
                .header("set-cookie")
                .unwrap_or_else(|| panic!("{what}: no Set-Cookie"));
            assert_eq!(cookie_shape(g), cookie_shape(c), "{what}: cookie");
        }
        None => assert_eq!(
            got.header("set-cookie"),
            None,
            "{what}: a cookie the real one does not set"
        ),
    }
    let body = want["body"].as_str().unwrap();
    match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let g = got.json();
            assert_eq!(
                shape(&g),
                shape(&v),
                "{what}: JSON shape\nrecorded {v}\ndouble {g}"
            );
            assert_eq!(g["status"], v["status"], "{what}");
            assert_eq!(g["message"], v["message"], "{what}: message");
        }
        Err(_) if body.starts_with('{') => {
            let (w, g) = (keys_in_order(body), keys_in_order(&got.body));
            assert_eq!(
                &g[..w.len().min(g.len())],
                &w[..],
                "{what}: JSON keys (recording truncated)\ndouble {}",
                got.body
            );
        }
        Err(_) => assert_eq!(got.body, body, "{what}: body"),
    }
}

fn recordings(version: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(&format!("recordings-{version}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn replay_every_recording_of_the_real_authelia() {
    let versions: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            Some(
                n.strip_prefix("recordings-")?
                    .strip_suffix(".jsonl")?
                    .to_string(),
            )
        })
        .collect();
    assert!(
        versions.iter().any(|v| v == pinned_version()),
        "no recording of the pinned {}",
        pinned_version()
    );
    for version in &versions {
        replay(version);
    }
}

fn replay(version: &str) {
    let files = files_for("code.test");
    let double = start(&files);
    let mut b = Browser::new(Transport::Direct { port: double.port }, "code.test", None);
    let mut key = SoftAuthenticator::new("https://auth.code.test", true);
    let (mut totp, mut options) = (None::<Totp>, Value::Null);
    let mut replayed = 0;
    for (i, rec) in recordings(version).iter().enumerate() {
        let req = &rec["request"];
        let (method, host, path) = (
            req["method"].as_str().unwrap(),
            req["host"].as_str().unwrap(),
            req["path"].as_str().unwrap(),
        );
        let status = rec["response"]["status"].as_u64().unwrap();
        let mut headers: Vec<(String, String)> =
            vec![("Accept".into(), req["accept"].as_str().unwrap().into())];
        for (n, v) in req["extra"].as_object().unwrap() {
            headers.push((n.clone(), v.as_str().unwrap().into()));
        }
        let hdrs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let got = if host == "code.test" {
            b.send(method, "site", path, &hdrs, None)
        } else if host == "auth.code.test" {
            let mut body = req["json"].clone();
            match (method, path) {
                ("POST", "/api/firstfactor") => {
                    body["password"] = json!(if status == 401 {
                        "not-the-password"
                    } else {
                        PASSWORD
                    })
                }
                ("PUT", "/api/user/session/elevation") => body["otc"] = json!(otc(&double)),
                ("POST", "/api/secondfactor/totp/register")
                | ("POST", "/api/secondfactor/totp") => {
                    body["token"] = json!(totp
                        .as_mut()
                        .expect("a TOTP registration first")
                        .next_code())
                }
                ("POST", "/api/secondfactor/webauthn/credential/register") => {
                    body = key.create(&options)
                }
                ("POST", "/api/secondfactor/webauthn") | ("POST", "/api/firstfactor/passkey") => {
                    body["response"] = key.get(&options)
                }
                ("POST", "/api/secondfactor/password") => body["password"] = json!(PASSWORD),
                _ => {}
            }
            let got = b.send(
                method,
                "auth",
                path,
                &hdrs,
                (!body.is_null()).then_some(&body),
            );
            if got.status == 200 {
                let data = &got.json()["data"];
                if let Some(s) = data["base32_secret"].as_str() {
                    totp = Some(Totp::new(s));
                }
                if data["publicKey"].is_object() {
                    options = data["publicKey"].clone();
                }
            }
            got
        } else {
            continue; // the alternative-port lines, below
        };
        compare(
            version,
            i + 1,
            rec,
            &got,
            host == "code.test" && status == 200,
        );
        replayed += 1;
    }
    assert!(
        replayed >= 24,
        "{version}: only {replayed} exchanges replayed"
    );
    drop(double);

    // Forward-auth called as Caddy calls it, on the alternative port (Host: the authelia service).
    let double = start(&files_for("code.example.com"));
    for (i, rec) in recordings(version)
        .iter()
        .enumerate()
        .filter(|(_, r)| r["request"]["host"] == "authelia:9091")
    {
        let req = &rec["request"];
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-D", "-", "-H", "Host: authelia:9091", "-H"])
            .arg(format!("Accept: {}", req["accept"].as_str().unwrap()));
        for (n, v) in req["extra"].as_object().unwrap() {
            cmd.arg("-H").arg(format!("{n}: {}", v.as_str().unwrap()));
        }
        let out = cmd
            .arg(format!(
                "http://127.0.0.1:{}{}",
                double.port,
                req["path"].as_str().unwrap()
            ))
            .output()
            .unwrap();
        let got = cloudcode_tests::authelia::parse_reply(&out.stdout);
        compare(version, i + 1, rec, &got, false);
    }
    // The log names every request, never a secret.
    let log = double.log_text();
    assert!(!log.contains(PASSWORD));
}

fn refused(files: &DoubleFiles) -> String {
    match LocalDouble::start(files) {
        Ok(_) => panic!("the double started with a configuration Authelia refuses"),
        Err(out) => out,
    }
}

#[test]
fn refuses_to_start_where_authelia_refuses() {
    let good = files_for("code.test");
    drop(start(&good)); // the allowed case

    let mut f = files_for("code.test");
    f.configuration = f
        .configuration
        .replace("theme: 'auto'", "theme: 'auto'\nserver_typo: 1");
    let out = refused(&f);
    assert!(
        out.contains("configuration key not expected: server_typo"),
        "{out}"
    );

    let mut f = files_for("code.test");
    f.configuration = f.configuration.replace(
        "  expiration: '12 hours'",
        "  expiration: '12 hours'\n  refresh: true",
    );
    assert!(refused(&f).contains("configuration key not expected: session.refresh"));

    let mut f = files_for("code.test");
    f.secrets[1].1 = "short-key".into(); // AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE
    assert_eq!(f.secrets[1].0, "AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE");
    assert!(refused(&f).contains("'encryption_key' must be 20 characters or longer"));

    let mut f = files_for("code.test");
    f.secrets
        .retain(|(env, _)| *env != "AUTHELIA_SESSION_SECRET_FILE");
    assert!(refused(&f).contains("session: option 'secret' is required"));

    // The bundle refuses a public suffix at plan; were one to reach Authelia, it would not start.
    let mut f = files_for("code.test");
    f.configuration = f
        .configuration
        .replace("- domain: \"code.test\"", "- domain: \"co.uk\"");
    assert!(f.configuration.contains("\"co.uk\""));
    assert!(refused(&f).contains("public suffix"));

    // A database opened with another encryption key.
    let f = files_for("code.test");
    let mut d = start(&f);
    let mut other = DoubleFiles {
        configuration: f.configuration.clone(),
        users: f.users.clone(),
        secrets: f.secrets.clone(),
    };
    other.secrets[1].1 = "another-encryption-key-0123456789".into();
    for (env, content) in &other.secrets {
        std::fs::write(d.root.join("run/secrets").join(env), content).unwrap();
    }
    let err = d
        .restart(&other)
        .expect_err("started on a database with another key");
    assert!(
        err.contains("encryption key does not appear to be valid"),
        "{err}"
    );
}

#[test]
fn forward_auth_sends_browsers_to_the_portal_and_scripts_get_401() {
    let d = start(&files_for("code.test"));
    let mut b = Browser::new(Transport::Direct { port: d.port }, "code.test", None);
    let r = b.site("/global/health", false);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://auth.code.test/?rd=https%3A%2F%2Fcode.test%2Fglobal%2Fhealth&rm=GET")
    );
    let r = b.site("/global/health", true);
    assert_eq!(
        r.status, 401,
        "XHR: 401, not a redirect a script cannot follow"
    );
    let r = b.send("POST", "site", "/session", &[("Accept", "text/html")], None);
    assert_eq!(r.status, 303, "a browser POST is sent on with 303");
    assert!(r.header("location").unwrap().ends_with("&rm=POST"));

    // On the alternative port the portal keeps the port (Caddy passes authelia_url with it).
    let mut alt = Browser::new(Transport::Direct { port: d.port }, "code.test", Some(8443));
    let r = alt.site("/", false);
    assert_eq!(
        r.header("location"),
        Some("https://auth.code.test:8443/?rd=https%3A%2F%2Fcode.test%3A8443%2F&rm=GET")
    );
    // An authelia_url outside the cookie domain is refused.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Forwarded-Host: code.test", "-H", "X-Forwarded-Proto: https"])
        .arg(format!("http://127.0.0.1:{}/api/authz/forward-auth?authelia_url=https%3A%2F%2Fauth.evil.example%2F", d.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "400");

    // The password alone is one factor: still sent to the portal; the rule asks two.
    b.first_factor("alice", PASSWORD).expect_ok(200, "password");
    assert_eq!(b.site("/", false).status, 302);
    // A name in the cookie domain with no rule: default_policy deny, even once logged in.
    b.elevate(&|| otc(&d));
    let mut totp = b.register_totp();
    let r = b.totp_login(&mut totp).expect_ok(200, "TOTP");
    assert_eq!(r.json()["data"]["redirect"], "https://code.test/");
    let mut direct = Command::new("curl");
    let r = cloudcode_tests::authelia::parse_reply(
        &direct
            .args([
                "-s",
                "-D",
                "-",
                "-H",
                "Host: code.test",
                "-H",
                "X-Forwarded-Host: other.code.test",
                "-H",
                "X-Forwarded-Proto: https",
            ])
            .arg("-H")
            .arg(format!(
                "Cookie: cloudcode_session={}",
                b.cookie.as_deref().unwrap()
            ))
            .arg(format!(
                "http://127.0.0.1:{}/api/authz/forward-auth",
                d.port
            ))
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(r.status, 403, "default deny for other.code.test: {r:?}");
    let r = b.send("GET", "site", "/", &[("Accept", "text/html")], None);
    assert_eq!(r.status, 200, "two factors: through the gate");
}

#[test]
fn regulation_bans_after_the_configured_failures() {
    let d = start(&files_for("code.test"));
    let mut b = Browser::new(Transport::Direct { port: d.port }, "code.test", None);
    // Four failures, then the right password: allowed (max_retries is 5).
    for _ in 0..4 {
        assert_eq!(b.first_factor("alice", "nope").status, 401);
    }
    b.first_factor("alice", PASSWORD)
        .expect_ok(200, "after four failures");
    // Five failures: banned; the right password is refused too, with the same answer.
    for _ in 0..5 {
        assert_eq!(b.first_factor("alice", "nope").status, 401);
    }
    let r = b.first_factor("alice", PASSWORD);
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (401, Some("Authentication failed. Check your credentials."))
    );
    let banned: Vec<Value> = d
        .log_lines()
        .into_iter()
        .filter(|l| l["msg"].as_str().unwrap_or("").contains("user is banned"))
        .collect();
    assert_eq!(banned.len(), 1, "{}", d.log_text());
    assert_eq!(banned[0]["username"], "alice");
    assert!(!d.log_text().contains(PASSWORD) && !d.log_text().contains("nope\""));
}

#[test]
fn second_factors_refuse_replays_and_survive_a_restart() {
    let files = files_for("code.test");
    let mut d = start(&files);
    let mut b = Browser::new(Transport::Direct { port: d.port }, "code.test", None);
    b.first_factor("alice", PASSWORD).expect_ok(200, "password");
    // Registration needs an elevated session: refused before, allowed after the one-time code.
    let r = b.api(
        "PUT",
        "/api/secondfactor/totp/register",
        Some(&json!({"algorithm": "SHA1", "length": 6, "period": 30})),
    );
    assert_eq!(r.status, 403);
    let r = b.api(
        "PUT",
        "/api/user/session/elevation",
        Some(&json!({"otc": "AAAAAAAA"})),
    );
    assert_eq!(r.status, 403, "a code that was never sent");
    b.elevate(&|| otc(&d));
    let mut totp = b.register_totp();
    let mut passkey = SoftAuthenticator::new("https://auth.code.test", true);
    b.register_webauthn(&mut passkey, "phone")
        .expect_ok(201, "passkey registration");
    let mut plain = SoftAuthenticator::new("https://auth.code.test", false);
    b.register_webauthn(&mut plain, "key")
        .expect_ok(201, "security key registration");
    let info = b
        .api("GET", "/api/user/info", None)
        .expect_ok(200, "user info")
        .json();
    assert_eq!(
        (
            info["data"]["has_totp"].as_bool(),
            info["data"]["has_webauthn"].as_bool()
        ),
        (Some(true), Some(true))
    );

    // A TOTP code works once.
    let used = totp.next_code();
    b.first_factor("alice", PASSWORD).expect_ok(200, "password");
    b.api(
        "POST",
        "/api/secondfactor/totp",
        Some(&json!({"token": used})),
    )
    .expect_ok(200, "TOTP");
    b.first_factor("alice", PASSWORD).expect_ok(200, "password");
    let r = b.api(
        "POST",
        "/api/secondfactor/totp",
        Some(&json!({"token": used})),
    );
    assert_eq!(r.status, 401, "a used TOTP code");
    b.totp_login(&mut totp).expect_ok(200, "a fresh TOTP code");

    // WebAuthn: a counter that goes back (a cloned key) is refused; carried on, it logs in.
    b.first_factor("alice", PASSWORD).expect_ok(200, "password");
    b.webauthn_login(&mut passkey)
        .expect_ok(200, "WebAuthn second factor");
    b.first_factor("alice", PASSWORD).expect_ok(200, "password");
    passkey.counter -= 1;
    assert_eq!(
        b.webauthn_login(&mut passkey).status,
        403,
        "a signature counter that did not increase"
    );
    passkey.counter += 1;
    // Passkey first: only a discoverable credential (credProps.rk) is one; the password follows.
    assert_eq!(
        b.passkey_login(&mut plain).status,
        401,
        "a credential without credProps.rk is not a passkey"
    );
    b.passkey_login(&mut passkey).expect_ok(200, "passkey");
    assert_eq!(
        b.site("/", false).status,
        302,
        "a passkey alone is one factor"
    );
    assert_eq!(b.second_factor_password("nope").status, 401);
    b.second_factor_password(PASSWORD)
        .expect_ok(200, "password after the passkey");
    assert_eq!(b.site("/", false).status, 200);

    // A restart (Authelia recreated on its volume): sessions are gone, registrations are not.
    d.restart(&files).unwrap();
    b.transport = Transport::Direct { port: d.port };
    assert_eq!(b.site("/", false).status, 302, "logged out by the restart");
    b.first_factor("alice", PASSWORD).expect_ok(200, "password");
    b.totp_login(&mut totp)
        .expect_ok(200, "TOTP after the restart");
    b.passkey_login(&mut passkey)
        .expect_ok(200, "passkey after the restart");
    b.second_factor_password(PASSWORD)
        .expect_ok(200, "password");
    assert_eq!(b.site("/", false).status, 200);
    let log = d.log_text();
    assert!(
        !log.contains(PASSWORD) && !log.contains(&totp.secret),
        "a secret in the log"
    );
}
