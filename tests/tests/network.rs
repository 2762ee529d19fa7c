//! Networking end to end with the real docker CLI: published ports (127.0.0.1, the host's own
//! address, -P and `docker port`), user networks and their isolation, connect/disconnect, none
//! and host modes, SIGKILL of the daemon, and docker's errors for bad input.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, run_command, wait_until, Daemon};

/// How long a container's httpd may take to answer.
const HTTP_WAIT: Duration = Duration::from_secs(10);

/// A TCP port that is free on the host right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

/// The host's first global IPv4 address (eth0's here), found at run time.
fn host_address() -> String {
    let mut cmd = Command::new("ip");
    cmd.args(["-4", "-o", "addr", "show", "scope", "global"]);
    let out = run_command(cmd, None);
    out.stdout
        .lines()
        .filter(|l| !l.contains(" es") && !l.contains(" br-") && !l.contains("docker"))
        .find_map(|l| {
            let mut w = l.split_whitespace();
            w.position(|x| x == "inet")?;
            Some(w.next()?.split('/').next()?.to_owned())
        })
        .unwrap_or_else(|| panic!("no global IPv4 address: {out}"))
}

/// `curl` of `url`, retried until it answers 200 (bounded); returns the body.
fn curl_until_ok(url: &str) -> String {
    let mut body = String::new();
    let answered = wait_until(HTTP_WAIT, || {
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", "-m", "2", url]);
        let out = run_command(cmd, None);
        body = out.stdout;
        out.code == 0
    });
    assert!(answered, "{url} never answered");
    body
}

fn curl_fails(url: &str) -> bool {
    let mut cmd = Command::new("curl");
    cmd.args(["-sf", "-m", "2", url]);
    run_command(cmd, None).code != 0
}

#[test]
fn published_port_answers_on_loopback_and_host_address() {
    let d = daemon_with_busybox();
    let port = free_port();
    let publish = format!("{port}:80");
    let id = d.docker(&[
        "run",
        "-d",
        "-p",
        &publish,
        "--hostname",
        "webhost",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    id.ok();
    let body = curl_until_ok(&format!("http://127.0.0.1:{port}/hostname"));
    assert_eq!(body.trim(), "webhost");
    let body = curl_until_ok(&format!("http://{}:{port}/hostname", host_address()));
    assert_eq!(body.trim(), "webhost");
    let cid = id.stdout.trim();
    let out = d.docker(&["port", cid]);
    out.ok();
    assert_eq!(out.stdout.trim(), format!("80/tcp -> 0.0.0.0:{port}"));
    let ports = d.docker(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", cid]);
    assert_eq!(
        ports.ok().stdout.trim(),
        format!("{{\"80/tcp\":[{{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"{port}\"}}]}}")
    );
    // The same host port again is refused and leaves nothing behind.
    let again = d.docker(&["run", "-d", "-p", &publish, "busybox", "sleep", "5"]);
    assert_ne!(again.code, 0, "{again}");
    assert!(
        again.stderr.contains("port is already allocated"),
        "{again}"
    );
    d.docker(&["rm", "-f", cid]).ok();
    assert!(curl_fails(&format!("http://127.0.0.1:{port}/hostname")));
}

#[test]
fn publish_all_ports_are_listed_by_docker_port() {
    let d = daemon_with_busybox();
    let out = d.docker(&[
        "run", "-d", "--expose", "80", "--expose", "81", "-P", "busybox", "httpd", "-f", "-p",
        "80", "-h", "/etc",
    ]);
    let cid = out.ok().stdout.trim().to_owned();
    let ports = d.docker(&["port", &cid]);
    let lines = ports
        .ok()
        .lines()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    assert_eq!(lines.len(), 2, "{ports}");
    assert!(lines[0].starts_with("80/tcp -> 0.0.0.0:"), "{ports}");
    assert!(lines[1].starts_with("81/tcp -> 0.0.0.0:"), "{ports}");
    let host_port: u16 = lines[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {ports}"));
    assert!((32768..=60999).contains(&host_port), "{ports}");
    let one = d.docker(&["port", &cid, "80"]);
    assert_eq!(one.ok().stdout.trim(), format!("0.0.0.0:{host_port}"));
    curl_until_ok(&format!("http://127.0.0.1:{host_port}/hostname"));
    d.docker(&["rm", "-f", &cid]).ok();
}

fn ip_of(d: &Daemon, container: &str, network: &str) -> String {
    let f = format!("{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}");
    let out = d.docker(&["inspect", "-f", &f, container]);
    out.ok().stdout.trim().to_owned()
}

fn pings(d: &Daemon, network: &str, target: &str) -> bool {
    let out = d.docker(&[
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
    ]);
    out.code == 0
}

#[test]
fn user_networks_reach_within_and_are_isolated_from_each_other() {
    let d = daemon_with_busybox();
    d.docker(&["network", "create", "neta"]).ok();
    d.docker(&["network", "create", "netb"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "a1",
        "--network",
        "neta",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "b1",
        "--network",
        "netb",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let a1 = ip_of(&d, "a1", "neta");
    let b1 = ip_of(&d, "b1", "netb");
    assert!(!a1.is_empty() && !b1.is_empty() && a1 != b1);
    assert!(pings(&d, "neta", &a1), "same network must reach {a1}");
    assert!(!pings(&d, "netb", &a1), "netb must not reach neta's {a1}");
    assert!(
        !pings(&d, "bridge", &b1),
        "the default bridge must not reach netb's {b1}"
    );
    // Inspect shows the member with its address.
    let net = d.docker(&["network", "inspect", "neta"]).json();
    let members = net[0]["Containers"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(members.len(), 1, "{net}");
    let member = members.values().next().cloned().unwrap_or_default();
    assert_eq!(member["Name"], "a1");
    assert!(member["IPv4Address"]
        .as_str()
        .unwrap_or("")
        .starts_with(&format!("{a1}/")));
    d.docker(&["rm", "-f", "a1", "b1"]).ok();
    d.docker(&["network", "rm", "neta", "netb"]).ok();
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let d = daemon_with_busybox();
    d.docker(&["network", "create", "--subnet", "10.251.7.0/24", "extra"])
        .ok();
    d.docker(&["run", "-d", "--name", "cc", "busybox", "sleep", "60"])
        .ok();
    d.docker(&["network", "connect", "--ip", "10.251.7.9", "extra", "cc"])
        .ok();
    let addrs = d.docker(&["exec", "cc", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.ok().stdout.contains("eth1    inet 10.251.7.9/24"),
        "{addrs}"
    );
    assert_eq!(ip_of(&d, "cc", "extra"), "10.251.7.9");
    assert!(pings(&d, "extra", "10.251.7.9"));
    let again = d.docker(&["network", "connect", "extra", "cc"]);
    assert_ne!(again.code, 0, "{again}");
    d.docker(&["network", "disconnect", "extra", "cc"]).ok();
    let addrs = d.docker(&["exec", "cc", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.ok().stdout.contains("10.251.7."), "{addrs}");
    let nets = d.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "cc"]);
    assert!(!nets.ok().stdout.contains("extra"), "{nets}");
    d.docker(&["rm", "-f", "cc"]).ok();
    d.docker(&["network", "rm", "extra"]).ok();
    let now = chrono_now_secs();
    let events = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &now,
        "--filter",
        "type=network",
        "--filter",
        "network=extra",
        "--format",
        "{{.Action}}",
    ]);
    // cc connects, the pinging container connects and leaves, cc disconnects.
    assert_eq!(
        events.ok().lines(),
        [
            "create",
            "connect",
            "connect",
            "disconnect",
            "disconnect",
            "destroy"
        ],
        "{events}"
    );
}

/// Seconds since the epoch, for `docker events --until`.
fn chrono_now_secs() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() + 1).to_string())
        .unwrap_or_default()
}

#[test]
fn none_has_only_loopback_and_host_sees_the_hosts_interfaces() {
    let d = daemon_with_busybox();
    let none = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(
        none.ok().stdout.split_whitespace().collect::<Vec<_>>(),
        ["lo"]
    );
    let host = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let mut theirs: Vec<String> = host
        .ok()
        .stdout
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    theirs.sort();
    let ours = std::fs::read_dir("/sys/class/net")
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for name in ["lo", "eth0"] {
        if ours.iter().any(|o| o == name) {
            assert!(
                theirs.iter().any(|t| t == name),
                "host mode lacks {name}: {host}"
            );
        }
    }
    let bridge = d.docker(&["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(
        bridge.ok().stdout.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"]
    );
}

#[test]
fn bad_input_gets_dockers_errors_and_changes_nothing() {
    let d = daemon_with_busybox();
    d.docker(&["network", "create", "--subnet", "10.252.3.0/24", "first"])
        .ok();
    let before = d.docker(&["network", "ls", "-q"]).ok().stdout.clone();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "network",
                "create",
                "--subnet",
                "10.252.3.128/25",
                "overlap",
            ],
            "Pool overlaps with other one on this address space",
        ),
        (
            &["network", "create", "--subnet", "10.252.4/24", "malformed"],
            "invalid CIDR address: 10.252.4/24",
        ),
        (
            &["network", "create", "first"],
            "network with name first already exists",
        ),
        (
            &["network", "rm", "bridge"],
            "bridge is a pre-defined network and cannot be removed",
        ),
    ];
    for (args, message) in cases {
        let out = d.docker(args);
        assert_ne!(out.code, 0, "{out}");
        assert!(out.stderr.contains(message), "want {message:?}: {out}");
    }
    d.docker(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        "first",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let in_use = d.docker(&["network", "rm", "first"]);
    assert_ne!(in_use.code, 0);
    assert!(in_use.stderr.contains("has active endpoints"), "{in_use}");
    let outside = d.docker(&[
        "run",
        "--rm",
        "--network",
        "first",
        "--ip",
        "10.9.9.9",
        "busybox",
        "true",
    ]);
    assert_ne!(outside.code, 0);
    assert!(
        outside
            .stderr
            .contains("no configured subnet or ip-range contain the IP address 10.9.9.9"),
        "{outside}"
    );
    assert_eq!(d.docker(&["network", "ls", "-q"]).ok().stdout, before);
    let members = d.docker(&["network", "inspect", "-f", "{{len .Containers}}", "first"]);
    assert_eq!(members.ok().stdout.trim(), "1");
    d.docker(&["rm", "-f", "user"]).ok();
    d.docker(&["network", "rm", "first"]).ok();
}

#[test]
fn sigkill_of_the_daemon_keeps_published_ports_answering() {
    let mut d = daemon_with_busybox();
    let port = free_port();
    let publish = format!("{port}:80");
    let out = d.docker(&[
        "run", "-d", "-p", &publish, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
    ]);
    let cid = out.ok().stdout.trim().to_owned();
    let url = format!("http://127.0.0.1:{port}/hostname");
    curl_until_ok(&url);
    d.kill9();
    curl_until_ok(&url);
    d.restart();
    curl_until_ok(&url);
    assert_eq!(
        d.docker(&["port", &cid]).ok().stdout.trim(),
        format!("80/tcp -> 0.0.0.0:{port}")
    );
    d.docker(&["rm", "-f", &cid]).ok();
    assert!(curl_fails(&url));
}

#[test]
fn containers_resolve_each_other_by_name_and_alias_on_user_networks() {
    let d = daemon_with_busybox();
    d.docker(&["network", "create", "dnsnet"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "dnsnet",
        "--network-alias",
        "cache",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let ip = ip_of(&d, "db", "dnsnet");
    for name in ["db", "cache"] {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "dnsnet",
            "busybox",
            "nslookup",
            name,
        ]);
        assert!(
            out.ok().stdout.contains(&format!("Address: {ip}")),
            "{name}: {out}"
        );
        assert!(pings(&d, "dnsnet", name), "ping {name}");
    }
    let resolv = d.docker(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        resolv.ok().stdout.contains("nameserver 127.0.0.11"),
        "{resolv}"
    );
    // The default bridge has no DNS by name, as Docker's.
    let out = d.docker(&["run", "--rm", "busybox", "nslookup", "db"]);
    assert!(!out.stdout.contains(&format!("Address: {ip}")), "{out}");
    // A name on another network is not visible.
    d.docker(&["network", "create", "othernet"]).ok();
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "nslookup",
        "db",
    ]);
    assert!(!out.stdout.contains(&format!("Address: {ip}")), "{out}");
    d.docker(&["rm", "-f", "db"]).ok();
    d.docker(&["network", "rm", "dnsnet", "othernet"]).ok();
}

#[test]
fn container_mode_links_and_hairpin() {
    let d = daemon_with_busybox();
    let port = free_port();
    let publish = format!("{port}:80");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "webhost",
        "-p",
        &publish,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ])
    .ok();
    curl_until_ok(&format!("http://127.0.0.1:{port}/hostname"));
    // container: shares web's namespace, so web's httpd is on its loopback.
    let shared = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "busybox",
        "wget",
        "-qO-",
        "http://127.0.0.1/hostname",
    ]);
    assert_eq!(shared.ok().stdout.trim(), "webhost");
    // --link puts web under its alias in /etc/hosts.
    let linked = d.docker(&[
        "run",
        "--rm",
        "--link",
        "web:w",
        "busybox",
        "wget",
        "-qO-",
        "http://w/hostname",
    ]);
    assert_eq!(linked.ok().stdout.trim(), "webhost");
    // Another container reaches the published port through the host's address (hairpin NAT).
    let url = format!("http://{}:{port}/hostname", host_address());
    let hairpin = d.docker(&["run", "--rm", "busybox", "wget", "-qO-", &url]);
    assert_eq!(hairpin.ok().stdout.trim(), "webhost");
    d.docker(&["rm", "-f", "web"]).ok();
}
