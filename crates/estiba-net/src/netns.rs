//! Network namespaces bound to files under `<exec-root>/netns`, made and entered from
//! short-lived threads (the daemon is threaded: no fork).

use std::fs::File;
use std::io;
use std::path::Path;

use crate::netlink::Netlink;

/// Creates a new network namespace bound at `path`, with loopback up; returns a netlink socket
/// that acts inside it.
pub(crate) fn create(path: &Path) -> io::Result<Netlink> {
    File::create(path)?;
    let p = path.to_path_buf();
    let made = std::thread::Builder::new()
        .name("netns-create".into())
        .spawn(move || -> io::Result<Netlink> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            rustix::mount::mount_bind("/proc/thread-self/ns/net", &p)?;
            let mut nl = Netlink::open()?;
            if let Some(lo) = nl.link_index("lo")? {
                nl.set_up(lo, None)?;
            }
            Ok(nl)
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?;
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// A netlink socket acting inside the namespace bound at `path`.
pub(crate) fn enter(path: &Path) -> io::Result<Netlink> {
    run_in(path, Netlink::open)
}

/// Runs `f` on a short-lived thread that entered the namespace bound at `path` (sockets it
/// opens stay in that namespace).
pub(crate) fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let ns = File::open(path)?;
    std::thread::Builder::new()
        .name("netns-enter".into())
        .spawn(move || -> io::Result<T> {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            f()
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
}

/// Unbinds and removes the namespace file (the namespace goes when its last user does).
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::NewLink;
    use std::os::fd::AsFd;

    /// A namespace made and wired from threads: the veth peer appears inside with its address,
    /// and everything goes when the namespace and host side are removed. Needs root (CI is).
    #[test]
    fn veth_into_a_throwaway_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        let mut inside = create(&path).unwrap();
        assert!(inside.link_index("lo").unwrap().is_some());
        assert!(inside.link_index("eth0").unwrap().is_none());
        let host_name = format!("vt{:08x}", std::process::id());
        let ns = File::open(&path).unwrap();
        let mut host = Netlink::open().unwrap();
        let peer = NewLink::Veth {
            peer: "eth0",
            peer_ns: ns.as_fd(),
            peer_mac: [2, 0x42, 10, 1, 2, 3],
        };
        host.add_link(&host_name, peer, None).unwrap();
        let eth0 = inside.link_index("eth0").unwrap().unwrap();
        inside
            .add_addr(eth0, std::net::Ipv4Addr::new(10, 1, 2, 3), 24)
            .unwrap();
        inside.set_up(eth0, None).unwrap();
        // A second socket entering by path sees the same namespace.
        let mut again = enter(&path).unwrap();
        assert_eq!(again.link_index("eth0").unwrap(), Some(eth0));
        let h = host.link_index(&host_name).unwrap().unwrap();
        host.del_link(h).unwrap();
        assert!(inside.link_index("eth0").unwrap().is_none());
        remove(&path).unwrap();
        assert!(!path.exists());
        remove(&path).unwrap();
    }
}
