//! The recorder's clock: `CLOCK_MONOTONIC` in nanoseconds (read through the vDSO, no system
//! call), converted to Unix time with a pair of readings taken when the file was created.

/// Monotonic nanoseconds (`CLOCK_MONOTONIC`), the timestamp of every record.
#[inline(always)]
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Unix time in nanoseconds (`CLOCK_REALTIME`).
pub fn unix_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

#[inline(always)]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass; both clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Converts monotonic timestamps to Unix time with one pair of readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockPair {
    pub monotonic_ns: u64,
    pub unix_ns: u64,
}

impl ClockPair {
    pub fn now() -> Self {
        ClockPair {
            monotonic_ns: monotonic_ns(),
            unix_ns: unix_ns(),
        }
    }

    pub fn to_unix(self, monotonic: u64) -> u64 {
        (self.unix_ns as i128 + monotonic as i128 - self.monotonic_ns as i128).max(0) as u64
    }
}
