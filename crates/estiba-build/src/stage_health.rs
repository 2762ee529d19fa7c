//! HEALTHCHECK's options and command as the image config's `Healthcheck` object.

use serde_json::{json, Value};

use crate::parser::Instruction;
use crate::BuildError;

/// `30s`, `1m30s`, `500ms` in nanoseconds.
pub(crate) fn duration_ns(s: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        let mul = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += v * mul;
        any = true;
    }
    (any && num.is_empty()).then_some(total as i64)
}

/// The `Healthcheck` object of `HEALTHCHECK [options] CMD ...` or `HEALTHCHECK NONE`.
pub(crate) fn healthcheck(ins: &Instruction, shell: &[String]) -> Result<Value, BuildError> {
    let rest = ins.rest.trim();
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok(json!({"Test": ["NONE"]}));
    }
    let Some(cmd) = rest
        .get(..3)
        .filter(|w| w.eq_ignore_ascii_case("CMD"))
        .map(|_| rest[3..].trim())
    else {
        return Err(BuildError::Step(
            "Unknown type\"\" in HEALTHCHECK (try CMD)".into(),
        ));
    };
    let test = match serde_json::from_str::<Vec<String>>(cmd) {
        Ok(v) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v);
            t
        }
        Err(_) => {
            let _ = shell;
            vec!["CMD-SHELL".to_string(), cmd.to_string()]
        }
    };
    let mut hc = json!({"Test": test});
    for (flag, key) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ] {
        if let Some(v) = ins.flag(flag) {
            let ns = duration_ns(v)
                .ok_or_else(|| BuildError::Step(format!("time: invalid duration \"{v}\"")))?;
            hc[key] = json!(ns);
        }
    }
    if let Some(r) = ins.flag("retries") {
        let n: i64 = r
            .parse()
            .map_err(|_| BuildError::Step(format!("invalid retries: {r}")))?;
        hc["Retries"] = json!(n);
    }
    Ok(hc)
}

/// Go's `time.Duration.String()` of `ns` nanoseconds (`0s`, `1.5ms`, `1m30s`, `1h0m0s`).
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let frac = |v: u64, unit: u64| {
        let (whole, rest) = (v / unit, v % unit);
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.ilog10() as usize;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    if u < 1_000 {
        return format!("{neg}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{neg}{}µs", frac(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{neg}{}ms", frac(u, 1_000_000));
    }
    let secs = frac(u % 60_000_000_000, 1_000_000_000);
    let mins = u / 60_000_000_000;
    match (mins / 60, mins % 60) {
        (0, 0) => format!("{neg}{secs}s"),
        (0, m) => format!("{neg}{m}m{secs}s"),
        (h, m) => format!("{neg}{h}h{m}m{secs}s"),
    }
}

/// Go's `%q` of an int (a quoted rune: `'\x02'`, `'A'`).
fn go_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some(c) if (' '..='~').contains(&c) && c != '\'' && c != '\\' => format!("'{c}'"),
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if (c as u32) < 0x80 => format!("'\\x{:02x}'", c as u32),
        Some(c) if (c as u32) < 0x10000 => format!("'\\u{:04x}'", c as u32),
        Some(c) => format!("'\\U{:08x}'", c as u32),
        None => "'\u{fffd}'".into(),
    }
}

/// HEALTHCHECK's history text, as Docker's classic builder writes it (`%q` of the Go struct).
pub(crate) fn history(hc: &Value) -> String {
    let test: Vec<String> = hc["Test"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| format!("{:?}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let d = |k: &str| format!("{:?}", go_duration(hc[k].as_i64().unwrap_or(0)));
    format!(
        "&{{[{}] {} {} {} {}}}",
        test.join(" "),
        d("Interval"),
        d("Timeout"),
        d("StartPeriod"),
        go_rune(hc["Retries"].as_i64().unwrap_or(0))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ns("30s"), Some(30_000_000_000));
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("x"), None);
        assert_eq!(duration_ns("5"), None);
    }

    #[test]
    fn history_reads_as_go_prints_it() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(2_500_000_000), "2.5s");
        assert_eq!(go_rune(2), "'\\x02'");
        assert_eq!(go_rune(65), "'A'");
        let hc = json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2});
        assert_eq!(
            history(&hc),
            r#"&{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x02'}"#
        );
        assert_eq!(
            history(&json!({"Test": ["NONE"]})),
            r#"&{["NONE"] "0s" "0s" "0s" '\x00'}"#
        );
    }
}
