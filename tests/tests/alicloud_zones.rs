//! `data "alicloud_zones"` with the module's arguments (`modules/cloudcode/main.tf`), read by the real official
//! alicloud provider (1.240.0) from the API double's zone catalog: exactly the zones that offer the instance type
//! with stock and the disk category, in two regions; a zone whose stock of the type is taken away drops out (and
//! comes back with it); a type no zone offers gives an empty list; an unknown region is refused with the
//! documented error, in the provider's words.

use cloudcode_tests::alicloud_double_fixture::{
    apply, assert_applied, assert_failed_with, provider, trust, workdir, AK, SK,
};
use cloudcode_tests::ecs_double::EcsDouble;
use cloudcode_tests::engine;
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::Workdir;

/// The module's default instance type (`modules/cloudcode/variables.tf`).
const MODULE_TYPE: &str = "ecs.e-c1m2.large";

/// A started HTTPS double that accepts the fixture's key. The fixture's configuration has the default provider
/// in its `REGION` (cn-hangzhou); the scenarios add aliased ones with `provider`.
fn double() -> EcsDouble {
    let double = EcsDouble::start_https().unwrap();
    double.add_access_key(AK, SK);
    double
}

/// `data "alicloud_zones"` as the module writes it, for `instance_type`, named `name`, read through `provider`
/// (e.g. `alicloud.sg`, or `None` for the default), with its ids as output `name`.
fn zones(name: &str, provider: Option<&str>, instance_type: &str) -> String {
    let provider = provider
        .map(|p| format!("provider = {p}"))
        .unwrap_or_default();
    format!(
        r#"
data "alicloud_zones" "{name}" {{
  {provider}
  available_instance_type     = "{instance_type}"
  available_disk_category     = "cloud_essd"
  available_resource_creation = "VSwitch"
  instance_charge_type        = "PostPaid"
}}

output "{name}" {{
  value = data.alicloud_zones.{name}.ids
}}
"#
    )
}

/// The zone ids of output `name`, checked sorted (as the module takes the first).
fn ids(wd: &Workdir, name: &str) -> Vec<String> {
    let out = wd.tf(&["output", "-json", name]).unwrap();
    let ids: Vec<String> = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("output {name}: {e}\n{}{}", out.stdout, out.stderr));
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "zone ids not sorted");
    ids
}

#[test]
fn the_real_provider_finds_exactly_the_zones_that_offer_the_type_with_stock_and_the_disk() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        let (_certs, ca) = trust(&double);
        let body = [
            provider(&double, Some("sg"), Some("ap-southeast-1")),
            zones("hangzhou", None, MODULE_TYPE),
            zones("singapore", Some("alicloud.sg"), MODULE_TYPE),
        ]
        .concat();
        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &body);
        assert_applied(&apply(&wd), &double);
        // cn-hangzhou-j does not offer the type; cn-hangzhou-k has no cloud_essd.
        assert_eq!(ids(&wd, "hangzhou"), ["cn-hangzhou-h", "cn-hangzhou-i"]);
        // ap-southeast-1b is low on stock (ClosedWithStock) but still sells it; 1c does not offer it.
        assert_eq!(
            ids(&wd, "singapore"),
            ["ap-southeast-1a", "ap-southeast-1b"]
        );
        // What the provider asked: available zones for pay-as-you-go, I/O optimized, then the zones themselves.
        let available = double.calls_of("DescribeAvailableResource");
        assert!(!available.is_empty());
        for c in &available {
            let p = |k: &str| c.params.get(k).map(String::as_str);
            assert_eq!(
                (
                    p("DestinationResource"),
                    p("InstanceChargeType"),
                    p("IoOptimized"),
                    c.outcome.as_str()
                ),
                (Some("Zone"), Some("PostPaid"), Some("optimized"), "OK"),
                "{c:?}"
            );
        }
        let described = double.calls_of("DescribeZones");
        assert!(!described.is_empty());
        assert!(
            described.iter().all(|c| c.outcome == "OK"
                && c.params.get("InstanceChargeType").map(String::as_str) == Some("PostPaid")),
            "{described:#?}"
        );

        // Refused beside: a region the API does not have is answered with its documented code.
        let body = [
            provider(&double, Some("nowhere"), Some("xx-nowhere-1")),
            zones("nowhere", Some("alicloud.nowhere"), MODULE_TYPE),
        ]
        .concat();
        let nowhere = workdir(e, provider_bin!(), &double, SK, &ca, &body);
        assert_failed_with(&apply(&nowhere), "Invalid.RegionId");
        assert_eq!(
            double
                .calls_of("DescribeAvailableResource")
                .last()
                .map(|c| c.outcome.as_str()),
            Some("Invalid.RegionId")
        );
    });
}

#[test]
fn a_zone_without_stock_of_the_type_drops_out_and_comes_back_with_stock() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        let (_certs, ca) = trust(&double);
        let body = zones("hangzhou", None, MODULE_TYPE);
        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &body);
        assert_applied(&apply(&wd), &double);
        assert_eq!(ids(&wd, "hangzhou"), ["cn-hangzhou-h", "cn-hangzhou-i"]);

        double.set_zone_stock("cn-hangzhou-i", MODULE_TYPE, false);
        assert_applied(&apply(&wd), &double);
        assert_eq!(ids(&wd, "hangzhou"), ["cn-hangzhou-h"]);

        double.set_zone_stock("cn-hangzhou-h", MODULE_TYPE, false);
        assert_applied(&apply(&wd), &double);
        assert!(ids(&wd, "hangzhou").is_empty(), "no zone has stock left");

        double.set_zone_stock("cn-hangzhou-i", MODULE_TYPE, true);
        assert_applied(&apply(&wd), &double);
        assert_eq!(ids(&wd, "hangzhou"), ["cn-hangzhou-i"]);
    });
}

#[test]
fn an_instance_type_no_zone_offers_gives_an_empty_list() {
    engine::each(&engine::matrix(), |e| {
        let double = double();
        let (_certs, ca) = trust(&double);
        let body = [
            zones("none", None, "ecs.e-c9m99.large"),
            // Offered in cn-hangzhou-k only, which has no cloud_essd.
            zones("no_essd", None, "ecs.t6-c1m1.large"),
        ]
        .concat();
        let wd = workdir(e, provider_bin!(), &double, SK, &ca, &body);
        assert_applied(&apply(&wd), &double);
        assert!(ids(&wd, "none").is_empty());
        assert!(ids(&wd, "no_essd").is_empty());
    });
}
