//! Scenario tests of the test VM fixture itself (tests/src/vm): before the provider relies on it, prove that
//! a fresh VM takes an offline `apt-get install docker.io` over real SSH, runs the three locally built images
//! with Compose, serves OpenCode's health through Caddy, runs the Authelia double's image, and leaves nothing
//! behind when it stops.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloudcode_tests::vm::{ensure_built, repo_root, vm_script, TestVm, VmOptions};

/// Runs `remote` over real ssh; panics with stdout/stderr unless it exits 0. Returns stdout.
fn ssh_ok(vm: &TestVm, remote: &str) -> String {
    let out = vm.ssh(remote).output().expect("run ssh");
    assert!(
        out.status.success(),
        "ssh `{remote}` failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Streams a local file to `remote_path` over ssh (`cat >`).
fn upload(vm: &TestVm, local: &Path, remote_path: &str) {
    let file = fs::File::open(local).unwrap_or_else(|e| panic!("open {}: {e}", local.display()));
    let status = vm
        .ssh(&format!("cat > '{remote_path}'"))
        .stdin(Stdio::from(file))
        .status()
        .expect("run ssh");
    assert!(status.success(), "upload of {} failed", local.display());
}

fn host_mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

fn host_netns() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_links() -> String {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_iptables() -> Option<String> {
    let out = Command::new("iptables").args(["-S"]).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Asserts that a stopped VM left no namespace, process, mount, link, cgroup or host network change.
fn assert_no_trace(
    netns: &str,
    slot: u32,
    pid1: u32,
    ip_forward_before: &str,
    iptables_before: &Option<String>,
) {
    let name_re = format!("{netns} ");
    assert!(
        !host_netns()
            .lines()
            .any(|l| l == netns || l.starts_with(&name_re)),
        "network namespace {netns} still exists"
    );
    assert!(
        !Path::new(&format!("/proc/{pid1}")).exists(),
        "the VM's PID 1 ({pid1}) still runs"
    );
    let slot_dir = format!("/vms/slot{slot}/");
    assert!(
        !host_mountinfo().contains(&slot_dir),
        "mounts of slot {slot} remain:\n{}",
        host_mountinfo()
    );
    assert!(
        !host_links().contains(&format!("{netns}h")),
        "veth {netns}h still exists"
    );
    for controller in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let leftover = controller.path().join(format!("cloudcode-testvm-{slot}"));
        assert!(!leftover.exists(), "cgroup {} remains", leftover.display());
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        ip_forward_before,
        "the host's ip_forward changed"
    );
    let iptables_after = host_iptables();
    assert_eq!(
        &iptables_after, iptables_before,
        "the host's iptables rules changed"
    );
    if let Some(rules) = iptables_after {
        assert!(
            !rules.contains("DOCKER"),
            "docker chains leaked into the host:\n{rules}"
        );
    }
    assert!(
        !host_links().contains("docker0"),
        "docker0 leaked into the host namespace"
    );
}

#[test]
fn fresh_vm_installs_docker_offline_serves_opencode_through_caddy_and_runs_the_authelia_double() {
    let ip_forward_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let iptables_before = host_iptables();

    let t = Instant::now();
    let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
    eprintln!(
        "VM {} up in {:?} (vm.sh boot {} ms)",
        vm.netns,
        t.elapsed(),
        vm.boot_ms
    );
    let (netns, slot, pid1) = (vm.netns.clone(), vm.slot, vm.pid1());

    // A fresh VM: reachable with the generated key and the pinned host key, and no Docker yet.
    assert_eq!(ssh_ok(&vm, "hostname").trim(), vm.netns);
    let no_docker = vm.ssh("command -v docker").output().unwrap();
    assert!(
        !no_docker.status.success(),
        "the fresh VM already has docker"
    );
    // No route out of the VM: only its own /30.
    let routes = vm.exec_in_vm_ok("ip route").unwrap();
    assert!(
        !routes.contains("default"),
        "the VM has a default route: {routes}"
    );

    // Like unattended-upgrades on a fresh Ubuntu, something holds dpkg's lock for a while: an install that
    // does not wait fails, one that waits for the lock goes through.
    vm.hold_apt_lock(4).unwrap();
    let impatient = vm.ssh("apt-get install -y -q docker.io").output().unwrap();
    assert!(
        !impatient.status.success(),
        "apt-get ignored the held dpkg lock"
    );
    assert!(String::from_utf8_lossy(&impatient.stderr).contains("lock"));

    // The provider's install step, offline.
    let t = Instant::now();
    ssh_ok(&vm, "export DEBIAN_FRONTEND=noninteractive; apt-get -o DPkg::Lock::Timeout=60 update -q && apt-get -o DPkg::Lock::Timeout=60 install -y -q docker.io");
    eprintln!(
        "apt-get install docker.io (after waiting for the lock): {:?}",
        t.elapsed()
    );
    assert_eq!(ssh_ok(&vm, "systemctl is-active docker").trim(), "active");
    let info = ssh_ok(&vm, "docker info --format '{{.Driver}} {{.CgroupVersion}}'");
    eprintln!("docker info: {}", info.trim());
    assert!(ssh_ok(&vm, "docker compose version").contains("v2."));

    // The three archives, uploaded and loaded like the provider's image_archives.
    let t = Instant::now();
    for image in vm.images() {
        let remote = format!("/tmp/{}.tar", image.role);
        upload(&vm, &image.archive, &remote);
        let loaded = ssh_ok(&vm, &format!("docker load -i {remote} && rm {remote}"));
        assert!(loaded.contains(&image.image), "{loaded}");
    }
    eprintln!("upload + docker load of 3 archives: {:?}", t.elapsed());

    // A tiny stack of two images: Caddy -> devbox (OpenCode + ttyd).
    let fixtures = repo_root().join("tests/vm/fixtures");
    ssh_ok(&vm, "mkdir -p /opt/smoke");
    upload(
        &vm,
        &fixtures.join("compose.yaml"),
        "/opt/smoke/compose.yaml",
    );
    upload(&vm, &fixtures.join("Caddyfile"), "/opt/smoke/Caddyfile");
    let image = |role: &str| {
        vm.image(role)
            .unwrap_or_else(|| panic!("no {role} image"))
            .image
            .clone()
    };
    let env = format!(
        "CADDY_IMAGE={} DEVBOX_IMAGE={}",
        image("caddy"),
        image("devbox"),
    );
    let t = Instant::now();
    ssh_ok(
        &vm,
        &format!("cd /opt/smoke && {env} docker compose -p smoke up -d"),
    );

    // Through the published port inside the VM's namespace.
    let health_cmd = "curl -sf -m 3 http://127.0.0.1:8080/global/health";
    let deadline = Instant::now() + Duration::from_secs(120);
    let health = loop {
        let out = vm.ssh(health_cmd).output().unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "OpenCode never became healthy; logs:\n{}",
            ssh_ok(
                &vm,
                "cd /opt/smoke && docker compose -p smoke logs --tail 30 2>&1"
            )
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("compose up -> healthy: {:?}", t.elapsed());
    let health: serde_json::Value = serde_json::from_str(&health).expect("health is JSON");
    assert_eq!(health["healthy"], serde_json::Value::Bool(true), "{health}");

    // `docker exec` runs inside the container (regression: with the VM as a chroot it landed in the host's
    // root and PID namespace), and the devbox runs the bundle's entrypoint: OpenCode as the user `dev`.
    let init = ssh_ok(&vm, "docker exec smoke-devbox-1 cat /proc/1/cmdline");
    assert!(
        init.contains("cloudcode-entrypoint"),
        "docker exec is not in the container: {init:?}"
    );
    let opencode_user = ssh_ok(&vm, "docker exec smoke-devbox-1 ps -o user= -C opencode");
    assert_eq!(
        opencode_user.lines().next().map(str::trim),
        Some("dev"),
        "{opencode_user}"
    );
    // The Authelia double's image runs in the VM: its libraries load, and like Authelia it refuses to start
    // without a configuration, in one line.
    let out = vm
        .exec_in_vm(&format!("docker run --rm {} 2>&1", image("authelia")))
        .unwrap();
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Can't continue due to the errors loading the configuration"),
        "{}",
        out.stdout
    );
    // ttyd answers under /terminal/.
    let terminal = ssh_ok(&vm, "curl -sf http://127.0.0.1:8080/terminal/");
    assert!(
        terminal.contains("<title>ttyd - Terminal</title>"),
        "{terminal}"
    );

    // dockerd can be stopped and started from outside (for failure scenarios).
    vm.stop_dockerd().unwrap();
    assert_eq!(
        vm.exec_in_vm("systemctl is-active docker")
            .unwrap()
            .stdout
            .trim(),
        "inactive"
    );
    vm.start_dockerd().unwrap();
    assert_eq!(ssh_ok(&vm, "systemctl is-active docker").trim(), "active");

    let t = Instant::now();
    vm.shutdown().expect("clean shutdown");
    eprintln!("teardown: {:?}", t.elapsed());
    assert_no_trace(&netns, slot, pid1, &ip_forward_before, &iptables_before);
}

#[test]
fn two_vms_run_side_by_side_and_a_replaced_host_key_is_refused_by_the_pinned_client() {
    let ip_forward_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let iptables_before = host_iptables();
    let a = TestVm::start(VmOptions::default()).expect("start VM a");
    let mut b = TestVm::start(VmOptions {
        user: "ops".to_string(),
    })
    .expect("start VM b");
    assert_ne!(a.netns, b.netns);
    assert_ne!(a.ssh_host, b.ssh_host);
    assert_ne!(a.host_key(), b.host_key(), "each VM gets its own host keys");
    assert_eq!(ssh_ok(&a, "id -un").trim(), "root");
    assert_eq!(ssh_ok(&b, "id -un").trim(), "ops");
    assert_eq!(ssh_ok(&b, "sudo -n id -un").trim(), "root");

    // Replace b's host key: a client pinned to the old key refuses, the new pin works.
    let old_known_hosts = b.work_dir().join("known_hosts.old");
    fs::copy(&b.known_hosts_path, &old_known_hosts).unwrap();
    let old_key = b.host_key().to_string();
    let new_key = b.restart_sshd_with_new_host_key().unwrap();
    assert_ne!(old_key, new_key);
    let refused = b.ssh_pinned(&old_known_hosts, "true").output().unwrap();
    assert!(
        !refused.status.success(),
        "ssh accepted a replaced host key"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("Host key verification failed"),
        "{stderr}"
    );
    assert_eq!(ssh_ok(&b, "id -un").trim(), "ops");

    let traces = [
        (a.netns.clone(), a.slot, a.pid1()),
        (b.netns.clone(), b.slot, b.pid1()),
    ];
    a.shutdown().unwrap();
    b.shutdown().unwrap();
    for (netns, slot, pid1) in traces {
        assert_no_trace(&netns, slot, pid1, &ip_forward_before, &iptables_before);
    }
}

#[test]
fn vm_is_torn_down_when_its_owner_dies_without_drop() {
    ensure_built().unwrap();
    let ip_forward_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let iptables_before = host_iptables();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(keygen.success());
    // The owner holds the write end of the lifeline; killing it stands for a test process that dies (or a VM
    // kept in a static, which is never dropped).
    let mut owner = Command::new("sleep")
        .arg("600")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lifeline = owner.stdout.take().unwrap();
    let mut runner = Command::new("bash")
        .arg(vm_script("vm.sh"))
        .arg("--authorized-key")
        .arg(key.with_extension("pub"))
        .stdin(Stdio::from(lifeline))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(runner.stdout.take().unwrap()));
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.starts_with("ready "), "{ready}");
    let field = |k: &str| {
        ready
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
            .unwrap()
    };
    let (netns, slot, pid1): (String, u32, u32) = (
        field("ns"),
        field("slot").parse().unwrap(),
        field("pid1").parse().unwrap(),
    );
    assert!(Path::new(&format!("/proc/{pid1}")).exists());

    owner.kill().unwrap();
    owner.wait().unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "down");
    assert!(runner.wait().unwrap().success());
    assert_no_trace(&netns, slot, pid1, &ip_forward_before, &iptables_before);
}
