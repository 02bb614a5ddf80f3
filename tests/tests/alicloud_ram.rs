//! The official alicloud provider (the real 1.240.0 binary) against the API double for an instance RAM role, written
//! as a module would for idle suspend: `alicloud_ram_role` trusting `ecs.aliyuncs.com`, `alicloud_ram_policy`
//! allowing `ecs:StopInstance`, `ecs:TagResources` and `ecs:UntagResources` on one instance's ARN,
//! `alicloud_ram_role_policy_attachment`, and the role attached to the instance. In 1.240.0 `alicloud_instance`'s
//! `role_name` is ForceNew (sent only with RunInstances), so an existing box takes its role through
//! `alicloud_ram_role_attachment` (AttachInstanceRamRole), which the instance then reads back (`role_name` is
//! computed) without a change. Each scenario applies, checks the double's state, plans again (empty) and destroys
//! in dependency order; refused beside: a policy document that is JSON but not a RAM policy, a role that does not
//! exist, and the replacement `role_name` would plan.

use cloudcode_alicloud::{ClientConfig, Credentials, EcsClient, RetryPolicy};
use cloudcode_tests::alicloud_double_fixture::{
    apply, assert_applied, assert_failed_with, destroy, trust, workdir, AK, REGION, SK,
};
use cloudcode_tests::ecs_double::{
    EcsDouble, InstanceSeed, RecordedCall, RoleCredentials, ACCOUNT_ID,
};
use cloudcode_tests::engine;
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::plan_exit;
use cloudcode_tests::terraform::Workdir;

const INSTANCE: &str = "i-bp1ramroleboxa01";
const OTHER: &str = "i-bp1ramroleother1";
const ROLE: &str = "box-idle";
const POLICY: &str = "box-idle-stop";

/// The role an instance can take (its trust names the ECS service, as a list: the provider reads
/// `Principal.Service` into a list of strings).
const ROLE_HCL: &str = r#"
resource "alicloud_ram_role" "idle" {
  name        = "box-idle"
  description = "cloudcode box: idle suspend"
  force       = true
  document = jsonencode({
    Version = "1"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = ["ecs.aliyuncs.com"] }
    }]
  })
}
"#;

/// The policy (allowing what idle suspend does on `instance` only, with `version` as the document's version) and
/// its attachment to the role.
fn policy(instance: &str, version: &str) -> String {
    format!(
        r#"
resource "alicloud_ram_policy" "idle" {{
  policy_name = "box-idle-stop"
  description = "cloudcode box: stop and tag itself"
  force       = true
  policy_document = jsonencode({{
    Version = "{version}"
    Statement = [{{
      Effect   = "Allow"
      Action   = ["ecs:StopInstance", "ecs:TagResources", "ecs:UntagResources"]
      Resource = ["acs:ecs:{REGION}:{ACCOUNT_ID}:instance/{instance}"]
    }}]
  }})
}}

resource "alicloud_ram_role_policy_attachment" "idle" {{
  policy_name = alicloud_ram_policy.idle.policy_name
  policy_type = "Custom"
  role_name   = alicloud_ram_role.idle.name
}}
"#
    )
}

/// The role attached to `instance` (AttachInstanceRamRole).
fn role_attachment(role: &str, instance: &str) -> String {
    format!(
        r#"
resource "alicloud_ram_role_attachment" "idle" {{
  role_name    = {role}
  instance_ids = ["{instance}"]
}}
"#
    )
}

/// A double with the key pair and two running instances.
fn double() -> EcsDouble {
    let double = EcsDouble::start_https().unwrap();
    double.add_access_key(AK, SK);
    double.add_instance(InstanceSeed::running(INSTANCE, REGION));
    double.add_instance(InstanceSeed::running(OTHER, REGION));
    double
}

/// Where the first call of `action` is in the double's log.
fn first(calls: &[RecordedCall], action: &str) -> usize {
    calls
        .iter()
        .position(|c| c.action == action)
        .unwrap_or_else(|| panic!("no {action} call: {calls:#?}"))
}

/// Where the last call of `action` is in the double's log.
fn last(calls: &[RecordedCall], action: &str) -> usize {
    calls
        .iter()
        .rposition(|c| c.action == action)
        .unwrap_or_else(|| panic!("no {action} call: {calls:#?}"))
}

/// Every call the provider made (signed with the account's key) was accepted but the reads that find a deleted
/// role gone (how the provider waits for a delete).
fn assert_accepted_but_gone_reads(double: &EcsDouble) {
    let refused: Vec<RecordedCall> = double
        .calls()
        .into_iter()
        .filter(|c| c.access_key_id == AK && c.outcome != "OK")
        .filter(|c| !(c.action == "GetRole" && c.outcome == "EntityNotExist.Role"))
        .collect();
    assert!(refused.is_empty(), "refused calls: {refused:#?}");
}

fn assert_second_plan_empty(wd: &Workdir) {
    let (code, plan) = plan_exit(wd);
    assert_eq!(
        code, 0,
        "second plan not empty:\n{}{}",
        plan.stdout, plan.stderr
    );
}

/// The outcome (`OK` or the error code) of one ECS call signed with the role's STS credentials (the client trusts
/// the double's CA through `SSL_CERT_FILE`, which only the one test that calls this sets in this process).
fn as_role(
    double: &EcsDouble,
    creds: &RoleCredentials,
    action: &str,
    params: &[(&str, &str)],
) -> String {
    let credentials = Credentials::new(&creds.access_key_id, &creds.access_key_secret)
        .with_security_token(&creds.security_token);
    let mut config = ClientConfig::new(REGION, credentials);
    config.endpoint = Some(double.base_url());
    config.retry = RetryPolicy::fast(1);
    let client = EcsClient::new(config).unwrap();
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.call::<serde_json::Value>(action, &params))
        .map(|_| "OK".to_string())
        .unwrap_or_else(|e| e.code().unwrap_or("transport").to_string())
}

#[test]
fn a_role_with_a_policy_on_one_instance_is_attached_to_it_and_destroyed_in_order() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        let (_certs, ca) = trust(&double);
        let body = format!(
            "{ROLE_HCL}{}{}",
            policy(INSTANCE, "1"),
            role_attachment("alicloud_ram_role.idle.name", INSTANCE)
        );
        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &body);
        assert_applied(&apply(&wd), &double);

        // The account's RAM as the configuration says.
        let roles = double.ram_roles();
        assert_eq!(roles.len(), 1, "{roles:?}");
        assert_eq!(roles[0].name, ROLE);
        assert_eq!(roles[0].description, "cloudcode box: idle suspend");
        assert_eq!(roles[0].arn, format!("acs:ram::{ACCOUNT_ID}:role/{ROLE}"));
        let trust_policy: serde_json::Value = serde_json::from_str(&roles[0].trust_policy).unwrap();
        assert_eq!(
            trust_policy["Statement"][0]["Principal"]["Service"][0],
            "ecs.aliyuncs.com"
        );
        assert_eq!(
            roles[0].policies,
            [("Custom".to_string(), POLICY.to_string())]
        );
        let policies = double.ram_policies();
        assert_eq!(policies.len(), 1, "{policies:?}");
        assert_eq!(
            (
                policies[0].name.as_str(),
                policies[0].default_version.as_str()
            ),
            (POLICY, "v1")
        );
        let document: serde_json::Value = serde_json::from_str(&policies[0].document).unwrap();
        assert_eq!(
            document["Statement"][0]["Resource"][0],
            format!("acs:ecs:{REGION}:{ACCOUNT_ID}:instance/{INSTANCE}")
        );
        let role_of = |id: &str| {
            double
                .instances()
                .into_iter()
                .find(|i| i.instance_id == id)
                .map(|i| i.ram_role_name)
                .unwrap_or_default()
        };
        assert_eq!(role_of(INSTANCE), ROLE);
        assert_eq!(role_of(OTHER), "");
        // What the provider asked, in the API's words, signed with the account's key.
        let create = &double.calls_of("CreateRole")[0];
        assert_eq!(
            create.params.get("MaxSessionDuration").map(String::as_str),
            Some("3600")
        );
        assert_eq!(
            (create.access_key_id.as_str(), create.security_token),
            (AK, false)
        );
        let attach = &double.calls_of("AttachPolicyToRole")[0].params;
        assert_eq!(attach.get("PolicyType").map(String::as_str), Some("Custom"));
        let attach_role = &double.calls_of("AttachInstanceRamRole")[0].params;
        assert_eq!(
            attach_role.get("InstanceIds").map(String::as_str),
            Some(format!("[\"{INSTANCE}\"]").as_str())
        );
        let calls = double.calls();
        // The attachment checks the role trusts ECS (GetRole) before AttachInstanceRamRole.
        assert!(first(&calls, "GetRole") < first(&calls, "AttachInstanceRamRole"));
        assert_accepted_but_gone_reads(&double);

        // The credentials the instance gets do what the policy says, on this instance only.
        std::env::set_var("SSL_CERT_FILE", &ca);
        let creds = double.issue_role_credentials(ROLE);
        let stop = |id| {
            as_role(
                &double,
                &creds,
                "StopInstance",
                &[("InstanceId", id), ("StoppedMode", "StopCharging")],
            )
        };
        assert_eq!(stop(OTHER), "Forbidden.RAM");
        assert_eq!(stop(INSTANCE), "OK");
        assert_eq!(
            as_role(
                &double,
                &creds,
                "DeleteInstance",
                &[("InstanceId", INSTANCE), ("Force", "true")]
            ),
            "Forbidden.RAM"
        );
        let stops = double.calls_of("StopInstance");
        assert!(stops
            .iter()
            .all(|c| c.access_key_id == creds.access_key_id && c.security_token));

        assert_second_plan_empty(&wd);

        assert_applied(&destroy(&wd), &double);
        assert!(double.ram_roles().is_empty(), "{:?}", double.ram_roles());
        assert!(
            double.ram_policies().is_empty(),
            "{:?}",
            double.ram_policies()
        );
        assert_eq!(role_of(INSTANCE), "");
        let calls = double.calls();
        let (delete_role, delete_policy) =
            (last(&calls, "DeleteRole"), last(&calls, "DeletePolicy"));
        assert!(
            last(&calls, "DetachInstanceRamRole") < delete_role,
            "{calls:#?}"
        );
        assert!(
            last(&calls, "DetachPolicyFromRole") < delete_role.min(delete_policy),
            "{calls:#?}"
        );
        assert_accepted_but_gone_reads(&double);
    });
}

#[test]
fn a_document_that_is_no_ram_policy_and_a_role_that_does_not_exist_are_refused() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        let (_certs, ca) = trust(&double);

        // Valid JSON (the provider's own check) with the AWS policy version: RAM refuses it.
        let aws_version = format!("{ROLE_HCL}{}", policy(INSTANCE, "2012-10-17"));
        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &aws_version);
        assert_failed_with(&apply(&wd), "MalformedPolicyDocument");
        assert!(
            double.ram_policies().is_empty(),
            "{:?}",
            double.ram_policies()
        );
        assert_eq!(
            double.outcomes_of("CreatePolicy"),
            ["MalformedPolicyDocument"]
        );
        assert_applied(&destroy(&wd), &double);
        assert!(double.ram_roles().is_empty());

        // A role the account does not have: the attachment's trust check (GetRole) finds none, nothing is attached.
        let missing = role_attachment("\"box-missing\"", INSTANCE);
        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &missing);
        assert_failed_with(&apply(&wd), "EntityNotExist.Role");
        assert!(double.calls_of("AttachInstanceRamRole").is_empty());
        assert!(double
            .instances()
            .iter()
            .all(|i| i.ram_role_name.is_empty()));
    });
}

/// A VPC instance as the module writes one (the catalogue's Ubuntu 24.04 image, a zone with stock), with `extra`
/// arguments.
fn instance(extra: &str) -> String {
    format!(
        r#"
resource "alicloud_vpc" "box" {{
  vpc_name   = "box-vpc"
  cidr_block = "10.42.0.0/16"
}}

resource "alicloud_vswitch" "box" {{
  vswitch_name = "box-vsw"
  vpc_id       = alicloud_vpc.box.id
  cidr_block   = "10.42.1.0/24"
  zone_id      = "cn-hangzhou-h"
}}

resource "alicloud_security_group" "box" {{
  security_group_name = "box-sg"
  vpc_id              = alicloud_vpc.box.id
}}

resource "alicloud_instance" "box" {{
  instance_name        = "box"
  instance_type        = "ecs.e-c1m2.large"
  image_id             = "ubuntu_24_04_x64_20G_alibase_20250901.vhd"
  vswitch_id           = alicloud_vswitch.box.id
  security_groups      = [alicloud_security_group.box.id]
  system_disk_category = "cloud_essd"
  system_disk_size     = 40
  instance_charge_type = "PostPaid"
  stopped_mode         = "Not-applicable"
{extra}
}}
"#
    )
}

#[test]
fn an_existing_box_takes_its_role_through_an_attachment_as_role_name_would_replace_it() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        let (_certs, ca) = trust(&double);
        let wd = workdir(
            e,
            provider_bin!(),
            &double,
            SK,
            &ca,
            &format!("{ROLE_HCL}{}", instance("")),
        );
        assert_applied(&apply(&wd), &double);
        let created = double.calls_of("RunInstances");
        assert_eq!(created.len(), 1);
        assert!(!created[0].params.contains_key("RamRoleName"));

        // role_name on the instance: ForceNew, so the plan replaces the box.
        wd.write(
            "main.tf",
            &cloudcode_tests::alicloud_double_fixture::config(
                &double,
                &format!(
                    "{ROLE_HCL}{}",
                    instance("  role_name = alicloud_ram_role.idle.name")
                ),
            ),
        )
        .unwrap();
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 2, "{}{}", plan.stdout, plan.stderr);
        assert!(
            plan.stdout.contains("forces replacement") && plan.stdout.contains("role_name"),
            "{}",
            plan.stdout
        );

        // The attachment instead: AttachInstanceRamRole; the instance reads its role back and nothing changes.
        wd.write(
            "main.tf",
            &cloudcode_tests::alicloud_double_fixture::config(
                &double,
                &format!(
                    "{ROLE_HCL}{}{}",
                    instance(""),
                    role_attachment("alicloud_ram_role.idle.name", "${alicloud_instance.box.id}")
                ),
            ),
        )
        .unwrap();
        assert_applied(&apply(&wd), &double);
        let boxes: Vec<_> = double
            .instances()
            .into_iter()
            .filter(|i| i.name == "box")
            .collect();
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        assert_eq!(boxes[0].ram_role_name, ROLE);
        assert_eq!(
            double.calls_of("RunInstances").len(),
            1,
            "the box was not replaced"
        );
        assert_second_plan_empty(&wd);
        let state = wd.state_text();
        assert!(state.contains("\"role_name\": \"box-idle\""), "{state}");

        assert_applied(&destroy(&wd), &double);
        assert!(double.ram_roles().is_empty());
        assert!(double.instances().iter().all(|i| i.name != "box"));
        let calls = double.calls();
        assert!(
            last(&calls, "DetachInstanceRamRole") < last(&calls, "DeleteInstance"),
            "{calls:#?}"
        );
    });
}
