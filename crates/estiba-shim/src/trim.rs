//! Trims the shim's resident set once its container runs.
//!
//! Start-up touches far more code than the supervising loop ever runs again: the dynamic
//! loader, libc's relocation and initialisation, argument parsing, the runtime's invocation.
//! The kernel also maps up to 16 neighbouring pages on each fault into a file ("fault-around"),
//! so a process that touched a few dozen scattered pages of libc has a megabyte of it mapped.
//! Those pages are clean copies of files in the page cache, shared with every other process:
//! unmapping them from the shim loses nothing (a later touch maps the same page again, a minor
//! fault without I/O), and what stays resident is what the shim really uses: its own data and
//! the few pages of the loop. No library does this; it is a read of `/proc/self/smaps` and
//! two `madvise` calls per mapping.
//!
//! Only mappings that are private, not writable, backed by a file and hold no page of their
//! own (`Anonymous: 0 kB`, i.e. none was written, e.g. by relocations) are touched: dropping
//! their pages cannot change what the process reads from them.
//!
//! This and the relay's `fork` (`daemonize.rs`) are the shim's only `unsafe` code (the crate
//! denies it everywhere else).
#![allow(unsafe_code)]

/// A mapping whose pages may be dropped: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: usize,
    end: usize,
}

/// The mappings of an smaps text that hold only clean pages of a file, read-only and private.
fn clean_file_mappings(smaps: &str) -> Vec<Range> {
    let mut out = Vec::new();
    let mut current: Option<(Range, bool)> = None;
    for line in smaps.lines() {
        if let Some((range, eligible)) = header(line) {
            out.extend(current.take().filter(|(_, ok)| *ok).map(|(r, _)| r));
            current = Some((range, eligible));
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            if kb.trim() != "0 kB" {
                if let Some((_, ok)) = current.as_mut() {
                    *ok = false;
                }
            }
        }
    }
    out.extend(current.filter(|(_, ok)| *ok).map(|(r, _)| r));
    out
}

/// A mapping's header line (`start-end perms offset dev inode path`): its range and whether its
/// kind allows dropping (private, not writable, a file's).
fn header(line: &str) -> Option<(Range, bool)> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?.as_bytes();
    if perms.len() != 4 {
        return None;
    }
    let path = fields.nth(3).unwrap_or("");
    let eligible = perms[1] != b'w' && perms[3] == b'p' && path.starts_with('/');
    Some((Range { start, end }, eligible && end > start))
}

/// Drops the clean file pages of this process from its page tables. Best effort: any failure
/// leaves the process as it was.
pub(crate) fn trim_resident_set() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for r in clean_file_mappings(&smaps) {
        let addr = r.start as *mut std::ffi::c_void;
        let len = r.end - r.start;
        // SAFETY: the range is a whole mapping of this process that is read-only, private and
        // holds no modified page: MADV_DONTNEED on such a mapping makes the next access map
        // the same bytes of the file again.
        unsafe {
            let _ = rustix::mm::madvise(addr, len, rustix::mm::Advice::LinuxDontNeed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0010000 r--p 00000000 fe:01 100 /usr/bin/estiba-shim
Rss:                  64 kB
Anonymous:             0 kB
55d0c0010000-55d0c0080000 r-xp 00010000 fe:01 100 /usr/bin/estiba-shim
Anonymous:             0 kB
55d0c0080000-55d0c0090000 r--p 00080000 fe:01 100 /usr/bin/estiba-shim
Anonymous:            16 kB
55d0c0090000-55d0c0091000 rw-p 00090000 fe:01 100 /usr/bin/estiba-shim
Anonymous:             4 kB
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
Anonymous:            16 kB
7f0000000000-7f0000100000 r-xp 00028000 fe:01 200 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000201000 r--s 00000000 fe:01 300 /some/shared/file
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
7ffd00010000-7ffd00012000 r--p 00000000 00:00 0
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings() {
        let got = clean_file_mappings(SMAPS);
        assert_eq!(
            got,
            vec![
                Range {
                    start: 0x55d0c0000000,
                    end: 0x55d0c0010000
                },
                Range {
                    start: 0x55d0c0010000,
                    end: 0x55d0c0080000
                },
                Range {
                    start: 0x7f0000000000,
                    end: 0x7f0000100000
                },
            ],
            "relocated (Anonymous > 0), writable, shared, vdso and anonymous mappings are kept"
        );
        assert!(clean_file_mappings("").is_empty());
        assert!(clean_file_mappings("garbage\nAnonymous: 4 kB\n").is_empty());
    }

    /// In this very process: dropping the pages changes nothing that is read afterwards.
    #[test]
    fn trimming_keeps_the_process_working() {
        let before: Vec<u8> = (0..=255u8).collect();
        trim_resident_set();
        let after: Vec<u8> = (0..=255u8).collect();
        assert_eq!(before, after);
        assert_eq!(format!("{:x}", 0xdead_beef_u32), "deadbeef");
    }
}
