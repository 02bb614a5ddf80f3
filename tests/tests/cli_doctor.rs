//! `cloudcode doctor` against the ECS contract double (signature-checking): engine found and new enough,
//! credentials accepted through a real signed call, a wrong secret or missing credentials reported as failed
//! checks with a non-zero exit; the secret never printed.

use std::process::{Command, Output};

use cloudcode_tests::ecs_double::EcsDouble;

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const KEY_ID: &str = "LTAIdoctortest0001";
const SECRET: &str = "doctor-test-secret-value";

fn doctor(double: &EcsDouble, creds: Option<(&str, &str)>) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(CLI);
    c.args(["doctor", "--region", "ap-southeast-1"])
        .env("CLOUDCODE_HOME", home.path())
        .env("CLOUDCODE_ECS_ENDPOINT", double.base_url())
        .env("CLOUDCODE_STS_ENDPOINT", double.base_url())
        .env("CLOUDCODE_BSS_ENDPOINT", double.base_url())
        .env("LANG", "C.UTF-8")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALICLOUD_ACCESS_KEY")
        .env_remove("ALICLOUD_SECRET_KEY");
    if let Some((id, secret)) = creds {
        c.env("ALIBABA_CLOUD_ACCESS_KEY_ID", id)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret);
    }
    let out = c.output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(SECRET), "the secret was printed: {all}");
    out
}

#[test]
fn doctor_checks_engine_credentials_and_region_with_a_signed_call() {
    let double = EcsDouble::start().unwrap();
    double.add_access_key(KEY_ID, SECRET);

    let good = doctor(&double, Some((KEY_ID, SECRET)));
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        text.contains("ok   engine:") && text.contains("1.11"),
        "{text}"
    );
    assert!(
        text.contains("ok   region ap-southeast-1: reachable, credentials accepted"),
        "{text}"
    );
    assert!(text.contains("snapshot: none for \"default\""), "{text}");
    let signed = double.calls_of("DescribeSnapshots");
    assert_eq!(signed.len(), 1, "one signed call");

    let wrong = doctor(&double, Some((KEY_ID, "not-the-secret")));
    let text = String::from_utf8_lossy(&wrong.stdout);
    assert!(!wrong.status.success());
    assert!(text.contains("FAIL region ap-southeast-1:"), "{text}");
    assert!(
        text.contains("Signature"),
        "the API's error code is shown: {text}"
    );

    let missing = doctor(&double, None);
    let text = String::from_utf8_lossy(&missing.stdout);
    assert!(!missing.status.success());
    assert!(
        text.contains("FAIL credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID"),
        "{text}"
    );
    assert_eq!(
        double.calls_of("DescribeSnapshots").len(),
        2,
        "no call without credentials"
    );
}

#[test]
fn doctor_runs_the_preflight_and_names_stock_quota_and_balance_problems() {
    let double = EcsDouble::start().unwrap();
    double.add_access_key(KEY_ID, SECRET);

    let good = doctor(&double, Some((KEY_ID, SECRET)));
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{text}");
    for want in [
        "ok   account 1968132000123456 (RAMUser",
        "ok   stock: ecs.e-c1m2.large in ap-southeast-1a",
        "ok   vCPU quota: 0 of 500 in use",
        "ok   balance: 1234.56 CNY",
        "ok   price: about 124.96 CNY a month running (instance 84.96, disk 40.00), 40.00 CNY suspended",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }

    // Refused: the quota used up, the balance low, the cheap type sold out everywhere.
    double.set_vcpu_quota(4, 4);
    double.set_balance("3.10");
    for zone in ["ap-southeast-1a", "ap-southeast-1b"] {
        double.set_zone_stock(zone, "ecs.e-c1m2.large", false);
    }
    let bad = doctor(&double, Some((KEY_ID, SECRET)));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{text}");
    for want in [
        "warn ecs.e-c1m2.large is out of stock in any zone of ap-southeast-1; ecs.c7.large is in stock there (set instance_type = \"ecs.c7.large\" to use it)",
        "warn the available balance is 3.10 CNY, below 50.00",
        "FAIL quota: the account's pay-as-you-go vCPU quota in ap-southeast-1 is 4 with 4 in use",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
}
