//! The stack's outbound proxy and an internationalised domain on the test VM: the LLM double listens on this
//! host's loopback (127.0.0.2), which the VM cannot reach, and a real tinyproxy with Basic auth on the VM's host
//! side can. Without `proxy_wo` OpenCode gets no answer; with it, the same prompt is answered through the proxy
//! (its log shows the request), and the proxy's password is absent from the trace, state and plan. The stack
//! is served on `代码.cloudcode.test`, written in Unicode, as its xn-- form by Caddy and Authelia.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;

use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::forward_proxy::ForwardProxy;
use cloudcode_tests::llm_double::{LlmDouble, Step};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{
    apply_ok, assert_no_secret, in_vm, plan_exit, stack_hcl, with_llm_double, DOMAIN, PASSWORD,
};
use cloudcode_tests::terraform::Workdir;
use cloudcode_tests::vm::{TestVm, VmOptions};

const LLM_KEY: &str = "sk-proxy-stack-double-41ab";
const PROXY_PASSWORD: &str = "proxy-pass-3f9d-kite";
const IDN: &str = "代码.cloudcode.test";
const ASCII: &str = "xn--mnq551h.cloudcode.test";
const ANSWER: &str = "Answered through the proxy";

/// One prompt to the serving devbox's OpenCode (synchronous `POST /session/:id/message`, at most `secs`); the
/// text parts of every message of that session afterwards.
fn ask(vm: &TestVm, prompt: &str, secs: u32) -> String {
    let script = format!(
        "c=$(for id in $(docker ps -q --filter label=com.docker.compose.project=cloudcode --filter status=running); do \
         case $(docker inspect -f '{{{{index .Config.Labels \"com.docker.compose.service\"}}}}' $id) in devbox*) echo $id;; esac; \
         done | head -n 1); test -n \"$c\"; \
         sid=$(docker exec $c curl -s -X POST -H 'content-type: application/json' -d '{{}}' localhost:4096/session \
           | grep -o '\"id\":\"[^\"]*\"' | head -n 1 | cut -d'\"' -f4); \
         docker exec $c curl -s --max-time {secs} -X POST -H 'content-type: application/json' \
           -d '{{\"parts\":[{{\"type\":\"text\",\"text\":\"{prompt}\"}}]}}' localhost:4096/session/$sid/message >/dev/null || true; \
         docker exec $c curl -s localhost:4096/session/$sid/message"
    );
    let out = in_vm(vm, &script);
    let msgs: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("the session's messages are not JSON ({e}): {out}"));
    msgs.as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["parts"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["type"] == "text")
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The model calls (not title generation) the double received.
fn model_calls(llm: &LlmDouble) -> usize {
    llm.requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions") && !r.is_auxiliary())
        .count()
}

/// `curl` to the VM's Caddy for `name`, resolved to the VM: (status, headers).
fn head(vm: &TestVm, name: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--resolve",
        ])
        .arg(format!("{name}:443:{}", vm.ssh_host))
        .arg(format!("https://{name}/"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[test]
fn opencode_reaches_the_llm_only_through_the_proxy_on_an_internationalised_domain() {
    engine::once(&engine::scenario(Kind::Tofu), |e| {
        let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let host: IpAddr = vm.host_ip.parse().expect("the VM's host-side address");
        // Loopback of this host: the VM has no route to it; tinyproxy (on this host) has.
        let llm = LlmDouble::start(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0),
            LLM_KEY,
        )
        .expect("LLM double");
        llm.when("PROXYPING", vec![Step::text(ANSWER)]);
        let proxy =
            ForwardProxy::start(host, "10.231.0.0/16", "cc", PROXY_PASSWORD).expect("tinyproxy");

        let extra = r#"  proxy_wo         = var.proxy
  proxy_wo_version = var.proxy_version
  no_proxy         = [".corp.cloudcode.test", "10.0.0.0/8"]
"#;
        let hcl = with_llm_double(&stack_hcl(&vm, extra), &llm)
            .replace(&format!("domain           = \"{DOMAIN}\""), &format!("domain           = \"{IDN}\""))

            + "\nvariable \"proxy\" {\n  type      = string\n  ephemeral = true\n  default   = null\n}\n\
               variable \"proxy_version\" {\n  type    = number\n  default = null\n}\n\
               output \"url\" {\n  value = cloudcode_stack.box.url\n}\n";
        assert!(hcl.contains(IDN), "the HCL names the Unicode domain");
        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env("TF_VAR_llm_api_key", LLM_KEY);
        wd.init().unwrap();

        // 1. No proxy: the site is served on the xn-- name, and OpenCode cannot reach the LLM.
        apply_ok(&wd);
        let url = wd.tf(&["output", "-raw", "url"]).unwrap().stdout;
        assert_eq!(url.trim(), format!("https://{ASCII}/"));
        let (code, headers) = head(&vm, ASCII);
        assert_eq!(
            code, 302,
            "Caddy serves the ASCII name and sends to the login:\n{headers}"
        );
        assert!(
            headers.contains(&format!("https://auth.{ASCII}/")),
            "{headers}"
        );
        let auth = in_vm(&vm, "grep -c 'xn--mnq551h.cloudcode.test' /opt/cloudcode/authelia/configuration.yml; \
                               grep -c '代码' /opt/cloudcode/authelia/configuration.yml /opt/cloudcode/caddy/Caddyfile || true");
        let counts: Vec<&str> = auth.lines().collect();
        assert!(
            counts[0].parse::<u32>().unwrap_or(0) >= 1,
            "Authelia's cookie domain is the xn-- name: {auth}"
        );
        assert!(
            counts[1..].iter().all(|l| l.ends_with(":0")),
            "no Unicode name on the host: {auth}"
        );
        let without = ask(&vm, "PROXYPING without a proxy", 45);
        assert!(
            !without.contains(ANSWER),
            "answered without the proxy: {without}"
        );
        assert_eq!(
            model_calls(&llm),
            0,
            "the double was reached without the proxy"
        );
        assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

        // 2. With the proxy: its password nowhere in the plan, the trace or the state.
        wd.set_env("TF_VAR_proxy", &proxy.url);
        wd.set_env("TF_VAR_proxy_version", "1");
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 2, "a proxy is a change: {}", plan.stdout);
        assert!(plan.stdout.contains("proxy_wo_version"), "{}", plan.stdout);
        wd.set_env("TF_LOG", "trace");
        let applied = apply_ok(&wd);
        wd.set_env("TF_LOG", "");
        for (what, text) in [
            ("plan output", format!("{}{}", plan.stdout, plan.stderr)),
            (
                "TF_LOG output",
                format!("{}{}", applied.stdout, applied.stderr),
            ),
            ("state", wd.state_text()),
        ] {
            assert_no_secret(what, &text);
            assert!(
                !text.contains(PROXY_PASSWORD),
                "the proxy's password is in the {what}"
            );
        }
        let facts = in_vm(
            &vm,
            "cd /opt/cloudcode && stat -c %a secrets/proxy.env && grep -c . secrets/proxy.env",
        );
        assert_eq!(facts.split_whitespace().next(), Some("600"), "{facts}");
        let answer = ask(&vm, "PROXYPING with the proxy", 120);
        assert!(
            answer.contains(ANSWER),
            "no answer through the proxy: {answer}\n--- proxy log ---\n{}",
            proxy.log()
        );
        assert!(model_calls(&llm) >= 1);
        let through: Vec<String> = proxy.requests();
        let wanted = format!("POST {}/chat/completions", llm.base_url());
        assert!(
            through.iter().any(|r| r == &wanted),
            "{wanted} not in {through:?}"
        );
        eprintln!("forwarded by the proxy: {through:?}");
        // The stack's own names stay direct: the devbox's health check never went through the proxy.
        assert!(
            through
                .iter()
                .all(|r| !r.contains("localhost") && !r.contains("127.0.0.1")),
            "{through:?}"
        );

        // 3. Converged: nothing to change, the write-only proxy not asked for again.
        wd.unset_env("TF_VAR_proxy");
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "{}\n{}", plan.stdout, plan.stderr);
    });
}
