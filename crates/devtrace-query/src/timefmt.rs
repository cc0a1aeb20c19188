//! Parsing and printing durations and timestamps (UTC, no time-zone database needed).

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
            "{text:?} is not a duration: write a number and a unit, like 250ms, 1.5s, 2m, 3h or 7d"
        )
    })?;
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim())
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            format!("{text:?} has an unknown unit {unit:?}: use ns, us, ms, s, m, h or d")
        })?;
    Ok((value * scale).round() as u64)
}

/// clap value parser for duration flags.
pub fn parse_duration_arg(text: &str) -> Result<u64, String> {
    parse_duration(text)
}

/// Parses `--since`: a duration back from now ("2h"), or an RFC 3339 UTC time.
pub fn parse_since(text: &str, now_nanos: u64) -> Result<u64, String> {
    if let Ok(ago) = parse_duration(text) {
        return Ok(now_nanos.saturating_sub(ago));
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!("{text:?} is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z")
    })
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

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "2026-11-21T09:00:00Z", with optional fraction; UTC ("Z" or "+00:00") only.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let body = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once(['T', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut time_parts = hms.splitn(3, ':');
    let hour: u64 = time_parts.next()?.parse().ok()?;
    let minute: u64 = time_parts.next()?.parse().ok()?;
    let second: u64 = time_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let nanos: u64 = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32)
    };
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86400 + hour * 3600 + minute * 60 + second;
    Some(secs * 1_000_000_000 + nanos)
}

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
    }

    #[test]
    fn durations_print_in_a_readable_unit() {
        assert_eq!(format_duration(12), "12 ns");
        assert_eq!(format_duration(3_100_000), "3.1 ms");
        assert_eq!(format_duration(15_600_000_000), "15.60 s");
    }
}
