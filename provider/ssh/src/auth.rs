//! Client credentials: a private key (inline PEM/OpenSSH text or a file, optional passphrase) and/or the
//! SSH agent; loading keys and authenticating a russh handle. RSA keys always sign with SHA-2
//! (rsa-sha2-512/256), never SHA-1 `ssh-rsa`. Secrets never reach Debug output, logs or errors.
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{AuthResult, Handle, Handler};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use secrecy::{ExposeSecret, SecretString};

use crate::error::SshError;

/// Where the private key comes from.
#[derive(Clone)]
pub enum PrivateKeySource {
    /// The key text itself (OpenSSH `-----BEGIN OPENSSH PRIVATE KEY-----`, PKCS#1/PKCS#8 PEM).
    Inline(SecretString),
    /// A file holding the key text.
    File(PathBuf),
}

impl fmt::Debug for PrivateKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivateKeySource::Inline(_) => f.write_str("Inline(<redacted>)"),
            PrivateKeySource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// Whether (and where) to use an SSH agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AgentMode {
    /// Do not use an agent.
    #[default]
    Off,
    /// Use the agent named by `SSH_AUTH_SOCK`.
    Env,
    /// Use the agent listening on this socket.
    Socket(PathBuf),
}

/// Credentials for one endpoint. The key (if any) is tried first, then the agent's identities.
#[derive(Clone, Default)]
pub struct Credentials {
    pub private_key: Option<PrivateKeySource>,
    pub passphrase: Option<SecretString>,
    pub agent: AgentMode,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("private_key", &self.private_key)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("agent", &self.agent)
            .finish()
    }
}

impl Credentials {
    /// A key given as text.
    pub fn key_inline(text: impl Into<String>) -> Self {
        Credentials {
            private_key: Some(PrivateKeySource::Inline(SecretString::from(text.into()))),
            ..Default::default()
        }
    }

    /// A key read from a file.
    pub fn key_file(path: impl Into<PathBuf>) -> Self {
        Credentials {
            private_key: Some(PrivateKeySource::File(path.into())),
            ..Default::default()
        }
    }

    /// Only the agent.
    pub fn agent(mode: AgentMode) -> Self {
        Credentials {
            agent: mode,
            ..Default::default()
        }
    }

    /// Adds a passphrase for the key.
    pub fn with_passphrase(mut self, passphrase: impl Into<String>) -> Self {
        self.passphrase = Some(SecretString::from(passphrase.into()));
        self
    }

    /// Adds agent use.
    pub fn with_agent(mut self, mode: AgentMode) -> Self {
        self.agent = mode;
        self
    }

    /// Loads (and decrypts) the configured key once, before any connection attempt: a bad key is a
    /// configuration error, not something to retry.
    pub(crate) fn load(&self) -> Result<LoadedCredentials, SshError> {
        let key = match &self.private_key {
            None => None,
            Some(source) => Some(Arc::new(load_key(source, self.passphrase.as_ref())?)),
        };
        Ok(LoadedCredentials {
            key,
            agent: self.agent.clone(),
        })
    }
}

fn load_key(
    source: &PrivateKeySource,
    passphrase: Option<&SecretString>,
) -> Result<PrivateKey, SshError> {
    let (desc, text) = match source {
        PrivateKeySource::Inline(text) => (
            "(inline)".to_string(),
            SecretString::from(text.expose_secret()),
        ),
        PrivateKeySource::File(path) => {
            let desc = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| SshError::PrivateKey {
                source_desc: desc.clone(),
                reason: format!("cannot read file: {}", e.kind()),
            })?;
            (desc, SecretString::from(text))
        }
    };
    let pass = passphrase.map(|p| p.expose_secret());
    russh::keys::decode_secret_key(text.expose_secret(), pass)
        .or_else(|e| {
            // One ECDSA key in ~256 has a scalar the decoder refuses until padded (keyfix.rs).
            let fixed = crate::keyfix::pad_short_ecdsa_scalar(text.expose_secret()).ok_or(e)?;
            russh::keys::decode_secret_key(&fixed, pass)
        })
        .map_err(|e| SshError::PrivateKey {
            source_desc: desc,
            reason: describe_key_error(&e, pass.is_some()),
        })
}

/// A fixed description per error kind: parser messages may quote bytes of the key, so none is passed on.
fn describe_key_error(e: &russh::keys::Error, had_passphrase: bool) -> String {
    use russh::keys::Error as E;
    match e {
        E::KeyIsEncrypted => "the key is encrypted: a passphrase is required".into(),
        E::UnsupportedKeyType { key_type_string, .. } => format!("unsupported key type {key_type_string}"),
        _ if had_passphrase => "could not decode or decrypt the key (wrong passphrase, or not a private key)".into(),
        _ => "could not decode the key (not an OpenSSH/PEM private key, or encrypted without a passphrase)".into(),
    }
}

/// Credentials ready to use (key decoded once per operation).
#[derive(Clone)]
pub(crate) struct LoadedCredentials {
    key: Option<Arc<PrivateKey>>,
    agent: AgentMode,
}

impl LoadedCredentials {
    pub(crate) fn is_empty(&self) -> bool {
        self.key.is_none() && self.agent == AgentMode::Off
    }

    /// Authenticates `handle` as `user`: the key first, then each agent identity. `Ok(false)` when the
    /// server accepted none (retryable: cloud-init may not have installed the key yet).
    pub(crate) async fn authenticate<H: Handler>(
        &self,
        handle: &mut Handle<H>,
        user: &str,
    ) -> Result<Result<(), String>, SshError> {
        let mut tried = Vec::new();
        if let Some(key) = &self.key {
            let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
            let with_alg = PrivateKeyWithHashAlg::new(key.clone(), hash);
            match handle.authenticate_publickey(user, with_alg).await {
                Ok(AuthResult::Success) => return Ok(Ok(())),
                Ok(AuthResult::Failure { .. }) => tried.push(describe_pub(key.public_key())),
                Err(e) => return Ok(Err(format!("publickey authentication failed: {e}"))),
            }
        }
        if self.agent != AgentMode::Off {
            let mut agent = self.connect_agent().await?;
            let identities = agent
                .request_identities()
                .await
                .map_err(|e| SshError::Agent(format!("listing identities: {e}")))?;
            for identity in identities {
                let AgentIdentity::PublicKey { key, .. } = identity else {
                    continue;
                };
                let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
                match handle
                    .authenticate_publickey_with(user, key.clone(), hash, &mut agent)
                    .await
                {
                    Ok(AuthResult::Success) => return Ok(Ok(())),
                    Ok(AuthResult::Failure { .. }) => {
                        tried.push(format!("agent {}", describe_pub(&key)))
                    }
                    Err(e) => tried.push(format!(
                        "agent {} (signing failed: {e})",
                        describe_pub(&key)
                    )),
                }
            }
        }
        Ok(Err(format!(
            "authentication as {user:?} rejected (tried: {})",
            if tried.is_empty() {
                "no identities".to_string()
            } else {
                tried.join(", ")
            }
        )))
    }

    async fn connect_agent(
        &self,
    ) -> Result<
        AgentClient<Box<dyn russh::keys::agent::client::AgentStream + Send + Unpin>>,
        SshError,
    > {
        match &self.agent {
            AgentMode::Socket(path) => AgentClient::connect_uds(path)
                .await
                .map(|a| a.dynamic())
                .map_err(|e| SshError::Agent(format!("connecting to {}: {e}", path.display()))),
            _ => AgentClient::connect_env()
                .await
                .map(|a| a.dynamic())
                .map_err(|e| SshError::Agent(format!("connecting to $SSH_AUTH_SOCK: {e}"))),
        }
    }
}

/// The signature hash for an RSA key: the best SHA-2 variant the server accepts. Never SHA-1; when the
/// server does not advertise `server-sig-algs`, rsa-sha2-256 (supported by every OpenSSH since 7.2).
async fn rsa_hash<H: Handler>(handle: &Handle<H>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    match handle.best_supported_rsa_hash().await {
        Ok(Some(Some(HashAlg::Sha512))) => Some(HashAlg::Sha512),
        _ => Some(HashAlg::Sha256),
    }
}

fn describe_pub(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_credentials_hides_key_text_and_passphrase() {
        let creds =
            Credentials::key_inline("-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETKEYBYTES\n")
                .with_passphrase("hunter2-passphrase");
        let dbg = format!("{creds:?}");
        assert!(!dbg.contains("SECRETKEYBYTES"), "{dbg}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn a_garbage_key_fails_without_echoing_its_text() {
        let creds = Credentials::key_inline(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA!!notbase64SECRETBYTES\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        let err = creds
            .load()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("could not decode"), "{err}");
        assert!(!err.contains("SECRETBYTES"), "{err}");
    }

    #[test]
    fn a_missing_key_file_names_the_path_only() {
        let err = Credentials::key_file("/nonexistent/id_ed25519")
            .load()
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.contains("/nonexistent/id_ed25519") && err.contains("cannot read file"),
            "{err}"
        );
    }
}
