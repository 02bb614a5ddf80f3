//! A stack whose images come only from a mirror registry (`mirrors`), on the test VM where nothing else can be
//! pulled: a real registry (Debian's docker-registry, plain HTTP) on the VM's host side holds the test images
//! under the default images' names, the stack gets no `images` and no archives — only `mirrors` — and the
//! apply succeeds with every image pulled from the mirror (its access log shows each one served to the VM).
//! A hand-written /etc/docker/daemon.json is refused with advice first, and nothing else is touched. Docker itself
//! is installed with apt from the apt mirror (`mirrors.apt`: the VM's package repository served on the host side),
//! its log showing the package lists and the packages fetched, the VM's own apt sources untouched.
use cloudcode_bundle::settings::{
    DEFAULT_AUTHELIA_IMAGE, DEFAULT_CADDY_IMAGE, DEFAULT_DEVBOX_REPOSITORY,
    DEFAULT_OPENCODE_VERSION,
};
use cloudcode_tests::apt_mirror::AptMirror;
use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::provider_bin;
use cloudcode_tests::registry::Registry;
use cloudcode_tests::stack_fixture::{apply_ok, in_vm, plan_exit, stack_hcl, API_KEY, PASSWORD};
use cloudcode_tests::terraform::Workdir;
use cloudcode_tests::vm::{TestVm, VmOptions};

const NAMESPACE: &str = "mirror/cloudcode";
const NPM: &str = "https://registry.npmmirror.com";

/// `name:tag` of a published image (the part the mirror keeps).
fn last(image: &str) -> &str {
    image.rsplit('/').next().unwrap()
}

/// The stack's HCL without `images` and `image_archives`: what it runs is decided by `mirrors` alone.
fn mirrors_only_hcl(vm: &TestVm, extra: &str) -> String {
    let hcl = stack_hcl(vm, extra);
    let start = hcl.find("  images = {").expect("an images block");
    let end = hcl[start..]
        .find("  timeouts = {")
        .expect("timeouts after the images")
        + start;
    let out = format!("{}{}", &hcl[..start], &hcl[end..]);
    assert!(
        !out.contains("image_archives") && !out.contains("images = {"),
        "{out}"
    );
    out
}

#[test]
fn a_stack_pulls_every_image_from_the_mirror_registry_and_nothing_else() {
    engine::once(&engine::scenario(Kind::Terraform), |e| {
        let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let registry = Registry::start(vm.host_ip.parse().unwrap()).expect("the mirror registry");
        let apt = AptMirror::start(
            std::net::SocketAddr::new(vm.host_ip.parse().unwrap(), 0),
            &vm.path_in_vm("/"),
        )
        .expect("the apt mirror");
        let sources_before = in_vm(&vm, "cat /etc/apt/sources.list.d/*.list");
        let devbox_default = format!("{DEFAULT_DEVBOX_REPOSITORY}:{DEFAULT_OPENCODE_VERSION}");
        let wanted: Vec<String> = [
            DEFAULT_CADDY_IMAGE,
            DEFAULT_AUTHELIA_IMAGE,
            devbox_default.as_str(),
        ]
        .iter()
        .map(|i| format!("{NAMESPACE}/{}", last(i)))
        .collect();
        for (role, reference) in ["caddy", "authelia", "devbox"].iter().zip(&wanted) {
            let img = vm
                .image(role)
                .unwrap_or_else(|| panic!("test image {role}"));
            registry
                .push(&img.archive, reference)
                .expect("push to the mirror");
        }
        let extra = format!(
            "  mirrors = {{\n    image_registry      = \"{addr}/{NAMESPACE}\"\n    insecure_registries = [\"{addr}\"]\n    npm                 = \"{NPM}\"\n    apt                 = \"{apt_url}\"\n  }}\n",
            addr = registry.address,
            apt_url = apt.base_url()
        );
        let hcl = mirrors_only_hcl(&vm, &extra);
        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env("TF_VAR_llm_api_key", API_KEY);
        wd.init().unwrap();

        // Refused: a daemon.json someone else wrote is never overwritten; the apply names the file and the fix.
        in_vm(&vm, "mkdir -p /etc/docker && printf '{\"log-level\": \"info\"}\\n' >/etc/docker/daemon.json");
        let refused = wd.apply().unwrap();
        assert!(
            !refused.success,
            "an apply over a foreign daemon.json succeeded"
        );
        let text = format!("{:?}{}", refused.diagnostics(), refused.stderr);
        assert!(
            text.contains("configuring the Docker daemon")
                && text.contains("not written by cloudcode"),
            "{text}"
        );
        assert_eq!(
            in_vm(&vm, "cat /etc/docker/daemon.json").trim(),
            "{\"log-level\": \"info\"}"
        );
        assert!(
            registry.manifests_served_to(&vm.ssh_host).is_empty(),
            "pulled before the daemon knew the mirror"
        );
        // Docker came from the apt mirror (the VM's repository, at its own path under the mirror's URL); the VM's
        // sources are as they were.
        let fetched = apt.requests();
        assert!(
            fetched
                .iter()
                .any(|p| p.starts_with("/var/local/cloudcode-apt/") && p.contains("Packages")),
            "no package list from the apt mirror: {fetched:?}"
        );
        assert!(
            fetched
                .iter()
                .any(|p| p.contains("/docker.io_") && p.ends_with(".deb")),
            "docker.io was not fetched from the apt mirror: {fetched:?}"
        );
        assert_eq!(
            in_vm(&vm, "cat /etc/apt/sources.list.d/*.list"),
            sources_before
        );

        // Allowed once the file is gone: every image from the mirror.
        in_vm(&vm, "rm /etc/docker/daemon.json");
        apply_ok(&wd);
        let served = registry.manifests_served_to(&vm.ssh_host);
        for w in &wanted {
            assert!(
                served.contains(w),
                "{w} was not served by the mirror: {served:?}\n{}",
                registry.log()
            );
        }
        let images = in_vm(&vm, "docker ps --format '{{.Image}}' | sort -u");
        let running: Vec<&str> = images.lines().collect();
        assert_eq!(running.len(), 3, "{images}");
        assert!(
            running
                .iter()
                .all(|i| i.starts_with(&format!("{}/{NAMESPACE}/", registry.address))),
            "a container runs an image from elsewhere: {images}"
        );
        let daemon: serde_json::Value =
            serde_json::from_str(&in_vm(&vm, "cat /etc/docker/daemon.json"))
                .expect("daemon.json is JSON");
        assert_eq!(daemon["insecure-registries"][0], registry.address.as_str());
        let env = in_vm(
            &vm,
            "for c in $(docker ps -q); do docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' $c; done",
        );
        assert!(
            env.lines()
                .any(|l| l == format!("NPM_CONFIG_REGISTRY={NPM}")),
            "{env}"
        );
        eprintln!("served by the mirror: {served:?}");

        // Converged.
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "{}\n{}", plan.stdout, plan.stderr);

        // The daemon settings removed (the images stay where they are): the file goes, as it is still ours.
        let without = extra.replace(
            &format!("    insecure_registries = [\"{}\"]\n", registry.address),
            "",
        );
        assert_ne!(without, extra);
        cloudcode_tests::stack_fixture::write_main(&wd, &mirrors_only_hcl(&vm, &without));
        apply_ok(&wd);
        let gone = in_vm(
            &vm,
            "test -e /etc/docker/daemon.json && echo present || echo absent; ls -a /opt/cloudcode",
        );
        assert!(gone.starts_with("absent"), "{gone}");
        assert!(!gone.contains(".daemon.json.applied"), "{gone}");
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "{}\n{}", plan.stdout, plan.stderr);
    });
}
