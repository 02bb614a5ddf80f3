//! Shared pieces of the stack scenarios on the test VM (used by `stack_lifecycle`, `reliability` and the
//! bench binary): the stack's HCL pointed at the VM (or at a proxy in front of it), the test secrets, curl through
//! Caddy, commands in the VM, container ids, plan/apply wrappers and the secret scan.

use std::process::Command;

use crate::authelia::{Browser, Totp, Transport};
use crate::terraform::{Run, Workdir};
use crate::vm::TestVm;

pub const PASSWORD: &str = "vm-test-password-6631-horse";
pub const API_KEY: &str = "sk-test-apikey-0f1e2d3c4b5a69788796";
pub const DOMAIN: &str = "box.cloudcode.test";
/// The session cookie's name in the rendered Authelia configuration.
pub const SESSION_COOKIE: &str = "cloudcode_session";

/// The stack's configuration, connecting to the VM's sshd directly.
pub fn stack_hcl(vm: &TestVm, extra: &str) -> String {
    stack_hcl_at(vm, &vm.ssh_host, vm.ssh_port, extra)
}

/// The stack's configuration, connecting to `host:port` (e.g. a [`crate::delay_proxy::DelayProxy`] in front
/// of the VM's sshd); `extra` lines go inside the resource block.
pub fn stack_hcl_at(vm: &TestVm, host: &str, port: u16, extra: &str) -> String {
    let img = |role: &str| {
        vm.image(role)
            .unwrap_or_else(|| panic!("test image {role}"))
            .clone()
    };
    let (caddy, auth, devbox) = (img("caddy"), img("authelia"), img("devbox"));
    format!(
        r#"
variable "admin_password" {{
  type      = string
  ephemeral = true
  default   = null
}}

variable "llm_api_key" {{
  type      = string
  ephemeral = true
  default   = null
}}

resource "cloudcode_stack" "box" {{
  host             = "{host}"
  port             = {port}
  private_key_path = "{key}"
  domain           = "{DOMAIN}"
  tls_mode         = "internal"

  admin_username            = "admin"
  admin_email               = "admin@example.com"
  admin_password_wo         = var.admin_password
  admin_password_wo_version = 1
  llm_provider              = "anthropic"
  llm_api_key_wo            = var.llm_api_key
  llm_api_key_wo_version    = 1

  images = {{
    caddy    = "{caddy}"
    authelia = "{auth}"
    devbox   = "{devbox}"
  }}
  image_archives = ["{caddy_tar}", "{auth_tar}", "{devbox_tar}"]
  timeouts = {{
    create = "15m"
  }}
{extra}
}}
"#,
        host = host,
        port = port,
        key = vm.private_key_path.display(),
        caddy = caddy.image,
        auth = auth.image,
        devbox = devbox.image,
        caddy_tar = caddy.archive.display(),
        auth_tar = auth.archive.display(),
        devbox_tar = devbox.archive.display(),
    )
}

/// The stack's HCL with OpenCode pointed at an LLM double (`openai_compatible`, its base URL and model).
pub fn with_llm_double(hcl: &str, llm: &crate::llm_double::LlmDouble) -> String {
    hcl.replace(
        r#"llm_provider              = "anthropic""#,
        &format!(
            "llm_provider = \"openai_compatible\"\n  llm_base_url = \"{}\"\n  llm_model = \"{}\"",
            llm.base_url(),
            llm.model_id()
        ),
    )
}

/// `cloudcode deploy --host … --yes` onto the VM as `domain`, with the VM's local images (nothing can be
/// pulled there) and Caddy's internal CA (no public DNS).
pub fn cli_deploy_args(vm: &TestVm, domain: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "deploy",
        "--host",
        &format!("root@{}:{}", vm.ssh_host, vm.ssh_port),
        "--ssh-key",
        &vm.private_key_path.display().to_string(),
        "--domain",
        domain,
        "--admin-email",
        "admin@example.com",
        "--llm-provider",
        "anthropic",
        "--tls-mode",
        "internal",
        "--yes",
    ]
    .map(str::to_string)
    .to_vec();
    for (role, name) in [
        ("caddy", "caddy"),
        ("authelia", "authelia"),
        ("devbox", "devbox"),
    ] {
        let img = vm
            .image(name)
            .unwrap_or_else(|| panic!("test image {name}"));
        args.push("--image".into());
        args.push(format!("{role}={}", img.image));
        args.push("--image-archive".into());
        args.push(img.archive.display().to_string());
    }
    args
}

/// `curl` from this host to the VM's Caddy, with the site's name resolved to the VM; `session` is the value of
/// Authelia's session cookie (from [`sign_in`]).
pub fn curl(vm: &TestVm, path: &str, session: Option<&str>) -> (u16, String, String) {
    curl_at(&vm.ssh_host, path, session)
}

/// [`curl`] to the VM at `vm_ip` (for threads: a `TestVm` cannot cross them).
pub fn curl_at(vm_ip: &str, path: &str, session: Option<&str>) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--max-time", "20", "-D", "-", "--resolve"])
        .arg(format!("{DOMAIN}:443:{vm_ip}"))
        .arg(format!("https://{DOMAIN}{path}"));
    if let Some(c) = session {
        cmd.args(["-H", &format!("Cookie: {SESSION_COOKIE}={c}")]);
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

/// What [`with_request_loop`] saw: requests sent, and the status of each that failed (0: no answer).
#[derive(Debug, Default)]
pub struct RequestLoop {
    pub total: u64,
    pub failed: Vec<(String, u16)>,
}

/// Requests through Caddy to OpenCode and ttyd in turn (signed in: `session` is Authelia's session cookie), one
/// after the other, while `f` runs; anything but a 200 is a failure.
pub fn with_request_loop<T>(vm_ip: &str, session: &str, f: impl FnOnce() -> T) -> (T, RequestLoop) {
    with_requests(
        |n| {
            let path = if n % 2 == 0 {
                "/global/health"
            } else {
                "/terminal/"
            };
            (path.to_string(), curl_at(vm_ip, path, Some(session)).0)
        },
        f,
    )
}

/// `request(n)` → (what was asked, status), the n-th one, one after the other while `f` runs; anything but a 200
/// is a failure.
pub fn with_requests<T>(
    request: impl Fn(u64) -> (String, u16) + Sync,
    f: impl FnOnce() -> T,
) -> (T, RequestLoop) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let looper = s.spawn(|| {
            let mut seen = RequestLoop::default();
            while !stop.load(Ordering::SeqCst) {
                let (what, code) = request(seen.total);
                seen.total += 1;
                if code != 200 {
                    seen.failed.push((what, code));
                }
            }
            seen
        });
        let out = f();
        stop.store(true, Ordering::SeqCst);
        (out, looper.join().expect("the request loop panicked"))
    })
}

/// The notifier file of the stack's Authelia (inside its container), as `cloudcode otc` reads it over SSH.
pub fn notification(vm: &TestVm) -> String {
    in_vm(
        vm,
        &format!(
            "docker exec $(docker ps -q --filter label=com.docker.compose.service=authelia) cat {}",
            cloudcode_bundle::render::NOTIFICATION_FILE
        ),
    )
}

/// The last one-time code Authelia sent, parsed as `cloudcode otc` parses it.
pub fn read_otc(vm: &TestVm) -> String {
    let text = notification(vm);
    cloudcode_cli::commands::otc::last_code(&text)
        .unwrap_or_else(|| panic!("no one-time code in the notification:\n{text}"))
}

/// A browser of the stack's portal through the VM's Caddy on `port` (None: 443).
pub fn browser(vm: &TestVm, port: Option<u16>) -> Browser {
    let transport = Transport::Caddy {
        ip: vm.ssh_host.clone(),
        https_port: port.unwrap_or(443),
    };
    Browser::new(transport, DOMAIN, port)
}

/// Signs `admin` in with two factors as a new user would: password, elevation with the one-time code from the
/// notifier, TOTP registration, TOTP login. The browser holds the session; the TOTP entry logs in again.
pub fn sign_in(vm: &TestVm) -> (Browser, Totp) {
    let mut b = browser(vm, None);
    b.first_factor("admin", PASSWORD).expect_ok(200, "password");
    b.elevate(&|| read_otc(vm));
    let mut totp = b.register_totp();
    b.totp_login(&mut totp).expect_ok(200, "TOTP login");
    (b, totp)
}

pub fn in_vm(vm: &TestVm, script: &str) -> String {
    vm.exec_in_vm_ok(script)
        .unwrap_or_else(|e| panic!("in VM `{script}`: {e}"))
}

/// Container id per Compose service, read on the host.
pub fn container_ids(vm: &TestVm) -> std::collections::BTreeMap<String, String> {
    in_vm(
        vm,
        "docker ps -a --filter label=com.docker.compose.project=cloudcode --format '{{.Label \"com.docker.compose.service\"}} {{.ID}}'",
    )
    .lines()
    .filter_map(|l| l.split_once(' ').map(|(s, id)| (s.to_string(), id.to_string())))
    // The devbox by the name users know, whichever colour runs (a second one left behind shows as itself).
    .fold(std::collections::BTreeMap::new(), |mut m, (s, id)| {
        let s = match s.as_str() {
            "devbox_blue" | "devbox_green" if !m.contains_key("devbox") => "devbox".to_string(),
            _ => s,
        };
        m.insert(s, id);
        m
    })
}

/// Asserts that exactly the services in `recreated` got new containers between two [`container_ids`] readings
/// (and that no service appeared or vanished).
pub fn assert_recreated(
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
    recreated: &[&str],
) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the same services"
    );
    for (service, id) in before {
        let changed = after.get(service) != Some(id);
        assert_eq!(
            changed,
            recreated.contains(&service.as_str()),
            "{service} was {}; exactly {recreated:?} should be recreated",
            if changed { "recreated" } else { "kept" }
        );
    }
}

/// Replaces the working directory's `main.tf` with `hcl` under the test's provider requirements.
pub fn write_main(wd: &Workdir, hcl: &str) {
    wd.write(
        "main.tf",
        &format!("{}\n{hcl}", crate::terraform::required_providers()),
    )
    .unwrap();
}

/// Imports the stack the VM runs into a new working directory of `hcl` (which holds the `cloudcode_stack.box`
/// resource): the plan says one to import, the import apply restarts no container, the next plan is empty.
/// Returns the working directory.
pub fn assert_import_adopts(
    e: &crate::engine::Engine,
    vm: &TestVm,
    hcl: &str,
    provider: &std::path::Path,
) -> Workdir {
    let import_hcl = format!(
        "{hcl}\nimport {{\n  to = cloudcode_stack.box\n  id = \"root@{}:{}/opt/cloudcode\"\n}}\n",
        vm.ssh_host, vm.ssh_port
    );
    let mut adopt = Workdir::new_on(e, provider, &import_hcl).unwrap();
    // Import connects with the provider's key (the resource's private_key_path is not known before it).
    adopt.set_env(
        "CLOUDCODE_SSH_PRIVATE_KEY",
        &std::fs::read_to_string(&vm.private_key_path).unwrap(),
    );
    adopt.init().unwrap();
    let (code, run) = plan_exit(&adopt);
    assert_eq!(code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1 to import"), "{}", run.stdout);
    let ids = container_ids(vm);
    apply_ok(&adopt);
    assert_eq!(container_ids(vm), ids, "importing restarted containers");
    let (code, run) = plan_exit(&adopt);
    assert_eq!(code, 0, "plan after import not empty:\n{}", run.stdout);
    adopt
}

pub fn apply_ok(wd: &Workdir) -> Run {
    let run = wd.apply().unwrap();
    assert!(
        run.success,
        "apply failed: {:#?}\n{}",
        run.diagnostics(),
        run.stderr
    );
    run
}

/// `terraform plan -detailed-exitcode`: 0 = no changes, 2 = changes.
pub fn plan_exit(wd: &Workdir) -> (i32, Run) {
    let run = wd
        .tf(&["plan", "-detailed-exitcode", "-no-color", "-input=false"])
        .unwrap();
    let code = if run.success {
        0
    } else if run.stdout.contains("Plan:") {
        2
    } else {
        1
    };
    (code, run)
}

pub fn assert_no_secret(what: &str, text: &str) {
    for (name, secret) in [("password", PASSWORD), ("API key", API_KEY)] {
        assert!(!text.contains(secret), "the {name} appears in {what}");
    }
}

/// `SHA256:...` of a public key line, computed with ssh-keygen.
pub fn fingerprint(public_line: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k.pub");
    std::fs::write(&f, format!("{public_line}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&f)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}
