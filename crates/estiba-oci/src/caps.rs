//! Linux capabilities: Docker's default set, `--cap-add`/`--cap-drop` and `--privileged`.

use oci_spec::runtime::Capability;
use thiserror::Error;

/// Every capability the kernel knows, indexed by its bit number (capability.h order).
pub const KNOWN_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The 14 capabilities Docker grants a container by default, in Docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const ALL: &str = "ALL";

/// Why a `--cap-add`/`--cap-drop` list was refused (Docker's wording).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CapabilityError {
    #[error("unknown capability: \"{0}\"")]
    Unknown(String),
    #[error("capability not supported by your kernel or not available in the current environment: \"{0}\"")]
    Unavailable(String),
    #[error("capability {0} has no oci-spec representation")]
    NotRepresentable(String),
}

/// The names of the capabilities set in a `CapBnd:` hex mask, in bit order.
pub fn capabilities_from_mask(mask: u64) -> Vec<String> {
    KNOWN_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

/// Upper-cases, adds the `CAP_` prefix and validates each name; `ALL` passes through.
///
/// `available` is the host's bounding set: a known capability missing from it is refused, as
/// Docker refuses `--cap-add SYS_RESOURCE` on a host that lacks it.
pub fn normalize_capabilities(
    caps: &[String],
    available: &[String],
) -> Result<Vec<String>, CapabilityError> {
    caps.iter()
        .map(|raw| {
            let upper = raw.to_uppercase();
            if upper == ALL {
                return Ok(upper);
            }
            let name = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if !KNOWN_CAPABILITIES.contains(&name.as_str()) {
                return Err(CapabilityError::Unknown(name));
            }
            if !available.contains(&name) {
                return Err(CapabilityError::Unavailable(name));
            }
            Ok(name)
        })
        .collect()
}

/// Docker's capability list for a container: the defaults adjusted by `cap_add`/`cap_drop`, or
/// every capability of the host's bounding set (`available`) when privileged.
pub fn tweak_capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    available: &[String],
) -> Result<Vec<String>, CapabilityError> {
    if privileged {
        return Ok(available.to_vec());
    }
    let defaults = || {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    };
    if cap_add.is_empty() && cap_drop.is_empty() {
        return Ok(defaults());
    }
    let drop = normalize_capabilities(cap_drop, available)?;
    let add = normalize_capabilities(cap_add, available)?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == ALL) {
        available
            .iter()
            .filter(|c| !drop.contains(c))
            .cloned()
            .collect()
    } else if drop.iter().any(|c| c == ALL) {
        add
    } else {
        let mut caps: Vec<String> = defaults();
        caps.retain(|c| !drop.contains(c));
        caps.extend(add);
        caps
    };
    // A name listed twice must not appear twice in the spec.
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    Ok(caps)
}

/// Converts capability names (`CAP_*`) to oci-spec values.
pub fn to_oci_capabilities(names: &[String]) -> Result<Vec<Capability>, CapabilityError> {
    names
        .iter()
        .map(|name| {
            serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| CapabilityError::NotRepresentable(name.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    /// The bounding set of this project's CI host: everything but CAP_SYS_RESOURCE.
    fn host() -> Vec<String> {
        capabilities_from_mask(0x01ff_feff_ffff)
    }

    #[test]
    fn mask_decoding() {
        let all = capabilities_from_mask(0x1ff_ffff_ffff);
        assert_eq!(all.len(), 41);
        let h = host();
        assert_eq!(h.len(), 40);
        assert!(!h.contains(&"CAP_SYS_RESOURCE".to_owned()));
        assert_eq!(
            capabilities_from_mask(0b101),
            s(&["CAP_CHOWN", "CAP_DAC_READ_SEARCH"])
        );
    }

    #[test]
    fn tweak_table() {
        let defaults = s(&DEFAULT_CAPABILITIES);
        let without = |drop: &[&str]| -> Vec<String> {
            defaults
                .iter()
                .filter(|c| !drop.contains(&c.as_str()))
                .cloned()
                .collect()
        };
        let with = |base: Vec<String>, add: &[&str]| -> Vec<String> {
            let mut v = base;
            v.extend(s(add));
            v
        };
        // (cap_add, cap_drop, privileged, expected list in order)
        type Case<'a> = (&'a [&'a str], &'a [&'a str], bool, Vec<String>);
        let cases: Vec<Case> = vec![
            (&[], &[], false, defaults.clone()),
            (
                &["NET_ADMIN"],
                &[],
                false,
                with(defaults.clone(), &["CAP_NET_ADMIN"]),
            ),
            (
                &["cap_sys_admin"],
                &[],
                false,
                with(defaults.clone(), &["CAP_SYS_ADMIN"]),
            ),
            (
                &["Sys_Ptrace"],
                &[],
                false,
                with(defaults.clone(), &["CAP_SYS_PTRACE"]),
            ),
            (&[], &["NET_RAW"], false, without(&["CAP_NET_RAW"])),
            (
                &[],
                &["cap_chown", "KILL"],
                false,
                without(&["CAP_CHOWN", "CAP_KILL"]),
            ),
            (&["NET_ADMIN"], &["ALL"], false, s(&["CAP_NET_ADMIN"])),
            (&[], &["all"], false, vec![]),
            (&["ALL"], &[], false, host()),
            (
                &["ALL"],
                &["SYS_ADMIN"],
                false,
                host()
                    .into_iter()
                    .filter(|c| c != "CAP_SYS_ADMIN")
                    .collect(),
            ),
            (&["CHOWN"], &[], false, defaults.clone()),
            (&[], &[], true, host()),
            (&["NET_ADMIN"], &["ALL"], true, host()),
        ];
        for (add, drop, privileged, want) in cases {
            let got = tweak_capabilities(&s(add), &s(drop), privileged, &host()).unwrap();
            assert_eq!(
                got, want,
                "add={add:?} drop={drop:?} privileged={privileged}"
            );
        }
    }

    #[test]
    fn tweak_errors() {
        let cases: Vec<(&[&str], &[&str], &str)> = vec![
            (&["FOO"], &[], "unknown capability: \"CAP_FOO\""),
            (&[], &["cap_bar"], "unknown capability: \"CAP_BAR\""),
            (
                &["SYS_RESOURCE"],
                &[],
                "capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\"",
            ),
        ];
        for (add, drop, want) in cases {
            let err = tweak_capabilities(&s(add), &s(drop), false, &host()).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn every_known_capability_converts() {
        let caps = to_oci_capabilities(&s(&KNOWN_CAPABILITIES)).unwrap();
        assert_eq!(caps.len(), 41);
        assert_eq!(caps[0], Capability::Chown);
    }
}
