//! `cloudcode_snapshot_backup`: keeps a stack's system disk as an ECS snapshot across destroy and deploy.
//!
//! Read top-down: schema (every attribute described), validation rules, plan, then create/read/update/delete
//! and the state struct at the bottom. The ECS work itself is `cloudcode_alicloud::Lifecycle`; this file maps
//! it onto Terraform's life cycle: Create and Update prune, Read only describes (plans run in pull-request
//! pipelines), Delete stops the instance if asked, snapshots the system disk, waits, then prunes.

use async_trait::async_trait;
use cloudcode_alicloud::{DestroySnapshotRequest, Ecs, Lifecycle, Progress, PruneOutcome};
use cloudcode_tfplugin::framework::{
    ApplyRequest, AttrPath, Attribute, Block, Ctx, DeleteRequest, Diagnostics, PlanRequest,
    ReadRequest, Resource, Schema,
};
use cloudcode_tfplugin::value::Value;
use serde::{Deserialize, Serialize};

use crate::provider::{cancellable, ecs_access, ecs_detail, report_ecs, EcsAccess, SharedEcs};

/// The version recorded in the `cloudcode:version` tag of every snapshot this provider makes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Upper bound of `keep` (ECS allows at most 256 manual snapshots per disk; more is surely a typo).
const MAX_KEEP: i64 = 100;

pub struct SnapshotBackup {
    ecs: SharedEcs,
}

impl SnapshotBackup {
    pub fn new(ecs: SharedEcs) -> Self {
        Self { ecs }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------------------

fn schema() -> Schema {
    let s = Attribute::string;
    let b = Attribute::bool;
    Schema::new(
        0,
        Block::new(
            "Keeps the system disk of a cloudcode instance as an Alibaba Cloud ECS snapshot: on destroy it stops \
             the instance (if asked), snapshots the system disk, waits until the snapshot is complete and deletes \
             the stack's older snapshots beyond `keep`. The `cloudcode_snapshot` data source finds the newest one \
             for the next deploy.",
        )
        .attribute(s("instance_id").required().requires_replace().validate_str(rule_instance_id).description(
            "ECS instance whose system disk is snapshotted, e.g. `alicloud_instance.box.id`. Changing it replaces \
             this resource, which snapshots the old instance first.",
        ))
        .attribute(s("stack_name").required().requires_replace().validate_str(rule_stack_name).description(
            "Name of the stack: snapshots are tagged `cloudcode:stack = <stack_name>`, and only this stack's \
             snapshots are ever pruned. 1–63 characters: lower-case letters, digits and `-`, starting with a \
             letter or digit.",
        ))
        .attribute(Attribute::number("keep").default(Value::int(1)).validate_i64(rule_keep).description(
            "How many of the stack's completed snapshots to keep (the newest ones; 1–100). Older ones are deleted \
             on create, update and after the snapshot on destroy. Default `1`.",
        ))
        .attribute(b("snapshot_on_destroy").default(Value::bool(true)).description(
            "Snapshot the system disk when this resource is destroyed; a failed snapshot stops the destroy. Set \
             `false` and apply *before* destroying to skip it. Default `true`.",
        ))
        .attribute(b("stop_before_snapshot").default(Value::bool(true)).description(
            "Stop the instance (standard stop mode, `KeepCharging`) before the snapshot so the file system is \
             consistent. Default `true`.",
        ))
        .attribute(s("id").computed().use_state_for_unknown().description("`<stack_name>/<instance_id>`."))
        .attribute(s("latest_snapshot_id").computed().use_state_for_unknown().description(
            "The stack's newest completed snapshot when this resource was last created, updated or read, or null \
             when there is none. The snapshot made on destroy is reported in the log and by `cloudcode_snapshot`.",
        )),
    )
}

// ---------------------------------------------------------------------------------------------------------
// Validation rules
// ---------------------------------------------------------------------------------------------------------

/// ECS instance ids: `i-` followed by lower-case letters and digits (e.g. `i-bp1g6zv0ce8oghu7kabc`).
pub fn rule_instance_id(v: &str) -> Result<(), String> {
    match v.strip_prefix("i-") {
        Some(rest)
            if (1..=40).contains(&rest.len())
                && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{v:?} is not an ECS instance id: expected \"i-\" followed by lower-case letters and digits"
        )),
    }
}

/// Stack names: 1–63 of `[a-z0-9-]`, starting with a letter or digit (usable in tags, names and DNS labels).
pub fn rule_stack_name(v: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a valid stack name: use 1-63 lower-case letters, digits and '-', starting with a \
             letter or digit"
        ))
    }
}

fn rule_keep(v: i64) -> Result<(), String> {
    if (1..=MAX_KEEP).contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "must be between 1 and {MAX_KEEP} (the snapshot made on destroy is always kept), got {v}"
        ))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Plan
// ---------------------------------------------------------------------------------------------------------

fn backup_id(s: &SnapshotBackupState) -> String {
    format!("{}/{}", s.stack_name, s.instance_id)
}

fn plan(req: &mut PlanRequest<SnapshotBackupState>) {
    if !req.config.is_unknown("instance_id") && !req.config.is_unknown("stack_name") {
        let p = &mut req.planned;
        p.value.id = Some(backup_id(&p.value));
        p.unknown.remove("id");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Create / Read / Update / Delete
// ---------------------------------------------------------------------------------------------------------

fn keep_of(s: &SnapshotBackupState) -> usize {
    usize::try_from(s.keep.unwrap_or(1).clamp(1, MAX_KEEP)).unwrap_or(1)
}

/// Logs life-cycle progress (Terraform shows it under `TF_LOG=info`).
fn log_progress(p: Progress) {
    match p {
        Progress::StoppingInstance { instance_id } => {
            tracing::info!(%instance_id, "stopping the instance before the snapshot")
        }
        Progress::InstanceStopped { instance_id } => {
            tracing::info!(%instance_id, "instance stopped")
        }
        Progress::SnapshotStarted {
            snapshot_id,
            disk_id,
        } => tracing::info!(%snapshot_id, %disk_id, "snapshot of the system disk started"),
        Progress::SnapshotProgress {
            snapshot_id,
            percent,
        } => tracing::info!(%snapshot_id, percent, "snapshot progress {percent}%"),
        Progress::SnapshotAccomplished { snapshot_id } => {
            tracing::info!(%snapshot_id, "snapshot accomplished")
        }
        Progress::Pruned { snapshot_id } => {
            tracing::info!(%snapshot_id, "pruned an older snapshot")
        }
    }
}

fn warn_all(outcome: &PruneOutcome, diags: &mut Diagnostics) {
    for w in &outcome.warnings {
        diags.warning(w.summary.clone(), w.detail.clone());
    }
}

/// Prunes the stack beyond `keep` and records its newest snapshot in `state`. `None` after an error.
async fn prune_and_refresh(
    access: &EcsAccess,
    ctx: &Ctx,
    mut state: SnapshotBackupState,
    diags: &mut Diagnostics,
) -> Option<SnapshotBackupState> {
    let life = Lifecycle::new(&access.client, access.poll.clone());
    let instance_id = state.instance_id.clone();
    match cancellable(ctx, access.client.describe_instance(&instance_id)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            diags.error_at(
                AttrPath::attr("instance_id"),
                "ECS instance not found",
                format!(
                    "Instance {instance_id} does not exist in region {}.",
                    access.client.region()
                ),
            );
            return None;
        }
        Err(e) => {
            report_ecs(diags, format!("Cannot look up instance {instance_id}"), &e);
            return None;
        }
    }
    let stack = state.stack_name.clone();
    let prune_then_newest = async {
        let outcome = life.prune(&stack, keep_of(&state)).await?;
        Ok((outcome, life.newest_snapshot(&stack).await?))
    };
    match cancellable(ctx, prune_then_newest).await {
        Ok((outcome, newest)) => {
            for snapshot_id in &outcome.deleted {
                tracing::info!(%snapshot_id, %stack, "pruned an older snapshot");
            }
            warn_all(&outcome, diags);
            state.latest_snapshot_id = newest.map(|s| s.snapshot_id);
        }
        Err(e) => {
            report_ecs(
                diags,
                format!("Cannot prune the snapshots of stack {stack}"),
                &e,
            );
            return None;
        }
    }
    state.id = Some(backup_id(&state));
    Some(state)
}

#[async_trait]
impl Resource for SnapshotBackup {
    type State = SnapshotBackupState;

    fn type_name(&self) -> &'static str {
        "cloudcode_snapshot_backup"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn plan(&self, req: &mut PlanRequest<SnapshotBackupState>, _diags: &mut Diagnostics) {
        plan(req);
    }

    async fn create(
        &self,
        req: &mut ApplyRequest<SnapshotBackupState>,
        diags: &mut Diagnostics,
    ) -> Option<SnapshotBackupState> {
        let access = ecs_access(&self.ecs, diags)?;
        prune_and_refresh(&access, &req.ctx, req.planned.clone(), diags).await
    }

    /// Describe calls only: nothing is stopped, created or deleted while planning.
    async fn read(
        &self,
        req: &mut ReadRequest<SnapshotBackupState>,
        diags: &mut Diagnostics,
    ) -> Option<SnapshotBackupState> {
        let mut state = req.state.clone();
        let Some(access) = ecs_access(&self.ecs, diags) else {
            return Some(state);
        };
        let instance_id = state.instance_id.clone();
        match cancellable(&req.ctx, access.client.describe_instance(&instance_id)).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::warn!(%instance_id, "instance is gone; removing the snapshot backup from state");
                return None;
            }
            Err(e) => {
                report_ecs(diags, format!("Cannot look up instance {instance_id}"), &e);
                return Some(state);
            }
        }
        let life = Lifecycle::new(&access.client, access.poll.clone());
        match cancellable(&req.ctx, life.newest_snapshot(&state.stack_name)).await {
            Ok(newest) => state.latest_snapshot_id = newest.map(|s| s.snapshot_id),
            Err(e) => report_ecs(
                diags,
                format!("Cannot list the snapshots of stack {}", state.stack_name),
                &e,
            ),
        }
        Some(state)
    }

    async fn update(
        &self,
        req: &mut ApplyRequest<SnapshotBackupState>,
        diags: &mut Diagnostics,
    ) -> Option<SnapshotBackupState> {
        let access = ecs_access(&self.ecs, diags)?;
        prune_and_refresh(&access, &req.ctx, req.planned.clone(), diags).await
    }

    async fn delete(&self, req: &mut DeleteRequest<SnapshotBackupState>, diags: &mut Diagnostics) {
        let prior = &req.prior;
        if !prior.snapshot_on_destroy.unwrap_or(true) {
            tracing::info!(stack = %prior.stack_name, "snapshot_on_destroy = false: no snapshot taken");
            return;
        }
        let Some(access) = ecs_access(&self.ecs, diags) else {
            return;
        };
        let request = DestroySnapshotRequest {
            instance_id: prior.instance_id.clone(),
            stack_name: prior.stack_name.clone(),
            version: VERSION.to_string(),
            stop_first: prior.stop_before_snapshot.unwrap_or(true),
            keep: keep_of(prior),
        };
        let life = Lifecycle::new(&access.client, access.poll.clone());
        tracing::info!(
            instance_id = %request.instance_id,
            stack = %request.stack_name,
            "snapshotting the system disk before destroy"
        );
        match cancellable(&req.ctx, life.snapshot_on_destroy(&request, &log_progress)).await {
            Ok(outcome) => {
                tracing::info!(
                    snapshot_id = %outcome.snapshot.snapshot_id,
                    pruned = outcome.prune.deleted.len(),
                    "snapshot kept for the next deploy"
                );
                warn_all(&outcome.prune, diags);
            }
            Err(e) => diags.error(
                format!(
                    "Snapshot of instance {} failed: destroy stopped to keep the data",
                    request.instance_id
                ),
                format!(
                    "{}\n\nNothing was deleted and this resource stays in state, so the next destroy tries again. \
                     The instance may have been left stopped (start it to use it meanwhile). To destroy without a \
                     snapshot, set snapshot_on_destroy = false, apply, then destroy.",
                    ecs_detail(&e)
                ),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------------

/// `cloudcode_snapshot_backup` as Rust sees it. Absent means null or unknown (see the framework's typed
/// bridge). Holds no secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotBackupState {
    pub instance_id: String,
    pub stack_name: String,
    pub keep: Option<i64>,
    pub snapshot_on_destroy: Option<bool>,
    pub stop_before_snapshot: Option<bool>,
    pub id: Option<String>,
    pub latest_snapshot_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_must_look_like_ecs_ids() {
        assert!(rule_instance_id("i-bp1g6zv0ce8oghu7kabc").is_ok());
        for bad in ["", "i-", "bp1g6zv0", "i-BP1", "i-bp1/..", "d-bp1", "i-bp 1"] {
            assert!(rule_instance_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stack_names_are_dns_label_like() {
        for ok in ["dev", "my-box-2", "0x"] {
            assert!(rule_stack_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-dev",
            "Dev",
            "dev box",
            "dev_box",
            "dev.box",
            &"a".repeat(64),
        ] {
            assert!(rule_stack_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keep_must_be_at_least_one() {
        assert!(rule_keep(1).is_ok());
        assert!(rule_keep(0).is_err());
        assert!(rule_keep(-3).is_err());
        assert!(rule_keep(MAX_KEEP + 1).is_err());
        let s = SnapshotBackupState {
            keep: Some(0),
            ..Default::default()
        };
        assert_eq!(keep_of(&s), 1);
    }
}
