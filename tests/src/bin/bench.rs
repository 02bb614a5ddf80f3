//! `bench` — the issue 9 benchmarks on the test VM, through the delay proxy at each one-way delay given
//! (`--delays-ms 0,25` = 0 and 50 ms RTT): no-op plan (SSH connections, remote commands, wall time), one-setting
//! change (bytes uploaded, services recreated, wall time), first deploy to a Docker-ready host vs the baseline
//! in `bench/baseline/` (Terraform's `terraform_data` + `file`/`remote-exec` with the same rendered files),
//! availability (failed requests through Caddy during a Caddyfile change and a devbox setting change, 5xx
//! answers during an Authelia-only change) and provider start to schema served. Each provider given by
//! `--providers debug=PATH,release=PATH` is measured in the same run, side by side; the baseline runs once per
//! RTT. Prints a markdown table (medians) and writes it to `--out`. Run through `bench/run.sh`, which builds
//! both profiles.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cloudcode_tests::delay_proxy::DelayProxy;
use cloudcode_tests::stack_fixture::{
    curl, plan_exit, sign_in, stack_hcl_at, API_KEY, DOMAIN, PASSWORD,
};
use cloudcode_tests::terraform::{required_providers, Run, Workdir};
use cloudcode_tests::vm::{repo_root, TestVm, VmOptions};

struct Args {
    delays_ms: Vec<u64>,
    runs: usize,
    out: Option<PathBuf>,
    /// (profile name, provider binary), in the order given.
    providers: Vec<(String, PathBuf)>,
    /// `--only first-deploy`: cloudcode's first deploys alone (no baseline, no changes), each apply's provider log
    /// kept for a look at where the time goes.
    first_deploy_only: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        delays_ms: vec![0, 25],
        runs: 3,
        out: None,
        providers: Vec::new(),
        first_deploy_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--delays-ms" => {
                a.delays_ms = v
                    .split(',')
                    .map(|d| d.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--runs" => a.runs = v.parse()?,
            "--out" => a.out = Some(v.into()),
            "--only" if v == "first-deploy" => a.first_deploy_only = true,
            "--providers" => {
                for item in v.split(',') {
                    let (name, path) = item
                        .split_once('=')
                        .with_context(|| format!("--providers takes NAME=PATH items, not {item:?}"))?;
                    let path = PathBuf::from(path);
                    if !path.exists() {
                        bail!("--providers: {} does not exist", path.display());
                    }
                    a.providers.push((name.to_string(), path));
                }
            }
            _ => bail!(
                "unknown argument {k} {v} (--delays-ms 0,25 --runs 3 --out FILE --providers debug=PATH,release=PATH --only first-deploy)"
            ),
        }
    }
    if a.providers.is_empty() {
        a.providers.push(("debug".into(), provider_bin()?));
    }
    Ok(a)
}

fn provider_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe
        .parent()
        .context("exe dir")?
        .join("cloudcode-provider-under-test");
    if !p.exists() {
        bail!(
            "{} not built (cargo build -p cloudcode-tests --bins)",
            p.display()
        );
    }
    Ok(p)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The last `key=N` in the provider's info log lines that contain `marker`.
fn workdir(provider: &Path, hcl: &str) -> Result<Workdir> {
    let mut wd = Workdir::new(provider, hcl)?;
    wd.set_env("TF_VAR_admin_password", PASSWORD);
    wd.set_env("TF_VAR_llm_api_key", API_KEY);
    // `--only first-deploy` looks at where the time goes: the provider's debug lines (health polls, …).
    let level = if std::env::args().any(|a| a == "first-deploy") {
        "debug"
    } else {
        "info"
    };
    wd.set_env("TF_LOG_PROVIDER", level);
    wd.init()?.ok()?;
    Ok(wd)
}

fn docker_ready_vm() -> Result<TestVm> {
    let vm = TestVm::start(VmOptions::default())?;
    vm.exec_in_vm_ok("apt-get install -y -q docker.io >/dev/null 2>&1 && docker info >/dev/null")?;
    Ok(vm)
}

/// Requests through Caddy in a loop while `f` runs (see [`stack_fixture::with_request_loop`]):
/// (total, failed = not 200, server errors = 5xx or no answer).
fn with_request_loop<T>(vm: &TestVm, session: &str, f: impl FnOnce() -> T) -> (T, u64, u64, u64) {
    let (out, seen) = cloudcode_tests::stack_fixture::with_request_loop(&vm.ssh_host, session, f);
    let server_errors = seen
        .failed
        .iter()
        .filter(|(_, code)| *code >= 500 || *code == 0)
        .count() as u64;
    (out, seen.total, seen.failed.len() as u64, server_errors)
}

#[derive(Default)]
struct Row {
    profile: String,
    rtt_ms: u64,
    first_deploy_s: f64,
    first_deploy_conns: u64,
    first_deploy_wire_mb: f64,
    noop_s: f64,
    noop_conns: f64,
    noop_cmds: String,
    change_s: f64,
    change_bytes: String,
    change_wire_kb: f64,
    /// SSH connections of the whole apply (its plan's read included) and the apply's remote commands.
    change_conns: u64,
    change_cmds: String,
    change_recreated: String,
    devbox_req: (u64, u64),
    caddy_s: f64,
    caddy_recreated: String,
    caddy_req: (u64, u64),
    authelia_s: f64,
    authelia_recreated: String,
    /// (requests, 5xx or unanswered, any other non-200 such as a redirect to sign in again).
    authelia_req: (u64, u64, u64),
}

/// The baseline's first deploy at one RTT: (seconds to healthy, seconds of its apply, SSH connections, MB on
/// the wire client→host).
struct Baseline {
    rtt_ms: u64,
    healthy_s: f64,
    apply_s: f64,
    conns: u64,
    wire_mb: f64,
}

fn measure(
    profile: &str,
    provider: &Path,
    delay_ms: u64,
    runs: usize,
    first_deploy_only: bool,
) -> Result<Row> {
    let mut row = Row {
        profile: profile.to_string(),
        rtt_ms: 2 * delay_ms,
        ..Row::default()
    };
    let delay = Duration::from_millis(delay_ms);

    // cloudcode: first deploy to a Docker-ready host.
    let vm = docker_ready_vm()?;
    let proxy = DelayProxy::start(format!("{}:{}", vm.ssh_host, vm.ssh_port).parse()?, delay)?;
    let password_version = std::cell::Cell::new(1);
    let hcl = |extra: &str| {
        stack_hcl_at(&vm, "127.0.0.1", proxy.port(), extra).replace(
            "admin_password_wo_version = 1",
            &format!("admin_password_wo_version = {}", password_version.get()),
        )
    };
    let wd = workdir(provider, &hcl(""))?;
    let t = Instant::now();
    let run = wd.apply()?;
    row.first_deploy_s = t.elapsed().as_secs_f64();
    if first_deploy_only {
        let log =
            std::env::temp_dir().join(format!("bench-first-{profile}-{}ms.log", 2 * delay_ms));
        std::fs::write(&log, &run.stderr)?;
        eprintln!("[{profile}] the apply's log: {}", log.display());
    }
    run.ok()?;
    row.first_deploy_conns = proxy.stats().connections;
    row.first_deploy_wire_mb = proxy.stats().bytes_up as f64 / 1e6;
    eprintln!(
        "[{profile}, {}ms RTT] first deploy {:.1}s",
        row.rtt_ms, row.first_deploy_s
    );

    if first_deploy_only {
        drop(proxy);
        vm.shutdown()?;
        return Ok(row);
    }

    // No-op plan.
    let (mut wall, mut conns, mut cmds) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        proxy.reset_counters();
        let t = Instant::now();
        let (code, run) = plan_exit(&wd);
        wall.push(t.elapsed().as_secs_f64());
        if code != 0 {
            bail!("no-op plan not empty:\n{}{}", run.stdout, run.stderr);
        }
        conns.push(proxy.stats().connections as f64);
        cmds.push(
            run.logged("cloudcode_stack read", "commands")
                .unwrap_or("?".into()),
        );
    }
    row.noop_s = median(wall);
    row.noop_conns = median(conns);
    row.noop_cmds = cmds.last().cloned().unwrap_or_default();

    // One devbox setting (llm_model) and one Caddyfile-only setting (acme_email), with a request loop signed in
    // through Authelia (neither change recreates it, so the session holds).
    let (signed_in, _totp) = sign_in(&vm);
    let session = signed_in.cookie.clone().expect("a session cookie");
    let change = |extra: String| -> Result<(f64, Run, f64, u64)> {
        wd.write(
            "main.tf",
            &format!("{}\n{}", required_providers(), hcl(&extra)),
        )?;
        proxy.reset_counters();
        let t = Instant::now();
        let run = wd.apply()?.ok()?;
        let stats = proxy.stats();
        Ok((
            t.elapsed().as_secs_f64(),
            run,
            stats.bytes_up as f64 / 1024.0,
            stats.connections,
        ))
    };
    let (mut wall, mut wire, mut req) = (vec![], vec![], (0, 0));
    for i in 0..runs {
        let (r, total, failed, _) = with_request_loop(&vm, &session, || {
            change(format!("  llm_model = \"bench-model-{i}\"\n"))
        });
        let (s, run, kb, conns) = r?;
        wall.push(s);
        wire.push(kb);
        row.change_conns = conns;
        row.change_cmds = run
            .logged("cloudcode_stack applied", "commands")
            .unwrap_or("?".into());
        req = (req.0 + total, req.1 + failed);
        row.change_bytes = run
            .logged("cloudcode_stack applied", "bytes")
            .unwrap_or("?".into());
        row.change_recreated = run
            .logged("cloudcode_stack applied", "recreated")
            .unwrap_or("?".into());
    }
    row.change_s = median(wall);
    row.change_wire_kb = median(wire);
    row.devbox_req = req;
    let (mut wall, mut req) = (vec![], (0, 0));
    let last_extra = |i: usize| {
        format!(
            "  llm_model = \"bench-model-{}\"\n  acme_email = \"ops{i}@example.com\"\n",
            runs - 1
        )
    };
    for i in 0..runs {
        let (r, total, failed, _) = with_request_loop(&vm, &session, || change(last_extra(i)));
        let (s, run, _, _) = r?;
        wall.push(s);
        req = (req.0 + total, req.1 + failed);
        row.caddy_recreated = run
            .logged("cloudcode_stack applied", "recreated")
            .unwrap_or("?".into());
    }
    row.caddy_s = median(wall);
    row.caddy_req = req;

    // An Authelia-only change: the same password under a new version (a new hash in its users file). Runs last,
    // with the same session: whether a restart keeps sessions is Authelia's to say (a lost one answers a
    // redirect to the portal, counted as "signed out"); a 5xx or no answer is a failure of the deploy.
    let (mut wall, mut req) = (vec![], (0, 0, 0));
    for _ in 0..runs {
        password_version.set(password_version.get() + 1);
        let (r, total, failed, server_errors) =
            with_request_loop(&vm, &session, || change(last_extra(runs - 1)));
        let (s, run, _, _) = r?;
        wall.push(s);
        req = (
            req.0 + total,
            req.1 + server_errors,
            req.2 + failed - server_errors,
        );
        row.authelia_recreated = run
            .logged("cloudcode_stack applied", "recreated")
            .unwrap_or("?".into());
    }
    row.authelia_s = median(wall);
    row.authelia_req = req;
    drop(proxy);
    vm.shutdown()?;
    Ok(row)
}

/// The baseline's first deploy at one RTT, on a fresh Docker-ready VM.
fn baseline(provider: &Path, delay_ms: u64) -> Result<Baseline> {
    let delay = Duration::from_millis(delay_ms);

    // Same rendered files and archives with terraform_data + provisioners.
    let vm = docker_ready_vm()?;
    let proxy = DelayProxy::start(format!("{}:{}", vm.ssh_host, vm.ssh_port).parse()?, delay)?;
    let bundle_dir = tempfile::tempdir()?;
    render_bundle(&vm, bundle_dir.path())?;
    let mut wd = Workdir::empty(provider)?;
    wd.write(
        "main.tf",
        &std::fs::read_to_string(repo_root().join("bench/baseline/main.tf"))?,
    )?;
    let archives: Vec<String> = ["caddy", "authelia", "devbox"]
        .iter()
        .filter_map(|r| vm.image(r).map(|i| format!("\"{}\"", i.archive.display())))
        .collect();
    wd.write(
        "terraform.tfvars",
        &format!(
            "host = \"127.0.0.1\"\nport = {}\nprivate_key_path = \"{}\"\nbundle_dir = \"{}\"\nimage_archives = [{}]\n",
            proxy.port(),
            vm.private_key_path.display(),
            bundle_dir.path().display(),
            archives.join(", ")
        ),
    )?;
    wd.set_env("TF_LOG", "");
    wd.init()?.ok()?;
    let t = Instant::now();
    wd.apply()?.ok()?;
    let apply_s = t.elapsed().as_secs_f64();
    let stats = proxy.stats();
    // The baseline's stack must really be up (same check as cloudcode's health gate), else it is not the same job.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut session = None;
    loop {
        // Caddy and Authelia answer first (a redirect to the portal); then sign in and wait for OpenCode.
        let want = if session.is_some() { 200 } else { 302 };
        if curl(&vm, "/global/health", session.as_deref()).0 == want {
            if session.is_some() {
                break;
            }
            session = sign_in(&vm).0.cookie;
            continue;
        }
        if Instant::now() > deadline {
            bail!("the baseline's stack never answered through Caddy");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let healthy = t.elapsed().as_secs_f64();
    eprintln!(
        "[baseline, {}ms RTT] apply {apply_s:.1}s, healthy at {healthy:.1}s",
        2 * delay_ms
    );
    drop(proxy);
    vm.shutdown()?;
    Ok(Baseline {
        rtt_ms: 2 * delay_ms,
        healthy_s: healthy,
        apply_s,
        conns: stats.connections,
        wire_mb: stats.bytes_up as f64 / 1e6,
    })
}

/// The bundle cloudcode would upload for `stack_hcl`'s settings, written as files with their modes.
fn render_bundle(vm: &TestVm, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut s = cloudcode_bundle::Settings::default_for(DOMAIN, "admin", "admin@example.com");
    s.llm_provider = "anthropic".into();
    s.llm_api_key_wo_version = Some(1);
    s.tls_mode = "internal".into();
    s.images.caddy = vm.image("caddy").map(|i| i.image.clone());
    s.images.authelia = vm.image("authelia").map(|i| i.image.clone());
    s.images.devbox = vm.image("devbox").map(|i| i.image.clone());
    let secrets = cloudcode_bundle::Secrets {
        admin_password_hash: Some(cloudcode_bundle::hash_password(PASSWORD)?),
        llm_api_key: Some(API_KEY.into()),
        ..Default::default()
    };
    let bundle = cloudcode_bundle::render(&s, &secrets)?;
    // The run-time file naming the serving devbox (cloudcode writes it at deploy; the baseline ships it), and the
    // blue colour is the one the baseline's Compose starts (COMPOSE_PROFILES=blue in bench/baseline/main.tf).
    let devbox_caddy = dir.join(cloudcode_bundle::runtime::DEVBOX_CADDY);
    std::fs::create_dir_all(devbox_caddy.parent().context("caddy dir")?)?;
    std::fs::write(
        &devbox_caddy,
        cloudcode_bundle::runtime::devbox_caddy("devbox_blue")?,
    )?;
    for (path, file) in &bundle.files {
        let to = dir.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&to, &file.bytes)?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(file.mode))?;
    }
    Ok(())
}

/// `terraform providers schema -json` (terraform starts the provider, handshakes, asks for the schema) vs
/// `terraform version` (terraform alone): medians in seconds.
fn schema_served(provider: &Path, runs: usize) -> Result<(f64, f64)> {
    let wd = Workdir::new(provider, "")?;
    wd.init()?.ok()?;
    let (mut schema, mut bare) = (vec![], vec![]);
    for _ in 0..runs.max(5) {
        let t = Instant::now();
        wd.tf(&["providers", "schema", "-json"])?.ok()?;
        schema.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        wd.tf(&["version"])?.ok()?;
        bare.push(t.elapsed().as_secs_f64());
    }
    Ok((median(schema), median(bare)))
}

/// `--only first-deploy`: at each RTT, `--runs` rounds of the baseline's first deploy then each provider's, each
/// on a fresh VM (alternating, so the machine's drift touches both alike); medians and every sample.
fn first_deploys_only(a: &Args) -> Result<()> {
    let mut md = String::from(
        "| profile | RTT | first deploy, median (s) | samples (s) | baseline to healthy, median (s) | baseline samples (s) | ratio of medians |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for d in &a.delays_ms {
        let mut base = vec![];
        let mut ours: Vec<Vec<f64>> = vec![vec![]; a.providers.len()];
        for _ in 0..a.runs {
            base.push(baseline(&a.providers[0].1, *d)?.healthy_s);
            for (i, (profile, provider)) in a.providers.iter().enumerate() {
                ours[i].push(measure(profile, provider, *d, 1, true)?.first_deploy_s);
            }
        }
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let b = median(base.clone());
        for (i, (profile, _)) in a.providers.iter().enumerate() {
            let m = median(ours[i].clone());
            md.push_str(&format!(
                "| {profile} | {} ms | {m:.1} | {} | {b:.1} | {} | {:.2}× |\n",
                2 * d,
                list(&ours[i]),
                list(&base),
                m / b
            ));
        }
    }
    println!("{md}");
    if let Some(out) = &a.out {
        std::fs::write(out, &md)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    if a.first_deploy_only {
        return first_deploys_only(&a);
    }
    let (schema, bare) = schema_served(&a.providers[0].1, a.runs)?;
    let mut rows = vec![];
    let mut baselines = vec![];
    for d in &a.delays_ms {
        baselines.push(baseline(&a.providers[0].1, *d)?);
        for (profile, provider) in &a.providers {
            rows.push(measure(profile, provider, *d, a.runs, false)?);
        }
    }
    let mut md = format!(
        "First deploys: one run per provider and RTT, each on a fresh Docker-ready VM; the baseline once per RTT; \
         ratio = cloudcode's time / the baseline's time to healthy (the goal is ≤ 0.5). Other times: medians of {} \
         runs; failed requests: summed over those runs. Wall times in seconds; `bytes` is what the provider \
         uploaded (its log), `wire` what crossed the proxy client→host.\n\n\
         | RTT | baseline to healthy (its apply) | baseline SSH conns | baseline wire MB |\n\
         | --- | --- | --- | --- |\n",
        a.runs
    );
    for b in &baselines {
        md.push_str(&format!(
            "| {} ms | {:.1} ({:.1}) | {} | {:.1} |\n",
            b.rtt_ms, b.healthy_s, b.apply_s, b.conns, b.wire_mb
        ));
    }
    md.push_str(
        "\n| profile | RTT | first deploy | ratio to baseline | SSH conns | wire MB | no-op plan | no-op SSH conns | no-op remote cmds | devbox change | change bytes | change wire KiB | change SSH conns (with its read) / apply cmds | recreated | failed req (devbox change) | Caddyfile change | recreated | failed req (Caddyfile change) | Authelia change | recreated | 5xx (Authelia change) | signed out (Authelia change) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in &rows {
        let base = baselines
            .iter()
            .find(|b| b.rtt_ms == r.rtt_ms)
            .map_or(f64::NAN, |b| b.healthy_s);
        md.push_str(&format!(
            "| {} | {} ms | {:.1} | {:.2}× | {} | {:.1} | {:.2} | {} | {} | {:.1} | {} | {:.1} | {} / {} | {} | {}/{} | {:.1} | {} | {}/{} | {:.1} | {} | {}/{} | {}/{} |\n",
            r.profile,
            r.rtt_ms,
            r.first_deploy_s,
            r.first_deploy_s / base,
            r.first_deploy_conns,
            r.first_deploy_wire_mb,
            r.noop_s,
            r.noop_conns,
            r.noop_cmds,
            r.change_s,
            r.change_bytes,
            r.change_wire_kb,
            r.change_conns,
            r.change_cmds,
            r.change_recreated,
            r.devbox_req.1,
            r.devbox_req.0,
            r.caddy_s,
            r.caddy_recreated,
            r.caddy_req.1,
            r.caddy_req.0,
            r.authelia_s,
            r.authelia_recreated,
            r.authelia_req.1,
            r.authelia_req.0,
            r.authelia_req.2,
            r.authelia_req.0,
        ));
    }
    md.push_str(&format!(
        "\nProvider start to schema served (`terraform providers schema -json`, {}): {schema:.2} s median; \
         `terraform version` alone: {bare:.2} s.\n",
        a.providers[0].0
    ));
    println!("{md}");
    if let Some(out) = a.out {
        std::fs::write(&out, &md)?;
    }
    Ok(())
}
