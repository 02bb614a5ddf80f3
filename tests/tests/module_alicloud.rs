//! The HCL module `modules/cloudcode` and the examples through real Terraform, checked against the real
//! `aliyun/alicloud` 1.289.0 schema served by the schema-only stub and the real cloudcode provider's schema:
//! `fmt`, `validate` of the modules and every example, and the module's `terraform test` files (mocked values).

use std::collections::BTreeMap;
use std::process::Command;

use cloudcode_tests::terraform::{repo_root, terraform, Run, Workdir};
use cloudcode_tests::{alicloud_stub_bin, provider_bin};
use serde_json::Value as Json;

const EXAMPLES: [&str; 4] = [
    "examples/alicloud-basic",
    "examples/custom-domain",
    "examples/existing-host",
    "examples/gitops",
];

/// A working directory with both providers installed and the repository's `modules/` and `examples/` copied in,
/// so relative module sources resolve as they do in the repository.
fn workdir() -> Workdir {
    let wd = Workdir::with_alicloud_stub(provider_bin!(), alicloud_stub_bin!()).unwrap();
    let root = repo_root();
    wd.copy_tree(&root.join("modules"), "modules").unwrap();
    wd.copy_tree(&root.join("examples"), "examples").unwrap();
    wd
}

fn init(wd: &Workdir, dir: &str) {
    wd.init_in(dir).unwrap();
}

fn errors(run: &Run) -> Vec<Json> {
    run.errors()
}

/// Runs one `.tftest.hcl` file of `modules/cloudcode/tests` and returns (run name -> status, summary).
fn terraform_test(wd: &Workdir, file: &str) -> (BTreeMap<String, String>, Json, Run) {
    let filter = format!("-filter=tests/{file}");
    let run = wd
        .tf_in(
            "modules/cloudcode",
            &["test", "-json", "-no-color", &filter],
        )
        .unwrap();
    let mut runs = BTreeMap::new();
    let mut summary = Json::Null;
    for line in run.json_lines() {
        match line["type"].as_str() {
            Some("test_run") if line["test_run"]["progress"] == "complete" => {
                runs.insert(
                    line["test_run"]["run"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    line["test_run"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            Some("test_summary") => summary = line["test_summary"].clone(),
            _ => {}
        }
    }
    (runs, summary, run)
}

/// Runs a test file and asserts every listed run passed (and nothing failed).
fn assert_file_passes(file: &str, expected_runs: &[&str]) {
    let wd = workdir();
    init(&wd, "modules/cloudcode");
    let (runs, summary, run) = terraform_test(&wd, file);
    assert_eq!(
        summary["status"], "pass",
        "{file}: {summary}\n{}\n{}",
        run.stdout, run.stderr
    );
    for name in expected_runs {
        assert_eq!(
            runs.get(*name).map(String::as_str),
            Some("pass"),
            "{file}: run {name} did not pass: {runs:?}"
        );
    }
    assert_eq!(summary["passed"], expected_runs.len(), "{file}: {runs:?}");
}

#[test]
fn hcl_of_modules_and_examples_is_terraform_fmt_clean() {
    let root = repo_root();
    for dir in ["modules", "examples"] {
        let out = Command::new(terraform())
            .args(["fmt", "-check", "-recursive", "-diff", "-no-color", dir])
            .current_dir(&root)
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "terraform fmt would change {dir}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn modules_and_every_example_validate_against_the_real_alicloud_schema() {
    let wd = workdir();
    let dirs = ["modules/cloudcode", "modules/cloudcode-host"]
        .into_iter()
        .chain(EXAMPLES);
    for dir in dirs {
        init(&wd, dir);
        let run = wd.tf_in(dir, &["validate", "-json", "-no-color"]).unwrap();
        let doc = run.json().unwrap();
        assert_eq!(doc["valid"], true, "{dir} is not valid: {}", run.stdout);
        assert!(errors(&run).is_empty(), "{dir}: {}", run.stdout);
        let warnings: Vec<_> = run
            .diagnostics()
            .into_iter()
            .filter(|d| d["severity"] == "warning")
            .collect();
        assert!(warnings.is_empty(), "{dir} has warnings: {warnings:?}");
    }
}

#[test]
fn stub_refuses_instance_arguments_removed_from_the_real_provider() {
    let wd = workdir();
    let config = r#"
terraform {
  required_providers {
    alicloud = {
      source  = "aliyun/alicloud"
      version = "1.289.0"
    }
  }
}

resource "alicloud_instance" "box" {
  instance_type = "ecs.e-c1m2.large"
  subnet_id     = "vsw-123"
  io_optimized  = "optimized"
  status        = "Running"
}

resource "alicloud_eip_address" "ip" {
  internet_charge_type = 42
}
"#;
    std::fs::create_dir_all(wd.path().join("probe")).unwrap();
    wd.write("probe/main.tf", config).unwrap();
    init(&wd, "probe");
    let run = wd
        .tf_in("probe", &["validate", "-json", "-no-color"])
        .unwrap();
    let errs = errors(&run);
    let unsupported: Vec<&str> = errs
        .iter()
        .filter(|d| d["summary"] == "Unsupported argument")
        .filter_map(|d| d["snippet"]["code"].as_str())
        .collect();
    assert!(
        unsupported.iter().any(|c| c.contains("subnet_id"))
            && unsupported.iter().any(|c| c.contains("io_optimized")),
        "removed arguments must be refused: {}",
        run.stdout
    );
    // Arguments that exist are accepted (status is not reported); a number converts to the string type.
    assert_eq!(errs.len(), 2, "{}", run.stdout);
}

#[test]
fn default_plan_creates_the_listed_resources_with_the_design_settings() {
    assert_file_passes(
        "default_plan.tftest.hcl",
        &[
            "default_plan_creates_a_fresh_install",
            "alternate_https_port_opens_8443",
            "explicit_zone_skips_the_zone_lookup",
            "existing_eip_is_reused",
        ],
    );
}

#[test]
fn suspend_plans_stopped_with_stop_charging_and_replaces_nothing() {
    assert_file_passes(
        "suspend_resume.tftest.hcl",
        &[
            "create",
            "suspend_stops_the_instance_without_replacing_anything",
            "suspend",
            "resume_starts_the_same_instance",
        ],
    );
}

#[test]
fn domain_plans_two_dns_records_and_none_without_one() {
    assert_file_passes(
        "dns.tftest.hcl",
        &[
            "no_domain_plans_no_records",
            "domain_plans_two_records_in_the_longest_matching_zone",
            "apex_domain_uses_the_at_record",
            "records_point_at_the_eip",
            "domain_outside_alibaba_dns_is_listed_for_manual_creation",
            "managed_domain_missing_from_the_account_fails_with_advice",
        ],
    );
}

#[test]
fn restore_with_a_snapshot_plans_the_image_from_it() {
    assert_file_passes(
        "restore.tftest.hcl",
        &[
            "restore_false_installs_fresh_without_looking",
            "compatible_snapshot_becomes_the_instance_image",
            "restored_instance_boots_from_the_restore_image",
            "incompatible_snapshot_restores_only_when_allowed",
            "later_plans_never_rebuild_the_restored_disk",
        ],
    );
}

/// The `error_message` of each variable's validation in a module's `variables.tf` (one per variable here),
/// unescaped from its HCL string.
fn validation_messages(variables_tf: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current = None;
    for line in variables_tf.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("variable \"") {
            current = rest.split('"').next().map(str::to_string);
        } else if let (Some(rest), Some(var)) = (line.strip_prefix("error_message = \""), &current)
        {
            let raw = rest.strip_suffix('"').unwrap_or(rest);
            out.insert(var.clone(), raw.replace("\\\"", "\"").replace("\\\\", "\\"));
        }
    }
    out
}

/// Each run of `validation.tftest.hcl` as (run name, variable it expects to fail).
fn expected_failures(test_file: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut run = None;
    for line in test_file.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("run \"") {
            run = rest.split('"').next().map(str::to_string);
        } else if let Some(rest) = line.strip_prefix("expect_failures = [var.") {
            let var = rest.trim_end_matches(']').to_string();
            out.push((run.clone().unwrap_or_default(), var));
        }
    }
    out
}

#[test]
fn invalid_inputs_fail_with_their_validation_message() {
    let root = repo_root();
    let module = root.join("modules/cloudcode");
    let tests_src = std::fs::read_to_string(module.join("tests/validation.tftest.hcl")).unwrap();
    let messages =
        validation_messages(&std::fs::read_to_string(module.join("variables.tf")).unwrap());
    let cases = expected_failures(&tests_src);
    assert!(cases.len() >= 6, "at least six invalid inputs: {cases:?}");

    // 1. As committed: every run passes because its variable's validation fails (expect_failures).
    let wd = workdir();
    init(&wd, "modules/cloudcode");
    let (runs, summary, run) = terraform_test(&wd, "validation.tftest.hcl");
    assert_eq!(summary["status"], "pass", "{}\n{}", run.stdout, run.stderr);
    assert_eq!(runs.len(), cases.len(), "{runs:?}");

    // 2. Without expect_failures every run must fail, and with exactly its variable's message. A failed run
    // skips the rest of its file, so each run goes into a file of its own (same mocks).
    let first_run = tests_src
        .find("\nrun \"")
        .expect("validation.tftest.hcl has runs")
        + 1;
    let (header, body) = tests_src.split_at(first_run);
    let mut filters = Vec::new();
    for (i, block) in body.split("\nrun \"").enumerate() {
        let block = block.strip_prefix("run \"").unwrap_or(block);
        let stripped: String = block
            .lines()
            .filter(|l| !l.trim_start().starts_with("expect_failures"))
            .map(|l| format!("{l}\n"))
            .collect();
        let file = format!("message_{i:02}.tftest.hcl");
        wd.write(
            &format!("modules/cloudcode/tests/{file}"),
            &format!("{header}run \"{stripped}"),
        )
        .unwrap();
        filters.push(format!("-filter=tests/{file}"));
    }
    assert_eq!(filters.len(), cases.len());
    let mut args = vec!["test", "-json", "-no-color"];
    args.extend(filters.iter().map(String::as_str));
    let run = wd.tf_in("modules/cloudcode", &args).unwrap();
    assert!(!run.success, "runs without expect_failures must fail");
    let lines = run.json_lines();
    for (name, var) in &cases {
        let message = messages
            .get(var)
            .unwrap_or_else(|| panic!("variable {var} has no validation message"));
        let diags: Vec<&Json> = lines
            .iter()
            .filter(|l| l["type"] == "diagnostic" && l["@testrun"] == name.as_str())
            .map(|l| &l["diagnostic"])
            .collect();
        assert!(
            diags
                .iter()
                .any(|d| d["summary"] == "Invalid value for variable"
                    && d["detail"]
                        .as_str()
                        .is_some_and(|t| t.contains(message.as_str()))),
            "run {name}: expected var.{var} to fail with {message:?}, got {diags:?}"
        );
        // Only that variable failed: no other variable was rejected along the way.
        let others = diags
            .iter()
            .filter(|d| d["summary"] == "Invalid value for variable")
            .filter(|d| {
                !d["detail"]
                    .as_str()
                    .is_some_and(|t| t.contains(message.as_str()))
            })
            .count();
        assert_eq!(others, 0, "run {name}: {diags:?}");
    }
    // A rejected ephemeral password is never rendered as a value (only the test file's own source line is
    // quoted in the snippet).
    for l in lines.iter().filter(|l| l["type"] == "diagnostic") {
        let d = &l["diagnostic"];
        let shown = format!(
            "{} {} {}",
            d["summary"], d["detail"], d["snippet"]["values"]
        );
        assert!(
            !shown.contains("hunter2"),
            "a rejected password leaked: {d}"
        );
    }
}

#[test]
fn validation_message_parser_reads_escaped_quotes() {
    let tf =
        "variable \"a\" {\n  validation {\n    error_message = \"must be \\\"x\\\".\"\n  }\n}\n";
    assert_eq!(
        validation_messages(tf).get("a").map(String::as_str),
        Some("must be \"x\".")
    );
}
