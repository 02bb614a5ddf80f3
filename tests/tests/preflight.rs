//! The stock-aware preflight (`cloudcode_alicloud::preflight`) against the signature-checking API double: whose
//! key it is (STS), the region (DescribeRegions), a zone with the type in stock or the next ranked type
//! (DescribeAvailableResource), the vCPU quota (DescribeAccountAttributes), the balance (BSS, with thousands
//! separators) and the monthly price (DescribePrice) — and each refusal as one sentence naming what to change.
use cloudcode_alicloud::preflight::{self, PreflightRequest, FALLBACK_TYPES};
use cloudcode_alicloud::{ClientConfig, Credentials, RetryPolicy};
use cloudcode_tests::ecs_double::{EcsDouble, Fault, ACCOUNT_ID};

const AK: &str = "LTAIpreflighttest01";
const SK: &str = "preflight-test-secret";

fn double() -> EcsDouble {
    let d = EcsDouble::start().expect("start the API double");
    d.add_access_key(AK, SK);
    d
}

fn config(d: &EcsDouble, region: &str, secret: &str) -> ClientConfig {
    // Each product at its own override (the double answers all three, told apart by the signed API version).
    ClientConfig {
        endpoint: Some(d.base_url()),
        sts_endpoint: Some(d.base_url()),
        bss_endpoint: Some(d.base_url()),
        retry: RetryPolicy::fast(2),
        ..ClientConfig::new(region, Credentials::new(AK, secret))
    }
}

fn request(region: &str) -> PreflightRequest {
    PreflightRequest {
        region: region.into(),
        instance_types: FALLBACK_TYPES.iter().map(|t| t.to_string()).collect(),
        zone_id: None,
        system_disk_category: "cloud_essd".into(),
        system_disk_size: 40,
        vcpus: 2,
        spot: false,
        min_balance: 100.0,
    }
}

fn run(d: &EcsDouble, region: &str, secret: &str, req: &PreflightRequest) -> preflight::Report {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(preflight::run(&config(d, region, secret), req))
        .expect("preflight runs")
}

#[test]
fn a_good_account_gets_its_identity_zone_quota_balance_and_monthly_price() {
    let d = double();
    let r = run(&d, "ap-southeast-1", SK, &request("ap-southeast-1"));
    assert!(r.ok(), "{:?}", r.problems);
    let id = r.identity.clone().unwrap();
    assert_eq!(
        (id.account_id.as_str(), id.identity_type.as_str()),
        (ACCOUNT_ID, "RAMUser")
    );
    assert!(
        r.regions.contains(&"cn-hangzhou".to_string())
            && r.regions.contains(&"ap-southeast-1".to_string())
    );
    let c = r.choice.clone().unwrap();
    assert_eq!(
        (c.zone_id.as_str(), c.instance_type.as_str(), c.low_stock),
        ("ap-southeast-1a", "ecs.e-c1m2.large", false)
    );
    assert_eq!(r.vcpu_quota, Some((500, 0)));
    assert_eq!(
        r.balance,
        Some((1234.56, "CNY".into())),
        "the separator is read"
    );
    let price = r.price.clone().unwrap();
    // 0.118 CNY/h × 720 h and 40 GiB × 1 CNY of ESSD: what the double's price list says.
    assert_eq!(price.currency, "CNY");
    assert!((price.instance - 84.96).abs() < 0.01, "{price:?}");
    assert!((price.system_disk - 40.0).abs() < 0.01, "{price:?}");
    assert!(
        (price.running - 124.96).abs() < 0.01 && (price.suspended - 40.0).abs() < 0.01,
        "{price:?}"
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // Each product was called once, signed: STS, ECS, BSS.
    for action in [
        "GetCallerIdentity",
        "DescribeRegions",
        "DescribeAvailableResource",
        "DescribeAccountAttributes",
        "QueryAccountBalance",
        "DescribePrice",
    ] {
        assert_eq!(d.outcomes_of(action), ["OK"], "{action}");
    }
}

#[test]
fn a_wrong_secret_is_one_sentence_about_the_secret_and_nothing_else_is_asked() {
    let d = double();
    let r = run(
        &d,
        "ap-southeast-1",
        "not-the-secret",
        &request("ap-southeast-1"),
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.problems[0].check, "credentials");
    assert!(
        r.problems[0]
            .sentence
            .contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        "{:?}",
        r.problems
    );
    assert_eq!(
        d.outcomes_of("GetCallerIdentity"),
        ["SignatureDoesNotMatch"]
    );
    assert!(d.calls_of("DescribeRegions").is_empty());
    let unknown = {
        let mut c = config(&d, "ap-southeast-1", SK);
        c.credentials = Credentials::new("LTAInobodyhasthiskey", SK);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(preflight::run(&c, &request("ap-southeast-1")))
            .unwrap()
    };
    assert!(
        unknown.problems[0].sentence.contains("unknown or disabled"),
        "{:?}",
        unknown.problems
    );
}

#[test]
fn out_of_stock_falls_back_to_the_next_type_and_none_in_stock_names_what_to_change() {
    let d = double();
    for zone in ["ap-southeast-1a", "ap-southeast-1b"] {
        d.set_zone_stock(zone, "ecs.e-c1m2.large", false);
    }
    let r = run(&d, "ap-southeast-1", SK, &request("ap-southeast-1"));
    assert!(r.ok(), "{:?}", r.problems);
    let c = r.choice.clone().unwrap();
    // u1 is not sold there; c7 is, in zone b.
    assert_eq!(
        (c.instance_type.as_str(), c.zone_id.as_str()),
        ("ecs.c7.large", "ap-southeast-1b")
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("ecs.e-c1m2.large is out of stock")),
        "{:?}",
        r.warnings
    );

    for zone in ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"] {
        d.set_zone_stock(zone, "ecs.g7.large", false);
        d.set_zone_stock(zone, "ecs.c7.large", false);
    }
    let r = run(&d, "ap-southeast-1", SK, &request("ap-southeast-1"));
    let stock: Vec<_> = r.problems.iter().filter(|p| p.check == "stock").collect();
    assert_eq!(stock.len(), 1, "{:?}", r.problems);
    assert!(
        stock[0].sentence.contains("any zone of ap-southeast-1")
            && stock[0].sentence.contains("choose another region"),
        "{}",
        stock[0].sentence
    );
    assert!(r.price.is_none(), "no price without a choice");
}

#[test]
fn a_used_up_vcpu_quota_and_a_low_balance_are_reported() {
    let d = double();
    d.set_vcpu_quota(8, 7);
    d.set_balance("12.30");
    let r = run(&d, "cn-hangzhou", SK, &request("cn-hangzhou"));
    let quota: Vec<_> = r.problems.iter().filter(|p| p.check == "quota").collect();
    assert_eq!(quota.len(), 1, "{:?}", r.problems);
    assert!(
        quota[0]
            .sentence
            .contains("quota in cn-hangzhou is 8 with 7 in use"),
        "{}",
        quota[0].sentence
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("12.30 CNY, below 100.00")),
        "{:?}",
        r.warnings
    );
    // The allowed case beside it: enough quota left, enough balance.
    d.set_vcpu_quota(8, 6);
    d.set_balance("10,000.00");
    let r = run(&d, "cn-hangzhou", SK, &request("cn-hangzhou"));
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(r.balance.map(|b| b.0), Some(10000.0));
}

#[test]
fn a_sold_out_zone_names_the_zones_that_have_the_type_and_a_missing_permission_is_a_warning() {
    let d = double();
    d.set_zone_stock("ap-southeast-1a", "ecs.e-c1m2.large", false);
    let mut req = request("ap-southeast-1");
    req.instance_types = vec!["ecs.e-c1m2.large".into()];
    req.zone_id = Some("ap-southeast-1a".into());
    let r = run(&d, "ap-southeast-1", SK, &req);
    let stock: Vec<_> = r.problems.iter().filter(|p| p.check == "stock").collect();
    assert_eq!(stock.len(), 1, "{:?}", r.problems);
    assert!(
        stock[0].sentence.contains("zone ap-southeast-1a")
            && stock[0].sentence.contains(
                "set zone_id to a zone that has it (ecs.e-c1m2.large in ap-southeast-1b)"
            ),
        "{}",
        stock[0].sentence
    );
    // A least-privilege key: the quota check is skipped with a warning, the deploy is not refused for it.
    let d = double();
    d.inject(
        "DescribeAccountAttributes",
        Fault::custom(
            403,
            "Forbidden.RAM",
            "User not authorized to operate on the specified resource.",
        ),
        1,
    );
    let r = run(&d, "ap-southeast-1", SK, &request("ap-southeast-1"));
    assert!(r.ok(), "{:?}", r.problems);
    assert!(r.vcpu_quota.is_none());
    assert!(
        r.warnings.iter().any(
            |w| w.contains("ecs:DescribeAccountAttributes is not allowed")
                && w.contains("Forbidden.RAM")
        ),
        "{:?}",
        r.warnings
    );
}

#[test]
fn an_unknown_region_is_named_with_the_ones_to_choose_from() {
    let d = double();
    let r = run(&d, "ap-southeast-1", SK, &request("eu-moon-1"));
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0]
            .sentence
            .starts_with("region eu-moon-1 is not one this account can use")
            && r.problems[0].sentence.contains("cn-hangzhou"),
        "{:?}",
        r.problems
    );
}

#[test]
fn spot_is_priced_by_the_hour_at_its_share() {
    let d = double();
    let mut req = request("ap-southeast-1");
    req.spot = true;
    let r = run(&d, "ap-southeast-1", SK, &req);
    assert!(r.ok(), "{:?}", r.problems);
    let price = r.price.unwrap();
    // 0.118 × 0.2 CNY/h, rounded to the cent by DescribePrice (0.02), × 720 h.
    assert!(price.instance < 20.0 && price.instance > 10.0, "{price:?}");
    let call = &d.calls_of("DescribePrice")[0];
    assert_eq!(
        call.params.get("SpotStrategy").map(String::as_str),
        Some("SpotAsPriceGo")
    );
    assert_eq!(
        call.params.get("PriceUnit").map(String::as_str),
        Some("Hour")
    );
}

/// `data "cloudcode_preflight"` under each engine: the chosen zone, type and price as attributes; a precondition
/// on `ok` refuses the plan with the problem's sentence once the quota is used up.
#[test]
fn the_data_source_chooses_a_zone_and_a_precondition_refuses_a_used_up_quota() {
    use cloudcode_tests::engine;
    use cloudcode_tests::provider_bin;
    use cloudcode_tests::terraform::Workdir;
    engine::each(&engine::matrix(), |e| {
        let d = double();
        let hcl = format!(
            r#"provider "cloudcode" {{
  region     = "ap-southeast-1"
  access_key = "{AK}"
  secret_key = "{SK}"
  endpoints {{
    ecs = "{url}"
    sts = "{url}"
    bss = "{url}"
  }}
}}

data "cloudcode_preflight" "p" {{}}

resource "terraform_data" "box" {{
  input = data.cloudcode_preflight.p.zone
  lifecycle {{
    precondition {{
      condition     = data.cloudcode_preflight.p.ok
      error_message = join("; ", data.cloudcode_preflight.p.problems)
    }}
  }}
}}

output "p" {{
  value = data.cloudcode_preflight.p
}}
"#,
            url = d.base_url()
        );
        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl).unwrap();
        wd.set_env("CLOUDCODE_ECS_RETRY_DELAY", "5ms");
        wd.init().unwrap();
        wd.apply().unwrap().ok().unwrap();
        let out = &wd.outputs().unwrap()["p"]["value"];
        assert_eq!(out["ok"], true, "{out}");
        assert_eq!(out["account_id"], ACCOUNT_ID);
        assert_eq!(out["zone"], "ap-southeast-1a");
        assert_eq!(out["instance_type"], "ecs.e-c1m2.large");
        assert_eq!(out["currency"], "CNY");
        assert!(
            (out["monthly_price"].as_f64().unwrap() - 124.96).abs() < 0.01,
            "{out}"
        );
        assert!(
            (out["monthly_price_suspended"].as_f64().unwrap() - 40.0).abs() < 0.01,
            "{out}"
        );

        d.set_vcpu_quota(2, 2);
        let run = wd.tf(&["plan", "-no-color", "-input=false"]).unwrap();
        assert!(!run.success, "a plan over a used-up quota passed");
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(
            text.contains("quota in ap-southeast-1 is 2 with 2 in use"),
            "{text}"
        );
    });
}
