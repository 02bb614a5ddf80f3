//! Local directories that go to the host file by file (an app's `build` context, a static site's `dir`): read in a
//! fixed order, `.gitignore` and `.cloudcodeignore` honoured, with the limits and names the upload can carry.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::validate::Invalid;

/// The most files one directory may hold.
pub const MAX_FILES: usize = 20_000;
/// The most bytes one directory may hold (its files together).
pub const MAX_BYTES: u64 = 1 << 30;
/// A file of this name lists more paths to leave out, in `.gitignore` syntax.
pub const IGNORE_FILE: &str = ".cloudcodeignore";

/// One file: path relative to the directory (`/`-separated), mode (0644 or 0755) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// A directory's files by relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub files: BTreeMap<String, TreeFile>,
}

impl Tree {
    /// sha256 over each file's path, mode and content hash, in path order: the same files give the same hash.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (path, f) in &self.files {
            h.update(format!(
                "{path}\0{:o}\0{}\n",
                f.mode,
                hex::encode(Sha256::digest(&f.bytes))
            ));
        }
        hex::encode(h.finalize())
    }
}

/// A relative path the host's upload and inspection can carry (they are tab- and line-separated, and the remote
/// removal of deleted files splits on blanks).
pub fn carried(rel: &str) -> bool {
    !rel.is_empty()
        && !rel
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '"' || c == '\'')
}

/// Reads `dir` (ignoring `.git/` and what `.gitignore`/[`IGNORE_FILE`] exclude). Errors are one sentence naming the
/// directory, for the attribute that gave it.
pub fn read(dir: &Path) -> Result<Tree, Invalid> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir)
        .map_err(|e| Invalid::new(format!("cannot read the directory {shown}: {e}")))?;
    if !meta.is_dir() {
        return Err(Invalid::new(format!("{shown} is not a directory")));
    }
    let walk = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .parents(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git")
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    let mut tree = Tree::default();
    let mut total: u64 = 0;
    for entry in walk {
        let entry =
            entry.map_err(|e| Invalid::new(format!("cannot read the directory {shown}: {e}")))?;
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        if kind.is_symlink() {
            return Err(Invalid::new(format!(
                "{shown}/{rel} is a symbolic link; only regular files are uploaded (copy the file, or list the \
                 link in {IGNORE_FILE})"
            )));
        }
        if !kind.is_file() {
            continue;
        }
        if !carried(&rel) {
            return Err(Invalid::new(format!(
                "{shown}/{rel}: file names with blanks, quotes, backslashes or control characters cannot be \
                 uploaded; rename it or list it in {IGNORE_FILE}"
            )));
        }
        let meta = std::fs::metadata(entry.path())
            .map_err(|e| Invalid::new(format!("cannot read {shown}/{rel}: {e}")))?;
        // The limits before the bytes are read.
        total += meta.len();
        if tree.files.len() >= MAX_FILES || total > MAX_BYTES {
            return Err(Invalid::new(format!(
                "{shown} holds more than {MAX_FILES} files or 1 GiB; leave build output and dependencies out \
                 with {IGNORE_FILE}"
            )));
        }
        let bytes = std::fs::read(entry.path())
            .map_err(|e| Invalid::new(format!("cannot read {shown}/{rel}: {e}")))?;
        let exec = meta.permissions().mode() & 0o111 != 0;
        tree.files.insert(
            rel,
            TreeFile {
                mode: if exec { 0o755 } else { 0o644 },
                bytes,
            },
        );
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_honours_ignore_files_and_hashes_content_and_mode() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, s: &str| {
            let path = d.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, s).unwrap();
        };
        w("b.txt", "b");
        w("a/x.js", "x");
        w(".gitignore", "node_modules/\n");
        w("node_modules/dep.js", "dep");
        w(IGNORE_FILE, "*.log\n");
        w("debug.log", "noise");
        w(".git/HEAD", "ref");
        let t = read(d.path()).unwrap();
        let names: Vec<&str> = t.files.keys().map(String::as_str).collect();
        assert_eq!(names, [".cloudcodeignore", ".gitignore", "a/x.js", "b.txt"]);
        let before = t.hash();
        std::fs::set_permissions(
            d.path().join("b.txt"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let after = read(d.path()).unwrap();
        assert_eq!(after.files["b.txt"].mode, 0o755);
        assert_ne!(before, after.hash(), "the mode counts");
    }

    #[test]
    fn refuses_links_odd_names_and_missing_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("my file.html"), "x").unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("my file.html") && e.contains("blanks"), "{e}");
        std::fs::remove_file(d.path().join("my file.html")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let e = read(&d.path().join("nope")).unwrap_err().to_string();
        assert!(e.contains("cannot read the directory"), "{e}");
    }
}
