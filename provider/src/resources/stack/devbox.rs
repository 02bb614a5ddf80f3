//! The blue/green devbox on a host: which colour serves and whether a deploy keeps it, starts the first one or
//! switches to the other colour (done on the host by `scripts/devbox.sh`, run from `scripts/apply.sh`).

use cloudcode_bundle::runtime::{self, DEVBOX_COLOURS};

use super::host::Facts;

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
}
