//! SOURCE_DATE_EPOCH (BuildKit's convention, as a build arg or in the client's environment):
//! every layer tar is rewritten with each entry's mtime clamped to the epoch (atime and ctime
//! cleared), and the image's and history's `created` set from it. The entries are already in
//! a fixed order (the snapshot diff walks parents before children, siblings sorted; COPY sorts
//! by destination), so two builds of the same input give the same bytes and the same image ID.

use crate::BuildError;

/// The build arg (and environment variable) that asks for a reproducible build.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Largest epoch accepted (year 9999), so that `created` stays a valid RFC 3339 time.
const MAX_EPOCH: i64 = 253_402_300_799;

/// The epoch a build asked for, if any; a value that is not a non-negative integer is refused.
pub fn epoch(value: Option<&str>) -> Result<Option<i64>, BuildError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match v.parse::<i64>() {
        Ok(n) if (0..=MAX_EPOCH).contains(&n) => Ok(Some(n)),
        _ => Err(BuildError::Invalid(format!(
            "invalid SOURCE_DATE_EPOCH: {v}"
        ))),
    }
}

/// The epoch as the RFC 3339 time of `created`.
pub fn created(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_checked() {
        assert_eq!(epoch(None).unwrap(), None);
        assert_eq!(epoch(Some("")).unwrap(), None);
        assert_eq!(epoch(Some("0")).unwrap(), Some(0));
        assert_eq!(epoch(Some("1700000000")).unwrap(), Some(1_700_000_000));
        assert!(epoch(Some("-1")).is_err());
        assert!(epoch(Some("soon")).is_err());
        assert_eq!(created(0), "1970-01-01T00:00:00Z");
        assert_eq!(created(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
