//! `features`: what this runtime supports, in the shape of runc's `features` JSON.

use serde_json::{json, Value};

pub(crate) fn features() -> Value {
    let namespaces = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ];
    let capabilities: Vec<String> = caps_all();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime",
            "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
            "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount", "ro", "rprivate",
            "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
            "suid", "symfollow", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": { "enabled": true },
            "apparmor": { "enabled": true },
            "selinux": { "enabled": false }
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features": "estiba-runtime on libcontainer",
            "io.github.youki-dev.libcontainer.version": "0.7.0"
        }
    })
}

fn caps_all() -> Vec<String> {
    // One list of capabilities for the project: the one estiba-oci builds specs from.
    estiba_oci::caps::KNOWN_CAPABILITIES
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_capability_and_cgroup_support() {
        let f = features();
        let caps = f["linux"]["capabilities"].as_array().map(Vec::len);
        assert_eq!(caps, Some(41));
        assert_eq!(f["linux"]["cgroup"]["v1"], json!(true));
        assert_eq!(f["linux"]["cgroup"]["systemd"], json!(false));
    }
}
