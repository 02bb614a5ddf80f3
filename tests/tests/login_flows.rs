//! Logging in as users do, on the test VM: the real Caddy of a deployed stack in front of the Authelia contract
//! double (held to recordings of the real Authelia by `authelia_double.rs`) and the devbox with the real
//! OpenCode and ttyd. No session, wrong password, password alone, TOTP registered with the code `cloudcode otc`
//! reads, a passkey, the alternative port with 443 closed, an Authelia recreate and a destroy → deploy that keep
//! the registrations, and the regulation ban. Each signed-in answer sits beside the signed-out one.

use std::path::Path;

use cloudcode_tests::authelia::{cloudcode_otc, pinned_version, Browser, Reply};
use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{
    apply_ok, assert_recreated, browser, container_ids, in_vm, notification, stack_hcl, API_KEY,
    DOMAIN, PASSWORD,
};
use cloudcode_tests::terraform::{required_providers, Workdir};
use cloudcode_tests::vm::{TestVm, VmOptions};
use cloudcode_tests::webauthn::SoftAuthenticator;

const NEW_PASSWORD: &str = "vm-test-password-7742-staple";
const CLOSE_443: &str = "iptables -t mangle -I PREROUTING -p tcp --dport 443 -j DROP";
const OPEN_443: &str = "iptables -t mangle -D PREROUTING -p tcp --dport 443 -j DROP";

/// The one-time code as the user gets it: `cloudcode otc --file` on the notifier file of the stack's Authelia.
fn otc(vm: &TestVm) -> String {
    cloudcode_otc(
        Path::new(env!("CARGO_BIN_EXE_cloudcode-cli-under-test")),
        &notification(vm),
    )
}

/// OpenCode's health through the gate, parsed.
fn assert_healthy(b: &mut Browser) {
    let r = b.site("/global/health", true);
    assert_eq!(r.status, 200, "OpenCode through the gate: {}", r.body);
    assert_eq!(r.json()["healthy"], true, "{}", r.body);
}

fn assert_portal(r: &Reply, port: Option<u16>, path: &str) {
    let (auth, site) = match port {
        Some(p) => (format!("auth.{DOMAIN}:{p}"), format!("{DOMAIN}%3A{p}")),
        None => (format!("auth.{DOMAIN}"), DOMAIN.to_string()),
    };
    let rd: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    assert_eq!(
        r.header("location"),
        Some(format!("https://{auth}/?rd=https%3A%2F%2F{site}{rd}&rm=GET").as_str()),
        "HTTP {}",
        r.status
    );
}

fn user_info(b: &mut Browser) -> (bool, bool) {
    let info = b
        .api("GET", "/api/user/info", None)
        .expect_ok(200, "user info")
        .json();
    (
        info["data"]["has_totp"].as_bool().unwrap(),
        info["data"]["has_webauthn"].as_bool().unwrap(),
    )
}

#[test]
fn login_flows_through_caddy_and_authelia() {
    engine::once(&engine::scenario(Kind::Terraform), |e| {
        let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let hcl = |version: u32| {
            stack_hcl(&vm, "  https_alt_port = 8443\n").replace(
                "admin_password_wo_version = 1",
                &format!("admin_password_wo_version = {version}"),
            )
        };
        assert!(hcl(2).contains("admin_password_wo_version = 2"));
        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl(1)).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env("TF_VAR_llm_api_key", API_KEY);
        wd.init().unwrap();
        apply_ok(&wd);
        let image = vm.image("authelia").unwrap().image.clone();
        assert!(
            image.ends_with(&format!(":{}", pinned_version())),
            "{image}"
        );

        // 1. No session: the browser is sent to the portal (302 with rd), a script gets 401, the terminal too.
        let mut b = browser(&vm, None);
        let r = b.site("/", false);
        assert_eq!(r.status, 302);
        assert_portal(&r, None, "/");
        assert_eq!(
            b.site("/global/health", true).status,
            401,
            "XHR without a session"
        );
        let r = b.site("/terminal/", false);
        assert_eq!(r.status, 302);
        assert_portal(&r, None, "/terminal/");

        // 2. A wrong password is refused; the right one alone is one factor of the two the rule asks.
        assert_eq!(b.first_factor("admin", "not-the-password").status, 401);
        b.first_factor("admin", PASSWORD).expect_ok(200, "password");
        assert_eq!(b.site("/", false).status, 302, "password alone");

        // 3. TOTP registered with the one-time code `cloudcode otc` reads, then a TOTP login: OpenCode and ttyd.
        b.elevate(&|| otc(&vm));
        let mut totp = b.register_totp();
        let r = b.totp_login(&mut totp).expect_ok(200, "TOTP login");
        assert_eq!(r.json()["data"]["redirect"], format!("https://{DOMAIN}/"));
        assert_healthy(&mut b);
        let r = b.site("/terminal/", false);
        assert_eq!(r.status, 200);
        assert!(
            r.body.contains("<title>ttyd - Terminal</title>"),
            "not ttyd: {}",
            r.body
        );
        assert_eq!(
            browser(&vm, None).site("/global/health", true).status,
            401,
            "signed out beside"
        );

        // 4. A passkey, registered the same way, logs in first; the password follows (two_factor).
        b.elevate(&|| otc(&vm));
        let mut passkey = SoftAuthenticator::new(&format!("https://auth.{DOMAIN}"), true);
        b.register_webauthn(&mut passkey, "phone")
            .expect_ok(201, "passkey registration");
        let mut p = browser(&vm, None);
        p.passkey_login(&mut passkey).expect_ok(200, "passkey");
        assert_eq!(p.site("/", false).status, 302, "a passkey alone");
        p.second_factor_password(PASSWORD)
            .expect_ok(200, "password after the passkey");
        assert_healthy(&mut p);

        // 5. https_alt_port with 443 closed: every redirect stays on 8443, and both logins work there.
        in_vm(&vm, CLOSE_443);
        assert_eq!(
            browser(&vm, None).site("/", false).status,
            0,
            "443 is closed"
        );
        let mut alt = browser(&vm, Some(8443));
        let r = alt.site("/", false);
        assert_eq!(r.status, 302);
        assert_portal(&r, Some(8443), "/");
        alt.first_factor("admin", PASSWORD)
            .expect_ok(200, "password on 8443");
        let r = alt.totp_login(&mut totp).expect_ok(200, "TOTP on 8443");
        assert_eq!(
            r.json()["data"]["redirect"],
            format!("https://{DOMAIN}:8443/")
        );
        assert_healthy(&mut alt);
        passkey.origin = format!("https://auth.{DOMAIN}:8443");
        let mut alt_passkey = browser(&vm, Some(8443));
        alt_passkey
            .passkey_login(&mut passkey)
            .expect_ok(200, "passkey on 8443");
        alt_passkey
            .second_factor_password(PASSWORD)
            .expect_ok(200, "password on 8443");
        assert_healthy(&mut alt_passkey);
        assert!(
            alt.locations.iter().all(|l| l.contains(":8443/")),
            "{:?}",
            alt.locations
        );
        passkey.origin = format!("https://auth.{DOMAIN}");
        in_vm(&vm, OPEN_443);

        // 6. One setting that recreates Authelia (a new password): everyone is logged out (sessions live in
        //    memory), the old password is refused, and TOTP and the passkey still log in — nothing to register.
        let before = container_ids(&vm);
        wd.write("main.tf", &format!("{}\n{}", required_providers(), hcl(2)))
            .unwrap();
        wd.set_env("TF_VAR_admin_password", NEW_PASSWORD);
        apply_ok(&wd);
        assert_recreated(&before, &container_ids(&vm), &["authelia"]);
        assert_eq!(
            b.site("/global/health", true).status,
            401,
            "the old session after the recreate"
        );
        let mut c = browser(&vm, None);
        assert_eq!(
            c.first_factor("admin", PASSWORD).status,
            401,
            "the old password"
        );
        c.first_factor("admin", NEW_PASSWORD)
            .expect_ok(200, "the new password");
        assert_eq!(user_info(&mut c), (true, true), "TOTP and passkey kept");
        c.totp_login(&mut totp)
            .expect_ok(200, "TOTP after the recreate");
        assert_healthy(&mut c);
        let mut p = browser(&vm, None);
        p.passkey_login(&mut passkey)
            .expect_ok(200, "passkey after the recreate");
        p.second_factor_password(NEW_PASSWORD)
            .expect_ok(200, "password");
        assert_healthy(&mut p);

        // 7. Destroy (volumes and secrets kept), deploy again: the registrations are still there.
        let run = wd
            .tf(&["destroy", "-auto-approve", "-no-color", "-input=false"])
            .unwrap();
        assert!(run.success, "destroy: {}{}", run.stdout, run.stderr);
        assert!(in_vm(&vm, "docker volume ls -q").contains("cloudcode_authelia_data"));
        apply_ok(&wd);
        let mut d = browser(&vm, None);
        assert_eq!(d.site("/", false).status, 302);
        d.first_factor("admin", NEW_PASSWORD)
            .expect_ok(200, "password after redeploy");
        assert_eq!(
            user_info(&mut d),
            (true, true),
            "nothing asks to register again"
        );
        d.totp_login(&mut totp)
            .expect_ok(200, "TOTP after destroy → deploy");
        assert_healthy(&mut d);
        let mut p = browser(&vm, None);
        p.passkey_login(&mut passkey)
            .expect_ok(200, "passkey after destroy → deploy");
        p.second_factor_password(NEW_PASSWORD)
            .expect_ok(200, "password");
        assert_healthy(&mut p);

        // 8. Regulation: five wrong passwords ban the user; the right one is then refused with the same answer.
        let mut x = browser(&vm, None);
        for _ in 0..5 {
            assert_eq!(x.first_factor("admin", "guess").status, 401);
        }
        assert_eq!(x.first_factor("admin", NEW_PASSWORD).status, 401, "banned");
        let log = in_vm(
            &vm,
            "docker logs $(docker ps -q --filter label=com.docker.compose.service=authelia) 2>&1",
        );
        assert!(log.contains("user is banned"), "{log}");
        for secret in [PASSWORD, NEW_PASSWORD, totp.secret.as_str()] {
            assert!(!log.contains(secret), "a secret in Authelia's log");
        }
        let run = wd
            .tf(&["destroy", "-auto-approve", "-no-color", "-input=false"])
            .unwrap();
        assert!(run.success, "destroy: {}{}", run.stdout, run.stderr);
        vm.shutdown().unwrap();
    });
}
