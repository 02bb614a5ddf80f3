//! Elastic IP addresses of the VPC API (2016-04-28) as the official provider drives them: AllocateEipAddress from a
//! seeded address pool (ClientToken idempotent), DescribeEipAddresses (filters, paging; an unknown id is an empty
//! list, which is what the provider's not-found check reads), ModifyEipAddressAttribute, AssociateEipAddress with an
//! ECS instance of the world (visible at once as `InUse`), UnassociateEipAddress, ReleaseEipAddress (refused while
//! associated) and the EIP tags of TagResources / UnTagResources / ListTagResources.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

use super::state::{paged, required, ApiError};
use super::tags::{apply_tags, resource_ids, tags_of};

#[derive(Debug, Clone)]
struct Eip {
    id: String,
    region: String,
    ip: String,
    name: String,
    description: String,
    bandwidth: String,
    internet_charge_type: String,
    charge_type: String,
    /// `Available` or `InUse`.
    status: &'static str,
    /// The associated instance and its type (`EcsInstance`), empty when `Available`.
    instance_id: String,
    instance_type: String,
    mode: String,
    created: String,
    tags: BTreeMap<String, String>,
}

/// What a test can see of an EIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EipView {
    pub allocation_id: String,
    pub ip: String,
    /// The instance it is associated with.
    pub instance_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// EIPs behind the server.
#[derive(Default)]
pub(crate) struct Eips {
    eips: BTreeMap<String, Eip>,
    /// Addresses AllocateEipAddress hands out next, in order.
    pool: VecDeque<String>,
    /// Addresses handed out from the documentation range once the pool is empty.
    fallback: u32,
    client_tokens: BTreeMap<String, String>,
}

fn allocation_not_found() -> ApiError {
    ApiError::new(
        404,
        "InvalidAllocationId.NotFound",
        "Specified allocation address is not found.",
    )
}

fn incorrect_eip_status() -> ApiError {
    ApiError::new(
        400,
        "IncorrectEipStatus",
        "Current elastic IP status does not support this operation.",
    )
}

/// `value` if it is one of `allowed`, else `default` when absent, else `InvalidParameter`.
fn one_of(
    p: &BTreeMap<String, String>,
    name: &str,
    allowed: &[&str],
    default: &str,
) -> Result<String, ApiError> {
    match p.get(name).filter(|v| !v.is_empty()) {
        None => Ok(default.to_string()),
        Some(v) if allowed.contains(&v.as_str()) => Ok(v.clone()),
        Some(_) => Err(ApiError::invalid(name)),
    }
}

/// A comma-separated filter (`AllocationId`, `EipAddress`).
fn list(p: &BTreeMap<String, String>, name: &str) -> Option<Vec<String>> {
    p.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

fn is_eip_type(p: &BTreeMap<String, String>) -> bool {
    p.get("ResourceType")
        .is_some_and(|t| t.eq_ignore_ascii_case("eip"))
}

impl Eips {
    /// Runs one EIP action; `None` when the action is not one of these. `instance_exists` says whether an ECS
    /// instance of that id exists in the world.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: &str,
        instance_exists: &dyn Fn(&str) -> bool,
    ) -> Option<Result<Value, ApiError>> {
        Some(match action {
            "AllocateEipAddress" => self.allocate(p, seq, now),
            "DescribeEipAddresses" => self.describe(p),
            "ModifyEipAddressAttribute" => self.modify(p),
            "AssociateEipAddress" => self.associate(p, instance_exists),
            "UnassociateEipAddress" => self.unassociate(p),
            "ReleaseEipAddress" => self.release(p),
            "TagResources" | "UnTagResources" if is_eip_type(p) => self.tag(action, p),
            "ListTagResources" if is_eip_type(p) => self.list_tags(p),
            _ => return None,
        })
    }

    /// AllocateEipAddress hands out `ips` in order before any address of its own.
    pub(crate) fn set_pool(&mut self, ips: Vec<String>) {
        self.pool = ips.into();
    }

    fn next_ip(&mut self) -> String {
        self.pool.pop_front().unwrap_or_else(|| {
            self.fallback += 1;
            format!("203.0.113.{}", 10 + self.fallback % 240)
        })
    }

    fn allocate(
        &mut self,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: &str,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let token = p.get("ClientToken").filter(|t| !t.is_empty());
        if let Some(existing) = token.and_then(|t| self.client_tokens.get(t)) {
            if let Some(e) = self.eips.get(existing) {
                return Ok(
                    json!({ "AllocationId": e.id, "EipAddress": e.ip, "ResourceGroupId": "rg-cloudcodedefault" }),
                );
            }
        }
        let bandwidth = p.get("Bandwidth").cloned().unwrap_or_else(|| "5".into());
        if !bandwidth
            .parse::<u32>()
            .is_ok_and(|b| (1..=500).contains(&b))
        {
            return Err(ApiError::invalid("Bandwidth"));
        }
        let internet_charge_type = one_of(
            p,
            "InternetChargeType",
            &["PayByBandwidth", "PayByTraffic"],
            "PayByBandwidth",
        )?;
        let charge_type = one_of(
            p,
            "InstanceChargeType",
            &["PostPaid", "PrePaid"],
            "PostPaid",
        )?;
        let e = Eip {
            id: format!("eip-cc{seq:016x}"),
            region,
            ip: self.next_ip(),
            name: p.get("Name").cloned().unwrap_or_default(),
            description: p.get("Description").cloned().unwrap_or_default(),
            bandwidth,
            internet_charge_type,
            charge_type,
            status: "Available",
            instance_id: String::new(),
            instance_type: String::new(),
            mode: String::new(),
            created: now.to_string(),
            tags: tags_of(p)?,
        };
        let out = json!({ "AllocationId": e.id, "EipAddress": e.ip, "ResourceGroupId": "rg-cloudcodedefault" });
        if let Some(t) = token {
            self.client_tokens.insert(t.clone(), e.id.clone());
        }
        self.eips.insert(e.id.clone(), e);
        Ok(out)
    }

    fn describe(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let ids = list(p, "AllocationId");
        let ips = list(p, "EipAddress");
        let tags = tags_of(p)?;
        let field = |name: &str| p.get(name).filter(|v| !v.is_empty());
        let items: Vec<Value> = self
            .eips
            .values()
            .filter(|e| e.region == region)
            .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(&e.id)))
            .filter(|e| ips.as_ref().is_none_or(|ips| ips.contains(&e.ip)))
            .filter(|e| field("Status").is_none_or(|s| s == e.status))
            .filter(|e| field("AssociatedInstanceId").is_none_or(|i| *i == e.instance_id))
            .filter(|e| field("AssociatedInstanceType").is_none_or(|t| *t == e.instance_type))
            .filter(|e| field("EipName").is_none_or(|n| *n == e.name))
            .filter(|e| tags.iter().all(|(k, v)| e.tags.get(k) == Some(v)))
            .map(|e| {
                let tag_list: Vec<Value> = e
                    .tags
                    .iter()
                    .map(|(k, v)| json!({ "Key": k, "Value": v }))
                    .collect();
                json!({
                    "AllocationId": e.id, "IpAddress": e.ip, "Status": e.status, "RegionId": e.region,
                    "Name": e.name, "Description": e.description, "AllocationTime": e.created,
                    "Bandwidth": e.bandwidth, "EipBandwidth": e.bandwidth,
                    "InternetChargeType": e.internet_charge_type, "ChargeType": e.charge_type,
                    "InstanceId": e.instance_id, "InstanceType": e.instance_type,
                    "InstanceRegionId": if e.instance_id.is_empty() { "" } else { e.region.as_str() },
                    "Mode": if e.mode.is_empty() { "NAT" } else { e.mode.as_str() },
                    "PrivateIpAddress": "", "VpcId": "", "ISP": "BGP", "Netmode": "public",
                    "ResourceGroupId": "rg-cloudcodedefault", "DeletionProtection": false,
                    "HDMonitorStatus": "OFF", "Zone": "", "ExpiredTime": "", "BandwidthPackageId": "",
                    "PublicIpAddressPoolId": "", "SecondLimited": false,
                    "OperationLocks": { "LockReason": [] },
                    "SecurityProtectionTypes": { "SecurityProtectionType": [] },
                    "Tags": { "Tag": tag_list },
                })
            })
            .collect();
        Ok(paged(p, "EipAddresses", "EipAddress", items))
    }

    fn find(&mut self, p: &BTreeMap<String, String>) -> Result<&mut Eip, ApiError> {
        let id = required(p, "AllocationId")?;
        let region = p.get("RegionId").cloned().unwrap_or_default();
        self.eips
            .get_mut(&id)
            .filter(|e| region.is_empty() || e.region == region)
            .ok_or_else(allocation_not_found)
    }

    fn modify(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        if let Some(b) = p.get("Bandwidth") {
            if !b.parse::<u32>().is_ok_and(|b| (1..=500).contains(&b)) {
                return Err(ApiError::invalid("Bandwidth"));
            }
        }
        let e = self.find(p)?;
        if let Some(b) = p.get("Bandwidth") {
            e.bandwidth = b.clone();
        }
        if let Some(n) = p.get("Name") {
            e.name = n.clone();
        }
        if let Some(d) = p.get("Description") {
            e.description = d.clone();
        }
        Ok(json!({}))
    }

    fn associate(
        &mut self,
        p: &BTreeMap<String, String>,
        instance_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Value, ApiError> {
        let instance_id = required(p, "InstanceId")?;
        // The double holds ECS instances only (the documented default type).
        let instance_type = p
            .get("InstanceType")
            .filter(|t| !t.is_empty())
            .map_or("EcsInstance", String::as_str);
        if instance_type != "EcsInstance" {
            return Err(ApiError::new(
                400,
                "InvalidInstanceType.ValueNotSupported",
                "The specified value of InstanceType is not supported.",
            ));
        }
        let e = self.find(p)?;
        if !instance_exists(&instance_id) {
            return Err(ApiError::new(
                400,
                "InvalidInstanceId.NotFound",
                "Specified instance does not exist.",
            ));
        }
        if e.status != "Available" {
            return Err(incorrect_eip_status());
        }
        e.status = "InUse";
        e.instance_id = instance_id;
        e.instance_type = instance_type.to_string();
        e.mode = p.get("Mode").cloned().unwrap_or_else(|| "NAT".into());
        Ok(json!({}))
    }

    fn unassociate(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let instance_id = required(p, "InstanceId")?;
        let e = self.find(p)?;
        if e.status != "InUse" || e.instance_id != instance_id {
            return Err(incorrect_eip_status());
        }
        e.status = "Available";
        e.instance_id.clear();
        e.instance_type.clear();
        e.mode.clear();
        Ok(json!({}))
    }

    fn release(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let e = self.find(p)?;
        if e.status != "Available" {
            return Err(incorrect_eip_status());
        }
        let id = e.id.clone();
        self.eips.remove(&id);
        self.client_tokens.retain(|_, v| *v != id);
        Ok(json!({}))
    }

    fn tag(&mut self, action: &str, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let ids = resource_ids(p)?;
        if !ids
            .iter()
            .all(|id| self.eips.get(id).is_some_and(|e| e.region == region))
        {
            return Err(ApiError::new(
                404,
                "InvalidResourceId.NotFound",
                "The specified resource is not found.",
            ));
        }
        for e in self.eips.values_mut().filter(|e| ids.contains(&e.id)) {
            apply_tags(action, p, &mut e.tags)?;
        }
        Ok(json!({}))
    }

    fn list_tags(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let ids: Vec<String> = (1..=50)
            .map_while(|n| p.get(&format!("ResourceId.{n}")).cloned())
            .collect();
        let wanted = tags_of(p)?;
        let rows: Vec<Value> = self
            .eips
            .values()
            .filter(|e| e.region == region)
            .filter(|e| ids.is_empty() || ids.contains(&e.id))
            .flat_map(|e| {
                e.tags
                    .iter()
                    .filter(|(k, _)| wanted.is_empty() || wanted.contains_key(*k))
                    .map(|(k, v)| {
                        json!({ "ResourceId": e.id, "ResourceType": "EIP", "TagKey": k, "TagValue": v })
                    })
            })
            .collect();
        Ok(json!({ "NextToken": "", "TagResources": { "TagResource": rows } }))
    }

    /// (allocation id, address) of the EIP associated with `instance_id`, if any.
    pub(crate) fn eip_of_instance(&self, instance_id: &str) -> Option<(String, String)> {
        self.eips
            .values()
            .find(|e| e.status == "InUse" && e.instance_id == instance_id)
            .map(|e| (e.id.clone(), e.ip.clone()))
    }

    /// Every EIP that exists.
    pub(crate) fn views(&self) -> Vec<EipView> {
        self.eips
            .values()
            .map(|e| EipView {
                allocation_id: e.id.clone(),
                ip: e.ip.clone(),
                instance_id: (!e.instance_id.is_empty()).then(|| e.instance_id.clone()),
                tags: e.tags.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ecs_double::state::test_params as params;

    fn run(eips: &mut Eips, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        let exists = |id: &str| id == "i-known";
        eips.handle(action, &params(pairs), 7, "2024-01-01T00:00:00Z", &exists)
            .unwrap_or_else(|| Err(ApiError::new(404, "Unrouted", action)))
    }

    fn code(r: Result<Value, ApiError>) -> String {
        r.err().map(|e| e.code).unwrap_or_default()
    }

    #[test]
    fn an_associated_eip_is_not_released_and_unknown_ones_are_not_found() {
        let mut eips = Eips::default();
        eips.set_pool(vec!["192.0.2.9".into()]);
        let out = run(&mut eips, "AllocateEipAddress", &[("RegionId", "r")]).unwrap();
        assert_eq!(out["EipAddress"], "192.0.2.9");
        let id = out["AllocationId"].as_str().unwrap().to_string();
        let assoc = [
            ("RegionId", "r"),
            ("AllocationId", &id),
            ("InstanceId", "i-known"),
        ];
        let missing = [
            ("RegionId", "r"),
            ("AllocationId", &id),
            ("InstanceId", "i-gone"),
        ];
        assert_eq!(
            code(run(&mut eips, "AssociateEipAddress", &missing)),
            "InvalidInstanceId.NotFound"
        );
        run(&mut eips, "AssociateEipAddress", &assoc).unwrap();
        assert_eq!(
            eips.eip_of_instance("i-known"),
            Some((id.clone(), "192.0.2.9".into()))
        );
        let release = [("RegionId", "r"), ("AllocationId", id.as_str())];
        assert_eq!(
            code(run(&mut eips, "ReleaseEipAddress", &release)),
            "IncorrectEipStatus"
        );
        run(&mut eips, "UnassociateEipAddress", &assoc).unwrap();
        run(&mut eips, "ReleaseEipAddress", &release).unwrap();
        let gone = run(&mut eips, "ReleaseEipAddress", &release).unwrap_err();
        assert_eq!(
            (gone.status, gone.code.as_str()),
            (404, "InvalidAllocationId.NotFound")
        );
        // An unknown id is an empty list, which the provider reads as not found.
        let listed = run(&mut eips, "DescribeEipAddresses", &release).unwrap();
        assert_eq!(listed["TotalCount"], 0);
    }

    #[test]
    fn a_client_token_allocates_once_and_describe_filters_by_instance() {
        let mut eips = Eips::default();
        let token = [("RegionId", "r"), ("ClientToken", "t-1")];
        let a = run(&mut eips, "AllocateEipAddress", &token).unwrap();
        let b = run(&mut eips, "AllocateEipAddress", &token).unwrap();
        assert_eq!(a["AllocationId"], b["AllocationId"]);
        assert_eq!(a["EipAddress"], "203.0.113.11");
        let id = a["AllocationId"].as_str().unwrap();
        run(
            &mut eips,
            "AssociateEipAddress",
            &[
                ("RegionId", "r"),
                ("AllocationId", id),
                ("InstanceId", "i-known"),
            ],
        )
        .unwrap();
        let by_instance = [("RegionId", "r"), ("AssociatedInstanceId", "i-known")];
        let listed = run(&mut eips, "DescribeEipAddresses", &by_instance).unwrap();
        assert_eq!(listed["EipAddresses"]["EipAddress"][0]["Status"], "InUse");
        let other = [("RegionId", "r"), ("AssociatedInstanceId", "i-other")];
        let listed = run(&mut eips, "DescribeEipAddresses", &other).unwrap();
        assert_eq!(listed["TotalCount"], 0);
    }
}
