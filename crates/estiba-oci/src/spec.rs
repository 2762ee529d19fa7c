//! Assembles the OCI runtime spec (`config.json`) from a [`SpecInput`], as moby's
//! `createSpec` does.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Box as ConsoleBox, BoxBuilder, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder,
    LinuxCpu, LinuxCpuBuilder, LinuxDevice, LinuxMemory, LinuxMemoryBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPids, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder, Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::caps::{to_oci_capabilities, tweak_capabilities};
use crate::devices::{allow_all_devices_rule, default_device_rules, parse_device_cgroup_rule};
use crate::mounts::{build_mounts, INIT_PATH_IN_CONTAINER};
use crate::options::{CgroupnsMode, IpcMode, NetworkMode, PidMode, Resources, SpecInput, UtsMode};
use crate::SpecError;

/// The OCI runtime-spec version written into `ociVersion`.
pub const OCI_VERSION: &str = "1.2.1";

/// Docker's masked paths (moby 28), before the host's thermal-throttle files.
pub const DEFAULT_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn build_err(e: impl std::fmt::Display) -> SpecError {
    SpecError::Build(e.to_string())
}

fn namespace(typ: LinuxNamespaceType, path: Option<&PathBuf>) -> Result<LinuxNamespace, SpecError> {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(p) => b.path(p.clone()).build(),
        None => b.build(),
    }
    .map_err(build_err)
}

/// moby's `WithNamespaces`: mount, network, uts, pid, ipc (that order), adjusted per mode.
fn namespaces(input: &SpecInput) -> Result<Vec<LinuxNamespace>, SpecError> {
    let o = &input.options;
    let mut out = vec![namespace(LinuxNamespaceType::Mount, None)?];
    match &o.network {
        NetworkMode::Host => {}
        NetworkMode::Path(p) => out.push(namespace(LinuxNamespaceType::Network, Some(p))?),
        NetworkMode::Private | NetworkMode::None => {
            out.push(namespace(LinuxNamespaceType::Network, None)?)
        }
    }
    if o.uts == UtsMode::Private {
        out.push(namespace(LinuxNamespaceType::Uts, None)?);
    }
    match &o.pid {
        PidMode::Host => {}
        PidMode::Path(p) => out.push(namespace(LinuxNamespaceType::Pid, Some(p))?),
        PidMode::Private => out.push(namespace(LinuxNamespaceType::Pid, None)?),
    }
    match &o.ipc {
        IpcMode::Host => {}
        IpcMode::Path { ns, .. } => out.push(namespace(LinuxNamespaceType::Ipc, Some(ns))?),
        IpcMode::Private | IpcMode::None => out.push(namespace(LinuxNamespaceType::Ipc, None)?),
    }
    if o.cgroupns == CgroupnsMode::Private {
        out.push(namespace(LinuxNamespaceType::Cgroup, None)?);
    }
    Ok(out)
}

/// moby's `getMemoryResources`: only positive values are set; the OOM-killer flag always is.
fn memory(r: &Resources) -> Result<LinuxMemory, SpecError> {
    let mut b = LinuxMemoryBuilder::default().disable_oom_killer(r.oom_kill_disable);
    if r.memory_bytes > 0 {
        b = b.limit(r.memory_bytes);
    }
    if r.memory_reservation_bytes > 0 {
        b = b.reservation(r.memory_reservation_bytes);
    }
    if r.memory_swap_bytes > 0 {
        b = b.swap(r.memory_swap_bytes);
    }
    if let Some(s) = r.memory_swappiness {
        if (0..=100).contains(&s) {
            b = b.swappiness(s as u64);
        }
    }
    b.build().map_err(build_err)
}

/// moby's `getCPUResources`: `--cpus` becomes quota over a 100 ms period; explicit
/// `--cpu-period`/`--cpu-quota` win.
fn cpu(r: &Resources) -> Result<Option<LinuxCpu>, SpecError> {
    let mut b = LinuxCpuBuilder::default();
    let mut any = false;
    if r.cpu_shares != 0 {
        let shares = u64::try_from(r.cpu_shares).map_err(|_| SpecError::CpuShares(r.cpu_shares))?;
        b = b.shares(shares);
        any = true;
    }
    if !r.cpuset_cpus.is_empty() {
        b = b.cpus(r.cpuset_cpus.clone());
        any = true;
    }
    if !r.cpuset_mems.is_empty() {
        b = b.mems(r.cpuset_mems.clone());
        any = true;
    }
    if r.nano_cpus > 0 {
        const PERIOD_US: u64 = 100_000;
        let quota = i64::try_from(i128::from(r.nano_cpus) * i128::from(PERIOD_US) / 1_000_000_000)
            .map_err(|_| SpecError::Build("cpu quota overflow".into()))?;
        b = b.period(PERIOD_US).quota(quota);
        any = true;
    }
    if r.cpu_period != 0 {
        let period = u64::try_from(r.cpu_period).map_err(|_| SpecError::CpuPeriod(r.cpu_period))?;
        b = b.period(period);
        any = true;
    }
    if r.cpu_quota != 0 {
        b = b.quota(r.cpu_quota);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    b.build().map(Some).map_err(build_err)
}

fn pids(r: &Resources) -> Result<Option<LinuxPids>, SpecError> {
    let Some(limit) = r.pids_limit else {
        return Ok(None);
    };
    let limit = if limit <= 0 { -1 } else { limit };
    LinuxPidsBuilder::default()
        .limit(limit)
        .build()
        .map(Some)
        .map_err(build_err)
}

fn resources(input: &SpecInput) -> Result<LinuxResources, SpecError> {
    let o = &input.options;
    let r = &o.resources;
    let devices = if o.privileged {
        vec![allow_all_devices_rule()?]
    } else {
        let mut rules = default_device_rules()?;
        rules.extend(o.devices.iter().map(|(_, rule)| rule.clone()));
        for text in &o.device_cgroup_rules {
            rules.push(parse_device_cgroup_rule(text)?);
        }
        rules
    };
    let mut block_io = LinuxBlockIoBuilder::default();
    if r.blkio_weight != 0 {
        block_io = block_io.weight(r.blkio_weight);
    }
    let throttles = |list: &[(i64, i64, u64)]| -> Result<Vec<LinuxThrottleDevice>, SpecError> {
        list.iter()
            .map(|&(major, minor, rate)| {
                LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(rate)
                    .build()
                    .map_err(build_err)
            })
            .collect()
    };
    if !r.throttle_read_bps.is_empty() {
        block_io = block_io.throttle_read_bps_device(throttles(&r.throttle_read_bps)?);
    }
    if !r.throttle_write_bps.is_empty() {
        block_io = block_io.throttle_write_bps_device(throttles(&r.throttle_write_bps)?);
    }
    if !r.throttle_read_iops.is_empty() {
        block_io = block_io.throttle_read_iops_device(throttles(&r.throttle_read_iops)?);
    }
    if !r.throttle_write_iops.is_empty() {
        block_io = block_io.throttle_write_iops_device(throttles(&r.throttle_write_iops)?);
    }
    if !r.weight_device.is_empty() {
        let weights = r
            .weight_device
            .iter()
            .map(|&(major, minor, weight)| {
                LinuxWeightDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .weight(weight)
                    .build()
                    .map_err(build_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        block_io = block_io.weight_device(weights);
    }
    let mut b = LinuxResourcesBuilder::default()
        .devices(devices)
        .memory(memory(r)?)
        .block_io(block_io.build().map_err(build_err)?);
    if let Some(c) = cpu(r)? {
        b = b.cpu(c);
    }
    if let Some(p) = pids(r)? {
        b = b.pids(p);
    }
    b.build().map_err(build_err)
}

/// The device nodes to create: a privileged container's host devices, and the `--device`
/// ones (a mapping to another path in the container is added beside the host's).
fn devices(input: &SpecInput) -> Vec<LinuxDevice> {
    let mut out = if input.options.privileged {
        input.host_devices.clone()
    } else {
        Vec::new()
    };
    for (dev, _) in &input.options.devices {
        if !out.iter().any(|d| d.path() == dev.path()) {
            out.push(dev.clone());
        }
    }
    out
}

fn sysctls(input: &SpecInput) -> HashMap<String, String> {
    let o = &input.options;
    let mut out = HashMap::new();
    if !o.domainname.is_empty() {
        out.insert("kernel.domainname".to_owned(), o.domainname.clone());
    }
    // Only for a namespace we create: never the host's or another container's.
    if matches!(o.network, NetworkMode::Private | NetworkMode::None) {
        if input.host.has_ping_group_range {
            out.insert(
                "net.ipv4.ping_group_range".to_owned(),
                "0 2147483647".to_owned(),
            );
        }
        if input.host.has_unprivileged_port_start {
            out.insert(
                "net.ipv4.ip_unprivileged_port_start".to_owned(),
                "0".to_owned(),
            );
        }
    }
    out.extend(o.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

fn masked_and_readonly(input: &SpecInput) -> (Vec<String>, Vec<String>) {
    let o = &input.options;
    if o.privileged {
        return (Vec::new(), Vec::new());
    }
    let masked = o.masked_paths.clone().unwrap_or_else(|| {
        DEFAULT_MASKED_PATHS
            .iter()
            .map(|p| (*p).to_owned())
            .chain(input.host.thermal_throttle_paths.iter().cloned())
            .collect()
    });
    let readonly = o.readonly_paths.clone().unwrap_or_else(|| {
        DEFAULT_READONLY_PATHS
            .iter()
            .map(|p| (*p).to_owned())
            .collect()
    });
    (masked, readonly)
}

/// `process`: argv (behind `--init` when asked), user, env, capabilities, rlimits, TTY.
fn process(input: &SpecInput, use_init: bool) -> Result<Process, SpecError> {
    let o = &input.options;
    let args: Vec<String> = if use_init {
        [INIT_PATH_IN_CONTAINER, "--"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(input.args.iter().cloned())
            .collect()
    } else {
        input.args.clone()
    };

    let cap_names = tweak_capabilities(
        &o.cap_add,
        &o.cap_drop,
        o.privileged,
        &input.host.bounding_capabilities,
    )?;
    let caps: std::collections::HashSet<_> = to_oci_capabilities(&cap_names)?.into_iter().collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(build_err)?;
    // oci-spec's builders start from its own `Default` (youki's defaults), not from empty:
    // every field Docker leaves out is cleared explicitly here and below.
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);

    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.additional_gids.clone())
        .build()
        .map_err(build_err)?;

    let rlimits = o
        .ulimits
        .iter()
        .map(|u| u.to_rlimit())
        .collect::<Result<Vec<_>, _>>()?;

    let cwd = if input.cwd.is_empty() {
        "/"
    } else {
        input.cwd.as_str()
    };
    let mut process = ProcessBuilder::default()
        .terminal(o.tty)
        .user(user)
        .args(args)
        .env(input.env.clone())
        .cwd(cwd)
        .capabilities(capabilities)
        .oom_score_adj(o.oom_score_adj)
        .build()
        .map_err(build_err)?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_no_new_privileges(o.no_new_privileges.then_some(true));
    process.set_console_size(None);
    if let (true, Some((height, width))) = (o.tty, o.console_size) {
        if height > 0 || width > 0 {
            let size: ConsoleBox = BoxBuilder::default()
                .height(height)
                .width(width)
                .build()
                .map_err(build_err)?;
            process.set_console_size(Some(size));
        }
    }
    Ok(process)
}

/// Builds the container's OCI runtime spec with Docker's defaults.
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    let o = &input.options;
    if input.args.is_empty() {
        return Err(SpecError::NoCommand);
    }

    // --init only makes sense as PID 1 of a namespace of our own.
    let use_init = o.init && o.pid == PidMode::Private;
    let init_path = if use_init {
        Some(input.init_path.as_deref().ok_or(SpecError::NoInitBinary)?)
    } else {
        None
    };
    let process = process(input, use_init)?;

    let mut root = RootBuilder::default()
        .path(input.rootfs.clone())
        .build()
        .map_err(build_err)?;
    root.set_readonly(o.read_only.then_some(true));

    let (mounts, rootfs_propagation) = build_mounts(o, &input.network_files, init_path)?;
    let (masked, readonly) = masked_and_readonly(input);

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(input)?)
        .resources(resources(input)?)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .sysctl(sysctls(input))
        .masked_paths(masked)
        .readonly_paths(readonly)
        .devices(devices(input));
    if let Some(p) = rootfs_propagation {
        linux = linux.rootfs_propagation(p);
    }
    if let (false, Some(seccomp)) = (o.privileged, &input.seccomp) {
        linux = linux.seccomp(seccomp.clone());
    }
    let linux = linux.build().map_err(build_err)?;

    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .root(root)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(build_err)?;
    spec.set_annotations(None);
    spec.set_hostname((o.uts == UtsMode::Private).then(|| input.hostname.clone()));
    Ok(spec)
}

/// Checks at create time everything [`build_spec`] would refuse at start (capabilities,
/// ulimits, tmpfs options, mount paths, device rules, CPU values), so that a bad request leaves
/// no half-created container behind.
pub fn validate_options(
    options: &crate::ContainerOptions,
    host: &crate::HostInfo,
) -> Result<(), SpecError> {
    let input = SpecInput {
        args: vec!["/validate".to_owned()],
        init_path: Some(PathBuf::from("/validate-init")),
        options: options.clone(),
        host: host.clone(),
        ..SpecInput::default()
    };
    build_spec(&input).map(|_| ())
}
