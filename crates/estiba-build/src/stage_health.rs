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
}
