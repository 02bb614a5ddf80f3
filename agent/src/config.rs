//! The idle agent's validated settings: the limit, how often to look, where each signal and API answers.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the idle agent needs.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Idle this long → suspend.
    pub after: Duration,
    /// Time between two looks: a quarter of the limit, at most a minute.
    pub every: Duration,
    /// Caddy's JSON access log.
    pub caddy_log: PathBuf,
    /// OpenCode's server on the devbox (`http://devbox:4096`).
    pub opencode_url: String,
    /// The host's utmp (current logins), mounted read-only.
    pub utmp: PathBuf,
    /// The chat bridge's data directory, when the bridge is deployed.
    pub im_data: Option<PathBuf>,
    /// The instance metadata service.
    pub metadata_url: String,
    /// ECS endpoint override (host name or URL); default `ecs.<region>.aliyuncs.com`.
    pub ecs_endpoint: Option<String>,
}

impl IdleConfig {
    pub fn every_for(after: Duration) -> Duration {
        (after / 4).min(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_looks_four_times_per_limit_and_at_least_every_minute() {
        assert_eq!(
            IdleConfig::every_for(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(
            IdleConfig::every_for(Duration::from_secs(7200)),
            Duration::from_secs(60)
        );
    }
}
