//! ECS API 2014-05-26 request/response shapes used by cloudcode, and the [`Ecs`] trait: the one
//! seam the provider's resources call (implemented by [`crate::EcsClient`]).

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// ECS instance (subset of `DescribeInstances` → `Instances.Instance[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    pub instance_id: String,
    #[serde(default)]
    pub instance_name: String,
    /// `Pending`, `Running`, `Starting`, `Stopping`, `Stopped`.
    pub status: String,
    #[serde(default)]
    pub region_id: String,
    #[serde(default)]
    pub zone_id: String,
    #[serde(default)]
    pub image_id: String,
}

/// Block storage (subset of `DescribeDisks` → `Disks.Disk[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Disk {
    pub disk_id: String,
    #[serde(default)]
    pub instance_id: String,
    /// `system` or `data`.
    #[serde(rename = "Type")]
    pub disk_type: String,
    #[serde(default)]
    pub category: String,
    /// GiB.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub size: u64,
    #[serde(default)]
    pub status: String,
}

/// `Tags.Tag[]` entry of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub tag_key: String,
    #[serde(default)]
    pub tag_value: String,
}

/// Snapshot (subset of `DescribeSnapshots` → `Snapshots.Snapshot[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Snapshot {
    pub snapshot_id: String,
    #[serde(default)]
    pub snapshot_name: String,
    /// `progressing`, `accomplished` or `failed`.
    pub status: String,
    /// e.g. `"45%"`.
    #[serde(default)]
    pub progress: String,
    #[serde(default)]
    pub source_disk_id: String,
    /// GiB; the API documents it as a string.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub source_disk_size: u64,
    /// ISO 8601 UTC, e.g. `2024-01-01T12:00:00Z`.
    #[serde(default)]
    pub creation_time: String,
    #[serde(default, deserialize_with = "nested_list")]
    pub tags: Vec<Tag>,
}

impl Snapshot {
    /// Value of tag `key`, if present.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.tag_key == key)
            .map(|t| t.tag_value.as_str())
    }

    /// `Progress` as a number (0–100); unparseable values count as 0.
    pub fn progress_percent(&self) -> u8 {
        self.progress
            .trim()
            .trim_end_matches('%')
            .parse::<u8>()
            .unwrap_or(0)
            .min(100)
    }
}

/// One `DiskDeviceMappings.DiskDeviceMapping[]` entry of an image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskDeviceMapping {
    #[serde(default)]
    pub snapshot_id: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub size: u64,
    #[serde(default, rename = "Type")]
    pub disk_type: String,
}

/// Custom image (subset of `DescribeImages` → `Images.Image[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Image {
    pub image_id: String,
    #[serde(default)]
    pub image_name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, deserialize_with = "nested_list")]
    pub disk_device_mappings: Vec<DiskDeviceMapping>,
}

/// `StopInstance` `StoppedMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedMode {
    /// Economical mode: compute is released and not billed while stopped.
    StopCharging,
    /// Standard mode: resources are kept and billed.
    KeepCharging,
}

impl StoppedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StoppedMode::StopCharging => "StopCharging",
            StoppedMode::KeepCharging => "KeepCharging",
        }
    }
}

/// `DescribeDisks` `DiskType` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    System,
    Data,
    All,
}

impl DiskType {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskType::System => "system",
            DiskType::Data => "data",
            DiskType::All => "all",
        }
    }
}

/// `CreateSnapshot` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateSnapshotRequest {
    pub disk_id: String,
    pub snapshot_name: Option<String>,
    pub description: Option<String>,
    /// Sent as `Tag.N.Key` / `Tag.N.Value` (N from 1).
    pub tags: Vec<(String, String)>,
    /// Idempotency token; the client fills one in when absent so retries cannot duplicate.
    pub client_token: Option<String>,
}

/// `DescribeSnapshots` filter (all set fields must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub snapshot_ids: Vec<String>,
    pub disk_id: Option<String>,
    /// `progressing`, `accomplished`, `failed` or `all` (default).
    pub status: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// `DescribeImages` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilter {
    pub image_id: Option<String>,
    pub snapshot_id: Option<String>,
    /// `self`, `system`, `others`, `marketplace`.
    pub image_owner_alias: Option<String>,
}

/// The ECS operations cloudcode needs. Implemented by the signed HTTP client; the snapshot life
/// cycle ([`crate::lifecycle`]) is written against this trait.
#[async_trait]
pub trait Ecs: Send + Sync {
    /// `DescribeInstances` for one id; `None` when it does not exist.
    async fn describe_instance(&self, instance_id: &str) -> Result<Option<Instance>, Error>;
    async fn stop_instance(&self, instance_id: &str, mode: StoppedMode) -> Result<(), Error>;
    async fn start_instance(&self, instance_id: &str) -> Result<(), Error>;
    async fn describe_disks(
        &self,
        instance_id: &str,
        disk_type: DiskType,
    ) -> Result<Vec<Disk>, Error>;
    /// Returns the new snapshot id.
    async fn create_snapshot(&self, request: &CreateSnapshotRequest) -> Result<String, Error>;
    /// All pages.
    async fn describe_snapshots(&self, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, Error>;
    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), Error>;
    /// All pages.
    async fn describe_images(&self, filter: &ImageFilter) -> Result<Vec<Image>, Error>;
    async fn delete_image(&self, image_id: &str) -> Result<(), Error>;
}

/// Numbers the API sometimes documents as strings (`SourceDiskSize`, image `Size`).
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        N(u64),
        S(String),
        Null(()),
    }
    Ok(match Num::deserialize(d)? {
        Num::N(n) => n,
        Num::S(s) => s.trim().parse().unwrap_or(0),
        Num::Null(()) => 0,
    })
}

/// ECS wraps lists in an object named after the item: `{"Tag": [...]}`,
/// `{"DiskDeviceMapping": [...]}`. Absent or null means empty.
fn nested_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    struct Wrapper<T> {
        #[serde(rename = "Tag", alias = "DiskDeviceMapping", default = "Vec::new")]
        items: Vec<T>,
    }
    Ok(Option::<Wrapper<T>>::deserialize(d)?
        .map(|w| w.items)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_snapshot_shape_parses_with_string_size_and_nested_tags() {
        let json = r#"{"SnapshotId":"s-bp67acfmxazb4p****","SnapshotName":"testSnapshotName","Status":"accomplished","Progress":"100%","SourceDiskId":"d-bp67acfmxazb4p****","SourceDiskSize":"2000","SourceDiskType":"System","CreationTime":"2020-08-20T14:52:28Z","Usage":"none","Tags":{"Tag":[{"TagKey":"cloudcode:stack","TagValue":"dev"}]}}"#;
        let s: Snapshot = serde_json::from_str(json).unwrap();
        assert_eq!(s.source_disk_size, 2000);
        assert_eq!(s.tag("cloudcode:stack"), Some("dev"));
        assert_eq!(s.progress_percent(), 100);
    }

    #[test]
    fn image_mappings_and_missing_optional_fields_parse() {
        let json = r#"{"ImageId":"m-1","DiskDeviceMappings":{"DiskDeviceMapping":[{"SnapshotId":"s-1","Size":"40","Type":"system"}]}}"#;
        let i: Image = serde_json::from_str(json).unwrap();
        assert_eq!(i.disk_device_mappings[0].snapshot_id, "s-1");
        assert_eq!(i.disk_device_mappings[0].size, 40);
        let bare: Snapshot =
            serde_json::from_str(r#"{"SnapshotId":"s-2","Status":"progressing","Progress":"x"}"#)
                .unwrap();
        assert!(bare.tags.is_empty());
        assert_eq!(bare.progress_percent(), 0);
    }
}
