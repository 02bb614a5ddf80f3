//! Which colours each line gets: the syntax (from the fence's info string), syntect highlighting, diffs, plain text.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

use syntect::easy::HighlightLines;
use syntect::highlighting::{Color, Theme};
use syntect::parsing::{SyntaxReference, SyntaxSet};
use two_face::theme::EmbeddedThemeName;

/// Lines longer than this (in bytes) are not highlighted: regexes on minified code take too long.
const MAX_HIGHLIGHT_BYTES: usize = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rgb(pub u8, pub u8, pub u8);

/// The colours around the text: the dark theme's background plus the gutter, diff and notice colours.
pub(crate) struct Palette {
    pub bg: Rgb,
    pub fg: Rgb,
    pub gutter_bg: Rgb,
    pub gutter_fg: Rgb,
    pub added_bg: Rgb,
    pub removed_bg: Rgb,
    pub hunk_fg: Rgb,
    pub file_fg: Rgb,
    pub notice_fg: Rgb,
}

/// One Dark-like colours, used for the frame, plain text and diffs (and for code if the theme could not load).
pub(crate) const PALETTE: Palette = Palette {
    bg: Rgb(0x28, 0x2c, 0x34),
    fg: Rgb(0xdc, 0xdf, 0xe4),
    gutter_bg: Rgb(0x21, 0x25, 0x2b),
    gutter_fg: Rgb(0x7f, 0x84, 0x8e),
    added_bg: Rgb(0x25, 0x4a, 0x2c),
    removed_bg: Rgb(0x5c, 0x26, 0x2b),
    hunk_fg: Rgb(0x56, 0xb6, 0xc2),
    file_fg: Rgb(0xe5, 0xc0, 0x7b),
    notice_fg: Rgb(0xc6, 0x78, 0xdd),
};

static SYNTAXES: LazyLock<Option<SyntaxSet>> =
    LazyLock::new(|| catch_unwind(two_face::syntax::extra_newlines).ok());
static THEME: LazyLock<Option<Theme>> = LazyLock::new(|| {
    catch_unwind(|| {
        two_face::theme::extra()
            .get(EmbeddedThemeName::OneHalfDark)
            .clone()
    })
    .ok()
});

/// What a whole line's row looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowKind {
    Normal,
    Added,
    Removed,
    Notice,
}

/// How the block is coloured.
pub(crate) enum Mode {
    Diff,
    Syntax(&'static SyntaxSet, &'static SyntaxReference, &'static Theme),
    Plain,
}

/// Picks the colouring for a fence's info string (`rust`, `py`, `diff`, `ts title="x"`, …) and the code.
pub(crate) fn choose_mode(code: &str, lang: Option<&str>) -> Mode {
    let token = lang
        .and_then(|l| {
            l.split(|c: char| c.is_whitespace() || matches!(c, ',' | '{' | '}'))
                .find(|t| !t.is_empty())
        })
        .map(|t| t.trim_start_matches('.').to_ascii_lowercase());
    let token = token.as_deref();
    if matches!(token, Some("diff" | "patch" | "udiff")) || looks_like_diff(code) {
        return Mode::Diff;
    }
    let Some(token) = token else {
        return Mode::Plain;
    };
    let token = match token {
        "shell" | "console" | "zsh" | "sh" | "shellscript" => "bash",
        "golang" => "go",
        "c++" | "cc" | "hpp" => "cpp",
        "py3" | "python3" => "python",
        "jsonc" | "json5" => "json",
        "text" | "txt" | "plain" | "plaintext" | "log" | "output" => return Mode::Plain,
        other => other,
    };
    let (Some(set), Some(theme)) = (SYNTAXES.as_ref(), THEME.as_ref()) else {
        return Mode::Plain;
    };
    match set.find_syntax_by_token(token) {
        Some(syntax) => Mode::Syntax(set, syntax, theme),
        None => Mode::Plain,
    }
}

/// A unified diff: `diff --git` first, or a `--- `/`+++ ` file header pair followed by an `@@ -` hunk.
pub(crate) fn looks_like_diff(code: &str) -> bool {
    let mut lines = code.lines().filter(|l| !l.trim().is_empty()).take(1_000);
    let Some(first) = lines.next() else {
        return false;
    };
    if first.starts_with("diff --git ") {
        return true;
    }
    let mut previous = first;
    let mut header = false;
    for line in lines {
        if previous.starts_with("--- ") && line.starts_with("+++ ") {
            header = true;
        } else if header && line.starts_with("@@ -") {
            return true;
        }
        previous = line;
    }
    false
}

/// Colours lines one after another (a highlighter keeps state across lines).
pub(crate) struct Styler<'a> {
    mode: &'a Mode,
    highlighter: Option<HighlightLines<'static>>,
    hunk: Hunk,
}

impl<'a> Styler<'a> {
    pub fn new(mode: &'a Mode) -> Self {
        let highlighter = match mode {
            Mode::Syntax(_, syntax, theme) => Some(HighlightLines::new(syntax, theme)),
            _ => None,
        };
        Styler {
            mode,
            highlighter,
            hunk: Hunk::default(),
        }
    }

    /// The row kind and coloured pieces of one line (given without its line break).
    pub fn line(&mut self, line: &str) -> (RowKind, Vec<(Rgb, String)>) {
        let mode: &'a Mode = self.mode;
        match mode {
            Mode::Plain => (RowKind::Normal, vec![(PALETTE.fg, line.to_string())]),
            Mode::Diff => diff_line(&mut self.hunk, line),
            Mode::Syntax(set, _, _) => {
                let spans = if line.len() > MAX_HIGHLIGHT_BYTES {
                    None
                } else {
                    self.highlight(set, line)
                };
                (
                    RowKind::Normal,
                    spans.unwrap_or_else(|| vec![(PALETTE.fg, line.to_string())]),
                )
            }
        }
    }

    fn highlight(&mut self, set: &SyntaxSet, line: &str) -> Option<Vec<(Rgb, String)>> {
        let highlighter = self.highlighter.as_mut()?;
        let with_break = format!("{line}\n");
        // A highlighting failure (or a panic deep in a syntax definition) leaves the rest of the block plain.
        let result = catch_unwind(AssertUnwindSafe(|| {
            highlighter.highlight_line(&with_break, set).map(|spans| {
                spans
                    .into_iter()
                    .map(|(style, text)| {
                        (
                            rgb(style.foreground),
                            text.trim_end_matches('\n').to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        }));
        match result {
            Ok(Ok(spans)) => Some(spans),
            _ => {
                self.highlighter = None;
                None
            }
        }
    }
}

fn rgb(c: Color) -> Rgb {
    Rgb(c.r, c.g, c.b)
}

/// Lines left in the current diff hunk, from its `@@ -a,b +c,d @@` header: inside a hunk a line starting with
/// `--- ` is a removed line (an SQL comment, say), not a file header.
#[derive(Default)]
struct Hunk {
    old: u64,
    new: u64,
}

impl Hunk {
    fn start(header: &str) -> Hunk {
        // "@@ -12,5 +12,7 @@ fn x()": a missing count means 1.
        let count = |sign: char| -> u64 {
            header
                .split_whitespace()
                .find_map(|w| w.strip_prefix(sign))
                .map(|range| {
                    range
                        .split_once(',')
                        .map_or(Some(1), |(_, n)| n.parse().ok())
                        .unwrap_or(0)
                })
                .unwrap_or(0)
        };
        Hunk {
            old: count('-'),
            new: count('+'),
        }
    }
}

fn diff_line(hunk: &mut Hunk, line: &str) -> (RowKind, Vec<(Rgb, String)>) {
    let inside = hunk.old > 0 || hunk.new > 0;
    let (kind, fg) = if inside {
        match line.chars().next() {
            Some('+') => {
                hunk.new -= hunk.new.min(1);
                (RowKind::Added, PALETTE.fg)
            }
            Some('-') => {
                hunk.old -= hunk.old.min(1);
                (RowKind::Removed, PALETTE.fg)
            }
            Some('\\') => (RowKind::Normal, PALETTE.gutter_fg),
            _ => {
                hunk.old -= hunk.old.min(1);
                hunk.new -= hunk.new.min(1);
                (RowKind::Normal, PALETTE.fg)
            }
        }
    } else if line.starts_with("@@") {
        *hunk = Hunk::start(line);
        (RowKind::Normal, PALETTE.hunk_fg)
    } else if line.starts_with("+++ ") || line.starts_with("--- ") || line.starts_with("diff ") {
        (RowKind::Normal, PALETTE.file_fg)
    } else if line.starts_with('+') {
        (RowKind::Added, PALETTE.fg)
    } else if line.starts_with('-') {
        (RowKind::Removed, PALETTE.fg)
    } else {
        (RowKind::Normal, PALETTE.fg)
    };
    (kind, vec![(fg, line.to_string())])
}
