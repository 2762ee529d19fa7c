//! `state ID`: the container's OCI state as runc prints it (same fields, same order, pid 0 once
//! stopped, owner as a user name).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libcontainer::container::ContainerStatus;
use serde::Serialize;

use crate::container;
use crate::lifecycle::status_name;

/// /etc/passwd larger than this is not searched for the owner's name.
const MAX_PASSWD_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateOutput {
    pub(crate) oci_version: String,
    pub(crate) id: String,
    pub(crate) pid: i32,
    pub(crate) status: &'static str,
    pub(crate) bundle: PathBuf,
    pub(crate) rootfs: PathBuf,
    pub(crate) created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<HashMap<String, String>>,
    pub(crate) owner: String,
}

pub(crate) fn state(root: &Path, id: &str) -> anyhow::Result<StateOutput> {
    let c = container::load(root, id)?;
    let st = &c.state;
    let rootfs = container::read_spec(&st.bundle)
        .map(|spec| container::rootfs_of(&st.bundle, &spec))
        .unwrap_or_else(|_| st.bundle.join("rootfs"));
    let pid = match st.status {
        ContainerStatus::Stopped => 0,
        _ => st.pid.unwrap_or(0),
    };
    Ok(StateOutput {
        oci_version: st.oci_version.clone(),
        id: st.id.clone(),
        pid,
        status: status_name(st.status),
        bundle: crate::workload::original_bundle(&st.bundle),
        rootfs,
        created: st
            .created
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default(),
        annotations: st.annotations.clone().filter(|a| !a.is_empty()),
        owner: st.creator.map(user_name).unwrap_or_default(),
    })
}

/// The name of `uid` in the host's /etc/passwd, or the number when it has none.
fn user_name(uid: u32) -> String {
    let passwd = std::fs::metadata("/etc/passwd")
        .ok()
        .filter(|m| m.len() <= MAX_PASSWD_BYTES)
        .and_then(|_| std::fs::read_to_string("/etc/passwd").ok())
        .unwrap_or_default();
    name_in_passwd(&passwd, uid).unwrap_or_else(|| uid.to_string())
}

fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_names_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # comment\n\
                      broken\n\
                      daemon:x:1:1::/:/usr/sbin/nologin\n\
                      :x:7:7::/:/bin/false\n";
        let cases: &[(u32, Option<&str>)] = &[
            (0, Some("root")),
            (1, Some("daemon")),
            (7, None),
            (1000, None),
        ];
        for (uid, want) in cases {
            assert_eq!(name_in_passwd(passwd, *uid).as_deref(), *want, "uid {uid}");
        }
    }

    #[test]
    fn output_has_runc_field_order() {
        let out = StateOutput {
            oci_version: "1.0.2".into(),
            id: "c1".into(),
            pid: 0,
            status: "stopped",
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-02T03:04:05.123456789Z".into(),
            annotations: None,
            owner: "root".into(),
        };
        let json = serde_json::to_string(&out).unwrap_or_default();
        assert_eq!(
            json,
            "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"pid\":0,\"status\":\"stopped\",\
             \"bundle\":\"/b\",\"rootfs\":\"/b/rootfs\",\"created\":\"2026-01-02T03:04:05.123456789Z\",\
             \"owner\":\"root\"}"
        );
    }
}
