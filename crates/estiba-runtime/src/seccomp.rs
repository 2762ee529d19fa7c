//! Seccomp filters compiled once and cached as BPF.
//!
//! libcontainer builds a container's filter from the OCI profile inside the container's init,
//! every time: libseccomp resolves and inserts each rule for every architecture and generates
//! the program, ~5-7 ms for Docker's default profile (x86_64 and x86), on every `run` and every
//! `exec`. The program only depends on the profile (and libseccomp's version), so estiba-runtime
//! compiles it once, keeps it under the state root keyed by a hash of both, and installs the
//! finished program right before exec (`crate::workload`). libseccomp 2.5 cannot load a
//! program it did not build, and libcontainer's translation of the profile always loads what it
//! builds, so the translation below is written here: the same rules libcontainer adds (and
//! runc: one rule per syscall name, split per comparison when an argument index repeats).
//!
//! Profiles that use `SCMP_ACT_NOTIFY` (a listener fd goes back to the caller) or flags that
//! only make sense with it are left to libcontainer.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};

/// The cache directory under the state root.
const CACHE_DIR: &str = ".seccomp";
pub(crate) use estiba_bpf::{Filter, INSN_BYTES, MAX_INSNS};

// seccomp(2) filter flags (linux/seccomp.h).
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;

/// Whether this profile can be compiled ahead (see the module's docs).
pub(crate) fn precompilable(profile: &LinuxSeccomp) -> bool {
    let notify = profile.default_action() == LinuxSeccompAction::ScmpActNotify
        || profile
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify);
    let waitkill = profile
        .flags()
        .iter()
        .flatten()
        .any(|f| *f == LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv);
    !notify && !waitkill
}

/// The compiled filter for `profile`: from the cache under `root` when there, else compiled and
/// stored there (written to a temporary file and renamed, so a reader never sees half of it).
pub(crate) fn filter_for(root: &Path, profile: &LinuxSeccomp) -> anyhow::Result<Filter> {
    let dir = root.join(CACHE_DIR);
    let path = dir.join(format!("{}.bpf", cache_key(profile)?));
    match fs::read(&path) {
        Ok(bytes) => match Filter::from_bytes(&bytes) {
            Ok(f) => return Ok(f),
            Err(e) => tracing::warn!("ignoring cached filter {}: {e:#}", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    let filter = compile(profile)?;
    if let Err(e) = store(&dir, &path, &filter) {
        // The cache only saves time: a container still gets its filter without it.
        tracing::warn!("cannot cache seccomp filter {}: {e:#}", path.display());
    }
    Ok(filter)
}

fn store(dir: &Path, path: &Path, filter: &Filter) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let tmp: PathBuf = dir.join(format!(".tmp-{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(&filter.to_bytes())
        .with_context(|| format!("write {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

/// SHA-256 of the profile as JSON and of libseccomp's version: a new libseccomp may generate
/// another program for the same profile (new syscalls resolved).
fn cache_key(profile: &LinuxSeccomp) -> anyhow::Result<String> {
    let json = serde_json::to_vec(profile).context("serialize seccomp profile")?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(version.as_bytes());
    h.update([0]);
    h.update(std::env::consts::ARCH.as_bytes());
    h.update([0]);
    h.update(&json);
    Ok(h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>())
}

/// Builds the program with libseccomp, as libcontainer's `initialize_seccomp` builds it, and
/// exports it instead of loading it.
pub(crate) fn compile(profile: &LinuxSeccomp) -> anyhow::Result<Filter> {
    if !precompilable(profile) {
        bail!("a profile with SCMP_ACT_NOTIFY cannot be compiled ahead");
    }
    let default_action = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx =
        ScmpFilterContext::new(default_action).context("failed to create new seccomp filter")?;
    let mut flags = 0;
    for flag in profile.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                bail!("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a notify listener")
            }
        };
    }
    for &a in profile.architectures().iter().flatten() {
        ctx.add_arch(arch(a))
            .with_context(|| format!("failed to add arch {a:?} to seccomp"))?;
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default_action {
            // libseccomp refuses a rule whose action is the default one; it would change nothing.
            continue;
        }
        let comparators: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| compare(a.index(), a.op(), a.value(), a.value_two()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let repeated = rule
            .args()
            .iter()
            .flatten()
            .any(|a| !seen.insert(a.index()));
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                // Unknown to this libseccomp (a newer syscall): nothing to filter on.
                tracing::debug!("seccomp: syscall {name} not known, skipped");
                continue;
            };
            let added = if comparators.is_empty() {
                ctx.add_rule(act, sc).map(drop)
            } else if repeated {
                // One comparison per argument index and rule (seccomp_rule_add(3)): a repeated
                // index becomes one rule per comparison, as runc does.
                comparators.iter().try_for_each(|c| {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map(drop)
                })
            } else {
                ctx.add_rule_conditional(act, sc, &comparators).map(drop)
            };
            added.with_context(|| format!("failed to add seccomp rule for {name}"))?;
        }
    }
    let mut tmp = tempfile_in_memory()?;
    ctx.export_bpf(&tmp).context("export seccomp program")?;
    let program = read_back(&mut tmp)?;
    let filter = Filter { program, flags };
    // Validates the length as a cached file would be.
    Ok(Filter::from_bytes(&filter.to_bytes())?)
}

/// An anonymous in-memory file for libseccomp's export (it writes to a file descriptor).
fn tempfile_in_memory() -> anyhow::Result<fs::File> {
    let fd = rustix::fs::memfd_create("estiba-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .context("memfd_create for the seccomp program")?;
    Ok(fs::File::from(fd))
}

fn read_back(f: &mut fs::File) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(0))
        .context("rewind the seccomp program")?;
    let mut out = Vec::new();
    f.take(((MAX_INSNS + 1) * INSN_BYTES) as u64)
        .read_to_end(&mut out)
        .context("read the seccomp program")?;
    Ok(out)
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The OCI action as libseccomp's; errno defaults to EPERM as in runc and libcontainer.
fn action(a: LinuxSeccompAction, errno: Option<u32>) -> anyhow::Result<ScmpAction> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            u16::try_from(errno).with_context(|| format!("trace action value {errno}"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => bail!("SCMP_ACT_NOTIFY cannot be compiled ahead"),
    })
}

/// One argument comparison. For `SCMP_CMP_MASKED_EQ` the OCI `value` is the mask and
/// `valueTwo` the datum (`(arg & value) == valueTwo`), as runc passes them to libseccomp and as
/// Docker's profile is written (clone's namespace flags: mask 0x7e020000, datum 0).
/// libcontainer 0.7 passes them the other way round.
fn compare(index: usize, o: LinuxSeccompOperator, value: u64, two: Option<u64>) -> ScmpArgCompare {
    let index = index as u32;
    let op = match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(value), two.unwrap_or(0))
        }
    };
    ScmpArgCompare::new(index, op, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Environment variable that turns `child_probe` into the probe run by `installed_filter_*`.
    const CHILD_ENV: &str = "ESTIBA_SECCOMP_PROBE";

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    /// Refuses `openat` whose flags have O_CREAT without O_EXCL: `(flags & value) == valueTwo`
    /// with a mask different from the datum, so swapping them changes the outcome.
    const MASKED: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
        "syscalls":[{"names":["openat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
          "args":[{"index":2,"value":192,"valueTwo":64,"op":"SCMP_CMP_MASKED_EQ"}]},
          {"names":["no_such_syscall_here"],"action":"SCMP_ACT_ERRNO"}]}"#;

    #[test]
    fn compiles_docker_default_profile() {
        let caps: Vec<String> = ["CAP_CHOWN", "CAP_SETUID"].map(String::from).to_vec();
        let profile = estiba_oci::seccomp::seccomp_for_choice(
            &estiba_oci::seccomp::SeccompChoice::Default,
            false,
            &caps,
        )
        .unwrap()
        .unwrap();
        assert!(precompilable(&profile));
        let f = compile(&profile).unwrap();
        let insns = f.program.len() / INSN_BYTES;
        assert!(insns > 100 && insns <= MAX_INSNS, "{insns} instructions");
        assert_eq!(f.flags, 0);
        // Deterministic: the same profile gives the same program (what makes a cache sound).
        assert_eq!(compile(&profile).unwrap(), f);
    }

    #[test]
    fn cache_is_used_and_a_corrupt_entry_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let p = profile(MASKED);
        let first = filter_for(root.path(), &p).unwrap();
        let dir = root.path().join(CACHE_DIR);
        let entries: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(fs::read(&entries[0]).unwrap(), first.to_bytes());
        // A cached program is what is returned: prove it by planting another valid one.
        let planted = Filter {
            program: vec![0x06, 0, 0, 0, 0, 0, 0xff, 0x7f],
            flags: 0,
        };
        fs::write(&entries[0], planted.to_bytes()).unwrap();
        assert_eq!(filter_for(root.path(), &p).unwrap(), planted);
        // A truncated entry is ignored and rewritten.
        fs::write(&entries[0], &first.to_bytes()[..7]).unwrap();
        assert_eq!(filter_for(root.path(), &p).unwrap(), first);
        assert_eq!(fs::read(&entries[0]).unwrap(), first.to_bytes());
        // Another profile, another entry.
        let other = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert_ne!(filter_for(root.path(), &other).unwrap(), first);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
    }

    #[test]
    fn file_form_is_checked() {
        let f = Filter {
            program: vec![1; 16],
            flags: FLAG_LOG | FLAG_SPEC_ALLOW,
        };
        assert_eq!(Filter::from_bytes(&f.to_bytes()).unwrap(), f);
        for bad in [
            &b""[..],
            &[0, 0, 0, 0][..],
            &[0, 0, 0, 0, 1, 2, 3][..],
            &[0u8; 4 + 9][..],
            &vec![0u8; 4 + (MAX_INSNS + 1) * INSN_BYTES][..],
        ] {
            assert!(Filter::from_bytes(bad).is_err(), "{} bytes", bad.len());
        }
    }

    #[test]
    fn notify_profiles_are_left_to_libcontainer() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(!precompilable(&p));
        assert!(compile(&p).is_err());
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        );
        assert!(!precompilable(&p));
        let p =
            profile(r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG"]}"#);
        assert!(precompilable(&p));
        assert_eq!(compile(&p).unwrap().flags, FLAG_LOG);
    }

    /// The compiled program, installed in a child process (the test binary run again with
    /// [`CHILD_ENV`]), refuses exactly what the profile refuses.
    #[test]
    fn installed_filter_applies_masked_comparisons_as_docker_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "seccomp::tests::child_probe",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("probe: create=13 excl=ok plain=ok"),
            "{stdout}"
        );
    }

    /// Not a test on its own: the child side of the test above (ignored, so that it only runs
    /// when that test starts it with the environment variable set).
    #[test]
    #[ignore = "run by installed_filter_applies_masked_comparisons_as_docker_writes_them"]
    fn child_probe() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        fs::write(dir.join("exists"), b"").unwrap();
        let filter = compile(&profile(MASKED)).unwrap();
        filter.install().unwrap();
        let code = |r: std::io::Result<fs::File>| match r {
            Ok(_) => "ok".to_string(),
            Err(e) => e.raw_os_error().unwrap_or(-1).to_string(),
        };
        // O_CREAT alone matches (flags & 0o300) == 0o100: refused with the profile's errno.
        let create = code(
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.join("new")),
        );
        let excl = code(
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join("new2")),
        );
        let plain = code(fs::File::open(dir.join("exists")));
        println!("probe: create={create} excl={excl} plain={plain}");
    }
}
