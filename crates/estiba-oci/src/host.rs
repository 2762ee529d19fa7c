//! Facts about the host that shape a spec: the capability bounding set, which sysctls exist,
//! which thermal-throttle files need masking. Read once at daemon start-up.

use std::path::Path;

use thiserror::Error;

use crate::caps::{capabilities_from_mask, KNOWN_CAPABILITIES};

/// Why host facts could not be read.
#[derive(Debug, Error)]
pub enum HostError {
    #[error("read {path}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no CapBnd line in /proc/self/status")]
    NoBoundingSet,
    #[error("bad CapBnd value {0:?} in /proc/self/status")]
    BadBoundingSet(String),
}

/// What the spec builder needs to know about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Capabilities in the daemon's bounding set, in bit order: what `--privileged` grants and
    /// what `--cap-add` may ask for.
    pub bounding_capabilities: Vec<String>,
    /// `/proc/sys/net/ipv4/ping_group_range` exists.
    pub has_ping_group_range: bool,
    /// `/proc/sys/net/ipv4/ip_unprivileged_port_start` exists.
    pub has_unprivileged_port_start: bool,
    /// `/sys/devices/system/cpu/cpuN/thermal_throttle` paths present on this host; Docker masks
    /// them (GHSA-6fw5-f8r9-fgfm).
    pub thermal_throttle_paths: Vec<String>,
}

impl Default for HostInfo {
    /// A host with every capability and every sysctl, and no thermal-throttle files.
    fn default() -> Self {
        HostInfo {
            bounding_capabilities: KNOWN_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
            has_ping_group_range: true,
            has_unprivileged_port_start: true,
            thermal_throttle_paths: Vec::new(),
        }
    }
}

/// Most CPUs we look at when listing thermal-throttle paths.
const MAX_CPUS: u32 = 8192;

/// Parses a kernel CPU list such as `0-3,8,10-11` (bounded by [`MAX_CPUS`]).
pub fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse::<u32>(), hi.parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        if let (Ok(lo), Ok(hi)) = (lo, hi) {
            for cpu in lo..=hi.min(MAX_CPUS) {
                if cpus.len() as u32 >= MAX_CPUS {
                    return cpus;
                }
                cpus.push(cpu);
            }
        }
    }
    cpus
}

/// Parses the `CapBnd:` line of a `/proc/<pid>/status` text.
pub fn bounding_set_from_status(status: &str) -> Result<Vec<String>, HostError> {
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .ok_or(HostError::NoBoundingSet)?
        .trim();
    let mask =
        u64::from_str_radix(value, 16).map_err(|_| HostError::BadBoundingSet(value.to_owned()))?;
    Ok(capabilities_from_mask(mask))
}

impl HostInfo {
    /// Reads the facts from `/proc` and `/sys`.
    pub fn detect() -> Result<HostInfo, HostError> {
        let status =
            std::fs::read_to_string("/proc/self/status").map_err(|source| HostError::Read {
                path: "/proc/self/status",
                source,
            })?;
        let bounding_capabilities = bounding_set_from_status(&status)?;
        let possible =
            std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
        let thermal_throttle_paths = parse_cpu_list(&possible)
            .into_iter()
            .map(|cpu| format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle"))
            .filter(|p| Path::new(p).exists())
            .collect();
        Ok(HostInfo {
            bounding_capabilities,
            has_ping_group_range: Path::new("/proc/sys/net/ipv4/ping_group_range").exists(),
            has_unprivileged_port_start: Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                .exists(),
            thermal_throttle_paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let cases: [(&str, &[u32]); 5] = [
            ("0-1\n", &[0, 1]),
            ("0", &[0]),
            ("0-2,5,7-8", &[0, 1, 2, 5, 7, 8]),
            ("", &[]),
            ("x", &[]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_cpu_list(input), want, "{input:?}");
        }
        assert_eq!(parse_cpu_list("0-4294967295").len(), MAX_CPUS as usize);
    }

    #[test]
    fn bounding_set_parsing() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        let caps = bounding_set_from_status(status).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        assert!(matches!(
            bounding_set_from_status("Name: x\n"),
            Err(HostError::NoBoundingSet)
        ));
        assert!(matches!(
            bounding_set_from_status("CapBnd: zz\n"),
            Err(HostError::BadBoundingSet(_))
        ));
    }

    #[test]
    fn detect_reads_this_host() {
        let host = HostInfo::detect().unwrap();
        // Every Linux process has CAP_CHOWN in its bounding set unless deliberately dropped.
        assert!(host.bounding_capabilities.iter().any(|c| c == "CAP_CHOWN"));
        assert!(host
            .thermal_throttle_paths
            .iter()
            .all(|p| Path::new(p).exists()));
    }
}
