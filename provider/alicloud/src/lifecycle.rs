//! The snapshot life cycle the `cloudcode_snapshot_backup` resource and `cloudcode_snapshot` data
//! source use: snapshot the system disk on destroy, prune a stack's older snapshots, find the
//! newest one. Written against the [`Ecs`] trait; warnings are returned, never printed.

use std::time::Duration;

use crate::error::Error;
use crate::model::{CreateSnapshotRequest, DiskType, Ecs, Snapshot, SnapshotFilter, StoppedMode};

/// Tag naming the stack a snapshot belongs to.
pub const TAG_STACK: &str = "cloudcode:stack";
/// Tag recording the cloudcode version that wrote the snapshot.
pub const TAG_VERSION: &str = "cloudcode:version";
/// The error code ECS returns when a snapshot still backs a custom image.
pub const SNAPSHOT_CREATED_IMAGE: &str = "SnapshotCreatedImage";

/// Poll intervals and upper bounds of the waits.
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    pub instance_interval: Duration,
    pub instance_timeout: Duration,
    pub snapshot_interval: Duration,
    pub snapshot_timeout: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            instance_interval: Duration::from_secs(3),
            instance_timeout: Duration::from_secs(10 * 60),
            snapshot_interval: Duration::from_secs(5),
            snapshot_timeout: Duration::from_secs(60 * 60),
        }
    }
}

impl PollConfig {
    /// Millisecond polling for tests against the local double.
    pub fn fast() -> Self {
        Self {
            instance_interval: Duration::from_millis(2),
            instance_timeout: Duration::from_secs(10),
            snapshot_interval: Duration::from_millis(2),
            snapshot_timeout: Duration::from_secs(10),
        }
    }
}

/// Progress reported while `snapshot_on_destroy` runs (the provider logs these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    StoppingInstance {
        instance_id: String,
    },
    InstanceStopped {
        instance_id: String,
    },
    SnapshotStarted {
        snapshot_id: String,
        disk_id: String,
    },
    SnapshotProgress {
        snapshot_id: String,
        percent: u8,
    },
    SnapshotAccomplished {
        snapshot_id: String,
    },
    Pruned {
        snapshot_id: String,
    },
}

/// Something the user should know that did not stop the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub summary: String,
    pub detail: String,
}

/// What a prune run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    pub deleted: Vec<String>,
    /// Snapshots kept back because an image still uses them (retried on a later run).
    pub skipped: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// Result of `snapshot_on_destroy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestroySnapshotOutcome {
    pub snapshot: Snapshot,
    pub prune: PruneOutcome,
}

/// Parameters of `snapshot_on_destroy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestroySnapshotRequest {
    pub instance_id: String,
    pub stack_name: String,
    /// cloudcode version recorded in the `cloudcode:version` tag.
    pub version: String,
    /// Stop the instance first (consistent file system) and wait for `Stopped`.
    pub stop_first: bool,
    /// How many of the stack's snapshots to keep (the new one counts; at least 1 is kept).
    pub keep: usize,
}

/// The newest accomplished snapshot of a stack, as the data source exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSnapshot {
    pub snapshot_id: String,
    /// GiB of the source disk.
    pub size_gib: u64,
    pub created_at: String,
    pub version: Option<String>,
}

/// Snapshot life-cycle operations over any [`Ecs`] implementation.
pub struct Lifecycle<'a> {
    ecs: &'a dyn Ecs,
    poll: PollConfig,
}

impl<'a> Lifecycle<'a> {
    pub fn new(ecs: &'a dyn Ecs, poll: PollConfig) -> Self {
        Self { ecs, poll }
    }

    /// Stop (if asked) → snapshot the system disk with stack/version tags → wait for
    /// `accomplished` → prune the stack beyond `keep`. Any failure before the snapshot is
    /// accomplished is an error (the caller stops the destroy); prune problems are warnings.
    pub async fn snapshot_on_destroy(
        &self,
        request: &DestroySnapshotRequest,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<DestroySnapshotOutcome, Error> {
        let instance_id = request.instance_id.as_str();
        if request.stop_first {
            self.stop_and_wait(instance_id, progress).await?;
        }
        let disk = self
            .ecs
            .describe_disks(instance_id, DiskType::System)
            .await?
            .into_iter()
            .find(|d| d.disk_type == "system")
            .ok_or_else(|| Error::NotFound(format!("instance {instance_id} has no system disk")))?;
        let snapshot_id = self
            .ecs
            .create_snapshot(&CreateSnapshotRequest {
                disk_id: disk.disk_id.clone(),
                snapshot_name: Some(snapshot_name(&request.stack_name)),
                description: Some(format!(
                    "cloudcode {} system disk of stack {} (instance {instance_id})",
                    request.version, request.stack_name
                )),
                tags: vec![
                    (TAG_STACK.to_string(), request.stack_name.clone()),
                    (TAG_VERSION.to_string(), request.version.clone()),
                ],
                client_token: None,
            })
            .await?;
        progress(Progress::SnapshotStarted {
            snapshot_id: snapshot_id.clone(),
            disk_id: disk.disk_id.clone(),
        });
        let snapshot = self
            .wait_accomplished(&snapshot_id, &disk.disk_id, progress)
            .await?;
        progress(Progress::SnapshotAccomplished {
            snapshot_id: snapshot_id.clone(),
        });
        let prune = self
            .prune_inner(
                &request.stack_name,
                request.keep.max(1),
                Some(&snapshot_id),
                progress,
            )
            .await?;
        Ok(DestroySnapshotOutcome { snapshot, prune })
    }

    /// Deletes the stack's accomplished/failed snapshots beyond the newest `keep` accomplished
    /// ones. Snapshots still in progress are left alone. `SnapshotCreatedImage` → warning.
    pub async fn prune(&self, stack_name: &str, keep: usize) -> Result<PruneOutcome, Error> {
        self.prune_inner(stack_name, keep, None, &|_| {}).await
    }

    /// Newest accomplished snapshot of the stack, if any.
    pub async fn newest_snapshot(&self, stack_name: &str) -> Result<Option<StackSnapshot>, Error> {
        let mut snaps = self.stack_snapshots(stack_name).await?;
        snaps.retain(|s| s.status == "accomplished");
        Ok(snaps.into_iter().next().map(|s| StackSnapshot {
            version: s.tag(TAG_VERSION).map(str::to_string),
            snapshot_id: s.snapshot_id,
            size_gib: s.source_disk_size,
            created_at: s.creation_time,
        }))
    }

    /// The stack's snapshots, newest first (CreationTime, then id, descending).
    async fn stack_snapshots(&self, stack_name: &str) -> Result<Vec<Snapshot>, Error> {
        let mut snaps = self
            .ecs
            .describe_snapshots(&SnapshotFilter {
                tags: vec![(TAG_STACK.to_string(), stack_name.to_string())],
                ..SnapshotFilter::default()
            })
            .await?;
        // The filter is applied server-side; re-check so a lax API can never make us delete
        // another stack's snapshot.
        snaps.retain(|s| s.tag(TAG_STACK) == Some(stack_name));
        snaps.sort_by(|a, b| {
            b.creation_time
                .cmp(&a.creation_time)
                .then_with(|| b.snapshot_id.cmp(&a.snapshot_id))
        });
        Ok(snaps)
    }

    async fn prune_inner(
        &self,
        stack_name: &str,
        keep: usize,
        must_keep: Option<&str>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<PruneOutcome, Error> {
        let snaps = self.stack_snapshots(stack_name).await?;
        let mut kept = 0usize;
        let mut outcome = PruneOutcome::default();
        for snap in snaps {
            let is_current = must_keep == Some(snap.snapshot_id.as_str());
            match snap.status.as_str() {
                "progressing" => continue,
                "accomplished" if is_current || kept < keep => {
                    kept += 1;
                    continue;
                }
                _ => {}
            }
            match self.ecs.delete_snapshot(&snap.snapshot_id).await {
                Ok(()) => {
                    progress(Progress::Pruned {
                        snapshot_id: snap.snapshot_id.clone(),
                    });
                    outcome.deleted.push(snap.snapshot_id);
                }
                Err(err) if err.code() == Some(SNAPSHOT_CREATED_IMAGE) => {
                    outcome.warnings.push(Warning {
                        summary: format!(
                            "old snapshot {} of stack {stack_name} not deleted: an image uses it",
                            snap.snapshot_id
                        ),
                        detail: format!(
                            "{err}. It will be pruned on a later run once the image is deleted."
                        ),
                    });
                    outcome.skipped.push(snap.snapshot_id);
                }
                Err(err) => return Err(err),
            }
        }
        Ok(outcome)
    }

    async fn stop_and_wait(
        &self,
        instance_id: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(), Error> {
        let started = tokio::time::Instant::now();
        let mut stop_sent = false;
        loop {
            let instance = self
                .ecs
                .describe_instance(instance_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("instance {instance_id} does not exist")))?;
            match instance.status.as_str() {
                "Stopped" => {
                    progress(Progress::InstanceStopped {
                        instance_id: instance_id.to_string(),
                    });
                    return Ok(());
                }
                "Running" if !stop_sent => {
                    progress(Progress::StoppingInstance {
                        instance_id: instance_id.to_string(),
                    });
                    self.ecs
                        .stop_instance(instance_id, StoppedMode::KeepCharging)
                        .await?;
                    stop_sent = true;
                    continue;
                }
                _ => {}
            }
            if started.elapsed() > self.poll.instance_timeout {
                return Err(Error::Timeout {
                    what: format!(
                        "instance {instance_id} to stop (last status {})",
                        instance.status
                    ),
                    waited: self.poll.instance_timeout,
                });
            }
            tokio::time::sleep(self.poll.instance_interval).await;
        }
    }

    async fn wait_accomplished(
        &self,
        snapshot_id: &str,
        disk_id: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Snapshot, Error> {
        let started = tokio::time::Instant::now();
        let mut last_percent = None;
        loop {
            let snap = self
                .ecs
                .describe_snapshots(&SnapshotFilter {
                    snapshot_ids: vec![snapshot_id.to_string()],
                    ..SnapshotFilter::default()
                })
                .await?
                .into_iter()
                .find(|s| s.snapshot_id == snapshot_id)
                .ok_or_else(|| {
                    Error::NotFound(format!("snapshot {snapshot_id} disappeared while creating"))
                })?;
            let percent = snap.progress_percent();
            if last_percent != Some(percent) {
                progress(Progress::SnapshotProgress {
                    snapshot_id: snapshot_id.to_string(),
                    percent,
                });
                last_percent = Some(percent);
            }
            match snap.status.as_str() {
                "accomplished" => return Ok(snap),
                "failed" => {
                    return Err(Error::SnapshotFailed {
                        snapshot_id: snapshot_id.to_string(),
                        disk_id: disk_id.to_string(),
                        status: snap.status,
                    })
                }
                _ => {}
            }
            if started.elapsed() > self.poll.snapshot_timeout {
                return Err(Error::Timeout {
                    what: format!("snapshot {snapshot_id} to be accomplished (at {percent}%)"),
                    waited: self.poll.snapshot_timeout,
                });
            }
            tokio::time::sleep(self.poll.snapshot_interval).await;
        }
    }
}

/// Snapshot names must start with a letter, be 2–128 chars, and not start with `auto` or
/// `http(s)://`; keep `[A-Za-z0-9._:-]` from the stack name.
fn snapshot_name(stack_name: &str) -> String {
    let cleaned: String = stack_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = format!("cloudcode-{cleaned}");
    name.truncate(128);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_name_is_valid_for_odd_stack_names() {
        assert_eq!(snapshot_name("dev box/1"), "cloudcode-dev-box-1");
        assert_eq!(snapshot_name(&"x".repeat(300)).len(), 128);
    }
}
