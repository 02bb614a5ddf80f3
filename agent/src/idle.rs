//! The idle agent's loop: identity from the metadata service, the looks, the logged decisions, tag and stop.

use std::collections::BTreeMap;
use std::time::Duration;

use cloudcode_alicloud::{ClientConfig, EcsClient, InstanceMetadata, RoleCredentials};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::IdleConfig;
use crate::decide::{Activity, Decision, Tracker};
use crate::signals;

/// Fetch new role credentials this long before the old ones expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// After StopInstance was accepted, wait this long before asking again (the instance is stopping).
const AFTER_STOP: Duration = Duration::from_secs(600);

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Api(Box<cloudcode_alicloud::Error>),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl From<cloudcode_alicloud::Error> for AgentError {
    fn from(e: cloudcode_alicloud::Error) -> Self {
        AgentError::Api(Box::new(e))
    }
}

/// An API answer meaning the credentials themselves are no good (fetch new ones before the next call).
fn credentials_refused(e: &cloudcode_alicloud::Error) -> bool {
    e.code().is_some_and(|c| {
        c.starts_with("InvalidSecurityToken")
            || c.starts_with("InvalidAccessKeyId")
            || c == "SignatureDoesNotMatch"
    })
}

/// Who the agent is on the API: its instance, region and role.
struct Identity {
    instance_id: String,
    region: String,
    role: String,
}

pub struct IdleAgent {
    cfg: IdleConfig,
    metadata: InstanceMetadata,
    http: reqwest::Client,
    identity: Option<Identity>,
    credentials: Option<RoleCredentials>,
    /// The key of what was last logged per topic (the decision, the identity), to log once per change.
    said: BTreeMap<&'static str, String>,
    /// The stale idle-suspended tag was removed (tried at each look until it is).
    tag_cleared: bool,
    /// Unreadable signals already reported (each once until it reads again).
    unreadable: std::collections::BTreeSet<&'static str>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl IdleAgent {
    pub fn new(cfg: IdleConfig) -> Result<Self, AgentError> {
        let metadata = InstanceMetadata::new(&cfg.metadata_url)?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(Self {
            cfg,
            metadata,
            http,
            identity: None,
            credentials: None,
            said: BTreeMap::new(),
            tag_cleared: false,
            unreadable: Default::default(),
        })
    }

    /// Runs until the process is stopped (with the instance).
    pub async fn run(mut self) {
        let mut tracker = Tracker::new(self.cfg.after, OffsetDateTime::now_utc());
        tracing::info!(
            after = %humantime::format_duration(self.cfg.after),
            every = %humantime::format_duration(self.cfg.every),
            "idle agent started: the box stops itself after this long without use"
        );
        loop {
            if self.identity.is_none() {
                self.find_identity().await;
            }
            if self.identity.is_some() && !self.tag_cleared {
                self.clear_tag().await;
            }
            let now = OffsetDateTime::now_utc();
            let seen = self.look(now).await;
            match tracker.look(now, seen) {
                Decision::Active(a) => {
                    // Logged when the kind of signal changes (a busy-now signal's time moves at each look).
                    let kind = a.signal.split_whitespace().next().unwrap_or("").to_string();
                    let text = format!(
                        "active: {} at {}; suspends after {} without use",
                        a.signal,
                        rfc3339(a.at),
                        humantime::format_duration(self.cfg.after)
                    );
                    self.say("decision", format!("active {kind}"), &text);
                }
                Decision::Suspend { since } => {
                    if self.suspend(now, &since).await {
                        tokio::time::sleep(AFTER_STOP).await;
                        continue;
                    }
                }
            }
            tokio::time::sleep(self.cfg.every).await;
        }
    }

    /// Logs `text` when `key` differs from the last one logged on `topic`.
    fn say(&mut self, topic: &'static str, key: String, text: &str) {
        if self.said.get(topic) != Some(&key) {
            tracing::info!("{text}");
            self.said.insert(topic, key);
        }
    }

    /// Instance id, region and role from the metadata service.
    async fn find_identity(&mut self) {
        let found = async {
            let instance_id = self.metadata.instance_id().await?;
            let region = self.metadata.region_id().await?;
            let role = self.metadata.role_name().await?;
            Ok::<_, cloudcode_alicloud::Error>(Identity {
                instance_id,
                region,
                role,
            })
        }
        .await;
        match found {
            Ok(id) => {
                tracing::info!(
                    instance = %id.instance_id, region = %id.region, role = %id.role,
                    "instance found through the metadata service"
                );
                self.identity = Some(id);
            }
            Err(e) => {
                let text = format!(
                    "cannot suspend yet: the instance metadata service at {} gave no instance and RAM role ({e}); \
                     idle suspend needs an ECS instance with its RAM role",
                    self.cfg.metadata_url
                );
                self.say("identity", e.to_string(), &text);
            }
        }
    }

    /// Removes the idle-suspended tag: the box runs, so it is not suspended any more.
    async fn clear_tag(&mut self) {
        let cleared = match self.client().await {
            Ok((client, instance)) => client.clear_idle_suspended(&instance).await,
            Err(e) => Err(e),
        };
        match cleared {
            Ok(()) => {
                tracing::info!(
                    tag = cloudcode_alicloud::TAG_IDLE_SUSPENDED,
                    "running: the idle-suspended tag is cleared"
                );
                self.tag_cleared = true;
            }
            Err(e) => {
                self.forget_refused_credentials(&e);
                self.say(
                    "tag",
                    e.to_string(),
                    &format!(
                        "cannot clear the idle-suspended tag yet (tried again at each look): {e}"
                    ),
                );
            }
        }
    }

    fn forget_refused_credentials(&mut self, e: &cloudcode_alicloud::Error) {
        if credentials_refused(e) {
            self.credentials = None;
        }
    }

    /// A client signed with the role's current credentials (fetched again shortly before they expire).
    async fn client(&mut self) -> Result<(EcsClient, String), cloudcode_alicloud::Error> {
        let Some(id) = &self.identity else {
            return Err(cloudcode_alicloud::Error::NotFound(
                "the instance is not known yet".into(),
            ));
        };
        let stale = self
            .credentials
            .as_ref()
            .is_none_or(|c| c.expires_within(OffsetDateTime::now_utc(), REFRESH_MARGIN));
        let creds = match (&self.credentials, stale) {
            (Some(c), false) => c.clone(),
            _ => {
                let fresh = self.metadata.role_credentials(&id.role).await?;
                self.credentials = Some(fresh.clone());
                fresh
            }
        };
        let mut config = ClientConfig::new(id.region.clone(), creds.credentials);
        config.endpoint = self.cfg.ecs_endpoint.clone();
        Ok((EcsClient::new(config)?, id.instance_id.clone()))
    }

    /// Every signal's newest activity; an unreadable one is reported once.
    async fn look(&mut self, now: OffsetDateTime) -> Vec<Activity> {
        let mut seen = Vec::new();
        let caddy = signals::caddy_requests(&self.cfg.caddy_log);
        self.keep(
            "caddy access log",
            caddy.map_err(|e| e.to_string()),
            &mut seen,
        );
        let opencode = signals::opencode_busy(&self.http, &self.cfg.opencode_url, now).await;
        self.keep("OpenCode", opencode.map_err(|e| e.to_string()), &mut seen);
        let logins = signals::logins(&self.cfg.utmp, now);
        self.keep("utmp", logins.map_err(|e| e.to_string()), &mut seen);
        if let Some(dir) = self.cfg.im_data.clone() {
            let chat = signals::chat_store(&dir);
            self.keep(
                "chat bridge store",
                chat.map_err(|e| e.to_string()),
                &mut seen,
            );
        }
        seen
    }

    fn keep(
        &mut self,
        name: &'static str,
        read: Result<Option<Activity>, String>,
        seen: &mut Vec<Activity>,
    ) {
        match read {
            Ok(a) => {
                self.unreadable.remove(name);
                seen.extend(a);
            }
            Err(e) => {
                if self.unreadable.insert(name) {
                    tracing::warn!(
                        signal = name,
                        "signal unreadable, counted as no activity: {e}"
                    );
                }
            }
        }
    }

    /// Tags and stops the instance; true once StopInstance was accepted.
    async fn suspend(&mut self, now: OffsetDateTime, since: &Activity) -> bool {
        let (client, instance) = match self.client().await {
            Ok(c) => c,
            Err(e) => {
                self.say(
                    "decision",
                    format!("no client: {e}"),
                    &format!("idle but cannot suspend: {e}"),
                );
                return false;
            }
        };
        let text = format!(
            "idle since {} (last: {}), limit {}: suspending instance {instance} (StopInstance, StopCharging)",
            rfc3339(since.at),
            since.signal,
            humantime::format_duration(self.cfg.after)
        );
        self.say("decision", "suspending".into(), &text);
        match client.suspend_for_idleness(&instance, &rfc3339(now)).await {
            // IncorrectInstanceStatus: a StopInstance retried after the first was taken (it is stopping already).
            Ok(()) => {
                tracing::info!(instance = %instance, "StopInstance accepted: the instance stops now");
                self.said.insert("decision", "suspended".into());
                true
            }
            Err(e) if e.code() == Some("IncorrectInstanceStatus") => {
                tracing::info!(instance = %instance, "the instance is stopping already");
                true
            }
            Err(e) => {
                self.forget_refused_credentials(&e);
                self.say(
                    "decision",
                    format!("failed: {}", e.code().unwrap_or("")),
                    &format!("suspend failed, tried again at each look: {e}"),
                );
                false
            }
        }
    }
}
