//! Tags as the ECS API takes them: `Tag.N.Key`/`Tag.N.Value` on create, TagResources / UntagResources
//! (`ResourceId.N`, `TagKey.N` or `All`), and `Tags.Tag[]{TagKey,TagValue}` in answers.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::ApiError;

/// `Tag.N.Key` / `Tag.N.Value` pairs (N from 1, at most 20).
pub(crate) fn tags_of(p: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut tags = BTreeMap::new();
    for n in 1..=21 {
        let Some(key) = p.get(&format!("Tag.{n}.Key")) else {
            break;
        };
        if n > 20 {
            return Err(ApiError::new(
                400,
                "InvalidTagCount",
                "The number of tags exceeds 20.",
            ));
        }
        tags.insert(
            key.clone(),
            p.get(&format!("Tag.{n}.Value"))
                .cloned()
                .unwrap_or_default(),
        );
    }
    Ok(tags)
}

pub(crate) fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    json!({ "Tag": tags.iter().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect::<Vec<_>>() })
}

/// `ResourceId.N` of a TagResources / UntagResources request (at least one).
pub(crate) fn resource_ids(p: &BTreeMap<String, String>) -> Result<Vec<String>, ApiError> {
    let ids: Vec<String> = (1..=50)
        .map_while(|n| p.get(&format!("ResourceId.{n}")).cloned())
        .collect();
    if ids.is_empty() {
        return Err(ApiError::missing("ResourceId.1"));
    }
    Ok(ids)
}

/// Applies a TagResources (add `Tag.N`) or UntagResources (remove `TagKey.N`, or `All`) request to `tags`.
pub(crate) fn apply_tags(
    action: &str,
    p: &BTreeMap<String, String>,
    tags: &mut BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if action == "TagResources" {
        tags.extend(tags_of(p)?);
    } else if p.get("All").map(String::as_str) == Some("true") {
        tags.clear();
    } else {
        for n in 1..=20 {
            let Some(k) = p.get(&format!("TagKey.{n}")) else {
                break;
            };
            tags.remove(k);
        }
    }
    Ok(())
}
