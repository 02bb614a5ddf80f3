//! The "Chat with your box" guide, followed with the `cloudcode` CLI on the test VM: deploy with
//! `--telegram-token-env`, show the bind code with `cloudcode im qr`, bind by its link, get an answer; the same
//! deploy again changes nothing; the token is in no file of the stack directory and in no output.
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cloudcode_tests::im_fixture::bridge_binary;
use cloudcode_tests::llm_double::{LlmDouble, Step};
use cloudcode_tests::provider_bin;
use cloudcode_tests::telegram_double::TelegramDouble;
use cloudcode_tests::vm::{TestVm, VmOptions};

const CLI: &str = env!("CARGO_BIN_EXE_cloudcode-cli-under-test");
const PASSWORD: &str = "guide-test-password-2291-lynx";
const LLM_KEY: &str = "sk-guide-double-55aa";
const DOMAIN: &str = "guide.cloudcode.test";
const ANN: i64 = 8201;

struct Cli {
    home: tempfile::TempDir,
    provider_dir: tempfile::TempDir,
    token: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(CLI)
            .args(args)
            .env("CLOUDCODE_HOME", self.home.path())
            .env("CLOUDCODE_PROVIDER_DIR", self.provider_dir.path())
            .env("CLOUDCODE_ADMIN_PASSWORD", PASSWORD)
            .env("CLOUDCODE_LLM_API_KEY", LLM_KEY)
            .env("TELEGRAM_TOKEN", &self.token)
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap();
        for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !String::from_utf8_lossy(text).contains(&self.token),
                "the bot token is in the {what} of {args:?}"
            );
        }
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cloudcode {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn a_new_user_following_the_guide_deploys_with_the_cli_binds_by_qr_and_gets_an_answer() {
    let vm = TestVm::start(VmOptions::default()).expect("start the test VM");
    let host: IpAddr = vm.host_ip.parse().unwrap();
    let llm = LlmDouble::start(SocketAddr::new(host, 0), LLM_KEY).unwrap();
    llm.when("GREET", vec![Step::text("Hello, guide reader")]);
    let tg = TelegramDouble::start(SocketAddr::new(host, 0));
    let images = tempfile::tempdir().unwrap();
    let im = cloudcode_tests::im_image::build(&bridge_binary(), images.path()).unwrap();
    let cli = Cli {
        home: tempfile::tempdir().unwrap(),
        provider_dir: tempfile::tempdir().unwrap(),
        token: tg.token(),
    };
    std::fs::copy(
        provider_bin!(),
        cli.provider_dir.path().join("terraform-provider-cloudcode"),
    )
    .unwrap();

    // Step 2 of the guide: deploy with the token from an environment variable.
    let mut args: Vec<String> = vec!["--name".into(), "guide".into()];
    for a in cloudcode_tests::stack_fixture::cli_deploy_args(&vm, DOMAIN) {
        args.push(if a == "anthropic" {
            "openai_compatible".into()
        } else {
            a
        });
    }
    for a in [
        "--llm-base-url",
        &llm.base_url(),
        "--llm-model",
        llm.model_id(),
        "--telegram-token-env",
        "TELEGRAM_TOKEN",
        "--telegram-api-base",
        &tg.base_url(),
        "--opencode-permission",
        "bash=ask",
        "--image",
        &format!("im={}", im.image),
        "--image-archive",
        &im.archive.display().to_string(),
    ] {
        args.push(a.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli.ok(&args);
    let im_id = || {
        vm.exec_in_vm_ok("docker ps -q --filter label=com.docker.compose.service=im")
            .unwrap()
            .trim()
            .to_string()
    };
    let first = im_id();
    assert!(!first.is_empty(), "no im container");

    // Step 3: `cloudcode im qr` shows the code (terminal + PNG); its link binds the chat.
    let png = cli.home.path().join("qr.png");
    let out = cli.ok(&[
        "--name",
        "guide",
        "im",
        "qr",
        "--png",
        png.to_str().unwrap(),
    ]);
    let link = out
        .lines()
        .find(|l| l.starts_with("https://t.me/"))
        .unwrap_or_else(|| panic!("no link in {out}"));
    assert!(
        link.starts_with(&format!("https://t.me/{}?start=", tg.username())),
        "{link}"
    );
    assert_eq!(
        &std::fs::read(&png).unwrap()[..8],
        b"\x89PNG\r\n\x1a\n",
        "the QR PNG"
    );
    let payload = link.split("start=").nth(1).unwrap();
    tg.user_says(ANN, (ANN, "ann"), &format!("/start {payload}"));
    tg.wait_for(
        ANN,
        |ms| ms.iter().any(|m| m.text.contains("Bound to")),
        Duration::from_secs(120),
    )
    .expect("bound");

    // Step 4: a message gets the agent's answer.
    tg.user_says(ANN, (ANN, "ann"), "GREET me");
    tg.wait_for(
        ANN,
        |ms| ms.iter().any(|m| m.text.contains("Hello, guide reader")),
        Duration::from_secs(180),
    )
    .unwrap_or_else(|_| {
        panic!(
            "no answer: {:?}",
            tg.messages(ANN).iter().map(|m| &m.text).collect::<Vec<_>>()
        )
    });
    let users: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--name", "guide", "im", "users", "--json"])).unwrap();
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1), "{users}");

    // The same deploy again (CI and GitOps re-run it): the bridge is not recreated; the token is stored nowhere
    // in the stack directory.
    cli.ok(&args);
    assert_eq!(
        im_id(),
        first,
        "a re-deploy with the same token recreated the bridge"
    );
    assert!(
        files_containing(cli.home.path(), &tg.token()).is_empty(),
        "the token is in a stack file"
    );
}
