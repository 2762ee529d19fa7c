//! API versions (`1.51`): parsing, ordering and the range estibad accepts.

use std::fmt;
use std::str::FromStr;

/// A Docker Engine API version, `major.minor`. Ordered numerically (1.9 < 1.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

/// A version string that is not `major.minor` with small decimal numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API version {0:?}")]
pub struct VersionError(pub String);

impl ApiVersion {
    /// The newest version estibad speaks (see [`crate::API_VERSION`]).
    pub const CURRENT: ApiVersion = ApiVersion {
        major: 1,
        minor: 51,
    };
    /// The oldest version estibad accepts (see [`crate::MIN_API_VERSION`]).
    pub const MIN: ApiVersion = ApiVersion {
        major: 1,
        minor: 24,
    };

    pub const fn new(major: u16, minor: u16) -> Self {
        ApiVersion { major, minor }
    }
}

impl FromStr for ApiVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError(s.to_string());
        let (major, minor) = s.split_once('.').ok_or_else(err)?;
        let number = |part: &str| -> Result<u16, VersionError> {
            // u16::from_str accepts a leading '+', Docker's versions never have one.
            if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            part.parse().map_err(|_| err())
        };
        Ok(ApiVersion {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        let cases: &[(&str, Option<(u16, u16)>)] = &[
            ("1.51", Some((1, 51))),
            ("1.24", Some((1, 24))),
            ("1.9", Some((1, 9))),
            ("2.0", Some((2, 0))),
            ("1", None),
            ("1.", None),
            (".5", None),
            ("1.+5", None),
            ("v1.41", None),
            ("1.41.0", None),
            ("1.99999", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<ApiVersion>().ok().map(|v| (v.major, v.minor));
            assert_eq!(got, *want, "input {input:?}");
        }
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 24));
        assert!(ApiVersion::CURRENT > ApiVersion::MIN);
        assert_eq!(ApiVersion::CURRENT.to_string(), crate::API_VERSION);
        assert_eq!(ApiVersion::MIN.to_string(), crate::MIN_API_VERSION);
    }
}
