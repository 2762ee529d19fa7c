//! Volume names as the local driver accepts them (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).

/// Longest name accepted (a path component; Docker relies on the filesystem's 255).
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// Checks `name`; the error is dockerd's reason text (the caller prefixes `create NAME: `).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.len() == 1 {
        return Err(
            "volume name is too short, names should be at least two alphanumeric characters"
                .to_string(),
        );
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_docker() {
        for ok in ["data", "a1", "my_vol.2-x", "0abc"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["a/b", "", "_x", ".x", "-x", "a b", "x:y", "../etc", "é1"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name("a").unwrap_err().contains("too short"));
        assert_eq!(
            validate_name("a/b").unwrap_err(),
            "\"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }
}
