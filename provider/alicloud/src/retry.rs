//! Retry policy: which failures are transient, and the bounded exponential backoff between tries.

use std::time::Duration;

use crate::error::Error;

/// Bounded exponential backoff. Tests shrink the delays; the provider uses the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub base_delay: Duration,
    /// Upper bound of any single delay.
    pub max_delay: Duration,
    /// Randomise each delay within [delay/2, delay] so throttled clients spread out.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// A policy with tiny delays and no jitter (for tests against the local double).
    pub fn fast(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            jitter: false,
        }
    }

    /// Delay after failed attempt number `attempt` (1-based), before the next one.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        if self.jitter && !full.is_zero() {
            let half = full / 2;
            let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
            half + Duration::from_micros(rand::random_range(0..=spread))
        } else {
            full
        }
    }
}

/// Whether an API error code / HTTP status is worth retrying.
pub fn is_retryable_code(code: &str, status: u16) -> bool {
    code.starts_with("Throttling")
        || code == "IncorrectInstanceStatus"
        || code == "IncorrectDiskStatus"
        || code.starts_with("IncorrectDiskStatus.")
        || code == "ServiceUnavailable"
        || status >= 500
}

/// Whether `err` is transient (see [`is_retryable_code`]; also 5xx and connection failures).
pub fn is_retryable(err: &Error) -> bool {
    match err {
        Error::Api { code, status, .. } => is_retryable_code(code, *status),
        Error::Http { status, .. } => *status >= 500 || *status == 429,
        Error::Transport { source, .. } => source.is_connect() || source.is_timeout(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_family_and_status_errors_are_retryable() {
        for code in [
            "Throttling",
            "Throttling.User",
            "Throttling.Api",
            "IncorrectInstanceStatus",
            "IncorrectDiskStatus",
            "IncorrectDiskStatus.Initializing",
        ] {
            assert!(is_retryable_code(code, 400), "{code}");
        }
        assert!(is_retryable_code("InternalError", 500));
        assert!(is_retryable_code("UnknownError", 503));
    }

    #[test]
    fn client_errors_are_not_retried() {
        for code in [
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId.NotFound",
            "SnapshotCreatedImage",
            "InvalidDiskId.NotFound",
            "IncorrectInstanceStatusX",
        ] {
            assert!(!is_retryable_code(code, 400), "{code}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            jitter: false,
        };
        let delays: Vec<u128> = (1..=6).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(u32::MAX).as_millis(), 1000);
    }

    #[test]
    fn jittered_delay_stays_within_half_to_full() {
        let p = RetryPolicy {
            jitter: true,
            ..RetryPolicy::default()
        };
        for attempt in 1..8 {
            let unjittered = RetryPolicy {
                jitter: false,
                ..p.clone()
            }
            .delay(attempt);
            let d = p.delay(attempt);
            assert!(d >= unjittered / 2 && d <= unjittered, "{attempt}: {d:?}");
        }
    }
}
