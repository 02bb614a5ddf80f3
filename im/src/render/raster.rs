//! Painting the laid-out rows (gutter, backgrounds, glyphs, replacement boxes) into pixels and encoding the PNG.
use std::collections::HashMap;

use super::font::{Drawn, Fonts, GlyphBitmap, GlyphCache};
use super::highlight::{Rgb, RowKind, PALETTE};
use super::layout::{Content, Layout};

/// Margin around the whole image, in pixels.
pub(crate) const PAD: u32 = 10;

/// Where everything goes, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub cell_w: u32,
    pub cell_h: u32,
    /// Digits reserved for line numbers (at least 2).
    pub digits: u32,
    /// The gutter's right edge.
    pub gutter_w: u32,
    /// Left edge of the text's first column.
    pub text_x: u32,
    pub width: u32,
    pub height: u32,
}

impl Geometry {
    /// `rows` rows of at most `cols` columns, numbered up to `last_number`.
    pub fn new(fonts: &Fonts, rows: usize, cols: usize, last_number: usize) -> Geometry {
        let (cell_w, cell_h) = (fonts.cell_w, fonts.cell_h);
        let digits = last_number.max(1).ilog10() + 1;
        let digits = digits.max(2);
        // The gutter holds the numbers and one blank column; one more blank column separates it from the text.
        let gutter_w = PAD + (digits + 1) * cell_w;
        let text_x = gutter_w + cell_w;
        let width = text_x + cols as u32 * cell_w + PAD;
        let height = 2 * PAD + rows as u32 * cell_h;
        Geometry {
            cell_w,
            cell_h,
            digits,
            gutter_w,
            text_x,
            width,
            height,
        }
    }

    /// Top of row `i`.
    pub fn row_y(&self, i: usize) -> u32 {
        PAD + i as u32 * self.cell_h
    }
}

/// An RGB image being painted.
pub(crate) struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32, bg: Rgb) -> Canvas {
        let pixels = [bg.0, bg.1, bg.2].repeat(width as usize * height as usize);
        Canvas {
            width,
            height,
            pixels,
        }
    }

    fn fill(&mut self, x0: u32, y0: u32, w: u32, h: u32, c: Rgb) {
        let x1 = (x0 + w).min(self.width);
        let y1 = (y0 + h).min(self.height);
        for y in y0..y1 {
            let row = y as usize * self.width as usize;
            for x in x0..x1 {
                let i = (row + x as usize) * 3;
                self.pixels[i..i + 3].copy_from_slice(&[c.0, c.1, c.2]);
            }
        }
    }

    fn blit(&mut self, x0: i64, y0: i64, glyph: &GlyphBitmap, fg: Rgb) {
        for gy in 0..glyph.height as i64 {
            let y = y0 + gy;
            if y < 0 || y >= self.height as i64 {
                continue;
            }
            let src =
                &glyph.coverage[(gy as usize) * glyph.width as usize..][..glyph.width as usize];
            for (gx, &a) in src.iter().enumerate() {
                let x = x0 + gx as i64;
                if a == 0 || x < 0 || x >= self.width as i64 {
                    continue;
                }
                let i = (y as usize * self.width as usize + x as usize) * 3;
                let a = u32::from(a);
                for (k, f) in [fg.0, fg.1, fg.2].into_iter().enumerate() {
                    let b = u32::from(self.pixels[i + k]);
                    self.pixels[i + k] = ((u32::from(f) * a + b * (255 - a) + 127) / 255) as u8;
                }
            }
        }
    }

    /// A hollow rectangle: the replacement box for a character no font has.
    fn outline(&mut self, x0: u32, y0: u32, w: u32, h: u32, c: Rgb) {
        if w < 2 || h < 2 {
            return;
        }
        self.fill(x0, y0, w, 1, c);
        self.fill(x0, y0 + h - 1, w, 1, c);
        self.fill(x0, y0, 1, h, c);
        self.fill(x0 + w - 1, y0, 1, h, c);
    }
}

/// Paints the layout.
pub(crate) fn paint(fonts: &Fonts, layout: &Layout, geo: &Geometry) -> Canvas {
    let mut canvas = Canvas::new(geo.width, geo.height, PALETTE.bg);
    canvas.fill(0, 0, geo.gutter_w, geo.height, PALETTE.gutter_bg);
    let mut glyphs = GlyphCache::new(fonts);
    for (i, row) in layout.rows.iter().enumerate() {
        let y = geo.row_y(i);
        match row.kind {
            RowKind::Added => canvas.fill(0, y, geo.width, geo.cell_h, PALETTE.added_bg),
            RowKind::Removed => canvas.fill(0, y, geo.width, geo.cell_h, PALETTE.removed_bg),
            RowKind::Normal | RowKind::Notice => {}
        }
        // The gutter: the line number right-aligned, or a continuation mark under its last digit.
        let label = match (row.number, row.continuation) {
            (Some(n), _) => n.to_string(),
            (None, true) => "↪".to_string(),
            (None, false) => String::new(),
        };
        let label_cols = label.chars().count() as u32;
        let mut x = PAD + geo.digits.saturating_sub(label_cols) * geo.cell_w;
        for ch in label.chars() {
            draw_char(
                &mut canvas,
                &mut glyphs,
                geo,
                x,
                y,
                Content::Char(ch),
                1,
                PALETTE.gutter_fg,
            );
            x += geo.cell_w;
        }
        let mut x = geo.text_x;
        for cell in &row.cells {
            draw_char(
                &mut canvas,
                &mut glyphs,
                geo,
                x,
                y,
                cell.content,
                cell.width,
                cell.fg,
            );
            x += u32::from(cell.width) * geo.cell_w;
        }
    }
    canvas
}

#[allow(clippy::too_many_arguments)]
fn draw_char(
    canvas: &mut Canvas,
    glyphs: &mut GlyphCache<'_>,
    geo: &Geometry,
    x: u32,
    y: u32,
    content: Content,
    cells: u8,
    fg: Rgb,
) {
    let drawn = match content {
        Content::Char(ch) => glyphs.get(ch, cells),
        Content::Control => Drawn::Missing,
    };
    match drawn {
        Drawn::Blank => {}
        Drawn::Glyph(bitmap) => canvas.blit(
            i64::from(x) + i64::from(bitmap.left),
            i64::from(y) + i64::from(bitmap.top),
            bitmap,
            fg,
        ),
        Drawn::Missing => {
            let w = u32::from(cells) * geo.cell_w;
            canvas.outline(
                x + 2,
                y + 3,
                w.saturating_sub(4),
                geo.cell_h.saturating_sub(6),
                fg,
            );
        }
    }
}

/// Encodes the canvas as a PNG with the `png` crate's fast compression: indexed colour when the image has at most
/// 256 colours (the usual case: a few backgrounds and theme colours times 16 coverage levels), 8-bit RGB otherwise.
pub(crate) fn encode(canvas: &Canvas) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::with_capacity(canvas.pixels.len() / 16);
    let mut encoder = png::Encoder::new(&mut out, canvas.width, canvas.height);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    match indexed(&canvas.pixels) {
        Some((palette, indices)) => {
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_palette(palette);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&indices)?;
            writer.finish()?;
        }
        None => {
            encoder.set_color(png::ColorType::Rgb);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&canvas.pixels)?;
            writer.finish()?;
        }
    }
    Ok(out)
}

/// The palette (in order of first appearance, so deterministic) and one index per pixel; `None` past 256 colours.
pub(crate) fn indexed(pixels: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    const EMPTY: u32 = u32::MAX;
    let mut palette: Vec<u8> = Vec::new();
    let mut seen: HashMap<u32, u8> = HashMap::new();
    // A direct-mapped cache in front of the map: colour (0x00RRGGBB, so never EMPTY) and its index.
    let mut cache = vec![(EMPTY, 0u8); 4096];
    let mut indices = Vec::with_capacity(pixels.len() / 3);
    let (mut last, mut last_index) = (EMPTY, 0u8);
    for px in pixels.chunks_exact(3) {
        let rgb = u32::from(px[0]) << 16 | u32::from(px[1]) << 8 | u32::from(px[2]);
        if rgb != last {
            let slot = (rgb.wrapping_mul(0x9e37_79b1) >> 20) as usize;
            last_index = if cache[slot].0 == rgb {
                cache[slot].1
            } else {
                let index = match seen.get(&rgb) {
                    Some(&index) => index,
                    None => {
                        let index = u8::try_from(seen.len()).ok()?;
                        seen.insert(rgb, index);
                        palette.extend_from_slice(&px[..3]);
                        index
                    }
                };
                cache[slot] = (rgb, index);
                index
            };
            last = rgb;
        }
        indices.push(last_index);
    }
    Some((palette, indices))
}
