//! Security groups of the ECS API (2014-05-26) as the official provider drives them: CreateSecurityGroup,
//! DescribeSecurityGroups, DescribeSecurityGroupAttribute (with the rules as `Permissions.Permission[]`),
//! AuthorizeSecurityGroup (rules as `Permissions.N.*` or the older top-level form), RevokeSecurityGroup,
//! DeleteSecurityGroup, and the tags of TagResources/UntagResources. An unknown group is
//! `InvalidSecurityGroupId.NotFound` (HTTP 404).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{required, ApiError};
use super::tags::{apply_tags, resource_ids, tag_list, tags_of};

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    direction: String,
    ip_protocol: String,
    port_range: String,
    cidr: String,
    policy: String,
    priority: String,
    nic_type: String,
    description: String,
}

#[derive(Debug, Clone)]
struct Group {
    id: String,
    region: String,
    vpc_id: String,
    name: String,
    description: String,
    group_type: String,
    created: String,
    tags: BTreeMap<String, String>,
    rules: Vec<Rule>,
}

/// Security groups behind the server.
#[derive(Default)]
pub(crate) struct Groups {
    groups: BTreeMap<String, Group>,
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "InvalidSecurityGroupId.NotFound",
        "The specified security group does not exist.",
    )
}

/// The rules a request names: `Permissions.N.*`, else the top-level form.
fn rules_of(p: &BTreeMap<String, String>, direction: &str) -> Result<Vec<Rule>, ApiError> {
    let one = |prefix: &str| -> Option<Result<Rule, ApiError>> {
        let get = |k: &str| p.get(&format!("{prefix}{k}")).cloned().unwrap_or_default();
        let protocol = p.get(&format!("{prefix}IpProtocol"))?.to_ascii_lowercase();
        let port_range = get("PortRange");
        if !matches!(protocol.as_str(), "tcp" | "udp" | "icmp" | "gre" | "all")
            || port_range.is_empty()
        {
            return Some(Err(ApiError::new(
                400,
                "InvalidIpProtocol.Malformed",
                "Specified IP protocol or port range is not valid.",
            )));
        }
        let cidr = if direction == "ingress" {
            get("SourceCidrIp")
        } else {
            get("DestCidrIp")
        };
        let policy = if get("Policy").is_empty() {
            "accept".into()
        } else {
            get("Policy").to_ascii_lowercase()
        };
        Some(Ok(Rule {
            direction: direction.into(),
            ip_protocol: protocol.to_ascii_uppercase(),
            port_range,
            cidr,
            policy: if policy == "drop" {
                "Drop".into()
            } else {
                "Accept".into()
            },
            priority: if get("Priority").is_empty() {
                "1".into()
            } else {
                get("Priority")
            },
            nic_type: if get("NicType").is_empty() {
                "intranet".into()
            } else {
                get("NicType")
            },
            description: get("Description"),
        }))
    };
    let mut rules = Vec::new();
    for n in 1..=100 {
        match one(&format!("Permissions.{n}.")) {
            Some(r) => rules.push(r?),
            None => break,
        }
    }
    if rules.is_empty() {
        if let Some(r) = one("") {
            rules.push(r?);
        }
    }
    if rules.is_empty() {
        return Err(ApiError::new(400, "MissingParameter", "The input parameter \"IpProtocol\" that is mandatory for processing this request is not supplied."));
    }
    Ok(rules)
}

impl Groups {
    /// Runs one security-group action; `None` when the action is not one of these.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: String,
    ) -> Option<Result<Value, ApiError>> {
        Some(match action {
            "CreateSecurityGroup" => self.create(p, seq, now),
            "DescribeSecurityGroups" => self.describe_all(p),
            "DescribeSecurityGroupAttribute" => self.attribute(p),
            "AuthorizeSecurityGroup" => self.authorize(p, "ingress"),
            "AuthorizeSecurityGroupEgress" => self.authorize(p, "egress"),
            "RevokeSecurityGroup" => self.revoke(p, "ingress"),
            "RevokeSecurityGroupEgress" => self.revoke(p, "egress"),
            "DeleteSecurityGroup" => self.delete(p),
            "ModifySecurityGroupAttribute" => self.modify(p),
            "TagResources" | "UntagResources"
                if p.get("ResourceType").map(String::as_str) == Some("securitygroup") =>
            {
                self.tag(action, p)
            }
            _ => return None,
        })
    }

    fn create(
        &mut self,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: String,
    ) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let g = Group {
            id: format!("sg-cc{seq:016x}"),
            region,
            vpc_id: p.get("VpcId").cloned().unwrap_or_default(),
            name: p.get("SecurityGroupName").cloned().unwrap_or_default(),
            description: p.get("Description").cloned().unwrap_or_default(),
            group_type: p
                .get("SecurityGroupType")
                .cloned()
                .unwrap_or_else(|| "normal".into()),
            created: now,
            tags: tags_of(p)?,
            rules: Vec::new(),
        };
        let out = json!({ "SecurityGroupId": g.id });
        self.groups.insert(g.id.clone(), g);
        Ok(out)
    }

    fn find(&mut self, p: &BTreeMap<String, String>) -> Result<&mut Group, ApiError> {
        let region = required(p, "RegionId")?;
        let id = required(p, "SecurityGroupId")?;
        self.groups
            .get_mut(&id)
            .filter(|g| g.region == region)
            .ok_or_else(not_found)
    }

    /// ModifySecurityGroupAttribute: `SecurityGroupName`, `Description`.
    fn modify(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let g = self.find(p)?;
        if let Some(name) = p.get("SecurityGroupName") {
            g.name = name.clone();
        }
        if let Some(d) = p.get("Description") {
            g.description = d.clone();
        }
        Ok(json!({}))
    }

    fn describe_all(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        let mut ids: Option<Vec<String>> = p.get("SecurityGroupId").map(|i| vec![i.clone()]);
        if let Some(raw) = p.get("SecurityGroupIds") {
            ids =
                Some(serde_json::from_str(raw).map_err(|_| ApiError::invalid("SecurityGroupIds"))?);
        }
        let items: Vec<Value> = self
            .groups
            .values()
            .filter(|g| g.region == region)
            .filter(|g| ids.as_ref().is_none_or(|ids| ids.contains(&g.id)))
            .filter(|g| p.get("VpcId").is_none_or(|v| *v == g.vpc_id))
            .map(|g| {
                json!({
                    "SecurityGroupId": g.id, "SecurityGroupName": g.name, "Description": g.description,
                    "VpcId": g.vpc_id, "SecurityGroupType": g.group_type, "CreationTime": g.created,
                    "ResourceGroupId": "", "ServiceManaged": false, "RuleCount": g.rules.len(),
                    "Tags": tag_list(&g.tags),
                })
            })
            .collect();
        let total = items.len();
        Ok(json!({
            "RegionId": region, "TotalCount": total, "PageNumber": 1, "PageSize": 10,
            "SecurityGroups": { "SecurityGroup": items },
        }))
    }

    fn attribute(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let direction = p.get("Direction").cloned().unwrap_or_else(|| "all".into());
        let nic = p.get("NicType").cloned();
        let g = self.find(p)?;
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| direction == "all" || r.direction == direction)
            .filter(|r| nic.as_ref().is_none_or(|n| *n == r.nic_type))
            .map(|r| {
                let (src, dst) = if r.direction == "ingress" { (r.cidr.as_str(), "") } else { ("", r.cidr.as_str()) };
                json!({
                    "Direction": r.direction, "IpProtocol": r.ip_protocol, "PortRange": r.port_range,
                    "SourceCidrIp": src, "DestCidrIp": dst, "Policy": r.policy, "Priority": r.priority,
                    "NicType": r.nic_type, "Description": r.description, "SourceGroupId": "",
                    "DestGroupId": "", "Ipv6SourceCidrIp": "", "Ipv6DestCidrIp": "",
                    "SourcePrefixListId": "", "DestPrefixListId": "", "SourcePortRange": "",
                })
            })
            .collect();
        Ok(json!({
            "SecurityGroupId": g.id, "SecurityGroupName": g.name, "Description": g.description,
            "VpcId": g.vpc_id, "RegionId": g.region, "InnerAccessPolicy": "Accept",
            "Permissions": { "Permission": rules },
        }))
    }

    fn authorize(
        &mut self,
        p: &BTreeMap<String, String>,
        direction: &str,
    ) -> Result<Value, ApiError> {
        let rules = rules_of(p, direction)?;
        let g = self.find(p)?;
        for r in rules {
            if !g.rules.contains(&r) {
                g.rules.push(r); // an identical rule is accepted once (the API ignores the repeat)
            }
        }
        Ok(json!({}))
    }

    fn revoke(&mut self, p: &BTreeMap<String, String>, direction: &str) -> Result<Value, ApiError> {
        let rules = rules_of(p, direction)?;
        let g = self.find(p)?;
        for r in rules {
            g.rules.retain(|x| {
                !(x.direction == r.direction
                    && x.ip_protocol == r.ip_protocol
                    && x.port_range == r.port_range
                    && x.cidr == r.cidr
                    && x.policy == r.policy
                    && x.priority == r.priority)
            });
        }
        Ok(json!({}))
    }

    fn delete(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id = self.find(p)?.id.clone();
        self.groups.remove(&id);
        Ok(json!({}))
    }

    fn tag(&mut self, action: &str, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let region = required(p, "RegionId")?;
        for id in resource_ids(p)? {
            let g = self
                .groups
                .get_mut(&id)
                .filter(|g| g.region == region)
                .ok_or_else(not_found)?;
            apply_tags(action, p, &mut g.tags)?;
        }
        Ok(json!({}))
    }

    /// Ids of the groups that exist, each with its number of rules.
    /// The VPC of an existing group.
    pub(crate) fn vpc_of(&self, id: &str) -> Option<&str> {
        self.groups.get(id).map(|g| g.vpc_id.as_str())
    }

    pub(crate) fn summary(&self) -> Vec<(String, usize)> {
        self.groups
            .values()
            .map(|g| (g.id.clone(), g.rules.len()))
            .collect()
    }
}
