//! From a stack's state and the provider's configuration to an SSH session: credentials, host-key policy
//! (pinned or recorded on first use), jump host, and the time limits of each phase.

use std::time::Duration;

use cloudcode_ssh::{
    AgentMode, ConnectOptions, Credentials, Endpoint, HostKeyPolicy, Session, SshError,
};
use cloudcode_tfplugin::framework::Ctx;

use super::state::StackState;
use crate::provider::ProviderConfig;

/// What the connection is for; each phase has its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Create,
    Update,
    /// Drift check during plan, and import.
    Read,
    Delete,
}

fn limit(v: Option<&String>, default: Duration) -> Duration {
    v.and_then(|s| humantime::parse_duration(s).ok())
        .unwrap_or(default)
}

/// The overall limit of a phase (`timeouts`); also bounds waiting for healthy containers.
pub fn phase_timeout(s: &StackState, phase: Phase) -> Duration {
    let t = s.timeouts.clone().unwrap_or_default();
    match phase {
        Phase::Create => limit(t.create.as_ref(), Duration::from_secs(30 * 60)),
        Phase::Update => limit(t.update.as_ref(), Duration::from_secs(20 * 60)),
        Phase::Delete => limit(t.delete.as_ref(), Duration::from_secs(10 * 60)),
        Phase::Read => Duration::from_secs(60),
    }
}

/// How long to keep retrying the connection: long while a new machine boots, short when a plan or a destroy
/// only needs an answer (an unreachable host fails fast there).
fn connect_timeout(s: &StackState, phase: Phase) -> Duration {
    let configured = limit(
        s.timeouts.as_ref().and_then(|t| t.connect.as_ref()),
        Duration::from_secs(5 * 60),
    );
    match phase {
        Phase::Create | Phase::Update => configured,
        Phase::Read | Phase::Delete => configured.min(Duration::from_secs(60)),
    }
}

fn credentials(key_path: Option<&str>, agent: bool, p: &ProviderConfig) -> Credentials {
    let mut c = match (key_path, p.ssh_private_key.as_deref()) {
        (Some(path), _) => Credentials::key_file(expand_home(path)),
        (None, Some(key)) => Credentials::key_inline(key),
        // No key at all (import, or agent-only stacks): the agent is the only way in.
        (None, None) => Credentials::agent(AgentMode::Env),
    };
    if agent {
        c = c.with_agent(AgentMode::Env);
    }
    if let Some(pp) = &p.ssh_private_key_passphrase {
        c = c.with_passphrase(pp.clone());
    }
    c
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

fn port(p: Option<i64>) -> u16 {
    p.and_then(|p| u16::try_from(p).ok()).unwrap_or(22)
}

/// Opens the one session an operation uses.
pub async fn open(
    s: &StackState,
    p: &ProviderConfig,
    phase: Phase,
    ctx: &Ctx,
) -> Result<Session, SshError> {
    let agent = s.ssh_agent.unwrap_or(false);
    let user = s.user.clone().unwrap_or_else(|| "root".to_string());
    let target = Endpoint {
        host: s.host.clone(),
        port: port(s.port),
        user: user.clone(),
        credentials: credentials(s.private_key_path.as_deref(), agent, p),
        host_key: HostKeyPolicy::from_optional(s.host_key.as_deref())?,
    };
    let mut opts = ConnectOptions::new(target);
    if let Some(j) = &s.jump_host {
        opts.jump = Some(Endpoint {
            host: j.host.clone(),
            port: port(j.port),
            user: j.user.clone().unwrap_or(user),
            credentials: credentials(
                j.private_key_path
                    .as_deref()
                    .or(s.private_key_path.as_deref()),
                agent,
                p,
            ),
            host_key: HostKeyPolicy::from_optional(j.host_key.as_deref())?,
        });
    }
    opts.timeout = connect_timeout(s, phase);
    opts.attempt_timeout = opts.timeout.min(Duration::from_secs(20));
    opts.cancel = ctx.cancel.clone();
    tracing::info!(host = %s.host, port = port(s.port), ?phase, "connecting");
    Session::connect(opts).await
}

/// `user@host:port/remote_dir` → the connection part of a state (import).
pub fn parse_import_id(id: &str) -> Option<StackState> {
    let (user, rest) = id.split_once('@')?;
    let slash = rest.find('/')?;
    let (hostport, dir) = rest.split_at(slash);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            (h.trim_matches(['[', ']']), p.parse::<i64>().ok()?)
        }
        _ => (hostport, 22),
    };
    if user.is_empty() || host.is_empty() || dir.len() < 2 {
        return None;
    }
    Some(StackState {
        host: host.to_string(),
        port: Some(port),
        user: Some(user.to_string()),
        remote_dir: Some(dir.to_string()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids_parse_with_and_without_port() {
        let s = parse_import_id("root@47.1.2.3:2222/opt/cloudcode").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_deref()),
            ("47.1.2.3", Some(2222), Some("root"))
        );
        assert_eq!(s.remote_dir.as_deref(), Some("/opt/cloudcode"));
        let s = parse_import_id("ubuntu@box.example.com/srv/cc").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("box.example.com", Some(22)));
        assert!(parse_import_id("47.1.2.3:22/opt/cloudcode").is_none());
        assert!(parse_import_id("root@47.1.2.3:22").is_none());
    }

    #[test]
    fn read_and_delete_fail_fast_while_create_waits_for_boot() {
        let s = StackState::default();
        assert_eq!(connect_timeout(&s, Phase::Create), Duration::from_secs(300));
        assert_eq!(connect_timeout(&s, Phase::Read), Duration::from_secs(60));
        assert_eq!(connect_timeout(&s, Phase::Delete), Duration::from_secs(60));
    }
}
