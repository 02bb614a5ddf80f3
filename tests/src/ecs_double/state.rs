//! The double's world: instances, disks, snapshots, images, access keys, injected faults, and
//! the ECS 2014-05-26 actions cloudcode uses, with their documented parameters, response shapes,
//! state transitions and error codes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An error answer: HTTP status, `Code`, `Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn missing(param: &str) -> Self {
        Self::new(
            400,
            "MissingParameter",
            format!("The input parameter \"{param}\" that is mandatory for processing this request is not supplied."),
        )
    }

    pub(crate) fn invalid(param: &str) -> Self {
        Self::new(
            400,
            "InvalidParameter",
            format!("The specified parameter \"{param}\" is not valid."),
        )
    }

    fn incorrect_instance_status() -> Self {
        Self::new(
            403,
            "IncorrectInstanceStatus",
            "The current status of the resource does not support this operation.",
        )
    }
}

/// A fault to inject into the next N calls of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault(pub ApiError);

impl Fault {
    /// Flow control (`Throttling.User`, HTTP 400).
    pub fn throttling() -> Self {
        Self(ApiError::new(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        ))
    }

    /// `IncorrectInstanceStatus`, HTTP 403.
    pub fn incorrect_instance_status() -> Self {
        Self(ApiError::incorrect_instance_status())
    }

    /// `ServiceUnavailable`, HTTP 503.
    pub fn service_unavailable() -> Self {
        Self(ApiError::new(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        ))
    }

    /// Any other documented error.
    pub fn custom(status: u16, code: &str, message: &str) -> Self {
        Self(ApiError::new(status, code, message))
    }
}

/// A VM with its system disk, to seed the double.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSeed {
    pub instance_id: String,
    pub region_id: String,
    /// `Running` or `Stopped`.
    pub status: String,
    pub system_disk_id: String,
    pub system_disk_size_gib: u64,
}

impl InstanceSeed {
    /// A running instance `id` in `region` with a 40 GiB system disk `d-<id>`.
    pub fn running(id: &str, region: &str) -> Self {
        Self {
            instance_id: id.to_string(),
            region_id: region.to_string(),
            status: "Running".to_string(),
            system_disk_id: format!("d-{}", id.trim_start_matches("i-")),
            system_disk_size_gib: 40,
        }
    }
}

/// What a test can see of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotView {
    pub snapshot_id: String,
    pub disk_id: String,
    pub status: String,
    pub progress: String,
    pub creation_time: String,
    pub tags: Vec<(String, String)>,
}

impl SnapshotView {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One verified call, for assertions (retries, parameters, who signed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    pub action: String,
    pub params: BTreeMap<String, String>,
    /// `OK` or the error code returned.
    pub outcome: String,
    /// The AccessKey id the request named (`Credential=` of an ACS3 signature, `AccessKeyId` of an RPC one), known
    /// to the double or not; empty when it named none.
    pub access_key_id: String,
    /// Whether it carried an STS security token (`x-acs-security-token`, `SecurityToken`).
    pub security_token: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct SnapshotRec {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) disk_id: String,
    pub(crate) disk_size: u64,
    pub(crate) region: String,
    pub(crate) status: String,
    pub(crate) polls: u32,
    pub(crate) creation_time: String,
    pub(crate) tags: Vec<(String, String)>,
}

/// See [`World::key_pair_boot`].
pub(crate) type KeyPairBoot = Box<dyn Fn(&str, &str) + Send>;

pub(crate) struct AccessKey {
    pub secret: String,
    pub security_token: Option<String>,
    /// The RAM role a temporary key belongs to (its calls are evaluated against the role's policies).
    pub role: Option<String>,
    /// When a temporary key stops working.
    pub expires: Option<OffsetDateTime>,
}

impl AccessKey {
    /// A key of the account itself, or an STS one with `security_token` that belongs to no role here.
    pub(crate) fn new(secret: &str, security_token: Option<&str>) -> Self {
        Self {
            secret: secret.to_string(),
            security_token: security_token.map(str::to_string),
            role: None,
            expires: None,
        }
    }
}

/// Who signed the request being handled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    pub(crate) access_key_id: String,
    /// A temporary (STS) key.
    pub(crate) sts: bool,
    /// The RAM role of a temporary key issued here.
    pub(crate) role: Option<String>,
}

/// Mutable state behind the server.
pub(crate) struct World {
    pub(crate) instances: BTreeMap<String, super::instances::InstanceRec>,
    pub(crate) disks: BTreeMap<String, super::instances::DiskRec>,
    pub(crate) snapshots: BTreeMap<String, SnapshotRec>,
    pub(crate) images: BTreeMap<String, super::images::ImageRec>,
    faults: HashMap<String, Vec<(Fault, u32)>>,
    pub(crate) client_tokens: HashMap<String, String>,
    pub(crate) keys: HashMap<String, AccessKey>,
    pub(crate) nonces: HashSet<String>,
    pub(crate) calls: Vec<RecordedCall>,
    /// The VPC API's state.
    pub(crate) vpcs: super::vpc::Vpcs,
    /// Security groups and their rules.
    pub(crate) groups: super::security::Groups,
    /// SSH key pairs.
    pub(crate) keypairs: super::keypairs::KeyPairs,
    /// The region and zone catalog with its stock.
    pub(crate) zones: super::zones::Zones,
    /// Elastic IP addresses (VPC API).
    pub(crate) eips: super::eip::Eips,
    /// The account's DNS domains and records (Alidns API).
    pub(crate) dns: super::alidns::Dns,
    /// Balance and quotas (BSS, DescribeAccountAttributes), prices, the caller's identity (STS).
    pub(crate) account: super::account::Account,
    /// The account's RAM roles and policies.
    pub(crate) ram: super::ram::Ram,
    /// The account's OSS buckets and objects.
    pub(crate) oss: super::oss::Oss,
    /// The account's CDN domains.
    pub(crate) cdn: super::cdn::Cdn,
    /// The `host:port` of every CONNECT the double's proxy tunnelled, in order.
    pub(crate) proxied: Vec<String>,
    /// Who signed the request being handled (set once it is authenticated).
    pub(crate) caller: Option<Caller>,
    /// DescribeSnapshots calls a new snapshot needs before it is accomplished.
    pub(crate) snapshot_polls: u32,
    /// Called with (instance id, public key) when an instance with a key pair boots: what Alibaba Cloud's
    /// first-boot and restart handling does to root's authorized_keys, played on the machine standing in.
    pub(crate) key_pair_boot: Option<KeyPairBoot>,
    /// Public Ubuntu 24.04 x86_64 images released after the catalogue's (newest last).
    pub(crate) published_images: Vec<&'static str>,
    /// DescribeInstances calls a Stopping/Starting instance needs to settle.
    pub(crate) transition_polls: u32,
    seq: u64,
}

/// Deterministic clock for CreationTime: 2024-01-01T00:00:00Z plus one minute per snapshot.
const EPOCH: i64 = 1_704_067_200;

impl World {
    pub(crate) fn new() -> Self {
        Self {
            instances: BTreeMap::new(),
            disks: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            images: BTreeMap::new(),
            faults: HashMap::new(),
            client_tokens: HashMap::new(),
            keys: HashMap::new(),
            nonces: HashSet::new(),
            calls: Vec::new(),
            vpcs: super::vpc::Vpcs::default(),
            groups: super::security::Groups::default(),
            keypairs: super::keypairs::KeyPairs::default(),
            zones: super::zones::Zones::default(),
            eips: super::eip::Eips::default(),
            dns: super::alidns::Dns::default(),
            account: super::account::Account::default(),
            ram: super::ram::Ram::default(),
            oss: super::oss::Oss::default(),
            cdn: super::cdn::Cdn::default(),
            proxied: Vec::new(),
            caller: None,
            snapshot_polls: 3,
            key_pair_boot: None,
            published_images: Vec::new(),
            transition_polls: 2,
            seq: 0,
        }
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn request_id(&mut self) -> String {
        let n = self.next_seq();
        format!("{n:08X}-D0B1-4C1D-8E5A-{n:012X}")
    }

    /// Runs one VPC API action.
    pub(crate) fn handle_vpc(
        &mut self,
        action: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        if action == "CreateVSwitch" {
            let (region, zone) = (required(params, "RegionId")?, required(params, "ZoneId")?);
            if !self.zones.has_zone(&region, &zone) {
                return Err(ApiError::new(
                    400,
                    "InvalidZoneId.NotFound",
                    "Specified zone does not exist.",
                ));
            }
        }
        if action == "DeleteVSwitch"
            && params
                .get("VSwitchId")
                .is_some_and(|v| self.in_use_by_instance(v))
        {
            return Err(ApiError::new(
                400,
                "DependencyViolation",
                "Specified object has dependent resources.",
            ));
        }
        let seq = self.next_seq();
        let now = self.clock();
        // Taken out for the call, so that it can ask the world whether an instance exists.
        let mut eips = std::mem::take(&mut self.eips);
        let handled = eips.handle(action, params, seq, &now, &|id| {
            self.instance_status(id).is_some()
        });
        self.eips = eips;
        handled.unwrap_or_else(|| self.vpcs.handle(action, params, seq, now))
    }

    /// Runs one RAM API action.
    pub(crate) fn handle_ram(
        &mut self,
        action: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        let seq = self.next_seq();
        let now = self.clock();
        self.ram.handle(action, params, seq, &now)
    }

    /// Adds a DNS domain to the account.
    pub(crate) fn add_dns_domain(&mut self, name: &str) {
        let seq = self.next_seq();
        let now = self.clock();
        self.dns.add_domain(name, seq, now);
    }

    pub(crate) fn clock(&mut self) -> String {
        let n = i64::try_from(self.next_seq()).unwrap_or(0);
        OffsetDateTime::from_unix_timestamp(EPOCH + n * 60)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    pub(crate) fn inject(&mut self, action: &str, fault: Fault, times: u32) {
        self.faults
            .entry(action.to_string())
            .or_default()
            .push((fault, times));
    }

    /// Takes one pending injected fault for `action`, if any.
    pub(crate) fn take_fault(&mut self, action: &str) -> Option<ApiError> {
        let list = self.faults.get_mut(action)?;
        let slot = list.iter_mut().find(|(_, left)| *left > 0)?;
        slot.1 -= 1;
        Some(slot.0 .0.clone())
    }

    pub(crate) fn snapshots(&self) -> Vec<SnapshotView> {
        self.snapshots
            .values()
            .map(|s| SnapshotView {
                snapshot_id: s.id.clone(),
                disk_id: s.disk_id.clone(),
                status: s.status.clone(),
                progress: self.progress(s),
                creation_time: s.creation_time.clone(),
                tags: s.tags.clone(),
            })
            .collect()
    }

    pub(crate) fn image_ids(&self) -> Vec<String> {
        self.images.keys().cloned().collect()
    }

    /// (allocation id, address) of the EIP associated with an instance.
    pub(crate) fn eip_of(&self, instance_id: &str) -> Option<(String, String)> {
        self.eips.eip_of_instance(instance_id)
    }

    pub(crate) fn instance_status(&self, id: &str) -> Option<String> {
        self.instances.get(id).map(|i| i.status.clone())
    }

    fn progress(&self, s: &SnapshotRec) -> String {
        if s.status == "accomplished" {
            return "100%".into();
        }
        let total = self.snapshot_polls.max(1);
        format!("{}%", (s.polls.min(total) * 100 / total).min(99))
    }

    /// Runs one action. `params` merges query and form body.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        match action {
            "CreateSnapshot" => self.create_snapshot(params),
            "DescribeSnapshots" => self.describe_snapshots(params),
            "DeleteSnapshot" => self.delete_snapshot(params),
            "DeleteSecurityGroup"
                if params
                    .get("SecurityGroupId")
                    .is_some_and(|g| self.in_use_by_instance(g)) =>
            {
                Err(ApiError::new(
                    403,
                    "DependencyViolation",
                    "There is still instance(s) in the specified security group.",
                ))
            }
            _ => {
                if let Some(done) = self.handle_instances(action, params) {
                    return done;
                }
                if let Some(done) = self.handle_images(action, params) {
                    return done;
                }
                if let Some(done) = self.account.handle_ecs(action, params) {
                    return done;
                }
                let seq = self.next_seq();
                let now = self.clock();
                let handled = self.groups.handle(action, params, seq, now.clone());
                handled
                    .or_else(|| self.keypairs.handle(action, params, now))
                    .or_else(|| self.zones.handle(action, params))
                    .unwrap_or_else(|| {
                        Err(ApiError::new(
                            404,
                            "InvalidAction.NotFound",
                            "Specified api is not found, please check your url and method.",
                        ))
                    })
            }
        }
    }

    fn create_snapshot(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let disk_id = required(p, "DiskId")?;
        if let Some(existing) = p.get("ClientToken").and_then(|t| self.client_tokens.get(t)) {
            return Ok(json!({ "SnapshotId": existing }));
        }
        let disk = self.disks.get(&disk_id).cloned().ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidDiskId.NotFound",
                "The specified disk does not exist.",
            )
        })?;
        let inst_status = self
            .instances
            .get(&disk.instance_id)
            .map(|i| i.status.clone())
            .unwrap_or_default();
        if inst_status != "Running" && inst_status != "Stopped" {
            return Err(ApiError::incorrect_instance_status());
        }
        let name = p.get("SnapshotName").cloned().unwrap_or_default();
        if !name.is_empty()
            && (name.len() < 2
                || name.len() > 128
                || !name.starts_with(|c: char| c.is_alphabetic())
                || name.starts_with("auto")
                || name.starts_with("http://")
                || name.starts_with("https://"))
        {
            return Err(ApiError::invalid("SnapshotName"));
        }
        let tags = tag_params(p)?;
        let id = format!("s-dbl{:015x}", self.next_seq());
        let creation_time = self.clock();
        self.snapshots.insert(
            id.clone(),
            SnapshotRec {
                id: id.clone(),
                name,
                description: p.get("Description").cloned().unwrap_or_default(),
                disk_id: disk.id.clone(),
                disk_size: disk.size,
                region: disk.region.clone(),
                status: "progressing".into(),
                polls: 0,
                creation_time,
                tags,
            },
        );
        if let Some(token) = p.get("ClientToken") {
            self.client_tokens.insert(token.clone(), id.clone());
        }
        Ok(json!({ "SnapshotId": id }))
    }

    fn describe_snapshots(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let status = p.get("Status").map(String::as_str).unwrap_or("all");
        if !matches!(status, "all" | "progressing" | "accomplished" | "failed") {
            return Err(ApiError::invalid("Status"));
        }
        let ids = json_ids(p, "SnapshotIds")?;
        let tags = tag_params(p)?;
        let needed = self.snapshot_polls;
        for snap in self.snapshots.values_mut() {
            if snap.status == "progressing" {
                snap.polls += 1;
                if snap.polls >= needed {
                    snap.status = "accomplished".into();
                }
            }
        }
        let mut matching: Vec<&SnapshotRec> = self
            .snapshots
            .values()
            .filter(|s| s.region == region)
            .filter(|s| status == "all" || s.status == status)
            .filter(|s| ids.as_ref().is_none_or(|ids| ids.contains(&s.id)))
            .filter(|s| p.get("DiskId").is_none_or(|d| *d == s.disk_id))
            .filter(|s| tags.iter().all(|t| s.tags.contains(t)))
            .collect();
        // Newest first, as the console and API list them.
        matching.sort_by(|a, b| b.creation_time.cmp(&a.creation_time).then(b.id.cmp(&a.id)));
        let items: Vec<Value> = matching
            .into_iter()
            .map(|s| {
                let tag_list: Vec<Value> = s
                    .tags
                    .iter()
                    .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
                    .collect();
                let used = self.images.values().any(|i| i.snapshot_id == s.id);
                json!({
                    "SnapshotId": s.id, "SnapshotName": s.name, "Description": s.description,
                    "Status": s.status, "Progress": self.progress(s),
                    "SourceDiskId": s.disk_id, "SourceDiskSize": s.disk_size.to_string(),
                    "SourceDiskType": "System", "CreationTime": s.creation_time,
                    "Usage": if used { "image" } else { "none" },
                    "RemainTime": if s.status == "accomplished" { 0 } else { 30 },
                    "Category": "standard", "Encrypted": false,
                    "Tags": { "Tag": tag_list },
                })
            })
            .collect();
        Ok(paged(p, "Snapshots", "Snapshot", items))
    }

    fn delete_snapshot(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = required(p, "SnapshotId")?;
        if self.images.values().any(|i| i.snapshot_id == id) {
            return Err(ApiError::new(
                403,
                "SnapshotCreatedImage",
                "The snapshot has been used to create user defined image(s).",
            ));
        }
        // Documented: deleting a snapshot that does not exist is ignored.
        self.snapshots.remove(&id);
        Ok(json!({}))
    }
}

/// Request parameters from pairs, for the modules' unit tests.
#[cfg(test)]
pub(crate) fn test_params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn required(p: &BTreeMap<String, String>, name: &str) -> Result<String, ApiError> {
    p.get(name)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::missing(name))
}

/// `InstanceIds`/`SnapshotIds`/`DiskIds`: a JSON array of strings.
pub(crate) fn json_ids(
    p: &BTreeMap<String, String>,
    name: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    // An empty value is no filter, as the API reads it.
    p.get(name)
        .filter(|raw| !raw.is_empty())
        .map(|raw| serde_json::from_str::<Vec<String>>(raw).map_err(|_| ApiError::invalid(name)))
        .transpose()
}

/// `Tag.N.Key` / `Tag.N.Value`, N in 1..=20.
fn tag_params(p: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    let mut tags = Vec::new();
    for n in 1..=20 {
        match p.get(&format!("Tag.{n}.Key")) {
            Some(k) if k.is_empty() => return Err(ApiError::invalid(&format!("Tag.{n}.Key"))),
            Some(k) => tags.push((
                k.clone(),
                p.get(&format!("Tag.{n}.Value"))
                    .cloned()
                    .unwrap_or_default(),
            )),
            None => {}
        }
    }
    if p.contains_key("Tag.21.Key") {
        return Err(ApiError::invalid("Tag.21.Key"));
    }
    Ok(tags)
}

/// PageNumber/PageSize paging (PageSize default 10, max 100) with TotalCount.
pub(crate) fn paged(
    p: &BTreeMap<String, String>,
    outer: &str,
    inner: &str,
    items: Vec<Value>,
) -> Value {
    let page_number: usize = p
        .get("PageNumber")
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1);
    let page_size: usize = p
        .get("PageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip((page_number - 1) * page_size)
        .take(page_size)
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("TotalCount".into(), json!(total));
    out.insert("PageNumber".into(), json!(page_number));
    out.insert("PageSize".into(), json!(page_size));
    out.insert(outer.into(), json!({ inner: page }));
    Value::Object(out)
}
