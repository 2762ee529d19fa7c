//! Human-readable sizes and durations, byte-for-byte like docker's go-units.

use std::time::Duration;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `precision` significant digits ("1.98MB").
pub(crate) fn human_size_precision(size: f64, precision: usize) -> String {
    let (value, unit) = scale(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{}", go_format_g(value, precision), unit)
}

/// go-units `HumanSize`: four significant digits ("1.982MB").
pub(crate) fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// go-units `BytesSize`: binary units, four significant digits ("23.54GiB").
pub(crate) fn bytes_size(size: f64) -> String {
    let (value, unit) = scale(size, 1024.0, &BINARY_UNITS);
    format!("{}{}", go_format_g(value, 4), unit)
}

/// Go's `fmt.Sprintf("%.*g", precision, v)`: shortest of fixed or exponent notation, trailing
/// zeros removed.
pub(crate) fn go_format_g(value: f64, precision: usize) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_owned()
        } else if value > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    let precision = precision.max(1);
    if value == 0.0 {
        return "0".to_owned();
    }
    // Round to `precision` significant digits first: the exponent is the one after rounding.
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_owned(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    let precision_i = i32::try_from(precision).unwrap_or(i32::MAX);
    if exp < -4 || exp >= precision_i {
        let mantissa = strip_trailing_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(precision_i - 1 - exp).unwrap_or(0);
        strip_trailing_zeros(&format!("{value:.decimals$}"))
    }
}

fn strip_trailing_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// go-units `HumanDuration` ("About an hour", "2 days").
pub(crate) fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds to the nearest hour (half away from zero) before comparing.
    let hours = (d.as_nanos() + 1_800_000_000_000) / 3_600_000_000_000;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// "N units ago" for a Unix timestamp, relative to `now_unix` (docker's CreatedSince).
pub(crate) fn since(created_unix: i64, now_unix_nanos: i128) -> String {
    let created_nanos = i128::from(created_unix) * 1_000_000_000;
    let diff = (now_unix_nanos - created_nanos).max(0);
    let diff = u64::try_from(diff).unwrap_or(u64::MAX);
    format!("{} ago", human_duration(Duration::from_nanos(diff)))
}

/// The current time as nanoseconds since the Unix epoch.
pub(crate) fn now_unix_nanos() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(_) => 0,
    }
}

/// docker's `TruncateID`: drop the algorithm prefix, keep 12 characters.
pub(crate) fn truncate_id(id: &str) -> String {
    let id = match id.split_once(':') {
        Some((_, rest)) => rest,
        None => id,
    };
    id.chars().take(12).collect()
}

/// docker's `Ellipsis`: cut to `max_width` characters, the last one being "…".
pub(crate) fn ellipsis(s: &str, max_width: usize) -> String {
    if s.chars().count() <= max_width {
        return s.to_owned();
    }
    if max_width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max_width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_go_units() {
        let cases: &[(f64, usize, &str)] = &[
            (0.0, 3, "0B"),
            (1.0, 3, "1B"),
            (999.0, 3, "999B"),
            (1000.0, 3, "1kB"),
            (1982321.0, 3, "1.98MB"),
            (1982321.0, 4, "1.982MB"),
            (1_500_000.0, 3, "1.5MB"),
            (123_456_789.0, 3, "123MB"),
            (999_999.0, 3, "1e+03kB"),
            (12_345.0, 4, "12.35kB"),
            (77_800_000_000.0, 3, "77.8GB"),
            (4096.0, 4, "4.096kB"),
        ];
        for (size, precision, want) in cases {
            assert_eq!(
                human_size_precision(*size, *precision),
                *want,
                "size {size} p{precision}"
            );
        }
        assert_eq!(human_size(1982321.0), "1.982MB");
        assert_eq!(bytes_size(25_275_000_000.0), "23.54GiB");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(0.0), "0B");
    }

    #[test]
    fn go_g_format() {
        let cases: &[(f64, usize, &str)] = &[
            (100.0, 3, "100"),
            (0.5, 3, "0.5"),
            (0.00001234, 3, "1.23e-05"),
            (1234.5, 3, "1.23e+03"),
            (2.0, 4, "2"),
            (9.9999, 3, "10"),
        ];
        for (v, p, want) in cases {
            assert_eq!(go_format_g(*v, *p), *want, "{v} p{p}");
        }
    }

    #[test]
    fn durations_match_go_units() {
        let cases: &[(u64, &str)] = &[
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (13 * 86400, "13 days"),
            (14 * 86400, "2 weeks"),
            (59 * 86400, "8 weeks"),
            (60 * 86400, "2 months"),
            (729 * 86400, "24 months"),
            (730 * 86400, "2 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{secs}s");
        }
        assert_eq!(since(0, 7200 * 1_000_000_000), "2 hours ago");
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(
            truncate_id("sha256:09b23f020198c1955a16e31144c25f088110c041342dd8ea3f11fb1aab29076f"),
            "09b23f020198"
        );
        assert_eq!(truncate_id("<missing>"), "<missing>");
        assert_eq!(ellipsis("abcdef", 6), "abcdef");
        assert_eq!(ellipsis("abcdefg", 6), "abcde…");
    }
}
