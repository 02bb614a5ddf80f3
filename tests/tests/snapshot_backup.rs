//! `cloudcode_snapshot_backup` and the `cloudcode_snapshot` data source through real Terraform, against the
//! Alibaba Cloud ECS contract double reached through `endpoints { ecs = ... }`: the destroy → snapshot → prune
//! cycle, the newest snapshot for the next deploy, retried transient errors, image-held snapshots, failures
//! that stop a destroy, StopProvider, wrong credentials, plan-time validation, and no secret in state or logs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloudcode_alicloud::{
    ClientConfig, Credentials, DestroySnapshotRequest, Ecs, EcsClient, Lifecycle, PollConfig,
    RetryPolicy, TAG_STACK, TAG_VERSION,
};
use cloudcode_tests::ecs_double::{EcsDouble, Fault, InstanceSeed};
use cloudcode_tests::engine::{self, Engine};
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{required_providers, Run, Workdir, VERSION};
use serde_json::Value as Json;

const REGION: &str = "cn-hangzhou";
const AK: &str = "LTAI5tAcceptanceKey";
const SK: &str = "acceptance-secret-Zq8xP4kVw2";
const INSTANCE: &str = "i-bp1cloudcodeaccept1";

/// A double that knows our AccessKey and one running instance.
fn double() -> EcsDouble {
    let d = EcsDouble::start().expect("start the ECS double");
    d.add_access_key(AK, SK);
    d.add_instance(InstanceSeed::running(INSTANCE, REGION));
    d
}

/// The provider block pointing at the double; `secret` is the AccessKey secret written into it.
fn provider_block(d: &EcsDouble, secret: &str) -> String {
    format!(
        "provider \"cloudcode\" {{\n  region     = \"{REGION}\"\n  access_key = \"{AK}\"\n  secret_key = \"{secret}\"\n  endpoints {{\n    ecs = \"{}\"\n  }}\n}}\n",
        d.base_url()
    )
}

/// A provider block with only the endpoint: credentials and region come from the environment.
fn provider_block_env(d: &EcsDouble) -> String {
    format!(
        "provider \"cloudcode\" {{\n  endpoints {{\n    ecs = \"{}\"\n  }}\n}}\n",
        d.base_url()
    )
}

fn backup(extra: &str) -> String {
    format!(
        "resource \"cloudcode_snapshot_backup\" \"box\" {{\n  instance_id = \"{INSTANCE}\"\n  stack_name  = \"dev\"\n{extra}}}\n"
    )
}

/// An initialised working directory on `e` with fast ECS polling and retries (the documented overrides).
fn workdir(e: &Engine, hcl: &str) -> Workdir {
    let mut wd = Workdir::new_on(e, provider_bin!(), hcl).unwrap();
    wd.set_env("CLOUDCODE_ECS_POLL_INTERVAL", "5ms");
    wd.set_env("CLOUDCODE_ECS_RETRY_DELAY", "5ms");
    wd.init().unwrap();
    wd
}

/// Replaces main.tf (keeping the provider requirements).
fn rewrite(wd: &Workdir, hcl: &str) {
    wd.write("main.tf", &format!("{}\n{hcl}", required_providers()))
        .unwrap();
}

fn destroy(wd: &Workdir) -> Run {
    wd.tf(&["destroy", "-auto-approve", "-json", "-input=false"])
        .unwrap()
}

fn diags_of(run: &Run, severity: &str) -> Vec<Json> {
    run.diagnostics()
        .into_iter()
        .filter(|d| d["severity"] == severity)
        .collect()
}

fn client(d: &EcsDouble) -> EcsClient {
    EcsClient::new(ClientConfig {
        endpoint: Some(d.base_url()),
        retry: RetryPolicy::fast(3),
        ..ClientConfig::new(REGION, Credentials::new(AK, SK))
    })
    .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Starts the instance again after a destroy stopped it (what the next deploy's instance would be).
fn start_instance(d: &EcsDouble) {
    let ecs = client(d);
    block_on(async {
        ecs.start_instance(INSTANCE).await.unwrap();
        for _ in 0..20 {
            if ecs
                .describe_instance(INSTANCE)
                .await
                .unwrap()
                .unwrap()
                .status
                == "Running"
            {
                return;
            }
        }
        panic!("instance did not come back");
    });
}

fn accomplished_ids(d: &EcsDouble) -> Vec<String> {
    d.snapshots()
        .into_iter()
        .filter(|s| s.status == "accomplished")
        .map(|s| s.snapshot_id)
        .collect()
}

#[test]
fn apply_destroy_twice_keeps_one_tagged_snapshot_and_the_data_source_finds_the_newest() {
    engine::each(&engine::smoke(), |e| {
        let d = double();
        let mut wd = workdir(e, &format!("{}{}", provider_block(&d, SK), backup("")));
        let apply = wd.apply().unwrap().ok().unwrap();
        assert!(
            diags_of(&apply, "warning").is_empty(),
            "{:?}",
            apply.diagnostics()
        );
        assert!(d.snapshots().is_empty(), "create must not snapshot");
        let state: Json = serde_json::from_str(&wd.state_text()).unwrap();
        assert_eq!(
            state["resources"][0]["instances"][0]["attributes"]["id"], "dev/i-bp1cloudcodeaccept1",
            "{state:#}"
        );

        // A plan (as in a pull-request pipeline) only describes.
        let before = d.calls().len();
        let plan = wd
            .tf(&["plan", "-no-color", "-input=false"])
            .unwrap()
            .ok()
            .unwrap();
        assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
        let during: Vec<String> = d.calls()[before..]
            .iter()
            .map(|c| c.action.clone())
            .collect();
        assert!(!during.is_empty(), "refresh made no API call");
        assert!(
            during.iter().all(|a| a.starts_with("Describe")),
            "{during:?}"
        );

        // Destroy: stop (standard mode), snapshot with tags, progress in the log.
        wd.set_env("TF_LOG", "info");
        let first = destroy(&wd).ok().unwrap();
        assert!(
            first.stderr.contains("snapshot progress"),
            "no progress in the log"
        );
        assert!(first.stderr.contains("snapshot accomplished"));
        let snaps = d.snapshots();
        assert_eq!(snaps.len(), 1, "{snaps:?}");
        assert_eq!(snaps[0].status, "accomplished");
        assert_eq!(snaps[0].tag(TAG_STACK), Some("dev"));
        assert_eq!(snaps[0].tag(TAG_VERSION), Some(VERSION));
        assert_eq!(d.instance_status(INSTANCE).as_deref(), Some("Stopped"));
        let stops = d.calls_of("StopInstance");
        assert_eq!(stops.len(), 1);
        assert_eq!(stops[0].params["StoppedMode"], "KeepCharging");
        let first_id = snaps[0].snapshot_id.clone();

        // Second cycle: still one snapshot, the newer one.
        start_instance(&d);
        wd.apply().unwrap().ok().unwrap();
        destroy(&wd).ok().unwrap();
        let ids = accomplished_ids(&d);
        assert_eq!(ids.len(), 1, "the older snapshot was not pruned: {ids:?}");
        assert_ne!(ids[0], first_id);

        // The next deploy looks it up.
        rewrite(
            &wd,
            &format!(
                "{}data \"cloudcode_snapshot\" \"last\" {{\n  stack_name = \"dev\"\n}}\noutput \"snap\" {{\n  value = data.cloudcode_snapshot.last\n}}\n",
                provider_block(&d, SK)
            ),
        );
        wd.apply().unwrap().ok().unwrap();
        let out = &wd.outputs().unwrap()["snap"]["value"];
        assert_eq!(out["id"], ids[0].as_str());
        assert_eq!(out["size"], 40);
        assert_eq!(out["version"], VERSION);
        assert_eq!(out["compatible"], true);
        assert!(
            out["created_at"]
                .as_str()
                .unwrap_or_default()
                .ends_with('Z'),
            "{out}"
        );
    });
}

#[test]
fn throttling_and_instance_state_errors_are_retried() {
    engine::each(&engine::matrix(), |e| {
        let d = double();
        let wd = workdir(e, &format!("{}{}", provider_block(&d, SK), backup("")));
        wd.apply().unwrap().ok().unwrap();
        d.inject("StopInstance", Fault::incorrect_instance_status(), 2);
        d.inject("CreateSnapshot", Fault::throttling(), 2);
        d.inject("DescribeSnapshots", Fault::service_unavailable(), 1);
        destroy(&wd).ok().unwrap();
        let outcomes = |action: &str| -> Vec<String> {
            d.calls_of(action).into_iter().map(|c| c.outcome).collect()
        };
        assert_eq!(
            outcomes("StopInstance"),
            ["IncorrectInstanceStatus", "IncorrectInstanceStatus", "OK"]
        );
        assert_eq!(
            outcomes("CreateSnapshot"),
            ["Throttling.User", "Throttling.User", "OK"]
        );
        // A retried CreateSnapshot reuses its ClientToken, so it cannot create two snapshots.
        let tokens: Vec<String> = d
            .calls_of("CreateSnapshot")
            .into_iter()
            .map(|c| c.params["ClientToken"].clone())
            .collect();
        assert!(tokens.windows(2).all(|w| w[0] == w[1]), "{tokens:?}");
        assert_eq!(accomplished_ids(&d).len(), 1);
    });
}

#[test]
fn snapshot_held_by_an_image_is_a_warning_and_pruned_once_the_image_is_gone() {
    engine::each(&engine::matrix(), |e| {
        let d = double();
        let wd = workdir(e, &format!("{}{}", provider_block(&d, SK), backup("")));
        wd.apply().unwrap().ok().unwrap();
        destroy(&wd).ok().unwrap();
        let old = accomplished_ids(&d).remove(0);
        // The next deploy restored from it: alicloud_image holds the snapshot.
        let image = d.create_image_from_snapshot(&old).unwrap();

        start_instance(&d);
        wd.apply().unwrap().ok().unwrap();
        let second = destroy(&wd).ok().unwrap();
        let warnings = diags_of(&second, "warning");
        assert!(
            warnings
                .iter()
                .any(|w| w["summary"].as_str().unwrap_or_default().contains(&old)
                    && w["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("SnapshotCreatedImage")),
            "{warnings:#?}"
        );
        assert_eq!(accomplished_ids(&d).len(), 2);

        // The image goes (the restored deploy is replaced); the next apply prunes the old snapshot.
        block_on(client(&d).delete_image(&image)).unwrap();
        start_instance(&d);
        let third = wd.apply().unwrap().ok().unwrap();
        assert!(
            diags_of(&third, "warning").is_empty(),
            "{:?}",
            third.diagnostics()
        );
        let left = accomplished_ids(&d);
        assert_eq!(left.len(), 1);
        assert_ne!(left[0], old);
        assert!(
            wd.state_text().contains(&left[0]),
            "latest_snapshot_id not recorded"
        );
    });
}

#[test]
fn failed_snapshot_stops_the_destroy_and_keeps_the_resource_for_a_retry() {
    engine::each(&engine::matrix(), |e| {
        let d = double();
        let wd = workdir(e, &format!("{}{}", provider_block(&d, SK), backup("")));
        wd.apply().unwrap().ok().unwrap();
        d.inject(
            "CreateSnapshot",
            Fault::custom(
                403,
                "QuotaExceed.Snapshot",
                "The snapshot quota is exceeded.",
            ),
            1,
        );
        let failed = destroy(&wd);
        assert!(!failed.success);
        let errors = diags_of(&failed, "error");
        assert!(
            errors.iter().any(|e| e["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("destroy stopped")
                && e["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("QuotaExceed.Snapshot")
                && e["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("RequestId")),
            "{errors:#?}"
        );
        let list = wd.tf(&["state", "list"]).unwrap().ok().unwrap();
        assert!(
            list.stdout.contains("cloudcode_snapshot_backup.box"),
            "{}",
            list.stdout
        );
        assert!(d.snapshots().is_empty());

        // The retry (the instance is already stopped) completes the destroy with a snapshot.
        destroy(&wd).ok().unwrap();
        assert_eq!(accomplished_ids(&d).len(), 1);
        assert!(wd.tf(&["state", "list"]).unwrap().stdout.trim().is_empty());
    });
}

#[test]
fn snapshot_on_destroy_false_destroys_without_touching_the_instance() {
    engine::each(&engine::matrix(), |e| {
        let d = double();
        let wd = workdir(
            e,
            &format!(
                "{}{}",
                provider_block(&d, SK),
                backup("  snapshot_on_destroy = false\n")
            ),
        );
        wd.apply().unwrap().ok().unwrap();
        destroy(&wd).ok().unwrap();
        assert!(d.snapshots().is_empty());
        assert!(d.calls_of("StopInstance").is_empty());
        assert_eq!(d.instance_status(INSTANCE).as_deref(), Some("Running"));
    });
}

#[test]
fn interrupt_during_the_snapshot_wait_stops_the_provider_promptly() {
    engine::each(&engine::matrix(), |e| {
        let d = double();
        // A snapshot that would take practically forever to complete.
        d.set_snapshot_polls(1_000_000);
        let wd = workdir(e, &format!("{}{}", provider_block(&d, SK), backup("")));
        wd.apply().unwrap().ok().unwrap();
        let mut child = wd
            .command(&["destroy", "-auto-approve", "-no-color", "-input=false"])
            .env("CLOUDCODE_ECS_POLL_INTERVAL", "20ms")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while d.calls_of("CreateSnapshot").is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "destroy never reached the snapshot"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        let polls_before = d.calls_of("DescribeSnapshots").len();
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        // Terraform sends StopProvider; the wait loop must end. Kill it if it hangs so the test reports instead.
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} destroy did not stop after the interrupt", wd.engine());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("cancelled") || stdout.contains("cancelled"),
            "no cancellation reported:\n{stdout}\n{stderr}"
        );
        let polls_after = d.calls_of("DescribeSnapshots").len();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            d.calls_of("DescribeSnapshots").len(),
            polls_after,
            "the provider kept polling after it was stopped"
        );
        assert!(polls_after >= polls_before);
        let list = wd.tf(&["state", "list"]).unwrap().ok().unwrap();
        assert!(
            list.stdout.contains("cloudcode_snapshot_backup.box"),
            "{}",
            list.stdout
        );
    });
}

#[test]
fn wrong_credentials_are_a_clear_error_and_no_secret_reaches_state_or_trace_logs() {
    engine::each(&engine::matrix(), |e| {
        let d = double();
        // Wrong secret in the provider block: the plan's refresh-free create fails with Code and RequestId.
        let wd = workdir(
            e,
            &format!(
                "{}{}",
                provider_block(&d, "not-the-right-secret"),
                backup("")
            ),
        );
        let run = wd.apply().unwrap();
        assert!(!run.success);
        let errors = diags_of(&run, "error");
        let text = serde_json::to_string(&errors).unwrap();
        assert!(text.contains("SignatureDoesNotMatch"), "{text}");
        assert!(text.contains("RequestId"), "{text}");
        assert!(text.contains("access_key and secret_key"), "{text}");
        assert!(!text.contains("not-the-right-secret"), "{text}");

        // Right credentials from the environment (STS), a full cycle under TF_LOG=trace.
        let token = "sts-token-Hq2mV7cX9";
        d.add_sts_access_key("STS.acceptance", "sts-secret-Lp3nB8", token);
        let mut wd = workdir(e, &format!("{}{}", provider_block_env(&d), backup("")));
        wd.set_env("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.acceptance");
        wd.set_env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "sts-secret-Lp3nB8");
        wd.set_env("ALIBABA_CLOUD_SECURITY_TOKEN", token);
        wd.set_env("ALICLOUD_REGION", REGION);
        wd.set_env("TF_LOG", "trace");
        let apply = wd.apply().unwrap().ok().unwrap();
        let plan = wd
            .tf(&["plan", "-no-color", "-input=false"])
            .unwrap()
            .ok()
            .unwrap();
        let state = wd.state_text();
        let gone = destroy(&wd).ok().unwrap();
        assert_eq!(accomplished_ids(&d).len(), 1);
        assert!(
            apply.stderr.contains("[TRACE]")
                && apply.stderr.contains("terraform-provider-cloudcode"),
            "no trace log captured"
        );
        for run in [&apply, &plan, &gone] {
            for secret in ["sts-secret-Lp3nB8", token] {
                assert!(
                    !run.stdout.contains(secret),
                    "{secret} in stdout of {:?}",
                    run.args
                );
                assert!(
                    !run.stderr.contains(secret),
                    "{secret} in the trace log of {:?}",
                    run.args
                );
            }
        }
        for secret in ["sts-secret-Lp3nB8", token, SK] {
            assert!(!state.contains(secret), "{secret} in state");
        }

        // The provider-block secret stays out of state and the trace log too.
        let mut wd = workdir(e, &format!("{}{}", provider_block(&d, SK), backup("")));
        wd.set_env("TF_LOG", "trace");
        let apply = wd.apply().unwrap().ok().unwrap();
        assert!(apply.stderr.contains("[TRACE]"), "no trace log captured");
        assert!(!apply.stderr.contains(SK), "secret_key in the trace log");
        assert!(!apply.stdout.contains(SK));
        assert!(!wd.state_text().contains(SK), "secret_key in state");
    });
}

#[test]
fn data_source_refuses_an_incompatible_major_version_unless_allowed_and_is_null_without_snapshots()
{
    engine::each(&engine::matrix(), |e| {
        let d = double();
        // A snapshot written by a future major version of cloudcode.
        let ecs = client(&d);
        let future = format!("{}.0.0", semver_major(VERSION) + 1);
        block_on(
            Lifecycle::new(&ecs, PollConfig::fast()).snapshot_on_destroy(
                &DestroySnapshotRequest {
                    instance_id: INSTANCE.into(),
                    stack_name: "dev".into(),
                    version: future.clone(),
                    stop_first: true,
                    keep: 1,
                },
                &|_| {},
            ),
        )
        .unwrap();
        let data = |stack: &str, allow: &str| {
            format!(
                "{}data \"cloudcode_snapshot\" \"s\" {{\n  stack_name = \"{stack}\"\n{allow}}}\noutput \"s\" {{\n  value = data.cloudcode_snapshot.s\n}}\n",
                provider_block(&d, SK)
            )
        };
        let wd = workdir(e, &data("dev", ""));
        let run = wd.apply().unwrap();
        assert!(!run.success);
        let errors = serde_json::to_string(&diags_of(&run, "error")).unwrap();
        assert!(
            errors.contains("incompatible") && errors.contains(&future),
            "{errors}"
        );
        assert!(errors.contains("allow_incompatible"), "{errors}");

        rewrite(&wd, &data("dev", "  allow_incompatible = true\n"));
        wd.apply().unwrap().ok().unwrap();
        let out = &wd.outputs().unwrap()["s"]["value"];
        assert_eq!(out["compatible"], false);
        assert_eq!(out["version"], future.as_str());
        assert!(
            out["id"].as_str().unwrap_or_default().starts_with("s-"),
            "{out}"
        );

        // A stack without snapshots: a fresh deploy, not an error.
        rewrite(&wd, &data("other", ""));
        wd.apply().unwrap().ok().unwrap();
        let out = &wd.outputs().unwrap()["s"]["value"];
        assert!(out["id"].is_null(), "{out}");
        assert!(out["compatible"].is_null(), "{out}");
    });
}

fn semver_major(v: &str) -> u64 {
    v.split('.').next().and_then(|m| m.parse().ok()).unwrap()
}

/// Asserts an error diagnostic whose summary names `attr` and whose snippet shows `line`.
fn assert_error_at(run: &Run, attr: &str, line: &str) {
    let diags = run.diagnostics();
    let found = diags.iter().any(|d| {
        d["severity"] == "error"
            && d["summary"].as_str().unwrap_or_default().contains(attr)
            && d["snippet"]["code"]
                .as_str()
                .unwrap_or_default()
                .contains(line)
    });
    assert!(found, "no error naming `{attr}` at `{line}`:\n{diags:#?}");
}

#[test]
fn bad_inputs_get_errors_naming_the_attribute_at_plan_time() {
    engine::each(&engine::matrix(), |e| {
        // Terraform validates the provider block first and stops there, so two configurations.
        let bad_provider = "provider \"cloudcode\" {\n  region = \"Hangzhou\"\n  endpoints {\n    ecs = \"ftp://ecs.example.com\"\n  }\n}\n";
        let wd =
            Workdir::new_on(e, provider_bin!(), &format!("{bad_provider}{}", backup(""))).unwrap();
        wd.init().unwrap();
        let run = wd.validate().unwrap();
        assert!(!run.success);
        assert_error_at(&run, "region", r#"region = "Hangzhou""#);
        assert_error_at(&run, "ecs", r#"ecs = "ftp://ecs.example.com""#);

        rewrite(
            &wd,
            concat!(
                "resource \"cloudcode_snapshot_backup\" \"a\" {\n  instance_id = \"vm-123\"\n  stack_name  = \"dev\"\n}\n",
                "resource \"cloudcode_snapshot_backup\" \"b\" {\n  instance_id = \"i-bp1abc\"\n  stack_name  = \"Dev Box\"\n}\n",
                "resource \"cloudcode_snapshot_backup\" \"c\" {\n  instance_id = \"i-bp1abc\"\n  stack_name  = \"dev\"\n  keep        = 0\n}\n",
                "data \"cloudcode_snapshot\" \"d\" {\n  stack_name = \"no/slash\"\n}\n",
            ),
        );
        let run = wd.validate().unwrap();
        assert!(!run.success);
        assert_error_at(&run, "instance_id", r#"instance_id = "vm-123""#);
        assert_error_at(&run, "stack_name", r#"stack_name  = "Dev Box""#);
        assert_error_at(&run, "keep", "keep        = 0");
        assert_error_at(&run, "stack_name", r#"stack_name = "no/slash""#);
    });
}

#[test]
fn lowering_keep_prunes_on_update_and_records_the_newest_snapshot() {
    engine::each(&engine::matrix(), |e| {
        let d = double();
        let ecs = client(&d);
        let life = Lifecycle::new(&ecs, PollConfig::fast());
        let mut made = Vec::new();
        for _ in 0..2 {
            let out = block_on(life.snapshot_on_destroy(
                &DestroySnapshotRequest {
                    instance_id: INSTANCE.into(),
                    stack_name: "dev".into(),
                    version: VERSION.into(),
                    stop_first: false,
                    keep: 2,
                },
                &|_| {},
            ))
            .unwrap();
            made.push(out.snapshot.snapshot_id);
        }
        let wd = workdir(
            e,
            &format!("{}{}", provider_block(&d, SK), backup("  keep = 2\n")),
        );
        wd.apply().unwrap().ok().unwrap();
        assert_eq!(accomplished_ids(&d).len(), 2, "keep = 2 pruned too much");

        rewrite(
            &wd,
            &format!("{}{}", provider_block(&d, SK), backup("  keep = 1\n")),
        );
        wd.apply().unwrap().ok().unwrap();
        assert_eq!(accomplished_ids(&d), vec![made[1].clone()]);
        let state: Json = serde_json::from_str(&wd.state_text()).unwrap();
        let attrs = &state["resources"][0]["instances"][0]["attributes"];
        assert_eq!(attrs["latest_snapshot_id"], made[1].as_str());
        assert_eq!(attrs["keep"], 1);
    });
}
