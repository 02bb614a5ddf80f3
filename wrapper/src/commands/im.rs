//! `cloudcode im qr|status|users`: asks the chat bridge in the stack's `im` container (`cloudcode-im link|status|
//! users` over SSH, like `otc`) and shows its JSON for people: the bind code as a QR code (terminal half blocks and
//! a PNG), the platforms and waiting messages, the bound users.

use std::path::Path;

use qrcode::{Color, QrCode};
use serde_json::Value as Json;

use crate::cli::ImCommand;
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::StackDir;

/// Light modules around the code (the QR specification asks for 4).
const QUIET_ZONE: usize = 4;
/// PNG pixels per module.
const PNG_SCALE: usize = 8;

pub fn run(name: &str, c: ImCommand) -> Result<()> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    match c {
        ImCommand::Qr { png, box_id } => {
            let args = match &box_id {
                Some(b) => format!("link --box {}", shell_word(b)?),
                None => "link".to_string(),
            };
            let link = bridge(&stack, &args)?;
            let text = qr_text(&link)?;
            let code = QrCode::new(text.as_bytes()).map_err(|e| {
                Error::input(
                    format!("the bind code cannot be drawn as a QR code: {e}"),
                    format!("绑定码无法生成二维码：{e}"),
                )
            })?;
            print!("{}", terminal(&code));
            write_png(&code, &png)?;
            println!("{text}");
            println!(
                "{}",
                tr(
                    format!(
                        "Scan it in the chat app (PNG: {}). The code binds a chat to this box.",
                        png.display()
                    ),
                    format!(
                        "在聊天应用中扫码（PNG：{}）。此码把聊天绑定到本机。",
                        png.display()
                    ),
                )
            );
            Ok(())
        }
        ImCommand::Status { json } => {
            let v = bridge(&stack, "status")?;
            println!("{}", if json { v.to_string() } else { status_text(&v) });
            Ok(())
        }
        ImCommand::Users { json } => {
            let v = bridge(&stack, "users")?;
            println!("{}", if json { v.to_string() } else { users_text(&v) });
            Ok(())
        }
    }
}

/// A box id as one shell word (the bridge's ids are ASCII letters and digits).
fn shell_word(b: &str) -> Result<&str> {
    if !b.is_empty()
        && b.len() <= cloudcode_bundle::IM_BOX_ID_MAX
        && b.bytes().all(|c| c.is_ascii_alphanumeric())
    {
        Ok(b)
    } else {
        Err(Error::input(
            format!(
                "--box \"{}\" must be the bridge's box id: ASCII letters and digits",
                b.escape_debug()
            ),
            format!(
                "--box \"{}\" 应为聊天桥的 box id：ASCII 字母和数字",
                b.escape_debug()
            ),
        ))
    }
}

/// Runs `cloudcode-im <args>` in the `im` container and parses its one JSON document.
fn bridge(stack: &StackDir, args: &str) -> Result<Json> {
    let out = super::remote::compose(
        stack,
        &format!(
            "exec -T {} cloudcode-im {args}",
            cloudcode_bundle::IM_SERVICE
        ),
    )?;
    if !out.success() {
        let why = String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(Error::input(
            format!(
                "the chat bridge did not answer ({why}); is the stack deployed with --telegram-token-env or --dingtalk-client-id?"
            ),
            format!("聊天桥没有响应（{why}）；该栈是否用 --telegram-token-env 或 --dingtalk-client-id 部署？"),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::input(
            format!("the chat bridge's answer is not JSON: {e}"),
            format!("聊天桥的回答不是 JSON：{e}"),
        )
    })
}

/// What the QR code holds: the Telegram deep link, else the raw bind payload.
pub fn qr_text(link: &Json) -> Result<String> {
    link["links"]["telegram"]
        .as_str()
        .or_else(|| link["payload"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Error::input("the chat bridge gave no bind code", "聊天桥没有给出绑定码"))
}

/// Whether the module at (x, y) of the code with its quiet zone is dark.
fn dark(code: &QrCode, colors: &[Color], x: usize, y: usize) -> bool {
    let w = code.width();
    let (Some(cx), Some(cy)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
        return false;
    };
    cx < w && cy < w && colors[cy * w + cx] == Color::Dark
}

/// The code for a terminal: two modules per character with Unicode half blocks, light modules drawn (for the
/// usual dark terminal background), dark ones left blank.
pub fn terminal(code: &QrCode) -> String {
    let colors = code.to_colors();
    let side = code.width() + 2 * QUIET_ZONE;
    let mut out = String::new();
    for y in (0..side).step_by(2) {
        for x in 0..side {
            let top = !dark(code, &colors, x, y);
            let bottom = y + 1 < side && !dark(code, &colors, x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out
}

/// The code as an 8-bit greyscale PNG, [`PNG_SCALE`] pixels per module, with the quiet zone.
pub fn png_bytes(code: &QrCode) -> Result<Vec<u8>> {
    let colors = code.to_colors();
    let side = (code.width() + 2 * QUIET_ZONE) * PNG_SCALE;
    let mut pixels = Vec::with_capacity(side * side);
    for py in 0..side {
        for px in 0..side {
            pixels.push(if dark(code, &colors, px / PNG_SCALE, py / PNG_SCALE) {
                0u8
            } else {
                255u8
            });
        }
    }
    let mut bytes = Vec::new();
    let png_error = |e: png::EncodingError| {
        Error::input(
            format!("the PNG cannot be encoded: {e}"),
            format!("无法编码 PNG：{e}"),
        )
    };
    let side32 =
        u32::try_from(side).map_err(|_| Error::input("the QR code is too large", "二维码过大"))?;
    let mut enc = png::Encoder::new(&mut bytes, side32, side32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(png_error)?;
    w.write_image_data(&pixels).map_err(png_error)?;
    w.finish().map_err(png_error)?;
    Ok(bytes)
}

fn write_png(code: &QrCode, path: &Path) -> Result<()> {
    std::fs::write(path, png_bytes(code)?).map_err(Error::io(path))
}

/// `status` for people: platforms, boxes with their users, messages waiting per platform.
pub fn status_text(v: &Json) -> String {
    let list = |a: &Json| {
        a.as_array()
            .map(|x| {
                x.iter()
                    .filter_map(Json::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut out = tr(
        format!("platforms: {}", list(&v["platforms"])),
        format!("平台：{}", list(&v["platforms"])),
    );
    for b in v["boxes"].as_array().into_iter().flatten() {
        let (id, name, users) = (
            b["id"].as_str().unwrap_or(""),
            b["name"].as_str().unwrap_or(""),
            b["users"].as_u64().unwrap_or(0),
        );
        out.push('\n');
        out.push_str(&tr(
            format!("box {name} ({id}): {users} bound users"),
            format!("box {name}（{id}）：已绑定 {users} 个用户"),
        ));
    }
    if let Some(w) = v["waiting"].as_object() {
        let parts: Vec<String> = w
            .iter()
            .map(|(k, n)| format!("{k} {}", n.as_u64().unwrap_or(0)))
            .collect();
        out.push('\n');
        out.push_str(&tr(
            format!("waiting to be sent: {}", parts.join(", ")),
            format!("待发送：{}", parts.join("，")),
        ));
    }
    out
}

/// `users` for people: one line per bound chat user.
pub fn users_text(v: &Json) -> String {
    let users = v["users"].as_array().cloned().unwrap_or_default();
    if users.is_empty() {
        return tr(
            "no chat user is bound yet (cloudcode im qr shows the bind code)",
            "还没有绑定的聊天用户（cloudcode im qr 显示绑定码）",
        );
    }
    let field = |u: &Json, k: &str| match &u[k] {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        other => other.to_string(),
    };
    users
        .iter()
        .map(|u| {
            let mut line = format!(
                "{}\t{}\t{}\tbox {}\t{}\t{}",
                field(u, "platform"),
                field(u, "user"),
                field(u, "name"),
                field(u, "box"),
                field(u, "label"),
                field(u, "last_seen")
            );
            // A user the bridge cannot reach: what waits for them and what they missed past the backlog.
            let (waiting, missed) = (
                u["waiting"].as_u64().unwrap_or(0),
                u["missed"].as_u64().unwrap_or(0),
            );
            if waiting + missed > 0 {
                line.push_str(&format!("\t{waiting} waiting, {missed} missed"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LINK: &str =
        "https://t.me/cloudcode_bot?start=root4712322optcloudcode_AbCdEfGhIjKlMnOpQrStUv";

    #[test]
    fn the_qr_holds_the_telegram_link_or_else_the_payload() {
        let with = json!({ "box": "b", "payload": "b_tag", "links": { "telegram": LINK } });
        assert_eq!(qr_text(&with).unwrap(), LINK);
        let without = json!({ "box": "b", "payload": "b_tag", "links": {} });
        assert_eq!(qr_text(&without).unwrap(), "b_tag");
        assert!(qr_text(&json!({ "links": {} })).is_err());
    }

    #[test]
    fn the_png_is_valid_and_its_size_follows_the_module_count() {
        let code = QrCode::new(LINK.as_bytes()).unwrap();
        let bytes = png_bytes(&code).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let side = (code.width() + 2 * QUIET_ZONE) * PNG_SCALE;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let at = |mx: usize, my: usize| buf[(my * PNG_SCALE + 1) * side + mx * PNG_SCALE + 1];
        assert_eq!(at(0, 0), 255, "quiet zone is light");
        assert_eq!(
            at(QUIET_ZONE, QUIET_ZONE),
            0,
            "the finder pattern's corner is dark"
        );
        assert_eq!(
            at(QUIET_ZONE + 1, QUIET_ZONE + 1),
            255,
            "inside the finder's outer ring is light"
        );
    }

    #[test]
    fn the_terminal_code_uses_half_blocks_two_modules_per_line() {
        let code = QrCode::new(LINK.as_bytes()).unwrap();
        let text = terminal(&code);
        let side = code.width() + 2 * QUIET_ZONE;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == side));
        assert!(
            lines[0].chars().all(|c| c == '█'),
            "the quiet zone is light"
        );
        assert!(text
            .chars()
            .all(|c| matches!(c, '█' | '▀' | '▄' | ' ' | '\n')));
    }

    #[test]
    fn status_and_users_read_the_bridges_json() {
        let s = status_text(&json!({
            "platforms": ["telegram"],
            "boxes": [{ "id": "abc", "name": "code", "users": 2 }],
            "waiting": { "telegram": 1, "dingtalk": 0 }
        }));
        assert!(
            s.contains("telegram") && s.contains("code (abc): 2") && s.contains("telegram 1"),
            "{s}"
        );
        let u = users_text(
            &json!({ "users": [{ "platform": "telegram", "user": "42", "name": "Ann", "box": "abc", "label": null, "last_seen": 1700000000 }] }),
        );
        assert_eq!(u, "telegram\t42\tAnn\tbox abc\t-\t1700000000");
        let u = users_text(
            &json!({ "users": [{ "platform": "telegram", "user": "42", "name": "Ann", "box": "abc", "label": null, "last_seen": 1, "waiting": 20, "missed": 3 }] }),
        );
        assert!(u.ends_with("\t20 waiting, 3 missed"), "{u}");
        assert!(users_text(&json!({ "users": [] })).contains("cloudcode im qr"));
        assert!(
            shell_word("abc123").is_ok()
                && shell_word("a;rm")
                    .unwrap_err()
                    .to_string()
                    .contains("--box")
        );
    }
}
