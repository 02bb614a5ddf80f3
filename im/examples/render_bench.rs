//! Times `render_code` on a 200-line Rust file: one warm-up, then 20 runs; prints p50/p95 in ms as one JSON line.
use std::time::Instant;

/// `--samples DIR` also writes a few images there to look at (a Rust file, a diff, CJK text, a wrapped line).
fn main() {
    let code = sample(200);
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--samples")
        .and_then(|i| args.get(i + 1))
    {
        let diff = "diff --git a/src/x.rs b/src/x.rs\n--- a/src/x.rs\n+++ b/src/x.rs\n@@ -1,4 +1,4 @@\n fn main() {\n-    println!(\"旧的\");\n+    println!(\"新的 🦀\");\n \t// tab\n }\n";
        let wide = format!(
            "{}\n中文注释：这一行很长，{}\n\u{1}\u{fffd}\n",
            "x".repeat(130),
            "很长".repeat(40)
        );
        for (name, text, lang) in [
            ("rust", code.as_str(), Some("rust")),
            ("diff", diff, None),
            ("wide", wide.as_str(), Some("text")),
        ] {
            let png = cloudcode_im::render::render_code(text, lang).expect("renders");
            std::fs::write(format!("{dir}/{name}.png"), &png.bytes).expect("writes");
        }
    }
    let warm = cloudcode_im::render::render_code(&code, Some("rust")).expect("renders");
    let mut ms = Vec::with_capacity(20);
    for _ in 0..20 {
        let start = Instant::now();
        let png = cloudcode_im::render::render_code(&code, Some("rust")).expect("renders");
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(png.bytes, warm.bytes, "deterministic");
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{{\"lines\":200,\"runs\":20,\"p50_ms\":{:.1},\"p95_ms\":{:.1},\"width\":{},\"height\":{},\"png_bytes\":{}}}",
        pick(0.50),
        pick(0.95),
        warm.width,
        warm.height,
        warm.bytes.len()
    );
}

/// A Rust file of `n` lines: structs, impls, comments (some Chinese), strings and numbers.
fn sample(n: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.lines().count() < n {
        i += 1;
        out.push_str(&format!(
            "/// A record kept by the store number {i}. 记录第 {i} 号\n\
             #[derive(Debug, Clone, PartialEq)]\n\
             pub struct Record{i} {{\n    pub id: u64,\n    pub name: String,\n    pub tags: Vec<&'static str>,\n}}\n\n\
             impl Record{i} {{\n    pub fn new(id: u64, name: &str) -> Self {{\n        \
             // 名字不能为空: fall back to a default\n        \
             let name = if name.is_empty() {{ \"unnamed\".to_string() }} else {{ name.to_string() }};\n        \
             Self {{ id: id * {i} + 0x2a, name, tags: vec![\"a\", \"b\"] }}\n    }}\n}}\n\n"
        ));
    }
    out.lines().take(n).map(|l| format!("{l}\n")).collect()
}
