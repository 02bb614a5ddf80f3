//! STS credentials of a RAM role, as the metadata service hands them to an instance, and what they may do: the
//! double registers the temporary key with its security token (checked like any STS key, refused once expired),
//! and a call signed with it is allowed only when the role's attached policies allow `<product>:<Action>` on the
//! resources the call touches (`acs:ecs:<region>:<account>:instance/<id>` for an instance's actions and its tags,
//! `.../instance/*` for DescribeInstances); otherwise `Forbidden.RAM` (HTTP 403). STS GetCallerIdentity needs no
//! permission. Calls signed with the account's own keys are not evaluated.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::account::ACCOUNT_ID;
use super::policy;
use super::state::{AccessKey, ApiError, World};

/// How long credentials from the metadata service live (they are renewed well before).
pub(crate) const ROLE_CREDENTIALS_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// Temporary credentials of a RAM role (what `/latest/meta-data/ram/security-credentials/<role>` serves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    pub role_name: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    /// RFC 3339, UTC, whole seconds (`2026-12-01T14:00:00Z`).
    pub expiration: String,
}

/// `Forbidden.RAM`, as ECS answers a RAM identity its policies do not allow.
fn forbidden() -> ApiError {
    ApiError::new(
        403,
        "Forbidden.RAM",
        "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
    )
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl World {
    /// New temporary credentials of `role` (an existing role, any case), valid for `valid_for`.
    pub(crate) fn issue_role_credentials(
        &mut self,
        role: &str,
        valid_for: Duration,
    ) -> Result<RoleCredentials, ApiError> {
        let role_name = self
            .ram
            .role_name(role)
            .ok_or_else(|| ApiError::new(404, "EntityNotExist.Role", "The role does not exist."))?;
        let n = self.next_seq();
        let access_key_id = format!(
            "STS.NT{n:04}{}",
            hex::encode_upper(rand::random::<[u8; 9]>())
        );
        let access_key_secret = hex::encode(rand::random::<[u8; 20]>());
        let security_token = format!(
            "CAIS{}",
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 96]>())
        );
        let expires = OffsetDateTime::now_utc() + valid_for;
        self.keys.insert(
            access_key_id.clone(),
            AccessKey {
                secret: access_key_secret.clone(),
                security_token: Some(security_token.clone()),
                role: Some(role_name.clone()),
                expires: Some(expires),
            },
        );
        Ok(RoleCredentials {
            role_name,
            access_key_id,
            access_key_secret,
            security_token,
            expiration: rfc3339(expires),
        })
    }

    /// The resources (ARNs) a call touches, for the policy evaluation of `product` (`ecs`, `vpc`, ...).
    fn resources_of(
        &self,
        product: &str,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let region = p.get("RegionId").map(String::as_str).unwrap_or("*");
        let arn = |region: &str, resource: &str| {
            format!("acs:{product}:{region}:{ACCOUNT_ID}:{resource}")
        };
        if product != "ecs" {
            return vec![arn(region, "*")];
        }
        let of = |kind: &str, id: &str| {
            let region = match kind {
                "instance" => self.instances.get(id).map_or(region, |i| i.region.as_str()),
                _ => region,
            };
            arn(region, &format!("{kind}/{id}"))
        };
        match action {
            "DescribeInstances" => vec![arn(region, "instance/*")],
            "TagResources" | "UntagResources" | "ListTagResources" => {
                let kind = p
                    .get("ResourceType")
                    .map(String::as_str)
                    .unwrap_or("instance");
                let ids: Vec<&String> = (1..=50)
                    .map_while(|n| p.get(&format!("ResourceId.{n}")))
                    .collect();
                if ids.is_empty() {
                    vec![arn(region, &format!("{kind}/*"))]
                } else {
                    ids.into_iter().map(|id| of(kind, id)).collect()
                }
            }
            _ => match p.get("InstanceId") {
                Some(id) => vec![of("instance", id)],
                None => vec![arn(region, "*")],
            },
        }
    }

    /// Whether the caller may make this call: always with the account's keys and for STS (`product` None), else
    /// only as its role's policies allow.
    pub(crate) fn authorize(
        &self,
        product: Option<&str>,
        action: &str,
        p: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let (Some(product), Some(role)) = (
            product,
            self.caller.as_ref().and_then(|c| c.role.as_deref()),
        ) else {
            return Ok(());
        };
        let statements = self.ram.statements_of(role);
        let resources = self.resources_of(product, action, p);
        if policy::allows(&statements, &format!("{product}:{action}"), &resources) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }
}

#[cfg(test)]
mod tests {
    use cloudcode_alicloud::{ClientConfig, Credentials, EcsClient, RetryPolicy};
    use serde_json::Value;

    use super::*;
    use crate::ecs_double::{EcsDouble, InstanceSeed};

    const BOX: &str = "i-bp1rolebox000001";
    const OTHER: &str = "i-bp1roleother0001";
    const REGION: &str = "cn-hangzhou";
    const TRUST: &str = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}],"Version":"1"}"#;

    /// A double with two instances and the role `box-idle`, allowed to stop and tag `BOX` only, attached to it.
    fn double() -> EcsDouble {
        let ecs = EcsDouble::start().unwrap();
        ecs.add_access_key("LTAI5tAccountKey", "account-secret");
        ecs.add_instance(InstanceSeed::running(BOX, REGION));
        ecs.add_instance(InstanceSeed::running(OTHER, REGION));
        let policy = format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":["ecs:StopInstance","ecs:TagResources","ecs:UntagResources"],"Resource":"acs:ecs:{REGION}:{ACCOUNT_ID}:instance/{BOX}"}}]}}"#
        );
        for (action, params) in [
            (
                "CreateRole",
                vec![
                    ("RoleName", "box-idle"),
                    ("AssumeRolePolicyDocument", TRUST),
                ],
            ),
            (
                "CreatePolicy",
                vec![
                    ("PolicyName", "box-idle-stop"),
                    ("PolicyDocument", &*policy),
                ],
            ),
            (
                "AttachPolicyToRole",
                vec![
                    ("PolicyType", "Custom"),
                    ("PolicyName", "box-idle-stop"),
                    ("RoleName", "box-idle"),
                ],
            ),
        ] {
            ecs.ram_call(action, &params).unwrap();
        }
        ecs.attach_instance_ram_role(BOX, "box-idle").unwrap();
        ecs
    }

    fn client(ecs: &EcsDouble, credentials: Credentials) -> EcsClient {
        let mut config = ClientConfig::new(REGION, credentials);
        config.endpoint = Some(ecs.base_url());
        config.retry = RetryPolicy::fast(1);
        EcsClient::new(config).unwrap()
    }

    fn role_client(ecs: &EcsDouble, c: &RoleCredentials) -> EcsClient {
        client(
            ecs,
            Credentials::new(&c.access_key_id, &c.access_key_secret)
                .with_security_token(&c.security_token),
        )
    }

    /// `Ok` or the error code of one call.
    fn outcome(client: &EcsClient, action: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.call::<Value>(action, &params))
            .map_err(|e| e.code().unwrap_or("transport").to_string())
    }

    fn tag(id: &str) -> Vec<(&str, &str)> {
        vec![
            ("RegionId", REGION),
            ("ResourceType", "instance"),
            ("ResourceId.1", id),
            ("Tag.1.Key", "cloudcode:idle-suspended"),
            ("Tag.1.Value", "2026-12-01T08:00:00Z"),
        ]
    }

    #[test]
    fn role_credentials_do_what_the_policy_allows_on_their_own_instance_only() {
        let ecs = double();
        let creds = ecs.issue_role_credentials("box-idle");
        assert!(creds.access_key_id.starts_with("STS."));
        let role = role_client(&ecs, &creds);

        outcome(&role, "TagResources", &tag(BOX)).unwrap();
        let described = outcome(
            &client(&ecs, Credentials::new("LTAI5tAccountKey", "account-secret")),
            "DescribeInstances",
            &[
                ("RegionId", REGION),
                ("InstanceIds", &format!("[\"{BOX}\"]")),
            ],
        )
        .unwrap();
        let tags = &described["Instances"]["Instance"][0]["Tags"]["Tag"];
        assert_eq!(tags[0]["TagKey"], "cloudcode:idle-suspended");
        outcome(
            &role,
            "StopInstance",
            &[("InstanceId", BOX), ("StoppedMode", "StopCharging")],
        )
        .unwrap();
        assert_eq!(ecs.instance_status(BOX).as_deref(), Some("Stopping"));
        let untag = [
            ("RegionId", REGION),
            ("ResourceType", "instance"),
            ("ResourceId.1", BOX),
            ("TagKey.1", "cloudcode:idle-suspended"),
        ];
        outcome(&role, "UntagResources", &untag).unwrap();
        assert!(ecs
            .instances()
            .iter()
            .find(|i| i.instance_id == BOX)
            .unwrap()
            .tags
            .is_empty());

        // Refused beside: another instance, another action, DescribeInstances (its resource is instance/*).
        let forbidden = Err("Forbidden.RAM".to_string());
        assert_eq!(
            outcome(&role, "StopInstance", &[("InstanceId", OTHER)]),
            forbidden
        );
        assert_eq!(outcome(&role, "TagResources", &tag(OTHER)), forbidden);
        assert_eq!(
            outcome(
                &role,
                "TagResources",
                &[tag(BOX), vec![("ResourceId.2", OTHER)]].concat()
            ),
            forbidden
        );
        assert_eq!(
            outcome(&role, "StartInstance", &[("InstanceId", BOX)]),
            forbidden
        );
        assert_eq!(
            outcome(
                &role,
                "DeleteInstance",
                &[("InstanceId", BOX), ("Force", "true")]
            ),
            forbidden
        );
        assert_eq!(
            outcome(&role, "DescribeInstances", &[("RegionId", REGION)]),
            forbidden
        );
        assert_eq!(ecs.instance_status(OTHER).as_deref(), Some("Running"));

        // Each call records who signed it; the account's own key is not evaluated.
        let calls = ecs.calls_of("StopInstance");
        assert_eq!(
            (
                calls[0].access_key_id.as_str(),
                calls[0].security_token,
                calls[0].outcome.as_str()
            ),
            (creds.access_key_id.as_str(), true, "OK")
        );
        let account = client(&ecs, Credentials::new("LTAI5tAccountKey", "account-secret"));
        outcome(&account, "StopInstance", &[("InstanceId", OTHER)]).unwrap();
        let last = ecs.calls_of("StopInstance").pop().unwrap();
        assert_eq!(
            (last.access_key_id.as_str(), last.security_token),
            ("LTAI5tAccountKey", false)
        );
    }

    #[test]
    fn role_credentials_need_their_token_until_they_expire_and_follow_policy_changes() {
        let ecs = double();
        let creds = ecs.issue_role_credentials("box-idle");
        let tokenless = client(
            &ecs,
            Credentials::new(&creds.access_key_id, &creds.access_key_secret),
        );
        assert_eq!(
            outcome(&tokenless, "TagResources", &tag(BOX)),
            Err("MissingSecurityToken".into())
        );
        let forged = client(
            &ecs,
            Credentials::new(&creds.access_key_id, &creds.access_key_secret)
                .with_security_token("CAISforged"),
        );
        assert_eq!(
            outcome(&forged, "TagResources", &tag(BOX)),
            Err("InvalidSecurityToken.MismatchWithAccessKey".into())
        );

        // Detaching the policy takes the permission away at once.
        let role = role_client(&ecs, &creds);
        ecs.ram_call(
            "DetachPolicyFromRole",
            &[
                ("PolicyType", "Custom"),
                ("PolicyName", "box-idle-stop"),
                ("RoleName", "box-idle"),
            ],
        )
        .unwrap();
        assert_eq!(
            outcome(&role, "TagResources", &tag(BOX)),
            Err("Forbidden.RAM".into())
        );
        // A system policy grants what its document says.
        ecs.ram_call(
            "AttachPolicyToRole",
            &[
                ("PolicyType", "System"),
                ("PolicyName", "AliyunECSReadOnlyAccess"),
                ("RoleName", "box-idle"),
            ],
        )
        .unwrap();
        outcome(&role, "DescribeInstances", &[("RegionId", REGION)]).unwrap();

        let expired = ecs.issue_role_credentials_for("box-idle", Duration::ZERO);
        assert_eq!(
            outcome(
                &role_client(&ecs, &expired),
                "DescribeInstances",
                &[("RegionId", REGION)]
            ),
            Err("InvalidSecurityToken.Expired".into())
        );
    }
}
