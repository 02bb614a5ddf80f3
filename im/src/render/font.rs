//! The embedded fonts (Hack for code, Droid Sans Fallback for CJK), the cell metrics and glyph rasterisation.
use std::collections::HashMap;
use std::sync::LazyLock;

use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};

/// Hack Regular, the monospace font every cell is sized on (shipped inside the `epaint_default_fonts` crate).
const MONO: &[u8] = epaint_default_fonts::HACK_REGULAR;
/// Droid Sans Fallback (Apache-2.0, from Debian's fonts-droid-fallback): CJK ideographs, kana and Hangul.
const CJK: &[u8] = include_bytes!("../../assets/fonts/DroidSansFallback.ttf");

/// Text size: pixels from ascender to descender (ab_glyph's `PxScale`; Hack's em is about 17 px then). The cell
/// size follows from it and Hack's metrics: 10 x 24 px.
const PX: f32 = 20.0;
/// Extra pixels between two rows of text.
const LINE_SPACING: u32 = 4;

pub(crate) struct Fonts {
    mono: FontRef<'static>,
    cjk: FontRef<'static>,
    /// Width of one column in pixels (a wide character takes two).
    pub cell_w: u32,
    /// Height of one row in pixels.
    pub cell_h: u32,
    /// Distance from the top of a row to the baseline, in pixels.
    pub baseline: u32,
}

static FONTS: LazyLock<Result<Fonts, String>> = LazyLock::new(load);

fn load() -> Result<Fonts, String> {
    let mono = FontRef::try_from_slice(MONO).map_err(|e| format!("Hack Regular: {e}"))?;
    let cjk = FontRef::try_from_slice(CJK).map_err(|e| format!("Droid Sans Fallback: {e}"))?;
    let scaled = mono.as_scaled(PxScale::from(PX));
    let advance = scaled.h_advance(mono.glyph_id('0'));
    let text_h = scaled.ascent() - scaled.descent();
    if !(advance.is_finite() && advance >= 1.0 && text_h.is_finite() && text_h >= 1.0) {
        return Err("Hack Regular has unusable metrics".to_string());
    }
    let cell_w = advance.round() as u32;
    let cell_h = text_h.ceil() as u32 + LINE_SPACING;
    let baseline = (LINE_SPACING as f32 / 2.0 + scaled.ascent()).round() as u32;
    Ok(Fonts {
        mono,
        cjk,
        cell_w,
        cell_h,
        baseline,
    })
}

/// The fonts, loaded (and checked) once per process.
pub(crate) fn fonts() -> Result<&'static Fonts, String> {
    FONTS.as_ref().map_err(Clone::clone)
}

/// Coverage of one glyph, placed relative to the top-left corner of its first cell.
pub(crate) struct GlyphBitmap {
    pub left: i32,
    pub top: i32,
    pub width: u32,
    pub height: u32,
    /// Row-major coverage, 0 (none) to 255 (full), in 16 steps of 17.
    pub coverage: Vec<u8>,
}

/// What a character is drawn as.
pub(crate) enum Drawn<'a> {
    /// Nothing to draw (a space, or a glyph without an outline).
    Blank,
    Glyph(&'a GlyphBitmap),
    /// Neither font has the character: a replacement box.
    Missing,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    Mono,
    Cjk,
}

/// Rasterised glyphs of one render (glyphs are placed on whole pixels, so one bitmap serves every cell).
pub(crate) struct GlyphCache<'f> {
    fonts: &'f Fonts,
    glyphs: HashMap<(Which, GlyphId, u8), Option<GlyphBitmap>>,
}

impl<'f> GlyphCache<'f> {
    pub fn new(fonts: &'f Fonts) -> Self {
        GlyphCache {
            fonts,
            glyphs: HashMap::new(),
        }
    }

    /// The bitmap of `ch`, centred in `cells` columns.
    pub fn get(&mut self, ch: char, cells: u8) -> Drawn<'_> {
        if ch == ' ' {
            return Drawn::Blank;
        }
        let (which, id) = match self.fonts.mono.glyph_id(ch) {
            GlyphId(0) => match self.fonts.cjk.glyph_id(ch) {
                GlyphId(0) => return Drawn::Missing,
                id => (Which::Cjk, id),
            },
            id => (Which::Mono, id),
        };
        let fonts = self.fonts;
        let entry = self
            .glyphs
            .entry((which, id, cells))
            .or_insert_with(|| match which {
                Which::Mono => rasterise(&fonts.mono, id, cells, fonts),
                Which::Cjk => rasterise(&fonts.cjk, id, cells, fonts),
            });
        match entry {
            Some(bitmap) => Drawn::Glyph(bitmap),
            None => Drawn::Blank,
        }
    }
}

fn rasterise(font: &FontRef<'static>, id: GlyphId, cells: u8, m: &Fonts) -> Option<GlyphBitmap> {
    let scale = PxScale::from(PX);
    let advance = font.as_scaled(scale).h_advance(id);
    let room = (m.cell_w * u32::from(cells)) as f32;
    // Centre a glyph narrower or wider than its cells (CJK glyphs are one em wide, two cells are a bit more).
    let x = ((room - advance) / 2.0).round();
    let glyph = id.with_scale_and_position(scale, point(x, m.baseline as f32));
    let outlined = font.outline_glyph(glyph)?;
    let bounds = outlined.px_bounds();
    let width = bounds.width().max(0.0) as u32;
    let height = bounds.height().max(0.0) as u32;
    if width == 0 || height == 0 || width > 4 * room as u32 + 64 || height > 4 * m.cell_h + 64 {
        return None;
    }
    let mut coverage = vec![0u8; (width * height) as usize];
    outlined.draw(|gx, gy, c| {
        if gx < width && gy < height {
            // 16 coverage levels keep the colour count low enough for an indexed PNG.
            coverage[(gy * width + gx) as usize] = (c.clamp(0.0, 1.0) * 15.0).round() as u8 * 17;
        }
    });
    Some(GlyphBitmap {
        left: bounds.min.x as i32,
        top: bounds.min.y as i32,
        width,
        height,
        coverage,
    })
}

#[cfg(test)]
pub(crate) fn has_glyph(ch: char) -> bool {
    let f = fonts().expect("fonts load");
    f.mono.glyph_id(ch) != GlyphId(0) || f.cjk.glyph_id(ch) != GlyphId(0)
}
