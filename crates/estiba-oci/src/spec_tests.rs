//! Data-driven tests of `build_spec`: input options -> selected fields of the JSON spec.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::caps::{capabilities_from_mask, DEFAULT_CAPABILITIES};
use crate::*;

const ID: &str = "473a1ca7c4151b7cabe6738b6b6d67e696e0a096e9ae377fd806aa0fafef7024";

/// This project's CI host: every capability but CAP_SYS_RESOURCE.
fn host() -> HostInfo {
    HostInfo {
        bounding_capabilities: capabilities_from_mask(0x01ff_feff_ffff),
        ..HostInfo::default()
    }
}

fn input(options: ContainerOptions) -> SpecInput {
    let dir = PathBuf::from(format!("/var/lib/estiba/containers/{ID}"));
    SpecInput {
        container_id: ID.to_owned(),
        rootfs: PathBuf::from("/var/lib/estiba/rootfs"),
        user: ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![0, 10],
            home: "/root".into(),
        },
        args: vec!["sh".into()],
        env: vec![
            format!("PATH={DEFAULT_PATH_ENV}"),
            "HOSTNAME=473a1ca7c415".into(),
        ],
        cwd: String::new(),
        hostname: "473a1ca7c415".into(),
        network_files: NetworkFiles {
            resolv_conf: Some(dir.join("resolv.conf")),
            hostname: Some(dir.join("hostname")),
            hosts: Some(dir.join("hosts")),
        },
        cgroups_path: format!("/estiba/{ID}"),
        host: host(),
        options,
        ..SpecInput::default()
    }
}

fn spec_json(options: ContainerOptions) -> Value {
    spec_json_of(&input(options))
}

fn spec_json_of(input: &SpecInput) -> Value {
    let spec = build_spec(input).unwrap();
    serde_json::to_value(&spec).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn namespaces(spec: &Value) -> Vec<String> {
    spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| match n.get("path") {
            Some(p) => format!("{}={}", n["type"].as_str().unwrap(), p.as_str().unwrap()),
            None => n["type"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn mount<'a>(spec: &'a Value, destination: &str) -> Option<&'a Value> {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == destination)
}

fn destinations(spec: &Value) -> Vec<String> {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_owned())
        .collect()
}

/// The checks a runtime's config loader makes, on the JSON a runtime would read.
fn assert_valid_oci_config(spec: &Value) {
    assert!(
        spec["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "ociVersion"
    );
    assert!(
        spec["root"]["path"].as_str().is_some_and(|p| !p.is_empty()),
        "root.path"
    );
    let process = &spec["process"];
    assert!(
        !strings(&process["args"]).is_empty(),
        "process.args non-empty"
    );
    assert!(
        process["cwd"].as_str().is_some_and(|c| c.starts_with('/')),
        "cwd absolute"
    );
    assert!(
        process["user"]["uid"].is_u64() && process["user"]["gid"].is_u64(),
        "user"
    );
    for m in spec["mounts"].as_array().unwrap() {
        assert!(
            m["destination"]
                .as_str()
                .is_some_and(|d| d.starts_with('/')),
            "{m}"
        );
    }
    let ns = namespaces(spec);
    let mut unique = ns.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ns.len(), "namespace types unique: {ns:?}");
    // And it reads back as the same spec (capability sets are unordered).
    let back: oci_spec::runtime::Spec = serde_json::from_value(spec.clone()).unwrap();
    let again: oci_spec::runtime::Spec =
        serde_json::from_value(serde_json::to_value(&back).unwrap()).unwrap();
    assert_eq!(back, again);
    assert_eq!(
        serde_json::to_value(&back).unwrap()["mounts"],
        spec["mounts"]
    );
}

#[test]
fn defaults_match_docker() {
    let spec = spec_json(ContainerOptions::default());
    assert_valid_oci_config(&spec);
    assert_eq!(spec["ociVersion"], "1.2.1");
    assert_eq!(spec["hostname"], "473a1ca7c415");
    assert_eq!(spec["root"], json!({"path": "/var/lib/estiba/rootfs"}));

    let p = &spec["process"];
    assert_eq!(p["args"], json!(["sh"]));
    assert_eq!(p["cwd"], "/");
    assert_eq!(p["terminal"], false);
    assert_eq!(p["oomScoreAdj"], 0);
    assert_eq!(
        p["user"],
        json!({"uid": 0, "gid": 0, "additionalGids": [0, 10]})
    );
    assert!(p.get("noNewPrivileges").is_none());
    assert!(p.get("rlimits").is_none());
    let default_caps = sorted(
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
    );
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(
            sorted(strings(&p["capabilities"][set])),
            default_caps,
            "{set}"
        );
    }
    assert!(p["capabilities"].get("inheritable").is_none());
    assert!(p["capabilities"].get("ambient").is_none());

    let l = &spec["linux"];
    assert_eq!(namespaces(&spec), ["mount", "network", "uts", "pid", "ipc"]);
    assert_eq!(l["cgroupsPath"], format!("/estiba/{ID}"));
    assert_eq!(
        l["sysctl"],
        json!({"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"})
    );
    assert_eq!(strings(&l["maskedPaths"]), DEFAULT_MASKED_PATHS);
    assert_eq!(strings(&l["readonlyPaths"]), DEFAULT_READONLY_PATHS);
    assert_eq!(l["devices"], json!([]));
    assert_eq!(l["resources"]["devices"].as_array().unwrap().len(), 8);
    assert_eq!(l["resources"]["memory"], json!({"disableOOMKiller": false}));
    assert_eq!(l["resources"]["blockIO"], json!({}));
    assert!(l["resources"].get("cpu").is_none());
    assert!(l["resources"].get("pids").is_none());
    assert!(l.get("seccomp").is_none());
    assert!(l.get("rootfsPropagation").is_none());
}

/// The mount list of a container Docker 20.10 really ran (`docker run -d -i --tmpfs
/// /run:size=64m --tmpfs /tmp busybox sh`), copied from its config.json.
#[test]
fn mounts_match_a_real_docker_config() {
    let spec = spec_json(ContainerOptions {
        tmpfs: vec![
            TmpfsMount {
                destination: "/run".into(),
                options: "size=64m".into(),
            },
            TmpfsMount {
                destination: "/tmp".into(),
                options: String::new(),
            },
        ],
        ..Default::default()
    });
    let dir = format!("/var/lib/estiba/containers/{ID}");
    let want = json!([
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "nosuid", "nodev", "rprivate", "size=64m"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "nosuid", "nodev", "rprivate"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": format!("{dir}/resolv.conf"), "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hostname", "type": "bind", "source": format!("{dir}/hostname"), "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hosts", "type": "bind", "source": format!("{dir}/hosts"), "options": ["rbind", "rprivate"]},
    ]);
    assert_eq!(spec["mounts"], want);
}

#[test]
fn namespace_table() {
    let cases: Vec<(ContainerOptions, &[&str], bool)> = vec![
        (
            ContainerOptions::default(),
            &["mount", "network", "uts", "pid", "ipc"],
            true,
        ),
        (
            ContainerOptions {
                network: NetworkMode::Host,
                ..Default::default()
            },
            &["mount", "uts", "pid", "ipc"],
            true,
        ),
        (
            ContainerOptions {
                network: NetworkMode::None,
                ..Default::default()
            },
            &["mount", "network", "uts", "pid", "ipc"],
            true,
        ),
        (
            ContainerOptions {
                network: NetworkMode::Path("/proc/42/ns/net".into()),
                ..Default::default()
            },
            &["mount", "network=/proc/42/ns/net", "uts", "pid", "ipc"],
            true,
        ),
        (
            ContainerOptions {
                pid: PidMode::Host,
                ipc: IpcMode::Host,
                ..Default::default()
            },
            &["mount", "network", "uts"],
            true,
        ),
        (
            ContainerOptions {
                uts: UtsMode::Host,
                ..Default::default()
            },
            &["mount", "network", "pid", "ipc"],
            false,
        ),
        (
            ContainerOptions {
                pid: PidMode::Path("/proc/7/ns/pid".into()),
                ipc: IpcMode::Path {
                    ns: "/proc/7/ns/ipc".into(),
                    shm: None,
                },
                cgroupns: CgroupnsMode::Private,
                ..Default::default()
            },
            &[
                "mount",
                "network",
                "uts",
                "pid=/proc/7/ns/pid",
                "ipc=/proc/7/ns/ipc",
                "cgroup",
            ],
            true,
        ),
    ];
    for (opts, want, has_hostname) in cases {
        let spec = spec_json(opts.clone());
        assert_valid_oci_config(&spec);
        assert_eq!(namespaces(&spec), want, "{opts:?}");
        assert_eq!(spec.get("hostname").is_some(), has_hostname, "{opts:?}");
    }
}

#[test]
fn network_sysctls_only_for_our_own_namespace() {
    let cases = [
        (NetworkMode::Private, true),
        (NetworkMode::None, true),
        (NetworkMode::Host, false),
        (NetworkMode::Path("/proc/1/ns/net".into()), false),
    ];
    for (network, has) in cases {
        let spec = spec_json(ContainerOptions {
            network: network.clone(),
            ..Default::default()
        });
        let sysctl = &spec["linux"]["sysctl"];
        assert_eq!(
            sysctl.get("net.ipv4.ping_group_range").is_some(),
            has,
            "{network:?}"
        );
        assert_eq!(
            sysctl.get("net.ipv4.ip_unprivileged_port_start").is_some(),
            has,
            "{network:?}"
        );
    }
    let mut opts = ContainerOptions {
        domainname: "example.org".into(),
        ..Default::default()
    };
    opts.sysctls
        .insert("net.ipv4.ping_group_range".into(), "1 1".into());
    let spec = spec_json(opts);
    assert_eq!(spec["linux"]["sysctl"]["kernel.domainname"], "example.org");
    assert_eq!(spec["linux"]["sysctl"]["net.ipv4.ping_group_range"], "1 1");
}

#[test]
fn capability_table() {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let with = |extra: &[&str]| {
        let mut v = s(&DEFAULT_CAPABILITIES);
        v.extend(s(extra));
        sorted(v)
    };
    let cases: Vec<(ContainerOptions, Vec<String>)> = vec![
        (
            ContainerOptions {
                cap_add: s(&["net_admin"]),
                ..Default::default()
            },
            with(&["CAP_NET_ADMIN"]),
        ),
        (
            ContainerOptions {
                cap_drop: s(&["ALL"]),
                cap_add: s(&["CAP_CHOWN"]),
                ..Default::default()
            },
            s(&["CAP_CHOWN"]),
        ),
        (
            ContainerOptions {
                cap_drop: s(&["all"]),
                ..Default::default()
            },
            vec![],
        ),
        (
            ContainerOptions {
                cap_add: s(&["ALL"]),
                ..Default::default()
            },
            sorted(host().bounding_capabilities),
        ),
        (
            ContainerOptions {
                privileged: true,
                ..Default::default()
            },
            sorted(host().bounding_capabilities),
        ),
    ];
    for (opts, want) in cases {
        let spec = spec_json(opts.clone());
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(
                sorted(strings(&spec["process"]["capabilities"][set])),
                want,
                "{opts:?}"
            );
        }
    }
    let err = build_spec(&input(ContainerOptions {
        cap_add: s(&["sys_resource"]),
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\""
    );
    let err = build_spec(&input(ContainerOptions {
        cap_drop: s(&["bogus"]),
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown capability: \"CAP_BOGUS\"");
}

#[test]
fn privileged() {
    let mut inp = input(ContainerOptions {
        privileged: true,
        ..Default::default()
    });
    inp.host_devices = crate::devices::host_devices().unwrap();
    inp.seccomp = Some(oci_spec::runtime::LinuxSeccomp::default());
    let spec = spec_json_of(&inp);
    assert_valid_oci_config(&spec);
    let l = &spec["linux"];
    assert!(
        l.get("maskedPaths").is_none_or(|v| v == &json!([])),
        "{}",
        l["maskedPaths"]
    );
    assert!(l.get("readonlyPaths").is_none_or(|v| v == &json!([])));
    assert!(l.get("seccomp").is_none(), "privileged is unconfined");
    assert_eq!(
        l["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    let devices = l["devices"].as_array().unwrap();
    assert!(devices.iter().any(|d| d["path"] == "/dev/null"));
    assert_eq!(
        mount(&spec, "/sys").unwrap()["options"],
        json!(["nosuid", "noexec", "nodev"])
    );
    assert_eq!(
        mount(&spec, "/sys/fs/cgroup").unwrap()["options"],
        json!(["nosuid", "noexec", "nodev"])
    );
}

#[test]
fn masked_paths_overrides_and_thermal_throttle() {
    let mut inp = input(ContainerOptions::default());
    inp.host.thermal_throttle_paths = vec!["/sys/devices/system/cpu/cpu0/thermal_throttle".into()];
    let spec = spec_json_of(&inp);
    let masked = strings(&spec["linux"]["maskedPaths"]);
    assert_eq!(masked.len(), 13);
    assert_eq!(
        masked.last().unwrap(),
        "/sys/devices/system/cpu/cpu0/thermal_throttle"
    );

    let spec = spec_json(ContainerOptions {
        masked_paths: Some(vec!["/proc/x".into()]),
        readonly_paths: Some(vec![]),
        ..Default::default()
    });
    assert_eq!(spec["linux"]["maskedPaths"], json!(["/proc/x"]));
    assert_eq!(spec["linux"]["readonlyPaths"], json!([]));
}

#[test]
fn read_only_rootfs() {
    let spec = spec_json(ContainerOptions {
        read_only: true,
        tmpfs: vec![TmpfsMount {
            destination: "/tmp".into(),
            options: String::new(),
        }],
        ..Default::default()
    });
    assert_eq!(spec["root"]["readonly"], true);
    for dest in ["/etc/resolv.conf", "/etc/hostname", "/etc/hosts"] {
        assert_eq!(
            mount(&spec, dest).unwrap()["options"],
            json!(["rbind", "ro", "rprivate"]),
            "{dest}"
        );
    }
    assert_eq!(
        mount(&spec, "/tmp").unwrap()["options"],
        json!(["noexec", "nosuid", "nodev", "rprivate"])
    );
    assert_eq!(
        mount(&spec, "/dev").unwrap()["options"],
        json!(["nosuid", "strictatime", "mode=755", "size=65536k"])
    );
    assert_eq!(
        mount(&spec, "/proc").unwrap()["options"],
        json!(["nosuid", "noexec", "nodev"])
    );
}

#[test]
fn shm_and_ipc_table() {
    let cases: Vec<(ContainerOptions, Option<Value>)> = vec![
        (
            ContainerOptions {
                shm_size_bytes: Some(1 << 30),
                ..Default::default()
            },
            Some(
                json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=1073741824"]}),
            ),
        ),
        (
            ContainerOptions {
                ipc: IpcMode::None,
                ..Default::default()
            },
            None,
        ),
        (
            ContainerOptions {
                ipc: IpcMode::Host,
                ..Default::default()
            },
            Some(
                json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]}),
            ),
        ),
        (
            ContainerOptions {
                ipc: IpcMode::Path {
                    ns: "/proc/9/ns/ipc".into(),
                    shm: Some("/var/lib/estiba/containers/x/mounts/shm".into()),
                },
                ..Default::default()
            },
            Some(
                json!({"destination": "/dev/shm", "type": "bind", "source": "/var/lib/estiba/containers/x/mounts/shm", "options": ["rbind", "rprivate"]}),
            ),
        ),
        (
            ContainerOptions {
                tmpfs: vec![TmpfsMount {
                    destination: "/dev/shm".into(),
                    options: "size=1m".into(),
                }],
                ..Default::default()
            },
            Some(
                json!({"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]}),
            ),
        ),
    ];
    for (opts, want) in cases {
        let spec = spec_json(opts.clone());
        let shm: Vec<&Value> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.first().copied(), want.as_ref(), "{opts:?}");
        assert!(shm.len() <= 1);
    }
}

#[test]
fn user_mounts_sorted_and_overriding() {
    let bind = |src: &str, dst: &str, writable: bool| BindMount {
        source: src.into(),
        destination: dst.into(),
        writable,
        propagation: Propagation::Rprivate,
        non_recursive: false,
    };
    let spec = spec_json(ContainerOptions {
        binds: vec![
            bind("/srv/deep", "/data/a/b", true),
            bind("/srv/data", "/data", false),
            bind("/srv/dev", "/dev", true),
            bind("/srv/resolv", "/etc/resolv.conf", false),
            BindMount {
                non_recursive: true,
                propagation: Propagation::Rshared,
                ..bind("/srv/x", "/x", true)
            },
        ],
        ..Default::default()
    });
    assert_valid_oci_config(&spec);
    // /dev from the user: Docker drops every default under /dev.
    assert_eq!(
        destinations(&spec),
        [
            "/proc",
            "/sys",
            "/sys/fs/cgroup",
            "/data",
            "/dev",
            "/x",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts",
            "/data/a/b"
        ]
    );
    assert_eq!(
        mount(&spec, "/data").unwrap()["options"],
        json!(["rbind", "ro", "rprivate"])
    );
    assert_eq!(
        mount(&spec, "/x").unwrap()["options"],
        json!(["bind", "rshared"])
    );
    assert_eq!(
        mount(&spec, "/etc/resolv.conf").unwrap()["source"],
        "/srv/resolv"
    );
    assert_eq!(spec["linux"]["rootfsPropagation"], "shared");

    let err = build_spec(&input(ContainerOptions {
        binds: vec![bind("/a", "rel", true)],
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid mount path: 'rel' mount path must be absolute"
    );
    let err = build_spec(&input(ContainerOptions {
        tmpfs: vec![TmpfsMount {
            destination: "/t".into(),
            options: "bogus".into(),
        }],
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid tmpfs option [\"bogus\"]");
}

#[test]
fn init_table() {
    let mut inp = input(ContainerOptions {
        init: true,
        ..Default::default()
    });
    inp.args = vec!["sleep".into(), "1".into()];
    inp.init_path = Some("/usr/libexec/estiba/estiba-init".into());
    let spec = spec_json_of(&inp);
    assert_eq!(
        spec["process"]["args"],
        json!(["/sbin/docker-init", "--", "sleep", "1"])
    );
    let m = mount(&spec, "/sbin/docker-init").unwrap();
    assert_eq!(
        m,
        &json!({"destination": "/sbin/docker-init", "type": "bind", "source": "/usr/libexec/estiba/estiba-init", "options": ["bind", "ro"]})
    );
    // Right after the defaults, before the user's mounts (moby's order).
    assert_eq!(destinations(&spec)[7], "/sbin/docker-init");

    // Not in the host's PID namespace: there is an init already.
    inp.options.pid = PidMode::Host;
    let spec = spec_json_of(&inp);
    assert_eq!(spec["process"]["args"], json!(["sleep", "1"]));
    assert!(mount(&spec, "/sbin/docker-init").is_none());

    inp.options.pid = PidMode::Private;
    inp.init_path = None;
    assert_eq!(
        build_spec(&inp).unwrap_err().to_string(),
        "--init needs an init binary and none is configured"
    );
}

#[test]
fn resources_table() {
    let r = |f: fn(&mut Resources)| {
        let mut res = Resources::default();
        f(&mut res);
        res
    };
    let cases: Vec<(Resources, Value)> = vec![
        (
            r(|r| {
                r.memory_bytes = 64 << 20;
                r.memory_swap_bytes = 128 << 20;
            }),
            json!({"memory": {"limit": 67108864, "swap": 134217728, "disableOOMKiller": false}}),
        ),
        (
            r(|r| {
                r.memory_bytes = 64 << 20;
                r.memory_swap_bytes = -1;
                r.memory_reservation_bytes = 32 << 20;
                r.oom_kill_disable = true;
                r.memory_swappiness = Some(10);
            }),
            json!({"memory": {"limit": 67108864, "reservation": 33554432, "swappiness": 10, "disableOOMKiller": true}}),
        ),
        (
            r(|r| r.nano_cpus = 500_000_000),
            json!({"cpu": {"quota": 50000, "period": 100000}}),
        ),
        (
            r(|r| r.nano_cpus = 1_500_000_000),
            json!({"cpu": {"quota": 150000, "period": 100000}}),
        ),
        (
            r(|r| {
                r.cpu_quota = 20000;
                r.cpu_period = 50000;
                r.cpu_shares = 512;
                r.cpuset_cpus = "0-1".into();
            }),
            json!({"cpu": {"shares": 512, "quota": 20000, "period": 50000, "cpus": "0-1"}}),
        ),
        (
            r(|r| r.pids_limit = Some(50)),
            json!({"pids": {"limit": 50}}),
        ),
        (
            r(|r| r.pids_limit = Some(0)),
            json!({"pids": {"limit": -1}}),
        ),
        (
            r(|r| r.pids_limit = Some(-5)),
            json!({"pids": {"limit": -1}}),
        ),
        (
            r(|r| r.blkio_weight = 300),
            json!({"blockIO": {"weight": 300}}),
        ),
    ];
    for (res, want) in cases {
        let spec = spec_json(ContainerOptions {
            resources: res.clone(),
            ..Default::default()
        });
        let got = &spec["linux"]["resources"];
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(&got[key], value, "{res:?}");
        }
    }
    let err = build_spec(&input(ContainerOptions {
        resources: r(|r| r.cpu_shares = -1),
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid CPU shares (-1): value must be a positive integer"
    );
}

#[test]
fn process_table() {
    let spec = spec_json(ContainerOptions {
        tty: true,
        console_size: Some((24, 80)),
        no_new_privileges: true,
        oom_score_adj: 500,
        ulimits: vec![
            Ulimit::parse("nofile=1024:2048").unwrap(),
            Ulimit::parse("nproc=-1").unwrap(),
        ],
        ..Default::default()
    });
    let p = &spec["process"];
    assert_eq!(p["terminal"], true);
    assert_eq!(p["consoleSize"], json!({"height": 24, "width": 80}));
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(p["oomScoreAdj"], 500);
    assert_eq!(
        p["rlimits"],
        json!([
            {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024},
            {"type": "RLIMIT_NPROC", "hard": u64::MAX, "soft": u64::MAX},
        ])
    );

    let mut inp = input(ContainerOptions::default());
    inp.cwd = "/work".into();
    inp.user = ResolvedUser {
        uid: 65534,
        gid: 65534,
        additional_gids: vec![65534],
        home: String::new(),
    };
    let spec = spec_json_of(&inp);
    assert_eq!(spec["process"]["cwd"], "/work");
    assert_eq!(
        spec["process"]["user"],
        json!({"uid": 65534, "gid": 65534, "additionalGids": [65534]})
    );
    // Docker 28 gives a non-root user the same capability sets as root.
    assert_eq!(
        strings(&spec["process"]["capabilities"]["effective"]).len(),
        14
    );

    inp.args.clear();
    assert_eq!(
        build_spec(&inp).unwrap_err().to_string(),
        "no command specified"
    );
}

#[test]
fn device_cgroup_rules_are_appended() {
    let spec = spec_json(ContainerOptions {
        device_cgroup_rules: vec!["c 42:* rmw".into()],
        ..Default::default()
    });
    let rules = spec["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules.len(), 9);
    assert_eq!(
        rules[8],
        json!({"allow": true, "type": "c", "major": 42, "minor": -1, "access": "rmw"})
    );
    let err = build_spec(&input(ContainerOptions {
        device_cgroup_rules: vec!["q".into()],
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid device cgroup rule format: 'q'");
}

/// The whole path a daemon takes: image + options -> command, env, user -> spec.
#[test]
fn end_to_end_from_image_and_options() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\n",
    )
    .unwrap();
    let image = ImageDefaults {
        env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C".into()],
        cmd: Some(vec!["sh".into()]),
        working_dir: "/srv".into(),
        user: "nobody".into(),
        ..Default::default()
    };
    let opts = ContainerOptions {
        cmd: Some(vec!["echo".into(), "hi".into()]),
        env: vec!["LANG=en_US.UTF-8".into()],
        hostname: "abc".into(),
        tty: true,
        ..Default::default()
    };
    let user_spec = if opts.user.is_empty() {
        &image.user
    } else {
        &opts.user
    };
    let user = resolve_user(dir.path(), user_spec, &opts.group_add).unwrap();
    let inp = SpecInput {
        rootfs: dir.path().to_owned(),
        user,
        args: merge_command(&image, &opts).unwrap(),
        env: merge_env(&image, &opts),
        cwd: image.working_dir.clone(),
        hostname: opts.hostname.clone(),
        options: opts,
        host: host(),
        ..SpecInput::default()
    };
    let spec = spec_json_of(&inp);
    assert_valid_oci_config(&spec);
    let p = &spec["process"];
    assert_eq!(p["args"], json!(["echo", "hi"]));
    assert_eq!(
        p["env"],
        json!([
            "PATH=/usr/bin:/bin",
            "HOSTNAME=abc",
            "TERM=xterm",
            "LANG=en_US.UTF-8"
        ])
    );
    assert_eq!(p["cwd"], "/srv");
    assert_eq!(
        p["user"],
        json!({"uid": 65534, "gid": 65534, "additionalGids": [65534]})
    );
    assert_eq!(spec["hostname"], "abc");
}

/// Nothing but what Docker writes: oci-spec's own defaults (youki's) must not leak in.
#[test]
fn no_foreign_defaults() {
    let spec = spec_json(ContainerOptions::default());
    let keys = |v: &Value| sorted(v.as_object().unwrap().keys().cloned().collect());
    assert_eq!(
        keys(&spec),
        [
            "hostname",
            "linux",
            "mounts",
            "ociVersion",
            "process",
            "root"
        ]
    );
    assert_eq!(
        keys(&spec["process"]),
        [
            "args",
            "capabilities",
            "cwd",
            "env",
            "oomScoreAdj",
            "terminal",
            "user"
        ]
    );
    assert_eq!(
        keys(&spec["process"]["capabilities"]),
        ["bounding", "effective", "permitted"]
    );
    assert_eq!(keys(&spec["root"]), ["path"]);
    assert_eq!(
        keys(&spec["linux"]),
        [
            "cgroupsPath",
            "devices",
            "maskedPaths",
            "namespaces",
            "readonlyPaths",
            "resources",
            "sysctl"
        ]
    );
    assert_eq!(
        keys(&spec["linux"]["resources"]),
        ["blockIO", "devices", "memory"]
    );
    if std::env::var_os("ESTIBA_PRINT_SPEC").is_some() {
        println!("{}", serde_json::to_string_pretty(&spec).unwrap());
    }
}

#[test]
fn validation_at_create_time() {
    let s = |v: &str| v.to_owned();
    let cases: Vec<(ContainerOptions, Option<&str>)> = vec![
        (ContainerOptions::default(), None),
        (
            ContainerOptions {
                init: true,
                ..Default::default()
            },
            None,
        ),
        (
            ContainerOptions {
                cap_add: vec![s("nope")],
                ..Default::default()
            },
            Some("unknown capability: \"CAP_NOPE\""),
        ),
        (
            ContainerOptions {
                tmpfs: vec![TmpfsMount {
                    destination: s("/x"),
                    options: s("foo"),
                }],
                ..Default::default()
            },
            Some("invalid tmpfs option [\"foo\"]"),
        ),
        (
            ContainerOptions {
                tmpfs: vec![TmpfsMount {
                    destination: s("x"),
                    options: String::new(),
                }],
                ..Default::default()
            },
            Some("invalid mount path: 'x' mount path must be absolute"),
        ),
        (
            ContainerOptions {
                resources: Resources {
                    cpu_shares: -2,
                    ..Default::default()
                },
                ..Default::default()
            },
            Some("invalid CPU shares (-2): value must be a positive integer"),
        ),
    ];
    for (opts, want) in cases {
        let got = validate_options(&opts, &host())
            .err()
            .map(|e| e.to_string());
        assert_eq!(got.as_deref(), want, "{opts:?}");
    }
}
