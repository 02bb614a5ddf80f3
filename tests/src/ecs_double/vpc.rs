//! The VPC API (2016-04-28) of the double: VPCs with their system route table, created `Pending` and
//! `Available` after a poll, as the official provider drives them (CreateVpc, DescribeVpcAttribute,
//! DescribeRouteTableList, DeleteVpc); an unknown VPC is `InvalidVpcId.NotFound` with HTTP 404, which the
//! provider's delete wait depends on.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::ApiError;

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
}

/// VPC state behind the server.
#[derive(Default)]
pub(crate) struct Vpcs {
    vpcs: BTreeMap<String, VpcRec>,
}

fn required(p: &BTreeMap<String, String>, name: &str) -> Result<String, ApiError> {
    p.get(name).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
        ApiError::new(
            400,
            "MissingParameter",
            format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
        )
    })
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
            return Err(ApiError::new(
                400,
                "InvalidCidrBlock.Malformed",
                "Specified CIDR block is not valid.",
            ));
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
            "VSwitchIds": { "VSwitchId": [] },
            "CloudResources": { "CloudResourceSetType": [] },
            "Tags": { "Tag": [] },
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
        self.vpcs.remove(&id);
        Ok(json!({}))
    }

    /// Ids of the VPCs that exist.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.vpcs.keys().cloned().collect()
    }
}
