//! The chat bridge (`im` block) and OpenCode's permission policy in the rendered bundle: off by default, the
//! service, its configuration (parsed by the bridge's own `FileConfig`), its secrets and their label isolation.
mod support;

use cloudcode_bundle::{
    im_box_id, paths, render, FileKind, ImSettings, Secrets, Settings, HASH_LABEL,
};
use support::{custom_domain, render_ok, secrets_fixed};

const TOKEN: &str = "123456:ABC-telegram-token-value";
const APP_SECRET: &str = "dingtalk-app-secret-value";
const PROXY: &str = "socks5://user:proxy-password@10.0.0.1:1080";
const STACK_ID: &str = "root@47.1.2.3:22/opt/cloudcode";

fn with_im() -> Settings {
    let mut s = custom_domain();
    let mut im = ImSettings::new(STACK_ID);
    im.telegram_token_wo_version = Some(1);
    im.dingtalk_client_id = Some("dingabc123".into());
    im.dingtalk_client_secret_wo_version = Some(1);
    im.dingtalk_robot_code = Some("dingabc123".into());
    im.proxy_wo_version = Some(1);
    s.im = Some(im);
    s
}

fn im_secrets() -> Secrets {
    Secrets {
        im_telegram_token: Some(TOKEN.into()),
        im_dingtalk_client_secret: Some(APP_SECRET.into()),
        im_proxy: Some(PROXY.into()),
        ..secrets_fixed()
    }
}

fn compose(b: &cloudcode_bundle::Bundle) -> serde_yaml::Value {
    serde_yaml::from_slice(&b.files[paths::COMPOSE].bytes).unwrap()
}

fn label(b: &cloudcode_bundle::Bundle, service: &str) -> String {
    compose(b)["services"][service]["labels"][HASH_LABEL]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn without_the_block_there_is_no_im_service_file_or_secret() {
    let b = render_ok(&custom_domain(), &secrets_fixed());
    let c = compose(&b);
    assert!(c["services"].get("im").is_none());
    assert!(c["volumes"].get("im_data").is_none());
    assert!(
        b.files
            .keys()
            .all(|p| !p.starts_with("im/") && !p.starts_with("secrets/im_")),
        "{:?}",
        b.files.keys()
    );
    assert!(!String::from_utf8_lossy(&b.files[paths::ENSURE_SECRETS].bytes).contains("im_"));
    // Everything the bridge could have left on the host is removed.
    assert!(b.retired.contains(&paths::IM_CONFIG.to_string()));
    assert!(b.retired.contains(&"secrets/im_telegram_token".to_string()));
    // A stack without im and permissions keeps its manifest's shape (no new keys).
    let manifest = String::from_utf8_lossy(&b.files[paths::MANIFEST].bytes).to_string();
    assert!(
        !manifest.contains("\"im\"") && !manifest.contains("opencode_permission"),
        "{manifest}"
    );
}

#[test]
fn the_im_service_runs_on_the_compose_network_without_ports_and_with_its_volume() {
    let b = render_ok(&with_im(), &im_secrets());
    let c = compose(&b);
    let im = &c["services"]["im"];
    assert_eq!(
        im["image"].as_str().unwrap(),
        format!(
            "ghcr.io/cloudcode-dev/cloudcode-im:{}",
            cloudcode_bundle::CLOUDCODE_VERSION
        )
    );
    assert_eq!(im["restart"].as_str(), Some("unless-stopped"));
    assert_eq!(im["init"].as_bool(), Some(true));
    assert!(
        im.get("ports").is_none() && im.get("networks").is_none(),
        "default network, no published ports"
    );
    assert_eq!(
        im["environment"]["CLOUDCODE_IM_CONFIG"].as_str(),
        Some("/etc/cloudcode-im/config.json")
    );
    let volumes: Vec<&str> = im["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(volumes, ["./im:/etc/cloudcode-im:ro", "im_data:/data"]);
    assert!(c["volumes"].get("im_data").is_some());
    let secrets: Vec<&str> = im["secrets"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        secrets,
        ["im_telegram_token", "im_dingtalk_secret", "im_proxy"]
    );
    for s in secrets {
        assert_eq!(
            c["secrets"][s]["file"].as_str().unwrap(),
            format!("./secrets/{s}")
        );
    }
    // The image override of the `images` map.
    let mut s = with_im();
    s.images.im = Some("cloudcode-test/cloudcode-im:dev".into());
    assert_eq!(
        compose(&render_ok(&s, &Secrets::default()))["services"]["im"]["image"].as_str(),
        Some("cloudcode-test/cloudcode-im:dev")
    );
}

#[test]
fn the_config_parses_as_the_bridges_file_config_and_names_only_secret_files() {
    let b = render_ok(&with_im(), &im_secrets());
    let file = &b.files[paths::IM_CONFIG];
    assert_eq!((file.mode, &file.kind), (0o644, &FileKind::Managed));
    let cfg: cloudcode_im::config::FileConfig = serde_json::from_slice(&file.bytes).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.data_dir.to_str(), Some("/data"));
    let bx = &cfg.boxes[0];
    assert_eq!(bx.id, cloudcode_im::binding::short_box_id(STACK_ID));
    assert_eq!(bx.id, im_box_id(STACK_ID));
    assert_eq!(
        (bx.name.as_str(), bx.opencode_url.as_str()),
        ("code", "http://devbox:4096")
    );
    assert_eq!(bx.web_url.as_deref(), Some("https://code.example.com"));
    let t = cfg.telegram.as_ref().unwrap();
    assert_eq!(
        (t.token_file.to_str(), t.api_base.as_str()),
        (
            Some("/run/secrets/im_telegram_token"),
            "https://api.telegram.org"
        )
    );
    let d = cfg.dingtalk.as_ref().unwrap();
    assert_eq!(
        d.client_secret_file.to_str(),
        Some("/run/secrets/im_dingtalk_secret")
    );
    assert_eq!(d.robot_code.as_deref(), Some("dingabc123"));
    assert_eq!(
        cfg.proxy_file.as_deref().and_then(|p| p.to_str()),
        Some("/run/secrets/im_proxy")
    );
    // Telegram only: no dingtalk or proxy entry.
    let mut s = with_im();
    let im = s.im.as_mut().unwrap();
    (
        im.dingtalk_client_id,
        im.dingtalk_client_secret_wo_version,
        im.dingtalk_robot_code,
        im.proxy_wo_version,
    ) = (None, None, None, None);
    let b = render_ok(&s, &Secrets::default());
    let cfg: cloudcode_im::config::FileConfig =
        serde_json::from_slice(&b.files[paths::IM_CONFIG].bytes).unwrap();
    assert!(cfg.dingtalk.is_none() && cfg.proxy_file.is_none() && cfg.telegram.is_some());
    assert!(
        b.retired.contains(&"secrets/im_proxy".to_string())
            && !b.retired.contains(&paths::IM_CONFIG.to_string())
    );
}

#[test]
fn a_long_stack_id_gives_a_box_id_the_bridge_accepts() {
    let long = format!(
        "ubuntu@{}:2222/srv/{}",
        "a".repeat(60),
        "cloudcode-x".repeat(5)
    );
    assert_eq!(im_box_id(&long), cloudcode_im::binding::short_box_id(&long));
    assert_eq!(im_box_id(&long).len(), cloudcode_bundle::IM_BOX_ID_MAX);
    assert_eq!(im_box_id(STACK_ID), "root4712322optcloudcode");
}

#[test]
fn secrets_are_0600_files_only_when_supplied_and_never_in_other_files() {
    let b = render_ok(&with_im(), &im_secrets());
    for (path, value, source) in [
        ("secrets/im_telegram_token", TOKEN, "im.telegram_token_wo"),
        (
            "secrets/im_dingtalk_secret",
            APP_SECRET,
            "im.dingtalk_client_secret_wo",
        ),
        ("secrets/im_proxy", PROXY, "im.proxy_wo"),
    ] {
        let f = &b.files[path];
        assert_eq!(
            (f.mode, &f.kind, f.bytes.as_slice()),
            (0o600, &FileKind::Secret { source }, value.as_bytes())
        );
        for (other, g) in b.files.iter().filter(|(p, _)| p.as_str() != path) {
            assert!(
                !String::from_utf8_lossy(&g.bytes).contains(value),
                "{value} leaked into {other}"
            );
        }
        assert!(!format!("{b:?}").contains(value));
    }
    assert!(b
        .manifest
        .secret_files
        .iter()
        .any(|f| f.path == "secrets/im_proxy" && f.source == "im.proxy_wo"));
    // Not supplied in this apply: the host keeps its files, nothing else changes.
    let without = render_ok(&with_im(), &secrets_fixed());
    assert!(without.files.keys().all(|p| !p.starts_with("secrets/im_")));
    assert_eq!(without.managed_hashes(), b.managed_hashes());
    let script = String::from_utf8_lossy(&b.files[paths::ENSURE_SECRETS].bytes).to_string();
    assert!(
        script.contains("chown 10001:10001 \"$dir/im_proxy\"")
            && script.contains("supply im.proxy_wo with a new version"),
        "{script}"
    );
}

#[test]
fn only_the_im_label_follows_the_bridges_inputs() {
    let base = render_ok(&with_im(), &Secrets::default());
    let change = |f: &dyn Fn(&mut ImSettings)| {
        let mut s = with_im();
        f(s.im.as_mut().unwrap());
        render_ok(&s, &Secrets::default())
    };
    for changed in [
        change(&|im| im.telegram_token_wo_version = Some(2)),
        change(&|im| im.proxy_wo_version = Some(7)),
        change(&|im| im.telegram_api_base = "http://bot-api.internal:8081".into()),
    ] {
        assert_ne!(label(&changed, "im"), label(&base, "im"));
        for s in ["caddy", "authelia", "devbox_blue"] {
            assert_eq!(label(&changed, s), label(&base, s), "{s}");
        }
    }
    // Rendering is deterministic.
    assert_eq!(
        render_ok(&with_im(), &im_secrets()),
        render_ok(&with_im(), &im_secrets())
    );
}

#[test]
fn opencode_permission_is_rendered_into_opencode_json() {
    let mut s = custom_domain();
    s.opencode_permission = [("bash", "ask"), ("edit", "allow"), ("webfetch", "deny")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let b = render_ok(&s, &Secrets::default());
    let j: serde_json::Value =
        serde_json::from_slice(&b.files[paths::OPENCODE_JSON].bytes).unwrap();
    assert_eq!(
        j["permission"],
        serde_json::json!({ "bash": "ask", "edit": "allow", "webfetch": "deny" })
    );
    assert_ne!(
        label(&b, "devbox_blue"),
        label(
            &render_ok(&custom_domain(), &Secrets::default()),
            "devbox_blue"
        )
    );
}

#[test]
fn bad_im_settings_and_permissions_are_refused_naming_the_field() {
    let fields = |s: &Settings, secrets: &Secrets| -> Vec<String> {
        match render(s, secrets) {
            Err(cloudcode_bundle::RenderError::Invalid(list)) => {
                list.into_iter().map(|(f, _)| f).collect()
            }
            other => panic!("expected refusal, got {other:?}"),
        }
    };
    let mut s = with_im();
    let im = s.im.as_mut().unwrap();
    im.telegram_api_base = "ftp://api.telegram.org".into();
    im.dingtalk_client_id = Some("bad id".into());
    s.opencode_permission
        .insert("Bash".into(), "sometimes".into());
    assert_eq!(
        fields(&s, &Secrets::default()),
        [
            "opencode_permission.Bash",
            "opencode_permission.Bash",
            "im.telegram_api_base",
            "im.dingtalk_client_id"
        ]
    );
    let mut none = custom_domain();
    none.im = Some(ImSettings::new(STACK_ID));
    assert_eq!(fields(&none, &Secrets::default()), ["im"]);
    let bad_proxy = Secrets {
        im_proxy: Some("ftp://user:hunter2-proxy@x:21".into()),
        ..Secrets::default()
    };
    let err = render(&with_im(), &bad_proxy).unwrap_err().to_string();
    assert!(
        err.contains("im.proxy_wo") && err.contains("\"ftp\"") && !err.contains("hunter2"),
        "{err}"
    );
}
