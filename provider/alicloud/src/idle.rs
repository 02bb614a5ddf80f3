//! Idle suspend on the API: the tag that says an instance stopped itself for idleness (and when), set before
//! StopInstance in StopCharging mode and removed when the instance runs again.

use serde::Deserialize;

use crate::client::EcsClient;
use crate::error::Error;
use crate::model::StoppedMode;

/// The tag an idle-suspended instance carries; its value is the RFC 3339 time it stopped itself.
pub const TAG_IDLE_SUSPENDED: &str = "cloudcode:idle-suspended";

#[derive(Deserialize)]
struct Ack {}

fn p(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

impl EcsClient {
    fn instance_tag_params(&self, instance_id: &str) -> Vec<(String, String)> {
        vec![
            p("RegionId", self.region()),
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
        let stop = vec![
            p("InstanceId", instance_id),
            p("StoppedMode", StoppedMode::StopCharging.as_str()),
        ];
        self.call::<Ack>("StopInstance", &stop).await.map(|_| ())
    }

    /// Removes the idle-suspended tag (the instance runs again); a tag that is not there is no error.
    pub async fn clear_idle_suspended(&self, instance_id: &str) -> Result<(), Error> {
        let mut untag = self.instance_tag_params(instance_id);
        untag.push(p("TagKey.1", TAG_IDLE_SUSPENDED));
        self.call::<Ack>("UntagResources", &untag).await.map(|_| ())
    }
}
