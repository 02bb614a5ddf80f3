//! The Bot API methods other than getUpdates: their parameter checks, Telegram's error descriptions, and
//! their effect on the world (messages, edits, uploads, callback answers, chat actions, deletions).

use std::time::Instant;

use serde_json::{json, Value};

use super::parse::{self, Entity, Parsed};
use super::server::{ApiError, Params, Upload};
use super::state::{Button, CallbackAnswer, Document, MessageVersion, Photo, SentMessage, World};

pub(crate) const MESSAGE_MAX: usize = 4096;
pub(crate) const CAPTION_MAX: usize = 1024;
pub(crate) const CALLBACK_DATA_MAX: usize = 64;
pub(crate) const CALLBACK_ANSWER_MAX: usize = 200;
const PHOTO_MAX_BYTES: usize = 10 * 1024 * 1024;
const DOCUMENT_MAX_BYTES: usize = 50 * 1024 * 1024;

pub(crate) const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply markup are \
                                       exactly the same as a current content and reply markup of the message";

const CHAT_ACTIONS: [&str; 11] = [
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

pub(crate) fn call(
    world: &mut World,
    method: &str,
    p: &Params,
    now: Instant,
) -> Result<Value, ApiError> {
    match method {
        "getme" => {
            let mut me = world.bot_user();
            me["can_join_groups"] = json!(true);
            me["can_read_all_group_messages"] = json!(false);
            me["supports_inline_queries"] = json!(false);
            Ok(me)
        }
        "deletewebhook" => {
            if p.bool("drop_pending_updates") {
                world.updates.clear();
            }
            Ok(json!(true))
        }
        "logout" => Ok(json!(true)),
        "setmycommands" => set_my_commands(world, p),
        "getmycommands" => Ok(Value::Array(
            world
                .commands
                .iter()
                .map(|(c, d)| json!({"command": c, "description": d}))
                .collect(),
        )),
        "sendmessage" => send_message(world, p),
        "editmessagetext" => edit_message_text(world, p, now),
        "editmessagereplymarkup" => edit_reply_markup(world, p, now),
        "sendphoto" => send_media(world, p, Media::Photo),
        "senddocument" => send_media(world, p, Media::Document),
        "answercallbackquery" => answer_callback_query(world, p),
        "sendchataction" => send_chat_action(world, p),
        "deletemessage" => delete_message(world, p),
        _ => Err(ApiError {
            status: 404,
            description: "Not Found".into(),
            retry_after: None,
        }),
    }
}

fn set_my_commands(world: &mut World, p: &Params) -> Result<Value, ApiError> {
    let Some(Ok(Value::Array(list))) = p.json("commands") else {
        return Err(ApiError::bad("can't parse commands JSON object"));
    };
    let mut commands = Vec::new();
    for c in &list {
        let command = c.get("command").and_then(Value::as_str).unwrap_or("");
        let description = c.get("description").and_then(Value::as_str).unwrap_or("");
        let command_ok = (1..=32).contains(&command.len())
            && command
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !command_ok {
            return Err(ApiError::bad("BOT_COMMAND_INVALID"));
        }
        if !(1..=256).contains(&description.chars().count()) {
            return Err(ApiError::bad("command description must be non-empty"));
        }
        commands.push((command.to_string(), description.to_string()));
    }
    world.commands = commands;
    Ok(json!(true))
}

/// Text (or caption) after parse_mode / entities, with the parse_mode that produced it.
fn formatted(
    p: &Params,
    text_key: &str,
    entities_key: &str,
) -> Result<(Parsed, Option<String>), ApiError> {
    let raw = p.str(text_key).unwrap_or_default();
    if let Some(given) = p.json(entities_key) {
        let Ok(Value::Array(list)) = given else {
            return Err(ApiError::bad(format!(
                "can't parse {entities_key} JSON object"
            )));
        };
        let mut entities = Vec::new();
        for e in &list {
            let (Some(kind), Some(offset), Some(length)) = (
                e.get("type").and_then(Value::as_str),
                e.get("offset").and_then(Value::as_u64),
                e.get("length").and_then(Value::as_u64),
            ) else {
                return Err(ApiError::bad(format!(
                    "can't parse {entities_key} JSON object"
                )));
            };
            entities.push(Entity {
                kind: kind.to_string(),
                offset: offset as usize,
                length: length as usize,
                language: e
                    .get("language")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                url: e.get("url").and_then(Value::as_str).map(str::to_string),
                custom_emoji_id: e
                    .get("custom_emoji_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        return Ok((
            Parsed {
                text: raw,
                entities,
            },
            None,
        ));
    }
    let mode = p.str("parse_mode").unwrap_or_default();
    let parsed = match mode.to_ascii_lowercase().as_str() {
        "" => Ok(Parsed {
            text: raw,
            entities: Vec::new(),
        }),
        "html" => parse::parse_html(&raw),
        "markdownv2" => parse::parse_markdown_v2(&raw),
        _ => return Err(ApiError::bad("unsupported parse_mode")),
    }
    .map_err(|e| ApiError::bad(format!("can't parse entities: {e}")))?;
    Ok((parsed, (!mode.is_empty()).then_some(mode)))
}

fn check_message_text(parsed: &Parsed) -> Result<(), ApiError> {
    if parsed.text.trim().is_empty() {
        return Err(ApiError::bad("message text is empty"));
    }
    // Telegram (tdlib) limits the length in Unicode code points, not UTF-16 units.
    if parsed.text.chars().count() > MESSAGE_MAX {
        return Err(ApiError::bad("message is too long"));
    }
    Ok(())
}

fn keyboard(p: &Params) -> Result<Option<Vec<Vec<Button>>>, ApiError> {
    let Some(markup) = p.json("reply_markup") else {
        return Ok(None);
    };
    let unparsable = || ApiError::bad("can't parse reply keyboard markup JSON object");
    let markup = markup.map_err(|_| unparsable())?;
    let Some(obj) = markup.as_object() else {
        return Err(unparsable());
    };
    let Some(rows) = obj.get("inline_keyboard") else {
        // reply keyboards, remove_keyboard and force_reply carry no inline buttons.
        return Ok(Some(Vec::new()));
    };
    let Some(rows) = rows.as_array() else {
        return Err(ApiError::bad(
            "field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array",
        ));
    };
    let mut out = Vec::new();
    for row in rows {
        let Some(row) = row.as_array() else {
            return Err(ApiError::bad(
                "can't parse inline keyboard button: InlineKeyboardButton must be an Object",
            ));
        };
        let mut buttons = Vec::new();
        for b in row {
            let Some(text) = b.get("text").and_then(Value::as_str) else {
                return Err(ApiError::bad(
                    "can't parse inline keyboard button: Field \"text\" must be of type String",
                ));
            };
            let callback_data = b
                .get("callback_data")
                .and_then(Value::as_str)
                .map(str::to_string);
            let url = b.get("url").and_then(Value::as_str).map(str::to_string);
            if let Some(d) = &callback_data {
                if d.is_empty() || d.len() > CALLBACK_DATA_MAX {
                    return Err(ApiError::bad("BUTTON_DATA_INVALID"));
                }
            }
            if let Some(u) = &url {
                let ok = ["http://", "https://", "tg://"]
                    .iter()
                    .any(|s| u.starts_with(s))
                    && u.len() > 8;
                if !ok {
                    return Err(ApiError::bad("BUTTON_URL_INVALID"));
                }
            }
            let other_action = [
                "switch_inline_query",
                "switch_inline_query_current_chat",
                "web_app",
                "login_url",
                "callback_game",
                "pay",
                "copy_text",
            ]
            .iter()
            .any(|k| b.get(*k).is_some());
            if callback_data.is_none() && url.is_none() && !other_action {
                return Err(ApiError::bad(
                    "text buttons are unallowed in the inline keyboard",
                ));
            }
            buttons.push(Button {
                text: text.to_string(),
                callback_data,
                url,
            });
        }
        out.push(buttons);
    }
    Ok(Some(out))
}

fn require_chat(world: &World, p: &Params) -> Result<i64, ApiError> {
    if !p.has("chat_id") || p.str("chat_id").is_some_and(|s| s.is_empty()) {
        return Err(ApiError::bad("chat_id is empty"));
    }
    let chat_id = p
        .i64("chat_id")
        .map_err(|_| ApiError::bad("chat not found"))?;
    match chat_id {
        Some(id) if world.chats.contains_key(&id) => Ok(id),
        _ => Err(ApiError::bad("chat not found")),
    }
}

fn link_preview_disabled(p: &Params) -> bool {
    if let Some(Ok(opts)) = p.json("link_preview_options") {
        if opts.get("is_disabled").and_then(Value::as_bool) == Some(true) {
            return true;
        }
    }
    p.bool("disable_web_page_preview")
}

fn store_message(world: &mut World, chat_id: i64, mut m: SentMessage) -> Value {
    let chat = world
        .chats
        .get_mut(&chat_id)
        .expect("chat checked by require_chat");
    m.message_id = chat.next_message_id;
    chat.next_message_id += 1;
    chat.messages.push(m);
    let m = chat.messages.last().expect("just pushed").clone();
    world.message_json(&m)
}

fn new_message(
    chat_id: i64,
    parsed: Parsed,
    parse_mode: Option<String>,
    buttons: Vec<Vec<Button>>,
    p: &Params,
) -> SentMessage {
    SentMessage {
        message_id: 0,
        chat_id,
        text: parsed.text.clone(),
        entities: parsed.entities.clone(),
        parse_mode: parse_mode.clone(),
        buttons: buttons.clone(),
        photo: None,
        document: None,
        disable_notification: p.bool("disable_notification"),
        link_preview_disabled: link_preview_disabled(p),
        edit_count: 0,
        history: vec![MessageVersion {
            text: parsed.text,
            entities: parsed.entities,
            parse_mode,
            buttons,
            at: Instant::now(),
        }],
        deleted: false,
        date: World::unix_now(),
    }
}

fn send_message(world: &mut World, p: &Params) -> Result<Value, ApiError> {
    if !p.has("chat_id") {
        return Err(ApiError::bad("chat_id is empty"));
    }
    if p.str("text").is_none_or(|t| t.is_empty()) {
        return Err(ApiError::bad("message text is empty"));
    }
    // Telegram parses the markup before it looks at the chat.
    let (parsed, mode) = formatted(p, "text", "entities")?;
    let buttons = keyboard(p)?.unwrap_or_default();
    let chat_id = require_chat(world, p)?;
    check_message_text(&parsed)?;
    let m = new_message(chat_id, parsed, mode, buttons, p);
    Ok(store_message(world, chat_id, m))
}

fn find_message<'a>(
    world: &'a mut World,
    p: &Params,
    missing: &str,
) -> Result<&'a mut SentMessage, ApiError> {
    if p.has("inline_message_id") {
        return Err(ApiError::bad("MESSAGE_ID_INVALID"));
    }
    let chat_id = require_chat(world, p)?;
    let Some(message_id) = p.i64("message_id")? else {
        return Err(ApiError::bad("message identifier is not specified"));
    };
    world
        .chats
        .get_mut(&chat_id)
        .and_then(|c| {
            c.messages
                .iter_mut()
                .find(|m| m.message_id == message_id && !m.deleted)
        })
        .ok_or_else(|| ApiError::bad(missing))
}

fn apply_edit(
    world: &mut World,
    p: &Params,
    now: Instant,
    parsed: Option<(Parsed, Option<String>)>,
    buttons: Vec<Vec<Button>>,
) -> Result<Value, ApiError> {
    let m = find_message(world, p, "message to edit not found")?;
    if parsed.is_some() && (m.photo.is_some() || m.document.is_some()) {
        return Err(ApiError::bad("there is no text in the message to edit"));
    }
    let unchanged = buttons == m.buttons
        && parsed
            .as_ref()
            .is_none_or(|(t, _)| t.text == m.text && t.entities == m.entities);
    if unchanged {
        return Err(ApiError::bad(NOT_MODIFIED));
    }
    let (chat_id, message_id) = (m.chat_id, m.message_id);
    world
        .edit_flood_check(chat_id, message_id, now)
        .map_err(ApiError::too_many)?;
    let m = find_message(world, p, "message to edit not found")?;
    if let Some((t, mode)) = parsed {
        m.text = t.text;
        m.entities = t.entities;
        m.parse_mode = mode;
    }
    m.buttons = buttons;
    m.edit_count += 1;
    m.history.push(MessageVersion {
        text: m.text.clone(),
        entities: m.entities.clone(),
        parse_mode: m.parse_mode.clone(),
        buttons: m.buttons.clone(),
        at: now,
    });
    let m = m.clone();
    Ok(world.message_json(&m))
}

fn edit_message_text(world: &mut World, p: &Params, now: Instant) -> Result<Value, ApiError> {
    if p.str("text").is_none_or(|t| t.is_empty()) {
        return Err(ApiError::bad("message text is empty"));
    }
    let (parsed, mode) = formatted(p, "text", "entities")?;
    // Without reply_markup an edit removes the inline keyboard, as at Telegram.
    let buttons = keyboard(p)?.unwrap_or_default();
    require_chat(world, p)?;
    check_message_text(&parsed)?;
    apply_edit(world, p, now, Some((parsed, mode)), buttons)
}

fn edit_reply_markup(world: &mut World, p: &Params, now: Instant) -> Result<Value, ApiError> {
    let buttons = keyboard(p)?.unwrap_or_default();
    apply_edit(world, p, now, None, buttons)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    Photo,
    Document,
}

/// Width, height and format of a PNG (from its IHDR chunk) or a JPEG (from its SOFn segment).
pub(crate) fn image_dimensions(b: &[u8]) -> Option<(u32, u32, &'static str)> {
    const PNG_SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if b.len() >= 24 && b[..8] == PNG_SIG {
        if &b[12..16] != b"IHDR" || b[8..12] != [0, 0, 0, 13] {
            return None;
        }
        let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
        let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
        return (w > 0 && h > 0).then_some((w, h, "png"));
    }
    if b.len() >= 4 && b[0] == 0xff && b[1] == 0xd8 {
        let mut pos = 2;
        while pos + 4 <= b.len() {
            if b[pos] != 0xff {
                return None;
            }
            let marker = b[pos + 1];
            if marker == 0xff {
                pos += 1;
                continue;
            }
            if matches!(marker, 0x01 | 0xd0..=0xd7) {
                pos += 2;
                continue;
            }
            let len = u16::from_be_bytes([b[pos + 2], b[pos + 3]]) as usize;
            let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
            if sof {
                if pos + 9 > b.len() {
                    return None;
                }
                let h = u16::from_be_bytes([b[pos + 5], b[pos + 6]]) as u32;
                let w = u16::from_be_bytes([b[pos + 7], b[pos + 8]]) as u32;
                return (w > 0 && h > 0).then_some((w, h, "jpeg"));
            }
            if marker == 0xd9 || marker == 0xda || len < 2 {
                return None;
            }
            pos += 2 + len;
        }
    }
    None
}

fn existing_file(world: &World, file_id: &str) -> Option<(Option<Photo>, Option<Document>)> {
    world
        .chats
        .values()
        .flat_map(|c| c.messages.iter())
        .find_map(|m| {
            if m.photo.as_ref().is_some_and(|ph| ph.file_id == file_id) {
                return Some((m.photo.clone(), None));
            }
            if m.document.as_ref().is_some_and(|d| d.file_id == file_id) {
                return Some((None, m.document.clone()));
            }
            None
        })
}

fn check_photo(world: &mut World, up: &Upload) -> Result<Photo, ApiError> {
    if up.bytes.len() > PHOTO_MAX_BYTES {
        return Err(ApiError::bad("PHOTO_SAVE_FILE_INVALID"));
    }
    let Some((width, height, format)) = image_dimensions(&up.bytes) else {
        return Err(ApiError::bad("IMAGE_PROCESS_FAILED"));
    };
    let (long, short) = (width.max(height), width.min(height));
    if width + height > 10_000 || long > short * 20 {
        return Err(ApiError::bad("PHOTO_INVALID_DIMENSIONS"));
    }
    Ok(Photo {
        width,
        height,
        format,
        bytes: up.bytes.clone(),
        file_id: world.file_id("AgACAgIAAxk"),
    })
}

fn send_media(world: &mut World, p: &Params, media: Media) -> Result<Value, ApiError> {
    if !p.has("chat_id") {
        return Err(ApiError::bad("chat_id is empty"));
    }
    let field = if media == Media::Photo {
        "photo"
    } else {
        "document"
    };
    let (parsed, mode) = formatted(p, "caption", "caption_entities")?;
    let buttons = keyboard(p)?.unwrap_or_default();
    let chat_id = require_chat(world, p)?;
    if parsed.text.chars().count() > CAPTION_MAX {
        return Err(ApiError::bad("message caption is too long"));
    }
    let (photo, document) = if let Some(up) = p.file(field) {
        match media {
            Media::Photo => (Some(check_photo(world, up)?), None),
            Media::Document => {
                if up.bytes.len() > DOCUMENT_MAX_BYTES {
                    return Err(ApiError {
                        status: 413,
                        description: "Request Entity Too Large".into(),
                        retry_after: None,
                    });
                }
                if up.bytes.is_empty() {
                    return Err(ApiError::bad("file must be non-empty"));
                }
                let file_id = world.file_id("BQACAgIAAxk");
                (
                    None,
                    Some(Document {
                        file_name: up.filename.clone(),
                        mime_type: up.content_type.clone(),
                        bytes: up.bytes.clone(),
                        file_id,
                    }),
                )
            }
        }
    } else if p.is_file_ref(field) {
        let id = p.str(field).unwrap_or_default();
        match existing_file(world, &id) {
            Some((Some(ph), _)) if media == Media::Photo => (Some(ph), None),
            Some((ph, doc)) if media == Media::Document => (
                None,
                doc.or_else(|| {
                    ph.map(|ph| Document {
                        file_name: None,
                        mime_type: Some(format!("image/{}", ph.format)),
                        bytes: ph.bytes,
                        file_id: ph.file_id,
                    })
                }),
            ),
            // The double reaches no URL; any other reference is refused as Telegram refuses an unknown one.
            _ => return Err(ApiError::bad("wrong file identifier/HTTP URL specified")),
        }
    } else {
        return Err(ApiError::bad(format!("there is no {field} in the request")));
    };
    let mut m = new_message(chat_id, parsed, mode, buttons, p);
    m.photo = photo;
    m.document = document;
    Ok(store_message(world, chat_id, m))
}

fn answer_callback_query(world: &mut World, p: &Params) -> Result<Value, ApiError> {
    let id = p.str("callback_query_id").unwrap_or_default();
    let text = p.str("text").filter(|t| !t.is_empty());
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > CALLBACK_ANSWER_MAX)
    {
        return Err(ApiError::bad("MESSAGE_TOO_LONG"));
    }
    match world.callback_queries.get_mut(&id) {
        Some(q) if !q.answered => q.answered = true,
        _ => {
            return Err(ApiError::bad(
                "query is too old and response timeout expired or query ID is invalid",
            ))
        }
    }
    world.callback_answers.push(CallbackAnswer {
        callback_query_id: id,
        text,
        show_alert: p.bool("show_alert"),
    });
    Ok(json!(true))
}

fn send_chat_action(world: &mut World, p: &Params) -> Result<Value, ApiError> {
    let action = p.str("action").unwrap_or_default();
    if !CHAT_ACTIONS.contains(&action.as_str()) {
        return Err(ApiError::bad("wrong parameter action in request"));
    }
    let chat_id = require_chat(world, p)?;
    if let Some(chat) = world.chats.get_mut(&chat_id) {
        chat.actions.push(action);
    }
    Ok(json!(true))
}

fn delete_message(world: &mut World, p: &Params) -> Result<Value, ApiError> {
    let m = find_message(world, p, "message to delete not found")?;
    m.deleted = true;
    Ok(json!(true))
}
