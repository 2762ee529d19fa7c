//! A compiled seccomp program in the form estiba-runtime caches it (`<root>/.seccomp`, and
//! `seccomp.bpf` in a derived bundle), and its installation on the calling thread.
//!
//! Shared by estiba-runtime, which compiles and installs it at `run`, and estiba-shim, which
//! installs it in the processes it execs into a running container itself.

use std::fmt;

/// Bytes of one `struct sock_filter` (u16 code, u8 jt, u8 jf, u32 k).
pub const INSN_BYTES: usize = 8;
/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;
/// Bytes before the program in the file form: the `seccomp(2)` flags, little-endian.
const HEADER_BYTES: usize = 4;
/// `SECCOMP_SET_MODE_FILTER` (linux/seccomp.h).
const SET_MODE_FILTER: libc::c_ulong = 1;

/// A compiled filter: the program and the flags to install it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `struct sock_filter` instructions in native byte order.
    pub program: Vec<u8>,
    pub flags: u32,
}

/// A file that is not a compiled filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFilter(String);

impl fmt::Display for BadFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadFilter {}

impl Filter {
    /// The file form: flags, then the program.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.program.len());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.program);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Filter, BadFilter> {
        if bytes.len() < HEADER_BYTES + INSN_BYTES {
            return Err(BadFilter(format!(
                "seccomp program too short ({} bytes)",
                bytes.len()
            )));
        }
        let (head, program) = bytes.split_at(HEADER_BYTES);
        if program.len() % INSN_BYTES != 0 || program.len() / INSN_BYTES > MAX_INSNS {
            return Err(BadFilter(format!(
                "seccomp program of {} bytes is not 1 to {MAX_INSNS} instructions",
                program.len()
            )));
        }
        let mut flags = [0u8; HEADER_BYTES];
        flags.copy_from_slice(head);
        Ok(Filter {
            program: program.to_vec(),
            flags: u32::from_le_bytes(flags),
        })
    }

    /// Installs the filter on the calling thread. Needs no_new_privs or CAP_SYS_ADMIN in the
    /// thread's user namespace.
    ///
    /// No safe wrapper exists for this: libseccomp only loads programs it built itself in the
    /// same process, seccompiler's `apply_filter` always sets no_new_privs (Docker does not,
    /// unless asked), rustix and nix have no seccomp call.
    #[allow(unsafe_code)]
    pub fn install(&self) -> std::io::Result<()> {
        // Decoded into the kernel's own struct, so the pointer handed over is aligned and the
        // length counted in instructions, whatever the alignment of the bytes read from a file.
        let mut insns: Vec<libc::sock_filter> = self
            .program
            .chunks_exact(INSN_BYTES)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let len = u16::try_from(insns.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        if len == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let prog = libc::sock_fprog {
            len,
            filter: insns.as_mut_ptr(),
        };
        // SAFETY: `prog` points at `len` initialised `sock_filter`s owned by `insns`, which
        // outlives the call; the kernel copies the program and keeps no pointer into our
        // memory. The flags are the seccomp(2) filter flags the profile asked for (TSYNC, LOG,
        // SPEC_ALLOW), none of which makes the kernel write through a pointer of ours.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_form_round_trips_and_rejects_bad_lengths() {
        let f = Filter {
            program: vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f],
            flags: 4,
        };
        assert_eq!(Filter::from_bytes(&f.to_bytes()), Ok(f));
        assert!(Filter::from_bytes(&[0, 0, 0, 0]).is_err());
        assert!(Filter::from_bytes(&[0u8; 4 + 9]).is_err());
        assert!(Filter::from_bytes(&vec![0u8; 4 + (MAX_INSNS + 1) * INSN_BYTES]).is_err());
    }
}
