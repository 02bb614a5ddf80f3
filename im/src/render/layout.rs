//! Turning lines of text into rows of cells: tab expansion, wide characters, wrapping and the row cap.
use unicode_width::UnicodeWidthChar;

use super::highlight::{Rgb, RowKind, Styler, PALETTE};

/// Columns of text per row; longer lines wrap onto continuation rows.
pub(crate) const MAX_COLS: usize = 120;
/// Rows of code per image; what does not fit is counted in a final "… N more lines" row.
pub(crate) const MAX_ROWS: usize = 300;
/// Tab stops every this many columns.
pub(crate) const TAB: usize = 4;

/// What goes in one cell (or two, for a wide character).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    Char(char),
    /// A control character: drawn as a replacement box.
    Control,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    pub content: Content,
    pub fg: Rgb,
    /// 1, or 2 for a wide (CJK, emoji) character.
    pub width: u8,
}

#[derive(Debug)]
pub(crate) struct Row {
    /// The line number shown in the gutter; `None` on a continuation row or the notice.
    pub number: Option<usize>,
    /// A wrapped line's continuation: the gutter shows a mark instead of a number.
    pub continuation: bool,
    pub kind: RowKind,
    pub cells: Vec<Cell>,
    /// Columns used (wide characters count twice).
    pub cols: usize,
}

impl Row {
    fn new(number: Option<usize>, continuation: bool, kind: RowKind) -> Row {
        Row {
            number,
            continuation,
            kind,
            cells: Vec::new(),
            cols: 0,
        }
    }
}

pub(crate) struct Layout {
    pub rows: Vec<Row>,
    /// Widest row in columns (at most `MAX_COLS`).
    pub cols: usize,
    /// Largest line number shown.
    pub last_number: usize,
}

/// Lays out `code` (already known not to be blank); `styler` colours each line.
pub(crate) fn layout(code: &str, styler: &mut Styler<'_>) -> Layout {
    let code = code.strip_suffix('\n').unwrap_or(code);
    let mut rows: Vec<Row> = Vec::new();
    let mut lines = code.split('\n').enumerate();
    let mut last_number = 0;
    let mut cut = 0usize;
    for (index, line) in lines.by_ref() {
        if rows.len() >= MAX_ROWS {
            cut = 1;
            break;
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        // No more than a full image's worth of characters of one line is even looked at.
        let (line, truncated) = match line.char_indices().nth(MAX_ROWS * MAX_COLS) {
            Some((end, _)) => (&line[..end], true),
            None => (line, false),
        };
        let (kind, spans) = styler.line(line);
        last_number = index + 1;
        if !push_line(&mut rows, index + 1, kind, &spans) || truncated {
            cut = 1;
            break;
        }
    }
    let more = cut + lines.count();
    let mut cols = rows.iter().map(|r| r.cols).max().unwrap_or(0);
    if cut > 0 {
        let text = format!("… {more} more line{}", if more == 1 { "" } else { "s" });
        let mut notice = Row::new(None, false, RowKind::Notice);
        for ch in text.chars() {
            notice.cells.push(Cell {
                content: Content::Char(ch),
                fg: PALETTE.notice_fg,
                width: 1,
            });
            notice.cols += 1;
        }
        cols = cols.max(notice.cols);
        rows.push(notice);
    }
    Layout {
        rows,
        cols,
        last_number,
    }
}

/// Appends the rows of one line; false when the row cap cut it short.
fn push_line(rows: &mut Vec<Row>, number: usize, kind: RowKind, spans: &[(Rgb, String)]) -> bool {
    let mut row = Row::new(Some(number), false, kind);
    let mut col_in_line = 0usize;
    for (fg, text) in spans {
        for ch in text.chars() {
            let (content, width, repeat) = match ch {
                '\t' => (Content::Char(' '), 1, TAB - col_in_line % TAB),
                c if c.is_control() => (Content::Control, 1, 1),
                c => match c.width() {
                    Some(0) | None => continue,
                    Some(w) => (Content::Char(c), w.min(2), 1),
                },
            };
            for _ in 0..repeat {
                if row.cols + width > MAX_COLS {
                    rows.push(std::mem::replace(&mut row, Row::new(None, true, kind)));
                    if rows.len() >= MAX_ROWS {
                        return false;
                    }
                }
                row.cells.push(Cell {
                    content,
                    fg: *fg,
                    width: width as u8,
                });
                row.cols += width;
                col_in_line += width;
            }
        }
    }
    rows.push(row);
    true
}
