//! 500 create/start/rm cycles (the count) on the default bridge and a user network, with published ports,
//! leave no veth, nftables element, address allocation or namespace behind.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use estiba_e2e::{disk, run_command, testimg, wait_until, Daemon};

/// Containers run (with `--rm`), `BATCH` at a time.
const RUNS: usize = 500;
const BATCH: usize = 8;
/// How long teardown may take to settle after the last command returned.
const SETTLE: Duration = Duration::from_secs(20);

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Elements of one of the daemon's nftables maps.
fn map_elements(table: &str, map: &str) -> String {
    let mut cmd = Command::new("nft");
    cmd.args(["list", "map", "ip", table, map]);
    let out = run_command(cmd, None);
    out.stdout
        .lines()
        .filter(|l| l.contains("elements"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn create_start_rm_cycles_leave_nothing_behind() {
    let d = Daemon::start();
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    let net = d
        .net()
        .cloned()
        .unwrap_or_else(|| panic!("the harness gives every daemon its own bridge"));
    d.docker(&["network", "create", "cycles"]).ok();
    let user_bridge = {
        let out = d.docker(&["network", "inspect", "-f", "{{.Id}}", "cycles"]);
        format!("br-{}", &out.ok().stdout.trim()[..12])
    };
    let mut done = 0;
    while done < RUNS {
        let children: Vec<_> = (done..(done + BATCH).min(RUNS))
            .map(|i| {
                let mut args = vec!["run", "--rm"];
                if i % 2 == 0 {
                    args.extend(["-p", "80", "-p", "127.0.0.1::81/udp"]);
                }
                if i % 3 == 0 {
                    args.extend(["--network", "cycles"]);
                }
                args.extend(["busybox", "ip", "-4", "-o", "addr", "show", "eth0"]);
                let mut cmd = d.command(estiba_e2e::Cli::Docker, &args);
                cmd.stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                cmd.spawn().unwrap_or_else(|e| panic!("docker run: {e}"))
            })
            .collect();
        for child in children {
            let out = child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("docker run: {e}"));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("inet "),
                "run failed: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        done += BATCH;
    }
    let netns = d.exec_root().join("netns");
    let settled = wait_until(SETTLE, || {
        entries(&netns).is_empty()
            && entries(&Path::new("/sys/class/net").join(&net.bridge).join("brif")).is_empty()
            && entries(&Path::new("/sys/class/net").join(&user_bridge).join("brif")).is_empty()
    });
    assert!(
        settled,
        "left behind: netns {:?}, ports on {}: {:?}, on {user_bridge}: {:?}",
        entries(&netns),
        net.bridge,
        entries(&Path::new("/sys/class/net").join(&net.bridge).join("brif")),
        entries(&Path::new("/sys/class/net").join(&user_bridge).join("brif"))
    );
    assert!(disk::mounts_under(&netns).is_empty(), "netns mounts left");
    for map in ["ports", "ports_ip"] {
        let left = map_elements(&net.nft_table, map);
        assert!(left.is_empty(), "nft map {map} still has: {left}");
    }
    for network in ["bridge", "cycles"] {
        let out = d.docker(&["network", "inspect", "-f", "{{len .Containers}}", network]);
        assert_eq!(out.ok().stdout.trim(), "0", "{network} still has endpoints");
    }
    d.docker(&["network", "rm", "cycles"]).ok();
    // The bridge is taken down at once and deleted in the background.
    let gone = wait_until(SETTLE, || {
        !Path::new("/sys/class/net").join(&user_bridge).exists()
    });
    assert!(gone, "bridge {user_bridge} left behind");
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn ip(args: &[&str]) {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run_command(cmd, None).ok();
}

/// A daemon killed while link deletions were queued leaves their names in
/// `<exec-root>/net-pending/`; the next start deletes those links, and only those.
#[test]
fn links_left_queued_by_a_killed_daemon_are_deleted_at_the_next_start() {
    let mut d = Daemon::start();
    let token = estiba_e2e::token();
    let (queued, foreign) = (
        format!("esq{}", &token[..10]),
        format!("esf{}", &token[..10]),
    );
    ip(&["link", "add", &queued, "type", "bridge"]);
    ip(&["link", "add", &foreign, "type", "bridge"]);
    d.kill9();
    let pending = d.exec_root().join("net-pending");
    std::fs::create_dir_all(&pending).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(pending.join(&queued), "").unwrap_or_else(|e| panic!("{e}"));
    d.restart();
    let swept = !link_exists(&queued);
    let kept = link_exists(&foreign);
    let _ = Command::new("ip").args(["link", "del", &foreign]).status();
    let _ = Command::new("ip").args(["link", "del", &queued]).status();
    assert!(swept, "{queued} was left behind");
    assert!(kept, "{foreign}, not estiba's, was deleted");
    assert!(
        !pending.join(&queued).exists(),
        "the record outlived its link"
    );

    // The real sequence: network rm answered, the daemon killed at once, started again.
    let out = d.docker(&["network", "create", "doomed"]);
    let id = out.ok().stdout.trim().to_owned();
    let bridge = format!("br-{}", &id[..12]);
    assert!(link_exists(&bridge));
    d.docker(&["network", "rm", "doomed"]).ok();
    d.kill9();
    d.restart();
    assert!(
        wait_until(Duration::from_secs(10), || !link_exists(&bridge)),
        "{bridge} survived the kill"
    );
}
