//! Commands that act on a container's cgroup directly: `ps` and `update`.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use libcgroups::common::{AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt};
use oci_spec::runtime::LinuxResources;

use crate::container;

/// A resources document larger than this is refused.
const MAX_RESOURCES_BYTES: u64 = 1024 * 1024;

fn manager(root: &Path, id: &str) -> anyhow::Result<AnyCgroupManager> {
    let c = container::load(root, id)?;
    let config = c.spec().context("load container config")?;
    libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: false,
        container_name: id.to_owned(),
    })
    .context("open container cgroup")
}

/// Pids of every process in the container's cgroup.
pub(crate) fn pids(root: &Path, id: &str) -> anyhow::Result<Vec<i32>> {
    let pids = manager(root, id)?
        .get_all_pids()
        .context("list container processes")?;
    Ok(pids.iter().map(|p| p.as_raw()).collect())
}

/// `ps`: json prints the pid array; table prints host `ps` lines (default `-ef`) for those pids.
pub(crate) fn ps(
    root: &Path,
    id: &str,
    format: &str,
    ps_options: &[String],
) -> anyhow::Result<String> {
    let pids = pids(root, id)?;
    match format {
        "json" => Ok(format!("{}\n", serde_json::to_string(&pids)?)),
        "table" => {
            let options: Vec<String> = if ps_options.is_empty() {
                vec!["-ef".to_owned()]
            } else {
                ps_options.to_vec()
            };
            let out = Command::new("ps")
                .args(&options)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!("ps failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            filter_ps_table(&String::from_utf8_lossy(&out.stdout), &pids)
        }
        other => bail!("invalid format option {other:?}: expected table or json"),
    }
}

/// Keeps the header and the lines whose PID column is one of `pids`.
fn filter_ps_table(table: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let Some(pid_col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `update --resources FILE|-`: applies OCI LinuxResources to the running container's cgroup.
pub(crate) fn update(root: &Path, id: &str, resources: &Path) -> anyhow::Result<()> {
    let mut data = Vec::new();
    if resources == Path::new("-") {
        std::io::stdin()
            .take(MAX_RESOURCES_BYTES + 1)
            .read_to_end(&mut data)
            .context("read resources from stdin")?;
    } else {
        std::fs::File::open(resources)
            .with_context(|| format!("open {}", resources.display()))?
            .take(MAX_RESOURCES_BYTES + 1)
            .read_to_end(&mut data)
            .with_context(|| format!("read {}", resources.display()))?;
    }
    if data.len() as u64 > MAX_RESOURCES_BYTES {
        bail!("resources document larger than {MAX_RESOURCES_BYTES} bytes");
    }
    let res: LinuxResources = serde_json::from_slice(&data).context("parse resources")?;
    manager(root, id)?
        .apply(&ControllerOpt {
            resources: &res,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .context("apply resources")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_table_keeps_header_and_container_pids() {
        let table = "UID PID PPID C STIME TTY TIME CMD\n\
                     root 1 0 0 10:00 ? 00:00:01 /sbin/init\n\
                     root 42 1 0 10:00 ? 00:00:00 sleep 100\n\
                     root 420 1 0 10:00 ? 00:00:00 other\n";
        let got = filter_ps_table(table, &[42]).ok();
        assert_eq!(
            got.as_deref(),
            Some("UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n")
        );
        assert!(filter_ps_table("A B C\n1 2 3\n", &[1]).is_err());
    }
}
