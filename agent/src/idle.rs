//! The idle agent's loop: finds its instance through the metadata service, clears a stale idle-suspended tag
//! (the box runs again), looks at the activity signals at each interval, logs each change of decision, and when
//! idle for the limit tags the instance and stops it in StopCharging mode with the role's STS credentials.

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
    /// The last thing logged about the decision, to log once per change.
    last_said: String,
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
    pub fn new(cfg: IdleConfig) -> Result<Self, Box<cloudcode_alicloud::Error>> {
        let metadata = InstanceMetadata::new(&cfg.metadata_url)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| Box::new(cloudcode_alicloud::Error::Config(e.to_string())))?;
        Ok(Self {
            cfg,
            metadata,
            http,
            identity: None,
            credentials: None,
            last_said: String::new(),
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
            let now = OffsetDateTime::now_utc();
            let seen = self.look(now).await;
            match tracker.look(now, seen) {
                Decision::Active(a) => self.say(format!(
                    "active: {} at {}; suspends after {} without use",
                    a.signal,
                    rfc3339(a.at),
                    humantime::format_duration(self.cfg.after)
                )),
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

    /// Logs `text` when it differs from the last decision logged (the time of a busy-now signal moves at each
    /// look; its kind does not).
    fn say(&mut self, text: String) {
        let kind = text.split(" at ").next().unwrap_or("").to_string();
        if kind != self.last_said {
            tracing::info!("{text}");
            self.last_said = kind;
        }
    }

    /// Instance id, region and role from the metadata service; clears a stale idle-suspended tag once found.
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
                match self.client().await {
                    Ok((client, instance)) => match client.clear_idle_suspended(&instance).await {
                        Ok(()) => tracing::info!(
                            tag = cloudcode_alicloud::TAG_IDLE_SUSPENDED,
                            "running: the idle-suspended tag is cleared"
                        ),
                        Err(e) => tracing::warn!("cannot clear the idle-suspended tag: {e}"),
                    },
                    Err(e) => tracing::warn!("cannot clear the idle-suspended tag: {e}"),
                }
            }
            Err(e) => self.say(format!(
                "cannot suspend yet: the instance metadata service at {} did not answer ({e}); idle suspend needs an ECS instance with its RAM role",
                self.cfg.metadata_url
            )),
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
        if stale {
            self.credentials = Some(self.metadata.role_credentials(&id.role).await?);
        }
        let creds = self.credentials.as_ref().expect("just set");
        let mut config = ClientConfig::new(id.region.clone(), creds.credentials.clone());
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
                self.say(format!("idle but cannot suspend: {e}"));
                return false;
            }
        };
        tracing::info!(
            instance = %instance,
            "idle since {} (last: {}), limit {}: suspending (StopInstance, StopCharging)",
            rfc3339(since.at),
            since.signal,
            humantime::format_duration(self.cfg.after)
        );
        match client.suspend_for_idleness(&instance, &rfc3339(now)).await {
            Ok(()) => {
                tracing::info!(instance = %instance, "StopInstance accepted: the instance stops now");
                self.last_said = "suspended".into();
                true
            }
            Err(e) => {
                tracing::error!(instance = %instance, "suspend failed, tried again at the next look: {e}");
                false
            }
        }
    }
}
