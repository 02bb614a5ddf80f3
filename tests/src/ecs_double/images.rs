//! Images: the public system catalogue (Ubuntu/Debian, x86_64 and arm64) and custom images made from
//! snapshots — CreateImage (`Creating` → `Available`), DescribeImages (the documented default `Status` filter
//! `Available`, except when asked by `ImageId`), ModifyImageAttribute, DeleteImage and image tags. A
//! snapshot an image was made from cannot be deleted while the image exists.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{paged, required, ApiError, World};
use super::tags::{apply_tags, resource_ids, tag_list, tags_of};

#[derive(Debug, Clone)]
pub(crate) struct ImageRec {
    pub(crate) id: String,
    pub(crate) region: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) snapshot_id: String,
    pub(crate) size: u64,
    pub(crate) architecture: String,
    pub(crate) platform: String,
    pub(crate) status: String,
    /// DescribeImages answers left before `Creating` becomes `Available`.
    pub(crate) polls: u32,
    pub(crate) created: String,
    pub(crate) tags: BTreeMap<String, String>,
}

/// A public image: (id, platform, OS name, architecture, size GiB, creation time).
#[derive(Clone)]
struct SystemImage {
    id: &'static str,
    platform: &'static str,
    os_name: &'static str,
    architecture: &'static str,
    size: u64,
    created: &'static str,
}

/// The same in every region, newest last per family.
const SYSTEM_IMAGES: [SystemImage; 5] = [
    SystemImage {
        id: "ubuntu_22_04_x64_20G_alibase_20250101.vhd",
        platform: "Ubuntu",
        os_name: "Ubuntu  22.04 64位",
        architecture: "x86_64",
        size: 20,
        created: "2025-01-02T08:00:00Z",
    },
    SystemImage {
        id: "ubuntu_24_04_x64_20G_alibase_20250301.vhd",
        platform: "Ubuntu",
        os_name: "Ubuntu  24.04 64位",
        architecture: "x86_64",
        size: 20,
        created: "2025-03-02T08:00:00Z",
    },
    SystemImage {
        id: "ubuntu_24_04_x64_20G_alibase_20250901.vhd",
        platform: "Ubuntu",
        os_name: "Ubuntu  24.04 64位",
        architecture: "x86_64",
        size: 20,
        created: "2025-09-02T08:00:00Z",
    },
    SystemImage {
        id: "ubuntu_24_04_arm64_20G_alibase_20250901.vhd",
        platform: "Ubuntu",
        os_name: "Ubuntu  24.04 64位 ARM版",
        architecture: "arm64",
        size: 20,
        created: "2025-09-03T08:00:00Z",
    },
    SystemImage {
        id: "debian_12_x64_20G_alibase_20240101.vhd",
        platform: "Debian",
        os_name: "Debian  12 64位",
        architecture: "x86_64",
        size: 20,
        created: "2024-01-02T08:00:00Z",
    },
];

/// Instance-type families built on arm64 (`ecs.g8y`, …); every other family the double knows is x86_64.
fn arch_of_instance_type(t: &str) -> &'static str {
    if t.starts_with("ecs.g8y") || t.starts_with("ecs.c8y") || t.starts_with("ecs.r8y") {
        "arm64"
    } else {
        "x86_64"
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "InvalidImageId.NotFound",
        "The specified ImageId does not exist.",
    )
}

impl World {
    /// Runs one image action; `None` when the action is not one of these.
    pub(crate) fn handle_images(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Option<Result<Value, ApiError>> {
        Some(match action {
            "CreateImage" => self.create_image(p),
            "DescribeImages" => self.describe_images(p),
            "ModifyImageAttribute" => self.modify_image(p),
            "DeleteImage" => self.delete_image(p),
            "TagResources" | "UntagResources"
                if p.get("ResourceType").map(String::as_str) == Some("image") =>
            {
                self.tag_images(action, p)
            }
            _ => return None,
        })
    }

    /// The public images: the catalogue, then the Ubuntu 24.04 x86_64 ones published since (one day apart from
    /// 2026-12-01, so each is the newest when published).
    fn system_images(&self) -> Vec<SystemImage> {
        const DAYS: [&str; 4] = [
            "2026-12-01T08:00:00Z",
            "2026-12-02T08:00:00Z",
            "2026-12-03T08:00:00Z",
            "2026-12-04T08:00:00Z",
        ];
        let mut all: Vec<SystemImage> = SYSTEM_IMAGES.to_vec();
        for (n, id) in self.published_images.iter().enumerate().take(DAYS.len()) {
            all.push(SystemImage {
                id,
                created: DAYS[n],
                ..SYSTEM_IMAGES[2].clone()
            });
        }
        all
    }

    /// The size (GiB) of an image that can boot an instance in `region` now.
    pub(crate) fn image_size(&self, region: &str, image_id: &str) -> Option<u64> {
        self.system_images()
            .iter()
            .find(|i| i.id == image_id)
            .map(|i| i.size)
            .or_else(|| {
                self.images
                    .get(image_id)
                    .filter(|i| i.region == region && i.status == "Available")
                    .map(|i| i.size)
            })
    }

    /// Creates a custom image from an accomplished snapshot, `Available` at once (for tests seeding a world).
    pub(crate) fn create_image_from_snapshot(
        &mut self,
        snapshot_id: &str,
    ) -> Result<String, String> {
        let p = BTreeMap::from([
            ("SnapshotId".to_string(), snapshot_id.to_string()),
            (
                "RegionId".to_string(),
                self.snapshots
                    .get(snapshot_id)
                    .map(|s| s.region.clone())
                    .unwrap_or_default(),
            ),
        ]);
        let made = self.create_image(&p).map_err(|e| e.message)?;
        let id = made["ImageId"].as_str().unwrap_or_default().to_string();
        if let Some(i) = self.images.get_mut(&id) {
            i.status = "Available".into();
            i.polls = 0;
        }
        Ok(id)
    }

    fn create_image(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        if let Some(id) = p.get("ClientToken").and_then(|t| self.client_tokens.get(t)) {
            return Ok(json!({ "ImageId": id }));
        }
        // From a snapshot, given directly or as the system disk's mapping (`DiskDeviceMapping.1.SnapshotId`); images
        // of an instance are not served here.
        let snapshot_id = p
            .get("SnapshotId")
            .or_else(|| p.get("DiskDeviceMapping.1.SnapshotId"))
            .cloned()
            .ok_or_else(|| ApiError::missing("SnapshotId"))?;
        let snap = self
            .snapshots
            .get(&snapshot_id)
            .filter(|s| s.region == region)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidSnapshotId.NotFound",
                    "The specified snapshot does not exist.",
                )
            })?;
        if snap.status != "accomplished" {
            return Err(ApiError::new(
                403,
                "IncorrectSnapshotStatus",
                "The snapshot is not ready for image creation.",
            ));
        }
        let size = snap.disk_size;
        let name = p.get("ImageName").cloned().unwrap_or_default();
        if !name.is_empty()
            && (!(2..=128).contains(&name.chars().count())
                || !name.starts_with(|c: char| c.is_alphabetic())
                || name.starts_with("aliyun")
                || name.starts_with("acs:"))
        {
            return Err(ApiError::new(
                400,
                "InvalidImageName.Malformed",
                "The specified ImageName is wrongly formed.",
            ));
        }
        if !name.is_empty()
            && self
                .images
                .values()
                .any(|i| i.region == region && i.name == name)
        {
            return Err(ApiError::new(
                403,
                "InvalidImageName.Duplicated",
                "The specified ImageName is already in use.",
            ));
        }
        let tags = tags_of(p)?;
        let seq = self.next_seq();
        let id = format!("m-dbl{seq:015x}");
        let created = self.clock();
        self.images.insert(
            id.clone(),
            ImageRec {
                id: id.clone(),
                region,
                name: if name.is_empty() { id.clone() } else { name },
                description: p.get("Description").cloned().unwrap_or_default(),
                snapshot_id,
                size,
                architecture: p
                    .get("Architecture")
                    .cloned()
                    .unwrap_or_else(|| "x86_64".into()),
                platform: p
                    .get("Platform")
                    .cloned()
                    .unwrap_or_else(|| "Others Linux".into()),
                status: "Creating".into(),
                polls: 1,
                created,
                tags,
            },
        );
        if let Some(token) = p.get("ClientToken") {
            self.client_tokens.insert(token.clone(), id.clone());
        }
        Ok(json!({ "ImageId": id }))
    }

    fn describe_images(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let ids: Option<Vec<String>> = p
            .get("ImageId")
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
        // Documented default: only Available images, unless asked by id (as the provider's waits do).
        let statuses: Option<Vec<String>> = match p.get("Status") {
            Some(s) => Some(s.split(',').map(|x| x.trim().to_string()).collect()),
            None if ids.is_some() => None,
            None => Some(vec!["Available".to_string()]),
        };
        let owner = p.get("ImageOwnerAlias").map(String::as_str);
        if owner.is_some_and(|o| !matches!(o, "system" | "self" | "others" | "marketplace")) {
            return Err(ApiError::invalid("ImageOwnerAlias"));
        }
        let arch = p.get("Architecture").cloned().or_else(|| {
            p.get("InstanceType")
                .map(|t| arch_of_instance_type(t).to_string())
        });
        let wanted = |id: &str, status: &str, architecture: &str| {
            ids.as_ref().is_none_or(|ids| ids.iter().any(|i| i == id))
                && statuses
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|x| x == status))
                && arch.as_ref().is_none_or(|a| a == architecture)
        };
        // Custom images move from Creating to Available as they are polled.
        for i in self.images.values_mut() {
            if i.status == "Creating" {
                if i.polls <= 1 {
                    i.status = "Available".into();
                    i.polls = 0;
                } else {
                    i.polls -= 1;
                }
            }
        }
        let mut items: Vec<Value> = Vec::new();
        if owner.is_none_or(|o| o == "system") {
            items.extend(
                self.system_images()
                    .iter()
                    .filter(|i| wanted(i.id, "Available", i.architecture))
                    .filter(|_| p.get("OSType").is_none_or(|t| t == "linux"))
                    // A public image is made from no snapshot of this account.
                    .filter(|_| !p.contains_key("SnapshotId"))
                    .filter(|i| p.get("ImageName").is_none_or(|n| n == i.id))
                    .map(|i| {
                        json!({
                            "ImageId": i.id, "ImageName": i.id, "ImageOwnerAlias": "system",
                            "Status": "Available", "Size": i.size, "Architecture": i.architecture,
                            "Platform": i.platform, "OSName": i.os_name, "OSNameEn": i.os_name,
                            "OSType": "linux", "CreationTime": i.created, "Description": "",
                            "IsSupportIoOptimized": true, "IsSupportCloudinit": true, "Usage": "instance",
                            "Progress": "100%", "BootMode": "BIOS", "ImageFamily": "",
                            "DiskDeviceMappings": { "DiskDeviceMapping": [] }, "Tags": { "Tag": [] },
                        })
                    }),
            );
        }
        if owner.is_none_or(|o| o == "self") {
            items.extend(
                self.images
                    .values()
                    .filter(|i| i.region == region)
                    .filter(|i| wanted(&i.id, &i.status, &i.architecture))
                    .filter(|i| p.get("SnapshotId").is_none_or(|s| *s == i.snapshot_id))
                    .filter(|i| p.get("ImageName").is_none_or(|n| *n == i.name))
                    .map(|i| {
                        json!({
                            "ImageId": i.id, "ImageName": i.name, "Description": i.description,
                            "ImageOwnerAlias": "self", "Status": i.status, "Size": i.size,
                            "Architecture": i.architecture, "Platform": i.platform, "OSType": "linux",
                            "OSName": i.platform, "CreationTime": i.created, "Usage": "none",
                            "Progress": if i.status == "Available" { "100%" } else { "50%" },
                            "BootMode": "BIOS", "ImageFamily": "", "ImageVersion": "", "ResourceGroupId": "",
                            "DiskDeviceMappings": { "DiskDeviceMapping": [
                                { "SnapshotId": i.snapshot_id, "Size": i.size.to_string(), "Type": "system",
                                  "Device": "/dev/xvda", "Format": "", "ImportOSSBucket": "",
                                  "ImportOSSObject": "", "Progress": "100%", "RemainTime": 0 }
                            ]},
                            "Tags": tag_list(&i.tags),
                        })
                    }),
            );
        }
        Ok(paged(p, "Images", "Image", items))
    }

    fn modify_image(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = required(p, "ImageId")?;
        let i = self.images.get_mut(&id).ok_or_else(not_found)?;
        if let Some(v) = p.get("ImageName") {
            i.name = v.clone();
        }
        if let Some(v) = p.get("Description") {
            i.description = v.clone();
        }
        Ok(json!({}))
    }

    /// An image instances still run from goes only with `Force=true`.
    fn delete_image(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        required(p, "RegionId")?;
        let id = required(p, "ImageId")?;
        if !self.images.contains_key(&id) {
            return Err(not_found());
        }
        let force = p.get("Force").map(String::as_str) == Some("true");
        if !force && self.instances.values().any(|i| i.image_id == id) {
            return Err(ApiError::new(
                403,
                "ImageUsedByInstance",
                "The specified image is used by instance(s); delete it with Force.",
            ));
        }
        self.images.remove(&id);
        Ok(json!({}))
    }

    fn tag_images(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        for id in resource_ids(p)? {
            let i = self.images.get_mut(&id).ok_or_else(not_found)?;
            apply_tags(action, p, &mut i.tags)?;
        }
        Ok(json!({}))
    }
}
