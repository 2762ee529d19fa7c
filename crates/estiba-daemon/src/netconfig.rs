//! The network service's configuration from the daemon's networking flags.

use anyhow::{bail, Result};

use crate::config::Config;

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
    Ok(net)
}
