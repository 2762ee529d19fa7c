//! Runs generated specs with a real OCI runtime (runc) on a busybox rootfs and checks what the
//! container sees. Needs root, `runc` and Debian's `busybox-static`:
//! `cargo test -p estiba-oci --test runc -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use estiba_oci::*;

const BUSYBOX: &str = "/bin/busybox";

struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Bundle {
        assert!(rustix::process::geteuid().is_root(), "this test needs root");
        assert!(
            Path::new(BUSYBOX).exists(),
            "this test needs busybox-static at {BUSYBOX}"
        );
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "id", "cat", "hostname", "env", "grep", "ls", "ulimit", "mount", "touch",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n",
        )
        .unwrap();
        for (name, text) in [
            ("hostname", "estiba-test\n"),
            ("hosts", "127.0.0.1\tlocalhost\n"),
            ("resolv.conf", "nameserver 127.0.0.1\n"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Bundle { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Builds the spec for `opts` running `sh -c script` and returns (exit code, stdout).
    fn run(&self, name: &str, mut opts: ContainerOptions, script: &str) -> (i32, String) {
        let id = format!("estiba-oci-test-{}-{name}", std::process::id());
        opts.hostname = "estiba-test".into();
        if opts.network == NetworkMode::Private {
            opts.network = NetworkMode::None;
        }
        let image = ImageDefaults {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        opts.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
        let user = resolve_user(&self.rootfs(), &opts.user, &opts.group_add).unwrap();
        let input = SpecInput {
            container_id: id.clone(),
            rootfs: self.rootfs(),
            user,
            args: merge_command(&image, &opts).unwrap(),
            env: merge_env(&image, &opts),
            cwd: "/".into(),
            hostname: opts.hostname.clone(),
            network_files: NetworkFiles {
                resolv_conf: Some(self.dir.path().join("resolv.conf")),
                hostname: Some(self.dir.path().join("hostname")),
                hosts: Some(self.dir.path().join("hosts")),
            },
            cgroups_path: format!("/{id}"),
            host: HostInfo::detect().unwrap(),
            options: opts,
            ..SpecInput::default()
        };
        let spec = build_spec(&input).unwrap();
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        let out = Command::new("runc")
            .args(["run", "--bundle"])
            .arg(self.dir.path())
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .expect("runc is installed");
        let _ = Command::new("runc").args(["delete", "-f", &id]).output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty() || out.status.code().is_some(),
            "runc: {stderr}"
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned() + &stderr,
        )
    }
}

#[test]
fn default_container_sees_docker_defaults() {
    let b = Bundle::new();
    let (code, out) = b.run(
        "defaults",
        ContainerOptions::default(),
        "id; hostname; env | grep -E '^(PATH|HOSTNAME)='; grep CapEff /proc/self/status; \
         cat /proc/kcore | wc -c; touch /proc/sys/x 2>&1 || echo ro-proc-sys; ls /dev/shm && echo shm",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
    assert!(out.contains("\nestiba-test\n"), "{out}");
    assert!(out.contains("HOSTNAME=estiba-test"), "{out}");
    // Docker's 14 default capabilities are 0x00000000a80425fb.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("ro-proc-sys"), "{out}");
    assert!(out.contains("shm"), "{out}");
}

#[test]
fn user_caps_ulimits_readonly() {
    let b = Bundle::new();
    let opts = ContainerOptions {
        user: "nobody".into(),
        group_add: vec!["staff".into()],
        cap_drop: vec!["ALL".into()],
        cap_add: vec!["kill".into()],
        read_only: true,
        ulimits: vec![Ulimit::parse("nofile=512:1024").unwrap()],
        tmpfs: vec![TmpfsMount {
            destination: "/scratch".into(),
            options: "size=1m,mode=1777".into(),
        }],
        ..Default::default()
    };
    let (code, out) = b.run(
        "user",
        opts,
        "id; grep CapBnd /proc/self/status; ulimit -n; ulimit -Hn; \
         touch /x 2>/dev/null || echo rootfs-ro; touch /scratch/y && echo tmp-rw",
        // Like Docker (runc keeps an existing mountpoint's mode), the tmpfs goes on a new
        // directory: over the rootfs' 0755 /tmp, mode=1777 would not show.
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("uid=65534(nobody) gid=65534(nogroup) groups=50(staff),65534(nogroup)"),
        "{out}"
    );
    // Only CAP_KILL (bit 5).
    assert!(out.contains("CapBnd:\t0000000000000020"), "{out}");
    assert!(out.contains("\n512\n1024\n"), "{out}");
    assert!(out.contains("rootfs-ro"), "{out}");
    assert!(out.contains("tmp-rw"), "{out}");
}

#[test]
fn cgroup_limits_are_applied() {
    let b = Bundle::new();
    let opts = ContainerOptions {
        resources: Resources {
            memory_bytes: 64 << 20,
            memory_swap_bytes: 128 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(50),
            ..Default::default()
        },
        ..Default::default()
    };
    let v1 = Path::new("/sys/fs/cgroup/memory").exists();
    let script = if v1 {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us \
         /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/pids/pids.max"
    } else {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max"
    };
    let (code, out) = b.run("cgroups", opts, script);
    assert_eq!(code, 0, "{out}");
    let want = if v1 {
        "67108864\n50000\n100000\n50\n"
    } else {
        "67108864\n50000 100000\n50\n"
    };
    assert_eq!(out, want);
}
