//! The cloud path with the real alicloud provider: the repository's examples planned, applied and destroyed
//! against the Alibaba Cloud API double, `cloudcode_stack` deploying onto the test VM that stands in for the
//! instance. Every claim about replacement is read from the engine's own plan, so each can fail.

use cloudcode_tests::cloud_fixture::{CloudBox, Plan, REGION};
use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{container_ids, in_vm};
use cloudcode_tests::vm;

const BASIC_VARS: &str = r#"
ssh_allowed_cidrs = ["203.0.113.7/32"]
admin_email       = "admin@example.com"
llm_provider      = "anthropic"
"#;

const INSTANCE: &str = "module.cloudcode.alicloud_instance.this";

/// Nothing is created, replaced or deleted: only in-place updates (or nothing at all).
fn assert_updates_only(plan: &Plan, what: &str) {
    for (address, actions) in plan.changes() {
        assert_eq!(
            actions,
            ["update"],
            "{what}: {address} is planned {actions:?}, only in-place updates are allowed"
        );
    }
}

fn assert_no_changes(cloud: &CloudBox, vars: &[(&str, &str)], what: &str) {
    let changes = cloud.plan(vars).changes();
    assert!(
        changes.is_empty(),
        "{what}: the plan is not empty: {changes:?}"
    );
}

/// SSH to the box as root with `key`; true when it logs in.
fn ssh_with(vm: &cloudcode_tests::vm::TestVm, key: &std::path::Path) -> bool {
    std::process::Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "ConnectTimeout=10", "-i"])
        .arg(key)
        .args([
            "-p",
            &vm.ssh_port.to_string(),
            &format!("root@{}", vm.ssh_host),
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn basic_example_applies_suspends_resumes_rotates_its_key_and_restores_a_larger_disk_with_no_replacement(
) {
    engine::once(&engine::scenario(Kind::Terraform), |e| {
        let vm = vm::shared().expect("test VM");
        let original_keys =
            std::fs::read_to_string(vm.root_authorized_keys()).expect("authorized_keys");
        let cloud = CloudBox::new(e, provider_bin!(), &vm, "alicloud-basic", BASIC_VARS);

        // Create: the network, the instance from the newest Ubuntu 24.04 x86_64 image, the EIP (the VM's
        // address) bound to it, the key pair bound with a restart, and the stack deployed over SSH.
        cloud.apply(&[]);
        let instances = cloud.double.instances();
        assert_eq!(instances.len(), 1, "{instances:?}");
        let box1 = &instances[0];
        assert_eq!(box1.status, "Running");
        assert_eq!(box1.image_id, "ubuntu_24_04_x64_20G_alibase_20250901.vhd");
        assert_eq!(box1.system_disk_size_gib, 60);
        assert_eq!(
            cloud.double.key_pairs()[0].0,
            box1.key_pair_name,
            "the module's key pair is bound"
        );
        let eips = cloud.double.eips();
        assert_eq!(eips.len(), 1, "{eips:?}");
        assert_eq!(eips[0].ip, vm.ssh_host, "the EIP is the VM's address");
        assert_eq!(
            eips[0].instance_id.as_ref(),
            Some(&box1.instance_id),
            "bound to the instance"
        );
        let reboots = cloud.double.calls_of("RebootInstance");
        assert_eq!(reboots.len(), 1, "the key pair is bound with one restart");
        let services = container_ids(&vm);
        assert!(
            ["caddy", "authelia", "devbox"]
                .iter()
                .all(|s| services.contains_key(*s)),
            "the stack runs on the box: {services:?}"
        );

        // The second plan is empty (stopped_mode reads "Not-applicable" while running).
        assert_no_changes(&cloud, &[], "right after the first apply");

        // A newer Ubuntu image is published: the module's image lookup finds it, and the instance ignores it (the
        // provider would otherwise run ReplaceSystemDisk, wiping the disk).
        cloud
            .double
            .publish_system_image("ubuntu_24_04_x64_20G_alibase_20261201.vhd");
        assert_no_changes(&cloud, &[], "after a newer image is published");
        assert!(cloud.double.calls_of("ReplaceSystemDisk").is_empty());

        // Suspend: in-place updates only, the instance stopped in StopCharging mode; then nothing to do.
        let suspend = [("running", "false")];
        let plan = cloud.plan(&suspend);
        assert_updates_only(&plan, "suspend");
        assert_eq!(plan.after(INSTANCE)["status"], "Stopped");
        assert_eq!(plan.after(INSTANCE)["stopped_mode"], "StopCharging");
        cloud.apply(&suspend);
        let now = &cloud.double.instances()[0];
        assert_eq!(
            (now.status.as_str(), now.stopped_mode.as_str()),
            ("Stopped", "StopCharging")
        );
        let stops = cloud.double.calls_of("StopInstance");
        assert_eq!(stops.len(), 1);
        assert_eq!(
            stops[0].params.get("StoppedMode").map(String::as_str),
            Some("StopCharging")
        );
        assert_no_changes(&cloud, &suspend, "while suspended");

        // Resume: in-place again, the same instance running; then nothing to do.
        let plan = cloud.plan(&[]);
        assert_updates_only(&plan, "resume");
        cloud.apply(&[]);
        let now = &cloud.double.instances()[0];
        assert_eq!(
            (now.instance_id.as_str(), now.status.as_str()),
            (box1.instance_id.as_str(), "Running")
        );
        assert_no_changes(&cloud, &[], "after resume");

        // Idle suspend on: the role, its policy (this instance only) and the role on the instance are created and
        // the agent runs on the box; the instance stays (its own role_name would be ForceNew). Off again: they go,
        // the instance still stays.
        let idle_override = format!("{}/idle_override.tf", cloud.dir);
        cloud
            .wd
            .write(
                &idle_override,
                "module \"cloudcode\" {\n  idle_suspend_after = \"2h\"\n}\n",
            )
            .expect("idle override");
        let plan = cloud.plan(&[]);
        let mut changes = plan.changes();
        changes.sort();
        assert_eq!(
            changes,
            [
                (
                    "module.cloudcode.alicloud_ram_policy.idle[0]".to_string(),
                    vec!["create".to_string()]
                ),
                (
                    "module.cloudcode.alicloud_ram_role.idle[0]".to_string(),
                    vec!["create".to_string()]
                ),
                (
                    "module.cloudcode.alicloud_ram_role_attachment.idle[0]".to_string(),
                    vec!["create".to_string()]
                ),
                (
                    "module.cloudcode.alicloud_ram_role_policy_attachment.idle[0]".to_string(),
                    vec!["create".to_string()]
                ),
                (
                    "module.cloudcode.cloudcode_stack.this".to_string(),
                    vec!["update".to_string()]
                ),
            ],
            "idle suspend on"
        );
        cloud.apply(&[]);
        let now = &cloud.double.instances()[0];
        assert_eq!(now.instance_id, box1.instance_id);
        assert_eq!(now.ram_role_name, "cloudcode-cloudcode-idle");
        let roles = cloud.double.ram_roles();
        assert_eq!(roles.len(), 1, "{roles:?}");
        let policies = cloud.double.ram_policies();
        assert_eq!(policies.len(), 1, "{policies:?}");
        let doc: serde_json::Value = serde_json::from_str(&policies[0].document).unwrap();
        assert_eq!(
            doc["Statement"][0]["Resource"][0],
            format!("acs:ecs:*:*:instance/{}", box1.instance_id)
        );
        assert!(
            container_ids(&vm).contains_key("idle"),
            "the agent runs on the box"
        );
        assert_no_changes(&cloud, &[], "with idle suspend on");

        // The box suspends itself (stack_idle_suspend shows its agent doing so on the test VM; here the double plays
        // it): tagged with the time, stopped in StopCharging mode, SSH gone. The next plan does not fight it; then
        // running = true resumes it, and a running box with the tag still on (its agent clears it as it starts) is
        // left running.
        let id = box1.instance_id.as_str();
        cloud
            .double
            .ecs_call(
                "TagResources",
                &[
                    ("RegionId", REGION),
                    ("ResourceType", "instance"),
                    ("ResourceId.1", id),
                    ("Tag.1.Key", "cloudcode:idle-suspended"),
                    ("Tag.1.Value", "2026-12-04T10:00:00Z"),
                ],
            )
            .expect("the agent's tag");
        cloud
            .double
            .ecs_call(
                "StopInstance",
                &[("InstanceId", id), ("StoppedMode", "StopCharging")],
            )
            .expect("the agent's stop");
        // Stopping settles after DescribeInstances polls, as the platform's does.
        let ids = format!("[\"{id}\"]");
        for _ in 0..5 {
            if cloud.double.instance_status(id).as_deref() == Some("Stopped") {
                break;
            }
            let _ = cloud.double.ecs_call(
                "DescribeInstances",
                &[("RegionId", REGION), ("InstanceIds", ids.as_str())],
            );
        }
        assert_eq!(cloud.double.instance_status(id).as_deref(), Some("Stopped"));
        vm.exec_in_vm_ok("systemctl stop ssh").expect("stop sshd");
        let plan = cloud.plan(&[]);
        let changes = plan.changes();
        vm.exec_in_vm_ok("systemctl start ssh").expect("start sshd");
        assert!(
            changes.is_empty(),
            "after an idle suspend the plan is not empty: {changes:?}"
        );
        let plan = cloud.plan(&[("running", "true")]);
        assert_updates_only(&plan, "resume after an idle suspend");
        assert_eq!(plan.after(INSTANCE)["status"], "Running");
        cloud.apply(&[("running", "true")]);
        assert_eq!(cloud.double.instance_status(id).as_deref(), Some("Running"));
        assert_no_changes(&cloud, &[], "running again, the tag not cleared yet");
        std::fs::remove_file(cloud.wd.path().join(&idle_override)).expect("idle override");
        let plan = cloud.plan(&[]);
        assert!(
            plan.deletions().iter().all(|a| a.contains(".idle[0]")),
            "idle suspend off deletes only its own resources: {:?}",
            plan.deletions()
        );
        cloud.apply(&[]);
        let now = &cloud.double.instances()[0];
        assert_eq!(
            (now.instance_id.as_str(), now.ram_role_name.as_str()),
            (box1.instance_id.as_str(), "")
        );
        assert!(cloud.double.ram_roles().is_empty() && cloud.double.ram_policies().is_empty());
        assert!(
            !container_ids(&vm).contains_key("idle"),
            "the agent is gone"
        );
        assert_no_changes(&cloud, &[], "with idle suspend off again");

        // A new SSH key reaches the box: the key pair is replaced and bound again with a restart; the new key
        // logs in, the old one no longer does; the instance, its disk and the EIP stay.
        let old_key = cloud.key_path.with_extension("old");
        std::fs::copy(&cloud.key_path, &old_key).expect("old key");
        assert!(ssh_with(&vm, &old_key), "the first key logs in");
        let (new_key, new_public) = cloud.new_ssh_key("rotated_key");
        std::fs::copy(&new_key, &cloud.key_path).expect("new key");
        std::fs::write(
            cloud.key_path.with_extension("pub"),
            format!("{new_public}\n"),
        )
        .expect("new pub");
        let plan = cloud.plan(&[]);
        let replaced: Vec<String> = plan.deletions();
        assert_eq!(
            replaced,
            [
                "module.cloudcode.alicloud_ecs_key_pair.this",
                "module.cloudcode.alicloud_ecs_key_pair_attachment.this",
            ],
            "only the key pair and its binding are replaced"
        );
        cloud.apply(&[]);
        assert!(ssh_with(&vm, &new_key), "the new key logs in");
        assert!(!ssh_with(&vm, &old_key), "the old key is refused");
        let pairs = cloud.double.key_pairs();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].1, new_public);
        assert_eq!(cloud.double.instances()[0].instance_id, box1.instance_id);
        assert_no_changes(&cloud, &[], "after the key change");

        // Renaming or moving the box is refused at plan, in one sentence naming the field; so is a new instance
        // type while running (the provider would send StopInstance stopped_mode "Not-applicable").
        for (args, sentence) in [
            (
                "  name = \"renamed\"",
                "name cannot change on an existing box (it is \"cloudcode\")",
            ),
            (
                "  zone_id = \"ap-southeast-1c\"",
                "zone_id cannot change on an existing box",
            ),
            (
                "  instance_type = \"ecs.g7.large\"",
                "instance_type can change only with running = false",
            ),
        ] {
            let refused = cloud.refused_with_module_args(args);
            assert!(refused.contains(sentence), "{args}: {refused}");
        }

        // Grow the disk in place (ResizeDisk), then destroy: one snapshot kept, nothing else left.
        cloud
            .wd
            .write(
                &format!("{}/disk_override.tf", cloud.dir),
                "module \"cloudcode\" {\n  system_disk_size = 80\n}\n",
            )
            .unwrap();
        let plan = cloud.plan(&[]);
        assert_updates_only(&plan, "growing the disk");
        cloud.apply(&[]);
        assert_eq!(cloud.double.instances()[0].system_disk_size_gib, 80);
        std::fs::remove_file(cloud.wd.path().join(&cloud.dir).join("disk_override.tf")).unwrap();
        // Back at the default 60 GiB the disk is not shrunk: nothing to do.
        assert_no_changes(&cloud, &[], "system_disk_size back below the disk's size");

        cloud.destroy(&[]);
        assert!(cloud.double.instances().is_empty(), "the instance is gone");
        assert!(cloud.double.eips().is_empty(), "the EIP is released");
        assert!(cloud.double.vpc_ids().is_empty() && cloud.double.vswitch_ids().is_empty());
        assert!(cloud.double.security_groups().is_empty() && cloud.double.key_pairs().is_empty());
        let snapshots = cloud.double.snapshots();
        assert_eq!(snapshots.len(), 1, "one snapshot kept: {snapshots:?}");
        assert_eq!(
            snapshots[0].tag("cloudcode:stack"),
            Some("cloudcode"),
            "{snapshots:?}"
        );

        // Deploy again: the instance boots from an image of that 80 GiB snapshot, with an 80 GiB disk although
        // system_disk_size is 60; the second plan is empty. (The new EIP is the VM's address again.)
        cloud.double.set_eip_addresses(vec![vm.ssh_host.clone()]);
        cloud.apply(&[]);
        let instances = cloud.double.instances();
        assert_eq!(instances.len(), 1);
        let images = cloud.double.image_ids();
        assert_eq!(images.len(), 1, "{images:?}");
        assert_eq!(
            instances[0].image_id, images[0],
            "restored from the snapshot's image"
        );
        assert_eq!(instances[0].system_disk_size_gib, 80);
        let run = cloud.double.calls_of("RunInstances");
        assert_eq!(
            run.last()
                .and_then(|c| c.params.get("SystemDisk.Size"))
                .map(String::as_str),
            Some("80")
        );
        assert_no_changes(&cloud, &[], "after the restore");

        // A newer snapshot of the stack (a backup taken meanwhile): the restore image is replaced by one made from
        // it — not merely renamed — and the running instance keeps its disk.
        let restored = &instances[0];
        cloud.double.set_snapshot_polls(1);
        let newer = cloud
            .double
            .snapshot_disk(&restored.system_disk_id, &snapshots[0].tags)
            .expect("snapshot");
        let plan = cloud.plan(&[]);
        let image = "module.cloudcode.alicloud_image.restore[0]";
        let replaced: Vec<(String, Vec<String>)> = plan
            .changes()
            .into_iter()
            .filter(|(a, _)| a == image)
            .collect();
        assert_eq!(replaced.len(), 1, "{:?}", plan.changes());
        assert!(
            replaced[0].1.contains(&"delete".to_string())
                && replaced[0].1.contains(&"create".to_string()),
            "{replaced:?}"
        );
        assert_eq!(
            plan.after(image)["disk_device_mapping"][0]["snapshot_id"],
            newer.as_str()
        );
        assert!(
            !plan.deletions().contains(&INSTANCE.to_string()),
            "{:?}",
            plan.changes()
        );

        cloud.destroy(&[]);
        std::fs::write(vm.root_authorized_keys(), original_keys).expect("restore the VM's keys");
        let _ = in_vm(&vm, "true");
    });
}

/// What the Go tool created (design v2.7 §5.1.4), made with the real provider: its names, a zone that is not
/// the module's first choice, the key pair bound at creation, the EIP (the VM's address) associated.
const GO_TOOL_WORLD: &str = r#"
variable "public_key" { type = string }

resource "alicloud_vpc" "go" {
  vpc_name   = "cloudcode-vpc"
  cidr_block = "192.168.0.0/16"
}

resource "alicloud_vswitch" "go" {
  vswitch_name = "cloudcode-vswitch"
  vpc_id       = alicloud_vpc.go.id
  cidr_block   = "192.168.1.0/24"
  zone_id      = "ap-southeast-1b"
}

resource "alicloud_security_group" "go" {
  security_group_name = "cloudcode-sg"
  vpc_id              = alicloud_vpc.go.id
}

resource "alicloud_ecs_key_pair" "go" {
  key_pair_name = "cloudcode-ssh-key"
  public_key    = var.public_key
}

resource "alicloud_instance" "go" {
  instance_name              = "cloudcode"
  instance_type              = "ecs.e-c1m2.large"
  image_id                   = "ubuntu_24_04_x64_20G_alibase_20250301.vhd"
  vswitch_id                 = alicloud_vswitch.go.id
  security_groups            = [alicloud_security_group.go.id]
  key_name                   = alicloud_ecs_key_pair.go.key_pair_name
  system_disk_category       = "cloud_essd"
  system_disk_size           = 60
  instance_charge_type       = "PostPaid"
  internet_max_bandwidth_out = 0
}

resource "alicloud_eip_address" "go" {
  address_name         = "cloudcode-eip"
  payment_type         = "PayAsYouGo"
  internet_charge_type = "PayByTraffic"
  bandwidth            = "100"
}

resource "alicloud_eip_association" "go" {
  allocation_id = alicloud_eip_address.go.id
  instance_id   = alicloud_instance.go.id
  instance_type = "EcsInstance"
}

output "state_json" {
  value = jsonencode({
    version    = "1.0"
    created_at = "2026-02-14T10:30:00Z"
    region     = "ap-southeast-1"
    os_image   = "ubuntu_24_04_x64"
    resources = {
      vpc            = { id = alicloud_vpc.go.id, cidr = "192.168.0.0/16" }
      vswitch        = { id = alicloud_vswitch.go.id, zone = alicloud_vswitch.go.zone_id }
      security_group = { id = alicloud_security_group.go.id }
      ecs = {
        id = alicloud_instance.go.id, instance_type = "ecs.e-c1m2.large", system_disk_size = 60,
        public_ip = alicloud_eip_address.go.ip_address, private_ip = alicloud_instance.go.private_ip
      }
      eip          = { id = alicloud_eip_address.go.id, ip = alicloud_eip_address.go.ip_address }
      ssh_key_pair = { name = alicloud_ecs_key_pair.go.key_pair_name, private_key_path = ".cloudcode/ssh_key" }
    }
    cloudcode = { username = "admin", domain = "" }
    status    = "running"
  })
}
"#;

/// Calls that change or remove something in the cloud.
fn destructive(action: &str) -> bool {
    [
        "Delete",
        "Release",
        "Unassociate",
        "Stop",
        "Detach",
        "Revoke",
        "Untag",
        "UnTag",
    ]
    .iter()
    .any(|p| action.starts_with(p))
}

#[test]
fn import_legacy_adopts_a_go_tool_deployment_with_no_replacement_and_destroy_dry_run_deletes_nothing(
) {
    use cloudcode_tests::cloud_fixture::{ACCESS_KEY, SECRET_KEY};
    use cloudcode_tests::ecs_double::EcsDouble;
    use cloudcode_tests::stack_fixture::{API_KEY, PASSWORD};
    use cloudcode_tests::terraform::Workdir;
    const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");

    engine::once(&engine::scenario(Kind::Tofu), |e| {
        // A VM of its own, so that this scenario runs beside the one on the shared VM.
        let vm = vm::TestVm::start(vm::VmOptions::default()).expect("test VM");
        let double = EcsDouble::start_https().expect("double");
        double.add_access_key(ACCESS_KEY, SECRET_KEY);
        double.set_eip_addresses(vec![vm.ssh_host.clone()]);
        let authorized_keys = vm.root_authorized_keys();
        double.on_key_pair_boot(move |_, key| {
            let _ = std::fs::write(&authorized_keys, format!("{key}\n"));
        });
        let home = tempfile::tempdir().unwrap();
        let dot = home.path().join(".cloudcode");
        std::fs::create_dir_all(&dot).unwrap();
        let keygen = std::process::Command::new("ssh-keygen")
            .args([
                "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "go-tool", "-f",
            ])
            .arg(dot.join("ssh_key"))
            .status()
            .unwrap();
        assert!(keygen.success());
        let public_key = std::fs::read_to_string(dot.join("ssh_key.pub")).unwrap();
        let ca = home.path().join("ca.pem");
        std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();
        let providers = cloudcode_tests::alicloud_double_fixture::provider(
            &double,
            None,
            Some("ap-southeast-1"),
        );

        // The Go tool's deployment, and its state file.
        let mut go = Workdir::with_alicloud(e, provider_bin!()).unwrap();
        go.write("main.tf", &format!("terraform {{\n  required_providers {{\n    alicloud = {{ source = \"aliyun/alicloud\" }}\n  }}\n}}\n{providers}{GO_TOOL_WORLD}")).unwrap();
        for (k, v) in [
            ("ALICLOUD_ACCESS_KEY", ACCESS_KEY),
            ("ALICLOUD_SECRET_KEY", SECRET_KEY),
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ("TF_VAR_public_key", public_key.trim()),
        ] {
            go.set_env(k, v);
        }
        go.init().unwrap();
        let run = go.tf(&["apply", "-auto-approve", "-no-color"]).unwrap();
        assert!(
            run.success,
            "the Go tool's world: {}{}",
            run.stdout, run.stderr
        );
        let state: serde_json::Value = serde_json::from_str(
            go.outputs().unwrap()["state_json"]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        std::fs::write(dot.join("state.json"), state.to_string()).unwrap();
        let go_instance = state["resources"]["ecs"]["id"]
            .as_str()
            .unwrap()
            .to_string();

        // The CLI runs the engine offline with the harness's mirror.
        let mirror = Workdir::with_alicloud(e, provider_bin!()).unwrap();
        let wd_cli_config = mirror.path().join("terraformrc");

        // import-legacy writes the stack with the Go tool's zone, key pair name and disk size.
        let stacks = home.path().join("stacks");
        let providers_dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            provider_bin!(),
            providers_dir.path().join("terraform-provider-cloudcode"),
        )
        .unwrap();
        let cli = |args: &[&str]| {
            std::process::Command::new(CLI)
                .args(args)
                .env("HOME", home.path())
                .env("CLOUDCODE_HOME", &stacks)
                .env("CLOUDCODE_PROVIDER_DIR", providers_dir.path())
                .env("CLOUDCODE_TF_BIN", &e.bin)
                // Offline: the harness's mirror (our provider and the alicloud build) instead of the registry.
                .env("CLOUDCODE_TF_CLI_CONFIG", wd_cli_config.as_os_str())
                .env("LANG", "C.UTF-8")
                .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY)
                .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET_KEY)
                .env("SSL_CERT_FILE", &ca)
                .env("CLOUDCODE_ADMIN_PASSWORD", PASSWORD)
                .env("CLOUDCODE_LLM_API_KEY", API_KEY)
                .output()
                .unwrap()
        };
        let out = cli(&[
            "--name",
            "legacy",
            "import-legacy",
            "--admin-email",
            "me@example.com",
            "--ssh-cidr",
            "203.0.113.7/32",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stack = stacks.join("legacy");
        let vars: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(stack.join("terraform.tfvars.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(vars["stack"]["zone_id"], "ap-southeast-1b");
        assert_eq!(vars["stack"]["key_pair_name"], "cloudcode-ssh-key");
        assert_eq!(vars["stack"]["system_disk_size"], 60);

        // The generated root against the same double (endpoints and the VM's images as override files).
        let (root_override, module_override) =
            cloudcode_tests::cloud_fixture::overrides(&double, &vm, None);
        std::fs::write(stack.join("double_override.tf"), root_override).unwrap();
        std::fs::write(
            stack.join("modules/cloudcode/test_vm_override.tf"),
            module_override,
        )
        .unwrap();
        let mut wd = Workdir::with_alicloud(e, provider_bin!()).unwrap();
        for (k, v) in [
            ("ALICLOUD_ACCESS_KEY", ACCESS_KEY),
            ("ALICLOUD_SECRET_KEY", SECRET_KEY),
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ("TF_VAR_admin_password", PASSWORD),
            ("TF_VAR_llm_api_key", API_KEY),
            ("HOME", home.path().to_str().unwrap()),
        ] {
            wd.set_env(k, v);
        }
        let in_stack = |args: &[&str]| {
            let out = wd.command(args).current_dir(&stack).output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        let (ok, text) = in_stack(&["init", "-no-color", "-input=false"]);
        assert!(ok, "{text}");
        let (ok, text) = in_stack(&["plan", "-no-color", "-input=false", "-out=adopt.tfplan"]);
        assert!(ok, "{text}");
        let (ok, shown) = in_stack(&["show", "-json", "adopt.tfplan"]);
        assert!(ok, "{shown}");
        let plan = Plan(
            serde_json::from_str(shown.lines().find(|l| l.starts_with('{')).unwrap()).unwrap(),
        );
        let why: Vec<String> = plan
            .deletions()
            .iter()
            .map(|a| format!("{a}: {}", plan.why_replaced(a)))
            .collect();
        assert!(
            plan.deletions().is_empty(),
            "nothing replaced or deleted: {why:#?}"
        );
        let resource_changes = plan.0["resource_changes"].as_array().unwrap().clone();
        for address in [
            "module.cloudcode.alicloud_vpc.this",
            "module.cloudcode.alicloud_vswitch.this",
            "module.cloudcode.alicloud_security_group.this",
            "module.cloudcode.alicloud_ecs_key_pair.this",
            "module.cloudcode.alicloud_instance.this",
            "module.cloudcode.alicloud_eip_address.this[0]",
            "module.cloudcode.alicloud_eip_association.this",
        ] {
            let rc = resource_changes
                .iter()
                .find(|rc| rc["address"] == address)
                .unwrap_or_else(|| panic!("{address} not in the plan"));
            assert!(
                rc["change"]["importing"].is_object(),
                "{address} is imported: {rc}"
            );
            assert!(
                rc["change"]["actions"] == serde_json::json!(["no-op"])
                    || rc["change"]["actions"] == serde_json::json!(["update"]),
                "{address} is adopted in place: {}",
                rc["change"]["actions"]
            );
        }
        assert_eq!(
            plan.after("module.cloudcode.alicloud_vswitch.this")["zone_id"],
            "ap-southeast-1b"
        );
        assert_eq!(
            plan.after("module.cloudcode.alicloud_ecs_key_pair.this")["key_pair_name"],
            "cloudcode-ssh-key"
        );
        assert_eq!(plan.after(INSTANCE)["system_disk_size"], 60);

        // Adopt it (the stack deploys onto the VM), then nothing is left to do.
        let (ok, text) = in_stack(&["apply", "-no-color", "-input=false", "adopt.tfplan"]);
        assert!(ok, "{text}");
        assert_eq!(double.instances().len(), 1);
        assert_eq!(
            double.instances()[0].instance_id,
            go_instance,
            "the Go tool's instance, adopted"
        );
        let (ok, text) = in_stack(&["plan", "-no-color", "-input=false", "-detailed-exitcode"]);
        assert!(ok, "the second plan is empty:\n{text}");

        // destroy --dry-run lists what would go and touches nothing.
        let seen = double.calls().len();
        let out = cli(&["--name", "legacy", "destroy", "--dry-run"]);
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{text}");
        for listed in [
            "  - alicloud_instance.this",
            "  - alicloud_eip_address.this[0]",
            "  - alicloud_vpc.this",
            "  - cloudcode_stack.this",
        ] {
            assert!(text.contains(listed), "{listed} in:\n{text}");
        }
        let after: Vec<String> = double.calls()[seen..]
            .iter()
            .map(|c| c.action.clone())
            .collect();
        assert!(!after.is_empty(), "the dry run read the cloud");
        assert!(
            after.iter().all(|a| !destructive(a)),
            "the dry run changed nothing: {after:?}"
        );
        assert_eq!(double.instances().len(), 1);

        // The real destroy keeps one snapshot and removes everything else.
        let out = cli(&["--name", "legacy", "destroy", "--force"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            double.instances().is_empty()
                && double.eips().is_empty()
                && double.vpc_ids().is_empty()
        );
        assert_eq!(double.snapshots().len(), 1, "{:?}", double.snapshots());
        vm.shutdown().expect("VM shut down");
    });
}

#[test]
fn throttled_reads_are_retried_and_a_sold_out_region_is_refused_at_plan_in_one_sentence() {
    use cloudcode_tests::ecs_double::Fault;
    engine::once(&engine::scenario(Kind::Tofu), |e| {
        // A VM of its own (only its images are needed), so that this runs beside the scenario on the shared VM.
        let vm = vm::TestVm::start(vm::VmOptions::default()).expect("test VM");
        let cloud = CloudBox::new(e, provider_bin!(), &vm, "alicloud-basic", BASIC_VARS);

        // Flow control on the reads a plan makes: the provider retries, the plan goes through.
        // (DescribeZones is not among them: the provider's zones data source fails on the first throttled
        // answer, with the API's code in its message.)
        for action in [
            "DescribeImages",
            "DescribeAvailableResource",
            "DescribeSnapshots",
        ] {
            cloud.double.inject(action, Fault::throttling(), 2);
        }
        let plan = cloud.plan(&[]);
        assert!(
            plan.changes().iter().any(|(a, _)| a == INSTANCE),
            "{:?}",
            plan.changes()
        );
        for action in [
            "DescribeImages",
            "DescribeAvailableResource",
            "DescribeSnapshots",
        ] {
            let outcomes = cloud.double.outcomes_of(action);
            assert_eq!(
                outcomes
                    .iter()
                    .filter(|o| o.as_str() == "Throttling.User")
                    .count(),
                2,
                "{action}: {outcomes:?}"
            );
            assert_eq!(
                outcomes.last().map(String::as_str),
                Some("OK"),
                "{action}: {outcomes:?}"
            );
        }

        // No zone of the region has the instance type in stock: one sentence at plan, nothing created.
        for zone in ["ap-southeast-1a", "ap-southeast-1b"] {
            cloud.double.set_zone_stock(zone, "ecs.e-c1m2.large", false);
        }
        let refused = cloud.refused_plan(&[]);
        assert!(
            refused.contains("No zone in this region offers ecs.e-c1m2.large with cloud_essd disks for pay-as-you-go instances: choose another instance_type or region, or set zone_id."),
            "{refused}"
        );
        assert!(cloud
            .double
            .calls()
            .iter()
            .all(|c| !c.action.starts_with("Create") && c.action != "RunInstances"));
        drop(cloud);
        vm.shutdown().expect("VM shut down");
    });
}

#[test]
fn custom_domain_example_points_both_names_at_the_eip_and_serves_the_login_through_them() {
    use cloudcode_tests::stack_fixture::{curl, DOMAIN};
    engine::once(&engine::scenario(Kind::Tofu), |e| {
        // A VM of its own, so that this scenario runs beside the one on the shared VM.
        let vm = vm::TestVm::start(vm::VmOptions::default()).expect("test VM");
        let tfvars = format!("{BASIC_VARS}domain = \"{DOMAIN}\"\n");
        let cloud = CloudBox::new(e, provider_bin!(), &vm, "custom-domain", &tfvars);
        // Flow control on the writes of the first apply: each is retried and the apply goes through.
        let throttled = [
            "CreateVpc",
            "RunInstances",
            "AllocateEipAddress",
            "AddDomainRecord",
        ];
        for action in throttled {
            cloud
                .double
                .inject(action, cloudcode_tests::ecs_double::Fault::throttling(), 1);
        }
        cloud.apply(&[]);
        for action in throttled {
            let outcomes = cloud.double.outcomes_of(action);
            assert_eq!(
                outcomes.first().map(String::as_str),
                Some("Throttling.User"),
                "{action}: {outcomes:?}"
            );
            assert!(
                outcomes.iter().any(|o| o == "OK"),
                "{action} retried: {outcomes:?}"
            );
        }

        // Both names in the account's DNS domain, pointing at the EIP (the VM's address).
        let mut records: Vec<(String, String, String)> = cloud
            .double
            .dns_records()
            .into_iter()
            .map(|r| (r.rr, r.kind, r.value))
            .collect();
        records.sort();
        let ip = vm.ssh_host.clone();
        assert_eq!(
            records,
            [
                ("auth.box".to_string(), "A".to_string(), ip.clone()),
                ("box".to_string(), "A".to_string(), ip.clone()),
            ]
        );
        // 80, 443 and the alternative HTTPS port open to everyone, SSH to the given address.
        let groups = cloud.double.security_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].1, 4, "{groups:?}");
        // The site answers on the name: an unsigned visitor is sent to the login on auth.<domain>.
        let (status, head, _) = curl(&vm, "/", None);
        assert_eq!(status, 302, "{head}");
        assert!(head.contains(&format!("https://auth.{DOMAIN}/")), "{head}");

        assert_no_changes(&cloud, &[], "right after the first apply");
        cloud.destroy(&[]);
        assert!(
            cloud.double.dns_records().is_empty(),
            "the records are deleted"
        );
        assert!(cloud.double.eips().is_empty() && cloud.double.instances().is_empty());
        vm.shutdown().expect("VM shut down");
    });
}
