//! The official alicloud provider (the real 1.240.0 binary) against the API double for the module's public address
//! and names: `alicloud_eip_address` + `alicloud_eip_association` (VPC API) and `data "alicloud_alidns_domains"` +
//! `alicloud_alidns_record` (Alidns API), written as `modules/cloudcode/main.tf` writes them. Each scenario applies,
//! checks the double's state, plans again (empty), destroys in dependency order, and has its refused case beside
//! it: an instance that does not exist, a domain the account does not have.

use cloudcode_tests::alicloud_double_fixture::{
    apply, assert_applied, assert_failed_with, destroy, trust, workdir, AK, REGION, SK,
};
use cloudcode_tests::ecs_double::{DnsRecordView, EcsDouble, InstanceSeed};
use cloudcode_tests::engine;
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::plan_exit;
use cloudcode_tests::terraform::Workdir;

const INSTANCE: &str = "i-bp1eipdnsbox0001";
/// The address the double hands out as the EIP (a test VM's address, in the module's scenarios).
const EIP_IP: &str = "198.51.100.7";
const ZONE: &str = "example.com";

/// The module's EIP and its association with `instance`.
fn eip(instance: &str) -> String {
    format!(
        r#"
resource "alicloud_eip_address" "this" {{
  address_name         = "box-eip"
  description          = "cloudcode box"
  payment_type         = "PayAsYouGo"
  internet_charge_type = "PayByTraffic"
  bandwidth            = "5"
  tags                 = {{ "cloudcode:stack" = "box" }}
}}

resource "alicloud_eip_association" "this" {{
  allocation_id = alicloud_eip_address.this.id
  instance_id   = "{instance}"
  instance_type = "EcsInstance"
}}
"#
    )
}

/// The module's two A records (the site and `auth.`) in the account's domain that holds `box.example.com`,
/// found through the data source, pointing at the EIP.
const RECORDS: &str = r#"
data "alicloud_alidns_domains" "this" {}

locals {
  domain  = "box.example.com"
  zone    = one([for d in data.alicloud_alidns_domains.this.names : d if local.domain == d || endswith(local.domain, ".${d}")])
  site_rr = trimsuffix(local.domain, ".${local.zone}")
}

resource "alicloud_alidns_record" "this" {
  for_each = { site = local.site_rr, auth = "auth.${local.site_rr}" }

  domain_name = local.zone
  rr          = each.value
  type        = "A"
  value       = alicloud_eip_address.this.ip_address
  ttl         = 900
  remark      = "cloudcode box"
}
"#;

/// A double with the key pair, the instance and `EIP_IP` as the next EIP.
fn double() -> EcsDouble {
    let double = EcsDouble::start_https().unwrap();
    double.add_access_key(AK, SK);
    double.add_instance(InstanceSeed::running(INSTANCE, REGION));
    double.set_eip_addresses(vec![EIP_IP.to_string()]);
    double
}

/// Where the first call of `action` is in the double's log.
fn first(double: &EcsDouble, action: &str) -> usize {
    double
        .calls()
        .iter()
        .position(|c| c.action == action)
        .unwrap_or_else(|| panic!("no {action} call"))
}

/// Every call the double saw so far was accepted.
fn assert_all_accepted(double: &EcsDouble) {
    let refused: Vec<_> = double
        .calls()
        .into_iter()
        .filter(|c| c.outcome != "OK")
        .collect();
    assert!(refused.is_empty(), "refused calls: {refused:#?}");
}

/// A second plan is empty: nothing the double answers differs from the configuration.
fn assert_second_plan_empty(wd: &Workdir) {
    let (code, plan) = plan_exit(wd);
    assert_eq!(
        code, 0,
        "second plan not empty:\n{}{}",
        plan.stdout, plan.stderr
    );
}

#[test]
fn an_eip_from_the_pool_is_associated_with_the_instance_and_released_only_after_unassociation() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        let (_certs, ca) = trust(&double);

        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &eip(INSTANCE));
        assert_applied(&apply(&wd), &double);
        let eips = double.eips();
        assert_eq!(eips.len(), 1, "{eips:?}");
        let id = eips[0].allocation_id.clone();
        assert_eq!(eips[0].ip, EIP_IP);
        assert_eq!(eips[0].instance_id.as_deref(), Some(INSTANCE));
        assert_eq!(
            eips[0].tags.get("cloudcode:stack").map(String::as_str),
            Some("box")
        );
        assert_eq!(
            double.eip_of_instance(INSTANCE),
            Some((id.clone(), EIP_IP.to_string()))
        );
        // What the resource asked for, in the API's words.
        let allocate = &double.calls_of("AllocateEipAddress")[0].params;
        for (param, value) in [
            ("Name", "box-eip"),
            ("Description", "cloudcode box"),
            ("Bandwidth", "5"),
            ("InternetChargeType", "PayByTraffic"),
            ("InstanceChargeType", "PostPaid"),
        ] {
            assert_eq!(
                allocate.get(param).map(String::as_str),
                Some(value),
                "{param}"
            );
        }
        let associate = &double.calls_of("AssociateEipAddress")[0].params;
        assert_eq!(
            associate.get("InstanceType").map(String::as_str),
            Some("EcsInstance")
        );
        assert_eq!(
            double.calls_of("TagResources")[0]
                .params
                .get("ResourceType")
                .map(String::as_str),
            Some("EIP")
        );
        let state = wd.state_text();
        assert!(
            state.contains(&format!("\"id\": \"{id}:{INSTANCE}\"")),
            "the association's id is allocation:instance: {state}"
        );
        assert_all_accepted(&double);
        assert_second_plan_empty(&wd);

        assert_applied(&destroy(&wd), &double);
        assert!(double.eips().is_empty(), "{:?}", double.eips());
        assert_eq!(double.eip_of_instance(INSTANCE), None);
        assert_eq!(double.calls_of("UnassociateEipAddress").len(), 1);
        assert_eq!(double.calls_of("ReleaseEipAddress").len(), 1);
        assert!(
            first(&double, "UnassociateEipAddress") < first(&double, "ReleaseEipAddress"),
            "released before unassociated: {:#?}",
            double.calls()
        );
        assert_all_accepted(&double);

        // Refused beside: an instance that does not exist is the API's error, in the provider's words; the EIP
        // allocated before it stays unassociated, and destroy releases it.
        let bad = workdir(
            e,
            provider_bin!(),
            &double,
            SK,
            &ca,
            &eip("i-bp1doesnotexist00"),
        );
        assert_failed_with(&apply(&bad), "InvalidInstanceId.NotFound");
        let eips = double.eips();
        assert_eq!(eips.len(), 1, "{eips:?}");
        assert_eq!(eips[0].instance_id, None);
        assert_applied(&destroy(&bad), &double);
        assert!(double.eips().is_empty(), "{:?}", double.eips());
    });
}

#[test]
fn two_a_records_in_the_account_domain_point_at_the_eip_and_go_before_it_is_released() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        double.add_dns_domain(ZONE);
        double.add_dns_domain("other.test");
        let (_certs, ca) = trust(&double);

        let body = format!("{}{RECORDS}", eip(INSTANCE));
        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &body);
        assert_applied(&apply(&wd), &double);
        let mut records = double.dns_records();
        records.sort_by(|a, b| a.rr.cmp(&b.rr));
        let record = |rr: &str| DnsRecordView {
            domain: ZONE.into(),
            rr: rr.into(),
            kind: "A".into(),
            value: EIP_IP.into(),
            ttl: 900,
            remark: "cloudcode box".into(),
        };
        assert_eq!(records, vec![record("auth.box"), record("box")]);
        assert_eq!(
            double
                .eip_of_instance(INSTANCE)
                .map(|(_, ip)| ip)
                .as_deref(),
            Some(EIP_IP)
        );
        // The data source listed the account's domains; each record was added, enabled and remarked.
        assert_eq!(double.calls_of("DescribeDomains").len(), 1);
        assert_eq!(double.calls_of("AddDomainRecord").len(), 2);
        assert_eq!(double.calls_of("SetDomainRecordStatus").len(), 2);
        assert_eq!(double.calls_of("UpdateDomainRecordRemark").len(), 2);
        assert_all_accepted(&double);
        assert_second_plan_empty(&wd);

        assert_applied(&destroy(&wd), &double);
        assert!(
            double.dns_records().is_empty(),
            "{:?}",
            double.dns_records()
        );
        assert!(double.eips().is_empty(), "{:?}", double.eips());
        let calls = double.calls();
        let release = first(&double, "ReleaseEipAddress");
        let deletes: Vec<usize> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.action == "DeleteDomainRecord")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(deletes.len(), 2, "{calls:#?}");
        assert!(
            deletes.iter().all(|d| *d < release)
                && first(&double, "UnassociateEipAddress") < release,
            "the EIP was released before its records and association went: {calls:#?}"
        );
        assert_all_accepted(&double);

        // Refused beside: a record in a domain the account does not have is the API's error; nothing is added.
        let elsewhere = r#"
resource "alicloud_alidns_record" "elsewhere" {
  domain_name = "not-mine.example"
  rr          = "box"
  type        = "A"
  value       = "198.51.100.9"
  ttl         = 600
}
"#;
        let bad = workdir(e, provider_bin!(), &double, SK, &ca, elsewhere);
        assert_failed_with(&apply(&bad), "IncorrectDomainUser");
        assert!(double.dns_records().is_empty());
    });
}
