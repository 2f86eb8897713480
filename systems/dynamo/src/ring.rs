//! A consistent-hash ring with virtual nodes. A key's preference list is the first `n`
//! distinct nodes met walking clockwise from the key's hash; a sloppy quorum continues
//! the walk past unreachable ones (the extra nodes hold hints for the skipped ones).

use std::collections::BTreeMap;

/// FNV-1a, 64 bits: stable across builds and platforms, so every node computes the same
/// ring from the same member list.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits mix poorly for short inputs; a final avalanche spreads them.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ring {
    /// token -> node
    tokens: BTreeMap<u64, String>,
    nodes: Vec<String>,
}

impl Ring {
    /// `vnodes` tokens per node (at least 1), placed by hashing `"<node>#<i>"`.
    pub fn new<S: AsRef<str>>(nodes: &[S], vnodes: usize) -> Ring {
        let mut names: Vec<String> = nodes.iter().map(|n| n.as_ref().to_string()).collect();
        names.sort();
        names.dedup();
        let mut tokens = BTreeMap::new();
        for n in &names {
            for i in 0..vnodes.max(1) {
                tokens.insert(hash(format!("{n}#{i}").as_bytes()), n.clone());
            }
        }
        Ring {
            tokens,
            nodes: names,
        }
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Distinct nodes clockwise from `key`'s hash, in ring order.
    fn walk<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a String> + 'a {
        let h = hash(key.as_bytes());
        let mut seen: Vec<&String> = Vec::new();
        self.tokens
            .range(h..)
            .chain(self.tokens.range(..h))
            .map(|(_, n)| n)
            .filter(move |n| {
                if seen.contains(n) {
                    false
                } else {
                    seen.push(n);
                    true
                }
            })
    }

    /// The key's home replicas: the first `n` distinct nodes (fewer if the ring is smaller).
    pub fn preference_list(&self, key: &str, n: usize) -> Vec<String> {
        self.walk(key).take(n).cloned().collect()
    }

    /// A sloppy quorum's targets: the first `n` reachable nodes of the walk, each paired
    /// with the unreachable home replica it stands in for (`None` for a home replica).
    pub fn sloppy_targets(
        &self,
        key: &str,
        n: usize,
        reachable: impl Fn(&str) -> bool,
    ) -> Vec<(String, Option<String>)> {
        let homes = self.preference_list(key, n);
        let mut missing = homes.iter().filter(|h| !reachable(h));
        let mut out = Vec::new();
        for node in self.walk(key) {
            if out.len() == n {
                break;
            }
            if !reachable(node) {
                continue;
            }
            if homes.contains(node) {
                out.push((node.clone(), None));
            } else if let Some(h) = missing.next() {
                out.push((node.clone(), Some(h.clone())));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(k: usize) -> Vec<String> {
        (1..=k).map(|i| format!("n{i}")).collect()
    }

    proptest! {
        #[test]
        fn preference_lists_are_distinct_and_agree_across_member_order(
            k in 1usize..8, n in 1usize..6, vnodes in 1usize..64, key in "[a-z0-9]{1,12}"
        ) {
            let nodes = names(k);
            let mut shuffled = nodes.clone();
            shuffled.reverse();
            let a = Ring::new(&nodes, vnodes).preference_list(&key, n);
            let b = Ring::new(&shuffled, vnodes).preference_list(&key, n);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.len(), n.min(k));
            let mut d = a.clone();
            d.sort();
            d.dedup();
            prop_assert_eq!(d.len(), a.len());
        }

        #[test]
        fn sloppy_targets_keep_reachable_homes_and_hint_the_rest(
            k in 3usize..8, down in prop::collection::vec(any::<bool>(), 8), key in "[a-z]{1,8}"
        ) {
            let ring = Ring::new(&names(k), 16);
            let up = |n: &str| !down[n[1..].parse::<usize>().unwrap() - 1];
            let homes = ring.preference_list(&key, 3);
            let t = ring.sloppy_targets(&key, 3, up);
            for (node, hint) in &t {
                prop_assert!(up(node));
                match hint {
                    None => prop_assert!(homes.contains(node)),
                    Some(h) => prop_assert!(homes.contains(h) && !up(h) && !homes.contains(node)),
                }
            }
            let reachable_homes = homes.iter().filter(|h| up(h)).count();
            prop_assert_eq!(t.iter().filter(|(_, h)| h.is_none()).count(), reachable_homes);
            let up_total = (1..=k).filter(|i| up(&format!("n{i}"))).count();
            prop_assert_eq!(t.len(), 3.min(up_total));
        }
    }

    #[test]
    fn virtual_nodes_spread_keys() {
        let ring = Ring::new(&names(5), 64);
        let mut first = std::collections::HashMap::new();
        for i in 0..5000 {
            *first
                .entry(ring.preference_list(&format!("key{i}"), 1)[0].clone())
                .or_insert(0) += 1;
        }
        // Each of 5 nodes owns roughly a fifth; 64 vnodes keep every share within 2x.
        assert_eq!(first.len(), 5);
        assert!(first.values().all(|c| (500..2000).contains(c)), "{first:?}");
    }
}
