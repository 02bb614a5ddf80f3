//! Scenario tests of the Telegram double itself: each shows the refused case beside the allowed one.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::parse::{parse_html, parse_markdown_v2};
use super::{Failure, TelegramDouble};

const CHAT: i64 = 5_550_001;
const USER: (i64, &str) = (5_550_001, "Ada");

struct Bot {
    double: TelegramDouble,
    http: reqwest::Client,
}

impl Bot {
    fn new() -> Self {
        let double = TelegramDouble::start_local();
        double.user_says(CHAT, USER, "/start");
        Self {
            double,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.double.base_url(),
            self.double.token()
        )
    }

    async fn call(&self, method: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(method))
            .json(&body)
            .send()
            .await
            .expect("request reaches the double");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("a JSON envelope"))
    }

    async fn send(&self, text: &str, parse_mode: Option<&str>) -> (u16, Value) {
        let mut body = json!({"chat_id": CHAT, "text": text});
        if let Some(m) = parse_mode {
            body["parse_mode"] = json!(m);
        }
        self.call("sendMessage", body).await
    }

    async fn multipart(
        &self,
        method: &str,
        fields: &[(&str, Option<&str>, &[u8])],
    ) -> (u16, Value) {
        let boundary = "xXdoubleBoundary42";
        let mut body = Vec::new();
        for (name, filename, content) in fields {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: \
                         application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let resp = self
            .http
            .post(self.url(method))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("request reaches the double");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("a JSON envelope"))
    }
}

fn description(v: &Value) -> &str {
    v["description"].as_str().unwrap_or("")
}

// A real PNG: signature, IHDR, a zlib-stored IDAT and IEND, with their CRCs.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut typed = kind.to_vec();
        typed.extend_from_slice(data);
        out.extend_from_slice(&typed);
        out.extend_from_slice(&crc32(&typed).to_be_bytes());
    }
    let mut raw = Vec::new();
    for _ in 0..height {
        raw.push(0u8);
        raw.extend(std::iter::repeat_n(0x80u8, width as usize));
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    zlib.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[tokio::test]
async fn markdown_v2_unescaped_dot_is_refused_and_escaped_dot_is_accepted() {
    let bot = Bot::new();
    let (status, v) = bot.send("Version 1.0", Some("MarkdownV2")).await;
    assert_eq!(status, 400);
    assert_eq!(
        description(&v),
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"
    );
    let (status, v) = bot.send("Version 1\\.0 is *out*", Some("MarkdownV2")).await;
    assert_eq!(status, 200, "{v}");
    let m = &bot.double.messages(CHAT)[0];
    assert_eq!(m.text, "Version 1.0 is out");
    assert_eq!(
        (
            m.entities[0].kind.as_str(),
            m.entities[0].offset,
            m.entities[0].length
        ),
        ("bold", 15, 3)
    );
    assert_eq!(m.parse_mode.as_deref(), Some("MarkdownV2"));
}

#[tokio::test]
async fn html_unknown_tag_is_refused_and_nested_tags_give_bold_and_pre_entities() {
    let bot = Bot::new();
    let (status, v) = bot.send("line<br>next", Some("HTML")).await;
    assert_eq!(status, 400);
    assert_eq!(
        description(&v),
        "Bad Request: can't parse entities: Unsupported start tag \"br\" at byte offset 4"
    );
    let html = "<b>Done</b> in <i>x &lt; <b>y</b></i>\n<pre><code class=\"language-rust\">fn main() {}</code></pre>";
    let (status, v) = bot.send(html, Some("HTML")).await;
    assert_eq!(status, 200, "{v}");
    let m = &bot.double.messages(CHAT)[0];
    assert_eq!(m.text, "Done in x < y\nfn main() {}");
    let kinds: Vec<(&str, usize, usize)> = m
        .entities
        .iter()
        .map(|e| (e.kind.as_str(), e.offset, e.length))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("bold", 0, 4),
            ("italic", 8, 5),
            ("bold", 12, 1),
            ("pre", 14, 12)
        ]
    );
    assert_eq!(m.entities[3].language.as_deref(), Some("rust"));
    assert_eq!(v["result"]["entities"][3]["language"], "rust");
}

#[tokio::test]
async fn text_of_4096_characters_is_accepted_and_4097_is_too_long() {
    let bot = Bot::new();
    let (status, v) = bot.send(&"é".repeat(4097), None).await;
    assert_eq!(status, 400);
    assert_eq!(description(&v), "Bad Request: message is too long");
    // Markup does not count: the limit applies to the text after parsing.
    let (status, v) = bot
        .send(&format!("<b>{}</b>", "é".repeat(4096)), Some("HTML"))
        .await;
    assert_eq!(status, 200, "{}", description(&v));
}

#[tokio::test]
async fn callback_data_of_64_bytes_is_accepted_and_65_is_button_data_invalid() {
    let bot = Bot::new();
    let keyboard =
        |data: String| json!({"inline_keyboard": [[{"text": "Go", "callback_data": data}]]});
    let body = json!({"chat_id": CHAT, "text": "pick", "reply_markup": keyboard("d".repeat(65))});
    let (status, v) = bot.call("sendMessage", body).await;
    assert_eq!(status, 400);
    assert_eq!(description(&v), "Bad Request: BUTTON_DATA_INVALID");
    let body = json!({"chat_id": CHAT, "text": "pick", "reply_markup": keyboard("d".repeat(64))});
    let (status, v) = bot.call("sendMessage", body).await;
    assert_eq!(status, 200, "{v}");
    let m = &bot.double.messages(CHAT)[0];
    assert_eq!(m.callback_data(), vec!["d".repeat(64)]);
    // The user presses it; the bot answers the query once, a second answer is refused.
    assert!(bot
        .double
        .press_button(CHAT, USER, m.message_id, "nope")
        .is_err());
    let query = bot
        .double
        .press_button(CHAT, USER, m.message_id, &"d".repeat(64))
        .expect("the button exists");
    let (status, _) = bot
        .call(
            "answerCallbackQuery",
            json!({"callback_query_id": query, "text": "ok"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = bot
        .call("answerCallbackQuery", json!({"callback_query_id": query}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        description(&v),
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
    );
}

#[tokio::test]
async fn a_second_get_updates_terminates_the_pending_one_with_409() {
    let bot = Bot::new();
    // Confirm the /start update first so the polls have to wait.
    let (_, v) = bot.call("getUpdates", json!({})).await;
    let last = v["result"][0]["update_id"]
        .as_i64()
        .expect("the /start update");
    let older = {
        let (http, url) = (bot.http.clone(), bot.url("getUpdates"));
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .json(&json!({"offset": last + 1, "timeout": 10}))
                .send()
                .await
                .expect("sent");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.expect("json"),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let newer = bot.call("getUpdates", json!({"offset": last + 1, "timeout": 0}));
    let (newer_status, _) = newer.await;
    let (older_status, older_body) = older.await.expect("joined");
    assert_eq!(newer_status, 200, "the newer request wins");
    assert_eq!(older_status, 409);
    assert_eq!(
        description(&older_body),
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    );
    // One poller alone is never refused.
    let (status, _) = bot.call("getUpdates", json!({"offset": last + 1})).await;
    assert_eq!(status, 200);
    assert_eq!(bot.double.counters().conflicts, 1);
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_an_unknown_method_not_found() {
    let bot = Bot::new();
    let base = bot.double.base_url();
    let resp = bot
        .http
        .get(format!("{base}/bot123456:wrong/getMe"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 401);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(
        v,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let resp = bot.http.get(bot.url("getMe")).send().await.expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["result"]["username"], bot.double.username());
    let (status, v) = bot.call("sendTelepathy", json!({})).await;
    assert_eq!((status, description(&v)), (404, "Not Found"));
    // Method names are case-insensitive at Telegram.
    let (status, _) = bot.call("GETME", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn after_a_429_calls_before_retry_after_are_refused_and_after_it_succeed() {
    let bot = Bot::new();
    bot.double.fail_next(
        "sendMessage",
        1,
        Failure::TooManyRequests { retry_after_s: 1 },
    );
    let (status, v) = bot.send("hello", None).await;
    assert_eq!(status, 429);
    assert_eq!(description(&v), "Too Many Requests: retry after 1");
    assert_eq!(v["parameters"]["retry_after"], 1);
    let (status, _) = bot.send("hello again too soon", None).await;
    assert_eq!(
        status, 429,
        "the hold covers the chat until retry_after elapses"
    );
    assert_eq!(bot.double.refused_during_hold(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, v) = bot.send("hello", None).await;
    assert_eq!(status, 200, "{v}");
    let log = bot.double.calls_of("sendMessage");
    assert_eq!(
        log.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![429, 429, 200]
    );
    assert!(log[1].refused_by_hold && !log[0].refused_by_hold);
}

#[tokio::test]
async fn get_updates_long_poll_returns_when_the_user_speaks() {
    let bot = Bot::new();
    let (_, v) = bot.call("getUpdates", json!({"timeout": 0})).await;
    let last = v["result"][0]["update_id"]
        .as_i64()
        .expect("the /start update");
    let started = Instant::now();
    let poll = bot.call("getUpdates", json!({"offset": last + 1, "timeout": 20}));
    let speak = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        bot.double.user_says(CHAT, USER, "run the tests")
    };
    let ((status, v), update_id) = tokio::join!(poll, speak);
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered as the update arrived"
    );
    assert_eq!(v["result"][0]["update_id"], update_id);
    assert_eq!(v["result"][0]["message"]["text"], "run the tests");
    // Without a timeout and with nothing new, getUpdates answers an empty list at once.
    let (status, v) = bot
        .call("getUpdates", json!({"offset": update_id + 1}))
        .await;
    assert_eq!((status, v["result"].clone()), (200, json!([])));
    assert_eq!(bot.double.pending_updates(), 0);
}

#[tokio::test]
async fn send_photo_with_a_real_png_records_its_size_and_a_non_image_is_refused() {
    let bot = Bot::new();
    let chat = CHAT.to_string();
    let (status, v) = bot
        .multipart(
            "sendPhoto",
            &[
                ("chat_id", None, chat.as_bytes()),
                ("photo", Some("x.png"), &b"not an image"[..]),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(description(&v), "Bad Request: IMAGE_PROCESS_FAILED");
    let image = png(3, 2);
    let (status, v) = bot
        .multipart(
            "sendPhoto",
            &[
                ("chat_id", None, chat.as_bytes()),
                ("caption", None, &b"<b>chart</b>"[..]),
                ("parse_mode", None, &b"HTML"[..]),
                ("photo", Some("chart.png"), image.as_slice()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["photo"][0]["width"], 3);
    let m = &bot.double.messages(CHAT)[0];
    let photo = m.photo.as_ref().expect("a photo");
    assert_eq!((photo.width, photo.height, photo.format), (3, 2, "png"));
    assert_eq!(photo.bytes, image);
    assert_eq!(m.text, "chart");
    assert!(m.has_entity("bold"));
    // A caption over 1024 characters after parsing is refused.
    let long = "c".repeat(1025);
    let (status, v) = bot
        .multipart(
            "sendPhoto",
            &[
                ("chat_id", None, chat.as_bytes()),
                ("caption", None, long.as_bytes()),
                ("photo", Some("p.png"), image.as_slice()),
            ],
        )
        .await;
    assert_eq!(
        (status, description(&v)),
        (400, "Bad Request: message caption is too long")
    );
}

#[tokio::test]
async fn edit_with_unchanged_text_is_not_modified_and_changed_text_is_accepted() {
    let bot = Bot::new();
    let (_, v) = bot.send("step 1", None).await;
    let id = v["result"]["message_id"].as_i64().expect("message_id");
    let edit = |text: &str| json!({"chat_id": CHAT, "message_id": id, "text": text});
    let (status, v) = bot.call("editMessageText", edit("step 1")).await;
    assert_eq!(status, 400);
    assert_eq!(
        description(&v),
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the \
         same as a current content and reply markup of the message"
    );
    let (status, v) = bot.call("editMessageText", edit("step 2")).await;
    assert_eq!(status, 200, "{v}");
    let m = &bot.double.messages(CHAT)[0];
    assert_eq!(
        (m.text.as_str(), m.edit_count, m.history.len()),
        ("step 2", 1, 2)
    );
    assert_eq!(m.history[0].text, "step 1");
}

#[tokio::test]
async fn edits_of_one_message_faster_than_the_flood_limit_get_429_and_none_when_switched_off() {
    let bot = Bot::new();
    let (_, v) = bot.send("0", None).await;
    let id = v["result"]["message_id"].as_i64().expect("message_id");
    let mut statuses = Vec::new();
    for i in 1..=10 {
        let (s, v) = bot
            .call(
                "editMessageText",
                json!({"chat_id": CHAT, "message_id": id, "text": i.to_string()}),
            )
            .await;
        statuses.push(s);
        if s == 429 {
            assert!(
                v["parameters"]["retry_after"]
                    .as_u64()
                    .is_some_and(|r| r >= 1),
                "{v}"
            );
            break;
        }
    }
    // Three edits within a second pass; the fourth inside the same second is refused.
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(statuses.last(), Some(&429));
    let bot = Bot::new();
    bot.double.set_edit_flood_limit(None);
    let (_, v) = bot.send("0", None).await;
    let id = v["result"]["message_id"].as_i64().expect("message_id");
    for i in 1..=6 {
        let (s, _) = bot
            .call(
                "editMessageText",
                json!({"chat_id": CHAT, "message_id": id, "text": i.to_string()}),
            )
            .await;
        assert_eq!(s, 200);
    }
}

#[tokio::test]
async fn bad_gateway_and_dropped_connections_are_injected_and_form_bodies_work() {
    let bot = Bot::new();
    bot.double.fail_next("sendMessage", 1, Failure::BadGateway);
    bot.double.fail_next("sendChatAction", 1, Failure::Drop);
    let resp = bot
        .http
        .post(bot.url("sendMessage"))
        .form(&[("chat_id", CHAT.to_string()), ("text", "hi".into())])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 502);
    assert!(resp.text().await.expect("body").contains("nginx"));
    let dropped = bot
        .http
        .post(bot.url("sendChatAction"))
        .form(&[("chat_id", CHAT.to_string()), ("action", "typing".into())])
        .send()
        .await;
    assert!(dropped.is_err(), "the connection closes without an answer");
    let resp = bot
        .http
        .post(bot.url("sendMessage"))
        .form(&[("chat_id", CHAT.to_string()), ("text", "hi".into())])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = bot
        .http
        .post(bot.url("sendMessage"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 400);
    bot.double.set_unavailable(Duration::from_secs(30));
    let (status, _) = {
        let resp = bot.http.get(bot.url("getMe")).send().await.expect("sent");
        (resp.status().as_u16(), ())
    };
    assert_eq!(status, 502);
    assert_eq!(bot.double.counters().dropped, 1);
}

#[test]
fn markdown_v2_entities_count_utf16_units_and_unclosed_entities_are_refused() {
    let p = parse_markdown_v2("🏟 _x_ `a\\`b` ```rust\nlet x = 1;\n```").expect("valid");
    assert_eq!(p.text, "🏟 x a`b let x = 1;\n");
    let got: Vec<(&str, usize, usize)> = p
        .entities
        .iter()
        .map(|e| (e.kind.as_str(), e.offset, e.length))
        .collect();
    assert_eq!(got, vec![("italic", 3, 1), ("code", 5, 3), ("pre", 9, 11)]);
    assert_eq!(p.entities[2].language.as_deref(), Some("rust"));
    assert_eq!(
        parse_markdown_v2("🏟 🏟_abacaba").unwrap_err().0,
        "Can't find end of Italic entity at byte offset 9"
    );
    assert_eq!(
        parse_markdown_v2("a [link](https://example.com/x\\)y) b")
            .expect("valid")
            .entities[0]
            .url
            .as_deref(),
        Some("https://example.com/x)y")
    );
    assert!(parse_markdown_v2("a - b").is_err());
    assert!(parse_markdown_v2("a \\- b").is_ok());
}

#[test]
fn html_errors_use_telegram_wording_and_valid_markup_parses() {
    assert_eq!(
        parse_html("<b>open").unwrap_err().0,
        "Can't find end tag corresponding to start tag \"b\""
    );
    assert_eq!(
        parse_html("<i>a</em>").unwrap_err().0,
        "Unmatched end tag at byte offset 4, expected \"</i>\", found \"</em>\""
    );
    assert_eq!(
        parse_html("a < b").unwrap_err().0,
        "Unsupported start tag \"\" at byte offset 2"
    );
    assert_eq!(
        parse_html("x</b>").unwrap_err().0,
        "Unexpected end tag at byte offset 1"
    );
    // A '&' that starts no entity stays literal, as at Telegram; &lt; &gt; &amp; &quot; and numbers decode.
    assert_eq!(
        parse_html("R&D &amp; &#65;&#x42; &ge;")
            .expect("valid")
            .text,
        "R&D & AB &ge;"
    );
    let p = parse_html("<span class=\"tg-spoiler\">s</span><a href=\"https://t.me\">l</a>")
        .expect("valid");
    assert_eq!(p.entities[0].kind, "spoiler");
    assert_eq!(p.entities[1].url.as_deref(), Some("https://t.me"));
}

#[tokio::test]
async fn a_bot_cannot_write_first_and_a_known_chat_is_found() {
    let bot = Bot::new();
    let (status, v) = bot
        .call("sendMessage", json!({"chat_id": 42, "text": "hi"}))
        .await;
    assert_eq!(
        (status, description(&v)),
        (400, "Bad Request: chat not found")
    );
    let (status, v) = bot
        .call(
            "sendMessage",
            json!({"chat_id": 42, "text": "a.b", "parse_mode": "MarkdownV2"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        description(&v).starts_with("Bad Request: can't parse entities:"),
        "markup is checked before the chat"
    );
    bot.double.user_says(42, (42, "Bo"), "hello");
    let (status, _) = bot
        .call("sendMessage", json!({"chat_id": 42, "text": "hi"}))
        .await;
    assert_eq!(status, 200);
    let (status, v) = bot
        .call("sendMessage", json!({"chat_id": 42, "text": "   "}))
        .await;
    assert_eq!(
        (status, description(&v)),
        (400, "Bad Request: message text is empty")
    );
}

#[tokio::test]
async fn an_edit_without_reply_markup_removes_the_keyboard_and_allowed_updates_filters() {
    let bot = Bot::new();
    let markup = json!({"inline_keyboard": [[{"text": "Stop", "callback_data": "stop"}]]});
    let (_, v) = bot
        .call(
            "sendMessage",
            json!({"chat_id": CHAT, "text": "working", "reply_markup": markup}),
        )
        .await;
    let id = v["result"]["message_id"].as_i64().expect("message_id");
    assert_eq!(
        v["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        "stop"
    );
    let (status, _) = bot
        .call(
            "editMessageText",
            json!({"chat_id": CHAT, "message_id": id, "text": "done"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(bot.double.messages(CHAT)[0].buttons.is_empty());
    assert!(bot.double.press_button(CHAT, USER, id, "stop").is_err());
    // A bot that asked only for messages never sees callback queries.
    let (_, v) = bot
        .call(
            "sendMessage",
            json!({"chat_id": CHAT, "text": "again", "reply_markup": markup}),
        )
        .await;
    let id = v["result"]["message_id"].as_i64().expect("message_id");
    bot.double
        .press_button(CHAT, USER, id, "stop")
        .expect("button exists");
    let (_, v) = bot
        .call("getUpdates", json!({"allowed_updates": ["message"]}))
        .await;
    let kinds: Vec<bool> = v["result"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| u.get("message").is_some())
        .collect();
    assert_eq!(kinds, vec![true]);
}

#[test]
fn jpeg_and_png_headers_give_dimensions_and_other_bytes_none() {
    let jpeg = [
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x02,
        0x00, 0x03, 0x03,
    ];
    assert_eq!(
        super::methods::image_dimensions(&jpeg),
        Some((3, 2, "jpeg"))
    );
    assert_eq!(
        super::methods::image_dimensions(&png(7, 5)),
        Some((7, 5, "png"))
    );
    assert_eq!(super::methods::image_dimensions(b"GIF89a......"), None);
    assert_eq!(super::methods::image_dimensions(&[0xff, 0xd8, 0xff]), None);
}
