//! Idle auto-suspend on the test VM: `cloudcode_stack` with `idle_suspend_after` deploys the real
//! `cloudcode-agent` (its image made from the binary under test), which finds its instance and RAM role through the
//! instance metadata double at the documented address 100.100.100.200 (routed into the VM's namespace) and calls
//! the Alibaba Cloud API double with the role's STS credentials. Signed-in requests through Caddy keep the box up
//! past the limit (the refused case); once they stop, the agent tags the instance and stops it in StopCharging
//! mode, and says so in its log. The stack's read then does not fight it: with `host_running = false` (what the
//! module passes while the instance carries the tag) the next plan is empty.
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use cloudcode_tests::ecs_double::{EcsDouble, InstanceSeed, RecordedCall};
use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::im_image::{build_image, AGENT};
use cloudcode_tests::metadata_double::{MetadataDouble, MetadataRoute, METADATA_IP};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{
    apply_ok, assert_no_secret, in_vm, plan_exit, sign_in, stack_hcl, with_request_loop,
    write_main, PASSWORD,
};
use cloudcode_tests::terraform::Workdir;
use cloudcode_tests::vm::{TestVm, VmOptions};

const INSTANCE: &str = "i-bp1idleagentbox001";
const REGION: &str = "cn-hangzhou";
const ROLE: &str = "box-cloudcode-idle";
const POLICY: &str = "box-cloudcode-idle";
/// The limit: short for the test, the same code path as hours.
const AFTER: &str = "2m";
const AFTER_S: u64 = 120;

/// The role, its policy (stop and tag this instance only) and its attachment to the instance, as the module makes
/// them.
fn seed_role(ecs: &EcsDouble) {
    let trust = r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}]}"#;
    ecs.ram_call(
        "CreateRole",
        &[("RoleName", ROLE), ("AssumeRolePolicyDocument", trust)],
    )
    .expect("CreateRole");
    let policy = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":["ecs:StopInstance","ecs:TagResources","ecs:UntagResources"],"Resource":["acs:ecs:*:*:instance/{INSTANCE}"]}}]}}"#
    );
    ecs.ram_call(
        "CreatePolicy",
        &[("PolicyName", POLICY), ("PolicyDocument", &policy)],
    )
    .expect("CreatePolicy");
    ecs.ram_call(
        "AttachPolicyToRole",
        &[
            ("PolicyType", "Custom"),
            ("PolicyName", POLICY),
            ("RoleName", ROLE),
        ],
    )
    .expect("AttachPolicyToRole");
    ecs.attach_instance_ram_role(INSTANCE, ROLE)
        .expect("AttachInstanceRamRole");
}

/// The calls the agent made (signed with a security token: the role's credentials).
fn agent_calls(ecs: &EcsDouble) -> Vec<RecordedCall> {
    ecs.calls()
        .into_iter()
        .filter(|c| c.security_token)
        .collect()
}

fn agent_log(vm: &TestVm) -> String {
    in_vm(
        vm,
        "cd /opt/cloudcode && docker compose logs --no-color idle 2>&1 || true",
    )
}

#[test]
fn an_unused_box_stops_itself_with_its_role_and_a_used_one_does_not() {
    engine::once(&engine::scenario(Kind::Tofu), |e| {
        let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let host: IpAddr = vm.host_ip.parse().expect("the VM's host-side address");
        let ecs = EcsDouble::start_on(SocketAddr::new(host, 0)).expect("the API double");
        ecs.add_instance(InstanceSeed::running(INSTANCE, REGION));
        seed_role(&ecs);
        // The address is routed now; the service answers only once someone signed in (below), so however long
        // the deploy takes on a busy machine, the agent cannot stop the box before the scenario begins.
        let _route = MetadataRoute::for_vm(&vm).expect("100.100.100.200 routed into the VM");
        let image_dir = tempfile::tempdir().unwrap();
        let agent = build_image(
            &AGENT,
            Path::new(env!("CARGO_BIN_EXE_cloudcode-agent-under-test")),
            image_dir.path(),
        )
        .expect("the agent image");

        let extra = format!(
            "  idle_suspend_after    = \"{AFTER}\"\n  idle_suspend_endpoint = \"{}\"\n",
            ecs.base_url()
        );
        let hcl = stack_hcl(&vm, &extra)
            .replacen(
                "  images = {\n",
                &format!("  images = {{\n    agent = \"{}\"\n", agent.image),
                1,
            )
            .replacen(
                "image_archives = [",
                &format!("image_archives = [\"{}\", ", agent.archive.display()),
                1,
            );
        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.init().unwrap();
        let first = apply_ok(&wd);
        assert_no_secret("apply output", &format!("{}{}", first.stdout, first.stderr));
        let show = wd.tf(&["show", "-json"]).unwrap().ok().unwrap();
        let values = &show.json().unwrap()["values"]["root_module"]["resources"][0]["values"];
        assert_eq!(values["services"]["idle"], "running", "{values:#}");
        assert_eq!(values["idle_suspend_after"], AFTER);

        // Without the metadata service the agent cannot act, and says so.
        let (browser, _totp) = sign_in(&vm);
        let session = browser.cookie.clone().expect("a session cookie");
        let log = agent_log(&vm);
        assert!(
            log.contains("cannot suspend yet: the instance metadata service"),
            "{log}"
        );
        assert!(agent_calls(&ecs).is_empty(), "{:#?}", agent_calls(&ecs));

        // The service answers; the agent restarts (its limit counts from its start): it finds itself and clears a
        // stale tag with the role's key.
        let metadata =
            MetadataDouble::start(SocketAddr::new(IpAddr::V4(METADATA_IP), 80), &ecs, INSTANCE)
                .expect("the metadata double");
        in_vm(
            &vm,
            "cd /opt/cloudcode && docker compose restart idle >/dev/null 2>&1",
        );
        let served = (0..60)
            .find_map(|_| {
                metadata.served_credentials().or_else(|| {
                    std::thread::sleep(Duration::from_secs(1));
                    None
                })
            })
            .unwrap_or_else(|| {
                panic!(
                    "the agent never asked for its role's credentials: {:#?}\n{}",
                    metadata.requests(),
                    agent_log(&vm)
                )
            });
        let untag = (0..30)
            .find_map(|_| {
                ecs.calls_of("UntagResources")
                    .into_iter()
                    .next()
                    .or_else(|| {
                        std::thread::sleep(Duration::from_secs(1));
                        None
                    })
            })
            .unwrap_or_else(|| panic!("no UntagResources at start:\n{}", agent_log(&vm)));
        assert_eq!(untag.outcome, "OK", "{untag:?}");
        assert_eq!(untag.access_key_id, served.access_key_id);
        assert_eq!(untag.params["TagKey.1"], "cloudcode:idle-suspended");

        // 1. Used: signed-in requests through Caddy to OpenCode and ttyd for longer than the limit → no stop.
        let ((), requests) = with_request_loop(&vm.ssh_host, &session, || {
            std::thread::sleep(Duration::from_secs(AFTER_S + 40))
        });
        assert!(requests.total > 10, "{requests:?}");
        assert!(
            ecs.calls_of("StopInstance").is_empty() && ecs.calls_of("TagResources").is_empty(),
            "a box in use was suspended: {:#?}\n{}",
            agent_calls(&ecs),
            agent_log(&vm)
        );
        assert_eq!(ecs.instance_status(INSTANCE).as_deref(), Some("Running"));
        let log = agent_log(&vm);
        assert!(
            log.contains("active: request GET box.cloudcode.test/"),
            "the agent logs the request that keeps the box up:\n{log}"
        );

        // 2. Unused: the agent tags the instance, then stops it in StopCharging mode, with the role's credentials.
        let quiet = Instant::now();
        let deadline = quiet + Duration::from_secs(AFTER_S + 120);
        while ecs.calls_of("StopInstance").is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(5));
        }
        let calls = agent_calls(&ecs);
        let tag = calls
            .iter()
            .position(|c| c.action == "TagResources")
            .unwrap_or_else(|| panic!("no TagResources: {calls:#?}\n{}", agent_log(&vm)));
        let stop = calls
            .iter()
            .position(|c| c.action == "StopInstance")
            .unwrap_or_else(|| panic!("no StopInstance: {calls:#?}\n{}", agent_log(&vm)));
        assert!(tag < stop, "tagged before stopping: {calls:#?}");
        let waited = quiet.elapsed().as_secs();
        assert!(
            // The agent counts from the last request (the loop's end, give or take a request's time).
            waited + 10 >= AFTER_S,
            "stopped {waited} s after the last request, before the {AFTER} limit"
        );
        let (tag, stop) = (&calls[tag], &calls[stop]);
        assert_eq!(tag.outcome, "OK", "{tag:?}");
        assert_eq!(tag.params["ResourceId.1"], INSTANCE);
        assert_eq!(tag.params["Tag.1.Key"], "cloudcode:idle-suspended");
        let at = &tag.params["Tag.1.Value"];
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("the tag's value {at:?} is not RFC 3339: {e}"));
        assert_eq!(stop.outcome, "OK", "{stop:?}");
        assert_eq!(stop.params["InstanceId"], INSTANCE);
        assert_eq!(stop.params["StoppedMode"], "StopCharging");
        for c in [tag, stop] {
            assert_eq!(
                c.access_key_id,
                metadata.served_credentials().unwrap().access_key_id,
                "signed with the role's STS key: {c:?}"
            );
        }
        let view = ecs
            .instances()
            .into_iter()
            .find(|i| i.instance_id == INSTANCE)
            .unwrap();
        assert_eq!(view.tags.get("cloudcode:idle-suspended"), Some(at));
        assert_eq!(view.stopped_mode, "StopCharging");
        let log = agent_log(&vm);
        assert!(
            log.contains("(StopInstance, StopCharging)") && log.contains("StopInstance accepted"),
            "the agent logs its decision:\n{log}"
        );
        assert!(
            !log.contains(&served.access_key_secret) && !log.contains(&served.security_token),
            "the role's credentials are never logged"
        );

        // 3. Not fought. The machine stops (here: its sshd, so SSH gets no answer); the stack's read records it
        //    as not running instead of failing, so the configuration the module writes while the instance is
        //    stopped with the tag (host_running = false) plans no change — and one that asks for a running host
        //    plans the apply that connects again (the refused case).
        vm.exec_in_vm_ok("systemctl stop ssh").expect("stop sshd");
        let (code, run) = plan_exit(&wd);
        let text = format!("{}{}", run.stdout, run.stderr);
        assert_eq!(code, 2, "a configuration asking for a running host: {text}");
        assert!(
            text.contains("host_running") && text.contains("The host did not answer"),
            "{text}"
        );
        write_main(
            &wd,
            &hcl.replacen(
                "  timeouts = {",
                "  host_running = false\n  timeouts = {",
                1,
            ),
        );
        let (code, run) = plan_exit(&wd);
        assert_eq!(code, 0, "{}{}", run.stdout, run.stderr);
    });
}
