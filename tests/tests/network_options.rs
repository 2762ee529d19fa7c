//! The bridge driver's options: `enable_icc=false` keeps a network's containers from reaching
//! each other (the gateway stays reachable), `enable_ip_masquerade=false` drops the network's
//! masquerade rule, and values Go's ParseBool rejects give docker's error and create nothing.

use std::process::Command;

use estiba_e2e::{daemon_with_busybox, run_command, testimg, Daemon};

fn pings(d: &Daemon, network: &str, target: &str) -> bool {
    let args = [
        "run",
        "--rm",
        "--network",
        network,
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        target,
    ];
    d.docker(&args).code == 0
}

#[test]
fn enable_icc_false_isolates_containers_of_one_network() {
    let d = daemon_with_busybox();
    for (name, icc) in [("icc", "true"), ("noicc", "false")] {
        let opt = format!("com.docker.network.bridge.enable_icc={icc}");
        d.docker(&["network", "create", "-o", &opt, name]).ok();
        let c = format!("{name}-c");
        d.docker(&[
            "run",
            "-d",
            "--name",
            &c,
            "--network",
            name,
            "busybox",
            "sleep",
            "60",
        ])
        .ok();
    }
    let f = |n: &str| format!("{{{{.NetworkSettings.Networks.{n}.IPAddress}}}}");
    let on_icc = d.inspect_format(&f("icc"), "icc-c");
    let on_noicc = d.inspect_format(&f("noicc"), "noicc-c");
    assert!(pings(&d, "icc", &on_icc), "icc=true must reach {on_icc}");
    assert!(
        !pings(&d, "noicc", &on_noicc),
        "icc=false must not reach {on_noicc}"
    );
    let gw = d.inspect_format("{{(index .IPAM.Config 0).Gateway}}", "noicc");
    assert!(pings(&d, "noicc", &gw), "the gateway {gw} stays reachable");
    let opts = d.inspect_format("{{json .Options}}", "noicc");
    assert_eq!(opts, r#"{"com.docker.network.bridge.enable_icc":"false"}"#);
    d.docker(&["rm", "-f", "icc-c", "noicc-c"]).ok();
    d.docker(&["network", "rm", "icc", "noicc"]).ok();
}

#[test]
fn enable_ip_masquerade_false_has_no_masquerade_rule() {
    let d = Daemon::start();
    let table = d
        .net()
        .map(|n| n.nft_table.clone())
        .unwrap_or_else(|| panic!("the harness gives every daemon its own table"));
    d.docker(&["network", "create", "--subnet", "10.252.41.0/24", "masq"])
        .ok();
    d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.252.42.0/24",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
        "nomasq",
    ])
    .ok();
    // The ruleset is applied in the background; a container joining waits for it, and so
    // does listing it here after a run.
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    d.docker(&["run", "--rm", "--network", "nomasq", "busybox", "true"])
        .ok();
    let mut cmd = Command::new("nft");
    cmd.args(["list", "chain", "ip", &table, "postrouting"]);
    let rules = run_command(cmd, None).stdout;
    assert!(
        rules.contains("ip saddr 10.252.41.0/24 oifname != "),
        "{rules}"
    );
    assert!(!rules.contains("ip saddr 10.252.42.0/24"), "{rules}");
    d.docker(&["network", "rm", "masq", "nomasq"]).ok();
}

#[test]
fn bad_bool_options_give_dockers_error_and_create_nothing() {
    let d = Daemon::start();
    for key in ["enable_icc", "enable_ip_masquerade"] {
        let opt = format!("com.docker.network.bridge.{key}=foo");
        let out = d.docker(&["network", "create", "-o", &opt, "bad"]);
        out.fails_with(1);
        assert!(
            out.stderr.contains(&format!(
                "failed to parse com.docker.network.bridge.{key} value: foo (strconv.ParseBool: parsing \"foo\": invalid syntax)"
            )),
            "{out}"
        );
    }
    let names = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.ok().lines().contains(&"bad"));
}

/// `docker network prune`: unused user networks go, networks in use and the predefined ones
/// stay, and `until` keeps the networks created after the cut-off.
#[test]
fn network_prune_honours_labels_until_and_use() {
    let d = Daemon::start();
    for (name, label) in [("keepme", "k=v"), ("old1", "x=y"), ("old2", "x=y")] {
        d.docker(&["network", "create", "--label", label, name])
            .ok();
    }
    // Created just now: a one-hour `until` keeps them all.
    let out = d.docker(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(out.ok().stdout, "", "{out}");
    let out = d.docker(&[
        "network",
        "prune",
        "-f",
        "--filter",
        "label=x=y",
        "--filter",
        "until=0s",
    ]);
    let mut removed = out
        .ok()
        .lines()
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>();
    removed.sort();
    assert_eq!(removed, ["Deleted Networks:", "old1", "old2"], "{out}");
    let out = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    let mut left = out
        .ok()
        .lines()
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>();
    left.sort();
    assert_eq!(left, ["bridge", "host", "keepme", "none"]);
    let out = d.docker(&["network", "prune", "-f", "--filter", "until=soon"]);
    assert_ne!(out.code, 0, "{out}");
}
