//! Idle auto-suspend (`idle_suspend_after`) in the rendered bundle: the `idle` service with its read-only
//! mounts and settings, Caddy's JSON access log it reads, the chat bridge's store only with the bridge, the
//! limit's check — and a stack without it renders exactly as before (no service, no log, no volume).
mod support;

use cloudcode_bundle::settings::DEFAULT_AGENT_REPOSITORY;
use cloudcode_bundle::{paths, render, IdleSuspend, ImSettings, Settings, CLOUDCODE_VERSION};
use support::{custom_domain, render_ok, secrets_fixed};

fn idle(after: &str) -> Settings {
    let mut s = custom_domain();
    s.idle_suspend = Some(IdleSuspend {
        after: after.into(),
        ecs_endpoint: None,
    });
    s
}

fn compose(b: &cloudcode_bundle::Bundle) -> serde_yaml::Value {
    serde_yaml::from_slice(&b.files[paths::COMPOSE].bytes).unwrap()
}

fn text(b: &cloudcode_bundle::Bundle, path: &str) -> String {
    String::from_utf8(b.files[path].bytes.clone()).unwrap()
}

#[test]
fn the_idle_service_reads_caddys_log_utmp_and_opencode_read_only_and_publishes_nothing() {
    let b = render_ok(&idle("2h"), &secrets_fixed());
    let c = compose(&b);
    let svc = &c["services"]["idle"];
    assert_eq!(
        svc["image"].as_str(),
        Some(format!("{DEFAULT_AGENT_REPOSITORY}:{CLOUDCODE_VERSION}").as_str())
    );
    assert_eq!(svc["command"][0].as_str(), Some("idle"));
    assert_eq!(
        svc["environment"]["CLOUDCODE_IDLE_AFTER"].as_str(),
        Some("2h")
    );
    assert_eq!(
        svc["environment"]["CLOUDCODE_IDLE_OPENCODE_URL"].as_str(),
        Some("http://devbox:4096")
    );
    assert!(svc["environment"]["CLOUDCODE_IDLE_ECS_ENDPOINT"].is_null());
    assert!(svc["ports"].is_null(), "{svc:?}");
    assert_eq!(svc["read_only"].as_bool(), Some(true));
    let mounts: Vec<&str> = svc["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        mounts,
        [
            "caddy_logs:/var/log/caddy:ro",
            "/run/utmp:/host/run/utmp:ro"
        ]
    );
    // Caddy writes the log the agent reads, into the shared volume.
    let caddy_mounts = format!("{:?}", c["services"]["caddy"]["volumes"]);
    assert!(
        caddy_mounts.contains("caddy_logs:/var/log/caddy"),
        "{caddy_mounts}"
    );
    assert!(c["volumes"]["caddy_logs"].is_mapping());
    let caddyfile = text(&b, paths::CADDYFILE);
    assert!(
        caddyfile.contains("output file /var/log/caddy/access.log"),
        "{caddyfile}"
    );
    assert!(caddyfile.contains("format json"), "{caddyfile}");
}

#[test]
fn an_endpoint_and_the_bridge_store_are_passed_when_set() {
    let mut s = idle("90m");
    s.idle_suspend.as_mut().unwrap().ecs_endpoint = Some("ecs-vpc.cn-hangzhou.aliyuncs.com".into());
    s.im = Some(ImSettings::new("root@203.0.113.7:22/opt/cloudcode"));
    s.im.as_mut().unwrap().telegram_token_wo_version = Some(1);
    let c = compose(&render_ok(&s, &secrets_fixed()));
    let svc = &c["services"]["idle"];
    assert_eq!(
        svc["environment"]["CLOUDCODE_IDLE_ECS_ENDPOINT"].as_str(),
        Some("ecs-vpc.cn-hangzhou.aliyuncs.com")
    );
    assert_eq!(
        svc["environment"]["CLOUDCODE_IDLE_IM_DATA"].as_str(),
        Some("/im")
    );
    assert!(format!("{:?}", svc["volumes"]).contains("im_data:/im:ro"));
}

#[test]
fn without_idle_suspend_nothing_of_it_is_rendered() {
    let b = render_ok(&custom_domain(), &secrets_fixed());
    let c = compose(&b);
    assert!(c["services"]["idle"].is_null());
    assert!(c["volumes"]["caddy_logs"].is_null());
    assert!(!text(&b, paths::CADDYFILE).contains("access.log"));
    assert!(!text(&b, paths::MANIFEST).contains("idle_suspend"));
}

#[test]
fn a_limit_that_is_not_a_duration_or_under_a_minute_is_refused_naming_the_attribute() {
    for (after, says) in [
        ("soon", "not a duration"),
        ("30s", "shorter than one minute"),
    ] {
        let err = render(&idle(after), &secrets_fixed())
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_suspend_after"), "{err}");
        assert!(err.contains(says), "{after}: {err}");
    }
    let mut s = idle("2h");
    s.idle_suspend.as_mut().unwrap().ecs_endpoint = Some("https://ecs.example.com/path?x=1".into());
    let err = render(&s, &secrets_fixed()).unwrap_err().to_string();
    assert!(err.contains("idle_suspend_endpoint"), "{err}");
}

#[test]
fn the_limit_has_the_modules_grammar_digits_each_followed_by_h_m_or_s() {
    use cloudcode_bundle::validate::idle_suspend_after;
    for ok in ["2h", "90m", "1h30m", "120s", "1h0m30s"] {
        assert!(idle_suspend_after(ok).is_ok(), "{ok}");
    }
    // humantime would take these; the module's variable would not, so neither does the stack or the CLI.
    for refused in ["1d", "90min", "1h 30m", " 2h", "2H", "h", "2", "1ms"] {
        assert!(idle_suspend_after(refused).is_err(), "{refused}");
    }
}
