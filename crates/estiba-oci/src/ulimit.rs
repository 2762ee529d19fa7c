//! `--ulimit name=soft[:hard]` (go-units' `ParseUlimit`) and its `RLIMIT_*` spec form.

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};
use thiserror::Error;

/// Names `--ulimit` accepts (go-units' table).
pub const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// One resource limit, as the Docker API carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A `--ulimit` Docker would refuse (Docker's wording).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UlimitError {
    #[error("invalid ulimit argument: {0}")]
    InvalidArgument(String),
    #[error("invalid ulimit type: {0}")]
    InvalidType(String),
    #[error("too many limit value arguments - {0}, can only have up to two, `soft[:hard]`")]
    TooManyValues(String),
    /// Go's `strconv.ParseInt` error, which is what docker prints.
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    InvalidValue(String),
    #[error("ulimit soft limit must be less than or equal to hard limit: {0} > {1}")]
    SoftAboveHard(i64, i64),
    #[error("ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {0}")]
    UnlimitedSoftBelowHard(i64),
}

impl Ulimit {
    /// Parses `name=soft[:hard]`; without `hard`, hard equals soft.
    pub fn parse(value: &str) -> Result<Ulimit, UlimitError> {
        let (name, limits) = value
            .split_once('=')
            .ok_or_else(|| UlimitError::InvalidArgument(value.to_owned()))?;
        if !ULIMIT_NAMES.contains(&name) {
            return Err(UlimitError::InvalidType(name.to_owned()));
        }
        let parts: Vec<&str> = limits.splitn(3, ':').collect();
        let num = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| UlimitError::InvalidValue(s.to_owned()))
        };
        let (soft, hard) = match parts.as_slice() {
            [soft] => {
                let soft = num(soft)?;
                (soft, soft)
            }
            [soft, hard] => {
                let hard = num(hard)?;
                (num(soft)?, hard)
            }
            _ => return Err(UlimitError::TooManyValues(limits.to_owned())),
        };
        if hard != -1 {
            if soft == -1 {
                return Err(UlimitError::UnlimitedSoftBelowHard(hard));
            }
            if soft > hard {
                return Err(UlimitError::SoftAboveHard(soft, hard));
            }
        }
        Ok(Ulimit {
            name: name.to_owned(),
            soft,
            hard,
        })
    }

    /// The spec's rlimit; -1 (unlimited) wraps to `u64::MAX` (RLIM_INFINITY) as in Go.
    pub fn to_rlimit(&self) -> Result<PosixRlimit, UlimitError> {
        let typ: PosixRlimitType = serde_json::from_value(serde_json::Value::String(format!(
            "RLIMIT_{}",
            self.name.to_uppercase()
        )))
        .map_err(|_| UlimitError::InvalidType(self.name.clone()))?;
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(self.soft as u64)
            .hard(self.hard as u64)
            .build()
            .map_err(|_| UlimitError::InvalidType(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [
            ("nofile=1024", ("nofile", 1024, 1024)),
            ("nofile=1024:2048", ("nofile", 1024, 2048)),
            ("nproc=-1", ("nproc", -1, -1)),
            ("core=0:-1", ("core", 0, -1)),
            ("stack=99:-1", ("stack", 99, -1)),
        ];
        for (input, (name, soft, hard)) in ok {
            assert_eq!(
                Ulimit::parse(input).unwrap(),
                Ulimit {
                    name: name.into(),
                    soft,
                    hard
                },
                "{input}"
            );
        }
        let errors = [
            ("nofile", "invalid ulimit argument: nofile"),
            ("bogus=1", "invalid ulimit type: bogus"),
            ("nofile=a", "strconv.ParseInt: parsing \"a\": invalid syntax"),
            ("nofile=-1:10", "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 10"),
            ("nofile=1:2:3", "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
            ("nofile=2048:1024", "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
        ];
        for (input, want) in errors {
            assert_eq!(
                Ulimit::parse(input).unwrap_err().to_string(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn every_name_maps_to_an_rlimit() {
        for name in ULIMIT_NAMES {
            let u = Ulimit {
                name: name.into(),
                soft: 1,
                hard: -1,
            };
            let r = u.to_rlimit().unwrap_or_else(|e| panic!("{name}: {e}"));
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json["type"], format!("RLIMIT_{}", name.to_uppercase()));
            assert_eq!(json["hard"], u64::MAX);
        }
    }
}
