//! The provider foundation through real Terraform and OpenTofu (the engine matrix, [`engine`]): offline init, schema, plan-time validation with attribute
//! paths, write-only secrets kept out of saved plans, the `fallback_domain` function, and the run-by-hand message.

use cloudcode_tests::engine;
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{Workdir, SOURCE};
use serde_json::Value as Json;

const PASSWORD: &str = "correct-horse-battery-staple-7781";

/// A valid stack body; each `extra` line `name = value` replaces the default of that attribute or adds it.
fn stack(name: &str, extra: &str) -> String {
    let defaults = [
        ("host", r#""47.1.2.3""#),
        ("admin_username", r#""admin""#),
        ("admin_email", r#""admin@example.com""#),
        ("admin_password_wo_version", "1"),
        ("private_key_path", r#""/nonexistent/id_ed25519""#),
    ];
    let overridden = |key: &str| {
        extra
            .lines()
            .any(|l| l.split('=').next().map(str::trim) == Some(key))
    };
    let mut body: String = defaults
        .iter()
        .filter(|(k, _)| !overridden(k))
        .map(|(k, v)| format!("  {k} = {v}\n"))
        .collect();
    body.push_str(extra);
    format!("\nresource \"cloudcode_stack\" \"{name}\" {{\n{body}\n}}\n")
}

#[test]
fn offline_init_installs_the_provider_and_serves_its_schema() {
    engine::each(&engine::smoke(), |e| {
        let wd = Workdir::new_on(e, provider_bin!(), &stack("s", "")).unwrap();
        let init = wd.init().unwrap();
        assert!(
            init.stdout.contains("cloudcode-dev/cloudcode"),
            "{}",
            init.stdout
        );
        let schema = wd.schema().unwrap();
        // Each engine names the provider under its own registry host.
        let p = &schema["provider_schemas"][e.provider_addr(SOURCE)];
        let attrs = &p["resource_schemas"]["cloudcode_stack"]["block"]["attributes"];
        for a in [
            "host",
            "admin_password_wo",
            "files",
            "url",
            "jump_host",
            "timeouts",
        ] {
            assert!(attrs.get(a).is_some(), "missing attribute {a}");
        }
        assert_eq!(attrs["admin_password_wo"]["write_only"], true);
        assert_eq!(attrs["admin_password_wo"]["sensitive"], true);
        assert_eq!(
            p["provider"]["block"]["attributes"]["ssh_private_key"]["sensitive"],
            true
        );
        assert!(p["functions"].get("fallback_domain").is_some());
    });
}

/// Each case: (attribute, HCL line). One resource per case, so one `validate` checks them all.
const BAD_INPUTS: &[(&str, &str)] = &[
    ("host", r#"host = "not a host!""#),
    // A mistyped IPv4 address used to pass as a name and fail later as a lookup.
    ("host", r#"host = "300.1.1.1""#),
    ("port", "port = 0"),
    ("port", "port = 70000"),
    ("domain", r#"domain = "Bad_Domain.example""#),
    ("domain", r#"domain = "github.io""#),
    ("admin_username", r#"admin_username = "bad user""#),
    ("admin_email", r#"admin_email = "not-an-email""#),
    ("admin_password_wo", r#"admin_password_wo = "short""#),
    ("llm_provider", r#"llm_provider = "openaix""#),
    (
        "llm_base_url",
        r#"llm_base_url = "http://llm.example.com/v1""#,
    ),
    ("tls_mode", r#"tls_mode = "selfsigned""#),
    ("timezone", r#"timezone = "Mars/Olympus Mons""#),
    // Well-formed but not in the IANA database: the containers used to run in UTC without a word.
    ("timezone", r#"timezone = "Mars/Olympus""#),
    // Idle auto-suspend: a duration of at least a minute, and an endpoint without a path.
    ("idle_suspend_after", r#"idle_suspend_after = "soon""#),
    ("idle_suspend_after", r#"idle_suspend_after = "30s""#),
    (
        "idle_suspend_endpoint",
        r#"idle_suspend_endpoint = "https://ecs.example.com/v1""#,
    ),
    ("remote_dir", r#"remote_dir = "relative/dir""#),
    ("images", r#"images = { nginx = "nginx:1" }"#),
    ("docker_install", r#"docker_install = "maybe""#),
    ("https_alt_port", "https_alt_port = 80"),
    ("opencode_version", r#"opencode_version = "latest""#),
    ("host_key", r#"host_key = "not-a-key""#),
    ("acme_email", r#"acme_email = "@example.com""#),
    ("timeouts.create", r#"timeouts = { create = "soon" }"#),
    (
        "jump_host.port",
        r#"jump_host = { host = "bastion.example.com", port = 0 }"#,
    ),
];

#[test]
fn bad_input_gets_an_error_naming_the_attribute_at_plan_time() {
    engine::each(&engine::matrix(), |e| {
        let body: String = BAD_INPUTS
            .iter()
            .enumerate()
            .map(|(i, (_, line))| stack(&format!("case{i}"), &format!("  {line}")))
            .collect();
        let wd = Workdir::new_on(e, provider_bin!(), &body).unwrap();
        wd.init().unwrap();
        let run = wd.validate().unwrap();
        assert!(!run.success, "validate accepted bad input");
        let diags = run.diagnostics();
        for (i, (attr, line)) in BAD_INPUTS.iter().enumerate() {
            // The diagnostic names the attribute path and points at the offending line; for a nested attribute
            // Terraform anchors it at the resource block instead.
            let address = format!("cloudcode_stack.case{i}");
            let found = diags.iter().any(|d| {
                let code = d["snippet"]["code"].as_str().unwrap_or_default();
                d["severity"] == "error"
                    && d["summary"].as_str().unwrap_or_default().contains(attr)
                    && d["address"] == address.as_str()
                    && (code.contains(line)
                        || (attr.contains('.') && code.contains(&format!("\"case{i}\""))))
            });
            assert!(
                found,
                "no error naming `{attr}` for `{line}`; diagnostics:\n{diags:#?}"
            );
        }
        let text = serde_json::to_string(&diags).unwrap();
        assert!(
            !text.contains("\"short\""),
            "the rejected password was echoed"
        );
    });
}

#[test]
fn an_upper_case_or_internationalised_domain_plans_with_its_ascii_form_in_the_urls() {
    engine::each(&engine::matrix(), |e| {
        for (given, ascii) in [
            ("Code.Example.COM", "code.example.com"),
            ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
        ] {
            let config = password_config().replace(
                "  admin_password_wo = var.admin_password",
                &format!("  admin_password_wo = var.admin_password\n  domain = \"{given}\""),
            );
            let mut wd = Workdir::new_on(e, provider_bin!(), &config).unwrap();
            wd.set_env("TF_VAR_admin_password", PASSWORD);
            wd.init().unwrap();
            let (_, plan) = wd.plan_saved("tfplan").unwrap();
            let after = &plan["resource_changes"][0]["change"]["after"];
            // The configured value is kept as written; what is deployed and linked is its ASCII form.
            assert_eq!(after["domain"], given, "{e}");
            assert_eq!(after["url"], format!("https://{ascii}/"), "{e}");
            assert_eq!(after["auth_url"], format!("https://auth.{ascii}/"), "{e}");
        }
    });
}

#[test]
fn cross_field_rules_report_the_dependent_attribute() {
    engine::each(&engine::matrix(), |e| {
        let wd = Workdir::new_on(
            e,
            provider_bin!(),
            &stack("s", r#"  llm_provider = "openai_compatible""#),
        )
        .unwrap();
        wd.init().unwrap();
        let run = wd.validate().unwrap();
        assert!(!run.success);
        let diags = run.diagnostics();
        assert!(
            diags.iter().any(|d| d["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("llm_base_url")),
            "{diags:#?}"
        );
    });
}

fn password_config() -> String {
    format!(
        r#"
variable "admin_password" {{
  type      = string
  ephemeral = true
  sensitive = true
}}
{}
"#,
        stack("s", "  admin_password_wo = var.admin_password")
    )
}

#[test]
fn a_saved_plan_holds_no_trace_of_the_write_only_password() {
    engine::each(&engine::matrix(), |e| {
        let mut wd = Workdir::new_on(e, provider_bin!(), &password_config()).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.init().unwrap();
        let (_, plan) = wd.plan_saved("tfplan").unwrap();
        let text = serde_json::to_string(&plan).unwrap();
        assert!(!text.contains(PASSWORD), "password found in plan JSON");
        let change = &plan["resource_changes"][0]["change"];
        assert_eq!(change["after"]["admin_password_wo"], Json::Null);
        // The computed values the provider knows at plan time.
        assert_eq!(change["after"]["domain"], "47-1-2-3.sslip.io");
        assert_eq!(change["after"]["url"], "https://47-1-2-3.sslip.io/");
        assert_eq!(
            change["after"]["auth_url"],
            "https://auth.47-1-2-3.sslip.io/"
        );
        assert_eq!(change["after"]["port"], 22);
        let raw = std::fs::read(wd.path().join("tfplan")).unwrap();
        assert!(
            !raw.windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "password found in the plan file"
        );
    });
}

#[test]
fn creating_without_the_password_is_refused_at_plan_time() {
    engine::each(&engine::matrix(), |e| {
        let wd = Workdir::new_on(e, provider_bin!(), &stack("s", "")).unwrap();
        wd.init().unwrap();
        let run = wd.tf(&["plan", "-json", "-input=false"]).unwrap();
        assert!(!run.success);
        let diags = run.diagnostics();
        assert!(
            diags
                .iter()
                .any(|d| d["summary"] == "admin_password_wo is required"),
            "{diags:#?}"
        );
    });
}

/// A configuration with one output calling `provider::cloudcode::fallback_domain(address)`.
fn fallback_domain_output(address: &str) -> String {
    format!(
        "\noutput \"domain\" {{\n  value = provider::cloudcode::fallback_domain(\"{address}\")\n}}\n"
    )
}

#[test]
fn fallback_domain_function_returns_the_sslip_name_in_an_output() {
    engine::each(&engine::matrix(), |e| {
        let wd = Workdir::new_on(e, provider_bin!(), &fallback_domain_output("47.1.2.3")).unwrap();
        wd.init().unwrap();
        let run = wd.apply().unwrap().ok().unwrap();
        assert!(run.success);
        assert_eq!(
            wd.outputs().unwrap()["domain"]["value"],
            "47-1-2-3.sslip.io"
        );
    });
}

#[test]
fn fallback_domain_function_rejects_ipv6_with_a_message() {
    engine::each(&engine::matrix(), |e| {
        let wd =
            Workdir::new_on(e, provider_bin!(), &fallback_domain_output("2001:db8::1")).unwrap();
        wd.init().unwrap();
        let run = wd.tf(&["plan", "-no-color", "-input=false"]).unwrap();
        assert!(!run.success);
        assert!(run.stderr.contains("IPv4"), "{e}: {}", run.stderr);
    });
}

#[test]
fn provider_run_by_hand_prints_a_human_sentence_and_exits_1() {
    let out = std::process::Command::new(provider_bin!())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "wrote to stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plugin for Terraform"), "{err}");
}

/// Apps and static sites refused at validate, each error at its element's attribute with one sentence.
const BAD_APPS: &[(&str, &str)] = &[
    (
        r#"apps = { api = { port = 8000 } }"#,
        "set image (an image reference) or build",
    ),
    (
        r#"apps = { api = { image = "nginx:1", build = "./api", port = 80 } }"#,
        "either image or build, not both",
    ),
    (
        r#"apps = { api = { image = "nginx:1", port = 0 } }"#,
        "between 1 and 65535",
    ),
    (
        r#"apps = { api = { image = "nginx:1", port = 80, auth = "none" } }"#,
        "\"none\" is not one of",
    ),
    (
        r#"apps = { Api = { image = "nginx:1", port = 80 } }"#,
        "is not a valid name",
    ),
    (
        r#"apps = { auth = { image = "nginx:1", port = 80 } }"#,
        "login portal",
    ),
    (
        r#"apps = { api = { image = "nginx:1", port = 80, host = "/terminal" } }"#,
        "OpenCode or the terminal answers on",
    ),
    (
        r#"apps = { api = { image = "nginx:1", port = 80, memory = "1m" } }"#,
        "smallest memory limit",
    ),
    (
        r#"static_sites = { www = { dir = "./www", host = "elsewhere.org" } }"#,
        "neither a name under",
    ),
    (
        r#"apps = { api = { image = "nginx:1", port = 80, host = "/api", auth = "one_factor" } }"#,
        "needs the app on its own name",
    ),
];

#[test]
fn bad_apps_and_sites_are_refused_at_validate_naming_the_app() {
    engine::each(&engine::matrix(), |e| {
        let body: String = BAD_APPS
            .iter()
            .enumerate()
            .map(|(i, (line, _))| stack(&format!("case{i}"), &format!("  {line}")))
            .collect();
        let wd = Workdir::new_on(e, provider_bin!(), &body).unwrap();
        wd.init().unwrap();
        let run = wd.validate().unwrap();
        assert!(!run.success, "validate accepted bad apps");
        let diags = run.diagnostics();
        for (i, (_, sentence)) in BAD_APPS.iter().enumerate() {
            let address = format!("cloudcode_stack.case{i}");
            let found = diags.iter().any(|d| {
                d["severity"] == "error"
                    && d["address"] == address.as_str()
                    && d["detail"].as_str().unwrap_or_default().contains(sentence)
            });
            assert!(found, "case{i}: no error saying {sentence:?}:\n{diags:#?}");
        }
        // A valid app beside them is no error.
        let ok = stack(
            "fine",
            r#"  apps = { api = { image = "nginx:1", port = 80, host = "/api", auth = "public" } }"#,
        );
        let wd = Workdir::new_on(e, provider_bin!(), &ok).unwrap();
        wd.init().unwrap();
        let run = wd.validate().unwrap();
        assert!(run.success, "{:#?}", run.diagnostics());
    });
}

#[test]
fn an_apps_build_directory_is_read_at_plan_and_its_secret_env_stays_out_of_the_plan() {
    engine::each(&engine::matrix(), |e| {
        let secret = "app-secret-value-5521";
        let config = format!(
            r#"
variable "admin_password" {{
  type      = string
  ephemeral = true
}}
variable "app_env" {{
  type      = map(map(string))
  ephemeral = true
}}
{}
"#,
            stack(
                "s",
                "  admin_password_wo = var.admin_password\n  app_secret_env_wo = var.app_env\n  \
                 apps = { api = { build = \"./api\", port = 8000, secret_env_wo_version = 1 } }\n  \
                 static_sites = { www = { dir = \"./www\" } }",
            )
        );
        let mut wd = Workdir::new_on(e, provider_bin!(), &config).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env(
            "TF_VAR_app_env",
            &format!(r#"{{ api = {{ TOKEN = "{secret}" }} }}"#),
        );
        wd.init().unwrap();
        // No directories yet: each refused at its attribute.
        let run = wd.tf(&["plan", "-json", "-input=false"]).unwrap();
        assert!(!run.success);
        let text = serde_json::to_string(&run.diagnostics()).unwrap();
        assert!(
            text.contains("cannot read the directory") && text.contains("api"),
            "{text}"
        );
        assert!(text.contains("www"), "{text}");
        // A build directory without a Dockerfile.
        wd.write("api/app.py", "print(1)\n").unwrap();
        wd.write("www/index.html", "<h1>hi</h1>\n").unwrap();
        let run = wd.tf(&["plan", "-json", "-input=false"]).unwrap();
        assert!(!run.success);
        let text = serde_json::to_string(&run.diagnostics()).unwrap();
        assert!(text.contains("no Dockerfile"), "{text}");
        // With one: the plan lists the uploaded files and the app's service, and never the secret.
        wd.write("api/Dockerfile", "FROM scratch\n").unwrap();
        let (_, plan) = wd.plan_saved("tfplan").unwrap();
        let after = &plan["resource_changes"][0]["change"]["after"];
        assert!(
            after["files"]["apps/api/Dockerfile"].is_string(),
            "{after:#}"
        );
        assert!(
            after["files"]["sites/www/index.html"].is_string(),
            "{after:#}"
        );
        assert_eq!(after["services"]["app-api"], "running");
        assert_eq!(after["app_secret_env_wo"], Json::Null);
        assert!(!serde_json::to_string(&plan).unwrap().contains(secret));
        // A value the env file cannot carry, or a variable also in `env`: refused at plan, the value never shown.
        wd.set_env(
            "TF_VAR_app_env",
            r#"{ api = { TOKEN = "it's-secret-9931" } }"#,
        );
        let run = wd.tf(&["plan", "-json", "-input=false"]).unwrap();
        assert!(!run.success);
        let text = serde_json::to_string(&run.diagnostics()).unwrap();
        assert!(
            text.contains("Invalid value for app_secret_env_wo") && text.contains("single quote"),
            "{text}"
        );
        assert!(!text.contains("it's-secret-9931"), "{text}");
        // A first secret env version with no values: refused at plan rather than deployed without them.
        wd.unset_env("TF_VAR_app_env");
        wd.set_env("TF_VAR_app_env", "{}");
        let run = wd.tf(&["plan", "-json", "-input=false"]).unwrap();
        assert!(!run.success);
        let text = serde_json::to_string(&run.diagnostics()).unwrap();
        assert!(
            text.contains(r#"app_secret_env_wo[\"api\"] is required"#),
            "{text}"
        );
        // Secret env for an app without a version would never be applied: refused.
        wd.set_env(
            "TF_VAR_app_env",
            &format!(r#"{{ other = {{ TOKEN = "{secret}" }} }}"#),
        );
        let run = wd.tf(&["plan", "-json", "-input=false"]).unwrap();
        assert!(!run.success);
        let text = serde_json::to_string(&run.diagnostics()).unwrap();
        assert!(
            text.contains("apps.other.secret_env_wo_version is required"),
            "{text}"
        );
        assert!(!text.contains(secret));
    });
}
