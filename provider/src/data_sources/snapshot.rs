//! `cloudcode_snapshot`: the newest completed snapshot of a stack, for the next deploy to restore, and whether
//! this provider version can restore it (same major version as the one that wrote it).
//!
//! Read top-down: schema, compatibility rule, read, state struct.

use async_trait::async_trait;
use cloudcode_alicloud::Lifecycle;
use cloudcode_tfplugin::framework::{Attribute, Block, Ctx, DataSource, Diagnostics, Schema};
use serde::{Deserialize, Serialize};

use crate::provider::{cancellable, ecs_access, report_ecs, SharedEcs};
use crate::resources::snapshot_backup::{rule_stack_name, VERSION};

pub struct SnapshotData {
    ecs: SharedEcs,
}

impl SnapshotData {
    pub fn new(ecs: SharedEcs) -> Self {
        Self { ecs }
    }
}

fn schema() -> Schema {
    let s = Attribute::string;
    Schema::new(
        0,
        Block::new(
            "The newest completed ECS snapshot of a stack's system disk (made by `cloudcode_snapshot_backup` on \
             destroy), for a deploy that restores it. No snapshot (a fresh deploy) gives a null `id`.",
        )
        .attribute(s("stack_name").required().validate_str(rule_stack_name).description(
            "The stack whose snapshots (tag `cloudcode:stack`) are searched.",
        ))
        .attribute(Attribute::bool("allow_incompatible").optional().description(
            "Return a snapshot written by a different major version of cloudcode instead of failing. Default \
             `false`: restoring across a major version may break the devbox, so it must be chosen explicitly.",
        ))
        .attribute(s("id").computed().description(
            "Snapshot id (`s-...`), or null when the stack has no completed snapshot.",
        ))
        .attribute(Attribute::number("size").computed().description(
            "Size of the snapshotted disk in GiB (a restored system disk must be at least this large).",
        ))
        .attribute(s("created_at").computed().description("Creation time, RFC 3339 UTC (e.g. `2026-02-22T10:00:00Z`)."))
        .attribute(s("version").computed().description(
            "cloudcode version that wrote the snapshot (tag `cloudcode:version`), or null when untagged.",
        ))
        .attribute(Attribute::bool("compatible").computed().description(
            "Whether `version` has the same major version as this provider. Null when there is no snapshot.",
        )),
    )
}

/// Same major version (semver) as this provider; an unknown or unparseable version is not compatible.
pub fn compatible(snapshot_version: Option<&str>, provider_version: &str) -> bool {
    let major = |v: &str| {
        semver::Version::parse(v.trim().trim_start_matches('v'))
            .ok()
            .map(|v| v.major)
    };
    match (snapshot_version.and_then(major), major(provider_version)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[async_trait]
impl DataSource for SnapshotData {
    type State = SnapshotState;

    fn type_name(&self) -> &'static str {
        "cloudcode_snapshot"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn read(
        &self,
        config: SnapshotState,
        ctx: &Ctx,
        diags: &mut Diagnostics,
    ) -> Option<SnapshotState> {
        let access = ecs_access(&self.ecs, diags)?;
        let life = Lifecycle::new(&access.client, access.poll.clone());
        let newest = match cancellable(ctx, life.newest_snapshot(&config.stack_name)).await {
            Ok(n) => n,
            Err(e) => {
                report_ecs(
                    diags,
                    format!("Cannot list the snapshots of stack {}", config.stack_name),
                    &e,
                );
                return None;
            }
        };
        let mut state = config;
        let Some(snap) = newest else {
            tracing::info!(stack = %state.stack_name, "no snapshot: a fresh deploy");
            return Some(state);
        };
        let ok = compatible(snap.version.as_deref(), VERSION);
        if !ok && !state.allow_incompatible.unwrap_or(false) {
            diags.error(
                format!(
                    "Snapshot {} of stack {} was written by an incompatible cloudcode version",
                    snap.snapshot_id, state.stack_name
                ),
                format!(
                    "It was written by cloudcode {}, and this provider is {VERSION}; a different major version \
                     may not run on the restored disk. Set allow_incompatible = true to restore it anyway, or \
                     deploy fresh (without restoring the snapshot).",
                    snap.version.as_deref().unwrap_or("(unknown version: no cloudcode:version tag)")
                ),
            );
            return None;
        }
        state.id = Some(snap.snapshot_id);
        state.size = i64::try_from(snap.size_gib).ok();
        state.created_at = Some(snap.created_at);
        state.version = snap.version;
        state.compatible = Some(ok);
        Some(state)
    }
}

/// `cloudcode_snapshot` as Rust sees it (absent = null). Holds no secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotState {
    pub stack_name: String,
    pub allow_incompatible: Option<bool>,
    pub id: Option<String>,
    pub size: Option<i64>,
    pub created_at: Option<String>,
    pub version: Option<String>,
    pub compatible: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_version_is_compatible() {
        assert!(compatible(Some("0.1.0"), "0.3.2"));
        assert!(compatible(Some("v1.2.0"), "1.0.0"));
        assert!(!compatible(Some("1.0.0"), "0.9.0"));
        assert!(!compatible(Some("2.0.0"), "1.9.9"));
        assert!(!compatible(None, "0.1.0"));
        assert!(!compatible(Some("garbage"), "0.1.0"));
    }
}
