//! Parsing and printing durations and timestamps (UTC, no time-zone database needed).

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

/// Parses `--since`: a duration back from now ("2h"), or an RFC 3339 UTC time.
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
}

impl When {
    /// A duration back from now ("30m", "2h", "7d") or an RFC 3339 time; also the clap value
    /// parser of every such flag.
    pub fn parse(text: &str) -> Result<Self, String> {
        let moment = match parse_duration(text) {
            Ok(ago) => Moment::Ago(ago),
            Err(_) => Moment::At(parse_rfc3339(text).ok_or_else(|| {
                format!(
                    "{} is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z",
                    quote(text)
                )
            })?),
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

/// "2026-11-21 13:45:02" (UTC).
pub fn format_timestamp(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let (year, month, day) = civil_from_days((secs / 86400) as i64);
    let rem = secs % 86400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

use devtrace_model::time::{civil_from_days, parse_rfc3339};

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
