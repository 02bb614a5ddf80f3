//! Key pairs the CLI creates for a new cloud stack: RSA (Alibaba Cloud key pairs accept RSA, not ed25519),
//! written in OpenSSH format so `ssh -i` and this crate both read them.

use russh::keys::ssh_key::{private::RsaKeypair, LineEnding, PrivateKey};

use crate::SshError;

/// A freshly generated key pair in OpenSSH text form.
pub struct GeneratedKey {
    /// `-----BEGIN OPENSSH PRIVATE KEY-----...`, unencrypted (the caller stores it 0600).
    pub private_openssh: String,
    /// `ssh-rsa AAAA... comment`.
    pub public_openssh: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public_openssh", &self.public_openssh)
            .finish_non_exhaustive()
    }
}

/// Generates an RSA key of `bits` bits (4096 for cloud stacks) with `comment`.
pub fn generate_rsa(bits: usize, comment: &str) -> Result<GeneratedKey, SshError> {
    let err = |e: &dyn std::fmt::Display| SshError::PrivateKey {
        source_desc: "generation".into(),
        reason: e.to_string(),
    };
    let mut rng = rand_010::rng();
    let pair = RsaKeypair::random(&mut rng, bits).map_err(|e| err(&e))?;
    let mut key = PrivateKey::from(pair);
    key.set_comment(comment);
    let private_openssh = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| err(&e))?
        .to_string();
    let public_openssh = key.public_key().to_openssh().map_err(|e| err(&e))?;
    Ok(GeneratedKey {
        private_openssh,
        public_openssh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_rsa_key_reads_back_with_its_public_half() {
        let k = generate_rsa(2048, "cloudcode-test").unwrap();
        assert!(
            k.public_openssh.starts_with("ssh-rsa AAAA"),
            "{}",
            k.public_openssh
        );
        assert!(k.public_openssh.ends_with(" cloudcode-test"));
        let parsed = PrivateKey::from_openssh(&k.private_openssh).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), k.public_openssh);
        assert!(!format!("{k:?}").contains("PRIVATE KEY"));
    }
}
