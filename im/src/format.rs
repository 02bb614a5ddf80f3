//! From the agent's Markdown to chat blocks: fenced code blocks apart from prose, long code and diffs marked for
//! rendering as images, and prose split into pieces that fit a platform's message limit.
use crate::platform::Block;

/// Splits Markdown into prose and fenced code blocks (```lang … ```). An unclosed fence runs to the end.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut lines = markdown.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let lang = info
                .split_whitespace()
                .next()
                .map(str::to_string)
                .filter(|s| !s.is_empty());
            let mut code = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") && l.trim().trim_start_matches('`').is_empty()
                {
                    break;
                }
                // Remove the fence's own indentation from each line (lists indent their code blocks).
                let strip = l.len() - l.trim_start_matches(' ').len();
                code.push_str(&l[strip.min(indent)..]);
            }
            flush_prose(&mut prose, &mut out);
            let code = code.strip_suffix('\n').unwrap_or(&code).to_string();
            out.push(Block::Code { lang, code });
        } else {
            prose.push_str(line);
        }
    }
    flush_prose(&mut prose, &mut out);
    out
}

fn flush_prose(prose: &mut String, out: &mut Vec<Block>) {
    let t = prose.trim_matches('\n');
    if !t.trim().is_empty() {
        out.push(Block::Text(t.to_string()));
    }
    prose.clear();
}

/// Whether a code block goes out as an image: longer than `inline_max_lines`, a diff, or a stack trace.
pub fn wants_image(lang: Option<&str>, code: &str, inline_max_lines: usize) -> bool {
    let lines = code.lines().count();
    if lines > inline_max_lines {
        return true;
    }
    let is_diff = matches!(lang, Some("diff" | "patch")) || looks_like_diff(code);
    (is_diff || looks_like_trace(code)) && lines > 3
}

pub fn looks_like_diff(code: &str) -> bool {
    let mut lines = code.lines();
    let first = lines.next().unwrap_or_default();
    (first.starts_with("--- ") || first.starts_with("diff --git") || first.starts_with("Index: "))
        && code.lines().any(|l| l.starts_with("@@"))
}

pub fn looks_like_trace(code: &str) -> bool {
    code.contains("Traceback (most recent call last)")
        || code
            .lines()
            .filter(|l| l.trim_start().starts_with("at ") && l.contains('('))
            .count()
            >= 3
        || code.contains("panicked at ")
}

/// Splits prose into pieces of at most `max` characters, at paragraph breaks, then line breaks, then spaces,
/// and only as a last resort inside a word.
pub fn split_prose(text: &str, max: usize) -> Vec<String> {
    let max = max.max(16);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let cut = byte_at_char(rest, max);
        let window = &rest[..cut];
        let at = ["\n\n", "\n", " "]
            .iter()
            .find_map(|sep| {
                window
                    .rfind(sep)
                    .filter(|&i| i > cut / 3)
                    .map(|i| i + sep.len())
            })
            .unwrap_or(cut);
        out.push(rest[..at].trim_end().to_string());
        rest = rest[at..].trim_start_matches('\n');
    }
    if !rest.trim().is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Splits a code block's lines into pieces of at most `max` characters without cutting a line (a single longer
/// line is cut), so each piece can be its own closed code block.
pub fn split_code(code: &str, max: usize) -> Vec<String> {
    let max = max.max(16);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in code.split_inclusive('\n') {
        if cur.chars().count() + line.chars().count() > max && !cur.is_empty() {
            out.push(std::mem::take(&mut cur).trim_end_matches('\n').to_string());
        }
        if line.chars().count() > max {
            for piece in split_prose(line, max) {
                out.push(piece);
            }
            continue;
        }
        cur.push_str(line);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur.trim_end_matches('\n').to_string());
    }
    out
}

fn byte_at_char(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map(|(i, _)| i).unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_and_fenced_code_come_apart() {
        let md = "Here is the fix:\n\n```rust\nfn main() {}\n```\n\nDone.";
        assert_eq!(
            blocks(md),
            vec![
                Block::Text("Here is the fix:".into()),
                Block::Code {
                    lang: Some("rust".into()),
                    code: "fn main() {}".into()
                },
                Block::Text("Done.".into()),
            ]
        );
    }

    #[test]
    fn an_unclosed_fence_runs_to_the_end() {
        assert_eq!(
            blocks("a\n```\nx\ny"),
            vec![
                Block::Text("a".into()),
                Block::Code {
                    lang: None,
                    code: "x\ny".into()
                }
            ]
        );
    }

    #[test]
    fn ten_lines_stay_inline_eleven_become_an_image_and_diffs_always() {
        let ten = "x\n".repeat(10);
        let eleven = "x\n".repeat(11);
        assert!(!wants_image(Some("rust"), &ten, 10));
        assert!(wants_image(Some("rust"), &eleven, 10));
        let diff = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b";
        assert!(wants_image(None, diff, 10));
        assert!(
            wants_image(Some("rust"), "x", 0),
            "DingTalk: every block is an image"
        );
    }

    #[test]
    fn prose_splits_at_paragraphs_and_never_exceeds_the_limit() {
        let text = format!("{}\n\n{}", "a".repeat(3000), "b ".repeat(1000));
        let parts = split_prose(&text, 4096);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.chars().count() <= 4096));
        assert_eq!(parts[0], "a".repeat(3000));
        let word = "c".repeat(10_000);
        assert!(split_prose(&word, 4096)
            .iter()
            .all(|p| p.chars().count() <= 4096));
    }

    #[test]
    fn code_splits_between_lines() {
        let code = (0..100)
            .map(|i| format!("line {i:03}"))
            .collect::<Vec<_>>()
            .join("\n");
        let parts = split_code(&code, 100);
        assert!(parts.iter().all(|p| p.chars().count() <= 100));
        assert_eq!(parts.join("\n"), code);
    }
}
