//! The blue/green devbox on a host: which colour serves, whether a deploy keeps it, starts the first one or
//! switches to the other colour (`scripts/devbox.sh`, one round trip), and which containers are left over after.

use std::time::Duration;

use cloudcode_bundle::runtime::{self, DEVBOX_COLOURS};
use cloudcode_bundle::{OPENCODE_PORT, TTYD_PORT};
use cloudcode_ssh::Remote;

use super::host::{sh_quote, step, Facts, HostError, LOG_LINES};

const SWITCH: &str = include_str!("scripts/devbox.sh");
/// How long the old devbox may keep connections after the switch before it is stopped (Kamal's default drain).
const DRAIN: Duration = Duration::from_secs(30);

/// What a deploy does with the devbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevboxPlan {
    /// The serving colour already runs this configuration and image: Compose never touches it.
    Keep { service: String },
    /// Nothing serves (a fresh host, or the serving container stopped): start `service` with the others.
    Start { service: String },
    /// Start `new` beside the serving container `old_id` (`old` names its service), switch Caddy, drain, remove.
    Switch {
        old: String,
        old_id: String,
        new: &'static str,
    },
}

impl DevboxPlan {
    /// Decides from the host's facts, the devbox label the bundle wants and the id of the image it names.
    pub fn decide(facts: &Facts, want_label: &str, want_image: Option<&str>) -> DevboxPlan {
        let serving = facts.serving_devbox();
        match serving {
            Some((name, c)) if c.state == "running" => {
                let current = DEVBOX_COLOURS.contains(&name)
                    && c.label == want_label
                    && want_image.is_none_or(|id| c.image == id);
                if current {
                    DevboxPlan::Keep {
                        service: name.to_string(),
                    }
                } else {
                    DevboxPlan::Switch {
                        old: name.to_string(),
                        old_id: c.id.clone(),
                        new: runtime::next_colour(Some(name)),
                    }
                }
            }
            // A stopped colour is started again in place (nothing serves to switch from); a legacy one is replaced.
            Some((name, _)) if DEVBOX_COLOURS.contains(&name) => DevboxPlan::Start {
                service: name.to_string(),
            },
            _ => DevboxPlan::Start {
                service: runtime::next_colour(None).to_string(),
            },
        }
    }

    /// The service `caddy/devbox.caddy` must name before Compose runs (the switch rewrites it afterwards).
    pub fn serving(&self) -> &str {
        match self {
            DevboxPlan::Keep { service } | DevboxPlan::Start { service } => service,
            DevboxPlan::Switch { old, .. } => old,
        }
    }

    /// The colour that serves once the deploy is done.
    pub fn target(&self) -> &str {
        match self {
            DevboxPlan::Keep { service } | DevboxPlan::Start { service } => service,
            DevboxPlan::Switch { new, .. } => new,
        }
    }
}

/// Everything [`switch`] needs beyond the plan.
pub struct SwitchParams<'a> {
    pub dir: &'a str,
    pub build: bool,
    pub terminal: bool,
    /// For the new colour to become healthy, and for OpenCode's busy sessions to end.
    pub timeout: Duration,
}

/// Runs the switch on the host. On failure the old devbox still serves and the new one is removed.
pub async fn switch(
    r: &dyn Remote,
    old_id: &str,
    new: &str,
    p: &SwitchParams<'_>,
) -> Result<String, HostError> {
    let text = runtime::devbox_caddy(new).map_err(|e| step(r.host(), "switching the devbox", e))?;
    let args = [
        p.dir.to_string(),
        old_id.to_string(),
        new.to_string(),
        u8::from(p.build).to_string(),
        OPENCODE_PORT.to_string(),
        if p.terminal { TTYD_PORT } else { 0 }.to_string(),
        p.timeout.as_secs().max(1).to_string(),
        p.timeout.as_secs().max(1).to_string(),
        DRAIN.as_secs().to_string(),
        text,
    ];
    let quoted: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    tracing::info!(host = %r.host(), old = old_id, new, "switching the devbox");
    let out = r
        .exec(
            &format!("sh -s -- {}", quoted.join(" ")),
            Some(SWITCH.as_bytes()),
        )
        .await
        .map_err(|e| step(r.host(), "switching the devbox", e))?;
    let stdout = out.stdout_lossy();
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
    };
    if let Some(id) = field("switched\t").filter(|_| out.success()) {
        // Seconds since the switch began at the end of each step, e.g. "created=1 healthy=4 … stopped=9".
        let steps = field("steps\t").unwrap_or_default();
        tracing::info!(host = %r.host(), new, steps = %steps, "devbox switched");
        return Ok(id);
    }
    let why = field("failed\t")
        .unwrap_or_else(|| format!("the switch script failed ({})", out.status_text()));
    let logs = String::from_utf8_lossy(&out.stderr);
    let logs = logs.trim_end();
    let detail = if logs.is_empty() {
        why
    } else {
        format!("{why}\n--- last {LOG_LINES} log lines of {new}:\n{logs}")
    };
    Err(step(r.host(), "switching the devbox", detail))
}

/// Containers of the project no service of this deploy owns: the other devbox colour (a switch interrupted
/// before its end), the legacy devbox, a removed chat bridge. Only called once the serving devbox is healthy.
pub fn leftovers<'f>(
    facts: &'f Facts,
    services: &[&str],
    serving: &str,
) -> Vec<(&'f str, &'f str)> {
    facts
        .containers
        .iter()
        .filter(|(name, _)| {
            let wanted = if runtime::is_devbox(name) {
                name.as_str() == serving
            } else {
                services.contains(&name.as_str())
            };
            !wanted
        })
        .map(|(name, c)| (name.as_str(), c.id.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::stack::host::Service;

    fn facts(active: Option<&str>, containers: &[(&str, &str, &str, &str)]) -> Facts {
        let mut f = Facts {
            active_devbox: active.map(str::to_string),
            ..Default::default()
        };
        for (name, state, image, label) in containers {
            f.containers.insert(
                name.to_string(),
                Service {
                    state: state.to_string(),
                    health: String::new(),
                    id: format!("id-{name}"),
                    image: image.to_string(),
                    label: label.to_string(),
                },
            );
        }
        f
    }

    #[test]
    fn a_fresh_host_starts_blue() {
        assert_eq!(
            DevboxPlan::decide(&facts(None, &[]), "L", None),
            DevboxPlan::Start {
                service: "devbox_blue".into()
            }
        );
    }

    #[test]
    fn the_serving_colour_is_kept_when_label_and_image_match() {
        let f = facts(
            Some("devbox_green"),
            &[("devbox_green", "running", "sha:1", "L")],
        );
        assert_eq!(
            DevboxPlan::decide(&f, "L", Some("sha:1")),
            DevboxPlan::Keep {
                service: "devbox_green".into()
            }
        );
    }

    #[test]
    fn a_new_label_or_image_switches_to_the_other_colour() {
        let f = facts(
            Some("devbox_green"),
            &[("devbox_green", "running", "sha:1", "L")],
        );
        let switch = DevboxPlan::Switch {
            old: "devbox_green".into(),
            old_id: "id-devbox_green".into(),
            new: "devbox_blue",
        };
        assert_eq!(DevboxPlan::decide(&f, "M", Some("sha:1")), switch);
        assert_eq!(DevboxPlan::decide(&f, "L", Some("sha:2")), switch);
    }

    #[test]
    fn a_legacy_devbox_is_replaced_by_blue_even_when_unchanged() {
        let f = facts(None, &[("devbox", "running", "sha:1", "L")]);
        assert_eq!(
            DevboxPlan::decide(&f, "L", Some("sha:1")),
            DevboxPlan::Switch {
                old: "devbox".into(),
                old_id: "id-devbox".into(),
                new: "devbox_blue"
            }
        );
    }

    #[test]
    fn a_stopped_colour_is_started_in_place() {
        let f = facts(
            Some("devbox_blue"),
            &[("devbox_blue", "exited", "sha:1", "L")],
        );
        assert_eq!(
            DevboxPlan::decide(&f, "L", Some("sha:1")),
            DevboxPlan::Start {
                service: "devbox_blue".into()
            }
        );
    }

    #[test]
    fn leftovers_are_the_other_colour_the_legacy_devbox_and_removed_services() {
        let f = facts(
            Some("devbox_green"),
            &[
                ("caddy", "running", "", ""),
                ("devbox", "running", "", ""),
                ("devbox_blue", "running", "", ""),
                ("devbox_green", "running", "", ""),
                ("im", "running", "", ""),
            ],
        );
        let gone = leftovers(&f, &["caddy", "authelia", "devbox"], "devbox_green");
        assert_eq!(
            gone,
            [
                ("devbox", "id-devbox"),
                ("devbox_blue", "id-devbox_blue"),
                ("im", "id-im")
            ]
        );
    }
}
