//! The admin password hash for Authelia's file users backend: argon2id with Authelia's defaults (t=3, m=65536 KiB,
//! p=4, 32-byte key, 16-byte salt) in PHC format, and reading an existing hash back from a users database.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Authelia's argon2id defaults.
pub const ARGON2_T: u32 = 3;
/// Memory in KiB.
pub const ARGON2_M: u32 = 65536;
pub const ARGON2_P: u32 = 4;
pub const ARGON2_KEY_LEN: usize = 32;
pub const ARGON2_SALT_LEN: usize = 16;

/// Hashing failed (never contains the password).
#[derive(Debug, thiserror::Error)]
#[error("could not hash the admin password: {0}")]
pub struct HashError(String);

/// `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>` for the password, with a fresh random 16-byte salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let params = Params::new(ARGON2_M, ARGON2_T, ARGON2_P, Some(ARGON2_KEY_LEN))
        .map_err(|e| HashError(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    // `rand`'s thread generator is a CSPRNG seeded from the OS.
    let mut salt = [0u8; ARGON2_SALT_LEN];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// The password hash of `username` in an Authelia users database (YAML), if present and argon2id. The SSH layer
/// reads it from the host when non-secret user fields change without a new password, and passes it back as
/// [`crate::Secrets::admin_password_hash`].
pub fn existing_password_hash(users_database_yaml: &[u8], username: &str) -> Option<String> {
    let doc: serde_yaml::Value = serde_yaml::from_slice(users_database_yaml).ok()?;
    let h = doc.get("users")?.get(username)?.get("password")?.as_str()?;
    h.starts_with("$argon2id$").then(|| h.to_string())
}
