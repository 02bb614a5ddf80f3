//! The registry pages (`docs/index.md`, `docs/resources/`, `docs/data-sources/`, `docs/functions/`) against the
//! schema the provider really serves: everything is documented, nothing documented is missing from the schema;
//! and every example (in `examples/` for the provider's own objects and in the pages) is formatted and valid.
//!
//! Page convention: each attribute is a bullet starting with `` - `name` ``; attributes of a nested object or
//! block are bullets under a heading `### Nested Schema for `name``; function parameters are `` 1. `name` ``.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cloudcode_tests::provider_bin;
use cloudcode_tests::terraform::{Workdir, SOURCE};
use serde_json::Value as Json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn provider_schema() -> Json {
    let wd = Workdir::new(provider_bin!(), "").unwrap();
    wd.init().unwrap();
    let mut all = wd.schema().unwrap();
    all["provider_schemas"][wd.engine().provider_addr(SOURCE)].take()
}

/// Attribute paths of a schema block: `a`, and `a.b` for nested attributes and nested blocks.
fn schema_paths(block: &Json) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, a) in block["attributes"].as_object().into_iter().flatten() {
        out.insert(name.clone());
        for (n, _) in a["nested_type"]["attributes"]
            .as_object()
            .into_iter()
            .flatten()
        {
            out.insert(format!("{name}.{n}"));
        }
    }
    for (name, b) in block["block_types"].as_object().into_iter().flatten() {
        out.insert(name.clone());
        for p in schema_paths(&b["block"]) {
            out.insert(format!("{name}.{p}"));
        }
    }
    out
}

/// Attribute paths a page documents.
fn page_paths(page: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut prefix = String::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("### Nested Schema for `") {
            prefix = format!("{}.", rest.trim_end_matches('`'));
        } else if line.starts_with("## ") {
            prefix.clear();
        } else if let Some(rest) = line.strip_prefix("- `") {
            if let Some(name) = rest.split('`').next() {
                out.insert(format!("{prefix}{name}"));
            }
        }
    }
    out
}

fn compare(
    what: &str,
    schema: BTreeSet<String>,
    page: BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    for missing in schema.difference(&page) {
        problems.push(format!("{what}: `{missing}` is not documented"));
    }
    for extra in page.difference(&schema) {
        problems.push(format!(
            "{what}: documents `{extra}`, which the schema does not have"
        ));
    }
}

fn pages_in(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(repo().join(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".md")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(repo().join(path)).ok()
}

#[test]
fn registry_pages_document_exactly_the_served_schema() {
    let schema = provider_schema();
    let mut problems = Vec::new();

    match read("docs/index.md") {
        Some(page) => compare(
            "docs/index.md",
            schema_paths(&schema["provider"]["block"]),
            page_paths(&page),
            &mut problems,
        ),
        None => problems.push("docs/index.md is missing".into()),
    }

    for (kind, dir) in [
        ("resource_schemas", "docs/resources"),
        ("data_source_schemas", "docs/data-sources"),
    ] {
        let served: BTreeSet<String> = schema[kind]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name.trim_start_matches("cloudcode_").to_string())
            .collect();
        for extra in pages_in(dir).difference(&served) {
            problems.push(format!(
                "{dir}/{extra}.md documents something the provider does not serve"
            ));
        }
        for name in &served {
            let path = format!("{dir}/{name}.md");
            match read(&path) {
                Some(page) => compare(
                    &path,
                    schema_paths(&schema[kind][format!("cloudcode_{name}")]["block"]),
                    page_paths(&page),
                    &mut problems,
                ),
                None => problems.push(format!("{path} is missing")),
            }
        }
    }

    let functions = schema["functions"].as_object().cloned().unwrap_or_default();
    let served: BTreeSet<String> = functions.keys().cloned().collect();
    for extra in pages_in("docs/functions").difference(&served) {
        problems.push(format!(
            "docs/functions/{extra}.md documents a function the provider does not serve"
        ));
    }
    for (name, f) in &functions {
        let path = format!("docs/functions/{name}.md");
        let Some(page) = read(&path) else {
            problems.push(format!("{path} is missing"));
            continue;
        };
        let params: BTreeSet<String> = f["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(f.get("variadic_parameter"))
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        let documented: BTreeSet<String> = page
            .lines()
            .filter_map(|l| {
                let (num, rest) = l.split_once(". `")?;
                num.trim().parse::<u32>().ok()?;
                rest.split('`').next().map(str::to_string)
            })
            .collect();
        compare(&path, params, documented, &mut problems);
    }

    assert!(
        problems.is_empty(),
        "registry pages and schema disagree:\n{}",
        problems.join("\n")
    );
}

/// The example directories of the provider's own objects (the module examples are checked with the module).
fn example_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![repo().join("examples/provider")];
    for group in [
        "examples/resources",
        "examples/data-sources",
        "examples/functions",
    ] {
        if let Ok(rd) = std::fs::read_dir(repo().join(group)) {
            dirs.extend(
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir()),
            );
        }
    }
    dirs.sort();
    dirs
}

/// Validates one configuration: it gets our `required_providers` unless it declares its own.
fn validate_config(name: &str, hcl: &str, problems: &mut Vec<String>) {
    let wd = Workdir::new(provider_bin!(), "").unwrap();
    if hcl.contains("required_providers") {
        wd.write("main.tf", hcl).unwrap();
    } else {
        wd.write("example.tf", hcl).unwrap();
    }
    let fmt = wd.tf(&["fmt", "-check", "-diff", "-no-color"]).unwrap();
    if !fmt.success {
        problems.push(format!("{name}: not formatted:\n{}", fmt.stdout));
    }
    if let Err(e) = wd.init() {
        problems.push(format!("{name}: init failed: {e}"));
        return;
    }
    let v = wd.validate().unwrap();
    if !v.success {
        problems.push(format!("{name}: invalid: {:#?}", v.diagnostics()));
    }
}

#[test]
fn every_provider_example_is_formatted_and_valid() {
    let mut problems = Vec::new();
    let dirs = example_dirs();
    assert!(
        dirs.len() >= 3,
        "expected examples for the provider, resources and functions"
    );
    for dir in dirs {
        let hcl: String = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "tf"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        validate_config(&dir.display().to_string(), &hcl, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_example_in_the_registry_pages_is_formatted_and_valid() {
    let mut problems = Vec::new();
    let mut pages = vec!["docs/index.md".to_string()];
    for dir in ["docs/resources", "docs/data-sources", "docs/functions"] {
        pages.extend(pages_in(dir).into_iter().map(|p| format!("{dir}/{p}.md")));
    }
    let mut blocks = 0;
    for page in pages {
        let Some(text) = read(&page) else { continue };
        let mut in_block = false;
        let mut current = String::new();
        let mut page_blocks = Vec::new();
        for line in text.lines() {
            if line.trim() == "```terraform" {
                in_block = true;
                current.clear();
            } else if in_block && line.trim() == "```" {
                in_block = false;
                page_blocks.push(current.clone());
            } else if in_block {
                current.push_str(line);
                current.push('\n');
            }
        }
        // Blocks of one page form one configuration (a page may declare the terraform block separately).
        if !page_blocks.is_empty() {
            blocks += page_blocks.len();
            for (i, b) in page_blocks.iter().enumerate() {
                let wd = Workdir::new(provider_bin!(), "").unwrap();
                wd.write("block.tf", b).unwrap();
                let fmt = wd.tf(&["fmt", "-check", "-no-color", "block.tf"]).unwrap();
                if !fmt.success {
                    problems.push(format!("{page} block {i}: not formatted"));
                }
            }
            let joined: Vec<&String> = page_blocks
                .iter()
                .filter(|b| !b.contains("required_providers"))
                .collect();
            let own = page_blocks
                .iter()
                .find(|b| b.contains("required_providers"));
            let hcl = match own {
                Some(t) => format!(
                    "{t}\n{}",
                    joined
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                None => joined
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            validate_config(&page, &hcl, &mut problems);
        }
    }
    assert!(
        blocks >= 3,
        "expected terraform examples in the pages, found {blocks}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// ```hcl / ```terraform blocks of a markdown text, dedented by their fence's indentation (list items).
fn hcl_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        match &mut open {
            None if matches!(line.trim(), "```hcl" | "```terraform") => {
                open = Some((indent, String::new()))
            }
            Some((fence, body)) if line.trim() == "```" && indent == *fence => {
                blocks.push(std::mem::take(body));
                open = None;
            }
            Some((fence, body)) => {
                body.push_str(line.get(*fence..).unwrap_or(line.trim_start()));
                body.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn hcl_in_the_guides_architecture_and_readme_is_terraform_fmt_clean() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("docs/guides"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.push(repo().join("docs/architecture.md"));
    files.push(repo().join("README.md"));
    files.sort();
    let wd = Workdir::new(provider_bin!(), "").unwrap();
    let (mut checked, mut problems) = (0, Vec::new());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, block) in hcl_blocks(&text).iter().enumerate() {
            checked += 1;
            wd.write("block.tf", block).unwrap();
            let fmt = wd
                .tf(&["fmt", "-check", "-diff", "-no-color", "block.tf"])
                .unwrap();
            if !fmt.success {
                problems.push(format!(
                    "{} block {i}:\n{}{}",
                    f.display(),
                    fmt.stdout,
                    fmt.stderr
                ));
            }
        }
    }
    assert!(checked >= 5, "only {checked} HCL blocks found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
