//! Benchmark of the chat bridge (`bench/run.sh im`): the latency it adds from a chat message to OpenCode's prompt
//! and from OpenCode's last event of a turn to the chat message, p50/p95 over N turns with the real OpenCode and
//! the Telegram double on this machine; the PNG render time of a 200-line block; the bridge's idle RSS.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cloudcode_tests::delay_proxy::DelayProxy;
use cloudcode_tests::im_fixture::{ImBox, ImBridge};
use cloudcode_tests::llm_double::{LlmDouble, Step};
use cloudcode_tests::opencode_fixture::OpencodeServer;
use cloudcode_tests::telegram_double::TelegramDouble;

/// `--turns N` (20), `--renders N` (20), `--out FILE` (also write a Markdown table).
struct Args {
    turns: usize,
    renders: usize,
    out: Option<std::path::PathBuf>,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args {
            turns: 20,
            renders: 20,
            out: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
            match k.as_str() {
                "--turns" => a.turns = v.parse().expect("--turns: a number"),
                "--renders" => a.renders = v.parse().expect("--renders: a number"),
                "--out" => a.out = Some(v.into()),
                _ => panic!("unknown argument {k}; use --turns, --renders, --out"),
            }
        }
        a
    }
}

const ANN: i64 = 9001;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn wait(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args = Args::parse();
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let llm = LlmDouble::start(local, "sk-bench").expect("LLM double");
    llm.when("PING", vec![Step::text("PONG")]);
    let oc = OpencodeServer::start(&llm, serde_json::Value::Null).expect("opencode");
    let oc_addr: SocketAddr = oc
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    // The bridge reaches OpenCode through a tap that timestamps the prompt's arrival.
    let proxy = DelayProxy::start(oc_addr, Duration::ZERO).expect("proxy");
    const PROMPT: &[u8] = b"/prompt_async";
    // The end of a turn as the bridge receives it: OpenCode's `session.status` idle event.
    const IDLE: &[u8] = br#"{"type":"idle"}"#;
    proxy.tap(PROMPT);
    proxy.tap(IDLE);
    let tg = TelegramDouble::start_local();
    tg.set_edit_flood_limit(None);
    let bridge = ImBridge::start(
        &[ImBox {
            id: "bench".into(),
            name: "bench".into(),
            opencode_url: format!("http://{}", proxy.addr()),
        }],
        Some((&tg.base_url(), &tg.token())),
        None,
    );
    tg.user_says(
        ANN,
        (ANN, "ann"),
        &format!("/start {}", bridge.payload("bench")),
    );
    wait("the bind", Duration::from_secs(60), || {
        tg.messages(ANN).iter().any(|m| m.text.contains("Bound to"))
    });

    let (mut inbound, mut outbound) = (Vec::new(), Vec::new());
    for i in 0..args.turns + 2 {
        let answers = |tg: &TelegramDouble| {
            tg.messages(ANN)
                .iter()
                .filter(|m| m.text.contains("PONG"))
                .count()
        };
        let before = answers(&tg);
        let t0 = Instant::now();
        tg.user_says(ANN, (ANN, "ann"), &format!("PING {i}"));
        wait("the prompt", Duration::from_secs(60), || {
            proxy.tapped(PROMPT).len() > i
        });
        let t_prompt = proxy.tapped(PROMPT)[i];
        wait("the answer", Duration::from_secs(120), || {
            answers(&tg) > before
        });
        // The answer's send, and the last idle event OpenCode emitted before it (the one that ended the turn).
        let t_sent = tg
            .calls_of("sendMessage")
            .iter()
            .filter(|c| c.at > t_prompt && c.status == 200)
            .map(|c| c.at)
            .next_back()
            .expect("the answer's send");
        let t_idle = *proxy.tapped(IDLE).iter().rfind(|t| **t > t_prompt && **t < t_sent).unwrap_or_else(|| {
            let rel: Vec<i128> = proxy.tapped(IDLE).iter().map(|t| t.duration_since(t0).as_millis() as i128 - t0.duration_since(*t).as_millis() as i128).collect();
            panic!("turn {i}: no idle event between the prompt (+{:?}) and the answer (+{:?}); idles at {rel:?} ms", t_prompt - t0, t_sent - t0)
        });
        // The first two turns warm up (session creation, title generation).
        if i >= 2 {
            inbound.push((t_prompt - t0).as_secs_f64() * 1000.0);
            outbound.push((t_sent.saturating_duration_since(t_idle)).as_secs_f64() * 1000.0);
        }
        // Users may send 20 messages a minute: pace the turns under that.
        std::thread::sleep(Duration::from_secs(3).saturating_sub(t0.elapsed()));
    }

    let code: String = (0..200)
        .map(|i| format!("    let value_{i} = compute({i}, \"text\"); // 第{i}行\n"))
        .collect();
    if args.renders > 0 {
        let _ = cloudcode_im::render::render_code(&code, Some("rust"));
    }
    let mut renders: Vec<f64> = (0..args.renders)
        .map(|_| {
            let t = Instant::now();
            cloudcode_im::render::render_code(&code, Some("rust")).expect("render");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();

    std::thread::sleep(Duration::from_secs(10));
    let rss = bridge.pid().map(rss_kib).unwrap_or(0);
    let result = serde_json::json!({
        "turns": inbound.len(),
        "inbound_ms": { "p50": percentile(&mut inbound, 0.5), "p95": percentile(&mut inbound, 0.95) },
        "outbound_ms": { "p50": percentile(&mut outbound, 0.5), "p95": percentile(&mut outbound, 0.95) },
        "render_200_lines_ms": { "p50": percentile(&mut renders, 0.5), "p95": percentile(&mut renders, 0.95) },
        "idle_rss_mib": rss as f64 / 1024.0,
    });
    println!("{result}");
    if let Some(out) = args.out {
        let f = |k: &str, p: &str| result[k][p].as_f64().unwrap_or(f64::NAN);
        let md = format!(
            "| measure | p50 | p95 | target |\n| --- | --- | --- | --- |\n\
             | chat message → OpenCode prompt (ms) | {:.1} | {:.1} | ≤ 50 |\n\
             | OpenCode's last event → chat message (ms) | {:.1} | {:.1} | ≤ 50 |\n\
             | PNG of a 200-line block (ms) | {:.1} | {:.1} | ≤ 150 |\n\
             | idle RSS of the bridge (MiB) | {:.1} | | ≤ 30 |\n",
            f("inbound_ms", "p50"),
            f("inbound_ms", "p95"),
            f("outbound_ms", "p50"),
            f("outbound_ms", "p95"),
            f("render_200_lines_ms", "p50"),
            f("render_200_lines_ms", "p95"),
            result["idle_rss_mib"].as_f64().unwrap_or(0.0)
        );
        std::fs::write(out, md).expect("write the results");
    }
}
