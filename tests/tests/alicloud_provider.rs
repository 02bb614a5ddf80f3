//! The official alicloud provider (the real 1.240.0 binary) against the Alibaba Cloud API contract double: the
//! transport the cloud path depends on — HTTPS with a test CA trusted through `SSL_CERT_FILE`, the `endpoints`
//! override, no configure-time calls with `skip_region_validation` and `account_type`, the classic RPC
//! signature verified on every request, and the double's answers decoded by the provider. Each accepted case
//! has its refused one beside it (wrong secret, untrusted certificate).

use cloudcode_tests::alicloud_double_fixture::{
    apply, assert_applied, assert_failed_with, destroy, trust, workdir, AK, REGION, SK,
};
use cloudcode_tests::ecs_double::{EcsDouble, InstanceSeed};
use cloudcode_tests::engine;
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::plan_exit;

/// A throwaway public key (the double checks its format and computes the MD5 fingerprint the API reports).
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh3CQc2YxY6CNDR3oE5ZYqGCbOyq8O7t2fYt3cEclAw cloudcode-test";
const INSTANCE: &str = "i-bp1realprovider01"; // also in READ_INSTANCE

const READ_INSTANCE: &str = r#"
data "alicloud_instances" "box" {
  ids = ["i-bp1realprovider01"]
}

output "box" {
  value = {
    id     = data.alicloud_instances.box.instances[0].id
    status = data.alicloud_instances.box.instances[0].status
    disk   = data.alicloud_instances.box.instances[0].disk_device_mappings[0].size
  }
}
"#;

#[test]
fn the_real_provider_reads_an_instance_over_https_with_a_verified_rpc_signature() {
    engine::each(&engine::matrix(), |e| {
        let double = EcsDouble::start_https().unwrap();
        double.add_access_key(AK, SK);
        double.add_instance(InstanceSeed::running(INSTANCE, REGION));
        let (certs, ca) = trust(&double);

        let wd = workdir(e, provider_bin!(), &double, SK, &ca, READ_INSTANCE);
        assert_applied(&apply(&wd), &double);
        let out = wd.tf(&["output", "-json", "box"]).unwrap();
        let out: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(out["id"], INSTANCE);
        assert_eq!(out["status"], "Running");
        assert_eq!(out["disk"], 40);
        let calls = double.calls();
        assert!(!calls.is_empty());
        assert!(
            calls.iter().all(|c| c.outcome == "OK"
                && c.params.get("SignatureMethod").map(String::as_str) == Some("HMAC-SHA1")),
            "every call RPC-signed and accepted: {calls:#?}"
        );
        assert!(
            calls.iter().any(|c| c.action == "DescribeInstances"),
            "{calls:#?}"
        );

        // Refused beside: a wrong secret is answered SignatureDoesNotMatch, and the provider says so.
        let wrong = workdir(
            e,
            provider_bin!(),
            &double,
            "not-the-secret",
            &ca,
            READ_INSTANCE,
        );
        let run = apply(&wrong);
        assert_failed_with(&run, "SignatureDoesNotMatch");
        assert!(
            !format!("{}{}", run.stdout, run.stderr).contains("not-the-secret"),
            "the secret in the output"
        );

        // And a certificate it does not trust is refused before any request reaches the double.
        let before = double.calls().len();
        let other = certs.path().join("other.pem");
        std::fs::write(&other, EcsDouble::start_https().unwrap().ca_pem().unwrap()).unwrap();
        let untrusted = workdir(e, provider_bin!(), &double, SK, &other, READ_INSTANCE);
        assert_failed_with(&apply(&untrusted), "certificate");
        assert_eq!(
            double.calls().len(),
            before,
            "a request went through an untrusted TLS connection"
        );
    });
}

fn vpc(cidr: &str) -> String {
    format!(
        r#"
resource "alicloud_vpc" "box" {{
  vpc_name   = "cloudcode"
  cidr_block = "{cidr}"
}}

resource "alicloud_vswitch" "box" {{
  vpc_id       = alicloud_vpc.box.id
  vswitch_name = "cloudcode"
  cidr_block   = "172.16.0.0/24"
  zone_id      = "{REGION}-i"
}}

resource "alicloud_security_group" "box" {{
  security_group_name = "cloudcode-sg"
  vpc_id              = alicloud_vpc.box.id
  description         = "cloudcode"
  tags                = {{ "cloudcode:stack" = "box" }}
}}

resource "alicloud_ecs_key_pair" "box" {{
  key_pair_name = "cloudcode-key"
  public_key    = "{PUBLIC_KEY}"
  tags          = {{ "cloudcode:stack" = "box" }}
}}

resource "alicloud_security_group_rule" "public" {{
  for_each          = toset(["80", "443"])
  security_group_id = alicloud_security_group.box.id
  type              = "ingress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "${{each.value}}/${{each.value}}"
  priority          = 1
  cidr_ip           = "0.0.0.0/0"
  description       = "port ${{each.value}}"
}}
"#
    )
}

#[test]
fn the_real_provider_creates_reads_and_destroys_the_network_and_the_second_plan_is_empty() {
    engine::each(&engine::matrix(), |e| {
        let double = EcsDouble::start_https().unwrap();
        double.add_access_key(AK, SK);
        let (_certs, ca) = trust(&double);

        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &vpc("172.16.0.0/12"));
        assert_applied(&apply(&wd), &double);
        let ids = double.vpc_ids();
        assert_eq!(ids.len(), 1);
        assert_eq!(double.vswitch_ids().len(), 1);
        assert_eq!(
            double.key_pairs(),
            vec![("cloudcode-key".to_string(), PUBLIC_KEY.to_string())]
        );
        let groups = double.security_groups();
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].1, 2, "two rules authorized: {groups:?}");
        // Created Pending, waited for Available; the state holds what the API answered.
        let state = wd.state_text();
        assert!(
            state.contains(&ids[0]) && state.contains("\"status\": \"Available\""),
            "{state}"
        );
        assert!(
            double.calls_of("DescribeVpcAttribute").len() >= 2,
            "the provider waited for Available"
        );
        // A second plan is empty: nothing the double answers differs from the configuration.
        let (code, plan) = plan_exit(&wd);
        assert_eq!(
            code, 0,
            "second plan not empty:\n{}{}",
            plan.stdout, plan.stderr
        );
        assert_applied(&destroy(&wd), &double);
        assert!(double.vpc_ids().is_empty() && double.vswitch_ids().is_empty());
        assert!(double.security_groups().is_empty() && double.key_pairs().is_empty());
        assert_eq!(double.calls_of("RevokeSecurityGroup").len(), 2);
        assert_eq!(double.calls_of("CreateVpc").len(), 1);
        assert_eq!(double.calls_of("DeleteVSwitch").len(), 1);
        assert_eq!(double.calls_of("DeleteVpc").len(), 1);
        // The delete wait ended on the documented not-found answer.
        assert_eq!(
            double
                .calls_of("DescribeVpcAttribute")
                .last()
                .map(|c| c.outcome.as_str()),
            Some("InvalidVpcId.NotFound")
        );

        // Refused beside: a block outside the private ranges is the API's error, in the provider's words.
        let bad = workdir(e, provider_bin!(), &double, SK, &ca, &vpc("8.8.0.0/16"));
        assert_failed_with(&apply(&bad), "InvalidCidrBlock.Malformed");
        assert!(double.vpc_ids().is_empty());
    });
}
