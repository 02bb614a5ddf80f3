//! Telegram's two markup languages (MarkdownV2 and HTML) parsed into plain text plus entities, with
//! Telegram's error descriptions; entity offsets and lengths count UTF-16 code units as the Bot API does.

use serde_json::{json, Value};

/// One formatting entity of a message, as the Bot API reports it (offsets in UTF-16 code units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Bot API type: `bold`, `italic`, `underline`, `strikethrough`, `spoiler`, `code`, `pre`,
    /// `text_link`, `blockquote`, `expandable_blockquote`, `custom_emoji`, `bot_command`, ...
    pub kind: String,
    pub offset: usize,
    pub length: usize,
    /// The language of a `pre` block (`<pre><code class="language-x">`, or "```x").
    pub language: Option<String>,
    /// The target of a `text_link`.
    pub url: Option<String>,
    /// The id of a `custom_emoji`.
    pub custom_emoji_id: Option<String>,
}

impl Entity {
    fn new(kind: &str, offset: usize, length: usize) -> Self {
        Self {
            kind: kind.to_string(),
            offset,
            length,
            language: None,
            url: None,
            custom_emoji_id: None,
        }
    }

    /// The entity as the Bot API serialises it.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"type": self.kind, "offset": self.offset, "length": self.length});
        if let Some(l) = &self.language {
            v["language"] = json!(l);
        }
        if let Some(u) = &self.url {
            v["url"] = json!(u);
        }
        if let Some(c) = &self.custom_emoji_id {
            v["custom_emoji_id"] = json!(c);
        }
        v
    }
}

/// Text after markup parsing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub text: String,
    pub entities: Vec<Entity>,
}

/// A markup error; the description Telegram puts after "Bad Request: can't parse entities: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Number of UTF-16 code units of `s` (the unit of entity offsets).
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn sort(entities: &mut [Entity]) {
    entities.sort_by(|a, b| a.offset.cmp(&b.offset).then(b.length.cmp(&a.length)));
}

// ---------------------------------------------------------------------------------------------------------
// HTML

const HTML_TAGS: [&str; 16] = [
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "pre",
    "code",
    "blockquote",
];

struct OpenTag {
    name: String,
    attrs: Vec<(String, String)>,
    start16: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Decodes an HTML character reference at `at` (which holds '&'): the named ones Telegram knows (`lt`, `gt`,
/// `amp`, `quot`, the ';' optional as in Telegram) and numeric ones. None leaves the '&' literal, as Telegram does.
fn decode_entity(b: &[u8], at: usize) -> Option<Result<(char, usize), ParseError>> {
    let rest = &b[at + 1..];
    if rest.first() == Some(&b'#') {
        let (digits_start, radix) = match rest.get(1) {
            Some(b'x') | Some(b'X') => (2, 16),
            _ => (1, 10),
        };
        let mut end = digits_start;
        while end < rest.len() && (rest[end] as char).is_digit(radix) {
            end += 1;
        }
        if end == digits_start || end - digits_start > 8 {
            return None;
        }
        let s = std::str::from_utf8(&rest[digits_start..end]).ok()?;
        let code = u32::from_str_radix(s, radix).ok()?;
        if code == 0 || code > 0x10ffff {
            return None;
        }
        let used = 1 + end + usize::from(rest.get(end) == Some(&b';'));
        return Some(match char::from_u32(code) {
            Some(c) => Ok((c, used)),
            None => Err(ParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched \
                 surrogate code units"
                    .into(),
            )),
        });
    }
    for (name, c) in [("lt", '<'), ("gt", '>'), ("amp", '&'), ("quot", '"')] {
        if rest.starts_with(name.as_bytes()) {
            let used = 1 + name.len() + usize::from(rest.get(name.len()) == Some(&b';'));
            return Some(Ok((c, used)));
        }
    }
    None
}

fn decode_attr(raw: &str) -> Result<String, ParseError> {
    let b = raw.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'&' {
            if let Some(r) = decode_entity(b, i) {
                let (c, used) = r?;
                out.push(c);
                i += used;
                continue;
            }
        }
        let ch = raw[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    Ok(out)
}

/// Parses Telegram HTML (`parse_mode=HTML`).
pub fn parse_html(input: &str) -> Result<Parsed, ParseError> {
    let b = input.as_bytes();
    let mut text = String::new();
    let mut off16 = 0usize;
    let mut stack: Vec<OpenTag> = Vec::new();
    let mut entities = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'&' => {
                if let Some(r) = decode_entity(b, i) {
                    let (c, used) = r?;
                    text.push(c);
                    off16 += c.len_utf16();
                    i += used;
                } else {
                    text.push('&');
                    off16 += 1;
                    i += 1;
                }
            }
            b'<' => {
                let begin = i;
                i += 1;
                if b.get(i) == Some(&b'/') {
                    // An end tag.
                    if stack.is_empty() {
                        return Err(ParseError(format!(
                            "Unexpected end tag at byte offset {begin}"
                        )));
                    }
                    i += 1;
                    let name_start = i;
                    while i < b.len() && !is_space(b[i]) && b[i] != b'>' {
                        i += 1;
                    }
                    let name = input[name_start..i].to_ascii_lowercase();
                    while i < b.len() && is_space(b[i]) {
                        i += 1;
                    }
                    if i >= b.len() || b[i] != b'>' {
                        return Err(ParseError(format!(
                            "Unclosed end tag at byte offset {begin}"
                        )));
                    }
                    i += 1;
                    let Some(open) = stack.pop() else {
                        return Err(ParseError(format!(
                            "Unexpected end tag at byte offset {begin}"
                        )));
                    };
                    if !name.is_empty() && name != open.name {
                        return Err(ParseError(format!(
                            "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{name}>\"",
                            open.name
                        )));
                    }
                    if let Some(e) = html_entity(&open, off16 - open.start16, &text)? {
                        entities.push(e);
                    }
                } else {
                    // A start tag.
                    let name_start = i;
                    while i < b.len() && !is_space(b[i]) && b[i] != b'>' {
                        i += 1;
                    }
                    if i >= b.len() {
                        return Err(ParseError(format!(
                            "Unclosed start tag at byte offset {begin}"
                        )));
                    }
                    let name = input[name_start..i].to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(ParseError(format!(
                            "Unsupported start tag \"{name}\" at byte offset {begin}"
                        )));
                    }
                    let mut attrs = Vec::new();
                    loop {
                        while i < b.len() && is_space(b[i]) {
                            i += 1;
                        }
                        if i >= b.len() {
                            return Err(ParseError(format!(
                                "Unclosed start tag \"{name}\" at byte offset {begin}"
                            )));
                        }
                        if b[i] == b'>' {
                            i += 1;
                            break;
                        }
                        let attr_start = i;
                        while i < b.len() && !is_space(b[i]) && b[i] != b'=' && b[i] != b'>' {
                            i += 1;
                        }
                        let attr = input[attr_start..i].to_ascii_lowercase();
                        if attr.is_empty() {
                            return Err(ParseError(format!(
                                "Empty attribute name in the tag \"{name}\" at byte offset {begin}"
                            )));
                        }
                        while i < b.len() && is_space(b[i]) {
                            i += 1;
                        }
                        if i >= b.len() || b[i] != b'=' {
                            attrs.push((attr, String::new()));
                            continue;
                        }
                        i += 1;
                        while i < b.len() && is_space(b[i]) {
                            i += 1;
                        }
                        if i >= b.len() {
                            return Err(ParseError(format!(
                                "Unclosed start tag \"{name}\" at byte offset {begin}"
                            )));
                        }
                        let value = if b[i] == b'"' || b[i] == b'\'' {
                            let quote = b[i];
                            let v_start = i + 1;
                            let Some(len) = b[v_start..].iter().position(|&c| c == quote) else {
                                return Err(ParseError(format!(
                                    "Unclosed start tag at byte offset {begin}"
                                )));
                            };
                            i = v_start + len + 1;
                            decode_attr(&input[v_start..v_start + len])?
                        } else {
                            let v_start = i;
                            while i < b.len()
                                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'-' | b'.'))
                            {
                                i += 1;
                            }
                            if i >= b.len() || (!is_space(b[i]) && b[i] != b'>') {
                                return Err(ParseError(format!(
                                    "Unexpected end of name token at byte offset {v_start}"
                                )));
                            }
                            input[v_start..i].to_string()
                        };
                        attrs.push((attr, value));
                    }
                    if name == "span"
                        && !attrs.iter().any(|(k, v)| k == "class" && v == "tg-spoiler")
                    {
                        return Err(ParseError(
                            "Tag \"span\" must have class \"tg-spoiler\"".into(),
                        ));
                    }
                    stack.push(OpenTag {
                        name,
                        attrs,
                        start16: off16,
                    });
                }
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
                text.push(ch);
                off16 += ch.len_utf16();
                i += ch.len_utf8();
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(ParseError(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.name
        )));
    }
    merge_pre_code(&mut entities);
    sort(&mut entities);
    Ok(Parsed { text, entities })
}

fn attr<'a>(open: &'a OpenTag, name: &str) -> Option<&'a str> {
    open.attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn html_entity(open: &OpenTag, length: usize, _text: &str) -> Result<Option<Entity>, ParseError> {
    if length == 0 {
        return Ok(None);
    }
    let kind = match open.name.as_str() {
        "b" | "strong" => "bold",
        "i" | "em" => "italic",
        "u" | "ins" => "underline",
        "s" | "strike" | "del" => "strikethrough",
        "span" | "tg-spoiler" => "spoiler",
        "pre" => "pre",
        "code" => "code",
        "blockquote" if attr(open, "expandable").is_some() => "expandable_blockquote",
        "blockquote" => "blockquote",
        "a" => "text_link",
        "tg-emoji" => "custom_emoji",
        _ => return Ok(None),
    };
    let mut e = Entity::new(kind, open.start16, length);
    match kind {
        "code" => {
            e.language = attr(open, "class")
                .and_then(|c| c.strip_prefix("language-"))
                .filter(|l| !l.is_empty())
                .map(str::to_string);
        }
        "text_link" => match attr(open, "href") {
            Some(h) if !h.is_empty() => e.url = Some(h.to_string()),
            // Telegram makes <a>URL</a> a link to its own text; the double keeps no entity (approximation).
            _ => return Ok(None),
        },
        "custom_emoji" => match attr(open, "emoji-id") {
            Some(id) if !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()) => {
                e.custom_emoji_id = Some(id.to_string())
            }
            _ => {
                return Err(ParseError(
                    "Invalid custom emoji identifier specified".into(),
                ))
            }
        },
        _ => {}
    }
    Ok(Some(e))
}

/// `<pre><code class="language-x">…</code></pre>` is one `pre` entity with a language, as the Bot API reports it.
fn merge_pre_code(entities: &mut Vec<Entity>) {
    let mut i = 0;
    while i < entities.len() {
        if entities[i].kind == "code" && entities[i].language.is_some() {
            let (o, l) = (entities[i].offset, entities[i].length);
            if let Some(p) = entities
                .iter()
                .position(|p| p.kind == "pre" && p.offset == o && p.length == l)
            {
                entities[p].language = entities[i].language.clone();
                entities.remove(i);
                continue;
            }
            // A code block with a language outside pre stays plain code.
            entities[i].language = None;
        }
        i += 1;
    }
}

// ---------------------------------------------------------------------------------------------------------
// MarkdownV2

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Md {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    TextUrl,
    CustomEmoji,
}

impl Md {
    fn name(self) -> &'static str {
        match self {
            Md::Bold => "Bold",
            Md::Italic => "Italic",
            Md::Underline => "Underline",
            Md::Strikethrough => "Strikethrough",
            Md::Spoiler => "Spoiler",
            Md::TextUrl => "TextUrl",
            Md::CustomEmoji => "CustomEmoji",
        }
    }

    fn api_type(self) -> &'static str {
        match self {
            Md::Bold => "bold",
            Md::Italic => "italic",
            Md::Underline => "underline",
            Md::Strikethrough => "strikethrough",
            Md::Spoiler => "spoiler",
            Md::TextUrl => "text_link",
            Md::CustomEmoji => "custom_emoji",
        }
    }
}

struct MdOpen {
    kind: Md,
    begin: usize,
    start16: usize,
}

fn reserved(c: char) -> ParseError {
    ParseError(format!(
        "Character '{c}' is reserved and must be escaped with the preceding '\\'"
    ))
}

/// Reads the body of a code span or pre block from `i` up to the unescaped `close`; inside, a '\' escapes any
/// ASCII character. Returns the unescaped body and the index after the closing delimiter.
fn md_code_body(input: &str, mut i: usize, close: &str) -> Option<(String, usize)> {
    let b = input.as_bytes();
    let mut out = String::new();
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && (1..=126).contains(&b[i + 1]) {
            out.push(b[i + 1] as char);
            i += 2;
            continue;
        }
        if input[i..].starts_with(close) {
            return Some((out, i + close.len()));
        }
        let ch = input[i..].chars().next()?;
        out.push(ch);
        i += ch.len_utf8();
    }
    None
}

/// Parses MarkdownV2 (`parse_mode=MarkdownV2`).
pub fn parse_markdown_v2(input: &str) -> Result<Parsed, ParseError> {
    let b = input.as_bytes();
    let mut text = String::new();
    let mut off16 = 0usize;
    let mut stack: Vec<MdOpen> = Vec::new();
    let mut entities: Vec<Entity> = Vec::new();
    let mut quote_start: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        let line_start = i == 0 || b[i - 1] == b'\n' || b[i - 1] == b'\r';
        if line_start {
            if b[i] == b'>' {
                quote_start.get_or_insert(off16);
                i += 1;
                continue;
            }
            if let Some(start) = quote_start.take() {
                if off16 > start {
                    entities.push(Entity::new("blockquote", start, off16 - start));
                }
            }
        }
        let c = b[i];
        match c {
            b'\\' if i + 1 < b.len() && (1..=126).contains(&b[i + 1]) => {
                text.push(b[i + 1] as char);
                off16 += 1;
                i += 2;
            }
            b'`' => {
                let begin = i;
                if input[i..].starts_with("```") {
                    let body_start = i + 3;
                    // The language runs to the first whitespace; a body with no whitespace after it is plain pre.
                    let lang_len = b[body_start..]
                        .iter()
                        .position(|&c| is_space(c) || c == b'`')
                        .unwrap_or(b.len() - body_start);
                    let has_lang =
                        lang_len > 0 && b.get(body_start + lang_len).is_some_and(|&c| is_space(c));
                    let Some((raw, next)) = md_code_body(input, body_start, "```") else {
                        let kind = if has_lang { "PreCode" } else { "Pre" };
                        return Err(ParseError(format!(
                            "Can't find end of {kind} entity at byte offset {begin}"
                        )));
                    };
                    let split = raw
                        .get(..lang_len)
                        .zip(raw.get(lang_len..))
                        .filter(|_| has_lang);
                    let (language, mut body) = match split {
                        Some((lang, rest)) if !rest.is_empty() => {
                            (Some(lang.to_string()), rest.to_string())
                        }
                        _ => (None, raw.clone()),
                    };
                    for nl in ["\r\n", "\n\r", "\n", "\r"] {
                        if let Some(rest) = body.strip_prefix(nl) {
                            body = rest.to_string();
                            break;
                        }
                    }
                    let len = utf16_len(&body);
                    if len > 0 {
                        let mut e = Entity::new("pre", off16, len);
                        e.language = language;
                        entities.push(e);
                    }
                    text.push_str(&body);
                    off16 += len;
                    i = next;
                } else {
                    let Some((body, next)) = md_code_body(input, i + 1, "`") else {
                        return Err(ParseError(format!(
                            "Can't find end of Code entity at byte offset {begin}"
                        )));
                    };
                    let len = utf16_len(&body);
                    if len > 0 {
                        entities.push(Entity::new("code", off16, len));
                    }
                    text.push_str(&body);
                    off16 += len;
                    i = next;
                }
            }
            b'*' | b'_' | b'~' | b'|' | b'[' | b'!' => {
                let (kind, width) = match c {
                    b'*' => (Md::Bold, 1),
                    b'_' if b.get(i + 1) == Some(&b'_') => (Md::Underline, 2),
                    b'_' => (Md::Italic, 1),
                    b'~' => (Md::Strikethrough, 1),
                    b'|' if b.get(i + 1) == Some(&b'|') => (Md::Spoiler, 2),
                    b'[' => (Md::TextUrl, 1),
                    b'!' if b.get(i + 1) == Some(&b'[') => (Md::CustomEmoji, 2),
                    _ => return Err(reserved(c as char)),
                };
                if stack.last().is_some_and(|o| o.kind == kind)
                    && !matches!(kind, Md::TextUrl | Md::CustomEmoji)
                {
                    let open = stack.pop().expect("checked non-empty");
                    if off16 > open.start16 {
                        entities.push(Entity::new(
                            kind.api_type(),
                            open.start16,
                            off16 - open.start16,
                        ));
                    }
                } else {
                    stack.push(MdOpen {
                        kind,
                        begin: i,
                        start16: off16,
                    });
                }
                i += width;
            }
            b']' => {
                if !stack
                    .last()
                    .is_some_and(|o| matches!(o.kind, Md::TextUrl | Md::CustomEmoji))
                {
                    return Err(reserved(']'));
                }
                let Some(open) = stack.pop() else {
                    return Err(reserved(']'));
                };
                i += 1;
                let url = if b.get(i) == Some(&b'(') {
                    let url_start = i + 1;
                    let Some((url, next)) = md_code_body(input, url_start, ")") else {
                        let what = if open.kind == Md::CustomEmoji {
                            "a custom emoji URL"
                        } else {
                            "a URL"
                        };
                        return Err(ParseError(format!(
                            "Can't find end of {what} at byte offset {url_start}"
                        )));
                    };
                    i = next;
                    url
                } else {
                    String::new()
                };
                let len = off16 - open.start16;
                if open.kind == Md::CustomEmoji {
                    let id = url
                        .strip_prefix("tg://emoji?id=")
                        .filter(|id| !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()));
                    let Some(id) = id else {
                        return Err(ParseError(
                            "Custom emoji entity must contain a tg://emoji URL".into(),
                        ));
                    };
                    let mut e = Entity::new("custom_emoji", open.start16, len);
                    e.custom_emoji_id = Some(id.to_string());
                    entities.push(e);
                } else if len > 0 && !url.is_empty() {
                    // Telegram drops links whose URL it cannot use; the double keeps any non-empty one.
                    let mut e = Entity::new("text_link", open.start16, len);
                    e.url = Some(url);
                    entities.push(e);
                }
            }
            b'(' | b')' | b'>' | b'#' | b'+' | b'-' | b'=' | b'{' | b'}' | b'.' => {
                return Err(reserved(c as char));
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
                text.push(ch);
                off16 += ch.len_utf16();
                i += ch.len_utf8();
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(ParseError(format!(
            "Can't find end of {} entity at byte offset {}",
            open.kind.name(),
            open.begin
        )));
    }
    if let Some(start) = quote_start {
        if off16 > start {
            entities.push(Entity::new("blockquote", start, off16 - start));
        }
    }
    sort(&mut entities);
    Ok(Parsed { text, entities })
}

/// A `bot_command` entity for a message starting with "/command", as Telegram adds to incoming messages.
pub fn detect_bot_command(text: &str) -> Vec<Entity> {
    if !text.starts_with('/') {
        return Vec::new();
    }
    let end = text
        .char_indices()
        .skip(1)
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '@'))
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    if end <= 1 {
        return Vec::new();
    }
    vec![Entity::new("bot_command", 0, utf16_len(&text[..end]))]
}
