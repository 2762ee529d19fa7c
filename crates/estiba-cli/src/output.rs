//! Writing to the terminal: whole outputs in one write, and the local-time stamps docker prints.

use std::io::{IsTerminal as _, Write as _};

/// Writes `s` to stdout at once (a closed pipe surfaces as a BrokenPipe error, which main treats
/// as a normal end, like `docker images | head`).
pub(crate) fn out(s: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(s.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

pub(crate) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

fn local(secs: i64, nanos: u32) -> Option<chrono::DateTime<chrono::Local>> {
    chrono::DateTime::from_timestamp(secs, nanos).map(|t| t.with_timezone(&chrono::Local))
}

/// Go's `time.RFC3339` in local time ("2026-11-22T06:24:16Z").
pub(crate) fn rfc3339(secs: i64) -> String {
    match local(secs, 0) {
        Some(t) => {
            if t.offset().local_minus_utc() == 0 {
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
            }
        }
        None => secs.to_string(),
    }
}

/// docker's `RFC3339NanoFixed` in local time ("2026-11-22T06:24:06.943004209Z").
pub(crate) fn rfc3339_nano_fixed(nanos_since_epoch: i128) -> String {
    let secs = i64::try_from(nanos_since_epoch.div_euclid(1_000_000_000)).unwrap_or(0);
    let sub = u32::try_from(nanos_since_epoch.rem_euclid(1_000_000_000)).unwrap_or(0);
    match local(secs, sub) {
        Some(t) => {
            if t.offset().local_minus_utc() == 0 {
                t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string()
            }
        }
        None => nanos_since_epoch.to_string(),
    }
}

/// Go's `time.Time.String()` for a Unix time ("2026-11-22 06:24:16 +0000 UTC").
pub(crate) fn go_time_string(secs: i64) -> String {
    match local(secs, 0) {
        Some(t) => {
            let offset = t.format("%z").to_string();
            let zone = if t.offset().local_minus_utc() == 0 {
                "UTC".to_owned()
            } else {
                offset.clone()
            };
            format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => secs.to_string(),
    }
}
