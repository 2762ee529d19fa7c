//! Signal names and numbers as runc accepts them: `TERM`, `SIGTERM`, `term`, `15`.

use anyhow::bail;
use libcontainer::signal::Signal;

pub(crate) fn parse_signal(raw: &str) -> anyhow::Result<Signal> {
    // libcontainer's table maps both "9" and "KILL"/"SIGKILL"; numbers outside 1..=31 and real-time
    // signals are not in it, and neither is runc's "0" probe, which would mean nothing to a shim.
    match Signal::try_from(raw.trim()) {
        Ok(s) => Ok(s),
        Err(_) => bail!("unknown signal {raw:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let cases: &[(&str, bool)] = &[
            ("TERM", true),
            ("SIGTERM", true),
            ("term", true),
            ("15", true),
            ("9", true),
            ("KILL", true),
            ("SIGUSR1", true),
            ("31", true),
            ("0", false),
            ("32", false),
            ("-1", false),
            ("FOO", false),
            ("SIGFOO", false),
            ("", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(parse_signal(raw).is_ok(), *ok, "signal {raw:?}");
        }
        let err = parse_signal("FOO").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown signal \"FOO\""));
    }
}
