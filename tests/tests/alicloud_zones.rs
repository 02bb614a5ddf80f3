//! `data "alicloud_zones"` with the module's arguments (`modules/cloudcode/main.tf`), read by the real official
//! alicloud provider (1.240.0) from the API double's zone catalog: exactly the zones that offer the instance type
//! with stock and the disk category, in two regions; a zone whose stock of the type is taken away drops out (and
//! comes back with it); a type no zone offers gives an empty list; an unknown region is refused with the
//! documented error, in the provider's words.

use std::path::{Path, PathBuf};

use cloudcode_tests::ecs_double::EcsDouble;
use cloudcode_tests::engine::{self, Engine};
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{Run, Workdir};

const AK: &str = "LTAI5tZonesDoubleKey";
const SK: &str = "zones-double-test-secret";
/// The module's default instance type (`modules/cloudcode/variables.tf`).
const MODULE_TYPE: &str = "ecs.e-c1m2.large";

// TODO(merge): use alicloud_double_fixture
/// A provider block pointed at `double` for ECS and VPC (no configure-time call), in `region`.
fn provider(double: &EcsDouble, alias: Option<&str>, region: &str) -> String {
    let alias = alias
        .map(|a| format!("alias = \"{a}\""))
        .unwrap_or_default();
    format!(
        r#"
provider "alicloud" {{
  {alias}
  region                 = "{region}"
  skip_region_validation = true
  account_type           = "Domestic"
  endpoints {{
    ecs = "{addr}"
    vpc = "{addr}"
  }}
}}
"#,
        addr = double.addr(),
    )
}

// TODO(merge): use alicloud_double_fixture
/// The real alicloud provider required, then `body`.
fn config(body: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    alicloud = {{
      source  = "aliyun/alicloud"
      version = "{version}"
    }}
  }}
}}
{body}
"#,
        version = engine::ALICLOUD_VERSION,
    )
}

// TODO(merge): use alicloud_double_fixture
/// A file holding the CA of `double`'s HTTPS certificate (in a temporary directory kept with it).
fn trust(double: &EcsDouble) -> (tempfile::TempDir, PathBuf) {
    let certs = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();
    (certs, ca)
}

// TODO(merge): use alicloud_double_fixture
/// A working directory for `e` with the real alicloud provider, keys for `double`, trusting `ca`, holding `body`.
fn workdir(e: &Engine, ca: &Path, body: &str) -> Workdir {
    let mut wd = Workdir::with_alicloud(e, provider_bin!()).unwrap();
    wd.write("main.tf", &config(body)).unwrap();
    wd.set_env("ALICLOUD_ACCESS_KEY", AK);
    wd.set_env("ALICLOUD_SECRET_KEY", SK);
    wd.set_env("SSL_CERT_FILE", &ca.display().to_string());
    wd.init().unwrap();
    wd
}

// TODO(merge): use alicloud_double_fixture
fn apply(wd: &Workdir) -> Run {
    wd.tf(&["apply", "-auto-approve", "-no-color", "-input=false"])
        .unwrap()
}

// TODO(merge): use alicloud_double_fixture
/// The apply succeeded; otherwise its output and every call the double saw.
fn assert_applied(run: &Run, double: &EcsDouble) {
    assert!(
        run.success,
        "{}{}\ncalls: {:#?}",
        run.stdout,
        run.stderr,
        double.calls()
    );
}

/// A started HTTPS double that accepts the test's key.
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
            provider(&double, None, "cn-hangzhou"),
            provider(&double, Some("sg"), "ap-southeast-1"),
            zones("hangzhou", None, MODULE_TYPE),
            zones("singapore", Some("alicloud.sg"), MODULE_TYPE),
        ]
        .concat();
        let wd = workdir(e, &ca, &body);
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
        let nowhere = workdir(
            e,
            &ca,
            &[
                provider(&double, None, "xx-nowhere-1"),
                zones("nowhere", None, MODULE_TYPE),
            ]
            .concat(),
        );
        let run = apply(&nowhere);
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(
            !run.success && text.contains("Invalid.RegionId"),
            "expected Invalid.RegionId:\n{text}"
        );
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
        let body = [
            provider(&double, None, "cn-hangzhou"),
            zones("hangzhou", None, MODULE_TYPE),
        ]
        .concat();
        let wd = workdir(e, &ca, &body);
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
            provider(&double, None, "cn-hangzhou"),
            zones("none", None, "ecs.e-c9m99.large"),
            // Offered in cn-hangzhou-k only, which has no cloud_essd.
            zones("no_essd", None, "ecs.t6-c1m1.large"),
        ]
        .concat();
        let wd = workdir(e, &ca, &body);
        assert_applied(&apply(&wd), &double);
        assert!(ids(&wd, "none").is_empty());
        assert!(ids(&wd, "no_essd").is_empty());
    });
}
