//! The recorder's clocks. Records are stamped with the cheapest clock that keeps time across
//! CPUs here ([`Clock::best`]): the x86-64 time-stamp counter where the kernel keeps time with
//! it, else `CLOCK_MONOTONIC` (read through the vDSO, no system call). Readers convert record
//! stamps to monotonic nanoseconds with a [`Calibration`], and monotonic to Unix time with a
//! [`ClockPair`] taken when the file was created.
//!
//! Why the counter: the vDSO's `clock_gettime` orders its counter read (`rdtscp` or
//! `lfence; rdtsc`), which waits for every instruction before it to finish; on the machines
//! measured it cost more wall time per event than everything else devtrace does on the event
//! (docs/PERFORMANCE.md). A plain `rdtsc` overlaps with the interpreter's work around it.

use std::sync::OnceLock;

/// Monotonic nanoseconds (`CLOCK_MONOTONIC`).
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

/// What a recorder file's records are stamped with (kept in its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Clock {
    /// `CLOCK_MONOTONIC` nanoseconds.
    Monotonic = 0,
    /// The time-stamp counter (`rdtsc`, unordered), in ticks of the counter.
    Tsc = 1,
}

impl Clock {
    pub fn from_u32(value: u32) -> Option<Clock> {
        match value {
            0 => Some(Clock::Monotonic),
            1 => Some(Clock::Tsc),
            _ => None,
        }
    }

    /// The time-stamp counter where the kernel itself keeps time with it (its clocksource is
    /// `tsc`: the kernel found it invariant and synchronised across CPUs), else
    /// `CLOCK_MONOTONIC`. Decided once per process. `DEVTRACE_RECORDER_CLOCK=monotonic`
    /// chooses the latter anywhere.
    pub fn best() -> Clock {
        static BEST: OnceLock<Clock> = OnceLock::new();
        *BEST.get_or_init(|| {
            let forced = std::env::var("DEVTRACE_RECORDER_CLOCK").unwrap_or_default();
            if forced == "monotonic" || !cfg!(target_arch = "x86_64") {
                return Clock::Monotonic;
            }
            let source = std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .unwrap_or_default();
            if source.trim() == "tsc" && counter_readable() {
                Clock::Tsc
            } else {
                Clock::Monotonic
            }
        })
    }

    /// A stamp now, in this clock's unit.
    #[inline(always)]
    pub fn now(self) -> u64 {
        match self {
            Clock::Tsc => tsc(),
            Clock::Monotonic => monotonic_ns(),
        }
    }
}

/// Whether this process may read the counter: a process can make `rdtsc` fault
/// (`prctl(PR_SET_TSC, PR_TSC_SIGSEGV)`, as some sandboxes do).
#[cfg(target_os = "linux")]
fn counter_readable() -> bool {
    let mut setting: libc::c_int = 0;
    // SAFETY: PR_GET_TSC writes one int through the pointer we pass.
    let ok = unsafe { libc::prctl(libc::PR_GET_TSC, &mut setting as *mut libc::c_int) } == 0;
    ok && setting == libc::PR_TSC_ENABLE
}

#[cfg(not(target_os = "linux"))]
fn counter_readable() -> bool {
    false
}

/// The time-stamp counter, unordered (x86-64); elsewhere monotonic nanoseconds, which
/// [`Clock::best`] never pairs with [`Clock::Tsc`].
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions (user-mode reads are allowed on Linux).
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        monotonic_ns()
    }
}

/// A clock stamp and the monotonic time it was taken at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickPair {
    pub ticks: u64,
    pub ns: u64,
}

impl TickPair {
    /// A stamp of `clock` and `CLOCK_MONOTONIC` read together: for the counter, the tightest of
    /// a few tries of (counter, monotonic, counter), paired with the counters' midpoint.
    pub fn now(clock: Clock) -> TickPair {
        if clock == Clock::Monotonic {
            let ns = monotonic_ns();
            return TickPair { ticks: ns, ns };
        }
        let mut best = (u64::MAX, TickPair::default());
        for _ in 0..5 {
            let before = tsc();
            let ns = monotonic_ns();
            let after = tsc();
            let spread = after.wrapping_sub(before);
            if spread < best.0 {
                let ticks = before + spread / 2;
                best = (spread, TickPair { ticks, ns });
            }
        }
        best.1
    }
}

/// Converts a file's stamps to monotonic nanoseconds: the identity for [`Clock::Monotonic`];
/// for the counter, the line through two [`TickPair`]s (the counter's rate is constant where
/// [`Clock::best`] chooses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    clock: Clock,
    base: TickPair,
    /// How far apart the two pairs were (ns): the longer, the more exact the rate.
    span_ns: u64,
    /// Nanoseconds per tick, as a fixed-point number with [`Calibration::SHIFT`] fraction bits.
    scale: u128,
}

impl Calibration {
    const SHIFT: u32 = 40;

    /// The identity: stamps are monotonic nanoseconds already.
    pub fn identity() -> Calibration {
        Calibration {
            clock: Clock::Monotonic,
            base: TickPair::default(),
            span_ns: u64::MAX,
            scale: 1 << Self::SHIFT,
        }
    }

    /// The line through `base` and `later` (taken at least a few microseconds apart for a
    /// usable rate; the further apart, the more exact). `None` when they do not make a rate.
    pub fn between(clock: Clock, base: TickPair, later: TickPair) -> Option<Calibration> {
        if clock == Clock::Monotonic {
            return Some(Calibration::identity());
        }
        let ticks = later.ticks.checked_sub(base.ticks).filter(|&t| t > 0)?;
        let ns = later.ns.checked_sub(base.ns).filter(|&n| n > 0)?;
        Some(Calibration {
            clock,
            base,
            span_ns: ns,
            scale: (((ns as u128) << Self::SHIFT) + ticks as u128 / 2) / ticks as u128,
        })
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// How far apart (ns) the pairs it was made from were; `u64::MAX` for the identity.
    pub fn span_ns(&self) -> u64 {
        self.span_ns
    }

    /// Whether stamps are nanoseconds already (the monotonic clock).
    pub fn is_identity(&self) -> bool {
        self.clock == Clock::Monotonic
    }

    /// Monotonic nanoseconds of a stamp (a stamp before the base is extrapolated back, and
    /// never below zero).
    #[inline]
    pub fn to_ns(&self, stamp: u64) -> u64 {
        if self.clock == Clock::Monotonic {
            return stamp;
        }
        let ns = |ticks: u64| {
            ((ticks as u128 * self.scale + (1 << (Self::SHIFT - 1))) >> Self::SHIFT) as u64
        };
        if stamp >= self.base.ticks {
            self.base.ns.saturating_add(ns(stamp - self.base.ticks))
        } else {
            self.base.ns.saturating_sub(ns(self.base.ticks - stamp))
        }
    }
}

/// This boot's identity (`/proc/sys/kernel/random/boot_id` as a number; 0 where unknown): a
/// counter and a monotonic clock read in another boot cannot be compared with this one's.
pub fn boot_id() -> u128 {
    static BOOT: OnceLock<u128> = OnceLock::new();
    *BOOT.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        u128::from_str_radix(&hex, 16).unwrap_or(0)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_leaves_monotonic_stamps_as_they_are() {
        let c = Calibration::identity();
        assert_eq!(c.to_ns(0), 0);
        assert_eq!(c.to_ns(123_456_789), 123_456_789);
        let between = Calibration::between(
            Clock::Monotonic,
            TickPair { ticks: 5, ns: 5 },
            TickPair { ticks: 9, ns: 9 },
        );
        assert_eq!(between, Some(Calibration::identity()));
    }

    #[test]
    fn counter_stamps_convert_along_the_line_through_two_pairs() {
        // 2.5 ticks a nanosecond (a 2.5 GHz counter).
        let base = TickPair {
            ticks: 1_000_000,
            ns: 50_000,
        };
        let later = TickPair {
            ticks: 1_000_000 + 2_500_000_000,
            ns: 50_000 + 1_000_000_000,
        };
        let c = Calibration::between(Clock::Tsc, base, later).unwrap();
        assert_eq!(c.to_ns(base.ticks), base.ns);
        assert_eq!(c.to_ns(later.ticks), later.ns);
        assert_eq!(c.to_ns(base.ticks + 2_500), base.ns + 1_000);
        // Past the later pair (extrapolated), an hour on: within a microsecond.
        let hour = 3_600_000_000_000u64;
        let got = c.to_ns(base.ticks + hour / 2 * 5);
        assert!(got.abs_diff(base.ns + hour) < 1_000, "{got}");
        // Before the base: back along the line, never below zero.
        assert_eq!(c.to_ns(base.ticks - 25_000), base.ns - 10_000);
        assert_eq!(c.to_ns(0), 0);
    }

    #[test]
    fn pairs_that_make_no_rate_make_no_calibration() {
        let p = TickPair { ticks: 10, ns: 10 };
        assert_eq!(Calibration::between(Clock::Tsc, p, p), None);
        let earlier = TickPair { ticks: 5, ns: 20 };
        assert_eq!(Calibration::between(Clock::Tsc, p, earlier), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_whose_counter_reads_fault_is_seen_as_such() {
        // The setting is per thread: set it in a thread of its own, and never read the counter
        // there.
        let readable = std::thread::spawn(|| {
            let before = counter_readable();
            // SAFETY: PR_SET_TSC takes the new setting as its argument.
            let set = unsafe { libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV) };
            (before, set, counter_readable())
        })
        .join()
        .unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(readable, (true, 0, false));
        }
    }

    #[test]
    fn the_best_clock_read_twice_measures_a_sleep() {
        let clock = Clock::best();
        let base = TickPair::now(clock);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = TickPair::now(clock);
        let c = Calibration::between(clock, base, later).unwrap();
        let (a, b) = (clock.now(), monotonic_ns());
        // A stamp taken now converts to about now (the line's error over 20 ms of calibration
        // and the gap between the two reads: far under a millisecond).
        assert!(c.to_ns(a).abs_diff(b) < 1_000_000, "{} vs {b}", c.to_ns(a));
    }
}
