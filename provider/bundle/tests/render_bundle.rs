//! In-process scenarios for the rendered bundle: determinism, golden snapshots, the secret hand-off (which files
//! exist, their kinds and modes, redacted Debug), per-service hash labels, the manifest, the Authelia key list,
//! OpenCode's configuration and the host-secret script run by a real shell.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cloudcode_bundle::{
    paths, render, FileKind, Manifest, RenderError, Secrets, HASH_LABEL, HOST_SECRETS,
};
use support::*;

#[test]
fn rendering_twice_is_byte_identical() {
    for s in [custom_domain(), fallback_terminal_off_8443()] {
        let a = render_ok(&s, &secrets_fixed());
        let b = render_ok(&s, &secrets_fixed());
        assert_eq!(a, b);
    }
}

fn check_golden(name: &str, b: &cloudcode_bundle::Bundle) {
    let mut text = String::new();
    for (p, f) in &b.files {
        text.push_str(&format!("==> {p} (mode {:o}, {:?})\n", f.mode, f.kind));
        text.push_str(std::str::from_utf8(&f.bytes).unwrap());
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        want == text,
        "{name} differs from the golden file; review the diff and rerun with UPDATE_GOLDEN=1"
    );
}

#[test]
fn golden_custom_domain() {
    check_golden(
        "custom-domain.txt",
        &render_ok(&custom_domain(), &secrets_fixed()),
    );
}

#[test]
fn golden_fallback_domain_terminal_off_8443() {
    check_golden(
        "fallback-terminal-off-8443.txt",
        &render_ok(&fallback_terminal_off_8443(), &secrets_fixed()),
    );
}

#[test]
fn secret_files_are_present_only_when_the_secret_is_supplied() {
    let s = custom_domain();
    let full = render_ok(&s, &secrets_fixed());
    let users = &full.files[paths::USERS_DATABASE];
    assert_eq!(
        users.kind,
        FileKind::Secret {
            source: "admin_password_wo"
        }
    );
    assert_eq!(users.mode, 0o600);
    let env = &full.files[paths::ENV];
    assert_eq!(
        env.kind,
        FileKind::Secret {
            source: "llm_api_key_wo"
        }
    );
    assert_eq!(env.mode, 0o600);

    let kept = render_ok(&s, &Secrets::default());
    assert!(!kept.files.contains_key(paths::USERS_DATABASE));
    assert!(!kept.files.contains_key(paths::ENV));
    // Everything managed is identical whether or not the secrets were supplied: no drift from absent secrets.
    assert_eq!(kept.managed_hashes(), full.managed_hashes());
    assert_eq!(kept.manifest, full.manifest);
}

#[test]
fn debug_output_never_shows_secrets() {
    let b = render_ok(&custom_domain(), &secrets_fixed());
    let dbg = format!("{b:?} {:?}", secrets_fixed());
    assert!(!dbg.contains(API_KEY) && !dbg.contains("sk-test"), "{dbg}");
    assert!(
        !dbg.contains(FIXED_HASH) && !dbg.contains("argon2id$"),
        "{dbg}"
    );
    assert!(dbg.contains("<redacted>"));
}

#[test]
fn manifest_records_hashes_inputs_and_write_only_versions_but_no_secret() {
    let s = fallback_terminal_off_8443();
    let b = render_ok(&s, &secrets_fixed());
    let text = text(&b, paths::MANIFEST);
    assert!(!text.contains(API_KEY) && !text.contains("argon2id"));
    let m: Manifest = serde_json::from_str(&text).unwrap();
    assert_eq!(m, b.manifest);
    assert_eq!(m.inputs, s);
    assert_eq!(m.write_only_versions.admin_password_wo_version, 2);
    assert_eq!(m.write_only_versions.llm_api_key_wo_version, Some(3));
    assert_eq!(m.cloudcode_version, env!("CARGO_PKG_VERSION"));
    let mut expected = b.managed_hashes();
    expected.remove(paths::MANIFEST);
    assert_eq!(m.files, expected);
    assert!(!m.files.contains_key(paths::USERS_DATABASE) && !m.files.contains_key(paths::ENV));
    assert_eq!(m.host_secret_files.len(), 3);
    assert_eq!(m.bundle_hash.len(), 64);
}

fn labels(b: &cloudcode_bundle::Bundle) -> [String; 3] {
    let v: serde_yaml::Value = serde_yaml::from_slice(&b.files[paths::COMPOSE].bytes).unwrap();
    ["caddy", "authelia", "devbox_blue"].map(|svc| {
        v["services"][svc]["labels"][HASH_LABEL]
            .as_str()
            .unwrap()
            .to_string()
    })
}

#[test]
fn changing_one_setting_changes_only_the_affected_services_label() {
    let base = custom_domain();
    let [c0, a0, d0] = labels(&render_ok(&base, &secrets_fixed()));

    let mut s = base.clone();
    s.terminal_enabled = false; // Caddyfile route (reloaded in place) + devbox env (in the Compose file itself)
    let [c, a, _] = labels(&render_ok(&s, &secrets_fixed()));
    assert_eq!(
        c, c0,
        "a Caddyfile change must not recreate caddy: it is reloaded in place"
    );
    assert_eq!(a, a0);

    let mut s = base.clone();
    s.llm_model = Some("claude-opus-4".into()); // opencode.json only
    let [c, a, d] = labels(&render_ok(&s, &secrets_fixed()));
    assert_eq!((c.as_str(), a.as_str()), (c0.as_str(), a0.as_str()));
    assert_ne!(d, d0);

    let mut s = base.clone();
    s.admin_password_wo_version += 1; // new users database → authelia only
    let [c, a, d] = labels(&render_ok(&s, &secrets_fixed()));
    assert_eq!((c.as_str(), d.as_str()), (c0.as_str(), d0.as_str()));
    assert_ne!(a, a0);

    let mut s = base.clone();
    s.llm_api_key_wo_version = Some(9); // new key → devbox only
    let [c, a, d] = labels(&render_ok(&s, &secrets_fixed()));
    assert_eq!((c.as_str(), a.as_str()), (c0.as_str(), a0.as_str()));
    assert_ne!(d, d0);
}

fn flatten(prefix: &str, v: &serde_yaml::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let k = k.as_str().expect("string keys only");
                let p = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        serde_yaml::Value::Sequence(items) if items.iter().any(|i| i.is_mapping()) => {
            for i in items {
                flatten(&format!("{prefix}[]"), i, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// The Authelia version the bundle pins (the tag of its default image).
fn pinned_authelia() -> &'static str {
    cloudcode_bundle::settings::DEFAULT_AUTHELIA_IMAGE
        .rsplit_once(':')
        .map(|(_, tag)| tag)
        .expect("the default Authelia image has a tag")
}

/// Every configuration key the pinned Authelia accepts, from its `internal/configuration/schema/keys.go` at
/// that tag (`tests/fixtures/authelia/config-keys-<version>.txt`; `[]` marks a list item). The file is found by
/// the pinned version: moving the pin without adding that version's list fails here.
fn known_keys() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/authelia")
        .join(format!("config-keys-{}.txt", pinned_authelia()));
    let list = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: the key list must move with the Authelia pin",
            path.display()
        )
    });
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The keys of a rendered `configuration.yml` that the pinned Authelia does not know: each one stops
/// Authelia at start-up ("configuration key not expected" is fatal).
fn unknown_keys(config_yml: &[u8], known: &BTreeSet<String>) -> Vec<String> {
    let cfg: serde_yaml::Value = serde_yaml::from_slice(config_yml).unwrap();
    let mut keys = BTreeSet::new();
    flatten("", &cfg, &mut keys);
    keys.difference(known).cloned().collect()
}

#[test]
fn a_key_the_pinned_authelia_does_not_know_fails_the_key_check() {
    let known = known_keys();
    assert!(known.len() > 400, "{} keys: not the full list", known.len());
    let b = render_ok(&custom_domain(), &secrets_fixed());
    let rendered = &b.files[paths::AUTHELIA_CONFIG].bytes;
    assert!(unknown_keys(rendered, &known).is_empty());
    // The template with a key added at the top level and one nested under a known section: both reported.
    let text = String::from_utf8(rendered.clone()).unwrap().replacen(
        "webauthn:\n",
        "webauthn:\n  enable_passkey_signup: true\n",
        1,
    ) + "passkeys_everywhere: true\n";
    let unknown = unknown_keys(text.as_bytes(), &known);
    assert_eq!(
        unknown,
        ["passkeys_everywhere", "webauthn.enable_passkey_signup"],
        "{unknown:?}"
    );
}

#[test]
fn authelia_files_parse_and_use_only_keys_the_pinned_version_knows() {
    let known = known_keys();
    for s in [custom_domain(), fallback_terminal_off_8443()] {
        let b = render_ok(&s, &secrets_fixed());
        let cfg: serde_yaml::Value =
            serde_yaml::from_slice(&b.files[paths::AUTHELIA_CONFIG].bytes).unwrap();
        let unknown = unknown_keys(&b.files[paths::AUTHELIA_CONFIG].bytes, &known);
        assert!(
            unknown.is_empty(),
            "keys Authelia {} does not know: {unknown:?}",
            pinned_authelia()
        );
        assert_eq!(
            cfg["authentication_backend"]["password_change"]["disable"].as_bool(),
            Some(true),
            "the portal must not offer a password change (the users file is read-only)"
        );
        // Values the issue requires.
        assert_eq!(
            cfg["session"]["cookies"][0]["domain"].as_str(),
            Some(s.domain.as_str())
        );
        assert_eq!(
            cfg["session"]["cookies"][0]["authelia_url"].as_str(),
            Some(format!("https://auth.{}", s.domain).as_str())
        );
        assert_eq!(
            cfg["session"]["cookies"][0]["default_redirection_url"].as_str(),
            Some(format!("https://{}", s.domain).as_str())
        );
        assert_eq!(
            cfg["webauthn"]["enable_passkey_login"].as_bool(),
            Some(true)
        );
        assert_eq!(
            cfg["access_control"]["default_policy"].as_str(),
            Some("deny")
        );
        assert_eq!(
            cfg["access_control"]["rules"][0]["policy"].as_str(),
            Some("two_factor")
        );
        assert_eq!(cfg["ntp"]["disable_startup_check"].as_bool(), Some(true));
        let a = &cfg["authentication_backend"]["file"]["password"]["argon2"];
        assert_eq!(
            (
                a["iterations"].as_u64(),
                a["memory"].as_u64(),
                a["parallelism"].as_u64()
            ),
            (Some(3), Some(65536), Some(4))
        );

        let users: serde_yaml::Value =
            serde_yaml::from_slice(&b.files[paths::USERS_DATABASE].bytes).unwrap();
        let mut ukeys = BTreeSet::new();
        let user = &users["users"][s.admin_username.as_str()];
        assert_eq!(user["password"].as_str(), Some(FIXED_HASH));
        assert_eq!(user["email"].as_str(), Some(s.admin_email.as_str()));
        flatten("", user, &mut ukeys);
        // The users file is not configuration (keys.go does not list it): these are the user fields of
        // Authelia's file backend that we write.
        assert_eq!(
            ukeys,
            ["disabled", "displayname", "email", "groups", "password"]
                .map(String::from)
                .into(),
            "users database fields"
        );
    }
    // Secrets reach Authelia through *_FILE variables whose names map to listed keys.
    for (h, key) in HOST_SECRETS.iter().zip([
        "session.secret",
        "storage.encryption_key",
        "identity_validation.reset_password.jwt_secret",
    ]) {
        assert!(known.contains(key));
        assert_eq!(
            h.env,
            format!("AUTHELIA_{}_FILE", key.replace('.', "_").to_uppercase())
        );
        assert!(h.length >= 64);
    }
}

#[test]
fn opencode_json_for_an_openai_compatible_endpoint() {
    let b = render_ok(&fallback_terminal_off_8443(), &secrets_fixed());
    let v: serde_json::Value =
        serde_json::from_slice(&b.files[paths::OPENCODE_JSON].bytes).unwrap();
    assert_eq!(v["model"], "cloudcode/qwen2.5-coder:32b");
    let p = &v["provider"]["cloudcode"];
    assert_eq!(p["npm"], "@ai-sdk/openai-compatible");
    assert_eq!(p["options"]["baseURL"], "https://llm.example.net/v1");
    assert_eq!(p["options"]["apiKey"], "{env:CLOUDCODE_LLM_API_KEY}");
    assert!(p["models"]["qwen2.5-coder:32b"].is_object());
    assert!(text(&b, paths::ENV).contains("CLOUDCODE_LLM_API_KEY='"));
    // No OpenCode server password: the browser would send it to Authelia's forward-auth.
    let compose = text(&b, paths::COMPOSE);
    assert!(!compose.contains("OPENCODE_SERVER_PASSWORD"));
}

#[test]
fn invalid_settings_are_rejected_with_field_names_and_no_secret() {
    let mut s = custom_domain();
    s.domain = "not a domain".into();
    let secrets = Secrets {
        admin_password_hash: Some("plain-password-oops".into()),
        llm_api_key: Some("sk-secret 'value".into()),
        ..Default::default()
    };
    let err = render(&s, &secrets).unwrap_err();
    let RenderError::Invalid(list) = &err else {
        panic!("{err}")
    };
    let fields: Vec<&str> = list.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["domain", "admin_password_wo", "llm_api_key_wo"]);
    let text = err.to_string();
    assert!(
        !text.contains("plain-password-oops") && !text.contains("sk-secret"),
        "{text}"
    );
}

#[test]
fn ensure_secrets_script_creates_once_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let b = render_ok(&custom_domain(), &Secrets::default());
    let dir = tempfile::tempdir().unwrap();
    write_files(&b, dir.path());
    let script = dir.path().join(paths::ENSURE_SECRETS);
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let first = run_ok(Command::new("sh").arg(&script).arg(dir.path()));
    assert_eq!(first.lines().count(), 3, "{first}");
    let read = || HOST_SECRETS.map(|h| std::fs::read_to_string(dir.path().join(h.path)).unwrap());
    let before = read();
    for (h, v) in HOST_SECRETS.iter().zip(&before) {
        assert_eq!(v.len(), h.length);
        assert!(v.bytes().all(|c| c.is_ascii_alphanumeric()));
        let mode = std::fs::metadata(dir.path().join(h.path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{}", h.name);
    }
    assert_ne!(before[0], before[1]);
    // No LLM key supplied: an empty, private .env so Compose's env_file resolves.
    let env = std::fs::metadata(dir.path().join(paths::ENV)).unwrap();
    assert_eq!((env.len(), env.permissions().mode() & 0o777), (0, 0o600));
    let second = run_ok(Command::new("sh").arg(&script).arg(dir.path()));
    assert_eq!(second, "");
    assert_eq!(read(), before);
    // An empty secret is an error, never silently replaced.
    std::fs::write(dir.path().join(HOST_SECRETS[1].path), "").unwrap();
    let out = run(Command::new("sh").arg(&script).arg(dir.path()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists but is empty"));
}

#[test]
fn existing_hash_is_read_back_from_the_users_database() {
    let s = custom_domain();
    let b = render_ok(&s, &secrets_fixed());
    let users = &b.files[paths::USERS_DATABASE].bytes;
    assert_eq!(
        cloudcode_bundle::existing_password_hash(users, "alice").as_deref(),
        Some(FIXED_HASH)
    );
    assert_eq!(cloudcode_bundle::existing_password_hash(users, "bob"), None);
    assert_eq!(
        cloudcode_bundle::existing_password_hash(b"not: [yaml", "alice"),
        None
    );
}
