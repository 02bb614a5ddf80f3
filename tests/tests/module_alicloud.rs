//! The HCL module `modules/cloudcode` and the examples through real Terraform and OpenTofu (every engine of the
//! smoke list, [`engine::smoke`]), checked by the real official `aliyun/alicloud` provider (1.240.0, built from
//! its Go module) and the real cloudcode provider: `fmt`, `validate` of the modules and every
//! example, and the modules' test files (mocked values for `modules/cloudcode`, the real cloudcode provider for
//! `modules/cloudcode-host`), which run unchanged under `terraform test` and `tofu test`.

use std::collections::BTreeMap;

use cloudcode_tests::engine::{self, Engine};
use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{mock_provider_blocks, repo_root, Run, TestReport, Workdir};
use serde_json::Value as Json;

const EXAMPLES: [&str; 6] = [
    "examples/alicloud-basic",
    "examples/custom-domain",
    "examples/existing-host",
    "examples/flask-app",
    "examples/gitops",
    "examples/static-site",
];

/// A working directory with both providers installed and the repository's `modules/` and `examples/` copied in,
/// so relative module sources resolve as they do in the repository.
fn workdir(e: &Engine) -> Workdir {
    let wd = Workdir::with_alicloud(e, provider_bin!()).unwrap();
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

/// Runs one test file of `modules/cloudcode/tests` under the working directory's engine.
fn module_test(wd: &Workdir, file: &str) -> (TestReport, Run) {
    wd.test_in("modules/cloudcode", &[&format!("-filter=tests/{file}")])
        .unwrap()
}

/// Runs a test file under every smoke engine and asserts every listed run passed (and nothing failed): the
/// same file, the same runs, the same count under `terraform test` and `tofu test`.
fn assert_file_passes(file: &str, expected_runs: &[&str]) {
    engine::each(&engine::smoke(), |e| {
        let wd = workdir(e);
        init(&wd, "modules/cloudcode");
        let (report, run) = module_test(&wd, file);
        let (runs, summary) = (&report.runs, &report.summary);
        assert_eq!(
            summary["status"], "pass",
            "{file} under {e}: {summary}\n{}\n{}",
            run.stdout, run.stderr
        );
        for name in expected_runs {
            assert_eq!(
                runs.get(*name).map(String::as_str),
                Some("pass"),
                "{file} under {e}: run {name} did not pass: {runs:?}"
            );
        }
        assert_eq!(
            runs.len(),
            expected_runs.len(),
            "{file} under {e}: {runs:?}"
        );
        assert_eq!(
            summary["passed"],
            expected_runs.len(),
            "{file} under {e}: {runs:?}"
        );
    });
}

#[test]
fn hcl_of_modules_and_examples_is_fmt_clean_for_both_engines() {
    // `tofu fmt` also formats the .tofu files, which `terraform fmt` does not read.
    let root = repo_root();
    engine::each(&engine::matrix(), |e| {
        for dir in ["modules", "examples"] {
            let out = e
                .command()
                .args(["fmt", "-check", "-recursive", "-diff", "-no-color", dir])
                .current_dir(&root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{e} fmt would change {dir}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

#[test]
fn versions_tofu_repeats_versions_tf_but_for_the_opentofu_guard() {
    // OpenTofu reads versions.tofu instead of versions.tf: both must require the same providers, and every
    // versions.tofu states the one supported range (the one modules/cloudcode/versions.tofu states).
    let root = repo_root();
    let guard = |text: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with("required_version"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let body = |text: &str| -> String {
        let start = text.find("  required_providers").unwrap_or(text.len());
        text[start..]
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let canonical =
        guard(&std::fs::read_to_string(root.join("modules/cloudcode/versions.tofu")).unwrap());
    assert!(
        canonical.starts_with("required_version = \">= 1.11.6, != 1.11.12, != 1.12.4\""),
        "{canonical}"
    );
    for m in [
        "modules/cloudcode",
        "modules/cloudcode-host",
        "modules/static-site",
    ] {
        let tf = std::fs::read_to_string(root.join(m).join("versions.tf")).unwrap();
        let tofu = std::fs::read_to_string(root.join(m).join("versions.tofu")).unwrap();
        assert_eq!(
            body(&tf),
            body(&tofu),
            "{m}: versions.tofu must require what versions.tf requires"
        );
        assert_eq!(guard(&tofu), canonical, "{m}/versions.tofu");
        assert!(
            guard(&tf).contains(">= 1.11"),
            "{m}/versions.tf keeps Terraform's guard"
        );
    }
}

#[test]
fn every_test_file_mocks_the_providers_alike() {
    // The mocks are inline (OpenTofu's mock_provider has no `source`): one set, repeated verbatim.
    let dir = repo_root().join("modules/cloudcode/tests");
    let canonical = mock_provider_blocks(
        &std::fs::read_to_string(dir.join("default_plan.tftest.hcl")).unwrap(),
    );
    assert!(
        canonical.contains("mock_provider \"alicloud\"")
            && canonical.contains("mock_provider \"cloudcode\"")
    );
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".tftest.hcl") {
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(mock_provider_blocks(&text), canonical, "{}", path.display());
            assert!(
                !text.contains("source = \"./tests/mocks"),
                "{}: mock_provider source is Terraform-only",
                path.display()
            );
        }
    }
    assert_eq!(files, 6);
}

#[test]
fn modules_and_every_example_validate_against_the_real_alicloud_provider() {
    engine::each(&engine::smoke(), |e| {
        let wd = workdir(e);
        let dirs = [
            "modules/cloudcode",
            "modules/cloudcode-host",
            "modules/static-site",
        ]
        .into_iter()
        .chain(EXAMPLES);
        for dir in dirs {
            init(&wd, dir);
            let run = wd.tf_in(dir, &["validate", "-json", "-no-color"]).unwrap();
            let doc = run.json().unwrap();
            assert_eq!(
                doc["valid"], true,
                "{dir} is not valid under {e}: {}",
                run.stdout
            );
            assert!(errors(&run).is_empty(), "{dir} under {e}: {}", run.stdout);
            let warnings: Vec<_> = run
                .diagnostics()
                .into_iter()
                .filter(|d| d["severity"] == "warning")
                .collect();
            assert!(
                warnings.is_empty(),
                "{dir} has warnings under {e}: {warnings:?}"
            );
        }
    });
}

#[test]
fn the_real_provider_refuses_removed_arguments_and_bad_values_at_validate() {
    let wd = workdir(&engine::primary());
    let probe = |name: &str, instance_extra: &str, charge: &str| -> Vec<String> {
        let config = format!(
            r#"
terraform {{
  required_providers {{
    alicloud = {{
      source  = "aliyun/alicloud"
      version = "1.240.0"
    }}
  }}
}}

resource "alicloud_instance" "box" {{
  instance_type   = "ecs.e-c1m2.large"
  image_id        = "debian_12_6_x64_20G_alibase_20240711.vhd"
  security_groups = ["sg-123"]
  vswitch_id      = "vsw-123"
  status          = "Running"
{instance_extra}
}}

resource "alicloud_eip_address" "ip" {{
  internet_charge_type = {charge}
}}
"#
        );
        std::fs::create_dir_all(wd.path().join(name)).unwrap();
        wd.write(&format!("{name}/main.tf"), &config).unwrap();
        init(&wd, name);
        let run = wd.tf_in(name, &["validate", "-json", "-no-color"]).unwrap();
        errors(&run)
            .iter()
            .map(|d| d["summary"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // The arguments the module uses, with valid values: no error (status is updatable, PayByTraffic known).
    assert_eq!(
        probe("allowed", "", "\"PayByTraffic\""),
        Vec::<String>::new()
    );
    // Removed arguments and a value outside the provider's enumeration: one error each, naming it.
    let errs = probe(
        "refused",
        "  subnet_id    = \"vsw-123\"\n  io_optimized = \"optimized\"",
        "42",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.contains("subnet_id") && e.contains("[REMOVED]")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("io_optimized") && e.contains("[REMOVED]")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("expected internet_charge_type to be one of")),
        "{errs:#?}"
    );
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
            "cn_mirrors_use_the_in_vpc_apt_mirror",
            "an_explicit_apt_mirror_is_kept",
            "no_mirrors_no_mirror_settings",
        ],
    );
}

#[test]
fn suspend_plans_stopped_with_stop_charging_and_a_quiet_stack_and_an_idle_suspend_is_not_fought() {
    assert_file_passes(
        "suspend_resume.tftest.hcl",
        &[
            "create",
            "suspend_asks_for_a_stopped_instance_and_a_quiet_stack",
            "suspend",
            "resume_asks_for_a_running_instance",
            "resume",
            "an_idle_suspended_box_stays_stopped_while_running_is_null",
            "running_true_resumes_an_idle_suspended_box",
            "a_stale_tag_without_idle_suspend_does_not_keep_the_box_stopped",
            "a_resumed_box_with_the_tag_not_yet_cleared_keeps_running",
            "idle_suspend_gives_the_instance_a_role_limited_to_itself",
            "without_idle_suspend_there_is_no_role",
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
            "internationalised_domain_plans_its_records_in_ascii",
            "apex_domain_uses_the_at_record",
            "records_point_at_the_eip",
            "domain_outside_alibaba_dns_is_listed_for_manual_creation",
            "apps_on_their_own_names_get_records_and_path_apps_none",
            "app_records_are_listed_for_manual_creation_without_managed_dns",
            "managed_domain_missing_from_the_account_fails_with_advice",
        ],
    );
}

#[test]
fn preflight_refuses_a_new_box_with_its_sentence_and_shows_the_price_of_a_passing_one() {
    assert_file_passes(
        "preflight.tftest.hcl",
        &[
            "a_refused_preflight_stops_the_plan_before_anything_is_created",
            "a_passing_preflight_shows_the_monthly_price",
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
            "without_a_snapshot_the_image_goes_and_image_id_stays_ignored",
        ],
    );
}

#[test]
fn host_module_tests_plan_a_host_stack_and_refuse_bad_input_under_every_engine() {
    // modules/cloudcode-host/tests: the real cloudcode provider plans (no mock), the same runs under each engine.
    let expected = [
        "plan_of_a_host_stack_uses_the_hosts_sslip_name",
        "custom_domain_port_and_no_terminal",
        "host_that_is_not_an_address_or_name_is_refused",
        "ssh_port_out_of_range_is_refused",
        "upper_case_domain_is_served_in_lower_case",
        "domain_with_a_space_is_refused",
        "nip_io_names_the_host_without_a_domain",
        "unknown_fallback_domain_service_is_refused",
        "no_chat_bridge_by_default",
        "chat_bridge_with_telegram_and_a_permission_policy",
        "apps_and_static_sites_pass_through_with_their_urls",
        "no_apps_leaves_the_stack_without_them",
        "app_with_an_unknown_auth_is_refused",
        "app_with_both_image_and_build_is_refused",
    ];
    engine::each(&engine::smoke(), |e| {
        let wd = workdir(e);
        init(&wd, "modules/cloudcode-host");
        let (report, run) = wd.test_in("modules/cloudcode-host", &[]).unwrap();
        assert_eq!(
            report.summary["status"], "pass",
            "under {e}: {}\n{}\n{}",
            report.summary, run.stdout, run.stderr
        );
        let names: Vec<&str> = report.runs.keys().map(String::as_str).collect();
        let mut want = expected.to_vec();
        want.sort();
        assert_eq!(names, want, "under {e}");
        assert!(
            report.runs.values().all(|s| s == "pass"),
            "under {e}: {:?}",
            report.runs
        );
    });
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

    engine::each(&engine::smoke(), |e| {
        invalid_inputs_under(e, &tests_src, &messages, &cases)
    });
}

fn invalid_inputs_under(
    e: &Engine,
    tests_src: &str,
    messages: &BTreeMap<String, String>,
    cases: &[(String, String)],
) {
    // 1. As committed: every run passes because its variable's validation fails (expect_failures).
    let wd = workdir(e);
    init(&wd, "modules/cloudcode");
    let (report, run) = module_test(&wd, "validation.tftest.hcl");
    assert_eq!(
        report.summary["status"], "pass",
        "{}\n{}",
        run.stdout, run.stderr
    );
    assert_eq!(report.runs.len(), cases.len(), "{:?}", report.runs);

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
    let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
    let (_, run) = wd.test_in("modules/cloudcode", &filters).unwrap();
    assert!(!run.success, "runs without expect_failures must fail");
    let lines = run.json_lines();
    for (name, var) in cases {
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
