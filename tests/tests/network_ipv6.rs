//! IPv6 on user-defined bridges (`docker network create --ipv6 --subnet …`), compared with
//! Docker 20.10: addresses from the network's IPv6 subnet (the gateway first, `--ip6`), the
//! default route, AAAA and PTR answers from the embedded DNS, /etc/hosts, inspect's fields,
//! docker's errors for bad input, isolation between networks over IPv6, ports published on the
//! host's IPv6 addresses, and nothing left once the networks go.

use std::net::TcpListener;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, run_command, wait_until, Daemon};

const FORWARDING: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// The tests that depend on the host's IPv6 forwarding run one at a time.
static HOST_SYSCTL: Mutex<()> = Mutex::new(());

/// Puts the host's IPv6 forwarding back as it was (the daemon turns it on, as dockerd does).
struct RestoreForwarding(String);

impl RestoreForwarding {
    fn save() -> RestoreForwarding {
        RestoreForwarding(std::fs::read_to_string(FORWARDING).unwrap_or_default())
    }
}

impl Drop for RestoreForwarding {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = std::fs::write(FORWARDING, self.0.trim());
        }
    }
}

/// An IPv6 /64 of this daemon's own (its nftables table name is unique), number `n`.
fn subnet6(d: &Daemon, n: u8) -> String {
    let table = &d.net().expect("network args").nft_table;
    let tail = &table[table.len() - 4..];
    format!("fd5e:{tail}:{n}::/64")
}

/// The `n`th address of a /64 from [`subnet6`].
fn addr6(subnet: &str, n: u32) -> String {
    format!("{}{n:x}", subnet.trim_end_matches("/64"))
}

fn sleeper(d: &Daemon, name: &str, network: &str) {
    d.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "busybox",
        "sleep",
        "120",
    ])
    .ok();
}

#[test]
fn ipv6_networks_give_addresses_routes_names_and_dockers_errors() {
    let _host = HOST_SYSCTL.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = RestoreForwarding::save();
    let d = daemon_with_busybox();
    let s1 = subnet6(&d, 1);

    // Docker 20.10 has no default IPv6 pool.
    let out = d.docker(&["network", "create", "--ipv6", "nosubnet"]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"),
        "{out}"
    );
    let bad = d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd5e::/129",
        "badcidr",
    ]);
    bad.fails_with(1);
    assert!(
        bad.stderr
            .contains("Invalid subnet fd5e::/129 : invalid CIDR address: fd5e::/129"),
        "{bad}"
    );
    let ls = d
        .docker(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout
        .clone();
    assert!(!ls.contains("nosubnet") && !ls.contains("badcidr"), "{ls}");

    d.docker(&["network", "create", "--ipv6", "--subnet", &s1, "v6a"])
        .ok();
    assert_eq!(d.inspect_format("{{.EnableIPv6}}", "v6a"), "true");
    let config = d.inspect_format("{{json .IPAM.Config}}", "v6a");
    assert!(
        config.ends_with(&format!(r#",{{"Subnet":"{s1}"}}]"#)),
        "{config}"
    );
    let overlap = d.docker(&["network", "create", "--ipv6", "--subnet", &s1, "again"]);
    overlap.fails_with(1);
    assert!(
        overlap
            .stderr
            .contains("Pool overlaps with other one on this address space"),
        "{overlap}"
    );

    sleeper(&d, "c1", "v6a");
    sleeper(&d, "c2", "v6a");
    let f = |k: &str| format!("{{{{.NetworkSettings.Networks.v6a.{k}}}}}");
    assert_eq!(
        d.inspect_format(&f("GlobalIPv6Address"), "c1"),
        addr6(&s1, 2)
    );
    assert_eq!(d.inspect_format(&f("GlobalIPv6PrefixLen"), "c1"), "64");
    assert_eq!(d.inspect_format(&f("IPv6Gateway"), "c1"), addr6(&s1, 1));
    let c2 = d.inspect_format(&f("GlobalIPv6Address"), "c2");
    assert_eq!(c2, addr6(&s1, 3));
    let members = d.inspect_format("{{json .Containers}}", "v6a");
    assert!(
        members.contains(&format!(r#""IPv6Address":"{c2}/64""#)),
        "{members}"
    );

    // Inside: the address (no duplicate address detection to wait for), the default route.
    let addrs = d
        .docker(&["exec", "c1", "ip", "-6", "addr", "show", "eth0"])
        .ok()
        .stdout
        .clone();
    assert!(
        addrs.contains(&format!("inet6 {}/64 scope global", addr6(&s1, 2))),
        "{addrs}"
    );
    assert!(
        !addrs.contains("tentative") || addrs.contains("scope link tentative"),
        "{addrs}"
    );
    let routes = d
        .docker(&["exec", "c1", "ip", "-6", "route"])
        .ok()
        .stdout
        .clone();
    assert!(
        routes.contains(&format!("default via {}", addr6(&s1, 1))),
        "{routes}"
    );
    let hosts = d
        .docker(&["exec", "c1", "cat", "/etc/hosts"])
        .ok()
        .stdout
        .clone();
    let hostname = d.inspect_format("{{.Config.Hostname}}", "c1");
    assert!(
        hosts.contains(&format!("{}\t{hostname}\n", addr6(&s1, 2))),
        "{hosts}"
    );

    // By name over IPv6: AAAA from the embedded DNS, then a ping; PTR back to the name.
    d.docker(&["exec", "c1", "ping", "-6", "-c", "1", "-W", "3", "c2"])
        .ok();
    let aaaa = d
        .docker(&["exec", "c1", "nslookup", "-type=AAAA", "c2"])
        .ok()
        .stdout
        .clone();
    assert!(aaaa.contains(&format!("Address: {c2}")), "{aaaa}");
    let ptr = d
        .docker(&["exec", "c1", "nslookup", &c2])
        .ok()
        .stdout
        .clone();
    assert!(ptr.contains("name = c2.v6a"), "{ptr}");

    // --ip6: taken, outside the subnet, on a network without IPv6, malformed.
    let fixed = addr6(&s1, 0x99);
    let show = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v6a",
        "--ip6",
        &fixed,
        "busybox",
        "ip",
        "-6",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(
        show.ok().stdout.contains(&format!("inet6 {fixed}/64")),
        "{show}"
    );
    let before = d.docker(&["ps", "-aq"]).ok().stdout.clone();
    let taken = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v6a",
        "--ip6",
        &c2,
        "busybox",
        "true",
    ]);
    assert!(taken.stderr.contains("Address already in use"), "{taken}");
    let outside = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v6a",
        "--ip6",
        "fd5f::9",
        "busybox",
        "true",
    ]);
    outside.fails_with(125);
    assert!(
        outside.stderr.contains(
            "Invalid address fd5f::9: It does not belong to any of this network's subnets"
        ),
        "{outside}"
    );
    d.docker(&["network", "create", "v4only"]).ok();
    let no_v6 = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v4only",
        "--ip6",
        &fixed,
        "busybox",
        "true",
    ]);
    no_v6.fails_with(125);
    assert!(no_v6.stderr.contains("user specified IP address is supported only when connecting to networks with user configured subnets"), "{no_v6}");
    let garbage = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v6a",
        "--ip6",
        "zz",
        "busybox",
        "true",
    ]);
    assert!(
        garbage.stderr.contains("invalid IPv6 address: zz"),
        "{garbage}"
    );
    assert_eq!(
        d.docker(&["ps", "-aq"]).ok().stdout,
        before,
        "no container was left"
    );

    // A network without IPv6 gives no IPv6 address at all (no link-local either), as Docker.
    let v4 = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v4only",
        "busybox",
        "ip",
        "-6",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(!v4.ok().stdout.contains("inet6"), "{v4}");

    // network connect --ip6 to a running container.
    sleeper(&d, "c3", "v4only");
    let joined = addr6(&s1, 0x77);
    d.docker(&["network", "connect", "--ip6", &joined, "v6a", "c3"])
        .ok();
    let eth1 = d
        .docker(&["exec", "c3", "ip", "-6", "addr", "show", "eth1"])
        .ok()
        .stdout
        .clone();
    assert!(eth1.contains(&format!("inet6 {joined}/64")), "{eth1}");
    assert_eq!(d.inspect_format(&f("GlobalIPv6Address"), "c3"), joined);
    d.docker(&["exec", "c3", "ping", "-6", "-c", "1", "-W", "3", "c1"])
        .ok();

    d.docker(&["rm", "-f", "c1", "c2", "c3"]).ok();
    d.docker(&["network", "rm", "v6a", "v4only"]).ok();
}

/// A TCP port that is free on the host right now.
fn free_port() -> u16 {
    TcpListener::bind("[::]:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

fn curl(url: &str) -> (bool, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sfg", "-m", "2", url]);
    let out = run_command(cmd, None);
    (out.code == 0, out.stdout)
}

#[test]
fn ipv6_networks_are_isolated_publish_ports_and_leave_nothing() {
    let _host = HOST_SYSCTL.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = RestoreForwarding::save();
    let d = daemon_with_busybox();
    let table = d.net().expect("network args").nft_table.clone();
    let (sa, sb) = (subnet6(&d, 1), subnet6(&d, 2));
    d.docker(&["network", "create", "--ipv6", "--subnet", &sa, "v6a"])
        .ok();
    d.docker(&["network", "create", "--ipv6", "--subnet", &sb, "v6b"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(FORWARDING).unwrap().trim(),
        "1",
        "the daemon turns IPv6 forwarding on for IPv6 networks"
    );
    let port = free_port();
    let publish = format!("{port}:80");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "v6a",
        "-p",
        &publish,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /w && echo hello6 > /w/index.html && exec httpd -f -p 80 -h /w",
    ])
    .ok();
    let web = addr6(&sa, 2);

    // Routed from v6b to v6a only if the isolation rules were missing: the host forwards.
    let ping = |net: &str, target: &str| {
        d.docker(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "ping",
            "-6",
            "-c",
            "1",
            "-W",
            "2",
            target,
        ])
        .code
            == 0
    };
    assert!(ping("v6a", &web), "same network reaches {web}");
    assert!(ping("v6b", &addr6(&sb, 1)), "v6b reaches its own gateway");
    assert!(!ping("v6b", &web), "v6b must not reach {web} on v6a");

    // Published on the host's IPv6 addresses: v6b's gateway is one (a local address), and
    // from a container of v6a through its own gateway (hairpin).
    let url = format!("http://[{}]:{port}/", addr6(&sb, 1));
    let mut body = String::new();
    let answered = wait_until(Duration::from_secs(10), || {
        let (ok, b) = curl(&url);
        body = b;
        ok
    });
    assert!(answered && body == "hello6\n", "{url}: {body:?}");
    let hairpin = format!("http://[{}]:{port}/", addr6(&sa, 1));
    let got = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v6a",
        "busybox",
        "wget",
        "-qO-",
        &hairpin,
    ]);
    assert_eq!(got.ok().stdout, "hello6\n", "{got}");
    let inspect_ports = d.inspect_format("{{json .NetworkSettings.Ports}}", "web");
    assert!(inspect_ports.contains(&port.to_string()), "{inspect_ports}");

    // Stopping the container withdraws its IPv6 port; removing the networks drops the table.
    d.docker(&["rm", "-f", "web"]).ok();
    assert!(!curl(&url).0, "{url} still answers after rm");
    let elements = {
        let mut cmd = Command::new("nft");
        cmd.args(["list", "map", "ip6", &table, "ports6"]);
        run_command(cmd, None)
    };
    assert!(!elements.ok().stdout.contains(&web), "{elements}");
    d.docker(&["network", "rm", "v6a", "v6b"]).ok();
    let gone = wait_until(Duration::from_secs(5), || {
        let mut cmd = Command::new("nft");
        cmd.args(["list", "table", "ip6", &table]);
        run_command(cmd, None).code != 0
    });
    assert!(
        gone,
        "table ip6 {table} is left after the last IPv6 network"
    );
}

#[test]
fn default_bridge_gets_ipv6_with_fixed_cidr_v6() {
    let _host = HOST_SYSCTL.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = RestoreForwarding::save();
    // A subnet of this test's own: its process ID and a per-run random part.
    let pid = std::process::id() & 0xffff;
    let salt = estiba_e2e::token();
    let fixed = format!("fd5f:{pid:x}:{}::/64", &salt[..4]);
    let d = Daemon::start_with(&["--ipv6", "--fixed-cidr-v6", &fixed]);
    let image = estiba_e2e::testimg::busybox().unwrap_or_else(|e| panic!("busybox: {e}"));
    d.load(&[&image]);
    assert_eq!(d.inspect_format("{{.EnableIPv6}}", "bridge"), "true");
    let config = d.inspect_format("{{json .IPAM.Config}}", "bridge");
    assert!(
        config.contains(&format!(r#"{{"Subnet":"{fixed}"}}"#)),
        "{config}"
    );
    d.docker(&["run", "-d", "--name", "b1", "busybox", "sleep", "120"])
        .ok();
    let ip6 = d.inspect_format("{{.NetworkSettings.GlobalIPv6Address}}", "b1");
    assert_eq!(ip6, addr6(&fixed, 2));
    assert_eq!(
        d.inspect_format("{{.NetworkSettings.IPv6Gateway}}", "b1"),
        addr6(&fixed, 1)
    );
    let ping = d.docker(&[
        "run", "--rm", "busybox", "ping", "-6", "-c", "1", "-W", "3", &ip6,
    ]);
    ping.ok();
    d.docker(&["rm", "-f", "b1"]).ok();
}

/// `estiba network create` pairs each `--gateway` with the `--subnet` that contains it, in
/// whatever order they come, as docker's CLI does; one that fits no subnet is refused before
/// anything is created.
#[test]
fn estiba_cli_pairs_gateways_with_their_subnets() {
    let _host = HOST_SYSCTL.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = RestoreForwarding::save();
    let d = daemon_with_busybox();
    let s6 = subnet6(&d, 7);
    let gw6 = addr6(&s6, 0xfe);
    // Inside this daemon's own pool (base=10.N.0.0/16), so no other test's bridge is near.
    let pool = &d.net().expect("network args").pool;
    let base = pool["base=".len()..]
        .split(".0.0/")
        .next()
        .expect("pool base");
    let v4 = format!("{base}.200.0/24");
    let gw4 = format!("{base}.200.9");
    d.estiba(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &v4,
        "--subnet",
        &s6,
        "--gateway",
        &gw6,
        "--gateway",
        &gw4,
        "paired",
    ])
    .ok();
    let config = d.inspect_format("{{json .IPAM.Config}}", "paired");
    assert_eq!(
        config,
        format!(r#"[{{"Subnet":"{v4}","Gateway":"{gw4}"}},{{"Subnet":"{s6}","Gateway":"{gw6}"}}]"#)
    );
    let stray = d.estiba(&[
        "network",
        "create",
        "--subnet",
        "10.254.78.0/24",
        "--gateway",
        "10.254.79.1",
        "stray",
    ]);
    stray.fails_with(1);
    assert!(
        stray
            .stderr
            .contains("no matching subnet for gateway 10.254.79.1"),
        "{stray}"
    );
    let ls = d
        .docker(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout
        .clone();
    assert!(!ls.contains("stray"), "{ls}");
    d.docker(&["network", "rm", "paired"]).ok();
}
