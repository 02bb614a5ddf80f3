//! `cloudcode_stack` through real Terraform on the test VM (a fresh Debian without Docker, real sshd, real
//! dockerd once installed, real Caddy, OpenCode and ttyd; Authelia is its contract double):
//! first deploy, empty second plan, a one-setting change touching only what it affects, drift from a hand edit
//! and a stopped container, a replaced host key, import, destroy — and no secret anywhere in state, plan or logs.
//!
//! The scenarios share one VM (a fresh VM is the expensive part); each step says what it proves.

use std::time::Instant;

use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{
    apply_ok, assert_import_adopts, assert_no_secret, assert_recreated, container_ids, curl,
    fingerprint, in_vm, plan_exit, sign_in, stack_hcl, with_request_loop, write_main, API_KEY,
    DOMAIN, PASSWORD,
};
use cloudcode_tests::terraform::Workdir;
use cloudcode_tests::vm::{TestVm, VmOptions};

#[test]
fn fresh_vm_deploy_change_drift_import_and_destroy() {
    engine::once(&engine::scenario(Kind::Tofu), |e| {
        let mut vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let mut wd = Workdir::new_on(e, provider_bin!(), &stack_hcl(&vm, "")).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env("TF_VAR_llm_api_key", API_KEY);
        wd.init().unwrap();

        // 1. A fresh VM without Docker: apply installs Docker and deploys.
        assert!(
            in_vm(&vm, "command -v docker || echo none").contains("none"),
            "the VM must start without Docker"
        );
        let started = Instant::now();
        wd.set_env("TF_LOG", "trace");
        let first = apply_ok(&wd);
        let first_deploy = started.elapsed();
        eprintln!("first deploy: {first_deploy:?}");
        // The three image archives crossed the wire while Docker was being installed, and no copy stays behind.
        let staged = first
            .stderr
            .lines()
            .filter(|l| l.contains("sending image archive while Docker is installed"))
            .count();
        assert_eq!(staged, 3, "archives sent during the Docker install");
        let images = in_vm(&vm, "ls -a /opt/cloudcode/.images");
        assert!(
            !images.lines().any(|l| l.contains(".tar")),
            "an archive copy stays on the host: {images}"
        );
        assert_eq!(
            images.lines().filter(|l| l.ends_with(".loaded")).count(),
            3,
            "{images}"
        );
        assert_no_secret(
            "TF_LOG=trace output of the first apply",
            &format!("{}{}", first.stdout, first.stderr),
        );
        wd.set_env("TF_LOG", "");
        let state = wd.state_text();
        assert_no_secret("the state", &state);
        let show = wd.tf(&["show", "-json"]).unwrap().ok().unwrap();
        let values = &show.json().unwrap()["values"]["root_module"]["resources"][0]["values"];
        assert_eq!(values["services"]["devbox"], "running", "{values:#}");
        assert!(
            values["host_key"].as_str().unwrap().starts_with("ssh-"),
            "host key recorded on first use"
        );
        assert!(
            values["files"]["docker-compose.yml"]
                .as_str()
                .unwrap()
                .len()
                == 64
        );
        assert_eq!(values["url"], format!("https://{DOMAIN}/"));
        assert_eq!(
            values["authelia_image"],
            vm.image("authelia").unwrap().image.as_str(),
            "the deployed Authelia image is recorded"
        );

        // Through Caddy and Authelia (the contract double): without a session the site sends the browser to
        // auth.<domain>; signed in with two factors, OpenCode and ttyd answer (the login flows in detail:
        // tests/tests/login_flows.rs).
        let (code, head, _) = curl(&vm, "/global/health", None);
        assert_eq!(code, 302, "{head}");
        assert!(
            head.to_lowercase()
                .contains(&format!("location: https://auth.{DOMAIN}/?rd=")),
            "{head}"
        );
        let (browser, _totp) = sign_in(&vm);
        let session = browser.cookie.clone().expect("a session cookie");
        let (code, _, body) = curl(&vm, "/global/health", Some(&session));
        if code != 200 {
            let auth = vm.exec_in_vm(
                "c=$(docker ps -q --filter label=com.docker.compose.service=authelia); docker logs $c 2>&1 | tail -20",
            );
            panic!("signed in: HTTP {code}: {body}\nauth service: {auth:#?}");
        }
        let health: serde_json::Value = serde_json::from_str(&body).expect("health JSON");
        assert_eq!(health["healthy"], true, "{body}");
        let (code, _, body) = curl(&vm, "/terminal/", Some(&session));
        assert_eq!(code, 200, "ttyd: {body}");
        assert!(body.contains("<title>ttyd - Terminal</title>"), "{body}");
        // The secrets were generated on the host, 0600, and never left it.
        let modes = in_vm(&vm, "stat -c '%a %n' /opt/cloudcode/secrets/*");
        assert!(
            modes.lines().count() == 3 && modes.lines().all(|l| l.starts_with("600 ")),
            "{modes}"
        );
        let session_secret = in_vm(&vm, "cat /opt/cloudcode/secrets/authelia_session_secret")
            .trim()
            .to_string();
        assert_eq!(session_secret.len(), 64);
        assert!(
            !state.contains(&session_secret),
            "an Authelia secret reached the state"
        );

        // 2. A second plan is empty (median of 3 timed for the closing note).
        let mut noop = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let (code, run) = plan_exit(&wd);
            noop.push(t.elapsed());
            assert_eq!(
                code, 0,
                "second plan not empty:\n{}{}",
                run.stdout, run.stderr
            );
        }
        noop.sort();
        eprintln!("no-op plan median: {:?}", noop[1]);

        // 2b. An Authelia older than the deployed one is refused at plan (its database, migrated by the newer
        //     one, would stop it), and planned only when allowed explicitly.
        let auth_image = vm.image("authelia").unwrap().image.clone();
        let older_image = auth_image.replace(":4.39.20", ":4.39.15");
        assert_ne!(
            older_image, auth_image,
            "the double is tagged with the pinned version"
        );
        let older = |extra: &str| {
            stack_hcl(&vm, extra).replace(
                &format!("authelia = \"{auth_image}\""),
                &format!("authelia = \"{older_image}\""),
            )
        };
        assert_ne!(older(""), stack_hcl(&vm, ""), "the image was replaced");
        let providers = cloudcode_tests::terraform::required_providers();
        wd.write("main.tf", &format!("{providers}\n{}", older("")))
            .unwrap();
        let refused = wd.tf(&["plan", "-json", "-input=false"]).unwrap();
        assert!(
            !refused.success,
            "a downgrade was planned:\n{}",
            refused.stdout
        );
        let errors = refused.errors();
        assert!(
            errors
                .iter()
                .any(|d| d["summary"] == "Authelia downgrade refused"
                    && d["detail"].as_str().is_some_and(|t| t.contains(&format!(
                        "{older_image} is older than the deployed {auth_image}"
                    )))),
            "{errors:#?}"
        );
        wd.write(
            "main.tf",
            &format!(
                "{providers}\n{}",
                older("  allow_authelia_downgrade = true\n")
            ),
        )
        .unwrap();
        let (code, run) = plan_exit(&wd);
        assert_eq!(
            code, 2,
            "allowed, the downgrade plans:\n{}{}",
            run.stdout, run.stderr
        );

        // 3. One setting: llm_model changes devbox/opencode.json only → only devbox is recreated, by a blue/green
        //    switch: requests through Caddy to OpenCode and ttyd all the while, none fails.
        let before = container_ids(&vm);
        let sonnet = stack_hcl(&vm, "  llm_model = \"claude-sonnet-4-5\"\n");
        write_main(&wd, &sonnet);
        wd.set_env("TF_LOG_PROVIDER", "info");
        let t = Instant::now();
        let (change, requests) = with_request_loop(&vm.ssh_host, &session, || apply_ok(&wd));
        eprintln!(
            "one-setting change: {:?}, {} requests during it; host steps {:?}, devbox switch steps {:?}",
            t.elapsed(),
            requests.total,
            logged_line(&change.stderr, "host-side deploy steps"),
            logged_line(&change.stderr, "devbox switched"),
        );
        assert!(
            requests.failed.is_empty(),
            "{} of {} requests failed during the devbox switch: {:?}",
            requests.failed.len(),
            requests.total,
            requests.failed
        );
        assert!(
            requests.total >= 20,
            "too few requests to mean anything: {requests:?}"
        );
        wd.set_env("TF_LOG_PROVIDER", "");
        assert_recreated(&before, &container_ids(&vm), &["devbox"]);
        let uploaded = change
            .stderr
            .lines()
            .find(|l| l.contains("uploaded changed files"))
            .unwrap_or_else(|| panic!("no upload log line:\n{}", change.stderr));
        assert!(uploaded.contains("devbox/opencode.json"), "{uploaded}");
        for untouched in [
            "caddy/Caddyfile",
            "authelia/configuration.yml",
            "docker-compose.yml\"",
        ] {
            assert!(
                !uploaded.contains(untouched),
                "{untouched} was uploaded: {uploaded}"
            );
        }
        // One connection and two remote commands beyond the plan's read: the look at the host and one upload that
        // runs the host's work (scripts/apply.sh); nothing through SFTP.
        let cost = |key: &str| change.logged("cloudcode_stack applied", key);
        assert_eq!(
            (cost("connections"), cost("commands"), cost("uploads")),
            (Some("1".into()), Some("2".into()), Some("0".into())),
            "SSH cost of a one-setting change"
        );
        assert_eq!(plan_exit(&wd).0, 0);

        // 3b. A devbox image that never gets healthy (Caddy's image: no OpenCode in it): the old devbox keeps
        //     serving (no failed request), the apply fails naming the devbox with the new one's logs, no second
        //     devbox stays; the next apply with the good image converges without touching a container.
        let good = container_ids(&vm);
        let devbox_image = vm.image("devbox").unwrap().image.clone();
        let caddy_image = vm.image("caddy").unwrap().image.clone();
        let broken = sonnet
            .replace(
                &format!("devbox   = \"{devbox_image}\""),
                &format!("devbox   = \"{caddy_image}\""),
            )
            .replace("create = \"15m\"", "create = \"15m\"\n    update = \"30s\"");
        assert!(broken.contains("update = \"30s\"") && !broken.contains(&devbox_image));
        write_main(&wd, &broken);
        let (failed, requests) = with_request_loop(&vm.ssh_host, &session, || {
            wd.tf(&["apply", "-auto-approve", "-json", "-input=false"])
                .unwrap()
        });
        assert!(
            !failed.success,
            "a devbox that never gets healthy was accepted:\n{}",
            failed.stdout
        );
        let details: Vec<String> = failed
            .errors()
            .iter()
            .map(|d| d["detail"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            details.iter().any(|d| d.contains("the new devbox (devbox_")
                && d.contains("the old one keeps serving")
                && d.contains("--- last 30 log lines of devbox_")),
            "the failure does not name the devbox with its logs: {details:#?}"
        );
        assert!(
            requests.failed.is_empty(),
            "{} of {} requests failed while the new devbox failed: {:?}",
            requests.failed.len(),
            requests.total,
            requests.failed
        );
        assert_eq!(container_ids(&vm), good, "the serving devbox was touched");
        write_main(&wd, &sonnet);
        apply_ok(&wd);
        assert_eq!(container_ids(&vm), good, "converging recreated a container");
        assert_eq!(plan_exit(&wd).0, 0);

        // 4. Drift: a hand edit on the host, and a stopped container, each show as an update; apply restores.
        in_vm(&vm, "echo '# hand edit' >> /opt/cloudcode/caddy/Caddyfile");
        let (code, run) = plan_exit(&wd);
        assert_eq!(code, 2, "hand edit not detected:\n{}", run.stdout);
        assert!(run.stdout.contains("update in-place"), "{}", run.stdout);
        apply_ok(&wd);
        assert!(!in_vm(&vm, "cat /opt/cloudcode/caddy/Caddyfile").contains("# hand edit"));
        in_vm(
            &vm,
            "docker stop $(docker ps -q --filter label=com.docker.compose.project=cloudcode --filter name=devbox_)",
        );
        let (code, run) = plan_exit(&wd);
        assert_eq!(code, 2, "stopped container not detected:\n{}", run.stdout);
        apply_ok(&wd);
        assert!(in_vm(
            &vm,
            "docker ps --filter label=com.docker.compose.project=cloudcode --filter name=devbox_ --format '{{.State}}'"
        )
        .contains("running"));
        assert_eq!(plan_exit(&wd).0, 0);

        // 4b. Suspended (host_running = false): a change is recorded without connecting — the port points nowhere,
        //     so any connection attempt would fail — and deployed once the host runs again.
        let suspended = "  llm_model = \"claude-opus-4-1\"\n  host_running = false\n  port = 1\n";
        wd.write(
            "main.tf",
            &format!(
                "{}\n{}",
                cloudcode_tests::terraform::required_providers(),
                stack_hcl(&vm, suspended)
            )
            .replace(&format!("port             = {}\n", vm.ssh_port), ""),
        )
        .unwrap();
        let t = Instant::now();
        apply_ok(&wd);
        assert!(
            t.elapsed().as_secs() < 30,
            "a suspended stack must not try to connect"
        );
        assert!(
            in_vm(&vm, "cat /opt/cloudcode/devbox/opencode.json").contains("claude-sonnet-4-5"),
            "the host changed while suspended"
        );
        wd.write(
            "main.tf",
            &format!(
                "{}\n{}",
                cloudcode_tests::terraform::required_providers(),
                stack_hcl(&vm, "  llm_model = \"claude-opus-4-1\"\n")
            ),
        )
        .unwrap();
        let (code, run) = plan_exit(&wd);
        assert_eq!(
            code, 2,
            "the recorded change is not planned on resume:\n{}",
            run.stdout
        );
        let (_, plan) = wd.plan_saved("resume.tfplan").unwrap();
        assert_no_secret("the plan JSON", &plan.to_string());
        apply_ok(&wd);
        assert!(in_vm(&vm, "cat /opt/cloudcode/devbox/opencode.json").contains("claude-opus-4-1"));
        assert_eq!(plan_exit(&wd).0, 0);

        // 5. Import: a second working directory adopts the deployed host; after the import apply, plans are empty.
        assert_import_adopts(
            e,
            &vm,
            &stack_hcl(&vm, "  llm_model = \"claude-opus-4-1\"\n"),
            provider_bin!(),
        );

        // 6. A replaced host key: apply refuses and shows both fingerprints.
        let pinned = vm.host_key().to_string();
        let new_key = vm.restart_sshd_with_new_host_key().unwrap();
        let run = wd.tf(&["plan", "-no-color", "-input=false"]).unwrap();
        assert!(!run.success, "a changed host key was accepted");
        let text = format!("{}{}", run.stdout, run.stderr);
        let fp = |line: &str| fingerprint(line);
        assert!(
            text.contains(&fp(&pinned)),
            "expected fingerprint missing:\n{text}"
        );
        assert!(
            text.contains(&fp(&new_key)),
            "presented fingerprint missing:\n{text}"
        );

        // 7. The user pins the new key (apply without refresh: the recorded key would refuse), then destroys:
        //    containers gone, volumes and secrets kept.
        let pinned_cfg = format!("  llm_model = \"claude-opus-4-1\"\n  host_key = \"{new_key}\"\n");
        wd.write(
            "main.tf",
            &format!(
                "{}\n{}",
                cloudcode_tests::terraform::required_providers(),
                stack_hcl(&vm, &pinned_cfg)
            ),
        )
        .unwrap();
        let run = wd
            .tf(&[
                "apply",
                "-refresh=false",
                "-auto-approve",
                "-no-color",
                "-input=false",
            ])
            .unwrap();
        assert!(
            run.success,
            "re-pinning failed:\n{}{}",
            run.stdout, run.stderr
        );
        let run = wd
            .tf(&["destroy", "-auto-approve", "-no-color", "-input=false"])
            .unwrap();
        assert!(run.success, "destroy failed:\n{}{}", run.stdout, run.stderr);
        assert_eq!(
            in_vm(
                &vm,
                "docker ps -aq --filter label=com.docker.compose.project=cloudcode"
            )
            .trim(),
            ""
        );
        let volumes = in_vm(&vm, "docker volume ls -q");
        assert!(
            volumes.contains("cloudcode_workspace") && volumes.contains("cloudcode_authelia_data"),
            "{volumes}"
        );
        assert_eq!(in_vm(&vm, "ls /opt/cloudcode/secrets | wc -l").trim(), "3");
        assert!(
            in_vm(&vm, "ls /opt/cloudcode")
                .lines()
                .all(|l| l == "secrets"),
            "rendered files left behind"
        );
        vm.shutdown().unwrap();
    });
}

#[test]
fn a_connection_dropped_mid_upload_leaves_no_partial_file_and_the_next_apply_converges() {
    engine::once(&engine::scenario(Kind::Terraform), |e| {
        let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let mut wd = Workdir::new_on(e, provider_bin!(), &stack_hcl(&vm, "")).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env("TF_VAR_llm_api_key", API_KEY);
        wd.init().unwrap();
        // Docker first (quick), so the drop lands in the long upload of the devbox image archive.
        in_vm(&vm, "apt-get install -y -q docker.io >/dev/null 2>&1");
        let out = std::thread::scope(|scope| {
            let apply = scope.spawn(|| wd.apply().unwrap());
            // Wait for an archive streaming into `docker load` (it reads the SSH channel), then kill every SSH
            // session.
            let deadline = Instant::now() + std::time::Duration::from_secs(240);
            loop {
                let loads = in_vm(&vm, "pgrep -c -f '^docker load' || true");
                if loads.trim() != "0" {
                    break;
                }
                assert!(Instant::now() < deadline, "no upload seen");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            in_vm(&vm, "pkill -f 'sshd: roo[t]' || true");
            apply.join().unwrap()
        });
        assert!(
            !out.success,
            "apply survived a dropped connection?\n{}",
            out.stdout
        );

        // Nothing is partial: no archive copy on the host, and the cut load is not marked loaded (so the next
        // apply sends it again); no rendered file exists half-written.
        let images = in_vm(&vm, "ls -a /opt/cloudcode/.images 2>/dev/null || true");
        assert!(
            !images.lines().any(|l| l.ends_with(".tar")),
            "an archive copy sits on the host: {images}"
        );
        let marked = images.lines().filter(|l| l.ends_with(".loaded")).count();
        assert!(
            marked < 3,
            "all three archives are marked loaded although a load was cut: {images}"
        );
        // The next apply converges, and the plan after it is empty.
        apply_ok(&wd);
        assert_eq!(plan_exit(&wd).0, 0);
        let leftovers = in_vm(&vm, "find /opt/cloudcode -name '*cloudcode-tmp*' | wc -l");
        assert_eq!(
            leftovers.trim(),
            "0",
            "temp files of the interrupted upload remain"
        );

        // A later image change moves only the layers the host lacks: a devbox image one layer above the deployed
        // one, saved whole (every layer in the archive) and removed from the host again.
        let devbox = vm.image("devbox").unwrap().clone();
        let next = "cloudcode-test/devbox:next";
        in_vm(
            &vm,
            &format!(
                "printf 'FROM {}\\nRUN echo next > /etc/cloudcode-next\\n' | docker build -q -t {next} - >/dev/null && \
                 docker save -o /root/devbox-next.tar {next} && docker rmi {next} >/dev/null",
                devbox.image
            ),
        );
        let next_tar = wd.path().join("devbox-next.tar");
        std::fs::copy(vm.path_in_vm("/root/devbox-next.tar"), &next_tar).unwrap();
        let whole = std::fs::metadata(&next_tar).unwrap().len();
        let hcl = stack_hcl(&vm, "")
            .replace(
                &format!("devbox   = \"{}\"", devbox.image),
                &format!("devbox   = \"{next}\""),
            )
            .replace(
                &format!("\"{}\"]", devbox.archive.display()),
                &format!(
                    "\"{}\", \"{}\"]",
                    devbox.archive.display(),
                    next_tar.display()
                ),
            );
        assert!(
            hcl.contains(next) && hcl.contains("devbox-next.tar"),
            "{hcl}"
        );
        write_main(&wd, &hcl);
        wd.set_env("TF_LOG_PROVIDER", "info");
        let change = apply_ok(&wd);
        wd.set_env("TF_LOG_PROVIDER", "");
        let logged = |key: &str| -> u64 {
            change
                .logged("streaming image archive into docker load", key)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in the load log line:\n{}", change.stderr))
        };
        let (sent, skipped) = (logged("bytes"), logged("skipped_layers"));
        eprintln!("image change: {sent} of {whole} bytes sent, {skipped} layers left out");
        assert_eq!(logged("whole"), whole);
        assert!(skipped >= 1, "no layer was left out");
        assert!(
            sent * 10 < whole,
            "{sent} of {whole} bytes sent for a one-layer change"
        );
        // The devbox runs the new image, loaded from the trimmed archive; the plan after it is empty.
        let running = in_vm(
            &vm,
            "docker inspect -f '{{.Image}}' $(docker ps -q --filter label=com.docker.compose.project=cloudcode --filter name=devbox_)",
        );
        let want = in_vm(
            &vm,
            &format!("docker image inspect -f '{{{{.Id}}}}' {next}"),
        );
        assert_eq!(
            running.trim(),
            want.trim(),
            "the devbox does not run {next}"
        );
        assert_eq!(
            in_vm(
                &vm,
                "docker exec $(docker ps -q --filter name=devbox_) cat /etc/cloudcode-next"
            )
            .trim(),
            "next"
        );
        assert_eq!(plan_exit(&wd).0, 0);
        vm.shutdown().unwrap();
    });
}

/// The text after `steps=` on the provider's last log line holding `marker` (its values hold spaces).
fn logged_line(stderr: &str, marker: &str) -> Option<String> {
    let line = stderr.lines().rfind(|l| l.contains(marker))?;
    let at = line.find("steps=")?;
    Some(line[at + 6..].to_string())
}
