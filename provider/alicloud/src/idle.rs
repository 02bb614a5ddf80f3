//! Idle suspend on the API: the tag an instance that stopped itself for idleness carries, set before it stops.

use crate::client::{p, Ack, EcsClient};
use crate::error::Error;
use crate::model::{Ecs, StoppedMode};

/// The tag an idle-suspended instance carries; its value is the RFC 3339 time it stopped itself.
pub const TAG_IDLE_SUSPENDED: &str = "cloudcode:idle-suspended";

impl EcsClient {
    fn instance_tag_params(&self, instance_id: &str) -> Vec<(String, String)> {
        vec![
            self.region_param(),
            p("ResourceType", "instance"),
            p("ResourceId.1", instance_id),
        ]
    }

    /// Marks `instance_id` idle-suspended at `at` (RFC 3339), then stops it without charging for CPU and memory.
    pub async fn suspend_for_idleness(&self, instance_id: &str, at: &str) -> Result<(), Error> {
        let mut tag = self.instance_tag_params(instance_id);
        tag.push(p("Tag.1.Key", TAG_IDLE_SUSPENDED));
        tag.push(p("Tag.1.Value", at));
        self.call::<Ack>("TagResources", &tag).await?;
        self.stop_instance(instance_id, StoppedMode::StopCharging)
            .await
    }

    /// Removes the idle-suspended tag (the instance runs again); a tag that is not there is no error.
    pub async fn clear_idle_suspended(&self, instance_id: &str) -> Result<(), Error> {
        let mut untag = self.instance_tag_params(instance_id);
        untag.push(p("TagKey.1", TAG_IDLE_SUSPENDED));
        self.call::<Ack>("UntagResources", &untag).await.map(|_| ())
    }
}
