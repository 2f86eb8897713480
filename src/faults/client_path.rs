//! The `client-path` backend: for an external cluster reached by its client URLs only, an
//! L4 proxy (the peer proxy's, on a loopback address per node) between the harness's
//! clients and each node, so delays, blackholes, resets and bandwidth limits can still be
//! put between clients and nodes. A schedule's link faults name peer links; here a fault
//! lands on the client links (both ways) of the nodes its links name most: the leader for
//! `leader*` links, the one node for `one`, every node for `all`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Value, json};

use super::proxy::{
    Link, MsgRule, PeerProxy, ProxyConfig, ProxyFaults, ProxyMode, ProxyNode, Tracer,
};
use super::{BoxFuture, Fault, Faults, FaultsError, Need};
use crate::external::inventory::Inventory;

/// Who the proxy calls the harness's clients (every connection it accepts comes from them).
pub const CLIENTS: &str = "clients";

pub struct ClientPath {
    /// None: only judging what it could do (before anything is started).
    proxy: Option<PeerProxy>,
    inner: ProxyFaults,
    /// Per node id, the URL the clients use instead of its client URL.
    urls: BTreeMap<String, String>,
    /// Why these URLs cannot be proxied, if they cannot.
    unproxiable: Option<String>,
}

/// Why an inventory's client URLs cannot be proxied, if they cannot.
pub fn unproxiable(inv: &Inventory) -> Option<String> {
    if inv.nodes.len() > 250 {
        return Some("more than 250 nodes (one loopback address each)".into());
    }
    inv.nodes.iter().find_map(|n| {
        if n.client_url.starts_with("https://") {
            return Some(format!(
                "{}: {} is https, and a proxy in between would break its certificate's name",
                n.id, n.client_url
            ));
        }
        match host_port(&n.client_url) {
            Some((h, _)) if h.parse::<IpAddr>().is_ok() => None,
            _ => Some(format!(
                "{}: {} does not name an IP address (the proxy forwards to addresses)",
                n.id, n.client_url
            )),
        }
    })
}

fn host_port(url: &str) -> Option<(String, u16)> {
    let (h, p) = crate::external::inventory::parse_url(url).ok()?;
    Some((h.trim_matches(['[', ']']).to_string(), p))
}

impl ClientPath {
    /// What a client-path proxy could do for `inv`, with nothing started.
    pub fn planned(inv: &Inventory) -> ClientPath {
        ClientPath {
            proxy: None,
            inner: ProxyFaults::new(None, String::new()),
            urls: BTreeMap::new(),
            unproxiable: unproxiable(inv),
        }
    }

    /// Starts the proxy: node `i` is reached at `127.0.0.<i+2>` on its own port.
    pub async fn start(
        inv: &Inventory,
        seed: u64,
        trace: Option<Tracer>,
    ) -> Result<ClientPath, String> {
        if let Some(why) = unproxiable(inv) {
            return Err(why);
        }
        let mut nodes = Vec::new();
        let mut urls = BTreeMap::new();
        for (i, n) in inv.nodes.iter().enumerate() {
            let (host, port) = host_port(&n.client_url).expect("checked by unproxiable");
            let local = Ipv4Addr::new(127, 0, 0, i as u8 + 2);
            nodes.push(ProxyNode {
                id: n.id.clone(),
                addr: host.parse().expect("checked by unproxiable"),
                proxy_addr: IpAddr::V4(local),
                port,
            });
            urls.insert(n.id.clone(), format!("http://{local}:{port}"));
        }
        let proxy = PeerProxy::start(ProxyConfig {
            mode: ProxyMode::L4,
            nodes,
            batch_field: None,
            seed,
            unknown_as: Some(CLIENTS.into()),
            trace,
        })
        .await
        .map_err(|e| format!("client-path proxy: {e}"))?;
        Ok(ClientPath {
            inner: ProxyFaults::new(Some(proxy.clone()), "an external cluster".into()),
            proxy: Some(proxy),
            urls,
            unproxiable: None,
        })
    }

    /// The URL clients use for node `id`.
    pub fn url(&self, id: &str) -> Option<&str> {
        self.urls.get(id).map(String::as_str)
    }

    /// `inv` with each client URL replaced by its proxy's.
    pub fn rewrite(&self, inv: &Inventory) -> Inventory {
        let mut inv = inv.clone();
        for n in &mut inv.nodes {
            if let Some(u) = self.url(&n.id) {
                n.client_url = u.to_string();
            }
        }
        inv
    }

    /// Message trace times count from `t` (the run's start).
    pub fn set_epoch(&self, t: std::time::Instant) {
        if let Some(p) = &self.proxy {
            p.set_epoch(t);
        }
    }

    pub fn stop(&self) {
        if let Some(p) = &self.proxy {
            p.stop();
        }
    }
}

/// The rule with its peer links replaced by the client links of the nodes they name most.
pub fn on_client_links(rule: &MsgRule) -> MsgRule {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (a, b) in &rule.links {
        *count.entry(a).or_default() += 1;
        *count.entry(b).or_default() += 1;
    }
    let most = count.values().copied().max().unwrap_or(0);
    let links: std::collections::BTreeSet<Link> = count
        .iter()
        .filter(|(_, c)| **c == most)
        .flat_map(|(n, _)| {
            [
                (CLIENTS.to_string(), n.to_string()),
                (n.to_string(), CLIENTS.to_string()),
            ]
        })
        .collect();
    MsgRule {
        links,
        ..rule.clone()
    }
}

fn on_clients(fault: &Fault) -> Fault {
    match fault {
        Fault::Message { rule } => Fault::Message {
            rule: on_client_links(rule),
        },
        f => f.clone(),
    }
}

impl Faults for ClientPath {
    fn name(&self) -> &'static str {
        "client-path"
    }

    fn supports(&self, need: Need) -> Result<(), String> {
        if let Some(why) = &self.unproxiable {
            return Err(format!("no proxy between clients and nodes: {why}"));
        }
        super::proxy::mode_supports(ProxyMode::L4, "the client path", need)
            .map_err(|why| format!("between clients and nodes: {why}"))
    }

    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<(), FaultsError>> {
        Box::pin(async move { self.inner.apply(&on_clients(fault)).await })
    }

    fn undo<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<Value, FaultsError>> {
        Box::pin(async move {
            let mut d = self.inner.undo(&on_clients(fault)).await?;
            if let (Value::Object(m), Fault::Message { rule }) = (&mut d, fault) {
                let r = on_client_links(rule);
                let nodes: Vec<&str> = r
                    .links
                    .iter()
                    .filter(|(a, _)| a == CLIENTS)
                    .map(|(_, b)| b.as_str())
                    .collect();
                m.insert("client_path".into(), json!(nodes));
            }
            Ok(d)
        })
    }

    fn heal(&self) -> BoxFuture<'_, Result<(), FaultsError>> {
        self.inner.heal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::proxy::MsgAction;
    use std::path::Path;

    fn rule(links: &[(&str, &str)]) -> MsgRule {
        crate::faults::proxy::rules::rule(1, links, MsgAction::Reset)
    }

    fn clients_of(r: &MsgRule) -> Vec<&str> {
        let mut v: Vec<&str> = r
            .links
            .iter()
            .filter(|(a, _)| a == CLIENTS)
            .map(|(_, b)| b.as_str())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn peer_links_become_the_client_links_of_the_nodes_they_name_most() {
        // leader-out from n1: n1 is in every link
        let r = on_client_links(&rule(&[("n1", "n2"), ("n1", "n3")]));
        assert_eq!(clients_of(&r), vec!["n1"]);
        assert!(r.links.contains(&("n1".into(), CLIENTS.into())), "{r:?}");
        // all links: every node
        let all = rule(&[
            ("n1", "n2"),
            ("n2", "n1"),
            ("n1", "n3"),
            ("n3", "n1"),
            ("n2", "n3"),
            ("n3", "n2"),
        ]);
        assert_eq!(clients_of(&on_client_links(&all)), vec!["n1", "n2", "n3"]);
        assert_eq!(on_client_links(&all).action, MsgAction::Reset);
    }

    #[test]
    fn only_http_urls_with_ip_addresses_are_proxied() {
        let inv = |url: &str| {
            Inventory::parse(
                &format!("system = \"etcd\"\n[[node]]\nid = \"n1\"\nclient_url = \"{url}\"\n"),
                Path::new("c.toml"),
            )
            .unwrap()
        };
        assert_eq!(unproxiable(&inv("http://10.0.0.1:2379")), None);
        assert!(
            unproxiable(&inv("https://10.0.0.1:2379"))
                .unwrap()
                .contains("https")
        );
        assert!(
            unproxiable(&inv("http://etcd-1:2379"))
                .unwrap()
                .contains("IP address")
        );
    }
}
