//! Facts about the host kernel that shape a filter, read once per process.

use std::io::Read;
use std::sync::OnceLock;

/// Whether the kernel executes x32 system calls (`CONFIG_X86_X32_ABI`). Docker's amd64 profile
/// lists the x32 ABI beside x86_64 and x86, and each ABI costs libseccomp as much compiling as
/// the native one: ~5 of the ~10 ms that every container start and exec spends compiling the
/// default filter here. A kernel built without x32 answers such calls with ENOSYS before any
/// filter could matter, so a filter for it drops the x32 ABI (a crafted x32 call then meets the
/// filter's bad-architecture action instead of ENOSYS; no x32 program can run there anyway).
/// Unknown (kallsyms unreadable) counts as yes.
pub fn kernel_runs_x32() -> bool {
    static X32: OnceLock<bool> = OnceLock::new();
    *X32.get_or_init(|| kallsyms_has(b"x32_sys_call").unwrap_or(true))
}

/// Whether `/proc/kallsyms` names a symbol containing `needle` (its entry points are
/// `x32_sys_call_table` before 6.9 and `x32_sys_call` since). Read in 64 KiB chunks with an
/// overlap, so a name across a chunk boundary is still seen; ~120,000 lines, ~40 ms of the
/// kernel's formatting, hence the one read per process.
fn kallsyms_has(needle: &[u8]) -> Option<bool> {
    let mut file = std::fs::File::open("/proc/kallsyms").ok()?;
    let mut buf = vec![0u8; 64 * 1024 + needle.len()];
    let mut carry = 0;
    loop {
        let n = file.read(&mut buf[carry..]).ok()?;
        if n == 0 {
            return Some(false);
        }
        let filled = carry + n;
        if buf[..filled].windows(needle.len()).any(|w| w == needle) {
            return Some(true);
        }
        carry = needle.len().saturating_sub(1).min(filled);
        buf.copy_within(filled - carry..filled, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_search_finds_a_symbol_every_kernel_has_and_not_a_made_up_one() {
        if std::fs::File::open("/proc/kallsyms").is_err() {
            eprintln!("skipped: /proc/kallsyms unreadable");
            return;
        }
        assert_eq!(kallsyms_has(b"schedule"), Some(true));
        assert_eq!(kallsyms_has(b"estiba_no_such_symbol_xyz"), Some(false));
    }
}
