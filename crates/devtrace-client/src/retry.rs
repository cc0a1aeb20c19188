//! When a failed request is tried again, and after how long. Only what is safe to repeat is
//! repeated: a GET (it changes nothing), and an OTLP export, whose spans the server stores
//! once however often they arrive, on the statuses the OTLP specification names as
//! retryable (429, 502, 503, 504), waiting as long as `Retry-After` asks. Anything else that
//! is sent (a session document, a QA job) is sent once.

use std::time::Duration;

/// How often to try and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included; 1 never retries.
    pub attempts: u32,
    /// The wait before the second try; each later wait doubles it.
    pub first_backoff: Duration,
    /// The longest wait, whatever `Retry-After` asks.
    pub longest_wait: Duration,
}

impl RetryPolicy {
    /// Sent once.
    pub const NONE: Self = Self {
        attempts: 1,
        first_backoff: Duration::ZERO,
        longest_wait: Duration::ZERO,
    };
    /// A GET: a server restarting or a proxy in front of it hiccuping is ridden out briefly.
    pub const IDEMPOTENT: Self = Self {
        attempts: 3,
        first_backoff: Duration::from_millis(250),
        longest_wait: Duration::from_secs(5),
    };
    /// An OTLP export: longer, as exporters do, since losing the spans is worse than waiting.
    pub const OTLP_EXPORT: Self = Self {
        attempts: 5,
        first_backoff: Duration::from_millis(500),
        longest_wait: Duration::from_secs(30),
    };

    /// The wait before try `next` (2 for the first retry), or `None` when no try is left.
    /// `retry_after` is what the server asked for.
    pub fn wait_before(&self, next: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if next > self.attempts {
            return None;
        }
        let backoff = self
            .first_backoff
            .saturating_mul(1 << next.saturating_sub(2).min(16));
        Some(retry_after.unwrap_or(backoff).min(self.longest_wait))
    }
}

/// The statuses a retry may cure: too many requests, and a gateway or server that is
/// briefly unavailable.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the form devtrace and collectors send); an HTTP date or
/// anything else is ignored, and the backoff applies.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_retry_after_wins_up_to_the_longest_wait() {
        let policy = RetryPolicy::OTLP_EXPORT;
        let ms = Duration::from_millis;
        assert_eq!(policy.wait_before(2, None), Some(ms(500)));
        assert_eq!(policy.wait_before(3, None), Some(ms(1000)));
        assert_eq!(policy.wait_before(5, None), Some(ms(4000)));
        assert_eq!(policy.wait_before(6, None), None);
        assert_eq!(
            policy.wait_before(2, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.wait_before(2, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(RetryPolicy::NONE.wait_before(2, None), None);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert!(is_retryable_status(503) && !is_retryable_status(500));
    }
}
