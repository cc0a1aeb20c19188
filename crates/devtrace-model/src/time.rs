//! UTC timestamps as Unix nanoseconds: RFC 3339 parsing and the civil calendar, without a
//! time library. Pure functions; no clock.

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "2026-11-21T09:00:00Z", "2026-11-21T09:00:00.123+02:00", "2026-11-21 09:00:00Z": a time
/// with an optional fraction and a `Z` or numeric offset. `None` for anything else, or for
/// times before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let (body, offset_secs) = if let Some(body) = text.strip_suffix(['Z', 'z']) {
        (body, 0i64)
    } else {
        let split = text.len().checked_sub(6)?;
        let (body, offset) = text.split_at_checked(split)?;
        let sign = match offset.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (hours, minutes) = offset[1..].split_once(':')?;
        let hours: i64 = hours.parse().ok()?;
        let minutes: i64 = minutes.parse().ok()?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        (body, sign * (hours * 3600 + minutes * 60))
    };
    let (date, time) = body.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut time_parts = hms.splitn(3, ':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next()?.parse().ok()?;
    let second: i64 = time_parts.next()?.parse().ok()?;
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
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = &fraction[..fraction.len().min(9)];
        digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32)
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// "2025-09-03T00:52:31.217Z": RFC 3339 in UTC, with milliseconds when there are any.
pub fn format_rfc3339(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let (year, month, day) = civil_from_days((secs / 86400) as i64);
    let rem = secs % 86400;
    let base = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let sub = nanos % 1_000_000_000;
    if sub == 0 {
        format!("{base}Z")
    } else if sub.is_multiple_of(1_000_000) {
        format!("{base}.{:03}Z", sub / 1_000_000)
    } else {
        format!("{base}.{sub:09}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_fractions_and_offsets() {
        let utc = parse_rfc3339("2025-09-03T00:52:31.217Z").unwrap();
        assert_eq!(utc, 1_756_860_751_217_000_000);
        assert_eq!(parse_rfc3339("2025-09-03T02:52:31.217+02:00"), Some(utc));
        assert_eq!(parse_rfc3339("2025-09-02T21:52:31.217-03:00"), Some(utc));
        assert_eq!(format_rfc3339(utc), "2025-09-03T00:52:31.217Z");
        assert_eq!(
            format_rfc3339(1_756_860_751_000_000_000),
            "2025-09-03T00:52:31Z"
        );
        for bad in [
            "2025-13-01T00:00:00Z",
            "yesterday",
            "2025-09-03T00:52:31",
            "2025-09-03T00:52:31.x1Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
