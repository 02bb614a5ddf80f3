//! The VPC API (2016-04-28) of the double: VPCs with their system route table and vswitches, created
//! `Pending` and `Available` after a poll, as the official provider drives them (CreateVpc,
//! DescribeVpcAttribute, DescribeRouteTableList, DeleteVpc, CreateVSwitch, DescribeVSwitchAttributes,
//! DeleteVSwitch). An unknown VPC is `InvalidVpcId.NotFound` with HTTP 404; an unknown vswitch is answered
//! with an empty `VSwitchId`, which is what the provider's not-found check reads; a VPC with a vswitch cannot
//! be deleted (`DependencyViolation.VSwitch`, which the provider retries).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{required, ApiError};
use super::tags::{apply_tags, resource_ids};

/// The VPC API version the double serves.
pub const VPC_API_VERSION: &str = "2016-04-28";

#[derive(Debug, Clone)]
struct VpcRec {
    id: String,
    region: String,
    cidr: String,
    name: String,
    description: String,
    vrouter: String,
    route_table: String,
    /// DescribeVpcAttribute calls left before `Pending` becomes `Available`.
    pending_polls: u32,
    created: String,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct VSwitchRec {
    id: String,
    vpc_id: String,
    region: String,
    zone: String,
    cidr: String,
    name: String,
    description: String,
    pending_polls: u32,
    created: String,
    tags: BTreeMap<String, String>,
}

/// VPC state behind the server.
#[derive(Default)]
pub(crate) struct Vpcs {
    vpcs: BTreeMap<String, VpcRec>,
    vswitches: BTreeMap<String, VSwitchRec>,
}

fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((u32::from(ip), len))
}

/// `inner` lies within `outer` (both a.b.c.d/n).
fn within(inner: &str, outer: &str) -> bool {
    let (Some((i, il)), Some((o, ol))) = (parse_cidr(inner), parse_cidr(outer)) else {
        return false;
    };
    let mask = if ol == 0 { 0 } else { u32::MAX << (32 - ol) };
    il >= ol && (i & mask) == (o & mask)
}

/// Tags as the VPC API answers them: `Tags.Tag[]{Key, Value}`.
fn key_value_tags(tags: &BTreeMap<String, String>) -> Value {
    json!({ "Tag": tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect::<Vec<_>>() })
}

fn malformed_cidr() -> ApiError {
    ApiError::new(
        400,
        "InvalidCidrBlock.Malformed",
        "Specified CIDR block is not valid.",
    )
}

/// A private IPv4 block of the documented sizes (/8 to /28 inside 10/8, 172.16/12 or 192.168/16).
fn valid_cidr(cidr: &str) -> bool {
    let Some((ip, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(len)) = (ip.parse::<std::net::Ipv4Addr>(), len.parse::<u8>()) else {
        return false;
    };
    let o = ip.octets();
    let private = o[0] == 10 && len >= 8
        || o[0] == 172 && (16..32).contains(&o[1]) && len >= 12
        || o[0] == 192 && o[1] == 168 && len >= 16;
    private && len <= 28
}

impl Vpcs {
    /// Runs one VPC action; `seq` numbers new ids, `now` is the creation time.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: String,
    ) -> Result<Value, ApiError> {
        match action {
            "CreateVpc" => self.create(p, seq, now),
            "DescribeVpcAttribute" => self.describe(p),
            "DescribeRouteTableList" => self.route_tables(p),
            "DeleteVpc" => self.delete(p),
            "CreateVSwitch" => self.create_vswitch(p, seq, now),
            "DescribeVSwitchAttributes" => self.describe_vswitch(p),
            "DeleteVSwitch" => self.delete_vswitch(p),
            "TagResources" | "UnTagResources" => self.tag(action, p),
            "ModifyVpcAttribute" => self.modify_vpc(p),
            "ModifyVSwitchAttribute" => self.modify_vswitch(p),
            _ => Err(ApiError::new(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )),
        }
    }

    fn create(
        &mut self,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: String,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let cidr = p
            .get("CidrBlock")
            .cloned()
            .unwrap_or_else(|| "172.16.0.0/12".into());
        if !valid_cidr(&cidr) {
            return Err(malformed_cidr());
        }
        let v = VpcRec {
            id: format!("vpc-cc{seq:016x}"),
            region,
            cidr,
            name: p.get("VpcName").cloned().unwrap_or_default(),
            description: p.get("Description").cloned().unwrap_or_default(),
            vrouter: format!("vrt-cc{seq:016x}"),
            route_table: format!("vtb-cc{seq:016x}"),
            pending_polls: 1,
            created: now,
            tags: BTreeMap::new(),
        };
        let out = json!({
            "VpcId": v.id, "VRouterId": v.vrouter, "RouteTableId": v.route_table,
            "ResourceGroupId": "rg-cloudcodedefault",
        });
        self.vpcs.insert(v.id.clone(), v);
        Ok(out)
    }

    fn find(&mut self, p: &BTreeMap<String, String>) -> Result<&mut VpcRec, ApiError> {
        let region = required(p, "RegionId")?;
        let id = required(p, "VpcId")?;
        self.vpcs
            .get_mut(&id)
            .filter(|v| v.region == region)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidVpcId.NotFound",
                    "Specified VPC does not exist.",
                )
            })
    }

    fn describe(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = self.find(p)?.id.clone();
        let vswitches: Vec<String> = self
            .vswitches
            .values()
            .filter(|s| s.vpc_id == id)
            .map(|s| s.id.clone())
            .collect();
        let v = self.find(p)?;
        let status = if v.pending_polls > 0 {
            v.pending_polls -= 1;
            "Pending"
        } else {
            "Available"
        };
        Ok(json!({
            "VpcId": v.id, "RegionId": v.region, "Status": status, "VpcName": v.name,
            "CidrBlock": v.cidr, "Description": v.description, "VRouterId": v.vrouter,
            "IsDefault": false, "CreationTime": v.created, "ResourceGroupId": "rg-cloudcodedefault",
            "ClassicLinkEnabled": false, "Ipv6CidrBlock": "", "EnabledIpv6": false,
            "DnsHostnameStatus": "DISABLED", "DhcpOptionsSetId": "", "DhcpOptionsSetStatus": "",
            "SecondaryCidrBlocks": { "SecondaryCidrBlock": [] },
            "UserCidrs": { "UserCidr": [] },
            "Ipv6CidrBlocks": { "Ipv6CidrBlock": [] },
            "VSwitchIds": { "VSwitchId": vswitches },
            "CloudResources": { "CloudResourceSetType": [] },
            "Tags": key_value_tags(&v.tags),
        }))
    }

    fn route_tables(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let v = self.find(p)?;
        Ok(json!({
            "TotalCount": 1, "PageNumber": 1, "PageSize": 10,
            "RouterTableList": { "RouterTableListType": [{
                "RouteTableId": v.route_table, "RouteTableType": "System", "VpcId": v.id,
                "VRouterId": v.vrouter, "RouterId": v.vrouter, "RouterType": "VRouter",
                "RouteTableName": "", "Description": "", "Status": "Available",
                "CreationTime": v.created, "ResourceGroupId": "rg-cloudcodedefault",
                "Tags": { "Tag": [] },
            }]},
        }))
    }

    fn delete(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = self.find(p)?.id.clone();
        if self.vswitches.values().any(|s| s.vpc_id == id) {
            return Err(ApiError::new(
                400,
                "DependencyViolation.VSwitch",
                "Specified object has dependent resources: VSwitch.",
            ));
        }
        self.vpcs.remove(&id);
        Ok(json!({}))
    }

    fn create_vswitch(
        &mut self,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: String,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let vpc_id = required(p, "VpcId")?;
        let zone = required(p, "ZoneId")?;
        let cidr = required(p, "CidrBlock")?;
        let vpc = self
            .vpcs
            .get(&vpc_id)
            .filter(|v| v.region == region)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidVpcId.NotFound",
                    "Specified VPC does not exist.",
                )
            })?;
        if !zone.starts_with(&region) {
            return Err(ApiError::new(
                400,
                "InvalidZoneId.NotFound",
                "Specified zone does not exist.",
            ));
        }
        if !within(&cidr, &vpc.cidr)
            || parse_cidr(&cidr).is_none_or(|(_, l)| !(16..=29).contains(&l))
        {
            return Err(malformed_cidr());
        }
        if self
            .vswitches
            .values()
            .any(|s| s.vpc_id == vpc_id && (within(&cidr, &s.cidr) || within(&s.cidr, &cidr)))
        {
            return Err(ApiError::new(
                400,
                "InvalidCidrBlock.Overlapped",
                "Specified CIDR block overlapped with other vswitch.",
            ));
        }
        let s = VSwitchRec {
            id: format!("vsw-cc{seq:016x}"),
            vpc_id,
            region,
            zone,
            cidr,
            name: p.get("VSwitchName").cloned().unwrap_or_default(),
            description: p.get("Description").cloned().unwrap_or_default(),
            pending_polls: 1,
            created: now,
            tags: BTreeMap::new(),
        };
        let out = json!({ "VSwitchId": s.id });
        self.vswitches.insert(s.id.clone(), s);
        Ok(out)
    }

    fn describe_vswitch(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = required(p, "VSwitchId")?;
        let region = p.get("RegionId").cloned().unwrap_or_default();
        let route_table = |vpcs: &BTreeMap<String, VpcRec>, vpc: &str| {
            vpcs.get(vpc)
                .map(|v| v.route_table.clone())
                .unwrap_or_default()
        };
        let Some(s) = self.vswitches.get_mut(&id).filter(|s| s.region == region) else {
            // Unknown: an empty answer, which the provider's not-found check reads.
            return Ok(
                json!({ "VSwitchId": "", "VpcId": "", "Status": "", "CidrBlock": "", "ZoneId": "" }),
            );
        };
        let status = if s.pending_polls > 0 {
            s.pending_polls -= 1;
            "Pending"
        } else {
            "Available"
        };
        let s = s.clone();
        Ok(json!({
            "VSwitchId": s.id, "VpcId": s.vpc_id, "Status": status, "CidrBlock": s.cidr,
            "ZoneId": s.zone, "VSwitchName": s.name, "Description": s.description,
            "CreationTime": s.created, "IsDefault": false, "Ipv6CidrBlock": "",
            "AvailableIpAddressCount": 252, "ResourceGroupId": "rg-cloudcodedefault", "NetworkAclId": "",
            "RouteTable": { "RouteTableId": route_table(&self.vpcs, &s.vpc_id), "RouteTableType": "System" },
            "Tags": key_value_tags(&s.tags),
        }))
    }

    fn delete_vswitch(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        required(p, "RegionId")?;
        let id = required(p, "VSwitchId")?;
        self.vswitches
            .remove(&id)
            .map(|_| json!({}))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidVSwitchId.NotFound",
                    "Specified vswitch does not exist.",
                )
            })
    }

    /// Ids of the vswitches that exist.
    pub(crate) fn vswitch_ids(&self) -> Vec<String> {
        self.vswitches.keys().cloned().collect()
    }

    /// ModifyVpcAttribute: `VpcName`, `Description` (what the module sets).
    fn modify_vpc(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let v = self.find(p)?;
        if let Some(name) = p.get("VpcName") {
            v.name = name.clone();
        }
        if let Some(d) = p.get("Description") {
            v.description = d.clone();
        }
        Ok(json!({}))
    }

    /// ModifyVSwitchAttribute: `VSwitchName`, `Description`.
    fn modify_vswitch(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = required(p, "VSwitchId")?;
        let s = self.vswitches.get_mut(&id).ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidVSwitchId.NotFound",
                "Specified vswitch does not exist.",
            )
        })?;
        if let Some(name) = p.get("VSwitchName") {
            s.name = name.clone();
        }
        if let Some(d) = p.get("Description") {
            s.description = d.clone();
        }
        Ok(json!({}))
    }

    /// TagResources / UnTagResources for `ResourceType` VPC or VSWITCH (the VPC API's names).
    fn tag(&mut self, action: &str, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        required(p, "RegionId")?;
        let kind = required(p, "ResourceType")?.to_ascii_uppercase();
        let not_found = || {
            ApiError::new(
                404,
                "InvalidResourceId.NotFound",
                "The specified resource is not found.",
            )
        };
        // The VPC API names the tag-removal action UnTagResources; tags.rs reads anything else as removal.
        let action = if action == "TagResources" {
            "TagResources"
        } else {
            "UntagResources"
        };
        for id in resource_ids(p)? {
            let tags = match kind.as_str() {
                "VPC" => self.vpcs.get_mut(&id).map(|v| &mut v.tags),
                "VSWITCH" => self.vswitches.get_mut(&id).map(|v| &mut v.tags),
                _ => return Err(ApiError::invalid("ResourceType")),
            }
            .ok_or_else(not_found)?;
            apply_tags(action, p, tags)?;
        }
        Ok(json!({}))
    }

    /// (VPC id, zone, CIDR block) of an existing vswitch, for RunInstances.
    pub(crate) fn vswitch_placement(&self, id: &str) -> Option<(String, String, String)> {
        self.vswitches
            .get(id)
            .map(|s| (s.vpc_id.clone(), s.zone.clone(), s.cidr.clone()))
    }

    /// Ids of the VPCs that exist.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.vpcs.keys().cloned().collect()
    }
}
