//! `docker stats`: one sample of a running container's cgroup (v1 or v2) and of the host's CPU
//! time, in domain form; the daemon shapes Docker's `StatsResponse` from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ContainerError;
use crate::service::ContainerService;

/// Root of the cgroup filesystem.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Largest cgroup file read (memory.stat is a few KiB).
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Most lines kept from a keyed cgroup file.
const MAX_KEYS: usize = 256;
/// Nanoseconds per USER_HZ tick (Linux' USER_HZ is 100 on every architecture we run on).
const NANOS_PER_TICK: u64 = 10_000_000;
/// cgroup v1 reports "no limit" as a page-aligned i64::MAX; anything above this is unlimited.
const UNLIMITED_ABOVE: u64 = 1 << 62;

/// CPU time of a cgroup, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSample {
    pub total_ns: u64,
    pub percpu_ns: Vec<u64>,
    pub kernel_ns: u64,
    pub user_ns: u64,
    /// Host CPU time since boot (all CPUs), Docker's `system_cpu_usage`.
    pub system_ns: u64,
    pub online_cpus: u32,
    pub throttling_periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

/// One block-I/O counter (`op` is "read", "write", "sync", "async", "total", ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// A cgroup sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupSample {
    pub cpu: CpuSample,
    pub memory_usage_bytes: u64,
    pub memory_max_usage_bytes: u64,
    /// The limit, or the host's memory when unlimited (as Docker reports it).
    pub memory_limit_bytes: u64,
    /// memory.stat as it is.
    pub memory_stats: BTreeMap<String, u64>,
    pub pids_current: u64,
    /// 0 when unlimited.
    pub pids_limit: u64,
    pub io_service_bytes: Vec<BlkioEntry>,
    pub io_serviced: Vec<BlkioEntry>,
}

/// What `stats` returns: the container, and its cgroup when it runs.
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub sample: Option<CgroupSample>,
}

fn read(path: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(MAX_FILE_BYTES).read_to_string(&mut s).ok()?;
    Some(s)
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
pub(crate) fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .take(MAX_KEYS)
        .collect()
}

/// blkio.throttle.io_service_bytes (v1): `8:0 Read 4096` lines (the `Total` line skipped).
pub(crate) fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, value) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .take(MAX_KEYS)
        .collect()
}

/// io.stat (v2): `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`, as Docker maps it to v1's shape:
/// (service bytes, serviced) with ops "read" and "write".
pub(crate) fn parse_io_v2(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines().take(MAX_KEYS) {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it
            .next()
            .and_then(|d| d.split_once(':'))
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ios, "read"),
                "wios" => (&mut ios, "write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// The host's CPU time since boot from /proc/stat's `cpu` line, in nanoseconds (moby's
/// `getSystemCPUUsage`: the first seven fields).
pub(crate) fn parse_proc_stat(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Some(ticks.saturating_mul(NANOS_PER_TICK))
}

fn host_memory_bytes() -> u64 {
    read(Path::new("/proc/meminfo"))
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib.saturating_mul(1024))
        })
        .unwrap_or(0)
}

fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .ok()
        .and_then(|n| u32::try_from(n.get()).ok())
        .unwrap_or(1)
}

fn limit_or_host(limit: Option<u64>) -> u64 {
    match limit {
        Some(l) if l < UNLIMITED_ABOVE => l,
        _ => host_memory_bytes(),
    }
}

/// A v1 sample; `rel` is the cgroup path under each controller ("estiba/<id>").
fn sample_v1(rel: &str) -> Option<CgroupSample> {
    let dir = |controller: &str| PathBuf::from(CGROUP_ROOT).join(controller).join(rel);
    let mem = dir("memory");
    let cpuacct = dir("cpuacct");
    // No memory cgroup: the container is gone (or never got one).
    let usage = read_u64(&mem.join("memory.usage_in_bytes"))?;
    let stat = read(&cpuacct.join("cpuacct.stat"))
        .map(|t| parse_keyed(&t))
        .unwrap_or_default();
    let throttling = read(&dir("cpu").join("cpu.stat"))
        .map(|t| parse_keyed(&t))
        .unwrap_or_default();
    let blkio = dir("blkio");
    let cpu = CpuSample {
        total_ns: read_u64(&cpuacct.join("cpuacct.usage")).unwrap_or(0),
        percpu_ns: read(&cpuacct.join("cpuacct.usage_percpu"))
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .take(MAX_KEYS)
                    .collect()
            })
            .unwrap_or_default(),
        kernel_ns: stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK,
        user_ns: stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK,
        system_ns: 0,
        online_cpus: 0,
        throttling_periods: throttling.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: throttling.get("nr_throttled").copied().unwrap_or(0),
        throttled_ns: throttling.get("throttled_time").copied().unwrap_or(0),
    };
    let pids = dir("pids");
    Some(CgroupSample {
        cpu,
        memory_usage_bytes: usage,
        memory_max_usage_bytes: read_u64(&mem.join("memory.max_usage_in_bytes")).unwrap_or(0),
        memory_limit_bytes: limit_or_host(read_u64(&mem.join("memory.limit_in_bytes"))),
        memory_stats: read(&mem.join("memory.stat"))
            .map(|t| parse_keyed(&t))
            .unwrap_or_default(),
        pids_current: read_u64(&pids.join("pids.current")).unwrap_or(0),
        pids_limit: read_u64(&pids.join("pids.max")).unwrap_or(0),
        io_service_bytes: read(&blkio.join("blkio.throttle.io_service_bytes"))
            .map(|t| parse_blkio_v1(&t))
            .unwrap_or_default(),
        io_serviced: read(&blkio.join("blkio.throttle.io_serviced"))
            .map(|t| parse_blkio_v1(&t))
            .unwrap_or_default(),
    })
}

/// A v2 sample; `rel` is the cgroup path under the unified root.
fn sample_v2(rel: &str) -> Option<CgroupSample> {
    let dir = PathBuf::from(CGROUP_ROOT).join(rel);
    let usage = read_u64(&dir.join("memory.current"))?;
    let cpu_stat = read(&dir.join("cpu.stat"))
        .map(|t| parse_keyed(&t))
        .unwrap_or_default();
    let us = |k: &str| cpu_stat.get(k).copied().unwrap_or(0).saturating_mul(1000);
    let (io_service_bytes, io_serviced) = read(&dir.join("io.stat"))
        .map(|t| parse_io_v2(&t))
        .unwrap_or_default();
    Some(CgroupSample {
        cpu: CpuSample {
            total_ns: us("usage_usec"),
            percpu_ns: Vec::new(),
            kernel_ns: us("system_usec"),
            user_ns: us("user_usec"),
            system_ns: 0,
            online_cpus: 0,
            throttling_periods: cpu_stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: cpu_stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_ns: us("throttled_usec"),
        },
        memory_usage_bytes: usage,
        memory_max_usage_bytes: 0,
        memory_limit_bytes: limit_or_host(read_u64(&dir.join("memory.max"))),
        memory_stats: read(&dir.join("memory.stat"))
            .map(|t| parse_keyed(&t))
            .unwrap_or_default(),
        pids_current: read_u64(&dir.join("pids.current")).unwrap_or(0),
        pids_limit: read_u64(&dir.join("pids.max")).unwrap_or(0),
        io_service_bytes,
        io_serviced,
    })
}

impl ContainerService {
    /// One stats sample of a container: `sample` is `None` when it does not run.
    pub fn stats(&self, name: &str) -> Result<StatsSample, ContainerError> {
        let c = self.get(name)?;
        let record = c.snapshot();
        let mut out = StatsSample {
            id: record.id.clone(),
            name: record.name.clone(),
            sample: None,
        };
        if !record.state.status.is_running() {
            return Ok(out);
        }
        // The cgroups path the spec names, relative to each hierarchy.
        let rel = record.cgroup_rel();
        let sample = if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
            sample_v2(&rel)
        } else {
            sample_v1(&rel)
        };
        out.sample = sample.map(|mut s| {
            s.cpu.system_ns = read(Path::new("/proc/stat"))
                .and_then(|t| parse_proc_stat(&t))
                .unwrap_or(0);
            s.cpu.online_cpus = if s.cpu.percpu_ns.is_empty() {
                online_cpus()
            } else {
                u32::try_from(s.cpu.percpu_ns.len()).unwrap_or(u32::MAX)
            };
            s
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let m = parse_keyed("cache 4096\nrss 8192\nbogus\nx notanumber\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["rss"], 8192);
    }

    #[test]
    fn blkio_v1_lines() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
    }

    #[test]
    fn io_v2_lines() {
        let (bytes, ios) = parse_io_v2("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n");
        let ops: Vec<_> = bytes.iter().map(|e| (e.op.as_str(), e.value)).collect();
        assert_eq!(ops, [("read", 10), ("write", 20)]);
        assert_eq!(ios.len(), 2);
    }

    #[test]
    fn proc_stat_cpu_line() {
        let text = "cpu  10 0 5 100 1 0 2 7 0 0\ncpu0 1 2 3 4 5 6 7\n";
        // The first seven fields (user..softirq), not steal.
        assert_eq!(parse_proc_stat(text), Some(118 * NANOS_PER_TICK));
        assert_eq!(parse_proc_stat("nothing"), None);
    }
}
