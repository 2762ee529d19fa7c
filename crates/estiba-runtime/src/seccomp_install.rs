//! Installs a compiled seccomp program on the calling thread: one `seccomp(2)` call.
//!
//! No safe wrapper exists for this: libseccomp only loads programs it built itself in the same
//! process, seccompiler's `apply_filter` always sets no_new_privs (Docker does not, unless
//! asked), rustix and nix have no seccomp call. This is the runtime's only `unsafe` code (the
//! crate denies it everywhere else).
#![allow(unsafe_code)]

use crate::seccomp::{Filter, INSN_BYTES};

/// `SECCOMP_SET_MODE_FILTER` (linux/seccomp.h).
const SET_MODE_FILTER: libc::c_ulong = 1;

/// Installs `filter`. Needs no_new_privs or CAP_SYS_ADMIN in the thread's user namespace.
pub(crate) fn install(filter: &Filter) -> std::io::Result<()> {
    // Decoded into the kernel's own struct, so the pointer handed over is aligned and the
    // length counted in instructions, whatever the alignment of the bytes read from the file.
    let mut insns: Vec<libc::sock_filter> = filter
        .program
        .chunks_exact(INSN_BYTES)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let len =
        u16::try_from(insns.len()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    if len == 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `len` initialised `sock_filter`s owned by `insns`, which outlives
    // the call; the kernel copies the program and keeps no pointer into our memory. The flags
    // are the seccomp(2) filter flags the profile asked for (TSYNC, LOG, SPEC_ALLOW), none of
    // which makes the kernel write through a pointer of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            libc::c_ulong::from(filter.flags),
            &prog as *const libc::sock_fprog,
        )
    };
    match rc {
        0 => Ok(()),
        // With TSYNC, the id of a thread that could not be synchronised.
        tid if tid > 0 => Err(std::io::Error::other(format!(
            "thread {tid} could not take the seccomp filter"
        ))),
        _ => Err(std::io::Error::last_os_error()),
    }
}
