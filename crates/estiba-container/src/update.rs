//! `docker update`: change a container's cgroup limits and restart policy, as moby's
//! `ContainerUpdate`: validate, merge the non-zero fields into the record, persist, and write
//! the running container's cgroup files (v1 or v2) directly, restoring the old record when the
//! kernel refuses.

use std::path::{Path, PathBuf};

use crate::error::{internal, ContainerError};
use crate::model::{Limits, RestartPolicy};
use crate::service::ContainerService;

/// Root of the cgroup filesystem.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Docker's smallest memory limit.
const MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;
/// The CFS period `--cpus` uses.
const DEFAULT_CPU_PERIOD_US: i64 = 100_000;

/// What `POST /containers/{id}/update` asks for; zero (or `None`) leaves a value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceUpdate {
    pub memory_bytes: i64,
    pub memory_swap_bytes: i64,
    pub memory_reservation_bytes: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub blkio_weight: u16,
    pub restart_policy: Option<RestartPolicy>,
}

fn invalid(m: &str) -> ContainerError {
    ContainerError::InvalidParameter(m.to_owned())
}

fn conflict(m: &str) -> ContainerError {
    ContainerError::Conflict(m.to_owned())
}

/// moby's `verifyPlatformContainerResources` checks that apply to an update (400s).
fn validate(u: &ResourceUpdate, online_cpus: i64) -> Result<(), ContainerError> {
    if u.nano_cpus > 0 && u.cpu_period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if u.nano_cpus > 0 && u.cpu_quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if u.nano_cpus < 0 || u.nano_cpus > online_cpus.saturating_mul(1_000_000_000) {
        return Err(invalid(&format!(
            "Range of CPUs is from 0.01 to {online_cpus}.00, as there are only {online_cpus} CPUs available"
        )));
    }
    if u.memory_bytes > 0 && u.memory_bytes < MIN_MEMORY_BYTES {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if u.memory_swap_bytes > 0 && u.memory_bytes > 0 && u.memory_bytes > u.memory_swap_bytes {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if u.cpu_period != 0 && !(1000..=1_000_000).contains(&u.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)",
        ));
    }
    if u.cpu_quota > 0 && u.cpu_quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if u.cpu_shares < 0 {
        return Err(invalid(&format!(
            "invalid CPU shares ({}): value must be a positive integer",
            u.cpu_shares
        )));
    }
    if u.blkio_weight > 0 && !(10..=1000).contains(&u.blkio_weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    Ok(())
}

/// moby's `UpdateContainer`: merges the non-zero fields of `u` into `l` (409s on conflicts
/// with what is already set).
fn merge(l: &mut Limits, u: &ResourceUpdate) -> Result<(), ContainerError> {
    if u.blkio_weight != 0 {
        l.blkio_weight = u.blkio_weight;
    }
    if u.cpu_shares != 0 {
        l.cpu_shares = u.cpu_shares;
    }
    if u.nano_cpus != 0 {
        if l.cpu_period != 0 {
            return Err(conflict(
                "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
            ));
        }
        if l.cpu_quota != 0 {
            return Err(conflict(
                "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
            ));
        }
        l.nano_cpus = u.nano_cpus;
    }
    if u.cpu_period != 0 {
        if l.nano_cpus != 0 {
            return Err(conflict(
                "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
            ));
        }
        l.cpu_period = u.cpu_period;
    }
    if u.cpu_quota != 0 {
        if l.nano_cpus != 0 {
            return Err(conflict(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            ));
        }
        l.cpu_quota = u.cpu_quota;
    }
    if !u.cpuset_cpus.is_empty() {
        l.cpuset_cpus = u.cpuset_cpus.clone();
    }
    if !u.cpuset_mems.is_empty() {
        l.cpuset_mems = u.cpuset_mems.clone();
    }
    if u.memory_bytes != 0 {
        if u.memory_bytes > l.memory_swap_bytes && u.memory_swap_bytes == 0 {
            return Err(conflict(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        l.memory_bytes = u.memory_bytes;
    }
    if u.memory_swap_bytes != 0 {
        l.memory_swap_bytes = u.memory_swap_bytes;
    }
    if u.memory_reservation_bytes != 0 {
        l.memory_reservation_bytes = u.memory_reservation_bytes;
    }
    if let Some(p) = u.pids_limit {
        l.pids_limit = Some(p);
    }
    Ok(())
}

/// One cgroup file to write: (controller dir under the root, or "" on v2; file; value).
type CgroupWrite = (&'static str, &'static str, String);

fn limit_or(value: i64, unlimited: &str) -> String {
    if value > 0 {
        value.to_string()
    } else {
        unlimited.to_owned()
    }
}

/// The CFS (quota, period) the limits ask for, if any.
fn cfs(l: &Limits) -> Option<(i64, i64)> {
    if l.nano_cpus > 0 {
        let quota = i64::try_from(
            i128::from(l.nano_cpus) * i128::from(DEFAULT_CPU_PERIOD_US) / 1_000_000_000,
        )
        .unwrap_or(i64::MAX);
        return Some((quota, DEFAULT_CPU_PERIOD_US));
    }
    if l.cpu_quota != 0 || l.cpu_period != 0 {
        let period = if l.cpu_period > 0 {
            l.cpu_period
        } else {
            DEFAULT_CPU_PERIOD_US
        };
        let quota = if l.cpu_quota > 0 { l.cpu_quota } else { -1 };
        return Some((quota, period));
    }
    None
}

/// The cgroup v1 files that carry `l`, in the order to write them.
fn v1_writes(l: &Limits) -> Vec<CgroupWrite> {
    let mut w = Vec::new();
    w.push((
        "memory",
        "memory.limit_in_bytes",
        limit_or(l.memory_bytes, "-1"),
    ));
    w.push((
        "memory",
        "memory.memsw.limit_in_bytes",
        limit_or(l.memory_swap_bytes, "-1"),
    ));
    w.push((
        "memory",
        "memory.soft_limit_in_bytes",
        limit_or(l.memory_reservation_bytes, "-1"),
    ));
    if l.cpu_shares > 0 {
        w.push(("cpu", "cpu.shares", l.cpu_shares.to_string()));
    }
    if let Some((quota, period)) = cfs(l) {
        w.push(("cpu", "cpu.cfs_period_us", period.to_string()));
        w.push(("cpu", "cpu.cfs_quota_us", quota.to_string()));
    }
    if !l.cpuset_cpus.is_empty() {
        w.push(("cpuset", "cpuset.cpus", l.cpuset_cpus.clone()));
    }
    if !l.cpuset_mems.is_empty() {
        w.push(("cpuset", "cpuset.mems", l.cpuset_mems.clone()));
    }
    if let Some(p) = l.pids_limit {
        w.push(("pids", "pids.max", limit_or(p, "max")));
    }
    if l.blkio_weight > 0 {
        w.push(("blkio", "blkio.weight", l.blkio_weight.to_string()));
    }
    w
}

/// The cgroup v2 files that carry `l` (runc's conversions of shares, swap and weights).
fn v2_writes(l: &Limits) -> Vec<CgroupWrite> {
    let mut w = Vec::new();
    w.push(("", "memory.max", limit_or(l.memory_bytes, "max")));
    let swap = match (l.memory_swap_bytes, l.memory_bytes) {
        (s, m) if s > 0 && m > 0 => (s - m).max(0).to_string(),
        _ => "max".to_owned(),
    };
    w.push(("", "memory.swap.max", swap));
    w.push((
        "",
        "memory.low",
        l.memory_reservation_bytes.max(0).to_string(),
    ));
    if l.cpu_shares > 0 {
        let weight = 1 + ((l.cpu_shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
        w.push(("", "cpu.weight", weight.to_string()));
    }
    if let Some((quota, period)) = cfs(l) {
        let quota = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_owned()
        };
        w.push(("", "cpu.max", format!("{quota} {period}")));
    }
    if !l.cpuset_cpus.is_empty() {
        w.push(("", "cpuset.cpus", l.cpuset_cpus.clone()));
    }
    if !l.cpuset_mems.is_empty() {
        w.push(("", "cpuset.mems", l.cpuset_mems.clone()));
    }
    if let Some(p) = l.pids_limit {
        w.push(("", "pids.max", limit_or(p, "max")));
    }
    if l.blkio_weight > 0 {
        let weight = 1 + ((i64::from(l.blkio_weight) - 10) * 9999) / 990;
        w.push(("", "io.weight", format!("default {weight}")));
    }
    w
}

fn write_cgroup(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

/// Writes the container's cgroup files. Files the kernel does not offer (no swap accounting,
/// no blkio weight) are skipped; v1's memory and memsw limits are ordered so the limit never
/// exceeds memsw in between.
fn apply(rel: &str, l: &Limits) -> Result<(), ContainerError> {
    let root = Path::new(CGROUP_ROOT);
    let v2 = root.join("cgroup.controllers").exists();
    let writes = if v2 { v2_writes(l) } else { v1_writes(l) };
    let path_of =
        |controller: &str, file: &str| -> PathBuf { root.join(controller).join(rel).join(file) };
    let mut pending_limit: Option<(PathBuf, String)> = None;
    for (controller, file, value) in writes {
        let path = path_of(controller, file);
        if !path.exists() {
            continue;
        }
        let result = write_cgroup(&path, &value);
        match (file, result) {
            (_, Ok(())) => {
                if file == "memory.memsw.limit_in_bytes" {
                    if let Some((p, v)) = pending_limit.take() {
                        write_cgroup(&p, &v)
                            .map_err(|e| internal(format!("write {}: {e}", p.display())))?;
                    }
                }
            }
            // Raising the limit above the current memsw: write memsw first, then retry.
            ("memory.limit_in_bytes", Err(_)) => pending_limit = Some((path, value)),
            (_, Err(e)) => return Err(internal(format!("write {}: {e}", path.display()))),
        }
    }
    if let Some((p, v)) = pending_limit {
        write_cgroup(&p, &v).map_err(|e| internal(format!("write {}: {e}", p.display())))?;
    }
    Ok(())
}

fn online_cpus() -> i64 {
    std::thread::available_parallelism()
        .map(|n| i64::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

impl ContainerService {
    /// `docker update`: returns Docker's warnings (limits this host cannot apply, discarded).
    pub fn update_resources(
        &self,
        name: &str,
        u: ResourceUpdate,
    ) -> Result<Vec<String>, ContainerError> {
        let c = self.get(name)?;
        validate(&u, online_cpus())?;
        let _op = c.op_lock();
        let before = c.snapshot();
        let cannot = |e: ContainerError| -> ContainerError {
            let text = format!("Cannot update container {}: {e}", before.id);
            match e {
                ContainerError::Conflict(_) => ContainerError::Conflict(text),
                ContainerError::InvalidParameter(_) => ContainerError::InvalidParameter(text),
                _ => ContainerError::Internal(text),
            }
        };
        let mut host = before.host.clone();
        merge(&mut host.limits, &u).map_err(cannot)?;
        // What create kept fits the host, so anything discarded here came with this update.
        let warnings =
            crate::sysinfo::adapt_limits(&mut host.limits, crate::sysinfo::CgroupSupport::host())
                .map_err(cannot)?;
        if let Some(policy) = &u.restart_policy {
            if !policy.name.is_empty() {
                crate::create::check_restart_policy(policy)?;
                if host.auto_remove && policy.name != "no" {
                    return Err(cannot(invalid(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container",
                    )));
                }
                host.restart_policy = policy.clone();
            }
        }
        let new_limits = host.limits.clone();
        let record = self.update(&c, move |r| r.host = host, false);
        if record.state.status.is_running() {
            if let Err(e) = apply(&record.cgroup_rel(), &new_limits) {
                // Put the old settings back, in the record and (best effort) in the cgroup.
                let old = before.host.clone();
                let old_limits = old.limits.clone();
                self.update(&c, move |r| r.host = old, false);
                let _ = apply(&record.cgroup_rel(), &old_limits);
                return Err(cannot(e));
            }
        }
        self.publish(&record, "update", &[]);
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(f: impl FnOnce(&mut ResourceUpdate)) -> ResourceUpdate {
        let mut u = ResourceUpdate::default();
        f(&mut u);
        u
    }

    #[test]
    fn validation() {
        let cases: Vec<(ResourceUpdate, Option<&str>)> = vec![
            (upd(|u| u.memory_bytes = 64 << 20), None),
            (
                upd(|u| u.memory_bytes = 1 << 20),
                Some("Minimum memory limit allowed is 6MB"),
            ),
            (
                upd(|u| {
                    u.nano_cpus = 500_000_000;
                    u.cpu_quota = 1000
                }),
                Some("Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
            ),
            (
                upd(|u| u.nano_cpus = 3_000_000_000),
                Some("Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
            ),
            (
                upd(|u| u.cpu_period = 10),
                Some("CPU cfs period can not be less"),
            ),
            (
                upd(|u| u.blkio_weight = 5),
                Some("Range of blkio weight is from 10 to 1000"),
            ),
            (
                upd(|u| {
                    u.memory_bytes = 64 << 20;
                    u.memory_swap_bytes = 32 << 20
                }),
                Some("Minimum memoryswap limit should be larger than memory limit"),
            ),
        ];
        for (u, want) in cases {
            let got = validate(&u, 2).err().map(|e| e.to_string());
            match want {
                None => assert_eq!(got, None, "{u:?}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.starts_with(w)),
                    "{u:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn merging() {
        let base = Limits {
            memory_bytes: 64 << 20,
            memory_swap_bytes: 128 << 20,
            ..Limits::default()
        };
        let mut l = base.clone();
        merge(&mut l, &upd(|u| u.memory_bytes = 100 << 20)).unwrap();
        assert_eq!(
            (l.memory_bytes, l.memory_swap_bytes),
            (100 << 20, 128 << 20)
        );

        let mut l = base.clone();
        let e = merge(&mut l, &upd(|u| u.memory_bytes = 300 << 20)).unwrap_err();
        assert!(
            e.to_string().starts_with("Memory limit should be smaller"),
            "{e}"
        );

        let mut l = base.clone();
        merge(
            &mut l,
            &upd(|u| {
                u.memory_bytes = 300 << 20;
                u.memory_swap_bytes = -1;
                u.pids_limit = Some(20);
                u.nano_cpus = 1_500_000_000;
            }),
        )
        .unwrap();
        assert_eq!(
            (
                l.memory_bytes,
                l.memory_swap_bytes,
                l.pids_limit,
                l.nano_cpus
            ),
            (300 << 20, -1, Some(20), 1_500_000_000)
        );
        let e = merge(&mut l, &upd(|u| u.cpu_quota = 5000)).unwrap_err();
        assert!(
            e.to_string().contains("NanoCPUs has already been set"),
            "{e}"
        );
    }

    #[test]
    fn cgroup_files() {
        let l = Limits {
            memory_bytes: 64 << 20,
            memory_swap_bytes: 128 << 20,
            nano_cpus: 500_000_000,
            cpu_shares: 512,
            pids_limit: Some(0),
            blkio_weight: 500,
            ..Limits::default()
        };
        let v1: Vec<String> = v1_writes(&l)
            .into_iter()
            .map(|(c, f, v)| format!("{c}/{f}={v}"))
            .collect();
        assert_eq!(
            v1,
            [
                "memory/memory.limit_in_bytes=67108864",
                "memory/memory.memsw.limit_in_bytes=134217728",
                "memory/memory.soft_limit_in_bytes=-1",
                "cpu/cpu.shares=512",
                "cpu/cpu.cfs_period_us=100000",
                "cpu/cpu.cfs_quota_us=50000",
                "pids/pids.max=max",
                "blkio/blkio.weight=500",
            ]
        );
        let v2: Vec<String> = v2_writes(&l)
            .into_iter()
            .map(|(_, f, v)| format!("{f}={v}"))
            .collect();
        assert_eq!(
            v2,
            [
                "memory.max=67108864",
                "memory.swap.max=67108864",
                "memory.low=0",
                "cpu.weight=20",
                "cpu.max=50000 100000",
                "pids.max=max",
                "io.weight=default 4950",
            ]
        );
    }
}
