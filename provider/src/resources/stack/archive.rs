//! Image archives trimmed to the layers a host lacks: `docker load` skips a layer whose chain id its layer store
//! already has without opening the layer's file, so a `docker save` archive without those files (manifest and
//! configs kept) loads like the whole one — the layers-only transfer Kamal gets from a registry over an SSH tunnel,
//! without a registry.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The host's command listing the layers of every image it has (`RootFS.Layers`: diff ids, bottom first), one
/// image per line.
pub const HOST_LAYERS: &str =
    "ids=$(docker image ls -aq 2>/dev/null | sort -u); [ -z \"$ids\" ] || \
     docker image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' $ids 2>/dev/null; true";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a docker save archive ({reason})")]
    Format { path: String, reason: String },
}

/// The chain ids of every layer stack the host has, from [`HOST_LAYERS`]' output.
pub fn host_chains(text: &str) -> BTreeSet<String> {
    text.lines()
        .flat_map(|line| {
            let diffs: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            chain_ids(&diffs)
        })
        .collect()
}

/// The chain id of each prefix of `diff_ids` (the OCI image spec's ChainID: the first layer's diff id, then
/// `sha256(parent chain + " " + diff id)`).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// A trimmed copy of an archive, deleted when dropped.
#[derive(Debug)]
pub struct Trimmed {
    pub path: PathBuf,
    /// Bytes of the trimmed copy.
    pub bytes: u64,
    /// Layer files left out (the host has them).
    pub skipped: usize,
}

impl Drop for Trimmed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(serde::Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// `archive` without the layer files whose chain the host has (`host`), written next to `dir`; `None` when the
/// host has none of its layers (the whole archive is sent).
pub fn trim(
    archive: &Path,
    host: &BTreeSet<String>,
    dir: &Path,
) -> Result<Option<Trimmed>, ArchiveError> {
    let name = archive.display().to_string();
    let io = |source| ArchiveError::Io {
        path: name.clone(),
        source,
    };
    let format = |reason: String| ArchiveError::Format {
        path: name.clone(),
        reason,
    };
    // 1. The manifest, and which entry is a symbolic link to which (older `docker save` links repeated layers).
    let manifest: Vec<ManifestEntry> = serde_json::from_slice(
        &read_entries(archive, |p| p == "manifest.json")
            .map_err(io)?
            .remove("manifest.json")
            .ok_or_else(|| format("no manifest.json".into()))?,
    )
    .map_err(|e| format(format!("manifest.json: {e}")))?;
    // 2. Each image's config, for its diff ids.
    let wanted: BTreeSet<&str> = manifest.iter().map(|m| m.config.as_str()).collect();
    let configs = read_entries(archive, |p| wanted.contains(p)).map_err(io)?;
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut layer_files: BTreeSet<String> = BTreeSet::new();
    for m in &manifest {
        let bytes = configs
            .get(&m.config)
            .ok_or_else(|| format(format!("no {}", m.config)))?;
        let config: Config =
            serde_json::from_slice(bytes).map_err(|e| format(format!("{}: {e}", m.config)))?;
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(format(format!(
                "{} names {} layers, its config {}",
                m.config,
                m.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        for (file, chain) in m.layers.iter().zip(chain_ids(&config.rootfs.diff_ids)) {
            layer_files.insert(file.clone());
            if !host.contains(&chain) {
                needed.insert(file.clone());
            }
        }
    }
    let skip: BTreeSet<&String> = layer_files.difference(&needed).collect();
    if skip.is_empty() {
        return Ok(None);
    }
    // 3. The copy: every entry but the skipped layer files (a kept link's target is kept too).
    let links = link_targets(archive).map_err(io)?;
    let skip: BTreeSet<&String> = skip
        .into_iter()
        .filter(|f| !needed.iter().any(|n| links.get(n) == Some(*f)))
        .collect();
    let path = dir.join(format!(
        ".cloudcode-trimmed-{}-{}.tar",
        std::process::id(),
        hex::encode(&Sha256::digest(name.as_bytes())[..6])
    ));
    let mut trimmed = Trimmed {
        path: path.clone(),
        bytes: 0,
        skipped: skip.len(),
    };
    let out = File::create(&path).map_err(|source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(out));
    let mut input = tar::Archive::new(File::open(archive).map_err(io)?);
    for entry in input.entries_with_seek().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let entry_path = entry.path().map_err(io)?.display().to_string();
        if skip.contains(&entry_path) {
            continue;
        }
        let mut header = entry.header().clone();
        builder
            .append_data(&mut header, &entry_path, &mut entry)
            .map_err(io)?;
    }
    builder
        .into_inner()
        .and_then(|w| w.into_inner().map_err(std::io::Error::other))
        .map_err(io)?;
    trimmed.bytes = std::fs::metadata(&path).map_err(io)?.len();
    Ok(Some(trimmed))
}

/// The contents of the entries whose path `want` accepts (the others are skipped over, not read).
fn read_entries(
    archive: &Path,
    want: impl Fn(&str) -> bool,
) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut input = tar::Archive::new(File::open(archive)?);
    for entry in input.entries_with_seek()? {
        let mut entry = entry?;
        let path = entry.path()?.display().to_string();
        if want(&path) && entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            out.insert(path, bytes);
        }
    }
    Ok(out)
}

/// Symbolic links in the archive: link path → the path it points to (relative targets resolved).
fn link_targets(archive: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut input = tar::Archive::new(File::open(archive)?);
    for entry in input.entries_with_seek()? {
        let entry = entry?;
        if !entry.header().entry_type().is_symlink() {
            continue;
        }
        let path = entry.path()?.display().to_string();
        if let Some(target) = entry.link_name()? {
            let resolved = normalise(
                &Path::new(&path)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(target),
            );
            out.insert(path, resolved);
        }
    }
    Ok(out)
}

/// `a/../b/./c` → `b/c`.
fn normalise(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    /// A `docker save`-shaped archive: two images sharing their base layer, the second's top layer a link.
    fn archive(dir: &Path) -> PathBuf {
        let path = dir.join("images.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        fn add(b: &mut tar::Builder<File>, name: &str, bytes: &[u8]) {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, bytes).unwrap();
        }
        add(&mut b, "base/layer.tar", &[1u8; 5000]);
        add(&mut b, "top/layer.tar", &[2u8; 3000]);
        add(
            &mut b,
            "a.json",
            serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff(1), diff(2)]}})
                .to_string()
                .as_bytes(),
        );
        add(
            &mut b,
            "b.json",
            serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff(1), diff(3)]}})
                .to_string()
                .as_bytes(),
        );
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "other/layer.tar", "../top/layer.tar")
            .unwrap();
        add(
            &mut b,
            "manifest.json",
            serde_json::json!([
                {"Config": "a.json", "RepoTags": ["a:1"], "Layers": ["base/layer.tar", "top/layer.tar"]},
                {"Config": "b.json", "RepoTags": ["b:1"], "Layers": ["base/layer.tar", "other/layer.tar"]}
            ])
            .to_string()
            .as_bytes(),
        );
        b.finish().unwrap();
        path
    }

    fn names(path: &Path) -> Vec<String> {
        let mut a = tar::Archive::new(File::open(path).unwrap());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let chains = chain_ids(&[diff(1), diff(2)]);
        assert_eq!(chains[0], diff(1));
        let want = hex::encode(Sha256::digest(format!("{} {}", diff(1), diff(2))));
        assert_eq!(chains[1], format!("sha256:{want}"));
        assert_eq!(
            host_chains(&format!("{} {}\n\n", diff(1), diff(2))),
            chains.into_iter().collect()
        );
    }

    #[test]
    fn layers_the_host_has_are_left_out_and_everything_else_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = archive(dir.path());
        // The host has image a (base + top): base is left out; top stays, image b's layer links to it.
        let host = host_chains(&format!("{} {}", diff(1), diff(2)));
        let t = trim(&a, &host, dir.path())
            .unwrap()
            .expect("something to skip");
        assert_eq!(t.skipped, 1);
        assert_eq!(
            names(&t.path),
            [
                "top/layer.tar",
                "a.json",
                "b.json",
                "other/layer.tar",
                "manifest.json"
            ]
        );
        assert!(t.bytes < std::fs::metadata(&a).unwrap().len(), "{t:?}");
        let path = t.path.clone();
        drop(t);
        assert!(!path.exists(), "the trimmed copy outlived its use");
    }

    #[test]
    fn a_host_without_any_of_the_layers_gets_the_whole_archive() {
        let dir = tempfile::tempdir().unwrap();
        let a = archive(dir.path());
        assert!(trim(&a, &host_chains(&diff(9)), dir.path())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_file_that_is_not_an_image_archive_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, "hello", &b"x"[..]).unwrap();
        b.finish().unwrap();
        let e = trim(&path, &BTreeSet::new(), dir.path()).unwrap_err();
        assert!(e.to_string().contains("no manifest.json"), "{e}");
    }
}
