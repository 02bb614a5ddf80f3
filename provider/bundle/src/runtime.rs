//! What cloudcode keeps on a host beside the rendered files: which devbox colour (blue/green) serves, in the
//! run-time Caddy file `caddy/devbox.caddy`, and the Compose command line that sees both colours.

use minijinja::context;

use crate::render::{environment, render_one, RenderError};

/// The run-time Caddy file naming the active devbox (imported by the Caddyfile; not in the bundle's files).
pub const DEVBOX_CADDY: &str = "caddy/devbox.caddy";
/// The two Compose services of the devbox, defined once; one serves while the other is started beside it.
pub const DEVBOX_COLOURS: [&str; 2] = ["devbox_blue", "devbox_green"];
/// The devbox service of hosts deployed before blue/green (one service recreated in place).
pub const LEGACY_DEVBOX: &str = "devbox";
/// Compose profiles of the two colours: set on every Compose command cloudcode runs, so both are in the model
/// (a plain `docker compose up` by hand starts neither and so never runs two devboxes on the same volumes).
pub const COMPOSE_PROFILES: &str = "blue,green";
/// Shell that sets `$devbox` to the active devbox service in the stack's directory (the legacy name when no
/// colour was ever chosen).
pub const ACTIVE_DEVBOX_SH: &str =
    "devbox=$(sed -n 's/^# active: //p' caddy/devbox.caddy 2>/dev/null); devbox=${devbox:-devbox}";

/// The colour to start beside `active` (blue for a host without one).
pub fn next_colour(active: Option<&str>) -> &'static str {
    if active == Some(DEVBOX_COLOURS[0]) {
        DEVBOX_COLOURS[1]
    } else {
        DEVBOX_COLOURS[0]
    }
}

/// Is `service` one of the devbox's Compose services (a colour or the legacy name)?
pub fn is_devbox(service: &str) -> bool {
    service == LEGACY_DEVBOX || DEVBOX_COLOURS.contains(&service)
}

/// The active service a `caddy/devbox.caddy` names.
pub fn active_in(devbox_caddy: &str) -> Option<&str> {
    devbox_caddy
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# active: "))
        .map(str::trim)
        .filter(|s| is_devbox(s))
}

/// `caddy/devbox.caddy` sending the devbox routes to `service`.
pub fn devbox_caddy(service: &str) -> Result<String, RenderError> {
    if !is_devbox(service) {
        return Err(RenderError::Template {
            file: DEVBOX_CADDY,
            message: format!("{service:?} is not a devbox service"),
        });
    }
    let ctx = context! { service };
    let bytes = render_one(environment()?, DEVBOX_CADDY, &ctx)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A service named on a [`compose_command`] line: `devbox` is whichever colour serves (`$devbox`).
pub fn service_arg(s: &str) -> &str {
    if s == LEGACY_DEVBOX {
        "\"$devbox\""
    } else {
        s
    }
}

/// Quotes a string for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `docker compose <args>` in the stack's directory `dir`, seeing both devbox colours, with `$devbox` set to the
/// active one (see [`ACTIVE_DEVBOX_SH`]) for `args` to use.
pub fn compose_command(dir: &str, args: &str) -> String {
    format!(
        "cd {} && {ACTIVE_DEVBOX_SH} && COMPOSE_PROFILES={COMPOSE_PROFILES} docker compose -f docker-compose.yml {args}",
        sh_quote(dir)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_its_service_and_reads_back() {
        for s in DEVBOX_COLOURS.iter().chain([&LEGACY_DEVBOX]) {
            let text = devbox_caddy(s).unwrap();
            assert_eq!(active_in(&text), Some(*s));
            assert!(
                text.contains(&format!("reverse_proxy {s}:{{args[0]}}")),
                "{text}"
            );
        }
        assert!(devbox_caddy("caddy").is_err());
        assert_eq!(active_in("# active: caddy\n"), None);
        assert_eq!(active_in(""), None);
        assert_eq!(service_arg("devbox"), "\"$devbox\"");
        assert_eq!(service_arg("caddy"), "caddy");
    }

    #[test]
    fn colours_alternate_and_a_legacy_or_fresh_host_starts_blue() {
        assert_eq!(next_colour(None), "devbox_blue");
        assert_eq!(next_colour(Some("devbox")), "devbox_blue");
        assert_eq!(next_colour(Some("devbox_blue")), "devbox_green");
        assert_eq!(next_colour(Some("devbox_green")), "devbox_blue");
    }
}
