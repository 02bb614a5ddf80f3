//! The idle decision, free of I/O: the newest activity any signal reported against the limit.

use std::time::Duration;

use time::OffsetDateTime;

/// One signal's latest sign of use: when, and which signal saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub signal: String,
    pub at: OffsetDateTime,
}

impl Activity {
    pub fn new(signal: impl Into<String>, at: OffsetDateTime) -> Self {
        Self {
            signal: signal.into(),
            at,
        }
    }
}

/// What the agent concludes at one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Used within the limit; the newest activity and what saw it.
    Active(Activity),
    /// Nobody since `since` for at least the limit: stop the instance.
    Suspend { since: Activity },
}

/// The newest activity seen so far (it never goes back in time), starting from the agent's own start: a box that
/// was just started (or resumed) is given the whole limit.
#[derive(Debug, Clone)]
pub struct Tracker {
    after: Duration,
    newest: Activity,
}

impl Tracker {
    pub fn new(after: Duration, started: OffsetDateTime) -> Self {
        Self {
            after,
            newest: Activity::new("agent start", started),
        }
    }

    /// Takes this look's activities and decides.
    pub fn look(
        &mut self,
        now: OffsetDateTime,
        seen: impl IntoIterator<Item = Activity>,
    ) -> Decision {
        for a in seen {
            // A time in the future (a clock step, a skewed log) counts as now.
            let a = Activity::new(a.signal, a.at.min(now));
            if a.at > self.newest.at {
                self.newest = a;
            }
        }
        let idle = now - self.newest.at;
        if idle >= self.after {
            Decision::Suspend {
                since: self.newest.clone(),
            }
        } else {
            Decision::Active(self.newest.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_box_nobody_uses_is_suspended_once_the_limit_has_passed_since_the_agent_started() {
        let t0 = datetime!(2026-12-04 10:00 UTC);
        let mut t = Tracker::new(2 * HOUR, t0);
        assert_eq!(
            t.look(t0 + time::Duration::minutes(119), []),
            Decision::Active(Activity::new("agent start", t0))
        );
        assert_eq!(
            t.look(t0 + time::Duration::minutes(120), []),
            Decision::Suspend {
                since: Activity::new("agent start", t0)
            }
        );
    }

    #[test]
    fn any_signal_within_the_limit_keeps_it_running_and_older_signals_never_win() {
        let t0 = datetime!(2026-12-04 10:00 UTC);
        let mut t = Tracker::new(HOUR, t0);
        let req = Activity::new("caddy request", t0 + time::Duration::minutes(50));
        t.look(t0 + time::Duration::minutes(55), [req.clone()]);
        // A later look that only sees an older SSH login still counts from the request.
        let old = Activity::new("ssh login", t0 + time::Duration::minutes(10));
        assert_eq!(
            t.look(t0 + time::Duration::minutes(100), [old]),
            Decision::Active(req.clone())
        );
        assert_eq!(
            t.look(t0 + time::Duration::minutes(110), []),
            Decision::Suspend { since: req }
        );
    }

    #[test]
    fn an_activity_stamped_in_the_future_counts_as_now() {
        let t0 = datetime!(2026-12-04 10:00 UTC);
        let mut t = Tracker::new(HOUR, t0);
        let future = Activity::new("caddy request", t0 + time::Duration::days(1));
        let now = t0 + time::Duration::minutes(5);
        assert_eq!(
            t.look(now, [future]),
            Decision::Active(Activity::new("caddy request", now))
        );
        assert!(matches!(
            t.look(now + time::Duration::minutes(61), []),
            Decision::Suspend { .. }
        ));
    }
}
