//! Failed authentication attempts, counted per client address.
//!
//! An address that fails more than `max` times within a window is refused until the window
//! ends, whatever it presents: guessing tokens is slowed to `max` guesses per window, and a
//! misconfigured client stops hammering the store. Kept per node (nothing another node needs).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at most; beyond, windows that ended are forgotten first.
const MAX_ADDRESSES: usize = 50_000;

pub struct FailureLimiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            seen: Mutex::default(),
        }
    }

    /// How long `client` must still wait, when it failed too often in its current window.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let seen = self.seen.lock().expect("limiter poisoned");
        let (start, failures) = seen.get(&client)?;
        let elapsed = start.elapsed();
        (*failures >= self.max && elapsed < self.window).then(|| self.window - elapsed)
    }

    /// Counts a failed attempt by `client`.
    pub fn failed(&self, client: IpAddr) {
        let mut seen = self.seen.lock().expect("limiter poisoned");
        if seen.len() >= MAX_ADDRESSES {
            let window = self.window;
            seen.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = seen.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_too_many_failures_until_its_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_millis(200));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..2 {
            limiter.failed(a);
        }
        assert_eq!(limiter.blocked(a), None, "two failures of three allowed");
        limiter.failed(a);
        assert!(limiter.blocked(a).is_some());
        assert_eq!(limiter.blocked(b), None, "other addresses are not affected");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(limiter.blocked(a), None, "the window ended");
        limiter.failed(a);
        assert_eq!(limiter.blocked(a), None, "a new window starts from zero");
    }
}
