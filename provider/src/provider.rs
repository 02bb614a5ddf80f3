//! The `cloudcode` provider block: SSH credentials every operation can reach without a secret in state, the
//! Alibaba Cloud ECS access (region, AccessKey, endpoint override, poll/retry overrides) the snapshot resource
//! and data source use, and the registry of resources, data sources and functions.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use cloudcode_alicloud::{ClientConfig, Credentials, EcsClient, PollConfig, RetryPolicy};
use cloudcode_tfplugin::framework::{
    data_source, resource, AnyDataSource, AnyResource, Attribute, Block, Ctx, Diagnostics,
    Function, Provider, Schema, Typed,
};
use serde::Deserialize;

use crate::data_sources::snapshot::SnapshotData;
use crate::functions::ascii_domain::AsciiDomain;
use crate::functions::fallback_domain::FallbackDomain;
use crate::resources::snapshot_backup::SnapshotBackup;
use crate::resources::stack::Stack;

/// The provider's registry name, as in `provider::cloudcode::fallback_domain`.
pub const NAME: &str = "cloudcode";

/// Region environment variables, first non-empty wins (Alibaba Cloud CLI/SDK names, then the alicloud provider's).
pub const ENV_REGION: [&str; 3] = [
    "ALIBABA_CLOUD_REGION_ID",
    "ALIBABA_CLOUD_REGION",
    "ALICLOUD_REGION",
];
/// Overrides both ECS wait-loop intervals (instance stop, snapshot progress), e.g. `100ms`. For tests and
/// impatient users; the production defaults come from [`PollConfig::default`].
pub const ENV_POLL_INTERVAL: &str = "CLOUDCODE_ECS_POLL_INTERVAL";
/// Overrides the first retry delay of transient ECS errors (it doubles per retry), e.g. `10ms`.
pub const ENV_RETRY_DELAY: &str = "CLOUDCODE_ECS_RETRY_DELAY";

/// The provider block as written by the user. Provider configuration is never stored in state, which is why
/// the SSH private key and the AccessKey secret live here: Read (drift detection) can use them on every plan.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProviderConfig {
    pub ssh_private_key: Option<String>,
    pub ssh_private_key_passphrase: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub security_token: Option<String>,
    /// The `endpoints` block (nesting LIST, at most one).
    pub endpoints: Option<Vec<Endpoints>>,
}

/// `endpoints { ecs = "..." }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Endpoints {
    pub ecs: Option<String>,
    pub sts: Option<String>,
    pub bss: Option<String>,
}

impl ProviderConfig {
    fn ecs_endpoint(&self) -> Option<String> {
        self.endpoint(|e| &e.ecs)
    }

    fn endpoint(&self, which: impl Fn(&Endpoints) -> &Option<String>) -> Option<String> {
        self.endpoints
            .as_ref()
            .and_then(|e| e.first())
            .and_then(|e| which(e).clone())
            .filter(|e| !e.trim().is_empty())
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ProviderConfig")
            .field("ssh_private_key", &redacted(&self.ssh_private_key))
            .field(
                "ssh_private_key_passphrase",
                &redacted(&self.ssh_private_key_passphrase),
            )
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &redacted(&self.secret_key))
            .field("security_token", &redacted(&self.security_token))
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// Configuration shared with every resource after `ConfigureProvider`.
pub type Shared = Arc<RwLock<ProviderConfig>>;

/// A ready ECS client and the wait-loop settings, or why there is none (reported when a snapshot object needs
/// it, so configurations that only use `cloudcode_stack` need no Alibaba Cloud settings at all).
pub type SharedEcs = Arc<RwLock<Result<EcsAccess, String>>>;

/// What the snapshot resource and data source need to call ECS.
#[derive(Clone, Debug)]
pub struct EcsAccess {
    pub client: EcsClient,
    pub poll: PollConfig,
    /// What the client was built from (the preflight builds STS and BSS clients from it).
    pub config: ClientConfig,
}

/// Why an ECS operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum EcsFailure {
    #[error("{0}")]
    Api(#[from] cloudcode_alicloud::Error),
    #[error(
        "cancelled: Terraform asked the provider to stop (interrupt); the operation was abandoned"
    )]
    Cancelled,
}

/// Runs `fut` until it finishes or Terraform sends `StopProvider`, whichever is first. Dropping the future
/// abandons its HTTP call or wait loop at the next await point.
pub async fn cancellable<T>(
    ctx: &Ctx,
    fut: impl std::future::Future<Output = Result<T, cloudcode_alicloud::Error>>,
) -> Result<T, EcsFailure> {
    tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err(EcsFailure::Cancelled),
        r = fut => r.map_err(EcsFailure::Api),
    }
}

/// Error codes meaning the AccessKey, its secret or the STS token is wrong.
fn is_credential_code(code: &str) -> bool {
    code.starts_with("InvalidAccessKeyId")
        || code.starts_with("InvalidSecurityToken")
        || matches!(
            code,
            "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "MissingSecurityToken"
                | "Forbidden.AccessKeyDisabled"
        )
}

/// The text of a failed ECS operation: the service's Code, Message and RequestId (never a secret: errors
/// carry only the AccessKey id), plus what to check when the credentials were refused.
pub fn ecs_detail(err: &EcsFailure) -> String {
    let mut detail = err.to_string();
    if let EcsFailure::Api(e) = err {
        if e.code().is_some_and(is_credential_code) {
            detail.push_str(
                "\n\nAlibaba Cloud refused the credentials. Check access_key and secret_key (and security_token \
                 for STS credentials) in the cloudcode provider block, or ALIBABA_CLOUD_ACCESS_KEY_ID / \
                 ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment.",
            );
        }
    }
    detail
}

/// Adds an error diagnostic for a failed ECS operation (see [`ecs_detail`]).
pub fn report_ecs(diags: &mut Diagnostics, summary: impl Into<String>, err: &EcsFailure) {
    diags.error(summary, ecs_detail(err));
}

/// The configured ECS access, or an error diagnostic (at no attribute: provider settings are not part of the
/// resource) saying what is missing.
pub fn ecs_access(shared: &SharedEcs, diags: &mut Diagnostics) -> Option<EcsAccess> {
    let guard = match shared.read() {
        Ok(g) => g,
        Err(_) => {
            diags.error(
                "Alibaba Cloud access unavailable",
                "internal error: lock poisoned",
            );
            return None;
        }
    };
    match &*guard {
        Ok(access) => Some(access.clone()),
        Err(why) => {
            diags.error("Alibaba Cloud access is not configured", why.clone());
            None
        }
    }
}

/// Builds the ECS access from the provider block with fallback to `env`. Missing credentials or region are
/// not errors here (they are reported when a snapshot object needs them); bad override values are.
fn build_ecs(
    c: &ProviderConfig,
    unknown: &[&str],
    env: impl Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> Result<EcsAccess, String> {
    let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let mut poll = PollConfig::default();
    let mut retry = RetryPolicy::default();
    if let Some(raw) = env_nonempty(ENV_POLL_INTERVAL) {
        match parse_duration(ENV_POLL_INTERVAL, &raw) {
            Ok(d) => {
                poll.instance_interval = d;
                poll.snapshot_interval = d;
            }
            Err(e) => diags.error(format!("Invalid {ENV_POLL_INTERVAL}"), e),
        }
    }
    if let Some(raw) = env_nonempty(ENV_RETRY_DELAY) {
        match parse_duration(ENV_RETRY_DELAY, &raw) {
            Ok(d) => {
                retry.base_delay = d;
                retry.max_delay = retry.max_delay.max(d);
            }
            Err(e) => diags.error(format!("Invalid {ENV_RETRY_DELAY}"), e),
        }
    }
    if let Some(name) = unknown.first() {
        return Err(format!(
            "The provider argument `{name}` is not known yet (it depends on a resource that is not created). \
             Use a value known at plan time for the cloudcode provider's Alibaba Cloud settings."
        ));
    }
    let credentials = Credentials::resolve(
        c.access_key.clone(),
        c.secret_key.clone(),
        c.security_token.clone(),
        &env,
    )
    .map_err(|e| {
        format!(
            "{e}. The cloudcode provider needs an Alibaba Cloud AccessKey for cloudcode_snapshot_backup and \
             the cloudcode_snapshot data source: set access_key and secret_key in the provider block, or the \
             ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET environment variables."
        )
    })?;
    let region = c
        .region
        .clone()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| ENV_REGION.iter().find_map(|k| env_nonempty(k)))
        .ok_or_else(|| {
            format!(
                "No Alibaba Cloud region: set region in the cloudcode provider block (e.g. \"cn-hangzhou\") or \
                 the {} environment variable.",
                ENV_REGION.join(" or ")
            )
        })?;
    let config = ClientConfig {
        endpoint: c.ecs_endpoint(),
        sts_endpoint: c.endpoint(|e| &e.sts),
        bss_endpoint: c.endpoint(|e| &e.bss),
        retry,
        ..ClientConfig::new(region, credentials)
    };
    let client = EcsClient::new(config.clone()).map_err(|e| e.to_string())?;
    Ok(EcsAccess {
        client,
        poll,
        config,
    })
}

fn parse_duration(name: &str, raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if !d.is_zero() && d <= Duration::from_secs(600) => Ok(d),
        _ => Err(format!(
            "{name}={raw:?} must be a duration between 1ms and 10m, such as \"100ms\" or \"5s\""
        )),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Plan-time rules of the provider block
// ---------------------------------------------------------------------------------------------------------

/// Region ids look like `cn-hangzhou`, `ap-southeast-1`, `us-west-1`.
pub fn rule_region(v: &str) -> Result<(), String> {
    let ok = v.len() <= 64
        && v.split('-').count() >= 2
        && v.split('-').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && v.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not an Alibaba Cloud region id such as \"cn-hangzhou\" or \"ap-southeast-1\""
        ))
    }
}

/// A host name (→ https) or a full `http(s)://host[:port]` URL without query or fragment.
pub fn rule_endpoint(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err("must not be empty; leave `ecs` unset to use ecs.<region>.aliyuncs.com".into());
    }
    if !v.contains("://")
        && !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    {
        return Err(format!(
            "{v:?} is neither a host name (e.g. \"ecs-vpc.cn-hangzhou.aliyuncs.com\") nor an http(s) URL"
        ));
    }
    cloudcode_alicloud::resolve_endpoint("cn-hangzhou", Some(v))
        .map(|_| ())
        .map_err(|e| {
            e.to_string()
                .replace("invalid ECS client configuration: ", "")
        })
}

// ---------------------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------------------

/// The cloudcode provider.
pub struct Cloudcode {
    config: Shared,
    ecs: SharedEcs,
}

impl Default for Cloudcode {
    fn default() -> Self {
        Self {
            config: Shared::default(),
            ecs: Arc::new(RwLock::new(Err(
                "The cloudcode provider was not configured.".to_string(),
            ))),
        }
    }
}

impl Cloudcode {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Provider for Cloudcode {
    type Config = ProviderConfig;

    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> Schema {
        let s = Attribute::string;
        Schema::new(
            0,
            Block::new(
                "Deploys the cloudcode stack (Caddy, Authelia, OpenCode devbox) onto a host over SSH, and keeps \
                 its system disk as an Alibaba Cloud ECS snapshot across destroy and deploy.",
            )
            .attribute(s("ssh_private_key").optional().sensitive().description(
                "PEM/OpenSSH private key used by every `cloudcode_stack` that has no `private_key_path`. \
                 Provider configuration is never written to state, so this is the place for key material \
                 (e.g. from a CI secret). Falls back to the `CLOUDCODE_SSH_PRIVATE_KEY` environment variable.",
            ))
            .attribute(s("ssh_private_key_passphrase").optional().sensitive().description(
                "Passphrase of `ssh_private_key` or of the key at a stack's `private_key_path`, if it is \
                 encrypted. Falls back to `CLOUDCODE_SSH_PRIVATE_KEY_PASSPHRASE`.",
            ))
            .attribute(s("region").optional().validate_str(rule_region).description(
                "Alibaba Cloud region of the instance and its snapshots, e.g. `cn-hangzhou` (same name as in the \
                 `alicloud` provider). Falls back to `ALIBABA_CLOUD_REGION_ID`, `ALIBABA_CLOUD_REGION` or \
                 `ALICLOUD_REGION`. Needed only by `cloudcode_snapshot_backup` and `cloudcode_snapshot`.",
            ))
            .attribute(s("access_key").optional().description(
                "AccessKey ID for the ECS API. Falls back to `ALIBABA_CLOUD_ACCESS_KEY_ID`, then \
                 `ALICLOUD_ACCESS_KEY`. Needed only by the snapshot resource and data source.",
            ))
            .attribute(s("secret_key").optional().sensitive().description(
                "AccessKey secret. Falls back to `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, then `ALICLOUD_SECRET_KEY`. \
                 Never written to state or logs.",
            ))
            .attribute(s("security_token").optional().sensitive().description(
                "STS security token, when `access_key`/`secret_key` are temporary STS credentials. Falls back to \
                 `ALIBABA_CLOUD_SECURITY_TOKEN`, then `ALICLOUD_SECURITY_TOKEN`.",
            ))
            .single_block(
                "endpoints",
                Block::new("Endpoint overrides (private endpoints, proxies, tests).")
                    .attribute(s("ecs").optional().validate_str(rule_endpoint).description(
                        "ECS API endpoint instead of `ecs.<region>.aliyuncs.com`: a host name (HTTPS is used, \
                         e.g. `ecs-vpc.cn-hangzhou.aliyuncs.com`) or a full `http(s)://host:port` URL.",
                    ))
                    .attribute(s("sts").optional().validate_str(rule_endpoint).description(
                        "STS endpoint (the preflight's identity check) instead of `sts.aliyuncs.com`, the same way.",
                    ))
                    .attribute(s("bss").optional().validate_str(rule_endpoint).description(
                        "BSS OpenAPI endpoint (the preflight's balance) instead of `business.aliyuncs.com` (then \
                         `business.ap-southeast-1.aliyuncs.com` for international accounts), the same way.",
                    )),
            ),
        )
    }

    async fn configure(&self, config: Typed<ProviderConfig>, diags: &mut Diagnostics) {
        let unknown: Vec<&str> = [
            "region",
            "access_key",
            "secret_key",
            "security_token",
            "endpoints",
        ]
        .into_iter()
        .filter(|a| config.is_unknown(a))
        .collect();
        let mut c = config.value;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        c.ssh_private_key = c
            .ssh_private_key
            .or_else(|| env("CLOUDCODE_SSH_PRIVATE_KEY"));
        c.ssh_private_key_passphrase = c
            .ssh_private_key_passphrase
            .or_else(|| env("CLOUDCODE_SSH_PRIVATE_KEY_PASSPHRASE"));
        let ecs = build_ecs(&c, &unknown, env, diags);
        if let Err(why) = &ecs {
            tracing::debug!(reason = %why, "ECS access not available");
        }
        if let Ok(mut shared) = self.ecs.write() {
            *shared = ecs;
        }
        if let Ok(mut shared) = self.config.write() {
            *shared = c;
        }
    }

    fn resources(&self) -> Vec<Arc<dyn AnyResource>> {
        vec![
            resource(Stack::new(self.config.clone())),
            resource(SnapshotBackup::new(self.ecs.clone())),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn AnyDataSource>> {
        vec![
            data_source(SnapshotData::new(self.ecs.clone())),
            data_source(crate::data_sources::preflight::PreflightData::new(
                self.ecs.clone(),
            )),
        ]
    }

    fn functions(&self) -> Vec<Arc<dyn Function>> {
        vec![Arc::new(AsciiDomain), Arc::new(FallbackDomain)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn every_attribute_of_every_schema_is_described() {
        let p = Cloudcode::new();
        let mut blocks = vec![("provider".to_string(), p.schema().block)];
        blocks.extend(
            p.resources()
                .iter()
                .map(|r| (r.type_name().to_string(), r.schema().block)),
        );
        blocks.extend(
            p.data_sources()
                .iter()
                .map(|d| (d.type_name().to_string(), d.schema().block)),
        );
        fn check(owner: &str, block: &Block) {
            for a in &block.attributes {
                assert!(
                    !a.description.trim().is_empty(),
                    "{owner}.{} has no description",
                    a.name
                );
                for n in a.nested.iter().flatten() {
                    assert!(
                        !n.description.trim().is_empty(),
                        "{owner}.{}.{}",
                        a.name,
                        n.name
                    );
                }
            }
            for b in &block.blocks {
                check(&format!("{owner}.{}", b.name), &b.block);
            }
        }
        for (owner, block) in &blocks {
            check(owner, block);
        }
    }

    #[test]
    fn region_rule_accepts_real_region_ids_only() {
        for ok in [
            "cn-hangzhou",
            "ap-southeast-1",
            "us-west-1",
            "cn-shanghai-finance-1",
        ] {
            assert!(rule_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "hangzhou",
            "CN-Hangzhou",
            "cn_hangzhou",
            "cn-",
            "-cn",
            "1cn-x",
            "cn hz",
        ] {
            assert!(rule_region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoint_rule_accepts_host_names_and_http_urls() {
        for ok in [
            "ecs-vpc.cn-hangzhou.aliyuncs.com",
            "http://127.0.0.1:8080",
            "https://ecs.example.com/",
        ] {
            assert!(rule_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "http://",
            "not a host",
            "http://h/?q=1",
            "h/path",
        ] {
            assert!(rule_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn provider_block_wins_and_environment_fills_the_rest() {
        let c = ProviderConfig {
            region: Some("cn-shanghai".into()),
            access_key: Some("AKblock".into()),
            endpoints: Some(vec![Endpoints {
                ecs: Some("http://127.0.0.1:9".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let mut d = Diagnostics::new();
        let access = build_ecs(
            &c,
            &[],
            env(&[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "AKenv"),
                ("ALICLOUD_SECRET_KEY", "sk-env"),
                ("ALICLOUD_REGION", "cn-beijing"),
                (ENV_POLL_INTERVAL, "100ms"),
                (ENV_RETRY_DELAY, "10ms"),
            ]),
            &mut d,
        )
        .unwrap();
        assert!(d.is_empty());
        assert_eq!(access.client.region(), "cn-shanghai");
        assert_eq!(access.client.endpoint().as_str(), "http://127.0.0.1:9/");
        assert_eq!(access.poll.snapshot_interval, Duration::from_millis(100));
        assert_eq!(access.poll.instance_interval, Duration::from_millis(100));
        let dbg = format!("{access:?}");
        assert!(dbg.contains("AKblock") && !dbg.contains("sk-env"), "{dbg}");
    }

    #[test]
    fn missing_credentials_or_region_is_deferred_not_an_error() {
        let mut d = Diagnostics::new();
        let err = build_ecs(&ProviderConfig::default(), &[], env(&[]), &mut d).unwrap_err();
        assert!(d.is_empty());
        assert!(err.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{err}");
        let err = build_ecs(
            &ProviderConfig::default(),
            &[],
            env(&[("ALICLOUD_ACCESS_KEY", "a"), ("ALICLOUD_SECRET_KEY", "b")]),
            &mut d,
        )
        .unwrap_err();
        assert!(err.contains("region"), "{err}");
        let err = build_ecs(
            &ProviderConfig::default(),
            &["secret_key"],
            env(&[]),
            &mut d,
        )
        .unwrap_err();
        assert!(err.contains("`secret_key` is not known"), "{err}");
    }

    #[test]
    fn bad_poll_interval_is_an_error_naming_the_variable() {
        let mut d = Diagnostics::new();
        let _ = build_ecs(
            &ProviderConfig::default(),
            &[],
            env(&[(ENV_POLL_INTERVAL, "soon")]),
            &mut d,
        );
        assert!(d.has_errors());
        assert!(d.items()[0].summary.contains(ENV_POLL_INTERVAL));
    }

    #[test]
    fn debug_of_the_provider_config_redacts_secrets() {
        let c = ProviderConfig {
            secret_key: Some("sk-very-secret".into()),
            security_token: Some("sts-token-xyz".into()),
            ssh_private_key: Some("-----BEGIN".into()),
            access_key: Some("AKID".into()),
            ..Default::default()
        };
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("sk-very-secret")
                && !dbg.contains("sts-token-xyz")
                && !dbg.contains("BEGIN")
        );
        assert!(dbg.contains("AKID"));
    }
}
