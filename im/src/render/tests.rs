//! Scenario tests of the renderer: sizes, CJK glyphs, diff colours, the row cap, determinism, hostile input.
use std::io::Cursor;

use super::font::{self, fonts};
use super::highlight::{choose_mode, looks_like_diff, Mode, Rgb, RowKind, Styler, PALETTE};
use super::layout::{layout, Content, Layout, MAX_COLS, MAX_ROWS};
use super::raster::{indexed, Geometry, PAD};
use super::{render_code, Png, RenderError};

/// The decoded image: width, height and RGB pixels.
struct Decoded {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Decoded {
    fn at(&self, x: u32, y: u32) -> Rgb {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        Rgb(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }
}

fn decode(png: &Png) -> Decoded {
    let mut decoder = png::Decoder::new(Cursor::new(png.bytes.clone()));
    // Palette images come out as RGB.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut buf).expect("the image data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    assert_eq!(
        (info.width, info.height),
        (png.width, png.height),
        "Png's size fields match the file"
    );
    buf.truncate(info.buffer_size());
    Decoded {
        width: info.width,
        height: info.height,
        rgb: buf,
    }
}

fn lines(n: usize, width: usize) -> String {
    (1..=n)
        .map(|i| format!("{:<width$}\n", format!("let x{i} = {i};")))
        .collect()
}

fn plain_layout(code: &str) -> Layout {
    let mode = Mode::Plain;
    layout(code, &mut Styler::new(&mode))
}

fn row_text(layout: &Layout, i: usize) -> String {
    layout.rows[i]
        .cells
        .iter()
        .map(|c| match c.content {
            Content::Char(ch) => ch,
            Content::Control => '?',
        })
        .collect()
}

/// Pixels in the rectangle that differ clearly from `bg`.
fn ink(img: &Decoded, x0: u32, y0: u32, w: u32, h: u32, bg: Rgb) -> usize {
    let mut n = 0;
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let p = img.at(x, y);
            let d =
                p.0.abs_diff(bg.0) as u32 + p.1.abs_diff(bg.1) as u32 + p.2.abs_diff(bg.2) as u32;
            if d > 60 {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn png_decodes_and_its_size_follows_line_count_and_longest_line() {
    let f = fonts().unwrap();
    let mut code = lines(12, 20);
    code.push_str(&format!("{:-<47}\n", "// the longest line, 47 columns "));
    let png = render_code(&code, Some("rust")).unwrap();
    let img = decode(&png);
    let geo = Geometry::new(f, 13, 47, 13);
    assert_eq!(
        img.width,
        PAD + 3 * f.cell_w + f.cell_w + 47 * f.cell_w + PAD,
        "gutter of 2 digits + 1, gap, 47 columns"
    );
    assert_eq!(img.height, 2 * PAD + 13 * f.cell_h);
    assert_eq!((img.width, img.height), (geo.width, geo.height));
}

#[test]
fn sixty_lines_are_exactly_fifty_rows_taller_than_ten() {
    let f = fonts().unwrap();
    let ten = render_code(&lines(10, 30), Some("py")).unwrap();
    let sixty = render_code(&lines(60, 30), Some("py")).unwrap();
    assert_eq!(sixty.height - ten.height, 50 * f.cell_h);
    assert_eq!(
        sixty.width, ten.width,
        "same longest line, same 2-digit gutter"
    );
}

#[test]
fn cjk_characters_are_two_cells_wide_and_drawn_from_a_real_glyph() {
    let f = fonts().unwrap();
    let text = "中文注释한국語かな";
    for ch in text.chars() {
        assert!(
            font::has_glyph(ch),
            "{ch} has a glyph in the embedded fonts"
        );
    }
    let code = format!("{text}\n");
    let png = render_code(&code, None).unwrap();
    let img = decode(&png);
    let geo = Geometry::new(f, 1, 2 * text.chars().count(), 1);
    assert_eq!(img.width, geo.width, "each CJK character takes two columns");
    let y = geo.row_y(0);
    for (i, ch) in text.chars().enumerate() {
        let x = geo.text_x + (2 * i as u32) * f.cell_w;
        // Inside where a replacement box would be drawn its interior stays empty; a real glyph has ink there.
        let inner = ink(
            &img,
            x + 4,
            y + 5,
            2 * f.cell_w - 8,
            f.cell_h - 10,
            PALETTE.bg,
        );
        assert!(
            inner > 20,
            "{ch} in cells {}..{} has {inner} ink pixels inside its box",
            2 * i,
            2 * i + 2
        );
    }
}

#[test]
fn an_emoji_without_a_glyph_is_a_replacement_box() {
    let f = fonts().unwrap();
    assert!(!font::has_glyph('🦀'));
    let png = render_code("🦀\n", None).unwrap();
    let img = decode(&png);
    let geo = Geometry::new(f, 1, 2, 1);
    assert_eq!(img.width, geo.width, "an emoji takes two columns");
    let (x, y) = (geo.text_x, geo.row_y(0));
    assert!(
        ink(&img, x + 2, y + 3, 2 * f.cell_w - 4, 1, PALETTE.bg) >= 2 * f.cell_w as usize - 4,
        "top edge"
    );
    assert_eq!(
        ink(
            &img,
            x + 4,
            y + 5,
            2 * f.cell_w - 8,
            f.cell_h - 10,
            PALETTE.bg
        ),
        0,
        "hollow"
    );
}

#[test]
fn a_diff_has_green_added_and_red_removed_lines() {
    let diff =
        "--- a/src/x.sql\n+++ b/src/x.sql\n@@ -1,3 +1,3 @@\n keep\n--- old sql comment\n+-- new sql comment\n keep\n";
    for lang in [Some("diff"), Some("patch"), None] {
        let png = render_code(diff, lang).unwrap();
        let img = decode(&png);
        let geo = Geometry::new(fonts().unwrap(), 7, 20, 7);
        let sample = |row: usize| img.at(img.width - 3, geo.row_y(row) + 2);
        let removed = sample(4);
        let added = sample(5);
        assert!(
            removed.0 > removed.1 + 20 && removed.0 > removed.2 + 20,
            "row 5 red-ish, got {removed:?} ({lang:?})"
        );
        assert!(
            added.1 > added.0 + 20 && added.1 > added.2 + 10,
            "row 6 green-ish, got {added:?} ({lang:?})"
        );
        assert_eq!(sample(3), PALETTE.bg, "a context line keeps the background");
        assert_eq!(
            sample(0),
            PALETTE.bg,
            "the --- file header is not a removed line"
        );
    }
}

#[test]
fn unified_diffs_are_recognised_and_other_text_is_not() {
    assert!(looks_like_diff("diff --git a/x b/x\nindex 1..2\n"));
    assert!(looks_like_diff("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"));
    assert!(!looks_like_diff("- item one\n- item two\n+ plus\n"));
    assert!(!looks_like_diff(
        "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
    ));
}

#[test]
fn a_stack_trace_without_a_language_is_plain_and_known_languages_are_highlighted() {
    let trace = "thread 'main' panicked at src/main.rs:2:5:\nboom\nstack backtrace:\n   0: rust_begin_unwind\n";
    assert!(matches!(choose_mode(trace, None), Mode::Plain));
    assert!(matches!(choose_mode("x", Some("text")), Mode::Plain));
    assert!(matches!(
        choose_mode("x", Some("no-such-language")),
        Mode::Plain
    ));
    for lang in [
        "rust",
        "rs",
        "py",
        "Python",
        "ts",
        "tsx",
        "go",
        "toml",
        "yaml",
        "sh",
        "json",
        "js title=\"a.js\"",
    ] {
        assert!(
            matches!(choose_mode("x", Some(lang)), Mode::Syntax(..)),
            "{lang} has a syntax"
        );
    }
    let mode = choose_mode("", Some("rust"));
    let laid = layout(
        "fn main() {\n    let s = \"hi\"; // say hi\n}\n",
        &mut Styler::new(&mode),
    );
    let mut colours: Vec<Rgb> = laid
        .rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.fg))
        .collect();
    colours.sort_by_key(|c| (c.0, c.1, c.2));
    colours.dedup();
    assert!(
        colours.len() >= 4,
        "keyword, string, comment and plain text differ: {colours:?}"
    );
}

#[test]
fn lines_beyond_the_cap_end_in_a_more_lines_row() {
    let f = fonts().unwrap();
    let laid = plain_layout(&lines(MAX_ROWS + 50, 10));
    assert_eq!(laid.rows.len(), MAX_ROWS + 1);
    assert_eq!(row_text(&laid, MAX_ROWS), "… 50 more lines");
    assert_eq!(laid.rows[MAX_ROWS].kind, RowKind::Notice);
    assert_eq!(laid.last_number, MAX_ROWS);
    let png = render_code(&lines(MAX_ROWS + 50, 10), None).unwrap();
    assert_eq!(png.height, 2 * PAD + (MAX_ROWS as u32 + 1) * f.cell_h);
    let exact = plain_layout(&lines(MAX_ROWS, 10));
    assert_eq!(exact.rows.len(), MAX_ROWS, "exactly the cap: no notice");
    assert_eq!(
        row_text(&plain_layout(&lines(MAX_ROWS + 1, 10)), MAX_ROWS),
        "… 1 more line"
    );
}

#[test]
fn long_lines_wrap_onto_marked_continuation_rows() {
    let long = "x".repeat(2 * MAX_COLS + 10);
    let laid = plain_layout(&format!("short\n{long}\nend\n"));
    assert_eq!(laid.rows.len(), 5);
    assert_eq!(laid.cols, MAX_COLS, "width is capped");
    assert_eq!(
        (laid.rows[1].number, laid.rows[1].continuation),
        (Some(2), false)
    );
    assert_eq!(
        (laid.rows[2].number, laid.rows[2].continuation),
        (None, true)
    );
    assert_eq!(laid.rows[3].cols, 10, "nothing is cut");
    assert_eq!(laid.rows[4].number, Some(3));
    // A wide character that does not fit in the last column goes to the next row whole.
    let laid = plain_layout(&format!("{}中\n", "a".repeat(MAX_COLS - 1)));
    assert_eq!((laid.rows[0].cols, laid.rows[1].cols), (MAX_COLS - 1, 2));
    // A line too long for a whole image counts as not shown.
    let laid = plain_layout(&format!(
        "{}\nnext\n",
        "y".repeat(MAX_COLS * (MAX_ROWS + 3))
    ));
    assert_eq!(laid.rows.len(), MAX_ROWS + 1);
    assert_eq!(row_text(&laid, MAX_ROWS), "… 2 more lines");
}

#[test]
fn tabs_expand_to_four_column_stops() {
    assert_eq!(plain_layout("\tx").cols, 5);
    assert_eq!(plain_layout("ab\tc").cols, 5);
    assert_eq!(plain_layout("abcd\te").cols, 9);
    assert_eq!(plain_layout("中\tx").cols, 5);
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let code = format!("{}// 注释 🦀 \u{1}\n", lines(40, 50));
    let a = render_code(&code, Some("rust")).unwrap();
    let b = render_code(&code, Some("rust")).unwrap();
    assert_eq!(a.bytes, b.bytes);
}

#[test]
fn blank_input_is_the_empty_error() {
    for code in ["", "\n", "  \n\t\n", "\r\n"] {
        assert!(
            matches!(render_code(code, Some("rust")), Err(RenderError::Empty)),
            "{code:?}"
        );
    }
    assert_eq!(
        RenderError::Empty.to_string(),
        "there is nothing to render: the code block is empty or only whitespace"
    );
}

#[test]
fn hostile_input_renders_without_panicking() {
    let huge_line = "é".repeat(200_000);
    let many_lines = "x\n".repeat(20_000);
    let inputs: Vec<String> = vec![
        "\u{0}\u{1}\u{7f}\u{1b}[31mred\u{1b}[0m\r\n\u{8}\u{c}".into(),
        "\u{fffd}\u{fffd} invalid bytes were here\n".into(),
        "🦀👨‍👩‍👧 e\u{301} \u{200b}\u{feff} \u{202e}rtl\n".into(),
        "lone\rcarriage return\n".into(),
        huge_line,
        many_lines,
        "\u{10ffff}\u{e000}\u{f8ff}".into(),
        "a\tb\t\t\tc\n\t\n".into(),
    ];
    for (i, code) in inputs.iter().enumerate() {
        // The two big ones make 1.3k x 7k images, slow in a debug build: one language each.
        let langs: &[Option<&str>] = match i {
            4 => &[None],
            5 => &[Some("rust")],
            _ => &[None, Some("rust"), Some("diff"), Some("js"), Some("")],
        };
        for &lang in langs {
            let png =
                render_code(code, lang).unwrap_or_else(|e| panic!("input {i}, {lang:?}: {e}"));
            let img = decode(&png);
            assert!(img.width > 0 && img.height > 0);
        }
    }
}

#[test]
fn the_png_is_indexed_up_to_256_colours_and_rgb_beyond() {
    let png = render_code(&lines(30, 40), Some("rust")).unwrap();
    let reader = png::Decoder::new(Cursor::new(png.bytes.clone()))
        .read_info()
        .unwrap();
    assert_eq!(
        reader.info().color_type,
        png::ColorType::Indexed,
        "highlighted code fits a palette"
    );
    let few: Vec<u8> = (0..256u32).flat_map(|i| [i as u8, 7, 9]).collect();
    let (palette, indices) = indexed(&few).expect("256 colours fit");
    assert_eq!((palette.len(), indices[255]), (768, 255));
    let many: Vec<u8> = (0..257u32)
        .flat_map(|i| [(i % 256) as u8, (i / 256) as u8, 0])
        .collect();
    assert!(indexed(&many).is_none(), "257 colours do not");
}
