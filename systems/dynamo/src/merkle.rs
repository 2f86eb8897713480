//! Anti-entropy by Merkle trees: the key space (by key hash) is cut into ranges, each range
//! into segments; a segment's hash sums its keys' digests, a range's root hashes its
//! segments. Two replicas compare roots first and segments only where roots differ, then
//! exchange just the keys of the differing segments (Dynamo §4.7; Cassandra's repair and
//! Riak's active anti-entropy work this way). Pure: the shell builds trees from its store and
//! moves the entries.

use serde::{Deserialize, Serialize};

use crate::ring::hash;

/// Ranges of the key space, each with its own tree.
pub const RANGES: u32 = 8;
/// Segments (leaves) per range.
pub const SEGMENTS: u32 = 16;

/// Where a key sits: (range, segment).
pub fn locate(key: &str) -> (u32, u32) {
    let h = hash(key.as_bytes());
    let leaf = (h >> 32) as u32 % (RANGES * SEGMENTS);
    (leaf / SEGMENTS, leaf % SEGMENTS)
}

/// One range's tree: its root and its segments' hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeTree {
    pub root: u64,
    pub segments: Vec<u64>,
}

/// A replica's trees over the keys it shares with one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub ranges: Vec<RangeTree>,
}

impl Tree {
    /// Builds the trees from `(key, digest of what is held for it)`, in any order.
    pub fn build<'a>(items: impl IntoIterator<Item = (&'a str, u64)>) -> Tree {
        let mut segs = vec![vec![0u64; SEGMENTS as usize]; RANGES as usize];
        for (key, digest) in items {
            let (r, s) = locate(key);
            // A sum of per-key hashes: independent of order, and a key's change always
            // changes its segment.
            let mut bytes = key.as_bytes().to_vec();
            bytes.extend_from_slice(&digest.to_le_bytes());
            let slot = &mut segs[r as usize][s as usize];
            *slot = slot.wrapping_add(hash(&bytes));
        }
        let ranges = segs
            .into_iter()
            .map(|segments| {
                let bytes: Vec<u8> = segments.iter().flat_map(|s| s.to_le_bytes()).collect();
                RangeTree {
                    root: hash(&bytes),
                    segments,
                }
            })
            .collect();
        Tree { ranges }
    }

    /// The (range, segment) pairs where `self` and `other` differ: ranges whose roots agree
    /// are not descended into. `skip_last` is the planted bug: the loop over ranges stops
    /// one short, so the last range never repairs.
    pub fn diff(&self, other: &Tree, skip_last: bool) -> Vec<(u32, u32)> {
        let mut n = self.ranges.len().min(other.ranges.len());
        if skip_last {
            n = n.saturating_sub(1);
        }
        let mut out = Vec::new();
        for (r, (a, b)) in self.ranges.iter().zip(&other.ranges).take(n).enumerate() {
            if a.root == b.root {
                continue;
            }
            for (s, (x, y)) in a.segments.iter().zip(&b.segments).enumerate() {
                if x != y {
                    out.push((r as u32, s as u32));
                }
            }
        }
        out
    }
}

/// A digest of what a replica holds for a key (any serialisable value).
pub fn digest<T: Serialize>(held: &T) -> u64 {
    hash(&serde_json::to_vec(held).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys_in_range(r: u32, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("k{i}"))
            .filter(|k| locate(k).0 == r)
            .take(n)
            .collect()
    }

    #[test]
    fn equal_holdings_have_equal_trees_in_any_order() {
        let a = Tree::build([("a", 1), ("b", 2), ("c", 3)]);
        let b = Tree::build([("c", 3), ("a", 1), ("b", 2)]);
        assert_eq!(a, b);
        assert_eq!(a.diff(&b, false), vec![]);
        assert_eq!(a.ranges.len(), RANGES as usize);
    }

    #[test]
    fn a_changed_key_names_exactly_its_segment() {
        let keys = keys_in_range(2, 5);
        let items: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 7)).collect();
        let a = Tree::build(items.clone());
        let mut changed = items.clone();
        changed[3].1 = 8;
        let b = Tree::build(changed);
        assert_eq!(a.diff(&b, false), vec![locate(&keys[3])]);
        // A key only one side holds differs too.
        let c = Tree::build(items[..4].to_vec());
        assert_eq!(a.diff(&c, false), vec![locate(&keys[4])]);
    }

    #[test]
    fn the_planted_bug_never_repairs_the_last_range() {
        let last = keys_in_range(RANGES - 1, 1);
        let first = keys_in_range(0, 1);
        let a = Tree::build([(last[0].as_str(), 1), (first[0].as_str(), 1)]);
        let b = Tree::build([(last[0].as_str(), 2), (first[0].as_str(), 2)]);
        assert_eq!(a.diff(&b, false), vec![locate(&first[0]), locate(&last[0])]);
        assert_eq!(a.diff(&b, true), vec![locate(&first[0])]);
    }

    proptest! {
        #[test]
        fn diff_is_exactly_the_segments_holding_a_differing_key(
            held in proptest::collection::btree_map("[a-z]{1,6}", 0u64..4, 0..40),
            changes in proptest::collection::btree_map("[a-z]{1,6}", 0u64..4, 0..10),
        ) {
            let mut other = held.clone();
            for (k, v) in &changes {
                other.insert(k.clone(), *v);
            }
            let a = Tree::build(held.iter().map(|(k, v)| (k.as_str(), *v)));
            let b = Tree::build(other.iter().map(|(k, v)| (k.as_str(), *v)));
            let mut want: Vec<(u32, u32)> = changes
                .iter()
                .filter(|(k, v)| held.get(*k) != Some(*v))
                .map(|(k, _)| locate(k))
                .collect();
            want.sort();
            want.dedup();
            prop_assert_eq!(a.diff(&b, false), want);
        }
    }
}
