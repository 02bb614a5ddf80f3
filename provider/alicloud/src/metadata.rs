//! The ECS instance metadata service: instance id, region and the RAM role's STS credentials (hardened mode).

use std::time::Duration;

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use url::Url;

use crate::credentials::Credentials;
use crate::error::Error;

/// Where the metadata service answers on every ECS instance.
pub const METADATA_URL: &str = "http://100.100.100.200";
/// Seconds a hardened-mode session token lives (documented range 1..=21600).
const TOKEN_TTL_SECONDS: u32 = 21600;

/// A role's temporary credentials and when they stop working.
#[derive(Debug, Clone)]
pub struct RoleCredentials {
    pub role: String,
    pub credentials: Credentials,
    pub expiration: OffsetDateTime,
}

impl RoleCredentials {
    /// True when they expire within `margin` of `now` (time to fetch new ones).
    pub fn expires_within(&self, now: OffsetDateTime, margin: Duration) -> bool {
        self.expiration - now <= margin
    }
}

/// The metadata service's answer for a role (`/latest/meta-data/ram/security-credentials/<role>`).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleDocument {
    #[serde(default)]
    code: String,
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

/// A client of the metadata service.
#[derive(Debug, Clone)]
pub struct InstanceMetadata {
    http: reqwest::Client,
    base: Url,
}

impl InstanceMetadata {
    /// `base` is [`METADATA_URL`] on ECS.
    pub fn new(base: &str) -> Result<Self, Error> {
        let base = Url::parse(base)
            .map_err(|e| Error::Config(format!("metadata URL {base:?} is not a URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        self.base
            .join(path)
            .map_err(|e| Error::Config(format!("metadata path {path:?}: {e}")))
    }

    /// A hardened-mode session token, or None where the service does not issue them (normal mode only).
    async fn token(&self) -> Option<String> {
        let resp = self
            .http
            .put(self.url("/latest/api/token").ok()?)
            .header(
                "X-aliyun-ecs-metadata-token-ttl-seconds",
                TOKEN_TTL_SECONDS.to_string(),
            )
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().await.ok().filter(|t| !t.trim().is_empty())
    }

    /// The text at `path` (`/latest/meta-data/...`).
    async fn get(&self, path: &str) -> Result<String, Error> {
        let action = format!("metadata {path}");
        let mut req = self.http.get(self.url(path)?);
        if let Some(token) = self.token().await {
            req = req.header("X-aliyun-ecs-metadata-token", token.trim());
        }
        let resp = req.send().await.map_err(|source| Error::Transport {
            action: action.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|source| Error::Transport {
            action: action.clone(),
            source,
        })?;
        if status == 404 {
            return Err(Error::NotFound(format!(
                "the instance metadata service has no {path}"
            )));
        }
        if !(200..300).contains(&status) {
            return Err(Error::Http {
                action,
                status,
                body: body.chars().take(200).collect(),
            });
        }
        Ok(body.trim().to_string())
    }

    pub async fn instance_id(&self) -> Result<String, Error> {
        self.get("/latest/meta-data/instance-id").await
    }

    pub async fn region_id(&self) -> Result<String, Error> {
        self.get("/latest/meta-data/region-id").await
    }

    /// The RAM role attached to the instance (the first the service lists); an error when there is none.
    pub async fn role_name(&self) -> Result<String, Error> {
        let list = self
            .get("/latest/meta-data/ram/security-credentials/")
            .await?;
        list.lines()
            .map(|l| l.trim().trim_end_matches('/'))
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::NotFound("no RAM role is attached to this instance".to_string()))
    }

    /// The role's current STS credentials.
    pub async fn role_credentials(&self, role: &str) -> Result<RoleCredentials, Error> {
        let path = format!("/latest/meta-data/ram/security-credentials/{role}");
        let text = self.get(&path).await?;
        parse_role_document(role, &text)
    }
}

fn parse_role_document(role: &str, text: &str) -> Result<RoleCredentials, Error> {
    let action = format!("metadata role {role}");
    let doc: RoleDocument = serde_json::from_str(text).map_err(|e| Error::Decode {
        action: action.clone(),
        message: e.to_string(),
    })?;
    if !doc.code.is_empty() && doc.code != "Success" {
        return Err(Error::Decode {
            action,
            message: format!("Code {:?}", doc.code),
        });
    }
    let expiration =
        OffsetDateTime::parse(&doc.expiration, &Rfc3339).map_err(|e| Error::Decode {
            action,
            message: format!("Expiration {:?}: {e}", doc.expiration),
        })?;
    Ok(RoleCredentials {
        role: role.to_string(),
        credentials: Credentials::new(doc.access_key_id, doc.access_key_secret)
            .with_security_token(doc.security_token),
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_document_gives_credentials_with_the_token_and_expiry() {
        let c = parse_role_document(
            "cloudcode-idle",
            r#"{"AccessKeyId":"STS.abc","AccessKeySecret":"sec","Expiration":"2026-12-04T18:00:00Z",
                "SecurityToken":"tok","LastUpdated":"2026-12-04T12:00:00Z","Code":"Success"}"#,
        )
        .unwrap();
        assert_eq!(c.credentials.access_key_id(), "STS.abc");
        assert_eq!(
            c.credentials.security_token().map(|t| t.expose()),
            Some("tok")
        );
        let now = OffsetDateTime::parse("2026-12-04T17:58:00Z", &Rfc3339).unwrap();
        assert!(c.expires_within(now, Duration::from_secs(300)));
        assert!(!c.expires_within(now, Duration::from_secs(60)));
    }

    #[test]
    fn a_failed_role_document_is_an_error_not_empty_credentials() {
        let err = parse_role_document(
            "r",
            r#"{"AccessKeyId":"","AccessKeySecret":"","Expiration":"2026-12-04T18:00:00Z","SecurityToken":"","Code":"Failed"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("Failed"), "{err}");
        assert!(parse_role_document("r", "not json").is_err());
    }
}
