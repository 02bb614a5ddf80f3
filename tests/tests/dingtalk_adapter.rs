//! The real DingTalk adapter against the DingTalk Stream double: receive, send, buttons, reconnects, refusals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudcode_im::platform::dingtalk::{DingTalk, DingTalkConfig, Tuning};
use cloudcode_im::platform::{
    Block, Button, ChatId, Inbound, MessageRef, Outbound, Platform, PlatformError,
};
use cloudcode_tests::dingtalk_double::DingTalkDouble;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

fn config(d: &DingTalkDouble, secret: &str) -> DingTalkConfig {
    let mut cfg = DingTalkConfig::new(d.client_id(), secret.to_string().into());
    cfg.api_base = d.api_base();
    cfg.oapi_base = d.oapi_base();
    cfg.tuning = Tuning {
        keepalive: Duration::from_millis(500),
        reconnect_base: Duration::from_millis(50),
        reconnect_cap: Duration::from_millis(500),
        send_retries: 3,
        retry_base: Duration::from_millis(20),
        http_timeout: Duration::from_secs(5),
    };
    cfg
}

struct Running {
    dt: Arc<DingTalk>,
    rx: mpsc::Receiver<Inbound>,
    task: JoinHandle<Result<(), PlatformError>>,
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start(d: &DingTalkDouble) -> Running {
    let dt = Arc::new(DingTalk::new(config(d, d.client_secret())).expect("adapter"));
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn({
        let dt = dt.clone();
        async move { dt.receive(tx).await }
    });
    wait_for("the stream to connect", || d.connections() == 1).await;
    Running { dt, rx, task }
}

async fn next(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an inbound message in time")
        .expect("open")
}

fn double() -> DingTalkDouble {
    DingTalkDouble::start("127.0.0.1:0").expect("double")
}

/// The PNG signature and an IHDR chunk: what the double reads for type and size.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_message_arrives_as_text_and_is_acked() {
    let d = double();
    let mut r = start(&d).await;
    d.user_says("cid-ann", "staff-ann", "Ann", "hello bot")
        .unwrap();
    match next(&mut r.rx).await {
        Inbound::Text { chat, from, text } => {
            assert_eq!(chat, ChatId("user:staff-ann".into()));
            assert_eq!(from.user.0, "staff-ann");
            assert_eq!(from.name, "Ann");
            assert_eq!(text, "hello bot");
        }
        other => panic!("{other:?}"),
    }
    wait_for("the ack", || {
        d.calls_of("ws/ack").iter().any(|c| c.outcome == "OK")
    })
    .await;
    assert!(d.unacked().is_empty());
    r.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_goes_to_the_one_to_one_chat() {
    let d = double();
    d.add_staff("staff-bob");
    let dt = DingTalk::new(config(&d, d.client_secret())).unwrap();
    let msg = Outbound {
        blocks: vec![Block::Bold("Done".into()), Block::Text("a*b".into())],
        buttons: vec![],
    };
    let refs = dt
        .send(&ChatId("user:staff-bob".into()), &msg)
        .await
        .unwrap();
    let sent = d.sent("staff-bob");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].msg_key, "sampleMarkdown");
    assert_eq!(sent[0].param["title"], "Done");
    assert_eq!(sent[0].param["text"], "**Done**\n\na\\*b");
    assert_eq!(refs, vec![MessageRef(sent[0].process_query_key.clone())]);
    // One token for both calls.
    assert_eq!(d.calls_of("accessToken").len(), 1);
    dt.send(&ChatId("user:staff-bob".into()), &Outbound::text("again"))
        .await
        .unwrap();
    assert_eq!(d.calls_of("accessToken").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_uploaded_and_sent_with_its_caption_after_it() {
    let d = double();
    d.add_staff("staff-img");
    let dt = DingTalk::new(config(&d, d.client_secret())).unwrap();
    let msg = Outbound {
        blocks: vec![Block::Image {
            png: png(64, 32),
            caption: "diff of main.rs".into(),
        }],
        buttons: vec![],
    };
    let refs = dt
        .send(&ChatId("user:staff-img".into()), &msg)
        .await
        .unwrap();
    assert_eq!(refs.len(), 2);
    let sent = d.sent("staff-img");
    assert_eq!(sent[0].msg_key, "sampleImageMsg");
    let image = sent[0].image.as_ref().expect("an uploaded image");
    assert_eq!((image.format, image.width, image.height), ("png", 64, 32));
    assert_eq!(sent[0].param["photoURL"], image.media_id.as_str());
    assert_eq!(sent[1].msg_key, "sampleMarkdown");
    assert_eq!(sent[1].param["text"], "diff of main.rs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_is_answered_in_the_group() {
    let d = double();
    d.add_group("cid-team", "Team");
    let mut r = start(&d).await;
    d.user_says("cid-team", "staff-cy", "Cy", "status").unwrap();
    let Inbound::Text { chat, text, .. } = next(&mut r.rx).await else {
        panic!("text expected")
    };
    assert_eq!(chat, ChatId("group:cid-team".into()));
    assert_eq!(text, "status");
    r.dt.send(&chat, &Outbound::text("all good")).await.unwrap();
    assert_eq!(d.sent("cid-team")[0].param["text"], "all good");
    r.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_on_an_action_link_arrives_as_a_button_press() {
    let d = double();
    let mut r = start(&d).await;
    d.add_staff("staff-dan");
    let msg = Outbound {
        blocks: vec![Block::Text("Run `rm -rf build`?".into())],
        buttons: vec![vec![
            Button {
                label: "Allow".into(),
                token: "ap:17".into(),
            },
            Button {
                label: "Deny".into(),
                token: "dn:17".into(),
            },
        ]],
    };
    let refs =
        r.dt.send(&ChatId("user:staff-dan".into()), &msg)
            .await
            .unwrap();
    let text = d.sent("staff-dan")[0].param["text"]
        .as_str()
        .unwrap()
        .to_string();
    // What the client sends when "Allow" is tapped: the link's content parameter.
    let start = text.find("[Allow](").expect("an Allow link") + "[Allow](".len();
    let link = &text[start..start + text[start..].find(')').unwrap()];
    let url = url::Url::parse(link).expect("a URL");
    assert_eq!(url.scheme(), "dtmd");
    let content = url
        .query_pairs()
        .find(|(k, _)| k == "content")
        .expect("content")
        .1
        .into_owned();
    assert_eq!(content, "/btn ap:17");
    d.user_says("cid-dan", "staff-dan", "Dan", &content)
        .unwrap();
    match next(&mut r.rx).await {
        Inbound::Button {
            chat,
            token,
            message,
            ack,
            ..
        } => {
            assert_eq!(chat, ChatId("user:staff-dan".into()));
            assert_eq!(token, "ap:17");
            assert_eq!(message, refs[0]);
            r.dt.ack_button(&ack, Some("ok")).await.unwrap();
        }
        other => panic!("{other:?}"),
    }
    r.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_reconnects_and_the_next_message_arrives() {
    let d = double();
    let mut r = start(&d).await;
    assert_eq!(d.drop_stream(), 1);
    wait_for("a second connection", || {
        d.calls_of("ws/connect").len() == 2 && d.connections() == 1
    })
    .await;
    d.user_says("cid-eve", "staff-eve", "Eve", "still there?")
        .unwrap();
    let Inbound::Text { text, .. } = next(&mut r.rx).await else {
        panic!("text expected")
    };
    assert_eq!(text, "still there?");
    assert_eq!(
        d.calls_of("connections/open").len(),
        2,
        "a fresh ticket for the new connection"
    );
    r.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_disconnect_is_followed_by_a_new_connection() {
    let d = double();
    let mut r = start(&d).await;
    assert_eq!(d.send_disconnect(), 1);
    wait_for("a second connection", || {
        d.calls_of("ws/connect").len() == 2 && d.connections() == 1
    })
    .await;
    d.user_says("cid-fay", "staff-fay", "Fay", "hi").unwrap();
    assert!(matches!(next(&mut r.rx).await, Inbound::Text { .. }));
    r.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_pings_are_answered_with_their_data() {
    let d = double();
    d.set_ping_interval(Duration::from_millis(100));
    let r = start(&d).await;
    wait_for("two answered pings", || d.pings_acked() >= 2).await;
    assert!(d.calls_of("ws/ping-ack").iter().all(|c| c.outcome == "OK"));
    r.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_fatal() {
    let d = double();
    let dt = DingTalk::new(config(&d, "not-the-secret")).unwrap();
    let (tx, _rx) = mpsc::channel(1);
    let got = tokio::time::timeout(Duration::from_secs(10), dt.receive(tx))
        .await
        .expect("returns");
    match got {
        Err(PlatformError::Fatal(m)) => assert!(m.contains("client id and secret"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.calls_of("connections/open")[0].outcome, "authFailed");
    d.add_staff("staff-x");
    let sent = dt
        .send(&ChatId("user:staff-x".into()), &Outbound::text("x"))
        .await;
    assert!(matches!(sent, Err(PlatformError::Fatal(_))), "{sent:?}");
    assert_eq!(
        d.calls_of("accessToken")[0].outcome,
        "invalidClientIdOrSecret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_sends_are_retried_then_reported_unavailable() {
    let d = double();
    d.add_staff("staff-q");
    let dt = DingTalk::new(config(&d, d.client_secret())).unwrap();
    d.fail_next("batchSend", 2, 429);
    dt.send(&ChatId("user:staff-q".into()), &Outbound::text("one"))
        .await
        .unwrap();
    let outcomes: Vec<String> = d
        .calls_of("batchSend")
        .into_iter()
        .map(|c| c.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "Forbidden.AccessDenied.QpsLimitForApi",
            "Forbidden.AccessDenied.QpsLimitForApi",
            "OK"
        ]
    );
    d.fail_next("batchSend", 10, 503);
    let got = dt
        .send(&ChatId("user:staff-q".into()), &Outbound::text("two"))
        .await;
    assert!(matches!(got, Err(PlatformError::Unavailable(_))), "{got:?}");
    assert_eq!(d.sent("staff-q").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_refused_not_retried() {
    let d = double();
    let dt = DingTalk::new(config(&d, d.client_secret())).unwrap();
    let got = dt
        .send(&ChatId("user:nobody".into()), &Outbound::text("hi"))
        .await;
    assert!(matches!(got, Err(PlatformError::Refused(_))), "{got:?}");
    assert_eq!(d.calls_of("batchSend").len(), 1);
}
