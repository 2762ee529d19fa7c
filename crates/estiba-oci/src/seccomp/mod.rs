//! Seccomp: Docker's default profile (as data, `default.json`), user profiles in Docker's
//! profile format (`--security-opt seccomp=<file>`, whose JSON the docker CLI sends inline),
//! and their resolution into the OCI `linux.seccomp` for a container's capabilities, the host's
//! architecture and kernel, as moby's `profiles/seccomp` does.
//!
//! `default.json` is curated from moby's `profiles/seccomp/default.json` (Apache-2.0): the same
//! allowlist, arch map and capability- and arch-conditional rules, in the same format, so one
//! parser serves the built-in profile and the ones users bring.

use oci_spec::runtime::{Arch, LinuxSeccomp};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use thiserror::Error;

mod host;
pub use host::kernel_runs_x32;

/// Docker's default profile, in Docker's seccomp profile format.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("default.json");

/// The largest profile accepted from a user (Docker's default is about 12 KiB).
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// The largest number of rules a profile may hold.
const MAX_RULES: usize = 4096;

/// Why a seccomp option or profile was refused.
#[derive(Debug, Error)]
pub enum SeccompError {
    /// Docker's wording.
    #[error("invalid --security-opt 2: {0:?}")]
    InvalidOption(String),
    #[error("seccomp profile larger than {MAX_PROFILE_BYTES} bytes")]
    TooLarge,
    #[error("seccomp profile has more than {MAX_RULES} rules")]
    TooManyRules,
    /// Docker's wording.
    #[error("decoding seccomp profile failed: {0}")]
    Decode(#[source] serde_json::Error),
    /// Docker's wording.
    #[error("use either 'architectures' or 'archMap'")]
    ArchitecturesAndArchMap,
    /// Docker's wording.
    #[error("use either 'name' or 'names'")]
    NameAndNames,
    #[error("invalid seccomp profile: {0}")]
    Invalid(#[source] serde_json::Error),
}

/// Which profile a container runs under, from its `SecurityOpt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompChoice {
    /// Docker's default profile (also `seccomp=builtin`).
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// A profile's JSON, as the docker CLI sends the file's content.
    Custom(String),
}

impl SeccompChoice {
    /// The seccomp choice among `--security-opt` values (`seccomp=...`, or the older
    /// `seccomp:...`); other known keys are left to their own handlers, unknown ones refused.
    pub fn from_security_opts(opts: &[String]) -> Result<Self, SeccompError> {
        let mut choice = SeccompChoice::Default;
        for opt in opts {
            if opt == "no-new-privileges" {
                continue;
            }
            let (key, value) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .ok_or_else(|| SeccompError::InvalidOption(opt.clone()))?;
            match key {
                "seccomp" => {
                    choice = match value {
                        "unconfined" => SeccompChoice::Unconfined,
                        "builtin" | "" => SeccompChoice::Default,
                        profile => SeccompChoice::Custom(profile.to_owned()),
                    }
                }
                "no-new-privileges" | "label" | "apparmor" | "systempaths" | "writable-cgroups" => {
                }
                _ => return Err(SeccompError::InvalidOption(opt.clone())),
            }
        }
        Ok(choice)
    }
}

/// A profile in Docker's format.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// A kernel version, `major.minor`.
pub type KernelVersion = (u32, u32);

/// Parses the leading `major.minor` of a kernel release (`6.1.0-28-amd64`).
pub fn parse_kernel_version(release: &str) -> Option<KernelVersion> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_default();
    Some((major, minor))
}

/// The running kernel's version, from `uname`.
pub fn host_kernel_version() -> Option<KernelVersion> {
    let uname = rustix::system::uname();
    parse_kernel_version(&uname.release().to_string_lossy())
}

/// The host's architecture under Go's name (`amd64`, `arm64`), as profiles spell it.
pub fn native_arch() -> &'static str {
    go_arch(std::env::consts::ARCH)
}

fn go_arch(rust_arch: &'static str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// libseccomp's name of a Go architecture.
fn seccomp_arch(go: &str) -> Option<&'static str> {
    Some(match go {
        "386" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips" => "SCMP_ARCH_MIPS",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel" => "SCMP_ARCH_MIPSEL",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

/// Parses a profile in Docker's format, bounded in size and rule count.
pub fn parse_profile(json: &str) -> Result<Profile, SeccompError> {
    if json.len() > MAX_PROFILE_BYTES {
        return Err(SeccompError::TooLarge);
    }
    let profile: Profile = serde_json::from_str(json).map_err(SeccompError::Decode)?;
    if profile.syscalls.as_ref().map_or(0, Vec::len) > MAX_RULES {
        return Err(SeccompError::TooManyRules);
    }
    Ok(profile)
}

/// Docker's default profile.
pub fn default_profile() -> Result<Profile, SeccompError> {
    parse_profile(DEFAULT_PROFILE_JSON)
}

/// Drops the x32 ABI from a filter's architectures when the kernel cannot run it (see
/// `host::kernel_runs_x32`).
fn drop_unrunnable_abis(mut seccomp: LinuxSeccomp, kernel_runs_x32: bool) -> LinuxSeccomp {
    if kernel_runs_x32 {
        return seccomp;
    }
    if let Some(archs) = seccomp.architectures() {
        let kept: Vec<Arch> = archs
            .iter()
            .copied()
            .filter(|a| *a != Arch::ScmpArchX32)
            .collect();
        seccomp.set_architectures(Some(kept));
    }
    seccomp
}

fn contains(list: &[String], item: &str) -> bool {
    list.iter().any(|x| x == item)
}

fn kernel_at_least(kernel: Option<KernelVersion>, min: &str) -> bool {
    match (kernel, parse_kernel_version(min)) {
        (Some(k), Some(m)) => k >= m,
        // An unknown kernel is assumed new enough, an unreadable bound is ignored.
        _ => true,
    }
}

/// Whether a rule applies to a container with these (bounding) capabilities on this arch and
/// kernel: every `includes` condition holds and no `excludes` condition does.
fn applies(rule: &Rule, caps: &[String], arch: &str, kernel: Option<KernelVersion>) -> bool {
    if let Some(inc) = &rule.includes {
        if let Some(arches) = &inc.arches {
            if !arches.is_empty() && !contains(arches, arch) {
                return false;
            }
        }
        if let Some(need) = &inc.caps {
            if !need.iter().all(|c| contains(caps, c)) {
                return false;
            }
        }
        if let Some(min) = &inc.min_kernel {
            if !kernel_at_least(kernel, min) {
                return false;
            }
        }
    }
    if let Some(exc) = &rule.excludes {
        if let Some(arches) = &exc.arches {
            if contains(arches, arch) {
                return false;
            }
        }
        if let Some(caps_ex) = &exc.caps {
            if caps_ex.iter().any(|c| contains(caps, c)) {
                return false;
            }
        }
        if let Some(min) = &exc.min_kernel {
            if kernel.is_some() && kernel_at_least(kernel, min) {
                return false;
            }
        }
    }
    true
}

/// The OCI `linux.seccomp` of `profile` for a container whose bounding capabilities are `caps`
/// (`CAP_`-prefixed), on the Go architecture `arch`, under `kernel`.
pub fn seccomp_for(
    profile: &Profile,
    caps: &[String],
    arch: &str,
    kernel: Option<KernelVersion>,
) -> Result<LinuxSeccomp, SeccompError> {
    if profile
        .architectures
        .as_ref()
        .is_some_and(|a| !a.is_empty())
        && profile.arch_map.as_ref().is_some_and(|a| !a.is_empty())
    {
        return Err(SeccompError::ArchitecturesAndArchMap);
    }
    let mut architectures: Vec<String> = profile.architectures.clone().unwrap_or_default();
    if let (Some(map), Some(native)) = (&profile.arch_map, seccomp_arch(arch)) {
        for entry in map.iter().filter(|e| e.architecture == native) {
            architectures.push(entry.architecture.clone());
            architectures.extend(entry.sub_architectures.iter().flatten().cloned());
        }
    }

    let mut syscalls = Vec::new();
    for rule in profile.syscalls.iter().flatten() {
        let names: Vec<String> = match (&rule.name, &rule.names) {
            (Some(_), Some(n)) if !n.is_empty() => return Err(SeccompError::NameAndNames),
            (Some(n), _) if !n.is_empty() => vec![n.clone()],
            (_, Some(n)) => n.clone(),
            _ => Vec::new(),
        };
        if names.is_empty() || !applies(rule, caps, arch, kernel) {
            continue;
        }
        let mut call = Map::new();
        call.insert("names".into(), json!(names));
        call.insert("action".into(), json!(rule.action));
        if let Some(errno) = rule.errno_ret {
            call.insert("errnoRet".into(), json!(errno));
        }
        if let Some(args) = &rule.args {
            let args: Vec<Value> = args
                .iter()
                .map(|a| {
                    let mut arg = json!({ "index": a.index, "value": a.value, "op": a.op });
                    if a.value_two != 0 {
                        arg["valueTwo"] = json!(a.value_two);
                    }
                    arg
                })
                .collect();
            call.insert("args".into(), Value::Array(args));
        }
        syscalls.push(Value::Object(call));
    }

    let mut out = Map::new();
    out.insert("defaultAction".into(), json!(profile.default_action));
    if let Some(errno) = profile.default_errno_ret {
        out.insert("defaultErrnoRet".into(), json!(errno));
    }
    if !architectures.is_empty() {
        out.insert("architectures".into(), json!(architectures));
    }
    if let Some(flags) = profile.flags.as_ref().filter(|f| !f.is_empty()) {
        out.insert("flags".into(), json!(flags));
    }
    if let Some(p) = &profile.listener_path {
        out.insert("listenerPath".into(), json!(p));
    }
    if let Some(m) = &profile.listener_metadata {
        out.insert("listenerMetadata".into(), json!(m));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    serde_json::from_value(Value::Object(out)).map_err(SeccompError::Invalid)
}

/// The filter for a container: `None` when it runs unconfined (or privileged).
pub fn seccomp_for_choice(
    choice: &SeccompChoice,
    privileged: bool,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    if privileged {
        return Ok(None);
    }
    let profile = match choice {
        SeccompChoice::Unconfined => return Ok(None),
        SeccompChoice::Default => default_profile()?,
        SeccompChoice::Custom(json) => parse_profile(json)?,
    };
    seccomp_for(&profile, caps, native_arch(), host_kernel_version())
        .map(|s| Some(drop_unrunnable_abis(s, host::kernel_runs_x32())))
}

#[cfg(test)]
mod tests;
