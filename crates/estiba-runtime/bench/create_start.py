#!/usr/bin/env python3
"""Time create + start + exit (+ delete) of a busybox `true` container, estiba-runtime vs runc.

Usage (root): bench/create_start.py [ITERATIONS] [RUNTIME...]
Builds a busybox bundle in a temp dir (Debian's busybox-static), makes this process a child
subreaper so it can reap each container's init as a shim would, and prints the median and p90 of
each phase per runtime. Defaults: 30 iterations; target/release/estiba-runtime and /usr/sbin/runc.
"""
import ctypes, json, os, shutil, statistics, subprocess, sys, tempfile, time

PR_SET_CHILD_SUBREAPER = 36
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RUNTIMES = [os.path.join(HERE, "../../../target/release/estiba-runtime"), "/usr/sbin/runc"]


def bundle(dirpath, cgroup):
    rootfs = os.path.join(dirpath, "rootfs")
    for d in ("bin", "proc", "dev", "sys", "tmp"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    for a in ("sh", "true"):
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
    spec = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["true"],
                    "env": ["PATH=/bin"], "cwd": "/",
                    "capabilities": {"bounding": caps, "effective": caps, "permitted": caps}},
        "root": {"path": "rootfs"},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {"cgroupsPath": cgroup,
                  "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 50}},
                  "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                  "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
    }
    with open(os.path.join(dirpath, "config.json"), "w") as f:
        json.dump(spec, f)


def run_once(rt, root, bdir, cid):
    null = subprocess.DEVNULL
    t0 = time.perf_counter()
    subprocess.run([rt, "--root", root, "create", "--bundle", bdir, "--pid-file", bdir + "/pid", cid],
                   stdin=null, stdout=null, stderr=null, check=True)
    t1 = time.perf_counter()
    subprocess.run([rt, "--root", root, "start", cid], stdin=null, stdout=null, check=True)
    t2 = time.perf_counter()
    pid = int(open(bdir + "/pid").read())
    _, status = os.waitpid(pid, 0)
    t3 = time.perf_counter()
    subprocess.run([rt, "--root", root, "delete", cid], stdin=null, stdout=null, check=True)
    t4 = time.perf_counter()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return {"create": t1 - t0, "start": t2 - t1, "exit": t3 - t2, "delete": t4 - t3,
            "create+start+exit": t3 - t0, "total": t4 - t0}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    runtimes = sys.argv[2:] or DEFAULT_RUNTIMES
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    for rt in runtimes:
        with tempfile.TemporaryDirectory() as tmp:
            bdir, root = os.path.join(tmp, "bundle"), os.path.join(tmp, "state")
            os.makedirs(bdir)
            cid = "bench-%d" % os.getpid()
            bundle(bdir, "/estiba-bench-%d" % os.getpid())
            samples = [run_once(rt, root, bdir, cid) for _ in range(n)]
        print("%s (%d runs)" % (os.path.realpath(rt), n))
        for phase in samples[0]:
            xs = sorted(s[phase] * 1000 for s in samples)
            print("  %-18s median %6.1f ms   p90 %6.1f ms" % (phase, statistics.median(xs), xs[int(0.9 * (len(xs) - 1))]))


if __name__ == "__main__":
    main()
