//! Resolution of Docker's default profile and of user profiles.

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};

use super::*;
use crate::caps::DEFAULT_CAPABILITIES;

fn default_caps() -> Vec<String> {
    DEFAULT_CAPABILITIES
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}

fn allowed(s: &LinuxSeccomp, name: &str) -> Vec<(LinuxSeccompAction, bool)> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|c| c.names().iter().any(|n| n == name))
        .map(|c| (c.action(), c.args().is_some()))
        .collect()
}

#[test]
fn default_profile_for_default_caps_on_amd64() {
    let p = default_profile().unwrap();
    let s = seccomp_for(&p, &default_caps(), "amd64", Some((6, 1))).unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(s.default_errno_ret(), Some(1));
    assert_eq!(
        s.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    let cases: &[(&str, &[(LinuxSeccompAction, bool)])] = &[
        ("read", &[(LinuxSeccompAction::ScmpActAllow, false)]),
        ("arch_prctl", &[(LinuxSeccompAction::ScmpActAllow, false)]),
        ("ptrace", &[(LinuxSeccompAction::ScmpActAllow, false)]),
        ("chroot", &[(LinuxSeccompAction::ScmpActAllow, false)]),
        // Only without namespace flags, and clone3 answers ENOSYS.
        ("clone", &[(LinuxSeccompAction::ScmpActAllow, true)]),
        ("clone3", &[(LinuxSeccompAction::ScmpActErrno, false)]),
        ("mount", &[]),
        ("unshare", &[]),
        ("swapoff", &[]),
        ("keyctl", &[]),
        ("reboot", &[]),
        ("riscv_flush_icache", &[]),
        ("cacheflush", &[]),
    ];
    for (name, want) in cases {
        assert_eq!(allowed(&s, name), *want, "{name}");
    }
    let clone3 = s
        .syscalls()
        .iter()
        .flatten()
        .find(|c| c.names() == &["clone3".to_owned()])
        .unwrap();
    assert_eq!(clone3.errno_ret(), Some(38));
    let clone = s
        .syscalls()
        .iter()
        .flatten()
        .find(|c| c.names() == &["clone".to_owned()])
        .unwrap();
    let arg = &clone.args().as_ref().unwrap()[0];
    assert_eq!(
        (arg.index(), arg.value(), arg.op()),
        (0, 2114060288, LinuxSeccompOperator::ScmpCmpMaskedEq)
    );
}

#[test]
fn capabilities_unlock_rules() {
    let p = default_profile().unwrap();
    let mut caps = default_caps();
    caps.push("CAP_SYS_ADMIN".into());
    caps.retain(|c| c != "CAP_SYS_CHROOT");
    let s = seccomp_for(&p, &caps, "amd64", Some((6, 1))).unwrap();
    let allow = [(LinuxSeccompAction::ScmpActAllow, false)];
    for name in ["mount", "unshare", "clone3", "setns", "clone"] {
        assert_eq!(allowed(&s, name), allow, "{name}");
    }
    assert_eq!(allowed(&s, "chroot"), [], "chroot without CAP_SYS_CHROOT");
}

#[test]
fn old_kernels_and_other_arches() {
    let p = default_profile().unwrap();
    let s = seccomp_for(&p, &default_caps(), "amd64", Some((4, 4))).unwrap();
    assert_eq!(allowed(&s, "ptrace"), [], "minKernel 4.8");
    let s = seccomp_for(&p, &default_caps(), "arm64", Some((6, 1))).unwrap();
    assert_eq!(
        s.architectures().as_deref(),
        Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
    );
    assert_eq!(allowed(&s, "arch_prctl"), []);
    assert_eq!(allowed(&s, "cacheflush").len(), 1);
    let s = seccomp_for(&p, &default_caps(), "s390x", Some((6, 1))).unwrap();
    let clone = s
        .syscalls()
        .iter()
        .flatten()
        .find(|c| c.names() == &["clone".to_owned()])
        .unwrap();
    assert_eq!(clone.args().as_ref().unwrap()[0].index(), 1);
}

#[test]
fn security_opts() {
    let cases: &[(&[&str], Option<SeccompChoice>)] = &[
        (&[], Some(SeccompChoice::Default)),
        (&["seccomp=unconfined"], Some(SeccompChoice::Unconfined)),
        (&["seccomp:unconfined"], Some(SeccompChoice::Unconfined)),
        (&["seccomp=builtin"], Some(SeccompChoice::Default)),
        (
            &[
                "no-new-privileges",
                "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
            ],
            Some(SeccompChoice::Custom(
                "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}".into(),
            )),
        ),
        (
            &["no-new-privileges=true", "label=disable"],
            Some(SeccompChoice::Default),
        ),
        (&["bogus=1"], None),
        (&["bogus"], None),
    ];
    for (opts, want) in cases {
        let opts: Vec<String> = opts.iter().map(|s| (*s).to_owned()).collect();
        let got = SeccompChoice::from_security_opts(&opts).ok();
        assert_eq!(&got, want, "{opts:?}");
    }
    let err = SeccompChoice::from_security_opts(&["bogus".into()]).unwrap_err();
    assert_eq!(err.to_string(), "invalid --security-opt 2: \"bogus\"");
}

#[test]
fn user_profiles() {
    let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13},
                    {"names":["chmod"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#;
    let s = seccomp_for(&parse_profile(json).unwrap(), &[], "amd64", None).unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(
        s.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64][..])
    );
    assert_eq!(
        allowed(&s, "mkdir"),
        [(LinuxSeccompAction::ScmpActErrno, false)]
    );
    assert_eq!(
        allowed(&s, "chmod"),
        [(LinuxSeccompAction::ScmpActKillProcess, false)]
    );

    let bad = [
        ("{", "decoding seccomp profile failed"),
        (
            r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
            "invalid seccomp profile",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
            "use either 'architectures' or 'archMap'",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
            "use either 'name' or 'names'",
        ),
    ];
    for (json, want) in bad {
        let err = parse_profile(json)
            .and_then(|p| seccomp_for(&p, &[], "amd64", None))
            .unwrap_err();
        assert!(err.to_string().starts_with(want), "{json}: {err}");
    }
    let huge = " ".repeat(MAX_PROFILE_BYTES + 1);
    assert!(matches!(parse_profile(&huge), Err(SeccompError::TooLarge)));
}

#[test]
fn privileged_and_unconfined_have_no_filter() {
    let caps = default_caps();
    assert!(seccomp_for_choice(&SeccompChoice::Default, true, &caps)
        .unwrap()
        .is_none());
    assert!(seccomp_for_choice(&SeccompChoice::Unconfined, false, &caps)
        .unwrap()
        .is_none());
    assert!(seccomp_for_choice(&SeccompChoice::Default, false, &caps)
        .unwrap()
        .is_some());
}

#[test]
fn kernel_versions() {
    let cases = [
        ("6.1.0-28-amd64", Some((6, 1))),
        ("4.8", Some((4, 8))),
        ("5", Some((5, 0))),
        ("x.y", None),
    ];
    for (s, want) in cases {
        assert_eq!(parse_kernel_version(s), want, "{s}");
    }
}

#[test]
fn the_x32_abi_is_dropped_only_when_the_kernel_cannot_run_it() {
    let p = default_profile().unwrap();
    let s = seccomp_for(&p, &default_caps(), "amd64", Some((6, 1))).unwrap();
    let kept = drop_unrunnable_abis(s.clone(), true);
    assert_eq!(kept.architectures(), s.architectures());
    let dropped = drop_unrunnable_abis(s.clone(), false);
    assert_eq!(
        dropped.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86][..])
    );
    assert_eq!(dropped.syscalls(), s.syscalls());
}
