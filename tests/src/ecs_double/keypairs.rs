//! SSH key pairs of the ECS API (2014-05-26) as the official provider drives them: ImportKeyPair (an OpenSSH
//! public key; the fingerprint is the MD5 of its blob, as the API reports it), DescribeKeyPairs by name (an
//! unknown name is an empty list), DeleteKeyPairs (unknown names ignored) and their tags. There is no call that
//! changes a key pair's public key.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};

use super::state::{required, ApiError};
use super::tags::{apply_tags, resource_ids, tag_list, tags_of};

#[derive(Debug, Clone)]
struct KeyPair {
    name: String,
    region: String,
    public_key: String,
    fingerprint: String,
    created: String,
    tags: BTreeMap<String, String>,
}

/// Key pairs behind the server.
#[derive(Default)]
pub(crate) struct KeyPairs {
    pairs: BTreeMap<(String, String), KeyPair>,
}

/// The MD5 fingerprint (colon-less hex) of an OpenSSH public key line, if it is one.
fn fingerprint(public_key: &str) -> Option<String> {
    let mut parts = public_key.split_whitespace();
    let kind = parts.next()?;
    if !matches!(
        kind,
        "ssh-rsa"
            | "ssh-ed25519"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
    ) {
        return None;
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(parts.next()?)
        .ok()?;
    let name_len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    if blob.get(4..4 + name_len)? != kind.as_bytes() {
        return None;
    }
    Some(format!("{:x}", md5::compute(&blob)))
}

impl KeyPairs {
    /// Runs one key-pair action; `None` when the action is not one of these.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
        now: String,
    ) -> Option<Result<Value, ApiError>> {
        Some(match action {
            "ImportKeyPair" => self.import(p, now),
            "DescribeKeyPairs" => self.describe(p),
            "DeleteKeyPairs" => self.delete(p),
            "TagResources" | "UntagResources"
                if p.get("ResourceType").map(String::as_str) == Some("keypair") =>
            {
                self.tag(action, p)
            }
            _ => return None,
        })
    }

    fn import(&mut self, p: &BTreeMap<String, String>, now: String) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let name = required(p, "KeyPairName")?;
        let public_key = required(p, "PublicKeyBody")?;
        let fingerprint = fingerprint(&public_key).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidPublicKeyBody.Malformed",
                "The specified public key body is malformed.",
            )
        })?;
        let key = (region.clone(), name.clone());
        if self.pairs.contains_key(&key) {
            return Err(ApiError::new(
                400,
                "InvalidKeyPair.Duplicate",
                "The specified key pair name already exists.",
            ));
        }
        let out = json!({ "KeyPairName": name, "KeyPairFingerPrint": fingerprint });
        self.pairs.insert(
            key,
            KeyPair {
                name,
                region,
                public_key,
                fingerprint,
                created: now,
                tags: tags_of(p)?,
            },
        );
        Ok(out)
    }

    fn describe(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let items: Vec<Value> = self
            .pairs
            .values()
            .filter(|k| k.region == region)
            .filter(|k| p.get("KeyPairName").is_none_or(|n| *n == k.name))
            .map(|k| {
                json!({
                    "KeyPairName": k.name, "KeyPairFingerPrint": k.fingerprint, "CreationTime": k.created,
                    "ResourceGroupId": "", "Tags": tag_list(&k.tags),
                })
            })
            .collect();
        Ok(
            json!({ "TotalCount": items.len(), "PageNumber": 1, "PageSize": 10, "KeyPairs": { "KeyPair": items } }),
        )
    }

    fn delete(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let raw = required(p, "KeyPairNames")?;
        let names: Vec<String> =
            serde_json::from_str(&raw).map_err(|_| ApiError::invalid("KeyPairNames"))?;
        for n in names {
            self.pairs.remove(&(region.clone(), n));
        }
        Ok(json!({}))
    }

    fn tag(&mut self, action: &str, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        for id in resource_ids(p)? {
            let k = self.pairs.get_mut(&(region.clone(), id)).ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidKeyPair.NotFound",
                    "The specified key pair does not exist.",
                )
            })?;
            apply_tags(action, p, &mut k.tags)?;
        }
        Ok(json!({}))
    }

    /// The public key of `name` in `region`.
    pub(crate) fn public_key(&self, region: &str, name: &str) -> Option<String> {
        self.pairs
            .get(&(region.to_string(), name.to_string()))
            .map(|k| k.public_key.clone())
    }

    /// Whether `name` exists in `region`.
    pub(crate) fn exists(&self, region: &str, name: &str) -> bool {
        self.pairs
            .contains_key(&(region.to_string(), name.to_string()))
    }

    /// (name, public key) of every key pair.
    pub(crate) fn list(&self) -> Vec<(String, String)> {
        self.pairs
            .values()
            .map(|k| (k.name.clone(), k.public_key.clone()))
            .collect()
    }
}
