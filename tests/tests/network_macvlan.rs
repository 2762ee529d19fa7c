//! The macvlan driver (bridge mode) on a parent interface: containers get their own MAC and
//! address on the parent's segment and reach each other; repeated runs reuse addresses cleanly.

use std::process::Command;

use estiba_e2e::{run_command, testimg, token, Daemon};

/// A veth pair standing in for a physical parent interface; deleted on drop.
struct Parent(String);

impl Parent {
    fn new() -> Parent {
        let name = format!("mvp{}", &token()[..8]);
        let peer = format!("{name}p");
        for args in [
            vec![
                "link",
                "add",
                name.as_str(),
                "type",
                "veth",
                "peer",
                "name",
                peer.as_str(),
            ],
            vec!["link", "set", name.as_str(), "up"],
            vec!["link", "set", peer.as_str(), "up"],
        ] {
            let mut cmd = Command::new("ip");
            cmd.args(&args);
            run_command(cmd, None).ok();
        }
        Parent(name)
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        let mut cmd = Command::new("ip");
        cmd.args(["link", "del", &self.0]);
        let _ = run_command(cmd, None);
    }
}

#[test]
fn macvlan_containers_reach_each_other_on_the_parent_segment() {
    let parent = Parent::new();
    let d = Daemon::start();
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    let opt = format!("parent={}", parent.0);
    d.docker(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.250.77.0/24",
        "-o",
        &opt,
        "mv",
    ])
    .ok();
    let opts = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{.Options.parent}}",
        "mv",
    ]);
    assert_eq!(opts.ok().stdout.trim(), format!("macvlan {}", parent.0));
    d.docker(&[
        "run",
        "-d",
        "--name",
        "m1",
        "--network",
        "mv",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let mac = d.docker(&["exec", "m1", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac.ok().stdout.trim(), "02:42:0a:fa:4d:02");
    let mode = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{.Options.macvlan_mode}}",
        "mv",
    ]);
    assert_eq!(mode.ok().stdout.trim(), "bridge");
    for _ in 0..3 {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "mv",
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "10.250.77.2",
        ]);
        assert!(out.ok().stdout.contains("1 packets received"), "{out}");
    }
    d.docker(&["rm", "-f", "m1"]).ok();
    d.docker(&["network", "rm", "mv"]).ok();
}
