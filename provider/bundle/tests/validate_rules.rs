//! Scenarios for each validation rule: accepted values, rejected values with a clear sentence, and secrets never
//! echoed in errors.

use cloudcode_bundle::validate::*;
use cloudcode_bundle::Settings;

fn msg<T: std::fmt::Debug>(r: Result<T, Invalid>) -> String {
    r.expect_err("expected a rejection").message().to_string()
}

#[test]
fn host_accepts_ips_and_names_rejects_garbage() {
    for ok in [
        "47.1.2.3",
        "::1",
        "2001:db8::1",
        "vm-1.example.com",
        "localhost",
        "Host.Example.COM",
    ] {
        host(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "",
        "a b",
        "-x.example.com",
        "x..y",
        "exa_mple.com",
        "a;rm -rf /",
        &"a".repeat(64),
    ] {
        assert!(
            msg(host(bad)).contains("IP address or a host name"),
            "{bad}"
        );
    }
}

#[test]
fn port_range_is_enforced() {
    port(22).unwrap();
    port(65535).unwrap();
    assert_eq!(
        msg(port(0)),
        "must be a TCP port between 1 and 65535, got 0"
    );
    assert!(msg(port(70000)).contains("70000"));
    assert!(msg(https_alt_port(443)).contains("1024"));
    https_alt_port(8443).unwrap();
}

#[test]
fn a_public_suffix_is_refused_as_the_domain_and_names_under_it_are_not() {
    // Authelia refuses a public suffix as the session cookie's domain; so does the plan, with one sentence.
    for suffix in ["co.uk", "github.io", "com.cn", "pages.dev"] {
        let m = msg(domain(suffix));
        assert!(m.contains("is a public suffix"), "{suffix}: {m}");
        assert!(m.contains(&format!("code.{suffix}")), "{suffix}: {m}");
    }
    for ok in [
        "example.co.uk",
        "me.github.io",
        "code.example.com.cn",
        "47-1-2-3.sslip.io",
        "box.code.test",
    ] {
        domain(ok).unwrap_or_else(|e| panic!("{ok}: {}", e.message()));
    }
}

#[test]
fn domain_must_be_rfc1123_with_two_labels_and_not_an_ip() {
    domain("code.example.com").unwrap();
    domain("47-1-2-3.sslip.io").unwrap();
    assert!(msg(domain("47.1.2.3")).contains("IP address"));
    assert!(msg(domain("localhost")).contains("two labels"));
    // Regression: Caddy refused a generated domain whose label began "xn--" but was not valid punycode.
    assert!(msg(domain("xn----d39v.example.com")).contains("positions 3-4"));
    assert!(msg(domain("ab--c.example.com")).contains("positions 3-4"));
    domain("a--b.example.com").unwrap();
    for bad in [
        "a_b.example.com",
        "x.example.com.",
        "-a.example.com",
        "a b.com",
        "{$X}.com",
        "",
    ] {
        domain(bad).expect_err(bad);
    }
    domain(&format!("{}.com", "a".repeat(63))).unwrap();
    domain(&format!("{}.com", "a".repeat(64))).unwrap_err();
    let long = ["a".repeat(61).as_str(); 4].join(".") + ".com"; // 248 chars max because auth. is prepended
    assert!(long.len() > 248);
    assert!(msg(domain(&long)).contains("at most 248"));
}

#[test]
fn upper_case_and_internationalised_domains_are_accepted_in_their_ascii_form() {
    for (given, deployed) in [
        ("Code.Example.COM", "code.example.com"),
        ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
        ("Bücher.example.de", "xn--bcher-kva.example.de"),
        ("xn--fsqu00a.xn--fiqs8s", "xn--fsqu00a.xn--fiqs8s"),
        ("code.example.com", "code.example.com"),
    ] {
        domain(given).unwrap_or_else(|e| panic!("{given}: {}", e.message()));
        assert_eq!(ascii_domain(given), deployed, "{given}");
    }
    // A public suffix stays refused in either form; an `xn--` label that is not punycode of a valid label too.
    assert!(msg(domain("中国")).contains("two labels"));
    assert!(msg(domain("xn--fiqs8s")).contains("two labels"));
    assert!(msg(domain("xn--zz.example.com")).contains("positions 3-4"));
}

#[test]
fn a_dotted_quad_with_an_octet_over_255_is_refused_naming_the_octet() {
    let m = msg(host("300.1.1.1"));
    assert!(
        m.contains("\"300.1.1.1\" is not an IPv4 address (300 is over 255)"),
        "{m}"
    );
    assert!(msg(host("10.0.0")).contains("3 parts, not 4"));
    assert!(msg(host("1.2.3.4.5")).contains("5 parts, not 4"));
    // Names that merely contain digits are names.
    host("10-0-0-1.sslip.io").unwrap();
    host("host1.example.com").unwrap();
    host("255.255.255.255").unwrap();
}

#[test]
fn a_time_zone_must_exist_in_the_iana_database() {
    for ok in [
        "UTC",
        "Asia/Shanghai",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+8",
    ] {
        timezone(ok).unwrap_or_else(|e| panic!("{ok}: {}", e.message()));
    }
    let m = msg(timezone("Mars/Olympus"));
    assert!(
        m.contains("\"Mars/Olympus\" is not a time zone of the IANA database"),
        "{m}"
    );
    assert!(msg(timezone("asia/shanghai")).contains("did you mean Asia/Shanghai?"));
    assert!(msg(timezone("")).contains("IANA"));
}

#[test]
fn username_uses_authelias_safe_charset() {
    for ok in ["alice", "Bob.Smith", "a_1-2", "x"] {
        username(ok).unwrap();
    }
    for bad in [
        "",
        "_a",
        ".a",
        "a b",
        "a:b",
        "a\nb",
        "ä",
        &"a".repeat(65),
        "a@b",
    ] {
        assert!(
            msg(username(bad)).contains("not a valid user name"),
            "{bad:?}"
        );
    }
}

#[test]
fn email_is_conservative() {
    email("ops+cloud@example.co.uk").unwrap();
    for bad in [
        "",
        "a",
        "a@b",
        "@example.com",
        "a@@example.com",
        "a b@example.com",
        "a{b}@example.com",
        "a@exa mple.com",
        "a..b@example.com",
        "a$b@example.com",
    ] {
        assert!(msg(email(bad)).contains("not an e-mail address"), "{bad}");
    }
}

#[test]
fn password_length_and_control_chars_and_never_echoed() {
    password("twelve chars").unwrap();
    password("密码密码密码密码密码密码").unwrap();
    let short = "hunter2secr";
    let m = msg(password(short));
    assert!(m.contains("at least 12"), "{m}");
    assert!(!m.contains(short));
    let ctrl = "abcdefghijkl\nmnop";
    let m = msg(password(ctrl));
    assert!(m.contains("control characters"));
    assert!(!m.contains("abcdefghijkl"));
}

#[test]
fn api_key_rejections_never_echo_the_key() {
    api_key("sk-abc$#\"{x}").unwrap();
    assert!(msg(api_key("sk-a\\")).contains("backslashes"));
    for bad in [
        "",
        "sk-with space",
        "sk-'quote",
        "sk-\nnl",
        "sk-\u{feff}bom",
    ] {
        let m = msg(api_key(bad));
        if bad.len() > 3 {
            assert!(!m.contains(bad), "{m}");
            assert!(!m.contains("sk-"), "{m}");
        }
    }
}

#[test]
fn enums_list_the_allowed_values() {
    for p in ["openai", "anthropic", "gemini", "openai_compatible"] {
        llm_provider(p).unwrap();
    }
    assert_eq!(
        msg(llm_provider("azure")),
        "\"azure\" is not one of: openai, anthropic, gemini, openai_compatible"
    );
    tls_mode("internal").unwrap();
    assert!(msg(tls_mode("none")).contains("acme, internal"));
    docker_install("skip").unwrap();
    assert!(msg(docker_install("yes")).contains("auto, skip"));
}

#[test]
fn base_url_must_be_https_without_credentials_or_braces() {
    https_url("https://api.example.com/v1").unwrap();
    https_url("https://10.0.0.5:8443/v1/").unwrap();
    assert!(msg(https_url("http://api.example.com")).contains("https://"));
    assert!(msg(https_url("https://u:p@api.example.com")).contains("credentials"));
    for bad in [
        "https://x.com/{env:HOME}",
        "https://x.com/ a",
        "https://x.com/\"",
        "ftp://x",
        "https://",
        "not a url",
        "https://x.com/$X",
    ] {
        https_url(bad).expect_err(bad);
    }
}

#[test]
fn remote_dir_is_absolute_and_plain() {
    remote_dir("/opt/cloudcode").unwrap();
    remote_dir("/srv/cloud_code-2").unwrap();
    for bad in [
        "opt/cloudcode",
        "/",
        "/opt/../etc",
        "/opt/./x",
        "/opt//x",
        "/opt/x/",
        "/opt/cloud code",
        "/opt/$(id)",
        "/opt/'x'",
    ] {
        assert!(msg(remote_dir(bad)).contains("absolute directory"), "{bad}");
    }
}

#[test]
fn timezone_looks_like_iana() {
    for ok in [
        "UTC",
        "Asia/Shanghai",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+8",
        "America/Port-au-Prince",
    ] {
        timezone(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "",
        "utc",
        "Asia",
        "asia/shanghai",
        "Asia/Shang hai",
        "Asia/$X",
        "../etc/passwd",
        "A/B/C/D",
    ] {
        assert!(msg(timezone(bad)).contains("IANA"), "{bad}");
    }
}

#[test]
fn image_refs_follow_the_reference_grammar() {
    for ok in [
        "caddy",
        "caddy:2.10.2",
        "docker.io/library/caddy:2.10.2",
        "localhost:5000/cloudcode/devbox:test",
        "registry.cn-hangzhou.aliyuncs.com/team/authelia:4.39.15",
        "ghcr.io/cloudcode-dev/devbox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "cloudcode-devbox:1.18.33",
        "a__b/c--d:x",
    ] {
        image_ref(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "",
        "Caddy",
        "caddy:",
        "caddy:-x",
        "caddy:a b",
        "a/b@sha256:xyz",
        "caddy $X",
        "a..b",
        "-a",
        "a/",
        "reg.io:99999/a",
        "a:b:c",
    ] {
        assert!(
            msg(image_ref(bad)).contains("not an image reference"),
            "{bad}"
        );
    }
}

#[test]
fn opencode_version_is_semver() {
    opencode_version("1.18.33").unwrap();
    opencode_version("1.19.0-beta.1").unwrap();
    for bad in ["1.18", "v1.18.33", "latest", "1.18.33+build", "1.18.33; rm"] {
        assert!(
            msg(opencode_version(bad)).contains("not a version"),
            "{bad}"
        );
    }
}

#[test]
fn model_names() {
    for ok in [
        "gpt-4.1",
        "claude-sonnet-4-5",
        "qwen2.5-coder:32b",
        "meta/llama@v3+x",
    ] {
        model_name(ok).unwrap();
    }
    for bad in ["", "a b", "{env:HOME}", "a\"b", &"m".repeat(201)] {
        model_name(bad).expect_err(bad);
    }
}

#[test]
fn ssh_host_keys_and_fingerprints() {
    // ssh-ed25519 blob: len(11) "ssh-ed25519" len(32) key
    let mut blob = vec![0, 0, 0, 11];
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&[0, 0, 0, 32]);
    blob.extend_from_slice(&[7u8; 32]);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    ssh_host_key(&format!("ssh-ed25519 {b64}")).unwrap();
    ssh_host_key(&format!("ssh-ed25519 {b64} root@vm")).unwrap();
    let fp = base64::engine::general_purpose::STANDARD_NO_PAD.encode([1u8; 32]);
    ssh_host_key(&format!("SHA256:{fp}")).unwrap();
    assert!(msg(ssh_host_key(&format!("ssh-rsa {b64}"))).contains("does not match"));
    assert!(msg(ssh_host_key("ssh-dss AAAA")).contains("unsupported"));
    assert!(msg(ssh_host_key("SHA256:short")).contains("not an SSH host key"));
    assert!(msg(ssh_host_key("garbage")).contains("not an SSH host key"));
}

#[test]
fn fallback_domain_maps_ipv4_and_rejects_others() {
    assert_eq!(fallback_domain("47.1.2.3").unwrap(), "47-1-2-3.sslip.io");
    assert_eq!(fallback_domain("10.0.0.1").unwrap(), "10-0-0-1.sslip.io");
    assert!(msg(fallback_domain("2001:db8::1")).contains("IPv6"));
    assert!(msg(fallback_domain("example.com")).contains("not an IPv4 address"));
    assert!(msg(fallback_domain("47.1.2")).contains("not an IPv4 address"));
    domain(&fallback_domain("203.0.113.9").unwrap()).unwrap();
}

#[test]
fn fallback_domain_service_is_sslip_or_nip() {
    assert_eq!(
        fallback_domain_on("47.1.2.3", "nip.io").unwrap(),
        "47-1-2-3.nip.io"
    );
    assert_eq!(
        fallback_domain_on("47.1.2.3", "sslip.io").unwrap(),
        fallback_domain("47.1.2.3").unwrap()
    );
    let e = msg(fallback_domain_on("47.1.2.3", "xip.io"));
    assert!(
        e.contains("xip.io") && e.contains("sslip.io or nip.io"),
        "{e}"
    );
    assert!(
        msg(fallback_domain_on("::1", "nip.io")).contains("nip.io fallback domain needs an IPv4")
    );
}

#[test]
fn llm_base_url_takes_http_only_to_a_private_address() {
    for ok in [
        "https://api.example.com/v1",
        "http://10.0.0.5:11434/v1",
        "http://192.168.1.2/v1",
        "http://[fd00::1]/v1",
    ] {
        https_url(ok).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    for bad in [
        "http://api.example.com/v1",
        "http://8.8.8.8/v1",
        "http://10.0.0.5.nip.io/v1",
    ] {
        assert!(https_url(bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn validate_names_every_bad_field_by_its_terraform_attribute() {
    let mut s = Settings::default_for("bad_domain", "a b", "nope");
    s.llm_provider = "openai_compatible".into();
    s.llm_base_url = Some("http://x".into());
    s.opencode_version = "latest".into();
    s.images.devbox = Some("Bad Image".into());
    s.https_alt_port = Some(80);
    s.tls_mode = "off".into();
    s.timezone = "nowhere".into();
    s.remote_dir = "relative".into();
    s.admin_password_wo_version = -1;
    let fields: Vec<String> = validate(&s).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "domain",
            "admin_username",
            "admin_email",
            "llm_base_url",
            "llm_model",
            "opencode_version",
            "images.devbox",
            "https_alt_port",
            "tls_mode",
            "timezone",
            "remote_dir",
            "admin_password_wo_version"
        ]
    );
    assert!(validate(&Settings::default_for(
        "code.example.com",
        "alice",
        "a@example.com"
    ))
    .is_empty());
}
