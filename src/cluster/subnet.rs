//! Picking a private /24 per run that no interface, route or other run uses. Parsing and
//! choice are pure; `used_prefixes` asks `ip`.

use std::net::Ipv4Addr;
use std::process::Command;

use super::error::ClusterError;

/// Runs take /24s from 10.211.0.0/16: `10.211.X.0/24`, bridge `.1`, node i at `.(10+i)`.
pub const POOL_FIRST_OCTETS: [u8; 2] = [10, 211];
pub const MAX_NODES: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    /// The third octet of 10.211.X.0/24.
    pub octet: u8,
}

impl Subnet {
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::new(POOL_FIRST_OCTETS[0], POOL_FIRST_OCTETS[1], self.octet, 0)
    }
    /// The host side (bridge) address clients use as their source.
    pub fn bridge_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(POOL_FIRST_OCTETS[0], POOL_FIRST_OCTETS[1], self.octet, 1)
    }
    /// Address of node `index` (1-based).
    pub fn node_addr(&self, index: usize) -> Ipv4Addr {
        assert!((1..=MAX_NODES).contains(&index), "node index {index}");
        Ipv4Addr::new(
            POOL_FIRST_OCTETS[0],
            POOL_FIRST_OCTETS[1],
            self.octet,
            10 + index as u8,
        )
    }
}

/// Most nodes whose peer links can be proxied: proxy addresses are `.(210+i)` of the /24.
pub const MAX_PROXIED_NODES: usize = 40;

impl Subnet {
    /// The proxy address of node `index` (1-based), on the host side of the bridge: peers
    /// reach the node here, and the proxy forwards the node's own traffic from here.
    pub fn proxy_addr(&self, index: usize) -> Ipv4Addr {
        assert!(
            (1..=MAX_PROXIED_NODES).contains(&index),
            "node index {index}"
        );
        Ipv4Addr::new(
            POOL_FIRST_OCTETS[0],
            POOL_FIRST_OCTETS[1],
            self.octet,
            210 + index as u8,
        )
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/24", self.network())
    }
}

/// An IPv4 prefix (address, length).
pub type Prefix = (Ipv4Addr, u8);

fn overlaps(a: Prefix, b: Prefix) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(a.0) & mask) == (u32::from(b.0) & mask)
}

/// Prefixes in `ip -4 -o addr` or `ip -4 route show table all` output. Default routes are
/// skipped: they overlap everything and say nothing about what is on-link.
pub fn parse_prefixes(text: &str) -> Vec<Prefix> {
    const ROUTE_TYPES: [&str; 8] = [
        "local",
        "broadcast",
        "unicast",
        "multicast",
        "anycast",
        "unreachable",
        "blackhole",
        "prohibit",
    ];
    let mut out = Vec::new();
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        let candidate = if let Some(i) = toks.iter().position(|t| *t == "inet") {
            toks.get(i + 1).copied()
        } else {
            let mut it = toks.iter().copied();
            match it.next() {
                Some(t) if ROUTE_TYPES.contains(&t) => it.next(),
                t => t,
            }
        };
        let Some(c) = candidate else { continue };
        if c == "default" {
            continue;
        }
        let (addr, len) = match c.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().ok()),
            None => (c, Some(32)),
        };
        if let (Ok(a), Some(l)) = (addr.parse::<Ipv4Addr>(), len)
            && l <= 32
        {
            out.push((a, l));
        }
    }
    out
}

/// The first free /24 scanning from `start` (wrapping), avoiding `used` prefixes and the
/// octets other runs hold.
pub fn choose(used: &[Prefix], taken: &[u8], start: u8) -> Option<Subnet> {
    (0..=255u16)
        .map(|i| start.wrapping_add(i as u8))
        .map(|octet| Subnet { octet })
        .find(|s| {
            !taken.contains(&s.octet) && !used.iter().any(|p| overlaps(*p, (s.network(), 24)))
        })
}

/// What the host's interfaces and routes occupy now.
pub fn used_prefixes() -> Result<Vec<Prefix>, ClusterError> {
    let mut all = Vec::new();
    for args in [
        &["-4", "-o", "addr", "show"][..],
        &["-4", "route", "show", "table", "all"][..],
    ] {
        let out = Command::new("ip").args(args).output().map_err(|e| {
            ClusterError::Missing(format!("cannot run `ip` ({e}); apt-get install iproute2"))
        })?;
        if !out.status.success() {
            return Err(ClusterError::Command {
                command: format!("ip {}", args.join(" ")),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        all.extend(parse_prefixes(&String::from_utf8_lossy(&out.stdout)));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addrs_and_routes_skipping_default() {
        let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                     2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n";
        let routes = "default via 192.0.2.1 dev eth0\n\
                      10.211.4.0/24 dev fl-abc-br proto kernel scope link src 10.211.4.1\n\
                      local 10.211.4.1 dev fl-abc-br table local proto kernel\n\
                      broadcast 10.211.4.255 dev fl-abc-br table local\n";
        let mut p = parse_prefixes(addrs);
        p.extend(parse_prefixes(routes));
        assert_eq!(
            p,
            vec![
                (Ipv4Addr::new(127, 0, 0, 1), 8),
                (Ipv4Addr::new(192, 0, 2, 2), 24),
                (Ipv4Addr::new(10, 211, 4, 0), 24),
                (Ipv4Addr::new(10, 211, 4, 1), 32),
                (Ipv4Addr::new(10, 211, 4, 255), 32),
            ]
        );
    }

    #[test]
    fn choose_skips_used_and_taken() {
        let used = vec![(Ipv4Addr::new(10, 211, 4, 0), 24)];
        assert_eq!(choose(&used, &[5], 4), Some(Subnet { octet: 6 }));
        assert_eq!(choose(&used, &[], 3), Some(Subnet { octet: 3 }));
        // A wider route covering the whole pool leaves nothing.
        let wide = vec![(Ipv4Addr::new(10, 0, 0, 0), 8)];
        assert_eq!(choose(&wide, &[], 0), None);
        // Wraps around.
        assert_eq!(choose(&[], &[255], 255), Some(Subnet { octet: 0 }));
    }

    #[test]
    fn addresses() {
        let s = Subnet { octet: 7 };
        assert_eq!(s.to_string(), "10.211.7.0/24");
        assert_eq!(s.bridge_addr(), Ipv4Addr::new(10, 211, 7, 1));
        assert_eq!(s.node_addr(3), Ipv4Addr::new(10, 211, 7, 13));
    }
}
