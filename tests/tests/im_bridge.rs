//! The chat bridge end to end on this machine: the real `cloudcode-im` binary, the real `opencode serve` pointed at
//! the LLM double, and the Telegram Bot API contract double. (The same bridge deployed by the stack on the test
//! VM is covered in `im_stack.rs`.)
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cloudcode_tests::delay_proxy::DelayProxy;
use cloudcode_tests::dingtalk_double::DingTalkDouble;
use cloudcode_tests::im_fixture::{ImBox, ImBridge};
use cloudcode_tests::llm_double::{
    canned, LlmDouble, Step, TRIGGER_CODE, TRIGGER_LONG, TRIGGER_SLOW,
};
use cloudcode_tests::opencode_fixture::{opencode_binary, OpencodeServer};
use cloudcode_tests::telegram_double::{Failure, SentMessage, TelegramDouble};
use serde_json::json;

const ANN: i64 = 7001;
const BOB: i64 = 7002;
const WAIT: Duration = Duration::from_secs(120);

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Skips (with the reason printed) when OpenCode's binary is not installed; the README's test command installs it.
macro_rules! require_opencode {
    () => {
        if let Err(why) = opencode_binary() {
            // In CI the README's test command installs OpenCode: a missing binary there is a failure.
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIP: {why}");
            return;
        }
    };
}

fn texts(msgs: &[SentMessage]) -> Vec<String> {
    msgs.iter().map(|m| m.text.clone()).collect()
}

/// Waits until a message of the chat contains `needle`; returns all messages then.
fn wait_text(tg: &TelegramDouble, chat: i64, needle: &str, bridge: &ImBridge) -> Vec<SentMessage> {
    tg.wait_for(chat, |ms| ms.iter().any(|m| m.text.contains(needle)), WAIT)
        .unwrap_or_else(|_| {
            panic!(
                "no message with {needle:?} in chat {chat}; it has {:#?}\n--- bridge log ---\n{}",
                texts(&tg.messages(chat)),
                bridge.log()
            )
        })
}

fn count(tg: &TelegramDouble, chat: i64, needle: &str) -> usize {
    tg.all_messages(chat)
        .iter()
        .filter(|m| m.text.contains(needle))
        .count()
}

/// After a quiet moment (a duplicate would have arrived by then), `needle` was sent exactly `n` times.
fn assert_sent_times(tg: &TelegramDouble, chat: i64, needle: &str, n: usize) {
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(tg, chat, needle),
        n,
        "{needle:?} sent a wrong number of times: {:#?}",
        texts(&tg.all_messages(chat))
    );
}

fn bind(tg: &TelegramDouble, bridge: &ImBridge, who: (i64, &str), payload: &str) {
    tg.user_says(who.0, who, &format!("/start {payload}"));
    wait_text(tg, who.0, "Bound to", bridge);
}

/// A user's (waiting, missed) messages as `cloudcode-im users` reports them.
fn backlog(bridge: &ImBridge, user: i64) -> (i64, i64) {
    let users = bridge.cli(&["users"]);
    let u = users["users"]
        .as_array()
        .expect("a user list")
        .iter()
        .find(|u| u["user"].as_str().and_then(|s| s.parse::<i64>().ok()) == Some(user))
        .unwrap_or_else(|| panic!("user {user} is not listed: {users}"));
    (
        u["waiting"].as_i64().expect("waiting"),
        u["missed"].as_i64().expect("missed"),
    )
}

/// Waits until the chat got at least `n` "Queued" replies.
fn wait_queued(tg: &TelegramDouble, chat: i64, n: usize) {
    tg.wait_for(
        chat,
        |ms| {
            ms.iter()
                .filter(|m| m.text.starts_with("🕒 Queued"))
                .count()
                >= n
        },
        WAIT,
    )
    .unwrap_or_else(|_| {
        panic!(
            "fewer than {n} queued replies: {:#?}",
            texts(&tg.messages(chat))
        )
    });
}

/// The message carrying a button labelled `label`, and that button's callback data.
fn button(tg: &TelegramDouble, chat: i64, label: &str) -> (i64, String) {
    tg.messages(chat)
        .iter()
        .rev()
        .find_map(|m| {
            m.buttons
                .iter()
                .flatten()
                .find(|b| b.text == label)
                .map(|b| (m.message_id, b.callback_data.clone().unwrap_or_default()))
        })
        .unwrap_or_else(|| {
            panic!(
                "no button {label:?} in chat {chat}: {:#?}",
                tg.messages(chat)
            )
        })
}

#[test]
fn telegram_user_binds_by_code_prompts_approves_rejects_with_feedback_queues_cancels_and_resets() {
    require_opencode!();
    let llm = LlmDouble::start(local(), "sk-double").unwrap();
    llm.when("GREET", vec![Step::text("Hello from the agent")]);
    llm.when(
        "RUNBASH",
        vec![Step::bash("echo bridged"), Step::text("bash done: bridged")],
    );
    llm.when(
        "REJECTME",
        vec![
            Step::bash("rm -rf build"),
            Step::text("understood, build stays"),
        ],
    );
    let oc = OpencodeServer::start(&llm, json!({ "bash": "ask" })).unwrap();
    let tg = TelegramDouble::start_local();
    let bridge = ImBridge::start(
        &[ImBox {
            id: "boxA".into(),
            name: "alpha".into(),
            opencode_url: oc.base_url(),
        }],
        Some((&tg.base_url(), &tg.token())),
        None,
    );

    // An unbound user is told how to bind, and nothing of theirs reaches the agent.
    tg.user_says(ANN, (ANN, "ann"), "GREET unbound");
    wait_text(&tg, ANN, "cloudcode im qr", &bridge);
    assert!(
        !llm.any_request_contains("GREET unbound"),
        "an unbound user's text reached the model"
    );

    // The link is Telegram's deep link carrying the payload, which fits the start parameter.
    let link = bridge.cli(&["link", "--box", "boxA"]);
    let payload = link["payload"].as_str().unwrap().to_string();
    assert!(
        payload.len() <= 64 && payload.starts_with("boxA_"),
        "{payload}"
    );
    assert_eq!(
        link["links"]["telegram"],
        json!(format!("https://t.me/{}?start={payload}", tg.username()))
    );

    // A forged code is refused; the real one binds; a second user binds too.
    tg.user_says(
        ANN,
        (ANN, "ann"),
        &format!("/start boxA_{}", "A".repeat(22)),
    );
    wait_text(&tg, ANN, "Not bound", &bridge);
    bind(&tg, &bridge, (ANN, "ann"), &payload);
    bind(&tg, &bridge, (BOB, "bob"), &payload);
    let users = bridge.cli(&["users"]);
    assert_eq!(users["users"].as_array().unwrap().len(), 2, "{users}");

    // A prompt: both users get the answer once, with the online list.
    tg.user_says(ANN, (ANN, "ann"), "GREET please");
    for chat in [ANN, BOB] {
        let msgs = wait_text(&tg, chat, "Hello from the agent", &bridge);
        let answer = msgs
            .iter()
            .find(|m| m.text.contains("Hello from the agent"))
            .unwrap();
        assert!(
            answer.text.contains("Online: ann, bob") || answer.text.contains("Online: bob, ann"),
            "{}",
            answer.text
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        (
            count(&tg, ANN, "Hello from the agent"),
            count(&tg, BOB, "Hello from the agent")
        ),
        (1, 1)
    );

    // A 60-line code block arrives as a PNG of the renderer's size for those 60 lines.
    tg.user_says(ANN, (ANN, "ann"), &format!("{TRIGGER_CODE} now"));
    let msgs = tg
        .wait_for(ANN, |ms| ms.iter().any(|m| m.photo.is_some()), WAIT)
        .unwrap_or_else(|_| panic!("no photo; log:\n{}", bridge.log()));
    let photo = msgs.iter().find_map(|m| m.photo.clone()).unwrap();
    let fenced = canned::rust_code_block();
    let code = fenced
        .split("```rust\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    assert_eq!(code.lines().count(), 60);
    let expected = cloudcode_im::render::render_code(code, Some("rust")).unwrap();
    assert_eq!(
        (photo.format, photo.width, photo.height),
        ("png", expected.width, expected.height)
    );
    let ten = cloudcode_im::render::render_code(
        &code.lines().take(10).collect::<Vec<_>>().join("\n"),
        Some("rust"),
    )
    .unwrap();
    assert!(
        photo.height > ten.height * 4,
        "60 lines are not taller than 10: {} vs {}",
        photo.height,
        ten.height
    );

    // A long answer is split under 4096 characters, the code block inside it kept whole.
    let before = tg.all_messages(ANN).len();
    tg.user_says(ANN, (ANN, "ann"), &format!("{TRIGGER_LONG} please"));
    wait_text(&tg, ANN, "End of the long answer.", &bridge);
    let parts: Vec<SentMessage> = tg
        .all_messages(ANN)
        .into_iter()
        .skip(before)
        .filter(|m| m.text.contains("Paragraph"))
        .collect();
    assert!(
        parts.len() >= 2,
        "the long answer was not split: {:?}",
        texts(&parts)
    );
    for p in &parts {
        assert!(
            p.text.encode_utf16().count() <= 4096,
            "a part is {} long",
            p.text.encode_utf16().count()
        );
    }
    assert!(
        parts.iter().any(|p| p
            .entities
            .iter()
            .any(|e| e.kind == "pre" && e.language.as_deref() == Some("python"))),
        "the python block is not a pre entity: {:?}",
        parts.iter().map(|p| &p.entities).collect::<Vec<_>>()
    );

    // A command that needs permission: buttons; "Always" runs it, and the same command is not asked again.
    tg.user_says(ANN, (ANN, "ann"), "RUNBASH one");
    wait_text(&tg, BOB, "Approval needed", &bridge);
    let (msg, always) = button(&tg, ANN, "Always");
    let labels: Vec<String> = tg
        .messages(ANN)
        .iter()
        .find(|m| m.message_id == msg)
        .unwrap()
        .buttons
        .iter()
        .flatten()
        .map(|b| b.text.clone())
        .collect();
    assert_eq!(
        labels,
        ["Allow once", "Always", "Reject", "Reject with feedback"]
    );
    tg.press_button(ANN, (ANN, "ann"), msg, &always).unwrap();
    wait_text(&tg, ANN, "bash done: bridged", &bridge);
    wait_text(&tg, BOB, "Allowed always by ann", &bridge);
    tg.user_says(ANN, (ANN, "ann"), "RUNBASH two");
    tg.wait_for(
        ANN,
        |ms| {
            ms.iter()
                .filter(|m| m.text.contains("bash done: bridged"))
                .count()
                == 2
        },
        WAIT,
    )
    .unwrap_or_else(|_| {
        panic!(
            "the second run did not finish: {:#?}\n{}",
            texts(&tg.messages(ANN)),
            bridge.log()
        )
    });
    assert_eq!(
        count(&tg, ANN, "Approval needed") + count(&tg, ANN, "Allowed always"),
        1,
        "asked again after Always"
    );

    // Reject with feedback: the feedback reaches the model and the agent carries on.
    tg.user_says(BOB, (BOB, "bob"), "REJECTME now");
    wait_text(&tg, BOB, "Approval needed", &bridge);
    let (msg, feedback) = button(&tg, BOB, "Reject with feedback");
    tg.press_button(BOB, (BOB, "bob"), msg, &feedback).unwrap();
    tg.wait_for(
        BOB,
        |_| {
            tg.callback_answers()
                .iter()
                .any(|a| a.text.as_deref() == Some("Send your feedback as the next message."))
        },
        WAIT,
    )
    .expect("the feedback prompt");
    tg.user_says(BOB, (BOB, "bob"), "please move it to the trash instead");
    wait_text(&tg, BOB, "understood, build stays", &bridge);
    assert!(
        llm.any_request_contains("please move it to the trash instead"),
        "the feedback did not reach the model"
    );
    assert!(
        !llm.any_request_contains("REJECTME nowplease"),
        "feedback was sent as a prompt"
    );

    // A message while a turn runs is queued; /cancel stops the turn and drops the queue.
    tg.user_says(ANN, (ANN, "ann"), &format!("{TRIGGER_SLOW} go"));
    wait_text(&tg, ANN, "Working on", &bridge);
    tg.user_says(ANN, (ANN, "ann"), "GREET while busy");
    wait_text(&tg, ANN, "Queued (1 waiting)", &bridge);
    tg.user_says(ANN, (ANN, "ann"), "/cancel");
    wait_text(&tg, ANN, "1 queued message dropped", &bridge);
    wait_text(&tg, ANN, "Cancelled", &bridge);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !llm.any_request_contains("GREET while busy"),
        "a dropped message reached the model"
    );

    // /reset-qr: everyone is unbound and the old code stops working; the new one binds.
    tg.user_says(ANN, (ANN, "ann"), "/reset_qr");
    wait_text(&tg, ANN, "all 2 users were unbound", &bridge);
    wait_text(&tg, BOB, "you were unbound", &bridge);
    tg.user_says(ANN, (ANN, "ann"), &format!("/start {payload}"));
    tg.wait_for(
        ANN,
        |ms| ms.iter().filter(|m| m.text.contains("Not bound")).count() == 2,
        WAIT,
    )
    .expect("old code refused");
    let fresh = bridge.payload("boxA");
    assert_ne!(fresh, payload);
    bind(&tg, &bridge, (ANN, "ann"), &fresh);

    // The bot token never reaches the bridge's log.
    assert!(
        !bridge.log().contains(&tg.token()),
        "the bot token is in the log"
    );
}

#[test]
fn stream_cuts_telegram_outages_and_bridge_restarts_deliver_every_answer_once_in_order() {
    require_opencode!();
    let llm = LlmDouble::start(local(), "sk-double").unwrap();
    for n in 1..=3 {
        llm.when(
            &format!("ORDER{n}"),
            vec![Step::Slow {
                text: format!("answer number {n} done"),
                chunk_chars: 4,
                delay: Duration::from_millis(150),
            }],
        );
    }
    llm.when(
        "QUICKRESTART",
        vec![Step::text("answer to the quick restart")],
    );
    let oc = OpencodeServer::start(&llm, serde_json::Value::Null).unwrap();
    let oc_addr: SocketAddr = oc.base_url().trim_start_matches("http://").parse().unwrap();
    let proxy = DelayProxy::start(oc_addr, Duration::ZERO).unwrap();
    let tg = TelegramDouble::start_local();
    let mut bridge = ImBridge::start(
        &[ImBox {
            id: "boxR".into(),
            name: "resilient".into(),
            opencode_url: format!("http://{}", proxy.addr()),
        }],
        Some((&tg.base_url(), &tg.token())),
        None,
    );
    let payload = bridge.payload("boxR");
    bind(&tg, &bridge, (ANN, "ann"), &payload);

    // The event stream is cut mid-turn: the final answer still arrives, exactly once.
    tg.user_says(ANN, (ANN, "ann"), &format!("{TRIGGER_SLOW} cut me"));
    wait_text(&tg, ANN, "Working on", &bridge);
    std::thread::sleep(Duration::from_millis(800));
    assert!(proxy.cut_all() > 0, "no connection to cut");
    wait_text(&tg, ANN, "Slow sentence 20.", &bridge);
    assert_sent_times(&tg, ANN, "Slow sentence 20.", 1);

    // The bridge restarts mid-answer (SIGTERM, as `docker restart`): no duplicate, no loss.
    tg.user_says(ANN, (ANN, "ann"), &format!("{TRIGGER_SLOW} restart me"));
    tg.wait_for(ANN, |ms| SentMessage::progress_lines(ms) >= 2, WAIT)
        .expect("second turn started");
    bridge.restart();
    tg.wait_for(
        ANN,
        |ms| {
            ms.iter()
                .filter(|m| m.text.contains("Slow sentence 20."))
                .count()
                >= 2
        },
        WAIT,
    )
    .unwrap_or_else(|_| panic!("the answer after the restart was lost:\n{}", bridge.log()));
    assert_sent_times(&tg, ANN, "Slow sentence 20.", 2);

    // The bridge restarts the moment a prompt arrives (it may be polling, holding or handling it; Telegram counts
    // an update delivered once the next poll asks past it): the prompt is answered, once.
    tg.user_says(ANN, (ANN, "ann"), "QUICKRESTART now");
    bridge.restart();
    wait_text(&tg, ANN, "answer to the quick restart", &bridge);
    assert_sent_times(&tg, ANN, "answer to the quick restart", 1);

    // Three prompts (two queued), then Telegram refuses with 429 and is away (502) while they are answered:
    // each answer arrives once, in order, and the bridge honoured retry_after.
    for n in 1..=3 {
        tg.user_says(ANN, (ANN, "ann"), &format!("ORDER{n} please"));
    }
    wait_queued(&tg, ANN, 2);
    tg.fail_next(
        "sendMessage",
        1,
        Failure::TooManyRequests { retry_after_s: 2 },
    );
    tg.set_unavailable(Duration::from_secs(8));
    let started = Instant::now();
    let msgs = tg
        .wait_for(
            ANN,
            |ms| ms.iter().any(|m| m.text.contains("answer number 3 done")),
            WAIT,
        )
        .unwrap_or_else(|_| {
            panic!(
                "not all answers arrived: {:#?}\n{}",
                texts(&tg.messages(ANN)),
                bridge.log()
            )
        });
    let order: Vec<usize> = msgs
        .iter()
        .filter_map(|m| (1..=3).find(|n| m.text.contains(&format!("answer number {n} done"))))
        .collect();
    assert_eq!(order, [1, 2, 3], "answers out of order or duplicated");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        tg.refused_during_hold(),
        0,
        "the bridge called again before retry_after"
    );
    assert!(
        bridge.running(),
        "the bridge died during the outage:\n{}",
        bridge.log()
    );
}

#[test]
fn users_unreachable_while_tasks_finish_get_the_newest_answers_once_and_a_missed_count() {
    require_opencode!();
    let llm = LlmDouble::start(local(), "sk-double").unwrap();
    llm.when(
        "AWAY1",
        vec![Step::Slow {
            text: "Result ALPHA: the first task is finished after a while of careful work.".into(),
            chunk_chars: 4,
            delay: Duration::from_millis(200),
        }],
    );
    llm.when(
        "AWAY2",
        vec![Step::text("Result BRAVO: the second task is finished.")],
    );
    llm.when(
        "AWAY3",
        vec![Step::text("Result CHARLIE: the third task is finished.")],
    );
    let oc = OpencodeServer::start(&llm, serde_json::Value::Null).unwrap();
    let tg = TelegramDouble::start_local();
    // A backlog of 2 per user (20 by default) so that three finished tasks overflow it.
    let mut bridge = ImBridge::start_with(
        &[ImBox {
            id: "boxO".into(),
            name: "away".into(),
            opencode_url: oc.base_url(),
        }],
        Some((&tg.base_url(), &tg.token())),
        None,
        json!({ "backlog": 2 }),
    );
    let payload = bridge.payload("boxO");
    bind(&tg, &bridge, (ANN, "ann"), &payload);
    bind(&tg, &bridge, (BOB, "bob"), &payload);

    // Ann starts a task and queues two more; Bob only watches.
    tg.user_says(ANN, (ANN, "ann"), "AWAY1 please");
    wait_text(&tg, ANN, "Working on", &bridge);
    tg.user_says(ANN, (ANN, "ann"), "AWAY2 please");
    tg.user_says(ANN, (ANN, "ann"), "AWAY3 please");
    wait_queued(&tg, ANN, 2);
    assert!(
        !llm.any_request_contains("AWAY2"),
        "the second task was sent while the first ran"
    );

    // Telegram cannot be reached (the box's network is down) while all three tasks finish: each user keeps the
    // two newest answers and counts the oldest one as missed.
    tg.set_unavailable(Duration::from_secs(3600));
    let deadline = Instant::now() + WAIT;
    while [ANN, BOB].iter().any(|u| backlog(&bridge, *u) != (2, 1)) {
        assert!(
            Instant::now() < deadline,
            "the backlogs never reached 2 waiting + 1 missed: ann {:?}, bob {:?}\n{}",
            backlog(&bridge, ANN),
            backlog(&bridge, BOB),
            bridge.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        llm.any_request_contains("AWAY3"),
        "the third task never ran"
    );

    // The backlog survives a restart of the bridge; then Telegram is back.
    bridge.restart();
    tg.set_unavailable(Duration::ZERO);
    for chat in [ANN, BOB] {
        wait_text(&tg, chat, "Result CHARLIE", &bridge);
        assert_sent_times(&tg, chat, "Result CHARLIE", 1);
        assert_eq!(count(&tg, chat, "Result BRAVO"), 1, "chat {chat}");
        assert_eq!(
            count(&tg, chat, "Result ALPHA"),
            0,
            "chat {chat}: the dropped answer arrived"
        );
        let all = tg.all_messages(chat);
        let at = |needle: &str| {
            all.iter()
                .position(|m| m.text.contains(needle))
                .unwrap_or_else(|| panic!("chat {chat} has no {needle:?}: {:#?}", texts(&all)))
        };
        let notice = at("You missed 1 message while");
        assert!(
            notice < at("Result BRAVO") && at("Result BRAVO") < at("Result CHARLIE"),
            "chat {chat}: not notice, second, third: {:#?}",
            texts(&all)
        );
        assert_eq!(count(&tg, chat, "You missed"), 1, "chat {chat}");
    }
    assert_eq!(backlog(&bridge, ANN), (0, 0));
    assert_eq!(backlog(&bridge, BOB), (0, 0));
}

#[test]
fn one_user_switches_between_two_boxes() {
    require_opencode!();
    let (llm1, llm2) = (
        LlmDouble::start(local(), "k1").unwrap(),
        LlmDouble::start(local(), "k2").unwrap(),
    );
    llm1.when("WHO", vec![Step::text("this is box one")]);
    llm2.when("WHO", vec![Step::text("this is box two")]);
    let (oc1, oc2) = (
        OpencodeServer::start(&llm1, serde_json::Value::Null).unwrap(),
        OpencodeServer::start(&llm2, serde_json::Value::Null).unwrap(),
    );
    let tg = TelegramDouble::start_local();
    let bridge = ImBridge::start(
        &[
            ImBox {
                id: "box1".into(),
                name: "one".into(),
                opencode_url: oc1.base_url(),
            },
            ImBox {
                id: "box2".into(),
                name: "two".into(),
                opencode_url: oc2.base_url(),
            },
        ],
        Some((&tg.base_url(), &tg.token())),
        None,
    );
    bind(&tg, &bridge, (ANN, "ann"), &bridge.payload("box1"));
    tg.user_says(
        ANN,
        (ANN, "ann"),
        &format!("/start {}", bridge.payload("box2")),
    );
    tg.wait_for(
        ANN,
        |ms| ms.iter().filter(|m| m.text.contains("Bound to")).count() == 2,
        WAIT,
    )
    .expect("second bind");

    // The box bound last is current.
    tg.user_says(ANN, (ANN, "ann"), "WHO are you");
    wait_text(&tg, ANN, "this is box two", &bridge);
    tg.user_says(ANN, (ANN, "ann"), "/list");
    let msgs = wait_text(&tg, ANN, "Your boxes", &bridge);
    let list = msgs
        .iter()
        .rev()
        .find(|m| m.text.contains("Your boxes"))
        .unwrap();
    assert!(
        list.text.contains("• one") && list.text.contains("▶ two"),
        "{}",
        list.text
    );

    tg.user_says(ANN, (ANN, "ann"), "/switch one");
    wait_text(&tg, ANN, "Now on one", &bridge);
    tg.user_says(ANN, (ANN, "ann"), "WHO now");
    wait_text(&tg, ANN, "this is box one", &bridge);
    assert!(!llm2.any_request_contains("WHO now") && llm1.any_request_contains("WHO now"));

    tg.user_says(ANN, (ANN, "ann"), "/switch nowhere");
    wait_text(&tg, ANN, "You have no box named \"nowhere\"", &bridge);
}

#[test]
fn a_second_poller_on_the_same_token_is_reported_not_looped() {
    let tg = TelegramDouble::start_local();
    // No OpenCode is needed: the bridge must stop on the conflict before anything else.
    let boxes = [ImBox {
        id: "boxC".into(),
        name: "c".into(),
        opencode_url: "http://127.0.0.1:9".into(),
    }];
    let mut first = ImBridge::start(&boxes, Some((&tg.base_url(), &tg.token())), None);
    tg.wait_for(0, |_| tg.poll_pending(), Duration::from_secs(30))
        .expect("the first bridge polls");
    let mut second = ImBridge::start(&boxes, Some((&tg.base_url(), &tg.token())), None);
    const SAID: &str = "only one cloudcode-im may use a bot token";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !format!("{}{}", first.log(), second.log()).contains(SAID) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let loser = if first.log().contains(SAID) {
        &first
    } else {
        &second
    };
    assert!(
        loser.log().contains(SAID),
        "no bridge reported the conflict:\n{}\n{}",
        first.log(),
        second.log()
    );
    // Reported in `status`, and not looped: no further polls are refused, and neither process crash-loops.
    let status = loser.cli(&["status"]);
    assert!(
        status["faults"]["telegram"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(SAID),
        "{status}"
    );
    let conflicts = || {
        tg.calls_of("getUpdates")
            .iter()
            .filter(|c| c.status == 409)
            .count()
    };
    let seen = conflicts();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!((seen, conflicts()), (1, 1), "the conflict was looped");
    assert!(first.running() && second.running());
}

/// The text of a DingTalk message the robot sent (Markdown `text`, or an image's marker).
fn dingtalk_texts(dt: &DingTalkDouble, staff: &str) -> Vec<String> {
    dt.sent(staff)
        .iter()
        .map(|m| {
            m.param["text"]
                .as_str()
                .unwrap_or(if m.image.is_some() { "<image>" } else { "" })
                .to_string()
        })
        .collect()
}

fn wait_dingtalk(dt: &DingTalkDouble, staff: &str, needle: &str, bridge: &ImBridge) {
    let deadline = Instant::now() + WAIT;
    while !dingtalk_texts(dt, staff).iter().any(|t| t.contains(needle)) {
        assert!(
            Instant::now() < deadline,
            "no DingTalk message with {needle:?}: {:#?}\n{}",
            dingtalk_texts(dt, staff),
            bridge.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dingtalk_user_binds_gets_answers_with_code_as_images_and_approves_through_a_link() {
    require_opencode!();
    let llm = LlmDouble::start(local(), "sk-double").unwrap();
    llm.when(
        "GREET",
        vec![Step::text("Hello from the agent on DingTalk")],
    );
    llm.when(
        "RUNBASH",
        vec![
            Step::bash("echo dingtalk"),
            Step::text("bash done on DingTalk"),
        ],
    );
    let oc = OpencodeServer::start(&llm, json!({ "bash": "ask" })).unwrap();
    let dt = DingTalkDouble::start("127.0.0.1:0").unwrap();
    let bridge = ImBridge::start(
        &[ImBox {
            id: "boxD".into(),
            name: "delta".into(),
            opencode_url: oc.base_url(),
        }],
        None,
        Some((
            json!({ "client_id": dt.client_id(), "api_base": dt.api_base(), "oapi_base": dt.oapi_base() }),
            dt.client_secret(),
        )),
    );
    let deadline = Instant::now() + WAIT;
    while dt.connections() == 0 {
        assert!(
            Instant::now() < deadline,
            "the bridge never opened a Stream connection:\n{}",
            bridge.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // DingTalk has no deep link: the QR carries the payload, which the user sends as `/start <payload>`.
    let link = bridge.cli(&["link", "--box", "boxD"]);
    assert_eq!(link["links"]["dingtalk"], serde_json::Value::Null);
    let payload = link["payload"].as_str().unwrap().to_string();
    dt.user_says("cid-ann", "staff-ann", "Ann", &format!("/start {payload}"))
        .unwrap();
    wait_dingtalk(&dt, "staff-ann", "Bound to delta", &bridge);

    dt.user_says("cid-ann", "staff-ann", "Ann", "GREET please")
        .unwrap();
    wait_dingtalk(
        &dt,
        "staff-ann",
        "Hello from the agent on DingTalk",
        &bridge,
    );

    // Every code block is an image on DingTalk, of the renderer's size.
    dt.user_says(
        "cid-ann",
        "staff-ann",
        "Ann",
        &format!("{TRIGGER_CODE} now"),
    )
    .unwrap();
    wait_dingtalk(&dt, "staff-ann", "<image>", &bridge);
    let img = dt
        .sent("staff-ann")
        .into_iter()
        .find_map(|m| m.image)
        .unwrap();
    let fenced = canned::rust_code_block();
    let code = fenced
        .split("```rust\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let expected = cloudcode_im::render::render_code(code, Some("rust")).unwrap();
    assert_eq!((img.width, img.height), (expected.width, expected.height));

    // An approval's buttons are links that send `/btn <token>` back; "Always" runs the command.
    dt.user_says("cid-ann", "staff-ann", "Ann", "RUNBASH now")
        .unwrap();
    wait_dingtalk(&dt, "staff-ann", "Approval needed", &bridge);
    let approval = dingtalk_texts(&dt, "staff-ann")
        .into_iter()
        .find(|t| t.contains("Approval needed"))
        .unwrap();
    let link = approval
        .split("[Always](")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("{approval}"));
    let content = link.split("content=").nth(1).unwrap();
    let text = percent_encoding::percent_decode_str(content)
        .decode_utf8()
        .unwrap()
        .to_string();
    assert!(text.starts_with("/btn "), "{text}");
    dt.user_says("cid-ann", "staff-ann", "Ann", &text).unwrap();
    wait_dingtalk(&dt, "staff-ann", "bash done on DingTalk", &bridge);
    assert!(
        !bridge.log().contains(dt.client_secret()),
        "the app secret is in the log"
    );
}

#[test]
fn a_question_arrives_with_its_options_and_an_approval_answered_in_the_browser_updates_the_chat() {
    require_opencode!();
    let llm = LlmDouble::start(local(), "sk-double").unwrap();
    let question = json!({ "questions": [{ "question": "Which colour?", "header": "Colour",
        "options": [{ "label": "red", "description": "Red" }, { "label": "blue", "description": "Blue" }] }] });
    llm.when(
        "ASKME",
        vec![Step::tool("question", question), Step::text("blue it is")],
    );
    llm.when(
        "BROWSERBASH",
        vec![
            Step::bash("echo from-browser"),
            Step::text("browser bash done"),
        ],
    );
    let oc = OpencodeServer::start(&llm, json!({ "bash": "ask" })).unwrap();
    let tg = TelegramDouble::start_local();
    let bridge = ImBridge::start(
        &[ImBox {
            id: "boxQ".into(),
            name: "quiz".into(),
            opencode_url: oc.base_url(),
        }],
        Some((&tg.base_url(), &tg.token())),
        None,
    );
    bind(&tg, &bridge, (ANN, "ann"), &bridge.payload("boxQ"));

    // The agent's question comes with its options as buttons; the pressed one reaches the model.
    tg.user_says(ANN, (ANN, "ann"), "ASKME something");
    wait_text(&tg, ANN, "Which colour?", &bridge);
    let (msg, blue) = button(&tg, ANN, "blue");
    assert!(tg
        .messages(ANN)
        .iter()
        .any(|m| m.message_id == msg && m.callback_data().len() == 2));
    tg.press_button(ANN, (ANN, "ann"), msg, &blue).unwrap();
    wait_text(&tg, ANN, "blue it is", &bridge);
    assert!(
        llm.any_request_contains(r#""Which colour?"="blue""#),
        "the answer did not reach the model"
    );
    wait_text(&tg, ANN, "Answered by ann", &bridge);

    // An approval answered in the browser (OpenCode's API, as the web UI does): the chat copy says so and
    // loses its buttons.
    tg.user_says(ANN, (ANN, "ann"), "BROWSERBASH please");
    wait_text(&tg, ANN, "Approval needed", &bridge);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = cloudcode_im::opencode::Client::new(&oc.base_url(), None).unwrap();
    rt.block_on(async {
        let pending = client.permissions().await.unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        client
            .reply_permission(
                &pending[0].id,
                cloudcode_im::opencode::PermissionReply::Once,
                None,
            )
            .await
            .unwrap();
    });
    let msgs = wait_text(&tg, ANN, "Allowed once (in the browser)", &bridge);
    let edited = msgs
        .iter()
        .find(|m| m.text.contains("Allowed once (in the browser)"))
        .unwrap();
    assert!(
        edited.buttons.iter().flatten().next().is_none(),
        "the answered approval kept its buttons"
    );
    wait_text(&tg, ANN, "browser bash done", &bridge);
}
