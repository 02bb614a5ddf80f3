//! The official alicloud provider (the real 1.240.0 binary) against the Alibaba Cloud API contract double: the
//! transport the cloud path depends on — HTTPS with a test CA trusted through `SSL_CERT_FILE`, the `endpoints`
//! override, no configure-time calls with `skip_region_validation` and `account_type`, the classic RPC
//! signature verified on every request, and the double's answers decoded by the provider. Each accepted case
//! has its refused one beside it (wrong secret, untrusted certificate).

use cloudcode_tests::ecs_double::{EcsDouble, InstanceSeed};
use cloudcode_tests::engine::{self, Engine};
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{Run, Workdir};

const AK: &str = "LTAI5tProviderDoubleKey";
const SK: &str = "provider-double-test-secret";
const REGION: &str = "cn-hangzhou";
const INSTANCE: &str = "i-bp1realprovider01";

fn config(double: &EcsDouble) -> String {
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

provider "alicloud" {{
  region                 = "{REGION}"
  skip_region_validation = true
  account_type           = "Domestic"
  endpoints {{
    ecs = "{addr}"
  }}
}}

data "alicloud_instances" "box" {{
  ids = ["{INSTANCE}"]
}}

output "box" {{
  value = {{
    id     = data.alicloud_instances.box.instances[0].id
    status = data.alicloud_instances.box.instances[0].status
    disk   = data.alicloud_instances.box.instances[0].disk_device_mappings[0].size
  }}
}}
"#,
        version = engine::ALICLOUD_VERSION,
        addr = double.addr(),
    )
}

/// A working directory for `e` with the real alicloud provider, pointed at `double` with `secret`, trusting
/// `ca` (a PEM file) for HTTPS.
fn workdir(e: &Engine, double: &EcsDouble, secret: &str, ca: &std::path::Path) -> Workdir {
    let mut wd = Workdir::with_alicloud(e, provider_bin!()).unwrap();
    wd.write("main.tf", &config(double)).unwrap();
    wd.set_env("ALICLOUD_ACCESS_KEY", AK);
    wd.set_env("ALICLOUD_SECRET_KEY", secret);
    wd.set_env("SSL_CERT_FILE", &ca.display().to_string());
    wd.init().unwrap();
    wd
}

fn apply(wd: &Workdir) -> Run {
    wd.tf(&["apply", "-auto-approve", "-no-color", "-input=false"])
        .unwrap()
}

#[test]
fn the_real_provider_reads_an_instance_over_https_with_a_verified_rpc_signature() {
    engine::each(&engine::matrix(), |e| {
        let double = EcsDouble::start_https().unwrap();
        double.add_access_key(AK, SK);
        double.add_instance(InstanceSeed::running(INSTANCE, REGION));
        let certs = tempfile::tempdir().unwrap();
        let ca = certs.path().join("ca.pem");
        std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();

        let wd = workdir(e, &double, SK, &ca);
        let run = apply(&wd);
        assert!(
            run.success,
            "{}{}\ncalls: {:#?}",
            run.stdout,
            run.stderr,
            double.calls()
        );
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
        let wrong = workdir(e, &double, "not-the-secret", &ca);
        let run = apply(&wrong);
        assert!(!run.success);
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains("SignatureDoesNotMatch"),
            "{}",
            run.stderr
        );
        assert!(
            !format!("{}{}", run.stdout, run.stderr).contains("not-the-secret"),
            "the secret in the output"
        );

        // And a certificate it does not trust is refused before any request reaches the double.
        let before = double.calls().len();
        let other = certs.path().join("other.pem");
        std::fs::write(&other, EcsDouble::start_https().unwrap().ca_pem().unwrap()).unwrap();
        let untrusted = workdir(e, &double, SK, &other);
        let run = apply(&untrusted);
        assert!(!run.success);
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains("certificate"),
            "{}",
            run.stderr
        );
        assert_eq!(
            double.calls().len(),
            before,
            "a request went through an untrusted TLS connection"
        );
    });
}
