//! IPv4 and IPv6 subnets and address allocation: parsing, overlap, default pools that avoid
//! the host's own routes (IPv4; IPv6 subnets are always the user's, as in Docker 20.10), and the
//! lowest free address of a subnet.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// An IPv4 subnet, `addr/prefix`, with the host bits of `addr` kept as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`; `None` when malformed.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 32 && p.len() <= 2).then_some(Cidr { addr, prefix })
    }

    pub fn mask(self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Cidr {
        Cidr {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        let p = self.prefix.min(other.prefix);
        let m = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// Number of addresses.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`th address of the subnet.
    pub fn nth(self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network().addr) + n as u32))
    }

    /// The subnet's broadcast address.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv6 subnet, `addr/prefix`, with the host bits of `addr` kept as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Cidr6 {
    /// Parses `x:y::z/n`; `None` when malformed.
    pub fn parse(s: &str) -> Option<Cidr6> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv6Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 128 && p.len() <= 3).then_some(Cidr6 { addr, prefix })
    }

    fn mask(self) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Cidr6 {
        Cidr6 {
            addr: Ipv6Addr::from(u128::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    pub fn contains(self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr) & self.mask()
    }

    pub fn overlaps(self, other: Cidr6) -> bool {
        let p = self.prefix.min(other.prefix);
        let m = u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0);
        u128::from(self.addr) & m == u128::from(other.addr) & m
    }

    /// The `n`th address of the subnet.
    pub fn nth(self, n: u128) -> Option<Ipv6Addr> {
        (n & self.mask() == 0).then(|| Ipv6Addr::from(u128::from(self.network().addr) | n))
    }
}

impl std::fmt::Display for Cidr6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One `--default-address-pool base=...,size=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub base: Cidr,
    pub size: u8,
}

impl Pool {
    /// Parses `base=10.10.0.0/16,size=24`.
    pub fn parse(s: &str) -> Option<Pool> {
        let mut base = None;
        let mut size = None;
        for part in s.split(',') {
            match part.split_once('=')? {
                ("base", v) => base = Some(Cidr::parse(v)?.network()),
                ("size", v) => size = Some(v.parse::<u8>().ok()?),
                _ => return None,
            }
        }
        let (base, size) = (base?, size?);
        (size >= base.prefix && size <= 30).then_some(Pool { base, size })
    }

    /// Docker's defaults: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
    pub fn defaults() -> Vec<Pool> {
        vec![
            Pool {
                base: Cidr {
                    addr: Ipv4Addr::new(172, 17, 0, 0),
                    prefix: 16,
                },
                size: 16,
            },
            Pool {
                base: Cidr {
                    addr: Ipv4Addr::new(172, 18, 0, 0),
                    prefix: 15,
                },
                size: 16,
            },
            Pool {
                base: Cidr {
                    addr: Ipv4Addr::new(172, 20, 0, 0),
                    prefix: 14,
                },
                size: 16,
            },
            Pool {
                base: Cidr {
                    addr: Ipv4Addr::new(172, 24, 0, 0),
                    prefix: 13,
                },
                size: 16,
            },
            Pool {
                base: Cidr {
                    addr: Ipv4Addr::new(192, 168, 0, 0),
                    prefix: 16,
                },
                size: 20,
            },
        ]
    }

    /// The subnets of this pool, in order.
    pub fn subnets(self) -> impl Iterator<Item = Cidr> {
        let count = 1u64 << (self.size - self.base.prefix);
        let step = 1u64 << (32 - u32::from(self.size));
        let start = u64::from(u32::from(self.base.network().addr));
        (0..count).map(move |i| Cidr {
            addr: Ipv4Addr::from((start + i * step) as u32),
            prefix: self.size,
        })
    }
}

/// The host's IPv4 routes (from /proc/net/route), so new subnets do not shadow them.
pub(crate) fn host_routes() -> Vec<Cidr> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None; // the default route overlaps everything
            }
            Some(Cidr {
                addr: Ipv4Addr::from(dest.to_le_bytes()),
                prefix: mask.count_ones() as u8,
            })
        })
        .collect()
}

/// The first subnet of `pools` overlapping none of `used`.
pub(crate) fn pick_subnet(pools: &[Pool], used: &[Cidr]) -> Option<Cidr> {
    pools
        .iter()
        .flat_map(|p| p.subnets())
        .find(|s| !used.iter().any(|u| u.overlaps(*s)))
}

/// The lowest address of `subnet` that is not the network, broadcast, or in `taken`.
pub(crate) fn lowest_free(subnet: Cidr, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let last = subnet.size().saturating_sub(1);
    (1..last)
        .filter_map(|n| subnet.nth(n))
        .find(|ip| !taken.contains(ip))
}

/// The lowest address of `subnet` after the subnet-router anycast address (`::`, never
/// assigned) that is not in `taken`.
pub(crate) fn lowest_free6(subnet: Cidr6, taken: &BTreeSet<Ipv6Addr>) -> Option<Ipv6Addr> {
    (1..)
        .map_while(|n| subnet.nth(n))
        .find(|ip| !taken.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(Cidr::parse("10.1.2.0/24").map(|c| c.prefix), Some(24));
        assert!(Cidr::parse("10.1.2/24").is_none());
        assert!(Cidr::parse("10.1.2.0/33").is_none());
        assert!(Cidr::parse("10.1.2.0").is_none());
        assert!(Pool::parse("base=10.9.0.0/16,size=24").is_some());
        assert!(Pool::parse("base=10.9.0.0/16,size=8").is_none());
    }

    #[test]
    fn overlap_and_allocation() {
        let a = Cidr::parse("10.0.0.0/16").unwrap();
        let b = Cidr::parse("10.0.5.0/24").unwrap();
        let c = Cidr::parse("10.1.0.0/24").unwrap();
        assert!(a.overlaps(b) && b.overlaps(a) && !a.overlaps(c));
        let pool = Pool::parse("base=10.0.0.0/8,size=16").unwrap();
        assert_eq!(
            pick_subnet(&[pool], &[a]).unwrap().to_string(),
            "10.1.0.0/16"
        );
        let mut taken = BTreeSet::new();
        taken.insert(Ipv4Addr::new(10, 0, 5, 1));
        assert_eq!(lowest_free(b, &taken), Some(Ipv4Addr::new(10, 0, 5, 2)));
        let tiny = Cidr::parse("10.0.5.0/30").unwrap();
        taken.insert(Ipv4Addr::new(10, 0, 5, 2));
        taken.insert(Ipv4Addr::new(10, 0, 5, 1));
        assert_eq!(lowest_free(tiny, &taken), None);
    }

    #[test]
    fn ipv6_subnets() {
        let a = Cidr6::parse("fd53:1::/64").unwrap();
        assert_eq!(Cidr6::parse("fd53:1::/129"), None);
        assert_eq!(Cidr6::parse("fd53:1::"), None);
        assert_eq!(Cidr6::parse("10.0.0.0/8"), None);
        assert!(a.contains("fd53:1::ffff".parse().unwrap()));
        assert!(!a.contains("fd53:2::1".parse().unwrap()));
        assert!(a.overlaps(Cidr6::parse("fd53::/16").unwrap()));
        assert!(!a.overlaps(Cidr6::parse("fd53::/32").unwrap()));
        assert!(!a.overlaps(Cidr6::parse("fd53:2::/64").unwrap()));
        let mut taken = BTreeSet::new();
        taken.insert("fd53:1::1".parse().unwrap());
        assert_eq!(lowest_free6(a, &taken), "fd53:1::2".parse().ok());
        let tiny = Cidr6::parse("fd53:1::/127").unwrap();
        assert_eq!(lowest_free6(tiny, &taken), None);
        assert_eq!(
            Cidr6::parse("fd53:1::9/64").unwrap().network().to_string(),
            "fd53:1::/64"
        );
    }
}
