//! `events`: the daemon's event stream, printed as docker prints it, with docker's parsing of
//! `--since`/`--until` (Go durations, RFC 3339 dates, Unix timestamps).

use anyhow::{bail, Context as _};
use http_body_util::BodyExt as _;
use serde_json::Value;

use crate::args::{check_args, filters_json, Arity, EventsArgs};
use crate::client::{query, Client};
use crate::format::Format;
use crate::output::{out, rfc3339_nano_fixed};
use crate::units::now_unix_nanos;
pub(crate) use estiba_api::duration::parse_go_duration;

/// Longest single event we accept.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// docker's `timetypes.GetTimestamp`: the value the API wants for `since`/`until`.
pub(crate) fn get_timestamp(value: &str, now_nanos: i128) -> anyhow::Result<String> {
    if value != "0" {
        if let Some(d) = parse_go_duration(value) {
            let t = now_nanos - d;
            return Ok(t.div_euclid(1_000_000_000).to_string());
        }
    }
    let has_zone = value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3;
    let parsed = if has_zone {
        parse_zoned(value)
    } else if value.contains('-') {
        parse_local(value)
    } else {
        None
    };
    if let Some((secs, nanos)) = parsed {
        return Ok(format!("{secs}.{nanos:09}"));
    }
    if value.contains('-') {
        bail!("parsing time {value:?}: cannot parse as a date");
    }
    // A Unix timestamp ("1700000000" or "1700000000.123456789") goes to the server as is.
    let valid = match value.split_once('.') {
        Some((s, n)) => {
            s.parse::<i64>().is_ok() && n.chars().all(|c| c.is_ascii_digit()) && n.len() <= 9
        }
        None => value.parse::<i64>().is_ok(),
    };
    if !valid {
        bail!("failed to parse value as time or duration: {value:?}");
    }
    Ok(value.to_owned())
}

fn parse_zoned(value: &str) -> Option<(i64, u32)> {
    let normalized = value.replace('z', "Z");
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M%#z",
        "%Y-%m-%dT%H%#z",
        "%Y-%m-%d%#z",
    ] {
        let candidate = normalized.replace('Z', "+00:00");
        if let Ok(t) = chrono::DateTime::parse_from_str(&candidate, fmt) {
            return Some((t.timestamp(), t.timestamp_subsec_nanos()));
        }
    }
    None
}

fn parse_local(value: &str) -> Option<(i64, u32)> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone as _};
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    let t = chrono::Local.from_local_datetime(&naive).earliest()?;
    Some((t.timestamp(), t.timestamp_subsec_nanos()))
}

/// docker's `prettyPrintEvent`.
pub(crate) fn pretty_event(ev: &Value) -> String {
    let mut line = String::new();
    let time_nano = ev.get("timeNano").and_then(Value::as_i64).unwrap_or(0);
    let time = ev.get("time").and_then(Value::as_i64).unwrap_or(0);
    if time_nano != 0 {
        line.push_str(&rfc3339_nano_fixed(i128::from(time_nano)));
        line.push(' ');
    } else if time != 0 {
        line.push_str(&rfc3339_nano_fixed(i128::from(time) * 1_000_000_000));
        line.push(' ');
    }
    let typ = ev.get("Type").and_then(Value::as_str).unwrap_or("");
    let action = ev.get("Action").and_then(Value::as_str).unwrap_or("");
    let actor = ev.get("Actor").cloned().unwrap_or(Value::Null);
    let id = actor.get("ID").and_then(Value::as_str).unwrap_or("");
    line.push_str(&format!("{typ} {action} {id}"));
    if let Some(attrs) = actor.get("Attributes").and_then(Value::as_object) {
        if !attrs.is_empty() {
            let mut keys: Vec<&String> = attrs.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{k}={}",
                        attrs.get(k.as_str()).and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect();
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
    }
    line.push('\n');
    line
}

/// `estiba events`.
pub(crate) async fn events(client: &mut Client, a: EventsArgs) -> anyhow::Result<()> {
    check_args("events", &a.args, Arity::None)?;
    let now = now_unix_nanos();
    let since = a
        .since
        .as_deref()
        .map(|v| get_timestamp(v, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|v| get_timestamp(v, now))
        .transpose()?;
    let format = a.format.as_deref().map(str::trim).filter(|f| !f.is_empty());
    // `{{json .}}` prints the daemon's own line, keeping its field order.
    let raw_json = matches!(format, Some("json") | Some("{{json .}}"));
    let compiled = match format {
        Some(f) if !raw_json => Some(Format::new(f)?),
        _ => None,
    };
    let q = query(&[
        ("since", since),
        ("until", until),
        ("filters", filters_json(&a.filter)),
    ]);
    let resp = client
        .request(
            hyper::Method::GET,
            &format!("/events{q}"),
            crate::client::empty_body(),
            None,
        )
        .await?;
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading events from the daemon")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        let mut text = String::new();
        let mut consumed = 0;
        {
            let mut stream = serde_json::Deserializer::from_slice(&pending).into_iter::<Value>();
            loop {
                let start = consumed;
                match stream.next() {
                    Some(Ok(ev)) => {
                        consumed = stream.byte_offset();
                        if raw_json {
                            text.push_str(
                                String::from_utf8_lossy(&pending[start..consumed]).trim(),
                            );
                            text.push('\n');
                        } else if let Some(c) = &compiled {
                            text.push_str(&c.render(&Value::Null, &[ev])?);
                        } else {
                            text.push_str(&pretty_event(&ev));
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => bail!("decoding events from the daemon: {e}"),
                    None => break,
                }
            }
        }
        pending.drain(..consumed);
        if pending.len() > MAX_EVENT_BYTES {
            bail!("an event from the daemon is larger than {MAX_EVENT_BYTES} bytes");
        }
        out(&text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        let now = 1_795_328_656_500_000_000i128;
        let cases: &[(&str, Option<&str>)] = &[
            ("10m", Some("1795328056")),
            ("0s", Some("1795328656")),
            ("0", Some("0")),
            ("1700000000", Some("1700000000")),
            ("1700000000.5", Some("1700000000.5")),
            ("2026-11-22T06:24:06Z", Some("1795328646.000000000")),
            ("2026-11-22T06:24:06.5+01:00", Some("1795325046.500000000")),
            ("bogus", None),
        ];
        for (v, want) in cases {
            assert_eq!(get_timestamp(v, now).ok().as_deref(), *want, "{v}");
        }
        let err = get_timestamp("bogus", now).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("failed to parse value as time or duration: \"bogus\"")
        );
    }

    #[test]
    fn event_lines() {
        let ev = json!({"status":"tag","id":"sha256:ab","Type":"image","Action":"tag","Actor":{"ID":"sha256:ab","Attributes":{"name":"busybox:latest","a":"1"}},"scope":"local","time":1795328656,"timeNano":1795328656507469436i64});
        let line = pretty_event(&ev);
        assert!(
            line.ends_with(".507469436Z image tag sha256:ab (a=1, name=busybox:latest)\n")
                || line.contains(".507469436+"),
            "{line}"
        );
        let bare =
            json!({"Type":"image","Action":"delete","Actor":{"ID":"sha256:ab","Attributes":{}}});
        assert_eq!(pretty_event(&bare), "image delete sha256:ab\n");
    }
}
