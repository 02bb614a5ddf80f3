//! Code blocks, diffs and stack traces rendered to syntax-highlighted PNG images for chat.
//!
//! A chat on a phone shows a long code block, a diff or a stack trace better as a picture: [`render_code`] draws
//! it on a dark background with line numbers in a gutter, one fixed-size cell per column (two for CJK and other
//! wide characters), lines longer than 120 columns wrapped onto rows marked `↪` in the gutter, and at
//! most 300 rows followed by a "… N more lines" row. Everything is pure Rust (syntect with
//! fancy-regex, ab_glyph, png) and the fonts are compiled in; design notes: docs/engineering/im-render.md.
mod font;
mod highlight;
mod layout;
mod raster;
#[cfg(test)]
mod tests;

/// An encoded PNG image and its size in pixels.
#[derive(Clone, PartialEq, Eq)]
pub struct Png {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Png {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Png({}x{}, {} bytes)",
            self.width,
            self.height,
            self.bytes.len()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The caller should send nothing (or a text message) instead of an empty picture.
    #[error("there is nothing to render: the code block is empty or only whitespace")]
    Empty,
    #[error("an embedded font could not be loaded: {0}")]
    Font(String),
    #[error("the PNG encoder failed: {0}")]
    Encode(#[from] png::EncodingError),
}

/// `lang` is the fence's info string (e.g. "rust", "py", "diff", None). A diff (lang "diff"/"patch" or text that
/// looks like a unified diff) gets green/red line backgrounds for +/- lines; a stack trace renders as plain text.
///
/// Text with no language, or a language no syntax knows, is plain. Blank input (empty or whitespace only) is
/// [`RenderError::Empty`]. The same input always gives the same bytes.
pub fn render_code(code: &str, lang: Option<&str>) -> Result<Png, RenderError> {
    if code.trim().is_empty() {
        return Err(RenderError::Empty);
    }
    let fonts = font::fonts().map_err(RenderError::Font)?;
    let mode = highlight::choose_mode(code, lang);
    let mut styler = highlight::Styler::new(&mode);
    let layout = layout::layout(code, &mut styler);
    let geometry = raster::Geometry::new(fonts, layout.rows.len(), layout.cols, layout.last_number);
    let canvas = raster::paint(fonts, &layout, &geometry);
    let bytes = raster::encode(&canvas)?;
    Ok(Png {
        bytes,
        width: geometry.width,
        height: geometry.height,
    })
}
