//! The network service's configuration from the daemon's networking flags and daemon.json's
//! network keys.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde_json::{Map, Value};

use crate::config::{Config, ConfigError, NetFlags};

/// Most `default-address-pools` entries daemon.json may give.
const MAX_POOLS: usize = 256;

/// Longest Linux interface name.
const MAX_IFNAME: usize = 15;

/// `-b`, `--bip`, `--default-address-pool`, `--mtu`, `--nft-table` checked and converted.
pub(crate) fn net_config(config: &Config) -> Result<estiba_net::NetConfig> {
    let f = &config.net;
    let mut net = estiba_net::NetConfig::new(config.exec_root.clone(), config.data_root.clone());
    match f.bridge.as_deref() {
        Some("none") => net.bridge = None,
        Some(b) if b.is_empty() || b.len() > MAX_IFNAME || b.contains('/') => {
            bail!("invalid bridge name: {b}")
        }
        Some(b) => net.bridge = Some(b.to_string()),
        None => {}
    }
    if let Some(bip) = &f.bip {
        match estiba_net::Cidr::parse(bip) {
            Some(c) => net.bip = Some(c),
            None => bail!("invalid value for --bip: invalid CIDR address: {bip}"),
        }
    }
    for p in &f.default_address_pools {
        match estiba_net::Pool::parse(p) {
            Some(pool) => net.pools.push(pool),
            None => bail!("invalid default address pool: {p}"),
        }
    }
    let t = &f.nft_table;
    if t.is_empty()
        || t.len() > 64
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("invalid --nft-table name: {t}");
    }
    net.nft_table = t.clone();
    net.mtu = f.mtu;
    net.ipv6 = f.ipv6;
    if let Some(c) = &f.fixed_cidr_v6 {
        match estiba_net::Cidr6::parse(c) {
            Some(c) => net.fixed_cidr_v6 = Some(c),
            None => bail!("invalid value for --fixed-cidr-v6: invalid CIDR address: {c}"),
        }
    }
    Ok(net)
}

/// The networking flags as daemon.json values (for the flag/file conflict check).
pub(crate) fn flag_values(f: &NetFlags, m: &mut BTreeMap<&'static str, Value>) {
    if let Some(b) = &f.bridge {
        m.insert("bridge", Value::from(b.clone()));
    }
    if let Some(b) = &f.bip {
        m.insert("bip", Value::from(b.clone()));
    }
    if !f.default_address_pools.is_empty() {
        m.insert(
            "default-address-pools",
            Value::from(f.default_address_pools.clone()),
        );
    }
    if let Some(mtu) = f.mtu {
        m.insert("mtu", Value::from(mtu));
    }
    if f.ipv6 {
        m.insert("ipv6", Value::from(true));
    }
    if let Some(c) = &f.fixed_cidr_v6 {
        m.insert("fixed-cidr-v6", Value::from(c.clone()));
    }
}

/// The flags with daemon.json's `bridge`, `bip`, `default-address-pools` (dockerd's
/// `[{"base": "10.10.0.0/16", "size": 24}]`) and `mtu` filled in (a key in both is refused
/// before this).
pub(crate) fn merge_file(f: &NetFlags, file: &Map<String, Value>) -> Result<NetFlags, ConfigError> {
    let bad = |key: &str, reason: &str| ConfigError::Value {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let mut net = f.clone();
    match file.get("ipv6") {
        None => {}
        Some(Value::Bool(b)) => net.ipv6 = *b,
        Some(_) => return Err(bad("ipv6", "expected a boolean")),
    }
    for (key, slot) in [
        ("bridge", &mut net.bridge),
        ("bip", &mut net.bip),
        ("fixed-cidr-v6", &mut net.fixed_cidr_v6),
    ] {
        match file.get(key) {
            None => {}
            Some(Value::String(s)) => *slot = Some(s.clone()),
            Some(_) => return Err(bad(key, "expected a string")),
        }
    }
    match file.get("mtu") {
        None => {}
        Some(v) => {
            let mtu = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("mtu", "expected a non-negative integer"))?;
            net.mtu = Some(mtu);
        }
    }
    const KEY: &str = "default-address-pools";
    match file.get(KEY) {
        None => {}
        Some(Value::Array(pools)) if pools.len() <= MAX_POOLS => {
            for p in pools {
                let base = p.get("base").and_then(Value::as_str);
                let size = p.get("size").and_then(Value::as_u64);
                match (base, size) {
                    (Some(base), Some(size)) => net
                        .default_address_pools
                        .push(format!("base={base},size={size}")),
                    _ => {
                        return Err(bad(
                            KEY,
                            "expected a list of {\"base\": CIDR, \"size\": N} objects",
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(bad(
                KEY,
                "expected a list of {\"base\": CIDR, \"size\": N} objects",
            ))
        }
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};
    use serde_json::json;

    use crate::config::{given_flags, merge, Flags};

    fn merged(args: &[&str], file: Value) -> Result<NetFlags, String> {
        merged_config(args, file).map(|c| c.net)
    }

    fn merged_config(args: &[&str], file: Value) -> Result<Config, String> {
        let mut argv = vec!["estibad"];
        argv.extend_from_slice(args);
        let matches = Flags::command()
            .try_get_matches_from(argv)
            .map_err(|e| e.to_string())?;
        let flags = Flags::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        let given = given_flags(&flags, &matches);
        let file = file.as_object().cloned().unwrap_or_default();
        merge(
            &flags,
            &given,
            Some(&file),
            Some(std::path::Path::new("/etc/d.json")),
        )
        .map_err(|e| e.to_string())
    }

    /// The network service's configuration from flags; the daemon refuses to start on an error.
    fn net(args: &[&str]) -> Result<estiba_net::NetConfig, String> {
        let config = merged_config(args, json!({}))?;
        net_config(&config).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_network_flags_are_refused_with_their_value() {
        for (args, want) in [
            (
                &["--fixed-cidr-v6", "fd00::/129"][..],
                "invalid value for --fixed-cidr-v6: invalid CIDR address: fd00::/129",
            ),
            (
                &["--fixed-cidr-v6", "10.0.0.0/8"][..],
                "invalid value for --fixed-cidr-v6: invalid CIDR address: 10.0.0.0/8",
            ),
            (
                &["--bip", "10.1.2/24"][..],
                "invalid value for --bip: invalid CIDR address: 10.1.2/24",
            ),
            (
                &["-b", "a-bridge-name-too-long"][..],
                "invalid bridge name: a-bridge-name-too-long",
            ),
            (
                &["--nft-table", "bad table"][..],
                "invalid --nft-table name: bad table",
            ),
        ] {
            assert_eq!(net(args).unwrap_err(), want, "{args:?}");
        }
        let ok = net(&["--ipv6", "--fixed-cidr-v6", "fd00:1::/64"]).unwrap();
        assert!(ok.ipv6);
        assert_eq!(
            ok.fixed_cidr_v6.map(|c| c.to_string()).as_deref(),
            Some("fd00:1::/64")
        );
    }

    use super::*;

    #[test]
    fn daemon_json_network_keys() {
        let net = merged(
            &[],
            json!({"bridge": "br9", "bip": "10.1.2.1/24", "mtu": 1400,
                   "default-address-pools": [{"base": "10.9.0.0/16", "size": 24}]}),
        )
        .unwrap();
        assert_eq!(net.bridge.as_deref(), Some("br9"));
        assert_eq!(net.bip.as_deref(), Some("10.1.2.1/24"));
        assert_eq!(net.mtu, Some(1400));
        assert_eq!(net.default_address_pools, ["base=10.9.0.0/16,size=24"]);
        // Flags alone still work, and the file may set what the flags leave alone.
        let net = merged(&["--mtu", "1300"], json!({"bridge": "none"})).unwrap();
        assert_eq!((net.bridge.as_deref(), net.mtu), (Some("none"), Some(1300)));
        let net = merged(&[], json!({"ipv6": true, "fixed-cidr-v6": "fd00:1::/64"})).unwrap();
        assert!(net.ipv6);
        assert_eq!(net.fixed_cidr_v6.as_deref(), Some("fd00:1::/64"));
        assert_eq!(
            merged(&["--ipv6"], json!({"ipv6": false})).unwrap_err(),
            "unable to configure the Docker daemon with file /etc/d.json: the following directives are specified both as a flag and in the configuration file: ipv6: (from flag: true, from file: false)"
        );
        assert!(merged(&[], json!({"ipv6": "yes"}))
            .unwrap_err()
            .contains("ipv6"));
    }

    #[test]
    fn daemon_json_network_keys_refuse_bad_values_and_conflicts() {
        for (file, want) in [
            (
                json!({"mtu": "x"}),
                "invalid value for mtu: expected a non-negative integer",
            ),
            (
                json!({"bip": 3}),
                "invalid value for bip: expected a string",
            ),
            (
                json!({"default-address-pools": [{"base": "10.9.0.0/16"}]}),
                "invalid value for default-address-pools",
            ),
            (
                json!({"default-address-pools": "10.9.0.0/16"}),
                "invalid value for default-address-pools",
            ),
        ] {
            let err = merged(&[], file).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let err = merged(&["--bip", "10.1.1.1/24"], json!({"bip": "10.2.2.1/24"})).unwrap_err();
        assert!(
            err.contains("specified both as a flag and in the configuration file: bip: (from flag: 10.1.1.1/24, from file: 10.2.2.1/24)"),
            "{err}"
        );
    }
}
