//! Registry and package mirrors (`mirrors`) in the rendered bundle: default images rewritten to the mirror
//! registry (explicit images kept), the Docker daemon's settings file, the devbox's index variables, the `cn`
//! preset, and each field's check.
mod support;

use cloudcode_bundle::settings::{CN_IMAGE_REGISTRY, DEFAULT_OPENCODE_VERSION};
use cloudcode_bundle::{mirrors_preset, paths, render, Mirrors, Settings};
use support::{custom_domain, render_ok, secrets_fixed};

fn with(m: Mirrors) -> Settings {
    let mut s = custom_domain();
    s.mirrors = Some(m);
    s
}

fn compose(b: &cloudcode_bundle::Bundle) -> serde_yaml::Value {
    serde_yaml::from_slice(&b.files[paths::COMPOSE].bytes).unwrap()
}

#[test]
fn an_apt_mirror_is_a_base_url_and_anything_else_is_refused_naming_it() {
    use cloudcode_bundle::mirrors::apt_mirror;
    for ok in [
        "https://mirrors.aliyun.com",
        "http://mirrors.cloud.aliyuncs.com",
        "http://10.0.0.5:8080/apt",
    ] {
        assert!(apt_mirror(ok).is_ok(), "{ok}");
    }
    for bad in [
        "mirrors.aliyun.com",
        "ftp://mirrors.aliyun.com",
        "https://mirrors.aliyun.com/",
        "https://user:pw@mirrors.aliyun.com",
        "https://mirrors.aliyun.com/?x=1",
        "http://mirror#x",
        "http://mirror/a b",
    ] {
        assert!(apt_mirror(bad).is_err(), "{bad}");
    }
    let err = render(
        &with(Mirrors {
            apt: Some("ftp://x".into()),
            ..Mirrors::default()
        }),
        &secrets_fixed(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("mirrors.apt"), "{err}");
    assert_eq!(
        mirrors_preset("cn").unwrap().apt.as_deref(),
        Some("https://mirrors.aliyun.com")
    );
}

#[test]
fn default_images_come_from_the_mirror_registry_and_explicit_ones_as_given() {
    let mut s = with(Mirrors {
        image_registry: Some("10.0.0.5:5000/team".into()),
        ..Mirrors::default()
    });
    let c = compose(&render_ok(&s, &secrets_fixed()));
    assert_eq!(
        c["services"]["caddy"]["image"].as_str(),
        Some("10.0.0.5:5000/team/caddy:2.10.2")
    );
    assert_eq!(
        c["services"]["authelia"]["image"].as_str(),
        Some("10.0.0.5:5000/team/authelia:4.39.20")
    );
    assert_eq!(
        c["services"]["devbox_blue"]["image"].as_str(),
        Some(format!("10.0.0.5:5000/team/devbox:{DEFAULT_OPENCODE_VERSION}").as_str())
    );
    s.images.caddy = Some("registry.example.com/own/caddy:2".into());
    let c = compose(&render_ok(&s, &secrets_fixed()));
    assert_eq!(
        c["services"]["caddy"]["image"].as_str(),
        Some("registry.example.com/own/caddy:2")
    );
}

#[test]
fn daemon_settings_are_a_managed_file_and_retired_without_them() {
    let b = render_ok(
        &with(Mirrors {
            registry_mirrors: vec!["https://abc.mirror.aliyuncs.com".into()],
            insecure_registries: vec!["10.0.0.5:5000".into()],
            ..Mirrors::default()
        }),
        &secrets_fixed(),
    );
    let daemon: serde_json::Value =
        serde_json::from_slice(&b.files[paths::DAEMON_JSON].bytes).unwrap();
    assert_eq!(
        daemon["registry-mirrors"][0],
        "https://abc.mirror.aliyuncs.com"
    );
    assert_eq!(daemon["insecure-registries"][0], "10.0.0.5:5000");
    assert!(b.managed_hashes().contains_key(paths::DAEMON_JSON));
    assert!(!b.retired.contains(&paths::DAEMON_JSON.to_string()));
    let plain = render_ok(&custom_domain(), &secrets_fixed());
    assert!(!plain.files.contains_key(paths::DAEMON_JSON));
    assert!(plain.retired.contains(&paths::DAEMON_JSON.to_string()));
    assert!(!String::from_utf8_lossy(&plain.files[paths::MANIFEST].bytes).contains("mirrors"));
}

#[test]
fn the_cn_preset_sets_the_release_mirror_and_the_devbox_indexes() {
    let b = render_ok(&with(mirrors_preset("cn").unwrap()), &secrets_fixed());
    let c = compose(&b);
    let devbox = &c["services"]["devbox_blue"];
    assert!(devbox["image"]
        .as_str()
        .unwrap()
        .starts_with(CN_IMAGE_REGISTRY));
    assert_eq!(
        devbox["environment"]["NPM_CONFIG_REGISTRY"].as_str(),
        Some("https://registry.npmmirror.com")
    );
    assert_eq!(
        devbox["environment"]["PIP_INDEX_URL"].as_str(),
        Some("https://mirrors.aliyun.com/pypi/simple/")
    );
    assert!(c["services"]["caddy"]["environment"]
        .get("NPM_CONFIG_REGISTRY")
        .is_none());
    // Nothing for the daemon: the preset's images are public in the mirror.
    assert!(!b.files.contains_key(paths::DAEMON_JSON));
    assert!(mirrors_preset("eu").is_none());
    // The devbox is replaced when its indexes change, the others stay.
    let plain = render_ok(&custom_domain(), &secrets_fixed());
    assert_ne!(plain.devbox_hash, b.devbox_hash);
}

#[test]
fn each_bad_mirror_field_is_named() {
    for (m, field) in [
        (
            Mirrors {
                image_registry: Some("https://registry.example.com/team".into()),
                ..Mirrors::default()
            },
            "mirrors.image_registry",
        ),
        (
            Mirrors {
                registry_mirrors: vec!["ftp://m.example.com".into()],
                ..Mirrors::default()
            },
            "mirrors.registry_mirrors",
        ),
        (
            Mirrors {
                insecure_registries: vec!["bad host:5000".into()],
                ..Mirrors::default()
            },
            "mirrors.insecure_registries",
        ),
        (
            Mirrors {
                insecure_registries: vec!["10.0.0.0/64".into()],
                ..Mirrors::default()
            },
            "mirrors.insecure_registries",
        ),
        (
            Mirrors {
                npm: Some("http://npm.example.com".into()),
                ..Mirrors::default()
            },
            "mirrors.npm",
        ),
    ] {
        let e = render(&with(m), &secrets_fixed()).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
}

#[test]
fn an_input_resolves_the_preset_with_each_set_field_in_its_place_and_import_spells_it_out() {
    use cloudcode_bundle::MirrorsInput;
    let input = MirrorsInput {
        preset: Some("cn".into()),
        npm: Some("https://npm.example.com".into()),
        insecure_registries: Some(vec!["10.0.0.5:5000".into()]),
        ..MirrorsInput::default()
    };
    let m = input.resolve();
    assert_eq!(m.image_registry.as_deref(), Some(CN_IMAGE_REGISTRY));
    assert_eq!(m.npm.as_deref(), Some("https://npm.example.com"));
    assert_eq!(m.pypi, mirrors_preset("cn").unwrap().pypi);
    assert_eq!(m.insecure_registries, ["10.0.0.5:5000"]);
    let spelled = MirrorsInput::spelled_out(&m);
    assert_eq!(spelled.preset, None);
    assert_eq!(spelled.resolve(), m);
}
