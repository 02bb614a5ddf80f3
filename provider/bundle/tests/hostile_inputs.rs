//! Property scenarios with generated hostile inputs (quotes, `$`, `#`, braces, line breaks, unicode, very long):
//! every value is either rejected by validation or renders so that the consuming parser reads back exactly that
//! value — checked in-process (serde_yaml, dotenvy, our Caddyfile tokenizer, serde_json) for ≥ 10⁴ cases, and for a
//! few hundred batched into single files for the real Caddy and Compose binaries.

mod support;

use cloudcode_bundle::escape::{compose_quote, dotenv_quote, yaml_quote};
use cloudcode_bundle::{paths, render, validate, Secrets, Settings};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::*;

const HOSTILE: &[char] = &[
    '$', '{', '}', '"', '\'', '\\', '#', '\n', '\r', '\t', ' ', '`', ':', '-', '@', '.', '/', '%',
    '+', '_', '&', '*', '!', '|', '>', '[', ']', ',', '?', '~', '=', '\u{2028}', '\u{85}',
    '\u{feff}', '\u{0}', '\u{7f}', 'é', '密', '😀', 'a', 'z', 'Q', '0', '9',
];

/// Strings built from hostile characters, arbitrary unicode, YAML/Compose keywords, or very long runs.
fn hostile() -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(HOSTILE), 0..40).prop_map(|v| v.into_iter().collect()),
        2 => any::<String>(),
        1 => proptest::sample::select(vec!["null", "~", "yes", "No", "true", "0x1F", "1e3", "- a", "? k", "!!str x", "&a", "*a", "${HOME}", "$$", "{$X}", "{env:HOME}", "#", "'", "\""]).prop_map(String::from),
        1 => (proptest::sample::select(HOSTILE), 1000..5000usize).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
    .boxed()
}

/// Domain-like strings: mostly valid labels with occasional hostile characters.
fn domainish() -> BoxedStrategy<String> {
    let label = prop_oneof![
        20 => "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        1 => "[a-zA-Z0-9{}$#\" _.-]{1,8}",
        1 => "[a-z]{60,66}",
    ];
    proptest::collection::vec(label, 1..5)
        .prop_map(|v| v.join("."))
        .boxed()
}

fn emailish() -> BoxedStrategy<String> {
    (prop_oneof![6 => "[a-zA-Z0-9_%+-]{1,20}", 1 => "[a-zA-Z0-9._%+-]{1,20}", 1 => "[a-z{}$# \"'@]{1,10}"], domainish()).prop_map(|(l, d)| format!("{l}@{d}")).boxed()
}

fn yaml_get(doc: &[u8], path: &[&str]) -> Option<String> {
    let mut v: serde_yaml::Value = serde_yaml::from_slice(doc).ok()?;
    for p in path {
        v = v.get(*p)?.clone();
    }
    v.as_str().map(str::to_string)
}

/// Compose interpolation of a parsed scalar: `$$` → `$`; a lone `$` would be interpolated (a different meaning).
fn compose_interpolate(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '$' && it.next() != Some('$') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

#[test]
fn escaping_reads_back_exactly_for_20000_hostile_strings() {
    let mut runner = TestRunner::new(Config {
        cases: 20_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&hostile(), |v| {
            let doc = format!("k: {}\n", yaml_quote(&v));
            prop_assert_eq!(yaml_get(doc.as_bytes(), &["k"]), Some(v.clone()));
            let doc = format!("k: {}\n", compose_quote(&v));
            let parsed = yaml_get(doc.as_bytes(), &["k"]).unwrap();
            prop_assert_eq!(compose_interpolate(&parsed), Some(v.clone()));
            if validate::api_key(&v).is_ok() {
                let line = format!("K={}\n", dotenv_quote(&v).unwrap());
                let got: Vec<(String, String)> = dotenvy::from_read_iter(line.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap();
                prop_assert_eq!(got, vec![("K".to_string(), v.clone())]);
            }
            Ok(())
        })
        .unwrap();
}

static RENDERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn check_bundle(s: &Settings, key: &str) -> Result<(), TestCaseError> {
    let errors = validate::validate(s);
    let key_ok = validate::api_key(key).is_ok();
    let secrets = Secrets {
        admin_password_hash: Some(FIXED_HASH.into()),
        llm_api_key: Some(key.to_string()),
        ..Default::default()
    };
    let r = render(s, &secrets);
    if !errors.is_empty() || !key_ok {
        prop_assert!(r.is_err(), "invalid input rendered");
        if let Err(cloudcode_bundle::RenderError::Invalid(list)) = r {
            for (field, e) in list.iter().filter(|(f, _)| f == "llm_api_key_wo") {
                prop_assert!(
                    key.len() < 6 || !e.message().contains(key),
                    "{} error echoes the key",
                    field
                );
            }
        } else {
            prop_assert!(false, "expected a validation error");
        }
        return Ok(());
    }
    let b = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
    RENDERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Users database and Authelia configuration.
    let users = &b.files[paths::USERS_DATABASE].bytes;
    let u = &s.admin_username;
    prop_assert_eq!(
        yaml_get(users, &["users", u, "displayname"]),
        Some(s.admin_display_name.clone().unwrap_or(u.clone()))
    );
    prop_assert_eq!(
        yaml_get(users, &["users", u, "email"]),
        Some(s.admin_email.clone())
    );
    let cfg: serde_yaml::Value =
        serde_yaml::from_slice(&b.files[paths::AUTHELIA_CONFIG].bytes).unwrap();
    prop_assert_eq!(
        cfg["session"]["cookies"][0]["domain"].as_str(),
        Some(s.domain.as_str())
    );
    // Env file.
    let env: Vec<(String, String)> = dotenvy::from_read_iter(&b.files[paths::ENV].bytes[..])
        .collect::<Result<_, _>>()
        .unwrap();
    prop_assert_eq!(
        env,
        vec![(
            cloudcode_bundle::render::llm_key_env(&s.llm_provider).to_string(),
            key.to_string()
        )]
    );
    // Compose: image and TZ after YAML parsing and interpolation.
    let compose = &b.files[paths::COMPOSE].bytes;
    let tz = yaml_get(compose, &["services", "devbox_blue", "environment", "TZ"]).unwrap();
    prop_assert_eq!(compose_interpolate(&tz), Some(s.timezone.clone()));
    let img = yaml_get(compose, &["services", "devbox_blue", "image"]).unwrap();
    prop_assert_eq!(compose_interpolate(&img), Some(s.devbox_image()));
    // Caddyfile: the site line is exactly [domain, "{"] and the email line exactly [email, acme].
    let lines = caddy_lines(&String::from_utf8(b.files[paths::CADDYFILE].bytes.clone()).unwrap());
    prop_assert!(
        lines.contains(&vec![s.domain.clone(), "{".to_string()]),
        "site line"
    );
    prop_assert!(
        lines.contains(&vec![format!("auth.{}", s.domain), "{".to_string()]),
        "auth line"
    );
    prop_assert!(
        lines.contains(&vec![
            "email".to_string(),
            s.acme_email_or_admin().to_string()
        ]),
        "email line"
    );
    // OpenCode config.
    let oc: serde_json::Value =
        serde_json::from_slice(&b.files[paths::OPENCODE_JSON].bytes).unwrap();
    if let Some(m) = &s.llm_model {
        prop_assert_eq!(
            oc["model"].as_str().map(|x| x.split_once('/').unwrap().1),
            Some(m.as_str())
        );
        prop_assert!(
            !m.contains("{env:") && !m.contains("{file:"),
            "model with OpenCode substitution"
        );
    }
    Ok(())
}

fn settings_strategy() -> BoxedStrategy<(Settings, String)> {
    (
        domainish(),
        prop_oneof![8 => "[a-zA-Z0-9][a-zA-Z0-9._-]{0,10}", 1 => hostile()],
        prop_oneof![8 => emailish(), 1 => hostile()],
        proptest::option::of(hostile()),
        proptest::option::of(prop_oneof![8 => "[a-z0-9.:/-]{1,20}", 1 => hostile()]),
        prop_oneof![8 => Just("Asia/Shanghai".to_string()), 1 => hostile()],
        proptest::option::of(prop_oneof![8 => "[a-z0-9]{1,8}(/[a-z0-9]{1,8})?:[a-z0-9][a-z0-9.]{0,5}", 1 => hostile()]),
        prop_oneof![4 => "sk-[!-&(-\\[\\]-~]{1,40}", 1 => "sk-[ -~]{1,40}", 1 => hostile()],
    )
        .prop_map(|(domain, user, email, display, model, tz, image, key)| {
            let mut s = Settings::default_for(&domain, &user, &email);
            s.admin_display_name = display;
            s.llm_model = model;
            s.timezone = tz;
            s.images.devbox = image;
            s.llm_api_key_wo_version = Some(1);
            (s, key)
        })
        .boxed()
}

#[test]
fn hostile_settings_either_fail_validation_or_read_back_exactly_10000_cases() {
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&settings_strategy(), |(s, key)| check_bundle(&s, &key))
        .unwrap();
    // Not vacuous: a good share of the hostile inputs were valid and rendered (the rest were rejected).
    let n = RENDERED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{n} of 10000 hostile settings rendered; the rest were rejected");
    assert!(n >= 1000, "only {n} cases rendered");
}

/// Draws `n` values from a strategy deterministically.
fn sample<T: std::fmt::Debug>(strategy: BoxedStrategy<T>, n: usize) -> Vec<T> {
    use proptest::strategy::ValueTree;
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn real_compose_reads_back_300_hostile_values_batched_in_one_project() {
    // Env-file values (API keys that pass validation) and Compose-file values (labels) in one project.
    let keys: Vec<String> = sample(prop_oneof!["sk-[ -~]{1,60}", hostile()].boxed(), 2000)
        .into_iter()
        .filter(|k| validate::api_key(k).is_ok())
        .take(150)
        .collect();
    assert!(keys.len() >= 100, "{}", keys.len());
    let labels: Vec<String> = sample(hostile(), 400)
        .into_iter()
        .filter(|v| !v.contains('\u{0}') && v.len() < 1000)
        .take(150)
        .collect();
    let mut env = String::new();
    for (i, k) in keys.iter().enumerate() {
        // The same function the .env template uses, one variable per value.
        let b = render_ok(
            &custom_domain(),
            &Secrets {
                admin_password_hash: None,
                llm_api_key: Some(k.clone()),
                ..Default::default()
            },
        );
        let line = text(&b, paths::ENV)
            .lines()
            .find(|l| l.starts_with("ANTHROPIC_API_KEY="))
            .unwrap()
            .to_string();
        env.push_str(&line.replacen("ANTHROPIC_API_KEY", &format!("K{i}"), 1));
        env.push('\n');
    }
    let mut compose = String::from(
        "services:\n  probe:\n    image: 'busybox'\n    env_file: ['./.env']\n    labels:\n",
    );
    for (i, v) in labels.iter().enumerate() {
        compose.push_str(&format!("      l{i}: {}\n", compose_quote(v)));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), env).unwrap();
    std::fs::write(dir.path().join("docker-compose.yml"), compose).unwrap();
    let cfg = compose_config(dir.path());
    let svc = &cfg["services"]["probe"];
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            svc["environment"][format!("K{i}")].as_str(),
            Some(k.as_str()),
            "env value {i}: {k:?}"
        );
    }
    for (i, v) in labels.iter().enumerate() {
        assert_eq!(
            svc["labels"][format!("l{i}")].as_str(),
            Some(v.as_str()),
            "label {i}: {v:?}"
        );
    }
}

#[test]
fn real_caddy_reads_back_300_generated_domains_batched_in_one_caddyfile() {
    let settings: Vec<Settings> = sample((domainish(), emailish()).boxed(), 3000)
        .into_iter()
        .map(|(d, e)| {
            let mut s = Settings::default_for(&d, "admin", &e);
            s.tls_mode = "internal".into();
            s
        })
        .filter(|s| validate::validate(s).is_empty())
        .collect::<Vec<_>>();
    let mut seen = std::collections::BTreeSet::new();
    let settings: Vec<Settings> = settings
        .into_iter()
        .filter(|s| seen.insert(s.domain.clone()))
        .take(300)
        .collect();
    assert!(settings.len() >= 200, "{}", settings.len());
    // One Caddyfile: the global block of the first bundle, then every bundle's snippets-free site blocks.
    let mut file = String::new();
    for (i, s) in settings.iter().enumerate() {
        let b = render_ok(s, &Secrets::default());
        let t = text(&b, paths::CADDYFILE);
        if i == 0 {
            file.push_str(&t);
        } else {
            let site = t.find(&format!("\n{} {{", s.domain)).unwrap();
            file.push_str(&t[site..]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, &file).unwrap();
    std::fs::write(
        dir.path().join("devbox.caddy"),
        cloudcode_bundle::runtime::devbox_caddy("devbox_blue").unwrap(),
    )
    .unwrap();
    caddy_validate(&path);
    let cfg = caddy_adapt(&path);
    let hosts: std::collections::BTreeSet<String> = cfg["apps"]["http"]["servers"]
        .to_string()
        .split('"')
        .map(str::to_string)
        .collect();
    for s in &settings {
        assert!(
            hosts.contains(&s.domain),
            "{} missing from Caddy's config",
            s.domain
        );
        assert!(
            hosts.contains(&format!("auth.{}", s.domain)),
            "auth.{} missing",
            s.domain
        );
    }
}
