//! The files Docker generates for a container and bind-mounts into it: `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf`.

use std::path::Path;

/// Largest host resolv.conf read.
const MAX_RESOLV_CONF_BYTES: u64 = 64 * 1024;

/// Docker's nameservers when the host has only loopback ones (unreachable from a container).
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// `/etc/hosts` as Docker writes it: the loopback entries, then `--add-host` entries.
pub(crate) fn hosts(extra_hosts: &[String]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for entry in extra_hosts {
        // `--add-host name:ip` (or `name=ip`); the IP may itself contain colons.
        let split = entry.split_once('=').or_else(|| entry.split_once(':'));
        if let Some((name, ip)) = split {
            out.push_str(&format!("{}\t{}\n", ip.trim_matches(['[', ']']), name));
        }
    }
    out
}

/// The container's resolv.conf from the host's: loopback nameservers are dropped (they are not
/// reachable from the container's own network namespace) unless the container shares the
/// host's network; with none left, Docker's public fallbacks; `--dns*` replace their parts.
pub(crate) fn resolv_conf(
    host_conf: &str,
    host_network: bool,
    dns: &[String],
    dns_search: &[String],
    dns_options: &[String],
) -> String {
    let mut nameservers = Vec::new();
    let mut search = Vec::new();
    let mut options = Vec::new();
    let mut other = Vec::new();
    for line in host_conf.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    let loopback = ns.starts_with("127.") || ns == "::1";
                    if host_network || !loopback {
                        nameservers.push(ns.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            Some(w) if !w.starts_with('#') && !w.starts_with(';') => other.push(line.to_string()),
            _ => {}
        }
    }
    if !dns.is_empty() {
        nameservers = dns.to_vec();
    }
    if nameservers.is_empty() {
        nameservers = FALLBACK_NAMESERVERS.map(String::from).to_vec();
    }
    if !dns_search.is_empty() {
        search = dns_search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !dns_options.is_empty() {
        options = dns_options.to_vec();
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    for line in other {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The host's `/etc/resolv.conf` (empty when unreadable).
pub(crate) fn host_resolv_conf() -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Ok(f) = std::fs::File::open(Path::new("/etc/resolv.conf")) {
        let _ = f.take(MAX_RESOLV_CONF_BYTES).read_to_string(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_like_docker() {
        let cases: &[(&str, bool, &[&str], &str)] = &[
            (
                "nameserver 127.0.0.53\nsearch lan\noptions edns0\n",
                false,
                &[],
                "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n",
            ),
            (
                "nameserver 127.0.0.53\n",
                true,
                &[],
                "nameserver 127.0.0.53\n",
            ),
            (
                "# c\nnameserver 10.0.0.1\n",
                false,
                &[],
                "nameserver 10.0.0.1\n",
            ),
            (
                "nameserver 10.0.0.1\n",
                false,
                &["1.1.1.1"],
                "nameserver 1.1.1.1\n",
            ),
        ];
        for (host, host_net, dns, want) in cases {
            let dns: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                resolv_conf(host, *host_net, &dns, &[], &[]),
                *want,
                "{host}"
            );
        }
    }

    #[test]
    fn hosts_with_extra_entries() {
        let h = hosts(&["db:10.0.0.2".to_string(), "v6=::1".to_string()]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.2\tdb\n::1\tv6\n"), "{h}");
    }
}
