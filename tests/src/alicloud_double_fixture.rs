//! The official alicloud provider (the real 1.240.0 binary) pointed at the API double, shared by the scenarios that
//! drive it (`alicloud_provider`, `alicloud_eip_dns`, `alicloud_zones`, `alicloud_ram`, and the cloud path's
//! override file): the provider block (ECS, VPC, Alidns and RAM endpoints on the double, no configure-time call), a
//! working directory holding the keys in the environment and trusting the double's CA, and the apply/destroy
//! checks.

use std::path::{Path, PathBuf};

use crate::ecs_double::EcsDouble;
use crate::engine::{self, Engine};
use crate::terraform::{Run, Workdir};

/// The AccessKey pair the scenarios sign with (add it to the double with `add_access_key(AK, SK)`).
pub const AK: &str = "LTAI5tProviderDoubleKey";
pub const SK: &str = "provider-double-test-secret";
pub const REGION: &str = "cn-hangzhou";

/// A `provider "alicloud"` block pointed at `double` for ECS, VPC, Alidns and RAM (no configure-time call): the
/// default provider, or the one named `alias` (`provider = alicloud.<alias>`), in `region` (`None` leaves it to
/// the configuration, as an override file does).
pub fn provider(double: &EcsDouble, alias: Option<&str>, region: Option<&str>) -> String {
    let setting = |name: &str, value: Option<&str>| {
        value
            .map(|v| format!("  {name:<22} = \"{v}\"\n"))
            .unwrap_or_default()
    };
    format!(
        r#"
provider "alicloud" {{
{alias}{region}  skip_region_validation = true
  account_type           = "Domestic"
  endpoints {{
    ecs    = "{addr}"
    vpc    = "{addr}"
    alidns = "{addr}"
    ram    = "{addr}"
  }}
}}
"#,
        alias = setting("alias", alias),
        region = setting("region", region),
        addr = double.addr(),
    )
}

/// The real alicloud provider required, the default provider pointed at `double` in [`REGION`], then `body`
/// (which may add more, e.g. `provider(double, Some("sg"), Some("ap-southeast-1"))`).
pub fn config(double: &EcsDouble, body: &str) -> String {
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
{provider}{body}
"#,
        version = engine::ALICLOUD_VERSION,
        provider = provider(double, None, Some(REGION)),
    )
}

/// A working directory for `e` with the real alicloud provider, pointed at `double` with `secret`, trusting
/// `ca` (a PEM file) for HTTPS. `provider_bin` is `provider_bin!()` of the calling test.
pub fn workdir(
    e: &Engine,
    provider_bin: &Path,
    double: &EcsDouble,
    secret: &str,
    ca: &Path,
    body: &str,
) -> Workdir {
    let mut wd = Workdir::with_alicloud(e, provider_bin).unwrap();
    wd.write("main.tf", &config(double, body)).unwrap();
    wd.set_env("ALICLOUD_ACCESS_KEY", AK);
    wd.set_env("ALICLOUD_SECRET_KEY", secret);
    wd.set_env("SSL_CERT_FILE", &ca.display().to_string());
    wd.init().unwrap();
    wd
}

/// A file holding the CA of `double`'s HTTPS certificate (in a temporary directory kept with it).
pub fn trust(double: &EcsDouble) -> (tempfile::TempDir, PathBuf) {
    let certs = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();
    (certs, ca)
}

/// The apply (or destroy) succeeded; otherwise its output and every call the double saw.
pub fn assert_applied(run: &Run, double: &EcsDouble) {
    assert!(
        run.success,
        "{}{}\ncalls: {:#?}",
        run.stdout,
        run.stderr,
        double.calls()
    );
}

/// The run failed, and its output says `why`.
pub fn assert_failed_with(run: &Run, why: &str) {
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !run.success && text.contains(why),
        "expected a failure with {why}:\n{text}"
    );
}

pub fn apply(wd: &Workdir) -> Run {
    wd.tf(&["apply", "-auto-approve", "-no-color", "-input=false"])
        .unwrap()
}

pub fn destroy(wd: &Workdir) -> Run {
    wd.tf(&["destroy", "-auto-approve", "-no-color", "-input=false"])
        .unwrap()
}
