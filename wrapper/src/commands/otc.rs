//! `cloudcode otc`: the latest one-time code Authelia wrote to its filesystem notifier (needed to register a
//! passkey or TOTP). Reads the notification file in the authelia container over SSH, or `--file`.
//!
//! The layout moves between Authelia's patch releases (held to files the real 4.38.19, 4.39.15 and 4.39.20
//! wrote, `tests/fixtures/authelia/notification-*.txt`): `Date:`/`Recipient:`/`Subject:` headers, then a
//! text body in which the code stands alone on a line between two lines of dashes (80 dashes, or 40 from
//! 4.39.20, which also stopped wrapping the text). So the parser looks for that structure — a rule, one line
//! of code characters, a rule — not for any wording. Authelia truncates the file on each message; were one
//! ever appended, the last code is the current one.

use std::path::Path;

use crate::error::{Error, Result};
use crate::stack::StackDir;

/// The characters of Authelia's one-time codes (`internal/random`: no I, O, S or 0, 1, 5).
const CODE_CHARSET: &str = "ABCDEFGHJKLMNPQRTUVWYXZ2346789";

/// A line of dashes only, long enough to be a rule rather than a list marker.
fn is_rule(line: &str) -> bool {
    line.len() >= 10 && line.bytes().all(|b| b == b'-')
}

fn is_code(line: &str) -> bool {
    (4..=64).contains(&line.len()) && line.chars().all(|c| CODE_CHARSET.contains(c))
}

/// The last one-time code in a notification file's text: the only non-empty line between two rules, made of
/// code characters. Handles CRLF line ends.
pub fn last_code(text: &str) -> Option<String> {
    let mut code = None;
    let mut between: Option<Vec<&str>> = None;
    for line in text.lines().map(str::trim) {
        if is_rule(line) {
            if let Some([only]) = between.as_deref() {
                if is_code(only) {
                    code = Some(only.to_string());
                }
            }
            between = Some(Vec::new());
        } else if let Some(lines) = between.as_mut() {
            if !line.is_empty() {
                lines.push(line);
            }
        }
    }
    code
}

pub fn run(name: &str, file: Option<&Path>) -> Result<()> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f).map_err(Error::io(f))?,
        None => {
            let stack = StackDir::new(name)?;
            let out = super::remote::compose(
                &stack,
                &format!(
                    "exec -T authelia cat {}",
                    cloudcode_bundle::render::NOTIFICATION_FILE
                ),
            )?;
            out.stdout_lossy()
        }
    };
    match last_code(&text) {
        Some(code) => {
            println!("{code}");
            Ok(())
        }
        None => Err(Error::input(
            "no one-time code yet: start registering a passkey or TOTP in the portal, then run this again",
            "还没有一次性验证码：请先在登录门户开始注册通行密钥或 TOTP，然后再运行此命令",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notifier's files as the real Authelia wrote them, each after two elevation requests.
    const RECORDED: [(&str, &str, &str); 3] = [
        (
            "4.38.19",
            include_str!("../../../tests/fixtures/authelia/notification-4.38.19.txt"),
            "MDKQNHFW",
        ),
        (
            "4.39.15",
            include_str!("../../../tests/fixtures/authelia/notification-4.39.15.txt"),
            "L4TCMYDK",
        ),
        (
            "4.39.20",
            include_str!("../../../tests/fixtures/authelia/notification-4.39.20.txt"),
            "GEQGXGXK",
        ),
    ];

    #[test]
    fn the_code_of_each_recorded_notifier_file_is_found() {
        for (version, text, code) in RECORDED {
            assert_eq!(last_code(text).as_deref(), Some(code), "Authelia {version}");
        }
    }

    #[test]
    fn crlf_line_ends_are_read_alike() {
        for (version, text, code) in RECORDED {
            let crlf = text.replace('\n', "\r\n");
            assert_eq!(
                last_code(&crlf).as_deref(),
                Some(code),
                "Authelia {version}"
            );
        }
    }

    #[test]
    fn a_file_truncated_for_a_new_message_holds_only_the_new_code() {
        // Authelia rewrites the file on each message; the old text is gone, so the new code is the one.
        let (_, first, _) = RECORDED[2];
        let second = first.replace("GEQGXGXK", "T7WQ2ZPM");
        assert_eq!(last_code(&second).as_deref(), Some("T7WQ2ZPM"));
        // Were messages ever appended, the last code is the current one.
        let appended = format!("{first}{second}");
        assert_eq!(last_code(&appended).as_deref(), Some("T7WQ2ZPM"));
    }

    #[test]
    fn a_file_without_a_code_yields_none() {
        assert_eq!(last_code(""), None);
        // A notification without a one-time code (e.g. a password change notice) between its rules.
        let (_, text, code) = RECORDED[2];
        assert_eq!(
            last_code(&text.replace(code, "Your password was changed.")),
            None
        );
        // A rule pair around something that is not code characters (lower case, I/O/0/1/5).
        assert_eq!(last_code("----------\nabcdefgh\n----------\n"), None);
        assert_eq!(last_code("----------\nIO015ABC\n----------\n"), None);
        // Two lines between the rules are prose, not a code.
        assert_eq!(
            last_code("----------\nABCDEFGH\nKLMNPQRT\n----------\n"),
            None
        );
    }
}
