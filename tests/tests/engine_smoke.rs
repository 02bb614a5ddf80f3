//! The engine matrix end to end: one stack on one test VM under every engine of the smoke list (terraform,
//! the current tofu, the oldest supported tofu) — init, apply, the site answers, a no-op plan at the same SSH
//! cost under each engine (one connection, one remote command, counted at a proxy in front of sshd and in
//! the provider's log), destroy — and OpenTofu's version guard: an OpenTofu outside the supported range is
//! refused at init, with the line that states the range.

use std::time::Duration;

use cloudcode_tests::delay_proxy::DelayProxy;
use cloudcode_tests::engine::{self, cached_tofu, Engine, Kind, TOFU_UNSUPPORTED};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{
    apply_ok, assert_no_secret, container_ids, curl, plan_exit, stack_hcl_at, API_KEY, DOMAIN,
    PASSWORD,
};
use cloudcode_tests::terraform::{repo_root, Workdir};
use cloudcode_tests::vm::{TestVm, VmOptions};

const RANGE: &str = ">= 1.11.6, != 1.11.12, != 1.12.4";

#[test]
fn one_stack_deploys_and_destroys_under_every_engine_and_a_noop_plan_costs_one_connection_and_one_command(
) {
    let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
    let sshd = format!("{}:{}", vm.ssh_host, vm.ssh_port).parse().unwrap();
    let proxy = DelayProxy::start(sshd, Duration::ZERO).unwrap();
    engine::each(&engine::smoke(), |e| {
        let hcl = stack_hcl_at(&vm, "127.0.0.1", proxy.port(), "");
        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env("TF_VAR_llm_api_key", API_KEY);
        wd.set_env("TF_LOG_PROVIDER", "info");
        wd.init().unwrap();
        let first = apply_ok(&wd);
        assert_no_secret(&format!("the apply under {e}"), &first.stderr);
        assert_no_secret(&format!("the state under {e}"), &wd.state_text());
        // The state names the provider under this engine's registry host.
        assert!(
            wd.state_text()
                .contains(&e.provider_addr("cloudcode-dev/cloudcode")),
            "{e}: {}",
            wd.state_text()
        );
        // The site answers: without a session, Caddy sends the browser to the login portal.
        let (code, head, _) = curl(&vm, "/", None);
        assert!(matches!(code, 302 | 303), "{e}: HTTP {code}\n{head}");
        assert!(
            head.to_lowercase()
                .contains(&format!("location: https://auth.{DOMAIN}/")),
            "{e}: {head}"
        );
        assert_eq!(container_ids(&vm).len(), 3, "{e}");

        // A no-op plan: empty, one SSH connection, one remote command.
        proxy.reset_counters();
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "{e}: second plan not empty\n{}", plan.stdout);
        let connections = proxy.stats().connections;
        let commands = plan.logged("cloudcode_stack read", "commands");
        eprintln!(
            "no-op plan under {e}: {connections} SSH connection(s), {commands:?} remote command(s)"
        );
        assert_eq!(connections, 1, "{e}: SSH connections of a no-op plan");
        assert_eq!(
            commands.as_deref(),
            Some("1"),
            "{e}: remote commands of a no-op plan"
        );

        let destroy = wd
            .tf(&["destroy", "-auto-approve", "-json", "-input=false"])
            .unwrap();
        assert!(destroy.success, "{e}: {:#?}", destroy.diagnostics());
        assert!(container_ids(&vm).is_empty(), "{e}: containers left");
    });
}

/// `init` in a copy of `modules/cloudcode-host` whose `versions.tofu` guard line is `guard_line`.
fn init_host_module(e: &Engine, guard_line: Option<&str>) -> (bool, String) {
    let wd = Workdir::empty_on(e, provider_bin!()).unwrap();
    wd.copy_tree(&repo_root().join("modules/cloudcode-host"), "m")
        .unwrap();
    if let Some(line) = guard_line {
        let path = wd.path().join("m/versions.tofu");
        let text = std::fs::read_to_string(&path).unwrap();
        let replaced: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("required_version") {
                    format!("  {line}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&path, replaced).unwrap();
    }
    let run = wd
        .tf_in("m", &["init", "-backend=false", "-no-color"])
        .unwrap();
    (run.success, format!("{}{}", run.stdout, run.stderr))
}

#[test]
fn an_opentofu_outside_the_supported_range_is_refused_at_init_with_the_range() {
    let tofu = engine::scenario(Kind::Tofu);
    assert!(tofu.is_tofu(), "the engine list has no tofu");

    // The supported tofu accepts the module as committed.
    let (ok, out) = init_host_module(&tofu, None);
    assert!(ok, "{tofu} refused the module:\n{out}");

    // The guard pointed at a range the installed tofu does not meet: refused at init, and the message
    // shows the guard's line, with the sentence that states the range.
    let (ok, out) = init_host_module(
        &tofu,
        Some(r#"required_version = ">= 99.0.0" # cloudcode supports OpenTofu 99.0.0 and later"#),
    );
    assert!(!ok, "{tofu} accepted a module it does not meet:\n{out}");
    assert!(out.contains("Incompatible module"), "{out}");
    assert!(
        out.contains(&format!("not compatible with OpenTofu v{}", tofu.version)),
        "{out}"
    );
    assert!(
        out.contains("cloudcode supports OpenTofu 99.0.0 and later"),
        "{out}"
    );

    // Terraform does not read .tofu files: the same change leaves it untouched.
    let terraform = engine::terraform();
    let (ok, out) = init_host_module(&terraform, Some(r#"required_version = ">= 99.0.0""#));
    assert!(ok, "{terraform} read versions.tofu:\n{out}");

    // The real unsupported release, where it was built (scripts/deps/10-opentofu.sh builds it).
    match cached_tofu(TOFU_UNSUPPORTED) {
        Some(bin) => {
            let old = Engine::identify(Kind::Tofu, bin).unwrap();
            let (ok, out) = init_host_module(&old, None);
            assert!(!ok, "{old} accepted the module:\n{out}");
            // 1.10's wording: "Unsupported OpenTofu Core version … does not support OpenTofu version 1.10.0".
            assert!(
                out.contains(&format!(
                    "does not support OpenTofu version {TOFU_UNSUPPORTED}"
                )),
                "{out}"
            );
            assert!(out.contains(RANGE), "the refusal shows the range:\n{out}");
            assert!(
                out.contains(
                    "cloudcode supports OpenTofu 1.11.6 and later, except 1.11.12 and 1.12.4"
                ),
                "{out}"
            );
        }
        None => eprintln!(
            "tofu {TOFU_UNSUPPORTED} is not built here: only the pointed guard was checked"
        ),
    }
}
