//! What the host's cgroups can limit (moby's `pkg/sysinfo`), probed once per process, and
//! Docker's create-time adaptation of a container's limits to it: a limit the host cannot
//! apply is discarded with Docker's warning (the create response's `Warnings`, which the CLI
//! prints), instead of failing the start with a runtime error about a missing cgroup file.
//! A cgroup v2 host without the `pids` or `memory` controller delegated, or a v1 host booted
//! without swap accounting, are the usual cases.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::ContainerError;
use crate::model::Limits;

/// The limits this host's cgroups can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CgroupSupport {
    pub memory: bool,
    pub swap: bool,
    pub memory_reservation: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpuset: bool,
    pub pids: bool,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub read_bps: bool,
    pub write_bps: bool,
    pub read_iops: bool,
    pub write_iops: bool,
}

impl CgroupSupport {
    /// The host's, read once.
    pub(crate) fn host() -> CgroupSupport {
        static HOST: OnceLock<CgroupSupport> = OnceLock::new();
        *HOST.get_or_init(|| CgroupSupport::probe(Path::new("/sys/fs/cgroup")))
    }

    /// Reads a cgroup mount tree rooted at `root`: the unified hierarchy when `root` has
    /// `cgroup.controllers`, else v1 hierarchies mounted under it by controller name.
    pub(crate) fn probe(root: &Path) -> CgroupSupport {
        match std::fs::read_to_string(root.join("cgroup.controllers")) {
            Ok(list) => {
                let has = |name: &str| list.split_whitespace().any(|c| c == name);
                CgroupSupport {
                    memory: has("memory"),
                    swap: has("memory"),
                    memory_reservation: has("memory"),
                    cpu_shares: has("cpu"),
                    cpu_cfs: has("cpu"),
                    cpuset: has("cpuset"),
                    pids: has("pids"),
                    blkio_weight: has("io"),
                    blkio_weight_device: has("io"),
                    read_bps: has("io"),
                    write_bps: has("io"),
                    read_iops: has("io"),
                    write_iops: has("io"),
                }
            }
            Err(_) => {
                let file = |dir: &str, name: &str| -> PathBuf { root.join(dir).join(name) };
                let exists = |dir: &str, name: &str| file(dir, name).exists();
                CgroupSupport {
                    memory: exists("memory", "memory.limit_in_bytes"),
                    swap: exists("memory", "memory.memsw.limit_in_bytes"),
                    memory_reservation: exists("memory", "memory.soft_limit_in_bytes"),
                    cpu_shares: exists("cpu", "cpu.shares"),
                    cpu_cfs: exists("cpu", "cpu.cfs_quota_us"),
                    cpuset: exists("cpuset", "cpuset.cpus"),
                    pids: exists("pids", "cgroup.procs"),
                    // CFQ's blkio.weight, or BFQ's blkio.bfq.* (whose weight file only
                    // appears below the root; the runtime writes it there).
                    blkio_weight: exists("blkio", "blkio.weight")
                        || exists("blkio", "blkio.bfq.io_serviced"),
                    blkio_weight_device: exists("blkio", "blkio.weight_device"),
                    read_bps: exists("blkio", "blkio.throttle.read_bps_device"),
                    write_bps: exists("blkio", "blkio.throttle.write_bps_device"),
                    read_iops: exists("blkio", "blkio.throttle.read_iops_device"),
                    write_iops: exists("blkio", "blkio.throttle.write_iops_device"),
                }
            }
        }
    }
}

/// moby's `verifyPlatformContainerResources` for the limits estiba honours, at create and
/// update: refuses `--cpus` without CFS and discards what the host cannot apply; returns
/// Docker's warnings, in Docker's order.
pub(crate) fn adapt_limits(
    limits: &mut Limits,
    host: CgroupSupport,
) -> Result<Vec<String>, ContainerError> {
    const DISCARDED: &str = "or the cgroup is not mounted.";
    let mut warnings = Vec::new();
    if limits.memory_bytes > 0 && !host.memory {
        warnings.push(format!(
            "Your kernel does not support memory limit capabilities {DISCARDED} Limitation discarded."
        ));
        limits.memory_bytes = 0;
        limits.memory_swap_bytes = 0;
    }
    if limits.memory_bytes > 0 && limits.memory_swap_bytes != -1 && !host.swap {
        warnings.push(format!(
            "Your kernel does not support swap limit capabilities {DISCARDED} Memory limited without swap."
        ));
        limits.memory_swap_bytes = -1;
    }
    if limits.memory_reservation_bytes > 0 && !host.memory_reservation {
        warnings.push(format!(
            "Your kernel does not support memory soft limit capabilities {DISCARDED} Limitation discarded."
        ));
        limits.memory_reservation_bytes = 0;
    }
    if limits.nano_cpus > 0 && !host.cpu_cfs {
        return Err(ContainerError::InvalidParameter(
            "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted"
                .to_string(),
        ));
    }
    if limits.cpu_shares > 0 && !host.cpu_shares {
        warnings.push(format!(
            "Your kernel does not support CPU shares {DISCARDED} Shares discarded."
        ));
        limits.cpu_shares = 0;
    }
    if limits.cpu_period > 0 && !host.cpu_cfs {
        warnings
            .push("Your kernel does not support CPU CFS scheduler. CPU period discarded.".into());
        limits.cpu_period = 0;
    }
    if limits.cpu_quota > 0 && !host.cpu_cfs {
        warnings
            .push("Your kernel does not support CPU CFS scheduler. CPU quota discarded.".into());
        limits.cpu_quota = 0;
    }
    if (!limits.cpuset_cpus.is_empty() || !limits.cpuset_mems.is_empty()) && !host.cpuset {
        warnings.push(format!(
            "Your kernel does not support cpuset {DISCARDED} Cpuset discarded."
        ));
        limits.cpuset_cpus.clear();
        limits.cpuset_mems.clear();
    }
    if limits.blkio_weight > 0 && !host.blkio_weight {
        warnings.push(format!(
            "Your kernel does not support Block I/O weight {DISCARDED} Weight discarded."
        ));
        limits.blkio_weight = 0;
    }
    let per_device = [
        (
            host.blkio_weight_device,
            &mut limits.blkio_weight_device,
            "Block I/O weight_device",
            "Weight-device discarded.",
        ),
        (
            host.read_bps,
            &mut limits.blkio_device_read_bps,
            "BPS Block I/O read limit",
            "Block I/O BPS read limit discarded.",
        ),
        (
            host.write_bps,
            &mut limits.blkio_device_write_bps,
            "BPS Block I/O write limit",
            "Block I/O BPS write limit discarded.",
        ),
        (
            host.read_iops,
            &mut limits.blkio_device_read_iops,
            "IOPS Block read limit",
            "Block I/O IOPS read limit discarded.",
        ),
        (
            host.write_iops,
            &mut limits.blkio_device_write_iops,
            "IOPS Block write limit",
            "Block I/O IOPS write limit discarded.",
        ),
    ];
    for (supported, list, what, outcome) in per_device {
        if !list.is_empty() && !supported {
            warnings.push(format!(
                "Your kernel does not support {what} {DISCARDED} {outcome}"
            ));
            list.clear();
        }
    }
    if limits.pids_limit.is_some_and(|n| n > 0) && !host.pids {
        warnings.push(format!(
            "Your kernel does not support pids limit capabilities {DISCARDED} PIDs limit discarded."
        ));
        limits.pids_limit = None;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, "").expect("write");
        }
        dir
    }

    #[test]
    fn probes_v1_hierarchies_and_the_unified_one() {
        let v1 = tree(&[
            "memory/memory.limit_in_bytes",
            "memory/memory.soft_limit_in_bytes",
            "cpu/cpu.shares",
            "cpu/cpu.cfs_quota_us",
            "pids/cgroup.procs",
            "blkio/blkio.bfq.io_serviced",
        ]);
        let s = CgroupSupport::probe(v1.path());
        assert!(s.memory && s.memory_reservation && s.cpu_shares && s.cpu_cfs && s.pids);
        assert!(s.blkio_weight);
        assert!(!s.swap, "no memsw file: no swap accounting");
        assert!(!s.cpuset);

        let v2 = tree(&[]);
        std::fs::write(v2.path().join("cgroup.controllers"), "cpuset cpu io\n").expect("write");
        let s = CgroupSupport::probe(v2.path());
        assert!(s.cpuset && s.cpu_cfs && s.cpu_shares && s.blkio_weight);
        assert!(!s.memory && !s.swap && !s.pids);
    }

    #[test]
    fn discards_what_the_host_cannot_limit_with_dockers_warnings() {
        let all = CgroupSupport {
            memory: true,
            swap: true,
            memory_reservation: true,
            cpu_shares: true,
            cpu_cfs: true,
            cpuset: true,
            pids: true,
            blkio_weight: true,
            blkio_weight_device: true,
            read_bps: true,
            write_bps: true,
            read_iops: true,
            write_iops: true,
        };
        let asked = Limits {
            memory_bytes: 64 << 20,
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpuset_cpus: "0".into(),
            pids_limit: Some(20),
            blkio_weight: 300,
            ..Limits::default()
        };
        let mut kept = asked.clone();
        assert!(adapt_limits(&mut kept, all).expect("adapt").is_empty());
        assert_eq!(kept, asked);

        let mut limits = asked.clone();
        let warnings = adapt_limits(&mut limits, CgroupSupport::default()).expect("adapt");
        assert_eq!(
            warnings,
            [
                "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
                "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
                "Your kernel does not support CPU CFS scheduler. CPU quota discarded.",
                "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
                "Your kernel does not support pids limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
            ]
        );
        assert_eq!(limits, Limits::default());

        let mut no_swap = Limits {
            memory_bytes: 64 << 20,
            ..Limits::default()
        };
        let warnings = adapt_limits(&mut no_swap, CgroupSupport { swap: false, ..all });
        assert_eq!(
            warnings.expect("adapt"),
            ["Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."]
        );
        assert_eq!(no_swap.memory_swap_bytes, -1);

        let mut throttled = Limits {
            blkio_device_read_bps: vec![crate::model::ThrottleSetting {
                path: "/dev/vda".into(),
                value: 1 << 20,
            }],
            ..Limits::default()
        };
        let warnings = adapt_limits(
            &mut throttled,
            CgroupSupport {
                read_bps: false,
                ..all
            },
        );
        assert_eq!(
            warnings.expect("adapt"),
            ["Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."]
        );
        assert!(throttled.blkio_device_read_bps.is_empty());

        let mut cpus = Limits {
            nano_cpus: 500_000_000,
            ..Limits::default()
        };
        assert!(adapt_limits(&mut cpus, CgroupSupport::default()).is_err());

        // -1 is how an update lifts a PIDs limit: kept, and no warning.
        let mut unlimited = Limits {
            pids_limit: Some(-1),
            ..Limits::default()
        };
        assert!(adapt_limits(&mut unlimited, CgroupSupport::default())
            .expect("adapt")
            .is_empty());
        assert_eq!(unlimited.pids_limit, Some(-1));
    }
}
