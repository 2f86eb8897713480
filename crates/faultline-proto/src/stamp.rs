//! RFC 3339 times in UTC without a calendar library: node log lines start with
//! `YYYY-MM-DDTHH:MM:SS.mmmZ` (the harness lines them up with the history through each node's
//! `clock_ms`), and the harness stamps runs and run directories the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch of `t` (negative before it).
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_unix_ms(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms.div_euclid(1000));
    let milli = ms.rem_euclid(1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// `YYYY-MM-DDTHH:MM:SS` + `Z`, seconds precision.
pub fn format_unix_secs(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `YYYYmmddTHHMMSS` (for directory names).
pub fn compact_unix_secs(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}")
}

/// Calendar fields of a unix time in seconds, UTC (Howard Hinnant's days-to-civil).
fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the RFC 3339 timestamp at the start of `s` (trailing text ignored) to unix ms:
/// `T` or a space between date and time, optional fraction, zone `Z`, `±HH:MM` or none (UTC).
pub fn parse_rfc3339_ms(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = format!("0.{}", &s[start..i]).parse().unwrap_or(0.0);
    }
    let offset_min = match b.get(i) {
        Some(b'+') | Some(b'-') if b.len() >= i + 6 && b[i + 3] == b':' => {
            let sign = if b[i] == b'+' { 1 } else { -1 };
            sign * (digits(i + 1..i + 3)? * 60 + digits(i + 4..i + 6)?)
        }
        _ => 0,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some((secs as f64 + frac) * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_ms(86_401_000), "1970-01-02T00:00:01.000Z");
        // 2024-02-29 (a leap day) 13:45:06.789 UTC
        assert_eq!(
            format_unix_ms(1_709_214_306_789),
            "2024-02-29T13:45:06.789Z"
        );
        assert_eq!(format_unix_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_unix_secs(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(format_unix_secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(compact_unix_secs(1_795_000_000), "20261118T110640");
        assert_eq!(unix_ms(UNIX_EPOCH + std::time::Duration::from_millis(7)), 7);
    }

    #[test]
    fn parse_inverts_format() {
        for ms in [0i64, 1_709_214_306_789, 1_795_356_776_250, 951_782_400_000] {
            assert_eq!(parse_rfc3339_ms(&format_unix_ms(ms)), Some(ms as f64));
        }
        assert_eq!(
            parse_rfc3339_ms("2026-11-22 15:12:56+01:00 INFO x"),
            Some(1_795_356_776_000.0)
        );
        assert_eq!(parse_rfc3339_ms("2026-13-22T15:12:56Z"), None);
        assert_eq!(parse_rfc3339_ms("not a time"), None);
    }
}
