//! Quoting of values for each target format, registered as minijinja filters: YAML double-quoted scalars,
//! Compose (YAML + `$` interpolation escape), Compose env-file single-quoted values, Caddyfile bare tokens, JSON.
//! Each filter either produces text the consuming parser reads back as exactly the value, or fails.

use minijinja::{Error, ErrorKind};

/// A YAML double-quoted scalar that YAML 1.1 and 1.2 parsers read back as exactly `s`: escapes quotes, backslashes,
/// every control character and the characters YAML treats as line breaks or byte-order marks.
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value inside the Compose file: Compose interpolates `$` first, so `$` is doubled, then YAML-quoted.
pub fn compose_quote(s: &str) -> String {
    yaml_quote(&s.replace('$', "$$"))
}

/// A Compose env-file value: single-quoted, which Compose reads literally (no `$` interpolation, no escapes, no
/// comments). Values containing a single quote, a backslash (read as an escape before the closing quote) or a line
/// break cannot be written this way and are refused.
pub fn dotenv_quote(s: &str) -> Result<String, Error> {
    if s.contains(['\'', '\\', '\n', '\r']) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "value cannot be written to an env file",
        ));
    }
    Ok(format!("'{s}'"))
}

/// A bare Caddyfile token: only characters that cannot start a comment, quote, placeholder, block or new token
/// (a path with a query, such as the forward-auth URI, is one).
pub fn caddy_token(s: &str) -> Result<String, Error> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b'-' | b'_' | b'@' | b'%' | b'+' | b':' | b'/' | b'?' | b'='
                )
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{s:?} is not a plain Caddyfile token"),
        ))
    }
}

/// JSON text for any serialisable value (pretty, two-space indent; key order as given).
pub fn json(v: minijinja::Value) -> Result<String, Error> {
    serde_json::to_string_pretty(&v)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// Registers the filters above under the names the templates use.
pub fn register(env: &mut minijinja::Environment<'_>) {
    env.add_filter("yaml", |s: &str| yaml_quote(s));
    env.add_filter("compose", |s: &str| compose_quote(s));
    env.add_filter("dotenv", dotenv_quote);
    env.add_filter("caddy_token", caddy_token);
    env.add_filter("json", json);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_roundtrip(s: &str) -> String {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&format!("k: {}\n", yaml_quote(s))).unwrap();
        v.get("k").unwrap().as_str().unwrap().to_string()
    }

    #[test]
    fn yaml_quote_reads_back_line_separators_quotes_and_bom() {
        for s in [
            "a\u{2028}b",
            "\u{85}x",
            "\"'\\",
            "\u{feff}lead",
            "tab\there",
            "null",
            "yes",
            "~",
            "- x",
            "#c",
            "€😀",
        ] {
            assert_eq!(yaml_roundtrip(s), s);
        }
    }

    #[test]
    fn compose_quote_doubles_dollars() {
        assert_eq!(compose_quote("a$b${C}"), "\"a$$b$${C}\"");
    }

    #[test]
    fn dotenv_quote_refuses_single_quote_and_newline() {
        assert!(dotenv_quote("a'b").is_err());
        assert!(dotenv_quote("a\nb").is_err());
        assert_eq!(dotenv_quote("a$b #c").unwrap(), "'a$b #c'");
    }

    #[test]
    fn caddy_token_refuses_braces_spaces_quotes_and_comments() {
        for s in ["{$X}", "a b", "\"", "#", "", "a\nb", "a{b", "`x`"] {
            assert!(caddy_token(s).is_err(), "{s:?}");
        }
        assert!(caddy_token("admin+x@example.com").is_ok());
        assert!(
            caddy_token("/api/authz/forward-auth?authelia_url=https%3A%2F%2Fauth.x.com%2F").is_ok()
        );
    }
}
