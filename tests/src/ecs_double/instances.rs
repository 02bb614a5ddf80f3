//! Instances and their system disks: RunInstances (Pending → Running), DescribeInstances,
//! DescribeInstanceAttribute, DescribeUserData, DescribeInstanceMaintenanceAttributes, ModifyInstanceAttribute,
//! Stop/Start/RebootInstance (StoppedMode kept, `Not-applicable` while running), ResizeDisk (grow only),
//! DeleteInstance, DescribeDisks, Attach/DetachKeyPair, the instance RAM role (RunInstances' `RamRoleName`,
//! Attach/Detach/DescribeInstanceRamRole: a role of the account's RAM that trusts ECS) and instance/disk tags
//! (TagResources, UntagResources, ListTagResources), with the documented codes (`IncorrectInstanceStatus`,
//! `InvalidInstanceId.NotFound` with HTTP 404, `InvalidRamRole.NotFound`, …).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::ram::ram_role_not_found;
use super::state::{json_ids, paged, required, ApiError, InstanceSeed, World};
use super::tags::{apply_tags, resource_ids, tag_list, tags_of};
use super::zones::TYPE_SPECS;

#[derive(Debug, Clone)]
pub(crate) struct InstanceRec {
    pub(crate) id: String,
    pub(crate) region: String,
    pub(crate) zone: String,
    pub(crate) status: String,
    /// (target status, DescribeInstances calls left before reaching it)
    pub(crate) pending: Option<(String, u32)>,
    pub(crate) name: String,
    pub(crate) host_name: String,
    pub(crate) description: String,
    pub(crate) image_id: String,
    pub(crate) instance_type: String,
    pub(crate) vpc_id: String,
    pub(crate) vswitch_id: String,
    pub(crate) private_ip: String,
    pub(crate) security_groups: Vec<String>,
    pub(crate) key_pair: String,
    /// What StopInstance was asked for; reported only while stopped.
    pub(crate) stopped_mode: String,
    pub(crate) charge_type: String,
    /// `NoSpot` or `SpotAsPriceGo` / `SpotWithPriceLimit` (RunInstances' SpotStrategy).
    pub(crate) spot_strategy: String,
    pub(crate) bandwidth_out: u64,
    pub(crate) user_data: String,
    pub(crate) created: String,
    pub(crate) tags: BTreeMap<String, String>,
    /// The instance RAM role attached (empty: none).
    pub(crate) ram_role: String,
}

#[derive(Debug, Clone)]
pub(crate) struct DiskRec {
    pub(crate) id: String,
    pub(crate) instance_id: String,
    pub(crate) region: String,
    pub(crate) zone: String,
    pub(crate) size: u64,
    pub(crate) category: String,
    pub(crate) image_id: String,
    pub(crate) tags: BTreeMap<String, String>,
}

/// What a test can see of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub instance_id: String,
    pub name: String,
    pub status: String,
    pub zone_id: String,
    pub image_id: String,
    pub vswitch_id: String,
    pub key_pair_name: String,
    pub system_disk_id: String,
    pub system_disk_size_gib: u64,
    pub stopped_mode: String,
    /// The instance RAM role attached (empty: none).
    pub ram_role_name: String,
    pub tags: BTreeMap<String, String>,
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "InvalidInstanceId.NotFound",
        "The specified InstanceId does not exist.",
    )
}

/// The answer of Attach/DetachInstanceRamRole: one `item` per instance, `Success` false for a failed one.
fn ram_role_results(item: &str, role: &str, results: Vec<Value>) -> Value {
    let failed = results.iter().filter(|r| r["Success"] == false).count();
    let outer = format!("{item}s");
    json!({
        "RamRoleName": role, "TotalCount": results.len(), "FailCount": failed,
        outer: { item: results },
    })
}

fn incorrect_status() -> ApiError {
    ApiError::new(
        403,
        "IncorrectInstanceStatus",
        "The current status of the resource does not support this operation.",
    )
}

/// `a.b.c.d/n` → the 11th address of the block, the instance's private address.
fn private_ip(cidr: &str, n: u64) -> String {
    let base = cidr
        .split('/')
        .next()
        .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
        .map(u32::from)
        .unwrap_or(0);
    let offset = u32::try_from(10 + n % 200).unwrap_or(10);
    std::net::Ipv4Addr::from(base.wrapping_add(offset)).to_string()
}

/// The primary network interface's id of an instance.
fn eni_of(instance_id: &str) -> String {
    format!("eni-{}", instance_id.trim_start_matches("i-"))
}

/// `SecurityGroupIds.N`, or the single `SecurityGroupId`.
fn security_group_params(p: &BTreeMap<String, String>) -> Vec<String> {
    let many: Vec<String> = (1..=16)
        .map_while(|n| p.get(&format!("SecurityGroupIds.{n}")).cloned())
        .collect();
    if many.is_empty() {
        p.get("SecurityGroupId").cloned().into_iter().collect()
    } else {
        many
    }
}

impl World {
    pub(crate) fn add_instance(&mut self, seed: InstanceSeed) {
        let zone = format!("{}-a", seed.region_id);
        self.disks.insert(
            seed.system_disk_id.clone(),
            DiskRec {
                id: seed.system_disk_id.clone(),
                instance_id: seed.instance_id.clone(),
                region: seed.region_id.clone(),
                zone: zone.clone(),
                size: seed.system_disk_size_gib,
                category: "cloud_essd".into(),
                image_id: "debian_12_x64_20G_alibase_20240101.vhd".into(),
                tags: BTreeMap::new(),
            },
        );
        self.instances.insert(
            seed.instance_id.clone(),
            InstanceRec {
                name: format!("cloudcode-{}", seed.instance_id),
                host_name: "cloudcode".into(),
                id: seed.instance_id,
                region: seed.region_id,
                zone,
                status: seed.status,
                pending: None,
                description: String::new(),
                image_id: "debian_12_x64_20G_alibase_20240101.vhd".into(),
                instance_type: "ecs.e-c1m2.large".into(),
                vpc_id: "vpc-cloudcode0001".into(),
                vswitch_id: "vsw-cloudcode0001".into(),
                private_ip: "172.16.0.10".into(),
                security_groups: vec!["sg-cloudcode0001".into()],
                key_pair: String::new(),
                stopped_mode: "KeepCharging".into(),
                charge_type: "PostPaid".into(),
                spot_strategy: "NoSpot".into(),
                bandwidth_out: 0,
                user_data: String::new(),
                created: "2026-12-01T08:00Z".into(),
                tags: BTreeMap::new(),
                ram_role: String::new(),
            },
        );
    }

    /// Runs one instance or disk action; `None` when the action is not one of these.
    pub(crate) fn handle_instances(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Option<Result<Value, ApiError>> {
        Some(match action {
            "RunInstances" => self.run_instances(p),
            "DescribeInstances" => self.describe_instances(p),
            "DescribeInstanceAttribute" => self.describe_instance_attribute(p),
            "DescribeUserData" => self.describe_user_data(p),
            "DescribeInstanceMaintenanceAttributes" => self.describe_maintenance(p),
            "DescribeInstanceRamRole" => self.describe_instance_ram_role(p),
            "AttachInstanceRamRole" => self.attach_instance_ram_role(p),
            "DetachInstanceRamRole" => self.detach_instance_ram_role(p),
            "ModifyInstanceAttribute" => self.modify_instance_attribute(p),
            "StopInstance" => self.stop_instance(p),
            "StartInstance" => self.boot(p, "Stopped"),
            "RebootInstance" => self.boot(p, "Running"),
            "DeleteInstance" => self.delete_instance(p),
            "DescribeDisks" => self.describe_disks(p),
            "ResizeDisk" => self.resize_disk(p),
            "DescribeTags" => self.describe_tags(p),
            "DescribeNetworkInterfaces" => self.describe_network_interfaces(p),
            "AttachKeyPair" => self.attach_key_pair(p),
            "DetachKeyPair" => self.detach_key_pair(p),
            "TagResources" | "UntagResources" => match p.get("ResourceType").map(String::as_str) {
                Some("instance") => self.tag_instances(action, p),
                Some("disk") => self.tag_disks(action, p),
                _ => return None,
            },
            "ListTagResources" => match p.get("ResourceType").map(String::as_str) {
                Some(kind @ ("instance" | "disk")) => self.list_tag_resources(kind, p),
                _ => return None,
            },
            _ => return None,
        })
    }

    fn run_instances(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        if let Some(id) = p.get("ClientToken").and_then(|t| self.client_tokens.get(t)) {
            return Ok(json!({ "InstanceIdSets": { "InstanceIdSet": [id] } }));
        }
        let instance_type = required(p, "InstanceType")?;
        let spot_strategy = match p.get("SpotStrategy").map(String::as_str) {
            None | Some("NoSpot") => "NoSpot",
            Some(s @ ("SpotAsPriceGo" | "SpotWithPriceLimit"))
                if p.get("InstanceChargeType").is_none_or(|c| c == "PostPaid") =>
            {
                s
            }
            Some("SpotAsPriceGo" | "SpotWithPriceLimit") => {
                return Err(ApiError::new(
                    400,
                    "InvalidSpotPrepaid",
                    "The specified SpotStrategy does not support PrePay Instance.",
                ))
            }
            Some(_) => {
                return Err(ApiError::new(
                    400,
                    "InvalidSpotStrategy",
                    "The specified parameter SpotStrategy is not valid.",
                ))
            }
        };
        if !TYPE_SPECS.iter().any(|(t, _, _)| *t == instance_type) {
            return Err(ApiError::new(
                404,
                "InvalidInstanceType.NotFound",
                "The specified InstanceType does not exist.",
            ));
        }
        let image_id = required(p, "ImageId")?;
        let image_size = self.image_size(&region, &image_id).ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidImageId.NotFound",
                "The specified ImageId does not exist.",
            )
        })?;
        let vswitch_id = required(p, "VSwitchId")?;
        let (vpc_id, zone, cidr) = self.vpcs.vswitch_placement(&vswitch_id).ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidVSwitchId.NotFound",
                "The specified VSwitchId does not exist.",
            )
        })?;
        if p.get("ZoneId").is_some_and(|z| *z != zone) {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Mismatch",
                "The specified ZoneId is not the zone of the specified VSwitchId.",
            ));
        }
        if !self.zones.has_stock(&zone, &instance_type) {
            return Err(ApiError::new(
                403,
                "OperationDenied.NoStock",
                "The requested resource is sold out in the specified zone; try other types of resources or other regions and zones.",
            ));
        }
        let security_groups = security_group_params(p);
        if security_groups.is_empty() {
            return Err(ApiError::missing("SecurityGroupId"));
        }
        for sg in &security_groups {
            if self.groups.vpc_of(sg).is_none_or(|v| v != vpc_id) {
                return Err(ApiError::new(
                    404,
                    "InvalidSecurityGroupId.NotFound",
                    "The specified SecurityGroupId does not exist or not in the VPC of the VSwitch.",
                ));
            }
        }
        let key_pair = p.get("KeyPairName").cloned().unwrap_or_default();
        if !key_pair.is_empty() && !self.keypairs.exists(&region, &key_pair) {
            return Err(ApiError::new(
                404,
                "InvalidKeyPairName.NotFound",
                "The specified KeyPairName does not exist.",
            ));
        }
        let size: u64 = match p.get("SystemDisk.Size") {
            Some(s) => s
                .parse()
                .map_err(|_| ApiError::invalid("SystemDisk.Size"))?,
            None => image_size.max(40),
        };
        if size < image_size || !(20..=2048).contains(&size) {
            return Err(ApiError::new(
                400,
                "InvalidSystemDiskSize.ValueNotSupported",
                format!(
                    "The specified parameter SystemDisk.Size is less than the image size ({image_size} GiB) or out of range."
                ),
            ));
        }
        let category = p
            .get("SystemDisk.Category")
            .cloned()
            .unwrap_or_else(|| "cloud_efficiency".into());
        let name = p.get("InstanceName").cloned().unwrap_or_default();
        if !name.is_empty() && !(2..=128).contains(&name.chars().count()) {
            return Err(ApiError::invalid("InstanceName"));
        }
        let user_data = p.get("UserData").cloned().unwrap_or_default();
        if user_data.len() > 32 * 1024 {
            return Err(ApiError::new(
                400,
                "InvalidUserData.SizeExceeded",
                "The specified parameter UserData exceeds the size.",
            ));
        }
        let tags = tags_of(p)?;
        let ram_role = match p.get("RamRoleName").filter(|r| !r.is_empty()) {
            Some(role) => self.ram.instance_role(role)?,
            None => String::new(),
        };
        let seq = self.next_seq();
        let id = format!("i-dbl{seq:017x}");
        let disk_id = format!("d-dbl{seq:017x}");
        let created = self.clock();
        self.disks.insert(
            disk_id.clone(),
            DiskRec {
                id: disk_id,
                instance_id: id.clone(),
                region: region.clone(),
                zone: zone.clone(),
                size,
                category,
                image_id: image_id.clone(),
                tags: BTreeMap::new(),
            },
        );
        let polls = self.transition_polls;
        self.instances.insert(
            id.clone(),
            InstanceRec {
                id: id.clone(),
                region,
                zone,
                status: "Pending".into(),
                pending: Some(("Running".into(), polls)),
                host_name: p
                    .get("HostName")
                    .cloned()
                    .unwrap_or_else(|| format!("iZ{seq:x}Z")),
                name: if name.is_empty() { id.clone() } else { name },
                description: p.get("Description").cloned().unwrap_or_default(),
                image_id,
                instance_type,
                vpc_id,
                vswitch_id,
                private_ip: private_ip(&cidr, seq),
                security_groups,
                key_pair,
                stopped_mode: "Not-applicable".into(),
                charge_type: p
                    .get("InstanceChargeType")
                    .cloned()
                    .unwrap_or_else(|| "PostPaid".into()),
                spot_strategy: spot_strategy.to_string(),
                bandwidth_out: p
                    .get("InternetMaxBandwidthOut")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                user_data,
                created,
                tags,
                ram_role,
            },
        );
        if let Some(token) = p.get("ClientToken") {
            self.client_tokens.insert(token.clone(), id.clone());
        }
        if let Some(i) = self.instances.get(&id) {
            self.key_pair_booted(&id, &i.region.clone(), &i.key_pair.clone());
        }
        Ok(json!({
            "InstanceIdSets": { "InstanceIdSet": [id] },
            "TradePrice": 0.0,
        }))
    }

    /// Moves every instance one DescribeInstances poll closer to the status it is heading for.
    fn settle(&mut self) {
        for inst in self.instances.values_mut() {
            if let Some((target, left)) = inst.pending.take() {
                if left <= 1 {
                    inst.status = target;
                } else {
                    inst.pending = Some((target, left - 1));
                }
            }
        }
    }

    fn instance_json(&self, i: &InstanceRec) -> Value {
        let (cpu, memory) = TYPE_SPECS
            .iter()
            .find(|(t, _, _)| *t == i.instance_type)
            .map(|(_, c, m)| (*c, (*m * 1024.0) as u64))
            .unwrap_or((2, 4096));
        let (allocation_id, eip) = self.eip_of(&i.id).unwrap_or_default();
        let stopped_mode = if i.status == "Stopped" {
            i.stopped_mode.as_str()
        } else {
            "Not-applicable"
        };
        // A VPC instance as DescribeInstances documents it: the provider indexes
        // VpcAttributes.PrivateIpAddress.IpAddress[0] when InnerIpAddress is empty, and reads the primary
        // network interface (DescribeNetworkInterfaces) for its IPv6 and secondary addresses — without it an
        // imported instance has no `ipv6_addresses` and the next plan replaces it (ForceNew).
        json!({
            "NetworkInterfaces": { "NetworkInterface": [{
                "NetworkInterfaceId": eni_of(&i.id), "Type": "Primary", "PrimaryIpAddress": i.private_ip,
                "MacAddress": "00:16:3e:00:00:01",
            }]},
            "InstanceId": i.id, "InstanceName": i.name, "HostName": i.host_name, "Description": i.description,
            "RegionId": i.region, "ZoneId": i.zone, "Status": i.status, "ImageId": i.image_id,
            "InstanceType": i.instance_type, "Cpu": cpu, "Memory": memory,
            "OSName": "Ubuntu  24.04 64位", "OSType": "linux", "InstanceNetworkType": "vpc",
            "InstanceChargeType": i.charge_type, "InternetChargeType": "PayByTraffic",
            "InternetMaxBandwidthOut": i.bandwidth_out, "InternetMaxBandwidthIn": 100,
            "KeyPairName": i.key_pair, "StoppedMode": stopped_mode, "SpotStrategy": i.spot_strategy,
            "SpotPriceLimit": 0.0, "SpotDuration": 0, "DeletionProtection": false,
            "CreditSpecification": "", "ResourceGroupId": "", "AutoReleaseTime": "",
            "CreationTime": i.created, "StartTime": i.created, "ExpiredTime": "2099-12-31T15:59Z",
            "DeploymentSetId": "", "HpcClusterId": "",
            "InnerIpAddress": { "IpAddress": [] },
            "PublicIpAddress": { "IpAddress": [] },
            "VpcAttributes": {
                "VpcId": i.vpc_id, "VSwitchId": i.vswitch_id, "NatIpAddress": "",
                "PrivateIpAddress": { "IpAddress": [i.private_ip] },
            },
            "SecurityGroupIds": { "SecurityGroupId": i.security_groups },
            "EipAddress": { "IpAddress": eip, "AllocationId": allocation_id, "InternetChargeType": "" },
            "MetadataOptions": { "HttpTokens": "optional", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1 },
            "ImageOptions": { "LoginAsNonRoot": false },
            "DedicatedHostAttribute": { "DedicatedHostId": "", "DedicatedHostName": "" },
            "Tags": tag_list(&i.tags),
        })
    }

    fn describe_instances(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let ids = json_ids(p, "InstanceIds")?;
        let tags = tags_of(p)?;
        self.settle();
        let items: Vec<Value> = self
            .instances
            .values()
            .filter(|i| i.region == region)
            .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
            .filter(|i| p.get("KeyPairName").is_none_or(|k| *k == i.key_pair))
            .filter(|i| p.get("VpcId").is_none_or(|v| *v == i.vpc_id))
            .filter(|i| p.get("Status").is_none_or(|s| *s == i.status))
            .filter(|i| tags.iter().all(|(k, v)| i.tags.get(k) == Some(v)))
            .map(|i| self.instance_json(i))
            .collect();
        Ok(paged(p, "Instances", "Instance", items))
    }

    fn find(&self, p: &BTreeMap<String, String>) -> Result<&InstanceRec, ApiError> {
        let id = required(p, "InstanceId")?;
        self.instances.get(&id).ok_or_else(not_found)
    }

    fn instance_mut(&mut self, p: &BTreeMap<String, String>) -> Result<&mut InstanceRec, ApiError> {
        let id = required(p, "InstanceId")?;
        self.instances.get_mut(&id).ok_or_else(not_found)
    }

    fn describe_instance_attribute(
        &mut self,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        let i = self.find(p)?;
        let mut v = self.instance_json(i);
        if let Value::Object(map) = &mut v {
            map.insert("EnableJumboFrame".into(), json!(false));
        }
        Ok(v)
    }

    fn describe_user_data(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let i = self.find(p)?;
        Ok(json!({ "InstanceId": i.id, "RegionId": i.region, "UserData": i.user_data }))
    }

    /// `InstanceId.N`: one entry per instance asked for that exists, without a maintenance window (none is
    /// set by default) and the default action.
    fn describe_maintenance(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        required(p, "RegionId")?;
        let ids: Vec<String> = (1..=100)
            .map_while(|n| p.get(&format!("InstanceId.{n}")).cloned())
            .collect();
        let items: Vec<Value> = ids
            .iter()
            .filter(|id| self.instances.contains_key(*id))
            .map(|id| {
                json!({
                    "InstanceId": id, "NotifyOnMaintenance": false,
                    "MaintenanceWindows": { "MaintenanceWindow": [] },
                    "ActionOnMaintenance": {
                        "Value": "AutoRecover", "DefaultValue": "AutoRecover",
                        "SupportedValues": { "SupportedValue": ["Stop", "AutoRecover", "AutoRedeploy"] },
                    },
                })
            })
            .collect();
        Ok(paged(
            p,
            "MaintenanceAttributes",
            "MaintenanceAttribute",
            items,
        ))
    }

    /// `InstanceIds`: one entry per instance asked for that exists, with its role or an empty one (the provider's
    /// `alicloud_instances` drops an instance the answer does not list); `RamRoleName`: the instances with that role
    /// (of those asked for, if any).
    fn describe_instance_ram_role(
        &mut self,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let ids = json_ids(p, "InstanceIds")?;
        let role = match p.get("RamRoleName").filter(|r| !r.is_empty()) {
            Some(r) => Some(self.ram.role_name(r).ok_or_else(ram_role_not_found)?),
            None => None,
        };
        // Neither filter asks for nothing.
        let asked = ids.is_some() || role.is_some();
        let sets: Vec<Value> = self
            .instances
            .values()
            .filter(|i| asked && i.region == region)
            .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
            .filter(|i| role.as_ref().is_none_or(|r| *r == i.ram_role))
            .map(|i| json!({ "InstanceId": i.id, "RamRoleName": i.ram_role }))
            .collect();
        Ok(json!({
            "RegionId": region,
            "TotalCount": sets.len(),
            "InstanceRamRoleSets": { "InstanceRamRoleSet": sets },
        }))
    }

    /// `InstanceIds` (1..=100, a JSON array) of Attach/DetachInstanceRamRole, each an instance of `region`.
    fn ram_role_instances(
        &self,
        p: &BTreeMap<String, String>,
        region: &str,
    ) -> Result<Vec<String>, ApiError> {
        let malformed = || {
            ApiError::new(
                400,
                "InvalidInstanceIds.Malformed",
                "The specified instanceIds are not valid.",
            )
        };
        let raw = required(p, "InstanceIds")?;
        let ids: Vec<String> = serde_json::from_str(&raw).map_err(|_| malformed())?;
        if !(1..=100).contains(&ids.len()) {
            return Err(malformed());
        }
        if ids
            .iter()
            .any(|id| self.instances.get(id).is_none_or(|i| i.region != region))
        {
            return Err(not_found());
        }
        Ok(ids)
    }

    /// Gives the instances a role of the account that trusts ECS. An instance holding another role is a failed item
    /// of the answer (the API refuses a second role; the item's code is the double's own), one holding this role
    /// succeeds again.
    fn attach_instance_ram_role(
        &mut self,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let role = self.ram.instance_role(&required(p, "RamRoleName")?)?;
        let ids = self.ram_role_instances(p, &region)?;
        let mut results = Vec::new();
        for id in ids {
            let Some(i) = self.instances.get_mut(&id) else {
                continue;
            };
            if i.ram_role.is_empty() || i.ram_role == role {
                i.ram_role = role.clone();
                results.push(json!({ "InstanceId": id, "Success": true, "Code": "200", "Message": "success" }));
            } else {
                results.push(json!({
                    "InstanceId": id, "Success": false, "Code": "InvalidInstance.RamRoleAttached",
                    "Message": "The instance already has an instance RAM role; detach it first.",
                }));
            }
        }
        Ok(ram_role_results(
            "AttachInstanceRamRoleResult",
            &role,
            results,
        ))
    }

    /// Takes the role (`RamRoleName`, or whichever they have) from the instances; an instance holding another role
    /// is a failed item (its code is the double's own), one holding none succeeds.
    fn detach_instance_ram_role(
        &mut self,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let role = match p.get("RamRoleName").filter(|r| !r.is_empty()) {
            Some(r) => Some(self.ram.role_name(r).ok_or_else(ram_role_not_found)?),
            None => None,
        };
        let ids = self.ram_role_instances(p, &region)?;
        let mut results = Vec::new();
        for id in ids {
            let Some(i) = self.instances.get_mut(&id) else {
                continue;
            };
            if role.as_ref().is_none_or(|r| *r == i.ram_role) || i.ram_role.is_empty() {
                let had = std::mem::take(&mut i.ram_role);
                results.push(json!({
                    "InstanceId": id, "Success": true, "Code": "200", "Message": "success",
                    "InstanceRamRoleSets": { "InstanceRamRoleSet": [{ "InstanceId": id, "RamRoleName": had }] },
                }));
            } else {
                results.push(json!({
                    "InstanceId": id, "Success": false, "Code": "InvalidRamRole.NotEqual",
                    "Message": "The specified RamRoleName is not the instance's RAM role.",
                }));
            }
        }
        Ok(ram_role_results(
            "DetachInstanceRamRoleResult",
            role.as_deref().unwrap_or(""),
            results,
        ))
    }

    fn modify_instance_attribute(
        &mut self,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        if let Some(name) = p.get("InstanceName") {
            if !(2..=128).contains(&name.chars().count()) {
                return Err(ApiError::invalid("InstanceName"));
            }
        }
        let i = self.instance_mut(p)?;
        if let Some(v) = p.get("InstanceName") {
            i.name = v.clone();
        }
        if let Some(v) = p.get("HostName") {
            i.host_name = v.clone();
        }
        if let Some(v) = p.get("Description") {
            i.description = v.clone();
        }
        if let Some(v) = p.get("UserData") {
            i.user_data = v.clone();
        }
        Ok(json!({}))
    }

    fn stop_instance(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let mode = match p.get("StoppedMode").map(String::as_str) {
            None | Some("") => "KeepCharging",
            Some(m @ ("StopCharging" | "KeepCharging")) => m,
            Some(_) => return Err(ApiError::invalid("StoppedMode")),
        }
        .to_string();
        self.transition(p, "Running", "Stopping", "Stopped")?;
        self.instance_mut(p)?.stopped_mode = mode;
        Ok(json!({}))
    }

    /// Start or reboot: `Starting`, then `Running`; the key pair bound to the instance reaches the machine.
    fn boot(&mut self, p: &BTreeMap<String, String>, from: &str) -> Result<Value, ApiError> {
        let out = self.transition(p, from, "Starting", "Running")?;
        let i = self.find(p)?;
        self.key_pair_booted(&i.id.clone(), &i.region.clone(), &i.key_pair.clone());
        Ok(out)
    }

    fn key_pair_booted(&self, instance_id: &str, region: &str, key_pair: &str) {
        if let (Some(hook), Some(key)) = (
            self.key_pair_boot.as_ref(),
            self.keypairs.public_key(region, key_pair),
        ) {
            hook(instance_id, &key);
        }
    }

    /// `from` → `via` now, → `to` after `transition_polls` DescribeInstances calls; any other
    /// current status is `IncorrectInstanceStatus`.
    fn transition(
        &mut self,
        p: &BTreeMap<String, String>,
        from: &str,
        via: &str,
        to: &str,
    ) -> Result<Value, ApiError> {
        let polls = self.transition_polls;
        let inst = self.instance_mut(p)?;
        if inst.status != from {
            return Err(incorrect_status());
        }
        inst.status = via.into();
        inst.pending = Some((to.into(), polls));
        Ok(json!({}))
    }

    /// A running instance goes only with `Force=true`; its system disk goes with it (snapshots stay).
    fn delete_instance(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let force = p.get("Force").map(String::as_str) == Some("true");
        let i = self.find(p)?;
        if !force && i.status != "Stopped" {
            return Err(incorrect_status());
        }
        if matches!(i.status.as_str(), "Pending" | "Starting" | "Stopping") {
            return Err(incorrect_status());
        }
        if self.eip_of(&i.id).is_some() {
            return Err(ApiError::new(
                403,
                "DependencyViolation.EIP",
                "The instance is still associated with an EIP; unassociate it first.",
            ));
        }
        let id = i.id.clone();
        self.instances.remove(&id);
        self.disks.retain(|_, d| d.instance_id != id);
        Ok(json!({}))
    }

    fn describe_disks(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let disk_type = p.get("DiskType").map(String::as_str).unwrap_or("all");
        if !matches!(disk_type, "all" | "system" | "data") {
            return Err(ApiError::invalid("DiskType"));
        }
        let ids = json_ids(p, "DiskIds")?;
        let items: Vec<Value> = self
            .disks
            .values()
            .filter(|d| d.region == region)
            .filter(|d| p.get("InstanceId").is_none_or(|i| *i == d.instance_id))
            .filter(|_| disk_type != "data")
            .filter(|d| ids.as_ref().is_none_or(|ids| ids.contains(&d.id)))
            .map(|d| {
                json!({
                    "DiskId": d.id, "InstanceId": d.instance_id, "RegionId": d.region,
                    "ZoneId": d.zone, "Type": "system", "Category": d.category, "Size": d.size,
                    "Status": "In_use", "Device": "/dev/xvda", "Portable": false, "ImageId": d.image_id,
                    "DiskName": "", "Description": "", "Encrypted": false, "KMSKeyId": "",
                    "PerformanceLevel": if d.category == "cloud_essd" { "PL0" } else { "" },
                    "AutoSnapshotPolicyId": "", "StorageClusterId": "", "DeleteWithInstance": true,
                    "Tags": tag_list(&d.tags),
                })
            })
            .collect();
        Ok(paged(p, "Disks", "Disk", items))
    }

    /// Grows a disk (never shrinks it: `InvalidDiskSize.TooSmall`); `offline` needs a stopped instance.
    fn resize_disk(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = required(p, "DiskId")?;
        let new_size: u64 = required(p, "NewSize")?
            .parse()
            .map_err(|_| ApiError::invalid("NewSize"))?;
        let online = p.get("Type").map(String::as_str) == Some("online");
        let disk = self.disks.get(&id).cloned().ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidDiskId.NotFound",
                "The specified disk does not exist.",
            )
        })?;
        if new_size < disk.size {
            return Err(ApiError::new(
                403,
                "InvalidDiskSize.TooSmall",
                "The specified parameter NewSize is less than the current disk size.",
            ));
        }
        if new_size > 2048 {
            return Err(ApiError::new(
                400,
                "InvalidDiskSize.TooLarge",
                "The specified parameter NewSize is beyond the permitted range.",
            ));
        }
        let status = self.instance_status(&disk.instance_id).unwrap_or_default();
        if !online && status != "Stopped" || online && status != "Running" {
            return Err(incorrect_status());
        }
        if let Some(d) = self.disks.get_mut(&id) {
            d.size = new_size;
        }
        Ok(json!({}))
    }

    /// `InstanceIds` (a JSON array) get `KeyPairName`; the key reaches the system on the next start or reboot.
    fn attach_key_pair(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let name = required(p, "KeyPairName")?;
        if !self.keypairs.exists(&region, &name) {
            return Err(ApiError::new(
                404,
                "InvalidKeyPairName.NotFound",
                "The specified KeyPairName does not exist.",
            ));
        }
        let ids = json_ids(p, "InstanceIds")?.ok_or_else(|| ApiError::missing("InstanceIds"))?;
        let mut results = Vec::new();
        for id in ids {
            match self.instances.get_mut(&id) {
                Some(i) => {
                    i.key_pair = name.clone();
                    results.push(json!({ "InstanceId": id, "Success": "true", "Code": "200", "Message": "successful" }));
                }
                None => results.push(json!({ "InstanceId": id, "Success": "false", "Code": "InvalidInstanceId.NotFound", "Message": "The specified InstanceId does not exist." })),
            }
        }
        Ok(json!({ "TotalCount": results.len(), "Results": { "Result": results } }))
    }

    fn detach_key_pair(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        required(p, "RegionId")?;
        let name = required(p, "KeyPairName")?;
        let ids = json_ids(p, "InstanceIds")?.ok_or_else(|| ApiError::missing("InstanceIds"))?;
        for id in &ids {
            if let Some(i) = self.instances.get_mut(id).filter(|i| i.key_pair == name) {
                i.key_pair.clear();
            }
        }
        Ok(json!({ "TotalCount": ids.len() }))
    }

    fn tag_instances(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        for id in resource_ids(p)? {
            let i = self.instances.get_mut(&id).ok_or_else(not_found)?;
            apply_tags(action, p, &mut i.tags)?;
        }
        Ok(json!({}))
    }

    /// ListTagResources for instances or disks: those of `ResourceId.N` (else all of the region), each tag one item,
    /// filtered by `Tag.N` (a key with any value when the value is not given).
    fn list_tag_resources(
        &mut self,
        kind: &str,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let ids: Vec<String> = (1..=50)
            .map_while(|n| p.get(&format!("ResourceId.{n}")).cloned())
            .collect();
        let wanted: Vec<(String, Option<String>)> = (1..=20)
            .map_while(|n| {
                let key = p.get(&format!("Tag.{n}.Key"))?;
                Some((key.clone(), p.get(&format!("Tag.{n}.Value")).cloned()))
            })
            .collect();
        let tagged: Vec<(&String, &BTreeMap<String, String>)> = if kind == "instance" {
            self.instances
                .values()
                .filter(|i| i.region == region)
                .map(|i| (&i.id, &i.tags))
                .collect()
        } else {
            self.disks
                .values()
                .filter(|d| d.region == region)
                .map(|d| (&d.id, &d.tags))
                .collect()
        };
        let items: Vec<Value> = tagged
            .into_iter()
            .filter(|(id, _)| ids.is_empty() || ids.contains(id))
            .filter(|(_, tags)| {
                wanted.iter().all(|(k, v)| {
                    tags.get(k)
                        .is_some_and(|have| v.as_ref().is_none_or(|v| v == have))
                })
            })
            .flat_map(|(id, tags)| {
                tags.iter().map(move |(k, v)| {
                    json!({ "ResourceType": kind, "ResourceId": id, "TagKey": k, "TagValue": v })
                })
            })
            .collect();
        Ok(json!({ "NextToken": "", "TagResources": { "TagResource": items } }))
    }

    fn tag_disks(&mut self, action: &str, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        for id in resource_ids(p)? {
            let d = self.disks.get_mut(&id).ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidDiskId.NotFound",
                    "The specified disk does not exist.",
                )
            })?;
            apply_tags(action, p, &mut d.tags)?;
        }
        Ok(json!({}))
    }

    /// DescribeTags (the older tag query) for one instance, disk or image; any other resource type has none here.
    fn describe_tags(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        required(p, "RegionId")?;
        let id = p.get("ResourceId").cloned().unwrap_or_default();
        let empty = BTreeMap::new();
        let tags = match p.get("ResourceType").map(String::as_str) {
            Some("instance") => self.instances.get(&id).map(|i| &i.tags),
            Some("disk") => self.disks.get(&id).map(|d| &d.tags),
            Some("image") => self.images.get(&id).map(|i| &i.tags),
            Some(_) => None,
            None => return Err(ApiError::missing("ResourceType")),
        }
        .unwrap_or(&empty);
        let items: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({ "TagKey": k, "TagValue": v, "ResourceTypeCount": {} }))
            .collect();
        Ok(paged(p, "Tags", "Tag", items))
    }

    /// `NetworkInterfaceId.N`: the primary interfaces of the instances (one private address, no IPv6).
    fn describe_network_interfaces(
        &mut self,
        p: &BTreeMap<String, String>,
    ) -> Result<Value, ApiError> {
        required(p, "RegionId")?;
        let ids: Vec<String> = (1..=100)
            .map_while(|n| p.get(&format!("NetworkInterfaceId.{n}")).cloned())
            .collect();
        let items: Vec<Value> = self
            .instances
            .values()
            .filter(|i| ids.is_empty() || ids.contains(&eni_of(&i.id)))
            .filter(|i| p.get("InstanceId").is_none_or(|x| *x == i.id))
            .map(|i| {
                json!({
                    "NetworkInterfaceId": eni_of(&i.id), "Type": "Primary", "InstanceId": i.id,
                    "Status": "InUse", "VpcId": i.vpc_id, "VSwitchId": i.vswitch_id, "ZoneId": i.zone,
                    "PrivateIpAddress": i.private_ip, "MacAddress": "00:16:3e:00:00:01",
                    // No QueuePairNumber or Attachment.NetworkCardIndex: the provider stores them in ForceNew,
                    // non-computed arguments the module leaves unset, so a value here replaces the instance on
                    // every plan. What the real API reports for them is not recorded here yet.
                    "NetworkInterfaceTrafficMode": "Standard",
                    "SecurityGroupIds": { "SecurityGroupId": i.security_groups },
                    "PrivateIpSets": { "PrivateIpSet": [{ "PrivateIpAddress": i.private_ip, "Primary": true }] },
                    "Ipv6Sets": { "Ipv6Set": [] }, "Ipv4PrefixSets": { "Ipv4PrefixSet": [] },
                    "Tags": { "Tag": [] },
                })
            })
            .collect();
        Ok(json!({
            "TotalCount": items.len(), "PageNumber": 1, "PageSize": 10, "NextToken": "",
            "NetworkInterfaceSets": { "NetworkInterfaceSet": items },
        }))
    }

    /// What a test can see of every instance.
    pub(crate) fn instance_views(&self) -> Vec<InstanceView> {
        self.instances
            .values()
            .map(|i| {
                let disk = self.disks.values().find(|d| d.instance_id == i.id);
                InstanceView {
                    instance_id: i.id.clone(),
                    name: i.name.clone(),
                    status: i.status.clone(),
                    zone_id: i.zone.clone(),
                    image_id: i.image_id.clone(),
                    vswitch_id: i.vswitch_id.clone(),
                    key_pair_name: i.key_pair.clone(),
                    system_disk_id: disk.map(|d| d.id.clone()).unwrap_or_default(),
                    system_disk_size_gib: disk.map(|d| d.size).unwrap_or_default(),
                    stopped_mode: i.stopped_mode.clone(),
                    ram_role_name: i.ram_role.clone(),
                    tags: i.tags.clone(),
                }
            })
            .collect()
    }

    /// Whether any instance uses this vswitch or security group (they cannot be deleted then).
    pub(crate) fn in_use_by_instance(&self, vswitch_or_group: &str) -> bool {
        self.instances.values().any(|i| {
            i.vswitch_id == vswitch_or_group
                || i.security_groups.iter().any(|g| g == vswitch_or_group)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs_double::state::test_params;

    const BOX: &str = "i-bp1instancerole1";
    const REGION: &str = "cn-hangzhou";
    const ECS_TRUST: &str = r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}]}"#;
    const FC_TRUST: &str = r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["fc.aliyuncs.com"]}}]}"#;

    fn world() -> World {
        let mut w = World::new();
        w.add_instance(InstanceSeed::running(BOX, REGION));
        for (role, trust) in [
            ("box-idle", ECS_TRUST),
            ("box-other", ECS_TRUST),
            ("functions", FC_TRUST),
        ] {
            w.handle_ram(
                "CreateRole",
                &test_params(&[("RoleName", role), ("AssumeRolePolicyDocument", trust)]),
            )
            .unwrap();
        }
        w
    }

    fn run(w: &mut World, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        w.handle(action, &test_params(pairs))
    }

    fn role_call<'a>(role: &'a str, ids: &'a str) -> [(&'a str, &'a str); 3] {
        [
            ("RegionId", REGION),
            ("RamRoleName", role),
            ("InstanceIds", ids),
        ]
    }

    fn role_of(w: &mut World) -> Value {
        let ids = format!("[\"{BOX}\"]");
        let d = run(
            w,
            "DescribeInstanceRamRole",
            &[("RegionId", REGION), ("InstanceIds", &ids)],
        )
        .unwrap();
        d["InstanceRamRoleSets"]["InstanceRamRoleSet"][0]["RamRoleName"].clone()
    }

    #[test]
    fn an_instance_takes_one_role_of_the_account_that_trusts_ecs() {
        let mut w = world();
        let ids = format!("[\"{BOX}\"]");
        assert_eq!(role_of(&mut w), "");
        for (role, ids, code) in [
            ("nobody", ids.as_str(), "InvalidRamRole.NotFound"),
            ("functions", ids.as_str(), "InvalidRamRole.NotEcsRole"),
            ("box-idle", "i-not-json", "InvalidInstanceIds.Malformed"),
            ("box-idle", "[]", "InvalidInstanceIds.Malformed"),
            ("box-idle", "[\"i-ghost\"]", "InvalidInstanceId.NotFound"),
        ] {
            let err = run(&mut w, "AttachInstanceRamRole", &role_call(role, ids)).unwrap_err();
            assert_eq!(err.code, code, "{role} {ids}");
        }
        let done = run(
            &mut w,
            "AttachInstanceRamRole",
            &role_call("BOX-IDLE", &ids),
        )
        .unwrap();
        assert_eq!(
            (done["RamRoleName"].as_str(), done["FailCount"].as_u64()),
            (Some("box-idle"), Some(0))
        );
        assert_eq!(role_of(&mut w), "box-idle");
        // A second role is a failed item; the first stays.
        let other = run(
            &mut w,
            "AttachInstanceRamRole",
            &role_call("box-other", &ids),
        )
        .unwrap();
        assert_eq!(other["FailCount"], 1);
        assert_eq!(
            other["AttachInstanceRamRoleResults"]["AttachInstanceRamRoleResult"][0]["Success"],
            false
        );
        assert_eq!(role_of(&mut w), "box-idle");
        // Listed by role too; a role the account does not have is not found.
        let by_role = run(
            &mut w,
            "DescribeInstanceRamRole",
            &[("RegionId", REGION), ("RamRoleName", "box-idle")],
        )
        .unwrap();
        assert_eq!(by_role["TotalCount"], 1);
        let err = run(
            &mut w,
            "DescribeInstanceRamRole",
            &[("RegionId", REGION), ("RamRoleName", "nobody")],
        )
        .unwrap_err();
        assert_eq!(err.code, "InvalidRamRole.NotFound");

        let wrong = run(
            &mut w,
            "DetachInstanceRamRole",
            &role_call("box-other", &ids),
        )
        .unwrap();
        assert_eq!(wrong["FailCount"], 1);
        let detached = run(
            &mut w,
            "DetachInstanceRamRole",
            &role_call("box-idle", &ids),
        )
        .unwrap();
        let item = &detached["DetachInstanceRamRoleResults"]["DetachInstanceRamRoleResult"][0];
        assert_eq!(
            item["InstanceRamRoleSets"]["InstanceRamRoleSet"][0]["RamRoleName"],
            "box-idle"
        );
        assert_eq!(role_of(&mut w), "");
    }

    #[test]
    fn instance_tags_change_with_tag_and_untag_resources_and_show_everywhere() {
        let mut w = world();
        let tag = [
            ("RegionId", REGION),
            ("ResourceType", "instance"),
            ("ResourceId.1", BOX),
            ("Tag.1.Key", "cloudcode:idle-suspended"),
            ("Tag.1.Value", "2026-12-01T08:00:00Z"),
            ("Tag.2.Key", "cloudcode:stack"),
            ("Tag.2.Value", "box"),
        ];
        run(&mut w, "TagResources", &tag).unwrap();
        let listed = run(
            &mut w,
            "ListTagResources",
            &[
                ("RegionId", REGION),
                ("ResourceType", "instance"),
                ("ResourceId.1", BOX),
            ],
        )
        .unwrap();
        let items = listed["TagResources"]["TagResource"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(items.len(), 2);
        assert_eq!(
            (
                items[0]["ResourceId"].as_str(),
                items[0]["ResourceType"].as_str()
            ),
            (Some(BOX), Some("instance"))
        );
        let by_tag = run(
            &mut w,
            "ListTagResources",
            &[
                ("RegionId", REGION),
                ("ResourceType", "instance"),
                ("Tag.1.Key", "cloudcode:idle-suspended"),
            ],
        )
        .unwrap();
        assert_eq!(
            by_tag["TagResources"]["TagResource"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let filtered = run(
            &mut w,
            "DescribeInstances",
            &[
                ("RegionId", REGION),
                ("Tag.1.Key", "cloudcode:stack"),
                ("Tag.1.Value", "box"),
            ],
        )
        .unwrap();
        assert_eq!(filtered["Instances"]["Instance"][0]["InstanceId"], BOX);

        let untag = [
            ("RegionId", REGION),
            ("ResourceType", "instance"),
            ("ResourceId.1", BOX),
            ("TagKey.1", "cloudcode:idle-suspended"),
        ];
        run(&mut w, "UntagResources", &untag).unwrap();
        let described = run(&mut w, "DescribeInstances", &[("RegionId", REGION)]).unwrap();
        let tags = described["Instances"]["Instance"][0]["Tags"]["Tag"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(tags.len(), 1);
        assert_eq!(
            (tags[0]["TagKey"].as_str(), tags[0]["TagValue"].as_str()),
            (Some("cloudcode:stack"), Some("box"))
        );
        let unknown = [
            ("RegionId", REGION),
            ("ResourceType", "instance"),
            ("ResourceId.1", "i-ghost"),
            ("Tag.1.Key", "k"),
        ];
        assert_eq!(
            run(&mut w, "TagResources", &unknown).unwrap_err().code,
            "InvalidInstanceId.NotFound"
        );
    }
}
