//! The images of our own binaries for the test VM (`cloudcode-im`, `cloudcode-agent`), made from the binary under
//! test without a registry or a Docker daemon: one layer with the binary, the shared libraries it links (from `ldd`), the CA bundle and a passwd
//! file, written as a `docker save` archive that `docker load` on the VM takes like the other test images.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::vm::VmImage;

#[derive(Debug, thiserror::Error)]
pub enum ImImageError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("ldd {0} failed")]
    Ldd(String),
}

fn add_file(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    tar.append_data(&mut h, path, bytes)
}

fn add_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, path, std::io::empty())
}

/// The libraries `ldd` says the binary needs (absolute paths, the dynamic loader included).
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, ImImageError> {
    let out = Command::new("ldd").arg(binary).output()?;
    if !out.status.success() {
        return Err(ImImageError::Ldd(binary.display().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect())
}

/// The binary without its debug information (a debug build is ~100 MB, mostly DWARF), when `strip` is here.
fn stripped(binary: &Path) -> Option<Vec<u8>> {
    let tmp = tempfile::NamedTempFile::new().ok()?;
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(tmp.path())
        .arg(binary)
        .status()
        .ok()?
        .success();
    if ok {
        std::fs::read(tmp.path()).ok()
    } else {
        None
    }
}

/// One of our binaries as an image: its role in the stack's `images`, its name in `/usr/local/bin`, its default
/// command and the directories its image has.
pub struct BinaryImage {
    pub role: &'static str,
    pub name: &'static str,
    pub cmd: &'static [&'static str],
    pub dirs: &'static [&'static str],
}

/// The chat bridge (`cloudcode-im serve`).
pub const IM: BinaryImage = BinaryImage {
    role: "im",
    name: "cloudcode-im",
    cmd: &["serve"],
    dirs: &["data", "etc/cloudcode-im"],
};

/// The agent on the box (`cloudcode-agent idle`; the Compose file names the command).
pub const AGENT: BinaryImage = BinaryImage {
    role: "agent",
    name: "cloudcode-agent",
    cmd: &["idle"],
    dirs: &[],
};

/// A binary this crate builds (`name`, e.g. `cloudcode-agent-under-test`), or the path in the environment variable
/// `env`: found beside the running test executable (target/<profile>/deps) or the bench binaries (target/<profile>).
pub fn binary_under_test(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let here = exe.parent().expect("a directory").to_path_buf();
    [
        here.clone(),
        here.parent().map(Path::to_path_buf).unwrap_or(here),
    ]
    .into_iter()
    .map(|d| d.join(name))
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("{name} is built beside the tests (cargo builds it with them)"))
}

/// The agent's image for the test VM, from `cloudcode-agent-under-test` (or `CLOUDCODE_AGENT_BIN`).
pub fn agent_image(dir: &Path) -> Result<VmImage, ImImageError> {
    build_image(
        &AGENT,
        &binary_under_test("cloudcode-agent-under-test", "CLOUDCODE_AGENT_BIN"),
        dir,
    )
}

/// Writes the bridge's image from `binary` (see [`build_image`]).
pub fn build(binary: &Path, dir: &Path) -> Result<VmImage, ImImageError> {
    build_image(&IM, binary, dir)
}

/// Writes `<dir>/<role>-<hash>.tar` (tag `cloudcode-test/<role>:<binary hash>`) unless it is there already.
pub fn build_image(spec: &BinaryImage, binary: &Path, dir: &Path) -> Result<VmImage, ImImageError> {
    let bin = stripped(binary).unwrap_or(std::fs::read(binary)?);
    let hash = &hex::encode(Sha256::digest(&bin))[..12];
    let tag = format!("cloudcode-test/{}:{hash}", spec.role);
    let archive = dir.join(format!("{}-{hash}.tar", spec.role));
    if archive.exists() {
        return Ok(VmImage {
            role: spec.role.into(),
            image: tag,
            archive,
        });
    }
    let mut layer = tar::Builder::new(Vec::new());
    for d in [
        "usr",
        "usr/local",
        "usr/local/bin",
        "etc",
        "etc/ssl",
        "etc/ssl/certs",
    ]
    .iter()
    .chain(spec.dirs)
    {
        add_dir(&mut layer, d, 0o755)?;
    }
    add_dir(&mut layer, "tmp", 0o1777)?;
    add_file(
        &mut layer,
        &format!("usr/local/bin/{}", spec.name),
        &bin,
        0o755,
    )?;
    for lib in libraries(binary)? {
        let rel = lib.to_string_lossy().trim_start_matches('/').to_string();
        let real = std::fs::canonicalize(&lib)?;
        add_file(&mut layer, &rel, &std::fs::read(real)?, 0o755)?;
    }
    let ca = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    add_file(&mut layer, "etc/ssl/certs/ca-certificates.crt", &ca, 0o644)?;
    add_file(
        &mut layer,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    add_file(&mut layer, "etc/group", b"root:x:0:\n", 0o644)?;
    let layer = layer.into_inner()?;
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            "Entrypoint": [format!("/usr/local/bin/{}", spec.name)], "Cmd": spec.cmd,
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    let config = serde_json::to_vec(&config).expect("JSON");
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"] }]);
    let mut out = tar::Builder::new(Vec::new());
    add_dir(&mut out, "layer", 0o755)?;
    add_file(&mut out, "layer/layer.tar", &layer, 0o644)?;
    add_file(&mut out, &config_name, &config, 0o644)?;
    add_file(
        &mut out,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("JSON"),
        0o644,
    )?;
    let tmp = archive.with_extension("tmp");
    std::fs::File::create(&tmp)?.write_all(&out.into_inner()?)?;
    std::fs::rename(&tmp, &archive)?;
    Ok(VmImage {
        role: spec.role.into(),
        image: tag,
        archive,
    })
}
