//! The stack's outbound proxy (`proxy_wo`) in the rendered bundle: off by default, the devbox's env file and
//! `NO_PROXY`, its label, the bridge's fallback, and the URL kept out of every managed file and the manifest.
mod support;

use cloudcode_bundle::{paths, render, FileKind, ImSettings, Secrets, Settings, HASH_LABEL};
use support::{custom_domain, render_ok, secrets_fixed};

const PROXY: &str = "http://puser:proxy-pass-5c1e@10.0.0.9:3128";

fn with_proxy() -> Settings {
    let mut s = custom_domain();
    s.proxy_wo_version = Some(1);
    s.no_proxy = vec![".corp.example.com".into(), "10.1.0.0/16".into()];
    s
}

fn proxy_secrets() -> Secrets {
    Secrets {
        proxy: Some(PROXY.into()),
        ..secrets_fixed()
    }
}

fn compose(b: &cloudcode_bundle::Bundle) -> serde_yaml::Value {
    serde_yaml::from_slice(&b.files[paths::COMPOSE].bytes).unwrap()
}

fn devbox(b: &cloudcode_bundle::Bundle) -> serde_yaml::Value {
    compose(b)["services"]["devbox_blue"].clone()
}

#[test]
fn without_a_proxy_the_devbox_has_no_proxy_environment_and_the_files_are_retired() {
    let b = render_ok(&custom_domain(), &secrets_fixed());
    let d = devbox(&b);
    assert_eq!(d["env_file"].as_sequence().unwrap().len(), 1, "{d:?}");
    assert!(d["environment"].get("NO_PROXY").is_none());
    assert!(!b.files.contains_key(paths::PROXY_ENV));
    assert!(b.retired.contains(&paths::PROXY_ENV.to_string()));
    assert!(b.retired.contains(&paths::PROXY_URL.to_string()));
    let m = String::from_utf8(b.files[paths::MANIFEST].bytes.clone()).unwrap();
    assert!(
        !m.contains("proxy"),
        "a stack without a proxy keeps its manifest bytes"
    );
}

#[test]
fn the_devbox_reads_the_proxy_from_a_secret_env_file_and_keeps_the_stacks_names_direct() {
    let b = render_ok(&with_proxy(), &proxy_secrets());
    let d = devbox(&b);
    let env_files: Vec<&str> = d["env_file"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(env_files, ["./.env", "./secrets/proxy.env"]);
    let no_proxy = d["environment"]["NO_PROXY"].as_str().unwrap();
    let names: Vec<&str> = no_proxy.split(',').collect();
    for want in [
        "localhost",
        "127.0.0.1",
        "authelia",
        "devbox",
        "code.example.com",
        "auth.code.example.com",
        ".corp.example.com",
        "10.1.0.0/16",
    ] {
        assert!(names.contains(&want), "{want} missing from {no_proxy}");
    }
    assert_eq!(d["environment"]["no_proxy"].as_str(), Some(no_proxy));
    let f = &b.files[paths::PROXY_ENV];
    assert_eq!(f.mode, 0o600);
    assert_eq!(f.kind, FileKind::Secret { source: "proxy_wo" });
    let text = String::from_utf8(f.bytes.clone()).unwrap();
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        assert!(
            text.lines().any(|l| l == format!("{var}='{PROXY}'")),
            "{var} in:\n{text}"
        );
    }
    // The URL is nowhere but in the secret files; the manifest records only the version.
    for (path, file) in &b.files {
        if file.kind == FileKind::Managed {
            assert!(
                !String::from_utf8_lossy(&file.bytes).contains("proxy-pass-5c1e"),
                "{path} holds the proxy password"
            );
        }
    }
    assert_eq!(b.manifest.write_only_versions.proxy_wo_version, Some(1));
    assert!(b
        .manifest
        .secret_files
        .iter()
        .any(|f| f.path == paths::PROXY_ENV && f.source == "proxy_wo"));
    assert!(
        !b.retired.contains(&paths::PROXY_ENV.to_string())
            && !b.retired.contains(&paths::PROXY_URL.to_string()),
        "{:?}",
        b.retired
    );
}

#[test]
fn a_socks_proxy_goes_only_into_all_proxy() {
    let socks = Secrets {
        proxy: Some("socks5://10.0.0.9:1080".into()),
        ..secrets_fixed()
    };
    let b = render_ok(&with_proxy(), &socks);
    let text = String::from_utf8(b.files[paths::PROXY_ENV].bytes.clone()).unwrap();
    assert!(
        text.contains("ALL_PROXY='socks5://10.0.0.9:1080'"),
        "{text}"
    );
    assert!(!text.contains("HTTP_PROXY"), "{text}");
}

#[test]
fn a_proxy_change_replaces_the_devbox_and_nothing_else() {
    let label = |b: &cloudcode_bundle::Bundle, svc: &str| {
        compose(b)["services"][svc]["labels"][HASH_LABEL]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = render_ok(&custom_domain(), &secrets_fixed());
    let b = render_ok(&with_proxy(), &proxy_secrets());
    let mut bumped = with_proxy();
    bumped.proxy_wo_version = Some(2);
    let c = render_ok(&bumped, &Secrets::default());
    assert_ne!(a.devbox_hash, b.devbox_hash);
    assert_ne!(b.devbox_hash, c.devbox_hash);
    assert_eq!(label(&a, "authelia"), label(&b, "authelia"));
    assert_eq!(label(&a, "caddy"), label(&b, "caddy"));
    // A render without the secret (plan) tracks the same managed files as one with it (apply).
    let plan = render_ok(&with_proxy(), &Secrets::default());
    assert_eq!(plan.managed_hashes(), b.managed_hashes());
    assert!(!plan.files.contains_key(paths::PROXY_ENV));
}

#[test]
fn a_bridge_without_its_own_proxy_uses_the_stacks() {
    let mut s = with_proxy();
    let mut im = ImSettings::new("root@47.1.2.3:22/opt/cloudcode");
    im.telegram_token_wo_version = Some(1);
    s.im = Some(im);
    let b = render_ok(&s, &proxy_secrets());
    let config: serde_json::Value =
        serde_json::from_slice(&b.files[paths::IM_CONFIG].bytes).unwrap();
    assert_eq!(config["proxy_file"], "/run/secrets/proxy");
    let c = compose(&b);
    let mounted: Vec<&str> = c["services"]["im"]["secrets"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(mounted.contains(&"proxy"), "{mounted:?}");
    assert_eq!(
        c["secrets"]["proxy"]["file"].as_str(),
        Some("./secrets/proxy")
    );
    assert_eq!(b.files[paths::PROXY_URL].bytes, PROXY.as_bytes());
    let script = String::from_utf8(b.files[paths::ENSURE_SECRETS].bytes.clone()).unwrap();
    assert!(
        script.contains("chown 10001:10001 \"$dir/proxy\""),
        "{script}"
    );
    // Its own proxy wins.
    s.im.as_mut().unwrap().proxy_wo_version = Some(1);
    let own = render(&s, &Secrets::default()).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&own.files[paths::IM_CONFIG].bytes).unwrap();
    assert_eq!(config["proxy_file"], "/run/secrets/im_proxy");
}

#[test]
fn a_bad_proxy_or_no_proxy_entry_is_refused_naming_the_attribute_without_the_value() {
    let bad = Secrets {
        proxy: Some("ftp://user:hunter2-secret@h:21".into()),
        ..secrets_fixed()
    };
    let e = render(&with_proxy(), &bad).unwrap_err().to_string();
    assert!(e.contains("proxy_wo") && e.contains("ftp"), "{e}");
    assert!(!e.contains("hunter2-secret"), "{e}");
    let mut s = with_proxy();
    s.no_proxy = vec!["bad host!".into()];
    let e = render(&s, &proxy_secrets()).unwrap_err().to_string();
    assert!(e.contains("no_proxy") && e.contains("bad host!"), "{e}");
}

#[test]
fn a_quote_in_the_proxy_is_refused_naming_proxy_wo_and_a_supplied_proxy_without_a_version_writes_nothing(
) {
    let quoted = Secrets {
        proxy: Some("http://u:it's-secret@10.0.0.9:3128".into()),
        ..secrets_fixed()
    };
    let e = render(&with_proxy(), &quoted).unwrap_err().to_string();
    assert!(e.contains("proxy_wo") && e.contains("%27"), "{e}");
    assert!(!e.contains("it's-secret"), "{e}");
    // `cloudcode render` masks every secret, a proxy included: without a version no proxy file is written.
    let b = render_ok(&custom_domain(), &proxy_secrets());
    assert!(!b.files.contains_key(paths::PROXY_ENV) && !b.files.contains_key(paths::PROXY_URL));
}

#[test]
fn a_no_proxy_list_without_a_proxy_does_not_replace_the_devbox() {
    let mut s = custom_domain();
    s.no_proxy = vec![".corp.example.com".into()];
    assert_eq!(
        render_ok(&s, &secrets_fixed()).devbox_hash,
        render_ok(&custom_domain(), &secrets_fixed()).devbox_hash
    );
}
