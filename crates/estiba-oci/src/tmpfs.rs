//! `--tmpfs` option handling: Docker's defaults (`noexec,nosuid,nodev,rprivate`) merged with the
//! user's options, the last of each kind winning (moby/sys/mount `MergeTmpfsOptions`).

use thiserror::Error;

/// Flag options and the "slot" each occupies; options in the same slot override each other.
const FLAG_SLOTS: &[(&str, &str)] = &[
    ("ro", "rdonly"),
    ("rw", "rdonly"),
    ("suid", "nosuid"),
    ("nosuid", "nosuid"),
    ("dev", "nodev"),
    ("nodev", "nodev"),
    ("exec", "noexec"),
    ("noexec", "noexec"),
    ("sync", "sync"),
    ("async", "sync"),
    ("dirsync", "dirsync"),
    ("remount", "remount"),
    ("mand", "mand"),
    ("nomand", "mand"),
    ("atime", "noatime"),
    ("noatime", "noatime"),
    ("diratime", "nodiratime"),
    ("nodiratime", "nodiratime"),
    ("relatime", "relatime"),
    ("norelatime", "relatime"),
    ("strictatime", "strictatime"),
    ("nostrictatime", "strictatime"),
    // There is only one propagation mode.
    ("bind", "propagation"),
    ("rbind", "propagation"),
    ("unbindable", "propagation"),
    ("runbindable", "propagation"),
    ("private", "propagation"),
    ("rprivate", "propagation"),
    ("shared", "propagation"),
    ("rshared", "propagation"),
    ("slave", "propagation"),
    ("rslave", "propagation"),
];

/// `key=value` options tmpfs accepts.
const DATA_KEYS: &[&str] = &[
    "",
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// Options every `--tmpfs` mount starts from.
pub const TMPFS_DEFAULT_OPTIONS: [&str; 4] = ["noexec", "nosuid", "nodev", "rprivate"];

/// Longest option string accepted for one tmpfs mount.
pub const MAX_TMPFS_OPTIONS_BYTES: usize = 4096;

/// A `--tmpfs` option Docker would refuse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TmpfsError {
    /// Docker prints the split option as a Go `%q` slice, e.g. `["foo"]`.
    #[error("invalid tmpfs option {0}")]
    InvalidOption(String),
    #[error("tmpfs options longer than {MAX_TMPFS_OPTIONS_BYTES} bytes")]
    TooLong,
}

fn go_quoted_slice(parts: &[&str]) -> String {
    let quoted: Vec<String> = parts.iter().map(|p| format!("{p:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Merges `options` (defaults first, user's after), keeping the last of each flag slot and of
/// each data key, in their original relative order.
pub fn merge_tmpfs_options(options: &[String]) -> Result<Vec<String>, TmpfsError> {
    let mut flag_seen: Vec<&str> = Vec::new();
    let mut data_seen: Vec<&str> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for option in options.iter().rev() {
        if option == "defaults" {
            continue;
        }
        if let Some((_, slot)) = FLAG_SLOTS.iter().find(|(name, _)| name == option) {
            if !flag_seen.contains(slot) {
                flag_seen.push(slot);
                out.push(option.clone());
            }
            continue;
        }
        let parts: Vec<&str> = option.splitn(2, '=').collect();
        let key = match parts.as_slice() {
            [key, _] if DATA_KEYS.contains(key) => *key,
            _ => return Err(TmpfsError::InvalidOption(go_quoted_slice(&parts))),
        };
        if !data_seen.contains(&key) {
            data_seen.push(key);
            out.push(option.clone());
        }
    }
    out.reverse();
    Ok(out)
}

/// The spec options of a `--tmpfs DEST:OPTIONS` mount (OPTIONS comma-separated, maybe empty).
pub fn tmpfs_mount_options(user_options: &str) -> Result<Vec<String>, TmpfsError> {
    if user_options.len() > MAX_TMPFS_OPTIONS_BYTES {
        return Err(TmpfsError::TooLong);
    }
    let mut options: Vec<String> = TMPFS_DEFAULT_OPTIONS
        .iter()
        .map(|o| (*o).to_owned())
        .collect();
    if !user_options.is_empty() {
        options.extend(user_options.split(',').map(str::to_owned));
    }
    merge_tmpfs_options(&options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_table() {
        let cases: Vec<(&str, &[&str])> = vec![
            ("", &["noexec", "nosuid", "nodev", "rprivate"]),
            (
                "size=64m",
                &["noexec", "nosuid", "nodev", "rprivate", "size=64m"],
            ),
            (
                "size=64m,mode=1777",
                &[
                    "noexec",
                    "nosuid",
                    "nodev",
                    "rprivate",
                    "size=64m",
                    "mode=1777",
                ],
            ),
            ("exec", &["nosuid", "nodev", "rprivate", "exec"]),
            (
                "exec,size=1m,size=2m",
                &["nosuid", "nodev", "rprivate", "exec", "size=2m"],
            ),
            ("ro", &["noexec", "nosuid", "nodev", "rprivate", "ro"]),
            ("ro,rw", &["noexec", "nosuid", "nodev", "rprivate", "rw"]),
            ("shared", &["noexec", "nosuid", "nodev", "shared"]),
            ("suid,dev", &["noexec", "rprivate", "suid", "dev"]),
            (
                "defaults,uid=1000,gid=1000",
                &[
                    "noexec", "nosuid", "nodev", "rprivate", "uid=1000", "gid=1000",
                ],
            ),
        ];
        for (input, want) in cases {
            let got = tmpfs_mount_options(input).unwrap();
            assert_eq!(
                got,
                want.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn invalid_options() {
        let cases = [
            ("foo", "invalid tmpfs option [\"foo\"]"),
            ("size=1m,bogus=2", "invalid tmpfs option [\"bogus\" \"2\"]"),
        ];
        for (input, want) in cases {
            assert_eq!(tmpfs_mount_options(input).unwrap_err().to_string(), want);
        }
        assert_eq!(
            tmpfs_mount_options(&"a".repeat(5000)),
            Err(TmpfsError::TooLong)
        );
    }
}
