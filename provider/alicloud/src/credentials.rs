//! AccessKey credentials: explicit values with fallback to the environment, and a `Secret`
//! wrapper whose Debug/Display never reveal the value.

use std::fmt;

use crate::error::Error;

/// A secret string (AccessKey secret, STS token). Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Environment variables read, in order of preference (the first non-empty one wins).
pub const ENV_ACCESS_KEY_ID: [&str; 2] = ["ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY"];
pub const ENV_ACCESS_KEY_SECRET: [&str; 2] =
    ["ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY"];
pub const ENV_SECURITY_TOKEN: [&str; 2] =
    ["ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN"];

/// An AccessKey pair, optionally with an STS security token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: Secret,
    security_token: Option<Secret>,
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: Secret::new(access_key_secret),
            security_token: None,
        }
    }

    /// Adds an STS token (sent as the signed `x-acs-security-token` header).
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(Secret::new(token));
        self
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn access_key_secret(&self) -> &Secret {
        &self.access_key_secret
    }

    pub fn security_token(&self) -> Option<&Secret> {
        self.security_token.as_ref()
    }

    /// Resolves credentials from the process environment only.
    pub fn from_env() -> Result<Self, Error> {
        Self::resolve(None, None, None, |name| std::env::var(name).ok())
    }

    /// Resolves each part from the explicit value (provider block) if non-empty, else from `env`
    /// (`ALIBABA_CLOUD_*` first, then the older `ALICLOUD_*` names).
    pub fn resolve(
        access_key: Option<String>,
        secret_key: Option<String>,
        security_token: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let pick = |explicit: Option<String>, names: &[&str]| -> Option<String> {
            non_empty(explicit).or_else(|| names.iter().find_map(|n| non_empty(env(n))))
        };
        let id = pick(access_key, &ENV_ACCESS_KEY_ID).ok_or(Error::MissingCredentials {
            what: "access key id",
            env: ENV_ACCESS_KEY_ID.join(" or "),
        })?;
        let secret = pick(secret_key, &ENV_ACCESS_KEY_SECRET).ok_or(Error::MissingCredentials {
            what: "access key secret",
            env: ENV_ACCESS_KEY_SECRET.join(" or "),
        })?;
        let creds = Self::new(id, secret);
        Ok(match pick(security_token, &ENV_SECURITY_TOKEN) {
            Some(token) => creds.with_security_token(token),
            None => creds,
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn explicit_values_win_over_environment() {
        let c = Credentials::resolve(
            Some("AK".into()),
            Some("SK".into()),
            None,
            env(&[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "envAK"),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envSK"),
            ]),
        )
        .unwrap();
        assert_eq!(c.access_key_id(), "AK");
        assert_eq!(c.access_key_secret().expose(), "SK");
        assert!(c.security_token().is_none());
    }

    #[test]
    fn new_env_names_preferred_over_old_alicloud_names() {
        let c = Credentials::resolve(
            None,
            None,
            None,
            env(&[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "new"),
                ("ALICLOUD_ACCESS_KEY", "old"),
                ("ALICLOUD_SECRET_KEY", "oldsecret"),
                ("ALICLOUD_SECURITY_TOKEN", "tok"),
            ]),
        )
        .unwrap();
        assert_eq!(c.access_key_id(), "new");
        assert_eq!(c.access_key_secret().expose(), "oldsecret");
        assert_eq!(c.security_token().map(Secret::expose), Some("tok"));
    }

    #[test]
    fn empty_explicit_value_falls_back_to_environment() {
        let c = Credentials::resolve(
            Some(String::new()),
            None,
            None,
            env(&[("ALICLOUD_ACCESS_KEY", "old"), ("ALICLOUD_SECRET_KEY", "s")]),
        )
        .unwrap();
        assert_eq!(c.access_key_id(), "old");
    }

    #[test]
    fn missing_secret_names_the_environment_variables() {
        let err = Credentials::resolve(Some("AK".into()), None, None, env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), "{text}");
        assert!(text.contains("ALICLOUD_SECRET_KEY"), "{text}");
    }

    #[test]
    fn debug_output_never_contains_the_secret_or_token() {
        let c =
            Credentials::new("AKID", "very-secret-value").with_security_token("sts-token-value");
        let dbg = format!("{c:?}");
        assert!(dbg.contains("AKID"));
        assert!(!dbg.contains("very-secret-value"), "{dbg}");
        assert!(!dbg.contains("sts-token-value"), "{dbg}");
    }
}
