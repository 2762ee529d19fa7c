//! The `Status` column of `docker ps`: "Up 2 minutes", "Exited (3) 5 seconds ago", "Created".

use crate::model::{State, Status};

/// go-units' `HumanDuration`, which the Status column uses.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let minutes = s / 60;
    // Rounded to the nearest hour, as go-units does.
    let hours = (s + 1800) / 3600;
    if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".to_string()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", s / 3600 / 24 / 365)
    }
}

fn seconds_since(rfc3339: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some((now - t.with_timezone(&chrono::Utc)).num_seconds())
}

/// moby's `State.String()`.
pub fn status_string(state: &State, now: chrono::DateTime<chrono::Utc>) -> String {
    match state.status {
        Status::Running | Status::Paused => {
            let up = seconds_since(&state.started_at, now).unwrap_or(0);
            let suffix = match &state.health {
                _ if state.status == Status::Paused => " (Paused)".to_owned(),
                Some(h) if h.status == crate::health::STARTING => " (health: starting)".to_owned(),
                Some(h) if !h.status.is_empty() => format!(" ({})", h.status),
                _ => String::new(),
            };
            format!("Up {}{suffix}", human_duration(up))
        }
        Status::Restarting => {
            let ago = seconds_since(&state.finished_at, now).unwrap_or(0);
            format!(
                "Restarting ({}) {} ago",
                state.exit_code,
                human_duration(ago)
            )
        }
        Status::Removing => "Removal In Progress".to_string(),
        Status::Dead => "Dead".to_string(),
        Status::Created => "Created".to_string(),
        Status::Exited => {
            if state.started_at.is_empty() {
                return "Created".to_string();
            }
            match seconds_since(&state.finished_at, now) {
                Some(ago) => format!("Exited ({}) {} ago", state.exit_code, human_duration(ago)),
                None => String::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go_units() {
        let cases: &[(i64, &str)] = &[
            (0, "Less than a second"),
            (1, "1 second"),
            (2, "2 seconds"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (2 * 3600, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 24 * 3600, "2 weeks"),
            (60 * 24 * 3600, "2 months"),
            (2 * 365 * 24 * 3600, "2 years"),
        ];
        for (s, want) in cases {
            assert_eq!(human_duration(*s), *want, "{s}");
        }
    }

    #[test]
    fn status_column() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let st = |status, started: &str, finished: &str, code| State {
            status,
            started_at: started.into(),
            finished_at: finished.into(),
            exit_code: code,
            ..Default::default()
        };
        let cases = [
            (st(Status::Created, "", "", 0), "Created"),
            (
                st(Status::Running, "2026-01-01T00:00:58Z", "", 0),
                "Up 2 seconds",
            ),
            (
                st(Status::Paused, "2026-01-01T00:00:00Z", "", 0),
                "Up About a minute (Paused)",
            ),
            (
                st(
                    Status::Exited,
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T00:00:55Z",
                    3,
                ),
                "Exited (3) 5 seconds ago",
            ),
            (st(Status::Exited, "", "", 127), "Created"),
        ];
        for (state, want) in cases {
            assert_eq!(status_string(&state, now), want);
        }
    }
}
