//! The chat bridge deployed by `cloudcode_stack` on the test VM (the `im` block): the `cloudcode-im` image loaded
//! like the other images, the devbox's OpenCode pointed at the LLM double and the bridge at the Telegram double
//! (both listening on the VM's host side), the bot token write-only — then a user binds with the code the
//! deployed bridge prints, prompts, approves a command, and the bridge container restarts mid-answer.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cloudcode_tests::engine::{self, Kind};
use cloudcode_tests::im_fixture::bridge_binary;
use cloudcode_tests::llm_double::{LlmDouble, Step, TRIGGER_SLOW};
use cloudcode_tests::provider_bin;
use cloudcode_tests::stack_fixture::{
    apply_ok, assert_no_secret, in_vm, plan_exit, stack_hcl, with_llm_double, PASSWORD,
};
use cloudcode_tests::telegram_double::{SentMessage, TelegramDouble};
use cloudcode_tests::terraform::Workdir;
use cloudcode_tests::vm::{TestVm, VmOptions};

const ANN: i64 = 8101;
const WAIT: Duration = Duration::from_secs(180);
const LLM_KEY: &str = "sk-im-stack-double-7d1c";

fn wait_text(tg: &TelegramDouble, llm: &LlmDouble, needle: &str, vm: &TestVm) -> Vec<SentMessage> {
    tg.wait_for(ANN, |ms| ms.iter().any(|m| m.text.contains(needle)), WAIT)
        .unwrap_or_else(|_| {
            // Where the turn stopped: what OpenCode asked the LLM, what OpenCode says of its sessions, and the
            // whole logs of the bridge.
            let llm_calls: Vec<String> = llm
                .requests()
                .iter()
                .map(|r| format!("{} {} auth={} tools={}", r.method, r.path, r.authorized, !r.is_auxiliary()))
                .collect();
            panic!(
                "no message with {needle:?}: {:#?}\n--- LLM double requests ---\n{llm_calls:#?}\n--- OpenCode ---\n{}\n--- logs ---\n{}",
                tg.messages(ANN)
                    .iter()
                    .map(|m| m.text.clone())
                    .collect::<Vec<_>>(),
                in_vm(
                    vm,
                    "for c in $(docker ps -aq --filter label=com.docker.compose.project=cloudcode); do \
                     case $(docker inspect -f '{{index .Config.Labels \"com.docker.compose.service\"}}' $c) in devbox*) \
                     echo \"== $c\"; docker exec $c sh -c 'curl -s localhost:4096/session/status; echo; \
                     curl -s localhost:4096/session; echo; f=$(ls -t /home/dev/.local/share/opencode/log/*.log | head -n 1); \
                     echo \"== $f\"; tail -n 60 \"$f\"' ;; esac; done 2>&1 || true"
                ),
                in_vm(
                    vm,
                    "cd /opt/cloudcode && COMPOSE_PROFILES=blue,green docker compose logs --no-color im 2>&1; \
                     COMPOSE_PROFILES=blue,green docker compose logs --no-color --tail 40 caddy devbox_blue devbox_green 2>&1 || true"
                )
            )
        })
}

#[test]
fn the_stack_deploys_the_bridge_and_a_user_binds_prompts_approves_and_survives_its_restart() {
    engine::once(&engine::scenario(Kind::Terraform), |e| {
        let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
        let host: IpAddr = vm.host_ip.parse().expect("the VM's host-side address");
        let llm = LlmDouble::start(SocketAddr::new(host, 0), LLM_KEY).expect("LLM double");
        llm.when("GREET", vec![Step::text("Hello from the deployed box")]);
        llm.when(
            "RUNBASH",
            vec![
                Step::bash("echo deployed"),
                Step::text("bash done on the box"),
            ],
        );
        let tg = TelegramDouble::start(SocketAddr::new(host, 0));
        let image_dir = tempfile::tempdir().unwrap();
        let im = cloudcode_tests::im_image::build(&bridge_binary(), image_dir.path())
            .expect("the im image");

        let extra = format!(
            r#"  opencode_permission = {{ bash = "ask" }}
  im {{
    telegram_token_wo         = var.telegram_token
    telegram_token_wo_version = 1
    telegram_api_base         = "{api}"
  }}
"#,
            api = tg.base_url()
        );
        let hcl = with_llm_double(&stack_hcl(&vm, &extra), &llm)
            .replacen(
                "  images = {\n",
                &format!("  images = {{\n    im = \"{}\"\n", im.image),
                1,
            )
            .replacen(
                "image_archives = [",
                &format!("image_archives = [\"{}\", ", im.archive.display()),
                1,
            )
            + "\nvariable \"telegram_token\" {\n  type      = string\n  ephemeral = true\n}\n";
        let mut wd = Workdir::new_on(e, provider_bin!(), &hcl).unwrap();
        wd.set_env("TF_VAR_admin_password", PASSWORD);
        wd.set_env("TF_VAR_llm_api_key", LLM_KEY);
        wd.set_env("TF_VAR_telegram_token", &tg.token());
        wd.init().unwrap();

        // The first deploy: the token is nowhere in the trace, the state or the plan.
        wd.set_env("TF_LOG", "trace");
        let first = apply_ok(&wd);
        wd.set_env("TF_LOG", "");
        let token = tg.token();
        for (what, text) in [
            ("TF_LOG output", format!("{}{}", first.stdout, first.stderr)),
            ("state", wd.state_text()),
        ] {
            assert_no_secret(what, &text);
            assert!(!text.contains(&token), "the bot token is in the {what}");
        }
        let show = wd.tf(&["show", "-json"]).unwrap().ok().unwrap();
        let values = &show.json().unwrap()["values"]["root_module"]["resources"][0]["values"];
        assert_eq!(values["services"]["im"], "running", "{values:#}");
        // On the host: the token as a 0600 file, the config naming only the file, OpenCode asking before bash.
        let facts = in_vm(
            &vm,
            "cd /opt/cloudcode && stat -c %a secrets/im_telegram_token && grep -c token_file im/config.json \
             && grep -o '\"bash\": *\"ask\"' devbox/opencode.json",
        );
        assert_eq!(
            facts.split_whitespace().collect::<Vec<_>>()[..2],
            ["600", "1"],
            "{facts}"
        );
        assert!(facts.contains("\"ask\""), "{facts}");
        assert!(!in_vm(&vm, "cat /opt/cloudcode/im/config.json").contains(&token));

        // Bind with the code the deployed bridge prints (what `cloudcode im qr` shows).
        let link: serde_json::Value = serde_json::from_str(
            in_vm(
                &vm,
                "cd /opt/cloudcode && docker compose exec -T im cloudcode-im link",
            )
            .trim(),
        )
        .expect("cloudcode-im link prints JSON");
        let payload = link["payload"].as_str().unwrap();
        assert_eq!(
            link["links"]["telegram"],
            format!("https://t.me/{}?start={payload}", tg.username())
        );
        tg.user_says(ANN, (ANN, "ann"), &format!("/start {payload}"));
        wait_text(&tg, &llm, "Bound to box", &vm);

        // A prompt reaches the devbox's OpenCode and the answer comes back.
        tg.user_says(ANN, (ANN, "ann"), "GREET from the phone");
        wait_text(&tg, &llm, "Hello from the deployed box", &vm);

        // The stack's permission policy makes OpenCode ask; "Always" from the chat runs the command.
        tg.user_says(ANN, (ANN, "ann"), "RUNBASH please");
        wait_text(&tg, &llm, "Approval needed", &vm);
        let (msg, data) = tg
            .messages(ANN)
            .iter()
            .rev()
            .find_map(|m| {
                m.buttons
                    .iter()
                    .flatten()
                    .find(|b| b.text == "Always")
                    .map(|b| (m.message_id, b.callback_data.clone().unwrap()))
            })
            .expect("an Always button");
        tg.press_button(ANN, (ANN, "ann"), msg, &data).unwrap();
        wait_text(&tg, &llm, "bash done on the box", &vm);

        // The bridge's container restarts mid-answer: the answer arrives once (bindings and the outbox live on
        // the im_data volume).
        // Mid-answer means after this turn's own progress line (an earlier turn's already says "Working on").
        let before = SentMessage::progress_lines(&tg.messages(ANN));
        tg.user_says(ANN, (ANN, "ann"), &format!("{TRIGGER_SLOW} restart"));
        tg.wait_for(ANN, |ms| SentMessage::progress_lines(ms) > before, WAIT)
            .expect("the slow turn started");
        in_vm(
            &vm,
            "cd /opt/cloudcode && docker compose restart im >/dev/null 2>&1; echo restarted",
        );
        wait_text(&tg, &llm, "Slow sentence 20.", &vm);
        std::thread::sleep(Duration::from_secs(5));
        let n = tg
            .all_messages(ANN)
            .iter()
            .filter(|m| m.text.contains("Slow sentence 20."))
            .count();
        assert_eq!(n, 1, "the answer after the restart arrived {n} times");

        // Nothing drifted, and the plan does not show the token either.
        let (code, plan) = plan_exit(&wd);
        assert_eq!(code, 0, "{}", plan.stdout);
        assert!(!plan.stdout.contains(&token) && !plan.stderr.contains(&token));
    });
}
