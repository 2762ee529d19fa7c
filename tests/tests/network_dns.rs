//! The embedded DNS server beyond A records: PTR queries for containers' addresses answered as
//! `<name>.<network>` (as Docker does), and DNS over TCP on 127.0.0.11:53.

use estiba_e2e::{daemon_with_busybox, Daemon};

fn ip_of(d: &Daemon, container: &str, network: &str) -> String {
    let f = format!("{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}");
    d.docker(&["inspect", "-f", &f, container])
        .ok()
        .stdout
        .trim()
        .to_owned()
}

#[test]
fn ptr_queries_name_containers_of_shared_networks() {
    let d = daemon_with_busybox();
    d.docker(&["network", "create", "ptrnet"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "ptrnet",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let ip = ip_of(&d, "p1", "ptrnet");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "ptrnet",
        "busybox",
        "nslookup",
        &ip,
        "127.0.0.11",
    ]);
    let rev: Vec<&str> = ip.rsplit('.').collect();
    let want = format!("{}.in-addr.arpa\tname = p1.ptrnet", rev.join("."));
    assert!(out.ok().stdout.contains(&want), "{out}");
    // A network p1 is not on gets no answer about it from us.
    d.docker(&["network", "create", "othernet"]).ok();
    let other = d.docker(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "nslookup",
        &ip,
        "127.0.0.11",
    ]);
    assert!(!other.stdout.contains("p1.ptrnet"), "{other}");
    d.docker(&["rm", "-f", "p1"]).ok();
    d.docker(&["network", "rm", "ptrnet", "othernet"]).ok();
}

#[test]
fn dns_over_tcp_answers_container_names() {
    let d = daemon_with_busybox();
    d.docker(&["network", "create", "tcpnet"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "t1",
        "--network",
        "tcpnet",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let ip = ip_of(&d, "t1", "tcpnet");
    // One length-prefixed query (RFC 7766) for "t1" A, id 0x1234, sent with nc; the reply's
    // bytes are printed one decimal per line.
    let query =
        r"\000\024\022\064\001\000\000\001\000\000\000\000\000\000\002t1\000\000\001\000\001";
    let script =
        format!("printf '{query}' | nc -w 5 127.0.0.11 53 | od -An -tu1 -v | tr -s ' ' '\\n'");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "tcpnet",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let bytes: Vec<u8> = out
        .ok()
        .stdout
        .split_whitespace()
        .filter_map(|b| b.parse().ok())
        .collect();
    assert!(bytes.len() > 6, "no reply: {out}");
    let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    assert_eq!(len, bytes.len() - 2, "length prefix: {bytes:?}");
    assert_eq!(&bytes[2..4], &[0x12, 0x34], "id: {bytes:?}");
    // One answer, ending with t1's address.
    assert_eq!(&bytes[8..10], &[0, 1], "ANCOUNT: {bytes:?}");
    let want: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    assert!(bytes.ends_with(&want), "{bytes:?} does not end with {ip}");
    d.docker(&["rm", "-f", "t1"]).ok();
    d.docker(&["network", "rm", "tcpnet"]).ok();
}
