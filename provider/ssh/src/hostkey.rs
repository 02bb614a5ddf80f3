//! Host-key policy: pinned (`host_key` = a public key line or a `SHA256:` fingerprint) or trust on first use
//! (the observed key is returned so the caller records it in state), and the russh handler that enforces
//! it during key exchange — before any authentication is attempted.
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use russh::keys::ssh_key::Fingerprint;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKey, PublicKeyOrCertificate};

use crate::error::SshError;

/// A pinned host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPin {
    /// A full public key (`ssh-ed25519 AAAA...`, comment ignored).
    Key(PublicKey),
    /// A SHA-256 fingerprint (`SHA256:base64`, as printed by `ssh-keygen -lf`).
    Fingerprint(Fingerprint),
}

impl HostKeyPin {
    /// Parses a `host_key` value: a public key line or a `SHA256:` fingerprint.
    pub fn parse(text: &str) -> Result<Self, SshError> {
        let t = text.trim();
        let invalid = |reason: String| SshError::InvalidHostKeyPin {
            pin: t.to_string(),
            reason,
        };
        if t.starts_with("SHA256:") {
            return Fingerprint::from_str(t)
                .map(HostKeyPin::Fingerprint)
                .map_err(|e| invalid(format!("not a SHA256 fingerprint: {e}")));
        }
        if t.starts_with("MD5:") {
            return Err(invalid(
                "MD5 fingerprints are not accepted; use the SHA256: form".into(),
            ));
        }
        PublicKey::from_openssh(t)
            .map(HostKeyPin::Key)
            .map_err(|e| {
                invalid(format!(
                    "expected a public key line (`ssh-ed25519 AAAA...`) or `SHA256:...`: {e}"
                ))
            })
    }

    /// Whether `key` is the pinned one.
    pub fn matches(&self, key: &PublicKey) -> bool {
        match self {
            HostKeyPin::Key(pinned) => pinned.key_data() == key.key_data(),
            HostKeyPin::Fingerprint(fp) => key.fingerprint(fp.algorithm()) == *fp,
        }
    }

    /// The pin as shown in errors: its SHA-256 fingerprint (and algorithm when known).
    pub fn describe(&self) -> String {
        match self {
            HostKeyPin::Key(k) => describe_key(k),
            HostKeyPin::Fingerprint(fp) => fp.to_string(),
        }
    }

    /// Host-key algorithms to offer, the pinned key's type first so a server with several host keys
    /// presents the pinned one. SHA-1 `ssh-rsa` is never offered.
    pub(crate) fn preferred_algorithms(pin: Option<&HostKeyPin>) -> Vec<Algorithm> {
        let mut all = vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ];
        if let Some(HostKeyPin::Key(k)) = pin {
            let pinned = k.algorithm();
            let rsa = matches!(pinned, Algorithm::Rsa { .. });
            // Stable sort: the pinned type(s) first, the rest in their usual order.
            all.sort_by_key(|a| {
                !(if rsa {
                    matches!(a, Algorithm::Rsa { .. })
                } else {
                    a == &pinned
                })
            });
        }
        all
    }
}

/// What to do with the server's host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Accept only this key; anything else stops the connection.
    Pinned(HostKeyPin),
    /// Accept the first key seen; the caller records [`ObservedHostKey`] and pins it next time.
    TrustOnFirstUse,
}

impl HostKeyPolicy {
    /// `Pinned` when `host_key` is set, `TrustOnFirstUse` otherwise.
    pub fn from_optional(host_key: Option<&str>) -> Result<Self, SshError> {
        match host_key.map(str::trim).filter(|s| !s.is_empty()) {
            Some(pin) => Ok(HostKeyPolicy::Pinned(HostKeyPin::parse(pin)?)),
            None => Ok(HostKeyPolicy::TrustOnFirstUse),
        }
    }

    pub(crate) fn pin(&self) -> Option<&HostKeyPin> {
        match self {
            HostKeyPolicy::Pinned(p) => Some(p),
            HostKeyPolicy::TrustOnFirstUse => None,
        }
    }
}

/// The host key a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedHostKey {
    /// The public key line without comment (`ssh-ed25519 AAAA...`), suitable as `host_key`.
    pub public_key: String,
    /// `SHA256:...`
    pub fingerprint: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `rsa-sha2-512`, ...
    pub algorithm: String,
}

impl ObservedHostKey {
    fn from_key(key: &PublicKey) -> Self {
        let mut bare = key.clone();
        bare.set_comment("");
        ObservedHostKey {
            public_key: bare.to_openssh().unwrap_or_default().trim().to_string(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            algorithm: key.algorithm().to_string(),
        }
    }
}

fn describe_key(key: &PublicKey) -> String {
    format!("{} ({})", key.fingerprint(HashAlg::Sha256), key.algorithm())
}

/// What the handler saw during key exchange, shared with the connecting code.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub observed: Option<ObservedHostKey>,
    /// (expected, presented) when the key did not match the pin.
    pub mismatch: Option<(String, String)>,
}

/// The russh client handler: checks the server key against the policy.
pub(crate) struct HostKeyCheck {
    policy: HostKeyPolicy,
    verdict: Arc<Mutex<Verdict>>,
}

impl HostKeyCheck {
    pub(crate) fn new(policy: HostKeyPolicy) -> (Self, Arc<Mutex<Verdict>>) {
        let verdict = Arc::new(Mutex::new(Verdict::default()));
        (
            HostKeyCheck {
                policy,
                verdict: verdict.clone(),
            },
            verdict,
        )
    }
}

impl russh::client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Certificate host-key algorithms are never offered, so a certificate is unexpected: reject.
            PublicKeyOrCertificate::Certificate(_) => return Ok(false),
        };
        let accepted = match &self.policy {
            HostKeyPolicy::TrustOnFirstUse => true,
            HostKeyPolicy::Pinned(pin) => pin.matches(&key),
        };
        if let Ok(mut v) = self.verdict.lock() {
            v.observed = Some(ObservedHostKey::from_key(&key));
            if let (false, Some(pin)) = (accepted, self.policy.pin()) {
                v.mismatch = Some((pin.describe(), describe_key(&key)));
            }
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIvDVQjCgS+kedgc/f1AeS8O5PRFkNF7CRNG5Lni9Wnq user@host";

    #[test]
    fn a_public_key_line_pins_that_key_whatever_its_comment() {
        let pin = HostKeyPin::parse(KEY).ok();
        let key = PublicKey::from_openssh(KEY.trim_end_matches(" user@host")).ok();
        let (Some(pin), Some(key)) = (pin, key) else {
            panic!("parse failed")
        };
        assert!(pin.matches(&key));
        let fp = key.fingerprint(HashAlg::Sha256).to_string();
        let by_fp = HostKeyPin::parse(&fp).ok();
        assert!(by_fp.is_some_and(|p| p.matches(&key)));
    }

    #[test]
    fn garbage_and_md5_pins_are_rejected_with_a_reason() {
        for bad in ["not a key", "MD5:12:34", "SHA256:", "ssh-ed25519 !!!"] {
            let err = HostKeyPin::parse(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("invalid host key pin"), "{bad}: {err}");
        }
    }

    #[test]
    fn pinned_key_type_is_offered_first_and_sha1_rsa_never() {
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI8JwdnqKwMF/orjFy83rEzZNECsDtGTZkYZ/Ba8o6srmHuDhrHQT2XRu69f/0QujhLdYnESWmV79V8wHCE53So=";
        let pin = HostKeyPin::parse(ecdsa).ok();
        assert!(pin.is_some());
        let algs = HostKeyPin::preferred_algorithms(pin.as_ref());
        assert_eq!(
            algs[0],
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }
        );
        assert_eq!(algs[1], Algorithm::Ed25519);
        assert!(!algs.contains(&Algorithm::Rsa { hash: None }));
        let unpinned = HostKeyPin::preferred_algorithms(None);
        assert_eq!(unpinned[0], Algorithm::Ed25519);
        assert!(!unpinned.contains(&Algorithm::Rsa { hash: None }));
    }
}
