//! Parsing and printing durations and timestamps. Times print in UTC unless the process chose
//! the local time zone ([`use_local_time`]: the CLI, unless `--utc`), which the C library reads
//! from `TZ` and `/etc/localtime` (`localtime_r`); JSON always carries RFC 3339 UTC.

use devtrace_model::recorded::quote;
use std::time::{SystemTime, UNIX_EPOCH};

const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
    ("d", 86400e9),
];

/// Parses "250ms", "1.5s", "2m", "3h", "7d", "500us", "10ns" into nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!(
            "{} is not a duration: write a number and a unit, like 250ms, 1.5s, 2m, 3h or 7d",
            quote(text)
        )
    })?;
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim())
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            format!(
                "{} has an unknown unit {}: use ns, us, ms, s, m, h or d",
                quote(text),
                quote(unit)
            )
        })?;
    Ok((value * scale).round() as u64)
}

/// clap value parser for duration flags.
pub fn parse_duration_arg(text: &str) -> Result<u64, String> {
    parse_duration(text)
}

/// Parses `--since`: a duration back from now ("2h"), or an RFC 3339 time (without an offset, a
/// wall-clock time in the zone times print in).
pub fn parse_since(text: &str, now_nanos: u64) -> Result<u64, String> {
    When::parse(text).map(|when| when.unix_nanos(now_nanos))
}

/// A point in time as a command line gives it (`--since 2h`, `--before 2026-10-01T00:00:00Z`):
/// checked when the arguments are parsed, so a mistake is a usage error before anything runs,
/// and resolved against the clock only when the command needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct When {
    text: String,
    moment: Moment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// This many nanoseconds before now.
    Ago(u64),
    /// Nanoseconds since the Unix epoch.
    At(u64),
    /// A wall-clock time written without an offset ("2026-11-21T09:00:00"), as nanoseconds
    /// since the epoch read as if it were UTC: placed in the zone times print in once the
    /// command knows which ([`use_local_time`] runs after the arguments are parsed).
    WallClock(u64),
}

impl When {
    /// A duration back from now ("30m", "2h", "7d") or an RFC 3339 time; also the clap value
    /// parser of every such flag.
    pub fn parse(text: &str) -> Result<Self, String> {
        let moment = match parse_duration(text) {
            Ok(ago) => Moment::Ago(ago),
            Err(_) => match (
                parse_rfc3339(text),
                parse_rfc3339(&format!("{}Z", text.trim())),
            ) {
                (Some(at), _) => Moment::At(at),
                (None, Some(wall)) => Moment::WallClock(wall),
                (None, None) => {
                    return Err(format!(
                        "{} is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z",
                        quote(text)
                    ));
                }
            },
        };
        Ok(Self {
            text: text.to_owned(),
            moment,
        })
    }

    /// Nanoseconds since the Unix epoch, an age counted back from `now_nanos`.
    pub fn unix_nanos(&self, now_nanos: u64) -> u64 {
        match self.moment {
            Moment::Ago(ago) => now_nanos.saturating_sub(ago),
            Moment::At(at) => at,
            Moment::WallClock(wall) => zone::wall_clock_to_utc(wall),
        }
    }

    /// The text as given ("2h"), for headings and JSON that echo the request.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for When {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// "1.23 s", "45.6 ms", "789 µs", "12 ns": one format for the CLI and finding titles.
pub use devtrace_analyze::finding::human_duration as format_duration;

/// Whether this process prints times in the local time zone; UTC until a face chooses
/// otherwise. The CLI chooses local (unless `--utc`); the server's faces and the MCP tools
/// keep UTC, since whoever reads them may be anywhere.
static LOCAL_TIME: AtomicBool = AtomicBool::new(false);

/// Print times in the local time zone (`TZ`, else `/etc/localtime`) from now on, or in UTC.
/// Process-wide, like the environment it reads; set once at start.
pub fn use_local_time(local: bool) {
    LOCAL_TIME.store(local, Ordering::Relaxed);
}

/// "2026-11-21 13:45:02": the wall-clock time where times print ([`use_local_time`]), followed
/// by its zone ("2026-07-01 10:00:00 EDT") only when that differs from the zone in effect now,
/// which headings name once ([`zone_name`]).
pub fn format_timestamp(nanos: u64) -> String {
    let time = zone::civil(nanos);
    if time.zone == zone::civil(now_nanos()).zone {
        time.text
    } else {
        format!("{} {}", time.text, time.zone)
    }
}

/// "2026-11-21 13:45:02 IST": a time standing alone in a sentence, with its zone.
pub fn format_timestamp_zoned(nanos: u64) -> String {
    let time = zone::civil(nanos);
    format!("{} {}", time.text, time.zone)
}

/// "13:45:02": the time of day where times print (a live view's clock; the zone is
/// [`zone_name`]).
pub fn format_clock(nanos: u64) -> String {
    zone::civil(nanos).text[11..].to_owned()
}

/// "2026-11-21": the calendar day of a time where times print.
pub fn format_day(nanos: u64) -> String {
    zone::civil(nanos).text[..10].to_owned()
}

/// The zone times print in now, as a heading names it: "UTC", "IST", "EST", "+04".
pub fn zone_name() -> String {
    zone::civil(now_nanos()).zone
}

/// Wall-clock times in UTC or, when chosen, the local zone through the C library.
mod zone {
    use super::{LOCAL_TIME, Ordering};
    use devtrace_model::time::civil_from_days;

    /// A time as a clock on the wall shows it: "2026-11-21 13:45:02", and the zone's name.
    pub struct Civil {
        pub text: String,
        pub zone: String,
    }

    pub fn civil(nanos: u64) -> Civil {
        let secs = (nanos / 1_000_000_000) as i64;
        if LOCAL_TIME.load(Ordering::Relaxed)
            && let Some(local) = local(secs)
        {
            return local;
        }
        Civil {
            text: wall_text(secs),
            zone: "UTC".to_owned(),
        }
    }

    /// `secs` since the epoch read as a UTC wall clock: "2026-11-21 13:45:02".
    fn wall_text(secs: i64) -> String {
        let (year, month, day) = civil_from_days(secs.div_euclid(86400));
        let rem = secs.rem_euclid(86400);
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    #[cfg(unix)]
    fn local(secs: i64) -> Option<Civil> {
        let t = libc::time_t::try_from(secs).ok()?;
        // SAFETY: `tm` is plain data the C library fills in; localtime_r is the re-entrant form,
        // and tm_zone points into the C library's static zone names, read before returning.
        let tm = unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&t, &mut tm).is_null() {
                return None;
            }
            tm
        };
        let offset = tm.tm_gmtoff as i64;
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated name owned by the C library (see above).
            unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
                .to_string_lossy()
                .into_owned()
        };
        Some(Civil {
            text: wall_text(secs + offset),
            zone: if zone.is_empty() {
                offset_name(offset)
            } else {
                zone
            },
        })
    }

    #[cfg(not(unix))]
    fn local(_secs: i64) -> Option<Civil> {
        None
    }

    /// "+05:30" for a zone the C library gives no name.
    fn offset_name(offset: i64) -> String {
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.abs() / 60;
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }

    /// A wall-clock time given without an offset (as nanoseconds read as if UTC) → the
    /// instant it names where times print: UTC as is; local through the zone's offset at
    /// that time (near a change of offset, the offset in effect an offset earlier).
    pub fn wall_clock_to_utc(wall: u64) -> u64 {
        if !LOCAL_TIME.load(Ordering::Relaxed) {
            return wall;
        }
        let offset_at = |nanos: u64| -> i64 {
            let secs = (nanos / 1_000_000_000) as i64;
            local(secs).map_or(0, |l| {
                let (date, time) = l.text.split_once(' ').unwrap_or_default();
                let wall = devtrace_model::time::parse_rfc3339(&format!("{date}T{time}Z"))
                    .map_or(secs, |n| (n / 1_000_000_000) as i64);
                wall - secs
            })
        };
        let guess = wall.saturating_add_signed(-offset_at(wall) * 1_000_000_000);
        wall.saturating_add_signed(-offset_at(guess) * 1_000_000_000)
    }
}

use devtrace_model::time::parse_rfc3339;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_explain_mistakes() {
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000_000_000));
        assert!(parse_duration("fast").unwrap_err().contains("250ms"));
        assert!(
            parse_duration("3 fortnights")
                .unwrap_err()
                .contains("unknown unit")
        );
    }

    #[test]
    fn timestamps_round_trip_through_the_calendar() {
        let t = parse_rfc3339("2026-11-21T13:45:02.5Z").unwrap();
        assert_eq!(format_timestamp(t), "2026-11-21 13:45:02");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            format_timestamp(951_782_400_000_000_000),
            "2000-02-29 00:00:00"
        );
        assert_eq!(parse_since("1h", 7_200_000_000_000), Ok(3_600_000_000_000));
        assert!(parse_since("yesterday", 0).is_err());
        let when = When::parse("2026-11-21T13:45:02Z").unwrap();
        assert_eq!(when.unix_nanos(0), when.unix_nanos(u64::MAX));
        assert_eq!(When::parse("2h").unwrap().unix_nanos(7_200_000_000_000), 0);
        assert_eq!(When::parse("2h").unwrap().as_str(), "2h");
        // Without an offset, a wall-clock time where times print: UTC unless a face chose
        // local time (the CLI's tests cover local zones, TZ being per process).
        assert_eq!(
            When::parse("2026-11-21T09:00:00").unwrap().unix_nanos(0),
            parse_rfc3339("2026-11-21T09:00:00Z").unwrap()
        );
        assert_eq!(format_timestamp_zoned(t), "2026-11-21 13:45:02 UTC");
        assert_eq!(zone_name(), "UTC");
    }

    #[test]
    fn durations_print_in_a_readable_unit() {
        assert_eq!(format_duration(12), "12 ns");
        assert_eq!(format_duration(3_100_000), "3.1 ms");
        assert_eq!(format_duration(15_600_000_000), "15.60 s");
        assert_eq!(format_duration(570_000_000_000), "9.5 min");
        assert_eq!(format_duration(3_599_000_000_000), "1 h 0 min");
        assert_eq!(format_duration(7_500_000_000_000), "2 h 5 min");
        // A session left open for days: 6307.1 min.
        assert_eq!(format_duration(378_426_000_000_000), "4 d 9 h");
        assert_eq!(format_duration(86_399_000_000_000), "1 d 0 h");
    }
}
