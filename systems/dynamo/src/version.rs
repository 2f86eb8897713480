//! Versions of one key and how replicas' states combine.
//!
//! - LWW: each version carries a wall-clock timestamp (the protocol clock, so clock
//!   faults matter) and the writer's id as a tie-break; the greatest wins.
//! - Vector clocks: a write's clock descends from the context it read; `merge` keeps
//!   every version no other version descends from, so concurrent writes stay siblings.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// node -> counter.
pub type VClock = BTreeMap<String, u64>;

/// `a` happened-before-or-equals `b`.
pub fn descends(b: &VClock, a: &VClock) -> bool {
    a.iter().all(|(n, c)| b.get(n).copied().unwrap_or(0) >= *c)
}

/// The least clock that descends from every one of `clocks`.
pub fn join<'a>(clocks: impl IntoIterator<Item = &'a VClock>) -> VClock {
    let mut out = VClock::new();
    for c in clocks {
        for (n, v) in c {
            let e = out.entry(n.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub value: Value,
    /// LWW: wall-clock ms at the coordinator, and the coordinator's id to break ties.
    #[serde(default)]
    pub ts: u64,
    #[serde(default)]
    pub writer: String,
    /// Vector-clock mode only.
    #[serde(default)]
    pub clock: VClock,
}

impl Version {
    fn lww_cmp(&self, other: &Version) -> Ordering {
        (self.ts, &self.writer).cmp(&(other.ts, &other.writer))
    }
}

/// How a key's versions combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Lww,
    VectorClocks,
}

/// Combines two replicas' version sets into one. LWW keeps the single greatest version;
/// vector clocks keep every version not strictly dominated (dropping exact duplicates).
/// `drop_sibling` plants `vclock-merge-drops-sibling`: of two or more concurrent
/// survivors, the one sorted last is lost.
pub fn merge(res: Resolution, a: &[Version], b: &[Version], drop_sibling: bool) -> Vec<Version> {
    let all = a.iter().chain(b);
    match res {
        Resolution::Lww => all
            .max_by(|x, y| x.lww_cmp(y))
            .cloned()
            .into_iter()
            .collect(),
        Resolution::VectorClocks => {
            let all: Vec<&Version> = all.collect();
            let mut keep: Vec<Version> = Vec::new();
            for v in &all {
                // Strictly: `{n1: 0}` and `{}` are the same clock.
                let dominated = all
                    .iter()
                    .any(|o| descends(&o.clock, &v.clock) && !descends(&v.clock, &o.clock));
                let same =
                    |k: &Version| descends(&k.clock, &v.clock) && descends(&v.clock, &k.clock);
                if !dominated && !keep.iter().any(same) {
                    // Zero counters say nothing: `{n1: 3, n2: 0}` is kept as `{n1: 3}`, so the
                    // result does not depend on which of two equal clocks came first.
                    let mut v = (*v).clone();
                    v.clock.retain(|_, c| *c > 0);
                    keep.push(v);
                }
            }
            keep.sort_by(|x, y| x.clock.cmp(&y.clock));
            if drop_sibling && keep.len() > 1 {
                keep.pop();
            }
            keep
        }
    }
}

/// A new vector-clock version written by `coordinator` over `context` (the join of the
/// clocks it read): it dominates exactly what the writer saw.
pub fn next_clock(context: &VClock, coordinator: &str) -> VClock {
    let mut c = context.clone();
    *c.entry(coordinator.to_string()).or_insert(0) += 1;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn v(value: i64, clock: &[(&str, u64)]) -> Version {
        Version {
            value: json!(value),
            ts: 0,
            writer: String::new(),
            clock: clock.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }

    #[test]
    fn concurrent_writes_stay_siblings_and_a_descendant_replaces_them() {
        let a = v(1, &[("n1", 1)]);
        let b = v(2, &[("n2", 1)]);
        let both = merge(
            Resolution::VectorClocks,
            std::slice::from_ref(&a),
            std::slice::from_ref(&b),
            false,
        );
        assert_eq!(both.len(), 2);
        let c = v(3, &[("n1", 1), ("n2", 1), ("n3", 1)]);
        let after = merge(
            Resolution::VectorClocks,
            &both,
            std::slice::from_ref(&c),
            false,
        );
        assert_eq!(after, vec![c]);
        assert_eq!(
            merge(Resolution::VectorClocks, &[a], &[b], true).len(),
            1,
            "the planted bug loses a sibling"
        );
    }

    #[test]
    fn lww_keeps_the_latest_timestamp_even_if_it_was_written_first() {
        let mut early = v(1, &[]);
        early.ts = 500; // a coordinator whose clock ran ahead
        let mut late = v(2, &[]);
        late.ts = 100;
        assert_eq!(
            merge(Resolution::Lww, &[late], &[early.clone()], false),
            vec![early]
        );
    }

    fn clock() -> impl Strategy<Value = VClock> {
        prop::collection::btree_map(
            prop::sample::select(vec!["n1", "n2", "n3"]).prop_map(String::from),
            0u64..4,
            0..3,
        )
    }

    proptest! {
        #[test]
        fn merge_is_commutative_idempotent_and_loses_no_undominated_version(
            xs in prop::collection::vec(clock(), 0..5), ys in prop::collection::vec(clock(), 0..5)
        ) {
            let a: Vec<Version> = xs.iter().enumerate().map(|(i, c)| Version { value: json!(i), ts: 0, writer: String::new(), clock: c.clone() }).collect();
            let b: Vec<Version> = ys.iter().enumerate().map(|(i, c)| Version { value: json!(100 + i), ts: 0, writer: String::new(), clock: c.clone() }).collect();
            let ab = merge(Resolution::VectorClocks, &a, &b, false);
            let ba = merge(Resolution::VectorClocks, &b, &a, false);
            let clocks = |vs: &[Version]| vs.iter().map(|v| v.clock.clone()).collect::<Vec<_>>();
            prop_assert_eq!(clocks(&ab), clocks(&ba));
            prop_assert_eq!(clocks(&merge(Resolution::VectorClocks, &ab, &ab, false)), clocks(&ab));
            for x in a.iter().chain(&b) {
                // Every input is kept or descended from by a survivor.
                prop_assert!(ab.iter().any(|s| descends(&s.clock, &x.clock)));
            }
            let j = join(ab.iter().map(|s| &s.clock));
            let next = next_clock(&j, "n1");
            prop_assert_eq!(merge(Resolution::VectorClocks, &ab, &[Version { value: json!(-1), ts: 0, writer: String::new(), clock: next.clone() }], false).len(), 1);
        }
    }
}
