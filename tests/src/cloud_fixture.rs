//! The cloud path end to end: a repository example (with `modules/cloudcode` beside it) run by a real engine
//! and the real alicloud provider against the Alibaba Cloud API double, whose EIP is the test VM's address, so
//! `cloudcode_stack` deploys onto the VM standing in for the instance and the double plays the platform's
//! key-pair handling on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::ecs_double::EcsDouble;
use crate::engine::Engine;
use crate::stack_fixture::{API_KEY, PASSWORD};
use crate::terraform::{repo_root, Run, Workdir};
use crate::vm::{TestVm, VmImage};

pub const ACCESS_KEY: &str = "LTAI5tCloudPathDoubleKey";
pub const SECRET_KEY: &str = "cloud-path-double-test-secret";
/// The examples' default region.
pub const REGION: &str = "ap-southeast-1";

/// One example applied against one double.
pub struct CloudBox {
    pub double: EcsDouble,
    pub wd: Workdir,
    /// The example's directory inside the working directory, e.g. `examples/alicloud-basic`.
    pub dir: String,
    /// The SSH key the box is deployed with (`<path>` and `<path>.pub`).
    pub key_path: PathBuf,
    files: tempfile::TempDir,
}

/// What the double's provider blocks and the test VM need on top of a root module that uses `modules/cloudcode`, as
/// Terraform override files (root, module): the endpoints of the double, and for the stack the VM's local images
/// (nothing can be pulled there; with `agent`, the idle agent's too, for `idle_suspend_after`) and Caddy's internal CA
/// (no public ACME).
pub fn overrides(double: &EcsDouble, vm: &TestVm, agent: Option<&VmImage>) -> (String, String) {
    let addr = double.addr();
    // The alicloud block keeps the example's region (an override block merges into it).
    let providers = format!(
        r#"{alicloud}
provider "cloudcode" {{
  endpoints {{
    ecs = "https://{addr}"
    sts = "https://{addr}"
    bss = "https://{addr}"
  }}
}}
"#,
        alicloud = crate::alicloud_double_fixture::provider(double, None, None),
    );
    let img = |role: &str| {
        vm.image(role)
            .unwrap_or_else(|| panic!("test image {role}"))
            .clone()
    };
    let mut images = vec![img("caddy"), img("authelia"), img("devbox")];
    images.extend(agent.cloned());
    let stack = format!(
        r#"
resource "cloudcode_stack" "this" {{
  tls_mode = "internal"
  images = {{
{}
  }}
  image_archives = [{}]
}}
"#,
        images
            .iter()
            .map(|i| format!("    {} = \"{}\"", i.role, i.image))
            .collect::<Vec<_>>()
            .join("\n"),
        images
            .iter()
            .map(|i| format!("\"{}\"", i.archive.display()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    (providers, stack)
}

impl CloudBox {
    /// `examples/<example>` and `modules/cloudcode` copied into a working directory for `engine`, pointed at a
    /// new double (HTTPS, one access key, the VM's address as the only EIP, `cloudcode.test` as a DNS domain),
    /// deploying onto `vm`; `tfvars` is the example's `terraform.tfvars`, after `ssh_key_path`.
    pub fn new(
        engine: &Engine,
        provider_bin: &Path,
        vm: &TestVm,
        example: &str,
        tfvars: &str,
    ) -> Self {
        let double = EcsDouble::start_https().expect("double");
        double.add_access_key(ACCESS_KEY, SECRET_KEY);
        double.set_eip_addresses(vec![vm.ssh_host.clone()]);
        double.add_dns_domain("cloudcode.test");
        let authorized_keys = vm.root_authorized_keys();
        double.on_key_pair_boot(move |_instance, public_key| {
            // What the platform does on a boot with a key pair bound: root's authorized_keys is that key.
            let _ = std::fs::write(&authorized_keys, format!("{public_key}\n"));
        });

        let files = tempfile::tempdir().expect("tempdir");
        let ca = files.path().join("ca.pem");
        std::fs::write(&ca, double.ca_pem().expect("https")).expect("ca");
        // Alibaba Cloud key pairs are RSA (the module refuses others): a key of the box's own, which reaches the
        // VM only through the double's key-pair handling.
        let key_path = ssh_keygen_rsa(files.path(), "box_key");

        let mut wd = Workdir::with_alicloud(engine, provider_bin).expect("workdir");
        let root = repo_root();
        let dir = format!("examples/{example}");
        wd.copy_tree(&root.join(&dir), &dir).expect("example");
        // CLOUDCODE_TEST_MODULE_DIR: another copy of the module (e.g. with one fix undone, to show the scenario
        // fails without it); the repository's by default.
        let module = std::env::var_os("CLOUDCODE_TEST_MODULE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("modules/cloudcode"));
        wd.copy_tree(&module, "modules/cloudcode").expect("module");
        let agent = crate::im_image::agent_image(files.path()).expect("the agent image");
        let (providers, stack) = overrides(&double, vm, Some(&agent));
        wd.write(&format!("{dir}/double_override.tf"), &providers)
            .expect("override");
        wd.write("modules/cloudcode/test_vm_override.tf", &stack)
            .expect("override");
        wd.write(
            &format!("{dir}/terraform.tfvars"),
            &format!("ssh_key_path = \"{}\"\n{tfvars}", key_path.display()),
        )
        .expect("tfvars");
        for (k, v) in [
            ("ALICLOUD_ACCESS_KEY", ACCESS_KEY),
            ("ALICLOUD_SECRET_KEY", SECRET_KEY),
            ("SSL_CERT_FILE", &ca.display().to_string()),
            ("TF_VAR_admin_password", PASSWORD),
            ("TF_VAR_llm_api_key", API_KEY),
            ("CLOUDCODE_ECS_POLL_INTERVAL", "200ms"),
            ("CLOUDCODE_ECS_RETRY_DELAY", "50ms"),
        ] {
            wd.set_env(k, v);
        }
        wd.init_in(&dir).expect("init");
        Self {
            double,
            wd,
            dir,
            key_path,
            files,
        }
    }

    /// Runs `<engine> <args> -no-color -input=false <-var …>` in the example.
    pub fn tf(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["-no-color".into(), "-input=false".into()]);
        for (k, v) in vars {
            all.push(format!("-var={k}={v}"));
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.wd.tf_in(&self.dir, &refs).expect("engine ran")
    }

    /// `apply -auto-approve` with `vars`; fails the test (with the double's calls) unless it succeeded.
    pub fn apply(&self, vars: &[(&str, &str)]) -> Run {
        let run = self.tf(&["apply", "-auto-approve"], vars);
        assert!(
            run.success,
            "apply {vars:?} failed:\n{}{}\nlast calls: {:#?}",
            run.stdout,
            run.stderr,
            self.last_calls(15)
        );
        run
    }

    /// `destroy -auto-approve` with `vars`, which must succeed.
    pub fn destroy(&self, vars: &[(&str, &str)]) -> Run {
        let run = self.tf(&["destroy", "-auto-approve"], vars);
        assert!(
            run.success,
            "destroy failed:\n{}{}\nlast calls: {:#?}",
            run.stdout,
            run.stderr,
            self.last_calls(15)
        );
        run
    }

    /// The plan with `vars` as `show -json` reads it.
    pub fn plan(&self, vars: &[(&str, &str)]) -> Plan {
        let run = self.tf(&["plan", "-out=cloud.tfplan"], vars);
        assert!(
            run.success,
            "plan {vars:?} failed:\n{}{}",
            run.stdout, run.stderr
        );
        let shown = self
            .wd
            .tf_in(&self.dir, &["show", "-json", "cloud.tfplan"])
            .expect("show");
        assert!(shown.success, "show: {}", shown.stderr);
        Plan(serde_json::from_str(&shown.stdout).expect("plan JSON"))
    }

    /// A plan with `vars` that the engine refuses; its output with the engine's line wrapping undone (every run
    /// of white space is one space).
    pub fn refused_plan(&self, vars: &[(&str, &str)]) -> String {
        let run = self.tf(&["plan"], vars);
        assert!(
            !run.success,
            "the plan {vars:?} should be refused:\n{}",
            run.stdout
        );
        format!("{}{}", run.stdout, run.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A plan with `args` added to the example's `module "cloudcode"` block (an override file, removed after):
    /// it must be refused; its output as [`CloudBox::refused_plan`] gives it.
    pub fn refused_with_module_args(&self, args: &str) -> String {
        let file = self
            .wd
            .path()
            .join(&self.dir)
            .join("module_args_override.tf");
        std::fs::write(&file, format!("module \"cloudcode\" {{\n{args}\n}}\n")).expect("override");
        let refused = self.refused_plan(&[]);
        std::fs::remove_file(&file).expect("override removed");
        refused
    }

    /// The root module's outputs.
    pub fn outputs(&self) -> Json {
        let run = self
            .wd
            .tf_in(&self.dir, &["output", "-json"])
            .expect("output");
        serde_json::from_str(&run.stdout).expect("outputs JSON")
    }

    /// A fresh RSA key pair for the box, as (private key path, public key line).
    pub fn new_ssh_key(&self, name: &str) -> (PathBuf, String) {
        let path = ssh_keygen_rsa(self.files.path(), name);
        let public = std::fs::read_to_string(path.with_extension("pub")).expect("pub");
        (path, public.trim().to_string())
    }

    /// The last `n` calls the double saw, as `Action → outcome`.
    pub fn last_calls(&self, n: usize) -> Vec<String> {
        let calls = self.double.calls();
        calls[calls.len().saturating_sub(n)..]
            .iter()
            .map(|c| format!("{} → {}", c.action, c.outcome))
            .collect()
    }

    /// How many calls of each action the double has answered so far.
    pub fn call_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for c in self.double.calls() {
            *counts.entry(c.action).or_insert(0) += 1;
        }
        counts
    }
}

/// `ssh-keygen -t rsa` into `dir/name` (and `name.pub`), no passphrase.
fn ssh_keygen_rsa(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    path
}

/// A saved plan as JSON.
pub struct Plan(pub Json);

impl Plan {
    /// (address, actions) of every resource the plan changes (no-ops and reads left out).
    pub fn changes(&self) -> Vec<(String, Vec<String>)> {
        self.0["resource_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|rc| {
                let actions: Vec<String> = rc["change"]["actions"]
                    .as_array()?
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                let quiet = actions.iter().all(|a| a == "no-op" || a == "read");
                (!quiet).then(|| {
                    (
                        rc["address"].as_str().unwrap_or_default().to_string(),
                        actions,
                    )
                })
            })
            .collect()
    }

    /// The planned attributes of `address` after the change.
    pub fn after(&self, address: &str) -> Json {
        self.0["resource_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|rc| rc["address"] == address)
            .map(|rc| rc["change"]["after"].clone())
            .unwrap_or(Json::Null)
    }

    /// Why the engine replaces `address`: its `replace_paths` and `action_reason`.
    pub fn why_replaced(&self, address: &str) -> String {
        self.0["resource_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|rc| rc["address"] == address)
            .map(|rc| format!("{} {}", rc["action_reason"], rc["change"]["replace_paths"]))
            .unwrap_or_default()
    }

    /// Addresses the plan deletes or replaces.
    pub fn deletions(&self) -> Vec<String> {
        self.changes()
            .into_iter()
            .filter(|(_, a)| a.iter().any(|x| x == "delete"))
            .map(|(addr, _)| addr)
            .collect()
    }
}
