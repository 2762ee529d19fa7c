//! A read-only view of the runtime binary, so that the runtime need not copy itself into a sealed
//! memfd at every `create` and `exec`.
//!
//! CVE-2019-5736: a process inside the container can open `/proc/<pid>/exe` of the runtime while
//! the runtime is in the container's namespaces and, once the runtime exits, reopen it for
//! writing and overwrite the host's binary. runc and our runtime used to defend by re-executing
//! from a sealed in-memory copy (a 9 MB copy, 6 to 8 ms per container here). runc 1.2 instead
//! runs itself from a read-only mount that no path reaches; we do the same, once per shim: bind
//! the binary onto a scratch file, remount the bind read-only, keep an `O_PATH` descriptor of it
//! and detach the mount. The descriptor keeps the detached, read-only mount alive for the shim's
//! life; every runtime command executes `/proc/self/fd/N`, whose `/proc/self/exe` then lives on
//! a read-only mount (`EROFS` for any writer), which the runtime checks with `statvfs` before
//! skipping its own sealing. No mount stays in any table: nothing to clean up, even after a kill.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{open, Mode, OFlags};
use rustix::mount::{mount_bind, mount_remount, unmount, MountFlags, UnmountFlags};

/// The runtime binary reached through a descriptor of a detached read-only mount.
pub(crate) struct SealedBinary {
    _fd: OwnedFd,
    path: PathBuf,
}

impl SealedBinary {
    /// The path to execute: `/proc/self/fd/N`, valid in the shim and in its children until exec.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes the read-only view of `binary`, using `scratch` (a path in the shim's private state
/// directory) as the short-lived mount point.
pub(crate) fn seal(binary: &Path, scratch: &Path) -> std::io::Result<SealedBinary> {
    // A script (a wrapper around runc, say) cannot run from a close-on-exec descriptor: its
    // interpreter would be handed /dev/fd/N after exec closed it. Scripts run by path.
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open(binary)?, &mut magic)?;
    if magic != *b"\x7fELF" {
        return Err(std::io::Error::other("not an ELF executable"));
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o500)
        .open(scratch)?;
    let result = bind_read_only(binary, scratch);
    let _ = std::fs::remove_file(scratch);
    let fd = result?;
    Ok(SealedBinary {
        path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        _fd: fd,
    })
}

fn bind_read_only(binary: &Path, scratch: &Path) -> std::io::Result<OwnedFd> {
    mount_bind(binary, scratch)?;
    let opened = mount_remount(scratch, MountFlags::BIND | MountFlags::RDONLY, "")
        .and_then(|()| open(scratch, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()));
    // Detached whatever happened: the descriptor, if any, holds the mount from now on.
    let detached = unmount(scratch, UnmountFlags::DETACH);
    let fd = opened?;
    detached?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn the_sealed_binary_runs_cannot_be_written_and_leaves_no_mount() {
        if !is_root() {
            eprintln!("skipped: needs root to mount");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // An ELF binary: a script would need its descriptor open across exec.
        let script = dir.path().join("tool");
        std::fs::copy("/bin/echo", &script).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sealed = seal(&script, &dir.path().join("scratch")).unwrap();

        // It runs from the descriptor's path, in a child, although the descriptor is CLOEXEC.
        let out = std::process::Command::new(sealed.path())
            .arg("sealed-ok")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sealed-ok\n");

        // Writing through the descriptor's path fails: the mount is read-only.
        let err = OpenOptions::new()
            .write(true)
            .open(sealed.path())
            .and_then(|mut f| f.write_all(b"x"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc_erofs()), "{err}");
        assert!(rustix::fs::statvfs(sealed.path())
            .unwrap()
            .f_flag
            .contains(rustix::fs::StatVfsMountFlags::RDONLY));
        // The scratch file is gone and no mount is left in the table.
        assert!(!dir.path().join("scratch").exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&dir.path().display().to_string()),
            "{mounts}"
        );
        // The original stays writable.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&script)
            .unwrap();
    }

    #[test]
    fn a_script_is_left_to_run_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("wrapper");
        std::fs::write(&script, "#!/bin/sh\nexec runc \"$@\"\n").unwrap();
        let err = seal(&script, &dir.path().join("scratch")).err().unwrap();
        assert!(err.to_string().contains("not an ELF"), "{err}");
        assert!(!dir.path().join("scratch").exists());
    }

    fn libc_erofs() -> i32 {
        rustix::io::Errno::ROFS.raw_os_error()
    }
}
