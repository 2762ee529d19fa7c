//! Go's `time.ParseDuration`, which Docker's CLI and daemon accept for times before now
//! (`--since 10m`, prune's `until=24h`).

/// Go's `time.ParseDuration`, in nanoseconds ("10m", "1h30m", "-1.5s", "0").
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * factor;
    }
    let nanos = total.round() as i128;
    Some(if neg { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases: &[(&str, Option<i128>)] = &[
            ("10m", Some(600_000_000_000)),
            ("1h30m", Some(5_400_000_000_000)),
            ("1.5s", Some(1_500_000_000)),
            ("-2s", Some(-2_000_000_000)),
            ("0s", Some(0)),
            ("0", Some(0)),
            ("300ms", Some(300_000_000)),
            ("10", None),
            ("bogus", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_go_duration(s), *want, "{s}");
        }
    }
}
