//! RAM (API 2015-05-01, `ram.aliyuncs.com`, one endpoint for every region) as the official provider drives it for
//! `alicloud_ram_role`, `alicloud_ram_policy` and `alicloud_ram_role_policy_attachment`: roles with their trust
//! policy (CreateRole, GetRole, UpdateRole, ListRoles, DeleteRole), custom policies with up to five versions
//! (CreatePolicy, GetPolicy, CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions, DeletePolicyVersion,
//! DeletePolicy) beside two system policies, and their attachment to roles (AttachPolicyToRole,
//! DetachPolicyFromRole, ListPoliciesForRole, ListEntitiesForPolicy), with the documented refusals. Names are
//! unique regardless of case. An answer never carries a `Code` field: the provider's RPC client reads one as an
//! error.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::account::ACCOUNT_ID;
use super::policy::{self, Statement};
use super::state::{required, ApiError};

/// RAM's API version.
pub const RAM_API_VERSION: &str = "2015-05-01";

/// A policy keeps at most this many versions (`LimitExceeded.Policy.Version` beyond).
const MAX_POLICY_VERSIONS: usize = 5;
/// The longest policy document RAM stores, in characters.
const MAX_DOCUMENT_LEN: usize = 6144;

/// The system policies (`PolicyType=System`) the double knows: name, description, document.
const SYSTEM_POLICIES: [(&str, &str, &str); 2] = [
    (
        "AliyunECSFullAccess",
        "Provides full access to Elastic Compute Service (ECS) via Management Console.",
        r#"{"Version":"1","Statement":[{"Action":"ecs:*","Resource":"*","Effect":"Allow"}]}"#,
    ),
    (
        "AliyunECSReadOnlyAccess",
        "Provides read-only access to Elastic Compute Service (ECS) via Management Console.",
        r#"{"Version":"1","Statement":[{"Action":["ecs:Describe*","ecs:List*"],"Resource":"*","Effect":"Allow"}]}"#,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PolicyType {
    System,
    Custom,
}

impl PolicyType {
    fn parse(p: &BTreeMap<String, String>) -> Result<Self, ApiError> {
        match required(p, "PolicyType")?.as_str() {
            "System" => Ok(Self::System),
            "Custom" => Ok(Self::Custom),
            _ => Err(ApiError::new(
                400,
                "InvalidParameter.PolicyType.InvalidValue",
                "The parameter - \"PolicyType\" must be \"Custom\" or \"System\".",
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::System => "System",
            Self::Custom => "Custom",
        }
    }
}

#[derive(Debug, Clone)]
struct Role {
    id: String,
    name: String,
    description: String,
    trust: String,
    max_session: u64,
    created: String,
    updated: String,
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    document: String,
    created: String,
}

#[derive(Debug, Clone)]
struct Policy {
    name: String,
    description: String,
    /// Oldest first; one of them is the default.
    versions: Vec<Version>,
    default: String,
    next_version: u32,
    created: String,
    updated: String,
}

#[derive(Debug, Clone)]
struct Attachment {
    /// Lower-case keys of the role and the policy.
    role: String,
    kind: PolicyType,
    policy: String,
    date: String,
}

/// What a test can see of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamRoleView {
    pub name: String,
    pub arn: String,
    pub description: String,
    /// The trust policy document, as sent.
    pub trust_policy: String,
    /// (policy type, policy name) of the policies attached to it.
    pub policies: Vec<(String, String)>,
}

/// What a test can see of a custom policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamPolicyView {
    pub name: String,
    pub description: String,
    /// The default version's document, as sent.
    pub document: String,
    pub default_version: String,
    pub versions: usize,
}

/// The account's roles and custom policies behind the server.
#[derive(Default)]
pub(crate) struct Ram {
    roles: BTreeMap<String, Role>,
    policies: BTreeMap<String, Policy>,
    attachments: Vec<Attachment>,
}

fn role_not_found() -> ApiError {
    ApiError::new(404, "EntityNotExist.Role", "The role does not exist.")
}

fn policy_not_found() -> ApiError {
    ApiError::new(404, "EntityNotExist.Policy", "The policy does not exist.")
}

fn malformed(why: &str) -> ApiError {
    ApiError::new(
        400,
        "MalformedPolicyDocument",
        format!("The policy document is malformed: {why}."),
    )
}

/// `InvalidParameter.<name>.Length` unless `value` has `min..=max` characters.
fn length(name: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    if (min..=max).contains(&value.chars().count()) {
        return Ok(());
    }
    Err(ApiError::new(
        400,
        &format!("InvalidParameter.{name}.Length"),
        format!("The parameter - \"{name}\" beyond the length limit."),
    ))
}

/// A role name (1–64 letters, digits, `.`, `-`) or policy name (1–128 letters, digits, `-`).
fn name(name: &str, value: &str, max: usize, extra: &[char]) -> Result<(), ApiError> {
    length(name, value, 1, max)?;
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    {
        return Ok(());
    }
    Err(ApiError::new(
        400,
        &format!("InvalidParameter.{name}.InvalidChars"),
        format!("The parameter - \"{name}\" contains invalid chars."),
    ))
}

fn role_name(p: &BTreeMap<String, String>, param: &str) -> Result<String, ApiError> {
    let v = required(p, param)?;
    name("RoleName", &v, 64, &['.', '-'])?;
    Ok(v)
}

fn policy_name(p: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let v = required(p, "PolicyName")?;
    name("PolicyName", &v, 128, &['-'])?;
    Ok(v)
}

fn description(p: &BTreeMap<String, String>, param: &str) -> Result<Option<String>, ApiError> {
    p.get(param)
        .map(|d| length("Description", d, 0, 1024).map(|()| d.clone()))
        .transpose()
}

fn permission_document(p: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let doc = required(p, "PolicyDocument")?;
    length("PolicyDocument", &doc, 1, MAX_DOCUMENT_LEN)?;
    policy::permission_statements(&doc).map_err(|why| malformed(&why))?;
    Ok(doc)
}

fn trust_document(p: &BTreeMap<String, String>, param: &str) -> Result<Option<String>, ApiError> {
    let Some(doc) = p.get(param) else {
        return Ok(None);
    };
    length("AssumeRolePolicyDocument", doc, 1, MAX_DOCUMENT_LEN)?;
    policy::check_trust_policy(doc).map_err(|why| malformed(&why))?;
    Ok(Some(doc.clone()))
}

fn max_session(p: &BTreeMap<String, String>, param: &str) -> Result<Option<u64>, ApiError> {
    p.get(param)
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|s| (3600..=43200).contains(s))
                .ok_or_else(|| ApiError::invalid(param))
        })
        .transpose()
}

fn arn(role: &str) -> String {
    format!("acs:ram::{ACCOUNT_ID}:role/{role}")
}

impl Role {
    fn json(&self) -> Value {
        json!({
            "RoleId": self.id, "RoleName": self.name, "Arn": arn(&self.name), "Description": self.description,
            "AssumeRolePolicyDocument": self.trust, "MaxSessionDuration": self.max_session,
            "CreateDate": self.created, "UpdateDate": self.updated,
            "RolePrincipalName": format!("{}@role.{ACCOUNT_ID}.onaliyunservice.com", self.name),
        })
    }
}

impl Version {
    fn json(&self, default: &str) -> Value {
        json!({
            "VersionId": self.id, "IsDefaultVersion": self.id == default,
            "PolicyDocument": self.document, "CreateDate": self.created,
        })
    }
}

impl Ram {
    /// Runs one RAM action; `seq` makes ids, `now` is the time of the call.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: &str,
    ) -> Result<Value, ApiError> {
        match action {
            "CreateRole" => self.create_role(p, seq, now),
            "GetRole" => Ok(json!({ "Role": self.role(&role_name(p, "RoleName")?)?.json() })),
            "UpdateRole" => self.update_role(p, now),
            "ListRoles" => Ok(json!({
                "IsTruncated": false,
                "Roles": { "Role": self.roles.values().map(Role::json).collect::<Vec<_>>() },
            })),
            "DeleteRole" => self.delete_role(p),
            "CreatePolicy" => self.create_policy(p, now),
            "GetPolicy" => self.get_policy(p),
            "CreatePolicyVersion" => self.create_policy_version(p, now),
            "GetPolicyVersion" => self.get_policy_version(p),
            "ListPolicyVersions" => self.list_policy_versions(p),
            "DeletePolicyVersion" => self.delete_policy_version(p),
            "DeletePolicy" => self.delete_policy(p),
            "AttachPolicyToRole" => self.attach(p, now),
            "DetachPolicyFromRole" => self.detach(p),
            "ListPoliciesForRole" => self.policies_for_role(p),
            "ListEntitiesForPolicy" => self.entities_for_policy(p),
            _ => Err(ApiError::new(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )),
        }
    }

    fn role(&self, name: &str) -> Result<&Role, ApiError> {
        self.roles
            .get(&name.to_ascii_lowercase())
            .ok_or_else(role_not_found)
    }

    fn custom(&self, name: &str) -> Result<&Policy, ApiError> {
        self.policies
            .get(&name.to_ascii_lowercase())
            .ok_or_else(policy_not_found)
    }

    fn custom_mut(&mut self, name: &str) -> Result<&mut Policy, ApiError> {
        self.policies
            .get_mut(&name.to_ascii_lowercase())
            .ok_or_else(policy_not_found)
    }

    /// (name, description, default document) of a policy of either type.
    fn any_policy(
        &self,
        kind: PolicyType,
        name: &str,
    ) -> Result<(String, String, String), ApiError> {
        match kind {
            PolicyType::System => SYSTEM_POLICIES
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
                .map(|(n, d, doc)| (n.to_string(), d.to_string(), doc.to_string()))
                .ok_or_else(policy_not_found),
            PolicyType::Custom => self.custom(name).map(|pol| {
                let doc = pol
                    .versions
                    .iter()
                    .find(|v| v.id == pol.default)
                    .map(|v| v.document.clone())
                    .unwrap_or_default();
                (pol.name.clone(), pol.description.clone(), doc)
            }),
        }
    }

    fn create_role(
        &mut self,
        p: &BTreeMap<String, String>,
        seq: u64,
        now: &str,
    ) -> Result<Value, ApiError> {
        let name = role_name(p, "RoleName")?;
        let trust = trust_document(p, "AssumeRolePolicyDocument")?
            .ok_or_else(|| ApiError::missing("AssumeRolePolicyDocument"))?;
        let description = description(p, "Description")?.unwrap_or_default();
        let max_session = max_session(p, "MaxSessionDuration")?.unwrap_or(3600);
        let key = name.to_ascii_lowercase();
        if self.roles.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "EntityAlreadyExists.Role",
                "The role already exists.",
            ));
        }
        let role = Role {
            id: format!("3{seq:017}"),
            name,
            description,
            trust,
            max_session,
            created: now.to_string(),
            updated: now.to_string(),
        };
        let out = json!({ "Role": role.json() });
        self.roles.insert(key, role);
        Ok(out)
    }

    fn update_role(&mut self, p: &BTreeMap<String, String>, now: &str) -> Result<Value, ApiError> {
        let name = role_name(p, "RoleName")?;
        let trust = trust_document(p, "NewAssumeRolePolicyDocument")?;
        let description = description(p, "NewDescription")?;
        let max_session = max_session(p, "NewMaxSessionDuration")?;
        let role = self
            .roles
            .get_mut(&name.to_ascii_lowercase())
            .ok_or_else(role_not_found)?;
        if let Some(t) = trust {
            role.trust = t;
        }
        if let Some(d) = description {
            role.description = d;
        }
        if let Some(m) = max_session {
            role.max_session = m;
        }
        role.updated = now.to_string();
        Ok(json!({ "Role": role.json() }))
    }

    fn delete_role(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let key = role_name(p, "RoleName")?.to_ascii_lowercase();
        self.role(&key)?;
        if self.attachments.iter().any(|a| a.role == key) {
            return Err(ApiError::new(
                409,
                "DeleteConflict.Role.Policy",
                "The role cannot have any attached policies when you delete it.",
            ));
        }
        self.roles.remove(&key);
        Ok(json!({}))
    }

    fn create_policy(
        &mut self,
        p: &BTreeMap<String, String>,
        now: &str,
    ) -> Result<Value, ApiError> {
        let name = policy_name(p)?;
        let document = permission_document(p)?;
        let description = description(p, "Description")?.unwrap_or_default();
        let key = name.to_ascii_lowercase();
        if self.policies.contains_key(&key)
            || SYSTEM_POLICIES
                .iter()
                .any(|(n, _, _)| n.eq_ignore_ascii_case(&name))
        {
            return Err(ApiError::new(
                409,
                "EntityAlreadyExists.Policy",
                "The policy already exists.",
            ));
        }
        let policy = Policy {
            name,
            description,
            versions: vec![Version {
                id: "v1".into(),
                document,
                created: now.to_string(),
            }],
            default: "v1".into(),
            next_version: 2,
            created: now.to_string(),
            updated: now.to_string(),
        };
        let out = json!({ "Policy": {
            "PolicyName": policy.name, "PolicyType": "Custom", "Description": policy.description,
            "DefaultVersion": "v1", "CreateDate": now,
        }});
        self.policies.insert(key, policy);
        Ok(out)
    }

    /// GetPolicy: the policy and its default version (`PolicyType` is required).
    fn get_policy(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let kind = PolicyType::parse(p)?;
        let name = policy_name(p)?;
        let (name, description, document) = self.any_policy(kind, &name)?;
        let attached = self
            .attachments
            .iter()
            .filter(|a| a.kind == kind && a.policy == name.to_ascii_lowercase())
            .count();
        let (default, created, updated) = match self.custom(&name) {
            Ok(pol) if kind == PolicyType::Custom => (
                pol.default.clone(),
                pol.created.clone(),
                pol.updated.clone(),
            ),
            _ => ("v1".into(), String::new(), String::new()),
        };
        Ok(json!({
            "Policy": {
                "PolicyName": name, "PolicyType": kind.as_str(), "Description": description,
                "DefaultVersion": default, "AttachmentCount": attached,
                "CreateDate": created, "UpdateDate": updated, "PolicyDocument": document,
            },
            "DefaultPolicyVersion": {
                "VersionId": default, "IsDefaultVersion": true, "PolicyDocument": document, "CreateDate": created,
            },
        }))
    }

    /// A new version (`SetAsDefault`); at the limit, `RotateStrategy=DeleteOldestNonDefaultVersionWhenLimitExceeded`
    /// drops the oldest non-default version, else `LimitExceeded.Policy.Version`.
    fn create_policy_version(
        &mut self,
        p: &BTreeMap<String, String>,
        now: &str,
    ) -> Result<Value, ApiError> {
        let name = policy_name(p)?;
        let document = permission_document(p)?;
        let set_default = p.get("SetAsDefault").map(String::as_str) == Some("true");
        let rotate = match p.get("RotateStrategy").map(String::as_str) {
            None | Some("None") => false,
            Some("DeleteOldestNonDefaultVersionWhenLimitExceeded") => true,
            Some(_) => return Err(ApiError::invalid("RotateStrategy")),
        };
        let pol = self.custom_mut(&name)?;
        if pol.versions.len() >= MAX_POLICY_VERSIONS {
            let oldest = pol.versions.iter().position(|v| v.id != pol.default);
            match oldest {
                Some(i) if rotate => {
                    pol.versions.remove(i);
                }
                _ => {
                    return Err(ApiError::new(
                        409,
                        "LimitExceeded.Policy.Version",
                        "Exceeded the maximum number of policy versions.",
                    ))
                }
            }
        }
        let version = Version {
            id: format!("v{}", pol.next_version),
            document,
            created: now.to_string(),
        };
        pol.next_version += 1;
        if set_default {
            pol.default = version.id.clone();
        }
        pol.updated = now.to_string();
        let out = json!({ "PolicyVersion": version.json(&pol.default) });
        pol.versions.push(version);
        Ok(out)
    }

    fn get_policy_version(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let kind = PolicyType::parse(p)?;
        let name = policy_name(p)?;
        let id = required(p, "VersionId")?;
        if kind == PolicyType::System {
            let (_, _, document) = self.any_policy(kind, &name)?;
            if id != "v1" {
                return Err(version_not_found());
            }
            return Ok(
                json!({ "PolicyVersion": { "VersionId": "v1", "IsDefaultVersion": true, "PolicyDocument": document, "CreateDate": "" } }),
            );
        }
        let pol = self.custom(&name)?;
        let version = pol
            .versions
            .iter()
            .find(|v| v.id == id)
            .ok_or_else(version_not_found)?;
        Ok(json!({ "PolicyVersion": version.json(&pol.default) }))
    }

    fn list_policy_versions(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let kind = PolicyType::parse(p)?;
        let name = policy_name(p)?;
        let versions: Vec<Value> = match kind {
            PolicyType::System => {
                let (_, _, document) = self.any_policy(kind, &name)?;
                vec![
                    json!({ "VersionId": "v1", "IsDefaultVersion": true, "PolicyDocument": document, "CreateDate": "" }),
                ]
            }
            PolicyType::Custom => {
                let pol = self.custom(&name)?;
                pol.versions.iter().map(|v| v.json(&pol.default)).collect()
            }
        };
        Ok(json!({ "PolicyVersions": { "PolicyVersion": versions } }))
    }

    fn delete_policy_version(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let name = policy_name(p)?;
        let id = required(p, "VersionId")?;
        let pol = self.custom_mut(&name)?;
        let i = pol
            .versions
            .iter()
            .position(|v| v.id == id)
            .ok_or_else(version_not_found)?;
        if pol.default == id {
            return Err(ApiError::new(
                409,
                "DeleteConflict.Policy.Version.Default",
                "You cannot delete the default policy version.",
            ));
        }
        pol.versions.remove(i);
        Ok(json!({}))
    }

    fn delete_policy(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let key = policy_name(p)?.to_ascii_lowercase();
        let pol = self.custom(&key)?;
        if self
            .attachments
            .iter()
            .any(|a| a.kind == PolicyType::Custom && a.policy == key)
        {
            return Err(ApiError::new(
                409,
                "DeleteConflict.Policy.Role",
                "The policy cannot be attached to any role when you delete it.",
            ));
        }
        if pol.versions.len() > 1 {
            return Err(ApiError::new(
                409,
                "DeleteConflict.Policy.Version",
                "You must delete all non-default versions before you delete the policy.",
            ));
        }
        self.policies.remove(&key);
        Ok(json!({}))
    }

    fn attach(&mut self, p: &BTreeMap<String, String>, now: &str) -> Result<Value, ApiError> {
        let kind = PolicyType::parse(p)?;
        let policy = policy_name(p)?;
        let role = role_name(p, "RoleName")?;
        let role = self.role(&role)?.name.to_ascii_lowercase();
        let policy = self.any_policy(kind, &policy)?.0.to_ascii_lowercase();
        if self
            .attachments
            .iter()
            .any(|a| a.role == role && a.kind == kind && a.policy == policy)
        {
            return Err(ApiError::new(
                409,
                "EntityAlreadyExists.Role.Policy",
                "The policy has already been attached to the role.",
            ));
        }
        self.attachments.push(Attachment {
            role,
            kind,
            policy,
            date: now.to_string(),
        });
        Ok(json!({}))
    }

    fn detach(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let kind = PolicyType::parse(p)?;
        let policy = policy_name(p)?;
        let role = role_name(p, "RoleName")?;
        let role = self.role(&role)?.name.to_ascii_lowercase();
        let policy = self.any_policy(kind, &policy)?.0.to_ascii_lowercase();
        let before = self.attachments.len();
        self.attachments
            .retain(|a| !(a.role == role && a.kind == kind && a.policy == policy));
        if self.attachments.len() == before {
            return Err(ApiError::new(
                404,
                "EntityNotExist.Role.Policy",
                "The policy is not attached to the role.",
            ));
        }
        Ok(json!({}))
    }

    fn policies_for_role(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let role = role_name(p, "RoleName")?;
        let role = self.role(&role)?.name.to_ascii_lowercase();
        let items: Vec<Value> = self
            .attachments
            .iter()
            .filter(|a| a.role == role)
            .filter_map(|a| {
                let (name, description, _) = self.any_policy(a.kind, &a.policy).ok()?;
                let default = self
                    .custom(&name)
                    .ok()
                    .filter(|_| a.kind == PolicyType::Custom)
                    .map_or("v1".to_string(), |pol| pol.default.clone());
                Some(json!({
                    "PolicyName": name, "PolicyType": a.kind.as_str(), "Description": description,
                    "DefaultVersion": default, "AttachDate": a.date,
                }))
            })
            .collect();
        Ok(json!({ "Policies": { "Policy": items } }))
    }

    /// The users, groups (none here) and roles a policy is attached to; every list present, even empty.
    fn entities_for_policy(&self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let kind = PolicyType::parse(p)?;
        let name = policy_name(p)?;
        let key = self.any_policy(kind, &name)?.0.to_ascii_lowercase();
        let roles: Vec<Value> = self
            .attachments
            .iter()
            .filter(|a| a.kind == kind && a.policy == key)
            .filter_map(|a| {
                let r = self.roles.get(&a.role)?;
                Some(json!({
                    "RoleId": r.id, "RoleName": r.name, "Arn": arn(&r.name), "Description": r.description,
                    "AttachDate": a.date,
                }))
            })
            .collect();
        Ok(json!({
            "Users": { "User": [] },
            "Groups": { "Group": [] },
            "Roles": { "Role": roles },
        }))
    }

    /// The role's name as created, if it exists (any case).
    pub(crate) fn role_name(&self, name: &str) -> Option<String> {
        self.role(name).ok().map(|r| r.name.clone())
    }

    pub(crate) fn role_id(&self, name: &str) -> Option<String> {
        self.role(name).ok().map(|r| r.id.clone())
    }

    /// A role an ECS instance may take (AttachInstanceRamRole, RunInstances' `RamRoleName`): it exists
    /// (`InvalidRamRole.NotFound`) and trusts `ecs.aliyuncs.com` (`InvalidRamRole.NotEcsRole`). Its name as created.
    pub(crate) fn instance_role(&self, name: &str) -> Result<String, ApiError> {
        let role = self.role(name).map_err(|_| ram_role_not_found())?;
        if !policy::trusted_services(&role.trust)
            .iter()
            .any(|s| s.trim() == "ecs.aliyuncs.com")
        {
            return Err(ApiError::new(
                404,
                "InvalidRamRole.NotEcsRole",
                "The specified ram role is not authorized for ecs, please check your role policy.",
            ));
        }
        Ok(role.name.clone())
    }

    /// Every statement of the default versions of the policies attached to `role`.
    pub(crate) fn statements_of(&self, role: &str) -> Vec<Statement> {
        let key = role.to_ascii_lowercase();
        self.attachments
            .iter()
            .filter(|a| a.role == key)
            .filter_map(|a| self.any_policy(a.kind, &a.policy).ok())
            .flat_map(|(_, _, doc)| policy::permission_statements(&doc).unwrap_or_default())
            .collect()
    }

    pub(crate) fn role_views(&self) -> Vec<RamRoleView> {
        self.roles
            .iter()
            .map(|(key, r)| RamRoleView {
                name: r.name.clone(),
                arn: arn(&r.name),
                description: r.description.clone(),
                trust_policy: r.trust.clone(),
                policies: self
                    .attachments
                    .iter()
                    .filter(|a| a.role == *key)
                    .filter_map(|a| {
                        let (name, _, _) = self.any_policy(a.kind, &a.policy).ok()?;
                        Some((a.kind.as_str().to_string(), name))
                    })
                    .collect(),
            })
            .collect()
    }

    pub(crate) fn policy_views(&self) -> Vec<RamPolicyView> {
        self.policies
            .values()
            .map(|pol| RamPolicyView {
                name: pol.name.clone(),
                description: pol.description.clone(),
                document: pol
                    .versions
                    .iter()
                    .find(|v| v.id == pol.default)
                    .map(|v| v.document.clone())
                    .unwrap_or_default(),
                default_version: pol.default.clone(),
                versions: pol.versions.len(),
            })
            .collect()
    }
}

/// ECS's answer for a role name the account's RAM does not have.
pub(crate) fn ram_role_not_found() -> ApiError {
    ApiError::new(
        404,
        "InvalidRamRole.NotFound",
        "The specified RAMRoleName does not exist.",
    )
}

fn version_not_found() -> ApiError {
    ApiError::new(
        404,
        "EntityNotExist.Policy.Version",
        "The policy version does not exist.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs_double::state::test_params;

    const TRUST: &str = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}],"Version":"1"}"#;
    const STOP: &str = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:StopInstance","Resource":"*"}]}"#;

    fn run(ram: &mut Ram, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        ram.handle(action, &test_params(pairs), 7, "2026-12-01T08:00:00Z")
    }

    fn code(r: Result<Value, ApiError>) -> String {
        r.err().map(|e| e.code).unwrap_or_default()
    }

    fn role_and_policy() -> Ram {
        let mut ram = Ram::default();
        let made = run(
            &mut ram,
            "CreateRole",
            &[
                ("RoleName", "box-idle"),
                ("AssumeRolePolicyDocument", TRUST),
                ("MaxSessionDuration", "3600"),
            ],
        )
        .unwrap();
        assert_eq!(
            made["Role"]["Arn"],
            format!("acs:ram::{ACCOUNT_ID}:role/box-idle")
        );
        assert_eq!(made["Role"]["MaxSessionDuration"], 3600);
        let made = run(
            &mut ram,
            "CreatePolicy",
            &[("PolicyName", "box-stop"), ("PolicyDocument", STOP)],
        )
        .unwrap();
        assert_eq!(made["Policy"]["DefaultVersion"], "v1");
        ram
    }

    const ATTACH: [(&str, &str); 3] = [
        ("PolicyType", "Custom"),
        ("PolicyName", "box-stop"),
        ("RoleName", "box-idle"),
    ];

    #[test]
    fn names_and_documents_are_checked_and_duplicates_refused() {
        let mut ram = role_and_policy();
        for (pairs, expected) in [
            (
                vec![
                    ("RoleName", "box_idle"),
                    ("AssumeRolePolicyDocument", TRUST),
                ],
                "InvalidParameter.RoleName.InvalidChars",
            ),
            (
                vec![
                    ("RoleName", &*"r".repeat(65)),
                    ("AssumeRolePolicyDocument", TRUST),
                ],
                "InvalidParameter.RoleName.Length",
            ),
            (
                vec![
                    ("RoleName", "BOX-IDLE"),
                    ("AssumeRolePolicyDocument", TRUST),
                ],
                "EntityAlreadyExists.Role",
            ),
            (
                vec![("RoleName", "other"), ("AssumeRolePolicyDocument", STOP)],
                "MalformedPolicyDocument",
            ),
            (vec![("RoleName", "other")], "MissingParameter"),
        ] {
            assert_eq!(
                code(run(&mut ram, "CreateRole", &pairs)),
                expected,
                "{pairs:?}"
            );
        }
        for (pairs, expected) in [
            (
                vec![("PolicyName", "box.stop"), ("PolicyDocument", STOP)],
                "InvalidParameter.PolicyName.InvalidChars",
            ),
            (
                vec![("PolicyName", "Box-Stop"), ("PolicyDocument", STOP)],
                "EntityAlreadyExists.Policy",
            ),
            (
                vec![
                    ("PolicyName", "AliyunECSFullAccess"),
                    ("PolicyDocument", STOP),
                ],
                "EntityAlreadyExists.Policy",
            ),
            (
                vec![
                    ("PolicyName", "other"),
                    ("PolicyDocument", "{\"Version\":\"1\"}"),
                ],
                "MalformedPolicyDocument",
            ),
            (
                vec![
                    ("PolicyName", "other"),
                    ("PolicyDocument", &*"x".repeat(6145)),
                ],
                "InvalidParameter.PolicyDocument.Length",
            ),
        ] {
            assert_eq!(
                code(run(&mut ram, "CreatePolicy", &pairs)),
                expected,
                "{pairs:?}"
            );
        }
        assert_eq!(
            code(run(&mut ram, "GetRole", &[("RoleName", "nobody")])),
            "EntityNotExist.Role"
        );
        assert_eq!(
            code(run(
                &mut ram,
                "GetPolicy",
                &[("PolicyName", "nothing"), ("PolicyType", "Custom")]
            )),
            "EntityNotExist.Policy"
        );
        assert_eq!(
            code(run(
                &mut ram,
                "GetPolicy",
                &[("PolicyName", "box-stop"), ("PolicyType", "Managed")]
            )),
            "InvalidParameter.PolicyType.InvalidValue"
        );
    }

    #[test]
    fn attached_policies_block_deletes_until_detached() {
        let mut ram = role_and_policy();
        run(&mut ram, "AttachPolicyToRole", &ATTACH).unwrap();
        assert_eq!(
            code(run(&mut ram, "AttachPolicyToRole", &ATTACH)),
            "EntityAlreadyExists.Role.Policy"
        );
        let missing_role = [ATTACH[0], ATTACH[1], ("RoleName", "nobody")];
        assert_eq!(
            code(run(&mut ram, "AttachPolicyToRole", &missing_role)),
            "EntityNotExist.Role"
        );
        let missing_policy = [ATTACH[0], ("PolicyName", "nothing"), ATTACH[2]];
        assert_eq!(
            code(run(&mut ram, "AttachPolicyToRole", &missing_policy)),
            "EntityNotExist.Policy"
        );

        let listed = run(&mut ram, "ListPoliciesForRole", &[("RoleName", "box-idle")]).unwrap();
        assert_eq!(listed["Policies"]["Policy"][0]["PolicyName"], "box-stop");
        assert_eq!(listed["Policies"]["Policy"][0]["PolicyType"], "Custom");
        let got = run(
            &mut ram,
            "GetPolicy",
            &[("PolicyName", "box-stop"), ("PolicyType", "Custom")],
        )
        .unwrap();
        assert_eq!(got["Policy"]["AttachmentCount"], 1);
        assert_eq!(got["DefaultPolicyVersion"]["PolicyDocument"], STOP);
        let entities = run(
            &mut ram,
            "ListEntitiesForPolicy",
            &[("PolicyName", "box-stop"), ("PolicyType", "Custom")],
        )
        .unwrap();
        assert_eq!(entities["Roles"]["Role"][0]["RoleName"], "box-idle");
        assert_eq!(entities["Users"]["User"], json!([]));
        assert_eq!(ram.statements_of("BOX-IDLE").len(), 1);

        assert_eq!(
            code(run(&mut ram, "DeleteRole", &[("RoleName", "box-idle")])),
            "DeleteConflict.Role.Policy"
        );
        assert_eq!(
            code(run(&mut ram, "DeletePolicy", &[("PolicyName", "box-stop")])),
            "DeleteConflict.Policy.Role"
        );
        run(&mut ram, "DetachPolicyFromRole", &ATTACH).unwrap();
        assert_eq!(
            code(run(&mut ram, "DetachPolicyFromRole", &ATTACH)),
            "EntityNotExist.Role.Policy"
        );
        run(&mut ram, "DeleteRole", &[("RoleName", "box-idle")]).unwrap();
        run(&mut ram, "DeletePolicy", &[("PolicyName", "box-stop")]).unwrap();
        assert!(ram.role_views().is_empty() && ram.policy_views().is_empty());
    }

    #[test]
    fn versions_rotate_at_the_limit_and_the_default_cannot_go() {
        let mut ram = role_and_policy();
        let version = [
            ("PolicyName", "box-stop"),
            ("PolicyDocument", STOP),
            ("SetAsDefault", "true"),
        ];
        for _ in 0..4 {
            run(&mut ram, "CreatePolicyVersion", &version).unwrap();
        }
        assert_eq!(
            code(run(&mut ram, "CreatePolicyVersion", &version)),
            "LimitExceeded.Policy.Version"
        );
        let rotate = [
            version[0],
            version[1],
            version[2],
            (
                "RotateStrategy",
                "DeleteOldestNonDefaultVersionWhenLimitExceeded",
            ),
        ];
        let made = run(&mut ram, "CreatePolicyVersion", &rotate).unwrap();
        assert_eq!(made["PolicyVersion"]["VersionId"], "v6");
        let listed = run(
            &mut ram,
            "ListPolicyVersions",
            &[("PolicyName", "box-stop"), ("PolicyType", "Custom")],
        )
        .unwrap();
        let ids: Vec<&str> = listed["PolicyVersions"]["PolicyVersion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["VersionId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["v2", "v3", "v4", "v5", "v6"]);
        assert_eq!(
            code(run(
                &mut ram,
                "DeletePolicyVersion",
                &[("PolicyName", "box-stop"), ("VersionId", "v6")]
            )),
            "DeleteConflict.Policy.Version.Default"
        );
        assert_eq!(
            code(run(&mut ram, "DeletePolicy", &[("PolicyName", "box-stop")])),
            "DeleteConflict.Policy.Version"
        );
        run(
            &mut ram,
            "DeletePolicyVersion",
            &[("PolicyName", "box-stop"), ("VersionId", "v2")],
        )
        .unwrap();
        let v3 = run(
            &mut ram,
            "GetPolicyVersion",
            &[
                ("PolicyName", "box-stop"),
                ("PolicyType", "Custom"),
                ("VersionId", "v3"),
            ],
        )
        .unwrap();
        assert_eq!(v3["PolicyVersion"]["IsDefaultVersion"], false);
    }

    #[test]
    fn an_instance_role_must_exist_and_trust_ecs() {
        let mut ram = role_and_policy();
        assert_eq!(ram.instance_role("BOX-idle").unwrap(), "box-idle");
        assert_eq!(
            ram.instance_role("nobody").unwrap_err().code,
            "InvalidRamRole.NotFound"
        );
        let account = r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"RAM":["acs:ram::1968132000123456:root"]}}]}"#;
        run(
            &mut ram,
            "CreateRole",
            &[
                ("RoleName", "admins"),
                ("AssumeRolePolicyDocument", account),
            ],
        )
        .unwrap();
        assert_eq!(
            ram.instance_role("admins").unwrap_err().code,
            "InvalidRamRole.NotEcsRole"
        );
        // A system policy attaches like a custom one and grants what its document says.
        run(
            &mut ram,
            "AttachPolicyToRole",
            &[
                ("PolicyType", "System"),
                ("PolicyName", "AliyunECSReadOnlyAccess"),
                ("RoleName", "admins"),
            ],
        )
        .unwrap();
        let statements = ram.statements_of("admins");
        let any = format!("acs:ecs:cn-hangzhou:{ACCOUNT_ID}:instance/*");
        assert!(policy::allows(
            &statements,
            "ecs:DescribeInstances",
            std::slice::from_ref(&any)
        ));
        assert!(!policy::allows(&statements, "ecs:StopInstance", &[any]));
    }
}
