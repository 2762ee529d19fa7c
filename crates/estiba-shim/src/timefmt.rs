//! RFC 3339 UTC timestamps with nanoseconds, formatted without a date-time library.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-22T06:24:06.943004200Z`: always nine fraction digits (Docker's `RFC3339NanoFixed`).
pub fn rfc3339_nanos_fixed(t: SystemTime) -> String {
    let (secs, nanos) = split(t);
    format!("{}.{nanos:09}Z", date_time(secs))
}

/// `2026-11-22T06:24:06.9430042Z`: Go's `time.RFC3339Nano`, trailing zeros of the fraction trimmed
/// (and no fraction at all on a whole second), as Docker's json-file log writes `time`.
pub fn rfc3339_nanos_trimmed(t: SystemTime) -> String {
    let (secs, nanos) = split(t);
    if nanos == 0 {
        return format!("{}Z", date_time(secs));
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}Z", date_time(secs), fraction.trim_end_matches('0'))
}

fn split(t: SystemTime) -> (u64, u32) {
    // Times before 1970 do not occur for container events; clamp rather than panic.
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn date_time(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, restricted to non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats() {
        let cases: &[(u64, u32, &str, &str)] = &[
            (
                0,
                0,
                "1970-01-01T00:00:00.000000000Z",
                "1970-01-01T00:00:00Z",
            ),
            (
                951_782_400,
                5,
                "2000-02-29T00:00:00.000000005Z",
                "2000-02-29T00:00:00.000000005Z",
            ),
            (
                1_795_328_646,
                943_004_200,
                "2026-11-22T06:24:06.943004200Z",
                "2026-11-22T06:24:06.9430042Z",
            ),
            (
                4_102_444_799,
                100_000_000,
                "2099-12-31T23:59:59.100000000Z",
                "2099-12-31T23:59:59.1Z",
            ),
            (
                1_709_251_199,
                999_999_999,
                "2024-02-29T23:59:59.999999999Z",
                "2024-02-29T23:59:59.999999999Z",
            ),
        ];
        for &(secs, nanos, fixed, trimmed) in cases {
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            assert_eq!(rfc3339_nanos_fixed(t), fixed);
            assert_eq!(rfc3339_nanos_trimmed(t), trimmed);
        }
    }
}
