//! Read-write register inference. Writes are unique per key, so a read names its writer.
//! Each key's version order is inferred from the initial state (nil precedes every
//! version), writes-follow-reads inside a transaction (a txn that read v1 and wrote v2
//! puts v1 before v2), and optionally process order and real-time order of the
//! transactions touching the key. A cyclic version order is `cyclic-versions`; acyclic
//! orders give ww, wr and rw edges.

use std::collections::BTreeSet;

use serde_json::json;

use super::fxhash::FxMap;
use super::graph::{EdgeList, cyclic_sccs, rel};
use super::txns::{MopKind, MopValue, Scalar, Txns};
use super::{Explain, Found, Inference, txn_name};
use faultline_history::Outcome;

/// A version of a key: `None` is the initial (nil) state.
type Ver = Option<Scalar>;

#[derive(Clone, Copy, Default)]
struct Touch {
    /// The first micro-op on the key was a read, of this version.
    ext_read: Option<Ver>,
    /// The last value the txn wrote to the key.
    final_write: Option<Scalar>,
}

pub struct RwRegister {
    /// Per txn: per key touched, what it read and wrote.
    touches: Vec<Vec<(u32, Touch)>>,
    /// (key, earlier, later) version edges of acyclic keys.
    vedges: FxMap<(u32, Ver, Ver), ()>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Sources {
    pub sequential_keys: bool,
    pub linearizable_keys: bool,
    /// Within a txn, a write to a key follows the txn's read of it (Elle's `wfr-keys?`).
    pub wfr_keys: bool,
}

fn touches_of(t: &Txns, i: usize, found: &mut Found) -> Vec<(u32, Touch)> {
    let x = &t.txns[i];
    let mut out: Vec<(u32, Touch)> = Vec::new();
    // key -> what the txn itself holds for it now (for the internal check)
    let mut own: Vec<(u32, Ver)> = Vec::new();
    for m in t.mops(i) {
        let slot = match out.iter().position(|(k, _)| *k == m.key) {
            Some(p) => p,
            None => {
                out.push((m.key, Touch::default()));
                out.len() - 1
            }
        };
        match (m.kind, m.value) {
            (MopKind::Write, MopValue::One(v)) => {
                out[slot].1.final_write = Some(v);
                set_own(&mut own, m.key, Some(v));
            }
            (MopKind::Read, value) if x.outcome == Outcome::Ok => {
                let v: Ver = match value {
                    MopValue::One(v) => Some(v),
                    _ => None,
                };
                if let Some(&(_, expected)) = own.iter().find(|(k, _)| *k == m.key) {
                    if expected != v {
                        found.add(
                            "internal",
                            Some(t.key_text(m.key)),
                            format!(
                                "{} read key {} = {} but its own earlier reads and writes imply {}",
                                txn_name(t, i as u32),
                                t.show_key(m.key),
                                show_ver(t, v),
                                show_ver(t, expected)
                            ),
                            vec![x.ret],
                            json!({"key": t.scalar_json(t.keys[m.key as usize])}),
                        );
                    }
                } else if out[slot].1.final_write.is_none() && out[slot].1.ext_read.is_none() {
                    out[slot].1.ext_read = Some(v);
                }
                set_own(&mut own, m.key, v);
            }
            _ => {}
        }
    }
    out
}

fn set_own(own: &mut Vec<(u32, Ver)>, k: u32, v: Ver) {
    match own.iter_mut().find(|(key, _)| *key == k) {
        Some(o) => o.1 = v,
        None => own.push((k, v)),
    }
}

pub fn show_ver(t: &Txns, v: Ver) -> String {
    match v {
        None => "nil".to_string(),
        Some(s) => t.show(s).to_string(),
    }
}

fn ver_json(t: &Txns, v: Ver) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |s| t.scalar_json(s))
}

pub fn infer(t: &Txns, sources: Sources, found: &mut Found) -> Inference<RwRegister> {
    let nkeys = t.keys.len();
    let vertex: Vec<bool> = t.txns.iter().map(|x| x.outcome != Outcome::Fail).collect();
    let touches: Vec<Vec<(u32, Touch)>> = (0..t.len())
        .map(|i| {
            if vertex[i] {
                touches_of(t, i, found)
            } else {
                Vec::new()
            }
        })
        .collect();

    // Writers of each (key, value); failed and intermediate writes for G1a / G1b.
    let mut writer: FxMap<(u32, Scalar), u32> = FxMap::default();
    let mut failed: FxMap<(u32, Scalar), u32> = FxMap::default();
    let mut intermediate: FxMap<(u32, Scalar), u32> = FxMap::default();
    for (i, x) in t.txns.iter().enumerate() {
        for m in t.mops(i) {
            let (MopKind::Write, MopValue::One(v)) = (m.kind, m.value) else {
                continue;
            };
            if x.outcome == Outcome::Fail {
                failed.insert((m.key, v), i as u32);
                continue;
            }
            let is_final = touches[i]
                .iter()
                .any(|(k, tc)| *k == m.key && tc.final_write == Some(v));
            if !is_final {
                intermediate.insert((m.key, v), i as u32);
            }
            if let Some(old) = writer.insert((m.key, v), i as u32)
                && old != i as u32
            {
                found.error = Some(format!(
                    "writes must be unique per key, but {} and {} both wrote {} to key {}",
                    txn_name(t, old),
                    txn_name(t, i as u32),
                    t.show(v),
                    t.show_key(m.key)
                ));
            }
        }
    }

    // Version edges per key, with the sources that produced them.
    let mut vgraph: Vec<FxMap<(Ver, Ver), u8>> = vec![FxMap::default(); nkeys];
    const INIT: u8 = 1;
    const WFR: u8 = 2;
    const SEQ: u8 = 4;
    const LIN: u8 = 8;
    let mut versions: Vec<BTreeSet<Ver>> = vec![BTreeSet::new(); nkeys];
    for (i, ts) in touches.iter().enumerate() {
        for &(k, tc) in ts {
            if let Some(r) = tc.ext_read {
                versions[k as usize].insert(r);
                // G1a / G1b: reading what a failed txn, or the middle of another txn, wrote.
                if let Some(v) = r {
                    if let Some(&w) = failed.get(&(k, v)) {
                        found.add(
                            "G1a",
                            Some(t.key_text(k)),
                            format!("{} read key {} = {}, which {} wrote before it failed (aborted read)", txn_name(t, i as u32), t.show_key(k), t.show(v), txn_name(t, w)),
                            vec![t.txns[w as usize].call, t.txns[i].ret],
                            json!({"key": t.scalar_json(t.keys[k as usize]), "value": t.scalar_json(v)}),
                        );
                    }
                    if let Some(&w) = intermediate.get(&(k, v))
                        && w != i as u32
                    {
                        found.add(
                            "G1b",
                            Some(t.key_text(k)),
                            format!("{} read key {} = {}, an intermediate write of {}, which overwrote it before committing (intermediate read)", txn_name(t, i as u32), t.show_key(k), t.show(v), txn_name(t, w)),
                            vec![t.txns[w as usize].ret, t.txns[i].ret],
                            json!({"key": t.scalar_json(t.keys[k as usize]), "value": t.scalar_json(v)}),
                        );
                    }
                }
            }
            if let Some(w) = tc.final_write {
                versions[k as usize].insert(Some(w));
                if let Some(r) = tc.ext_read
                    && sources.wfr_keys
                    && r != Some(w)
                {
                    *vgraph[k as usize].entry((r, Some(w))).or_default() |= WFR;
                }
            }
        }
    }
    let first_ver = |tc: &Touch| -> Option<Ver> { tc.ext_read.or(tc.final_write.map(Some)) };
    let last_ver = |tc: &Touch| -> Option<Ver> { tc.final_write.map(Some).or(tc.ext_read) };
    if sources.sequential_keys {
        let mut last: FxMap<(u64, u32), Ver> = FxMap::default();
        for (i, ts) in touches.iter().enumerate() {
            if t.txns[i].outcome != Outcome::Ok {
                continue;
            }
            for (k, tc) in ts {
                if let (Some(prev), Some(next)) =
                    (last.get(&(t.txns[i].process, *k)).copied(), first_ver(tc))
                    && prev != next
                {
                    *vgraph[*k as usize].entry((prev, next)).or_default() |= SEQ;
                }
                if let Some(l) = last_ver(tc) {
                    last.insert((t.txns[i].process, *k), l);
                }
            }
        }
    }
    if sources.linearizable_keys {
        // Per key, real-time order among the ok txns touching it (reduced, as in graph.rs).
        let mut by_key: Vec<Vec<u32>> = vec![Vec::new(); nkeys];
        for (i, ts) in touches.iter().enumerate() {
            if t.txns[i].outcome == Outcome::Ok {
                for (k, _) in ts {
                    by_key[*k as usize].push(i as u32);
                }
            }
        }
        for (k, ops) in by_key.iter().enumerate() {
            let touch = |i: u32| {
                touches[i as usize]
                    .iter()
                    .find(|(kk, _)| *kk as usize == k)
                    .map(|p| p.1)
                    .unwrap_or_default()
            };
            let mut ev: Vec<(u64, u32, bool)> = Vec::new();
            for &i in ops {
                ev.push((t.txns[i as usize].call, i, false));
                ev.push((t.txns[i as usize].ret, i, true));
            }
            ev.sort_unstable();
            let mut frontier: Vec<u32> = Vec::new();
            let mut saw: FxMap<u32, Vec<u32>> = FxMap::default();
            for (_, i, done) in ev {
                if !done {
                    for &a in &frontier {
                        if let (Some(p), Some(n)) = (last_ver(&touch(a)), first_ver(&touch(i)))
                            && p != n
                        {
                            *vgraph[k].entry((p, n)).or_default() |= LIN;
                        }
                    }
                    saw.insert(i, frontier.clone());
                } else {
                    let covered = saw.remove(&i).unwrap_or_default();
                    frontier.retain(|f| !covered.contains(f));
                    frontier.push(i);
                }
            }
        }
    }
    // Initial state precedes every version that nothing else precedes.
    for k in 0..nkeys {
        let has_pred: BTreeSet<Ver> = vgraph[k].keys().map(|(_, b)| *b).collect();
        for &v in &versions[k] {
            if v.is_some() && !has_pred.contains(&v) {
                *vgraph[k].entry((None, v)).or_default() |= INIT;
            }
        }
    }

    // Cyclic version orders.
    let mut vedges: FxMap<(u32, Ver, Ver), ()> = FxMap::default();
    for (k, g) in vgraph.iter().enumerate() {
        let vs: Vec<Ver> = {
            let mut s: BTreeSet<Ver> = versions[k].clone();
            for (a, b) in g.keys() {
                s.insert(*a);
                s.insert(*b);
            }
            s.into_iter().collect()
        };
        let idx = |v: &Ver| vs.binary_search(v).expect("version indexed") as u32;
        let mut el: Vec<(u32, u32)> = g.keys().map(|(a, b)| (idx(a), idx(b))).collect();
        el.sort_unstable();
        el.dedup();
        let csr: petgraph::csr::Csr<(), (), petgraph::Directed, u32> =
            petgraph::csr::Csr::from_sorted_edges(&el).expect("sorted");
        let n = csr.node_count();
        let sccs = cyclic_sccs(&csr, n);
        if sccs.is_empty() {
            for &(a, b) in g.keys() {
                vedges.insert((k as u32, a, b), ());
            }
            continue;
        }
        for scc in sccs {
            let mut vals: Vec<Ver> = scc.iter().map(|&i| vs[i as usize]).collect();
            vals.sort();
            let mut srcs = BTreeSet::new();
            for (&(a, b), &s) in g {
                if vals.contains(&a) && vals.contains(&b) {
                    for (bit, name) in [
                        (INIT, "initial-state"),
                        (WFR, "writes-follow-reads"),
                        (SEQ, "sequential-keys"),
                        (LIN, "linearizable-keys"),
                    ] {
                        if s & bit != 0 {
                            srcs.insert(name);
                        }
                    }
                }
            }
            found.add(
                "cyclic-versions",
                Some(t.key_text(k as u32)),
                format!(
                    "the versions {} of key {} must each precede the other (inferred from {}): no single order of writes explains the reads",
                    vals.iter().map(|v| show_ver(t, *v)).collect::<Vec<_>>().join(", "),
                    t.show_key(k as u32),
                    srcs.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                Vec::new(),
                json!({"key": t.scalar_json(t.keys[k]), "scc": vals.iter().map(|v| ver_json(t, *v)).collect::<Vec<_>>(), "sources": srcs}),
            );
        }
    }

    // Transaction edges from acyclic version orders.
    let mut readers: FxMap<(u32, Ver), Vec<u32>> = FxMap::default();
    for (i, ts) in touches.iter().enumerate() {
        if t.txns[i].outcome != Outcome::Ok {
            continue;
        }
        for (k, tc) in ts {
            if let Some(r) = tc.ext_read {
                readers.entry((*k, r)).or_default().push(i as u32);
            }
        }
    }
    let mut edges = EdgeList::default();
    for ((k, r), rs) in &readers {
        if let Some(v) = r
            && let Some(&w) = writer.get(&(*k, *v))
        {
            for &x in rs {
                edges.link(w, x, rel::WR);
            }
        }
    }
    for &(k, a, b) in vedges.keys() {
        let Some(bv) = b else { continue };
        let Some(&wb) = writer.get(&(k, bv)) else {
            continue;
        };
        if let Some(av) = a
            && let Some(&wa) = writer.get(&(k, av))
        {
            edges.link(wa, wb, rel::WW);
        }
        if let Some(rs) = readers.get(&(k, a)) {
            for &x in rs {
                edges.link(x, wb, rel::RW);
            }
        }
    }
    Inference {
        vertex,
        edges,
        explainer: RwRegister { touches, vedges },
    }
}

impl RwRegister {
    fn touch(&self, i: u32, k: u32) -> Option<Touch> {
        self.touches[i as usize]
            .iter()
            .find(|(kk, _)| *kk == k)
            .map(|p| p.1)
    }
}

impl Explain for RwRegister {
    fn explain(&self, t: &Txns, a: u32, b: u32, r: u8) -> Option<(u32, String)> {
        let (an, bn) = (txn_name(t, a), txn_name(t, b));
        self.touches[b as usize].iter().find_map(|&(k, tb)| {
            let ta = self.touch(a, k)?;
            let key = t.show_key(k);
            match r {
                rel::WW => {
                    let (wa, wb) = (ta.final_write?, tb.final_write?);
                    self.vedges.contains_key(&(k, Some(wa), Some(wb))).then(|| {
                        (k, format!("{an} wrote key {key} = {}, and {bn} wrote the next version {}, so {an} precedes {bn} (ww)", t.show(wa), t.show(wb)))
                    })
                }
                rel::WR => {
                    let w = ta.final_write?;
                    (tb.ext_read? == Some(w)).then(|| (k, format!("{bn} read key {key} = {}, written by {an}, so {an} precedes {bn} (wr)", t.show(w))))
                }
                rel::RW => {
                    let (ra, wb) = (ta.ext_read?, tb.final_write?);
                    self.vedges.contains_key(&(k, ra, Some(wb))).then(|| {
                        (k, format!("{an} read key {key} = {}, and {bn} wrote the next version {}, so {an} precedes {bn} (rw)", show_ver(t, ra), t.show(wb)))
                    })
                }
                _ => None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ElleModel, ElleOptions, check};
    use faultline_history::EventType;
    use faultline_history::testkit::{history_of, push_client};
    use serde_json::json;

    /// Two committed txns, each reading x and then writing it: T1 reads 1 and writes 2,
    /// T2 reads 2 and writes 1.
    fn read_then_write_both_ways() -> faultline_history::History {
        let mut events = Vec::new();
        for (p, txn) in [
            (0, json!([["r", "x", 1], ["w", "x", 2]])),
            (1, json!([["r", "x", 2], ["w", "x", 1]])),
        ] {
            push_client(&mut events, p, EventType::Invoke, "txn", None, txn.clone());
            push_client(&mut events, p, EventType::Ok, "txn", None, txn);
        }
        history_of(events)
    }

    fn types(o: &ElleOptions) -> Vec<String> {
        let v = check(&read_then_write_both_ways(), o);
        serde_json::from_value::<Vec<String>>(v.stats["anomaly_types"].clone()).unwrap()
    }

    #[test]
    fn writes_follow_reads_orders_versions_only_when_asked() {
        let mut o = ElleOptions::new(ElleModel::RwRegister);
        let off = types(&o);
        assert!(!off.iter().any(|t| t == "cyclic-versions"), "{off:?}");
        // Without the assumption the wr edges alone close a cycle.
        assert!(off.iter().any(|t| t == "G1c"), "{off:?}");
        o.wfr_keys = true;
        let on = types(&o);
        assert!(on.iter().any(|t| t == "cyclic-versions"), "{on:?}");
        let v = check(&read_then_write_both_ways(), &o);
        let cyc = v
            .anomalies
            .iter()
            .find(|a| a.kind == "cyclic-versions")
            .unwrap();
        assert_eq!(
            cyc.data["sources"],
            json!(["writes-follow-reads"]),
            "{}",
            cyc.data
        );
    }
}
