//! Keyed fingerprints of the secrets a deploy was given — HMAC-SHA256 under a random per-stack key, both kept in
//! one mode-0600 file of the stack directory, never the secret itself — so a re-deploy with the same secret (CI
//! and GitOps pass them in the environment every time) keeps its version and recreates nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The file, in the stack directory.
pub const FILE: &str = "secret-fingerprints.json";

#[derive(Serialize, Deserialize)]
struct Stored {
    /// 32 random bytes, hex.
    key: String,
    /// Secret name → HMAC-SHA256(key, name NUL value), hex.
    secrets: BTreeMap<String, String>,
}

/// The fingerprints of one stack, loaded before a deploy and saved once its inputs are written.
pub struct Fingerprints {
    path: Option<PathBuf>,
    stored: Stored,
    /// Salted fingerprints an older CLI kept in the vars file (chat bridge secrets only): honoured once, so an
    /// upgrade does not bump their versions.
    legacy: Option<(String, BTreeMap<String, String>)>,
}

impl Fingerprints {
    /// Reads `dir`'s file, or starts with a new key (the file is written by [`Fingerprints::save`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Stored>(&bytes)
                .ok()
                .filter(|s| hex::decode(&s.key).is_ok_and(|k| k.len() == 32))
                // A damaged file only costs one version bump per secret: start again.
                .unwrap_or_else(Stored::new),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::new(),
            Err(e) => return Err(Error::io(&path)(e)),
        };
        Ok(Self {
            path: Some(path),
            stored,
            legacy: None,
        })
    }

    /// Fingerprints kept in memory only (tests).
    #[cfg(test)]
    pub fn in_memory() -> Self {
        Self {
            path: None,
            stored: Stored::new(),
            legacy: None,
        }
    }

    /// Honours the salted fingerprints an older CLI stored in the stack's config.
    pub fn adopt_legacy(&mut self, salt: Option<String>, map: BTreeMap<String, String>) {
        if let Some(salt) = salt.filter(|_| !map.is_empty()) {
            self.legacy = Some((salt, map));
        }
    }

    fn keyed(&self, name: &str, value: &str) -> String {
        let key = hex::decode(&self.stored.key).unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn legacy_matches(&self, name: &str, value: &str) -> bool {
        let Some((salt, map)) = &self.legacy else {
            return false;
        };
        let mut h = Sha256::new();
        for part in [salt.as_str(), name, value] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        map.get(name) == Some(&hex::encode(&h.finalize()[..16]))
    }

    /// The version a secret's write-only argument gets: `previous` without a value or with the value last
    /// supplied; otherwise the next one (1 the first time). Records the value's fingerprint.
    pub fn next_version(
        &mut self,
        name: &str,
        value: Option<&str>,
        previous: Option<i64>,
    ) -> Option<i64> {
        let Some(v) = value else { return previous };
        let fp = self.keyed(name, v);
        let same = self.stored.secrets.get(name) == Some(&fp)
            || (!self.stored.secrets.contains_key(name) && self.legacy_matches(name, v));
        self.stored.secrets.insert(name.to_string(), fp);
        match previous {
            Some(p) if same => Some(p),
            Some(p) => Some(p + 1),
            None => Some(1),
        }
    }

    /// Records the fingerprint of a secret that was applied outside `deploy` (`cloudcode passwd`).
    pub fn record(&mut self, name: &str, value: &str) {
        let fp = self.keyed(name, value);
        self.stored.secrets.insert(name.to_string(), fp);
    }

    /// Writes the file (mode 0600, replaced atomically).
    pub fn save(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.stored)
            .map_err(|e| Error::io(path)(std::io::Error::other(e)))?;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::io(&tmp))?;
        f.write_all(&bytes).map_err(Error::io(&tmp))?;
        f.sync_all().map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io(path))
    }
}

impl Stored {
    fn new() -> Self {
        Self {
            key: hex::encode(rand::random::<[u8; 32]>()),
            secrets: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_secret_keeps_its_version_and_a_new_one_bumps_it() {
        let mut f = Fingerprints::in_memory();
        assert_eq!(
            f.next_version("admin_password", Some("first-password"), None),
            Some(1)
        );
        assert_eq!(
            f.next_version("admin_password", Some("first-password"), Some(1)),
            Some(1)
        );
        assert_eq!(f.next_version("admin_password", None, Some(1)), Some(1));
        assert_eq!(
            f.next_version("admin_password", Some("second-password"), Some(1)),
            Some(2)
        );
        // The names are keyed apart: the same value under another name is a first sight.
        assert_eq!(
            f.next_version("llm_api_key", Some("second-password"), Some(4)),
            Some(5)
        );
    }

    #[test]
    fn the_file_is_private_holds_no_secret_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Fingerprints::load(dir.path()).unwrap();
        assert_eq!(
            f.next_version("llm_api_key", Some("sk-live-very-secret"), Some(3)),
            Some(4)
        );
        f.save().unwrap();
        let path = dir.path().join(FILE);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("sk-live-very-secret"), "{text}");
        let mut again = Fingerprints::load(dir.path()).unwrap();
        assert_eq!(
            again.next_version("llm_api_key", Some("sk-live-very-secret"), Some(4)),
            Some(4)
        );
        // Another stack (another key) does not recognise it.
        let other = tempfile::tempdir().unwrap();
        let mut fresh = Fingerprints::load(other.path()).unwrap();
        assert_eq!(
            fresh.next_version("llm_api_key", Some("sk-live-very-secret"), Some(4)),
            Some(5)
        );
    }

    #[test]
    fn salted_fingerprints_of_an_older_cli_are_honoured_once() {
        let salt = "00112233445566778899aabbccddeeff".to_string();
        let mut h = Sha256::new();
        for part in [salt.as_str(), "telegram_token", "123456:token"] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let legacy = BTreeMap::from([(
            "telegram_token".to_string(),
            hex::encode(&h.finalize()[..16]),
        )]);
        let mut f = Fingerprints::in_memory();
        f.adopt_legacy(Some(salt), legacy);
        assert_eq!(
            f.next_version("telegram_token", Some("123456:token"), Some(2)),
            Some(2)
        );
        assert_eq!(
            f.next_version("telegram_token", Some("123456:other"), Some(2)),
            Some(3)
        );
    }
}
