//! List-append inference: each key's version order is its longest read; every other read
//! must be a prefix of it. From that order come ww (append after append), wr (read ends
//! with an append) and rw (read ends just before an append) edges, and the anomalies that
//! need no cycle: duplicate-elements, incompatible-order, G1a, G1b, dirty-update,
//! internal and lost-update.

use serde_json::json;

use super::fxhash::{FxMap, map_with_capacity};
use super::graph::{EdgeList, rel};
use super::txns::{MopKind, MopValue, Scalar, Txns};
use super::{Explain, Found, Inference, txn_name};
use faultline_history::Outcome;

/// Who appended a (key, element), and where that element sits in the key's version order.
#[derive(Clone, Copy)]
struct Slot {
    writer: u32,
    /// Another append of the same txn to the same key came later.
    intermediate: bool,
    /// Index in the key's version order, or `u32::MAX` if never read.
    pos: u32,
}

pub struct ListAppend {
    slots: FxMap<u128, Slot>,
    /// Per key: (start, len) into `versions`.
    order: Vec<(u32, u32)>,
    versions: Vec<Scalar>,
    /// Parallel to `versions`: who appended each element (`u32::MAX`: nobody known).
    version_writers: Vec<u32>,
}

const UNREAD: u32 = u32::MAX;

/// (key, element) packed into one integer: cheaper to hash and compare than a tuple.
#[inline]
fn sk(k: u32, v: Scalar) -> u128 {
    let (tag, x) = match v {
        Scalar::Int(i) => (0u128, i as u64),
        Scalar::Text(t) => (1u128, t as u64),
    };
    ((k as u128) << 65) | (tag << 64) | x as u128
}

impl ListAppend {
    /// Index of (key, position) among all keys' positions (each key has len + 1: the
    /// initial state, then after each element).
    fn gpos(&self, k: u32, pos: u32) -> usize {
        (self.order[k as usize].0 + k + pos) as usize
    }

    fn writer_at(&self, k: u32, pos: u32) -> u32 {
        self.version_writers[(self.order[k as usize].0 + pos) as usize]
    }

    fn order_of(&self, k: u32) -> &[Scalar] {
        let (s, l) = self.order[k as usize];
        &self.versions[s as usize..(s + l) as usize]
    }

    /// Position (in the key's version order) just after which an append of `v` landed:
    /// 0 means right after the initial empty state. Unread appends land after everything
    /// that was read.
    fn prev_pos(&self, k: u32, v: Scalar) -> u32 {
        match self.slots.get(&sk(k, v)) {
            Some(s) if s.pos != UNREAD => s.pos,
            _ => self.order[k as usize].1,
        }
    }
}

pub fn infer(t: &Txns, found: &mut Found) -> Inference<ListAppend> {
    let nkeys = t.keys.len();
    let clock = std::time::Instant::now();
    let lap = |what: &str| {
        if std::env::var_os("FAULTLINE_ELLE_TIMING").is_some() {
            eprintln!(
                "list-append {what}: {:.1} ms",
                clock.elapsed().as_secs_f64() * 1e3
            );
        }
    };
    let vertex: Vec<bool> = t.txns.iter().map(|x| x.outcome != Outcome::Fail).collect();

    // 1. Writers, failed writers, and each key's longest read.
    let mut slots: FxMap<u128, Slot> = map_with_capacity(t.mops.len());
    let mut failed: FxMap<u128, u32> = FxMap::default();
    let mut longest: Vec<Option<(u32, u32)>> = vec![None; nkeys];
    let mut last_append: Vec<(u32, Scalar)> = Vec::new();
    for (i, x) in t.txns.iter().enumerate() {
        let i = i as u32;
        last_append.clear();
        for m in t.mops(i as usize) {
            match (m.kind, m.value) {
                (MopKind::Append, MopValue::One(v)) => {
                    if x.outcome == Outcome::Fail {
                        failed.insert(sk(m.key, v), i);
                        continue;
                    }
                    if let Some(prev) = last_append.iter_mut().find(|(k, _)| *k == m.key) {
                        if let Some(s) = slots.get_mut(&sk(m.key, prev.1)) {
                            s.intermediate = true;
                        }
                        prev.1 = v;
                    } else {
                        last_append.push((m.key, v));
                    }
                    let slot = Slot {
                        writer: i,
                        intermediate: false,
                        pos: UNREAD,
                    };
                    if let Some(old) = slots.insert(sk(m.key, v), slot) {
                        found.error = Some(format!(
                            "appends must be unique per key, but {} and {} both appended {} to key {}",
                            txn_name(t, old.writer),
                            txn_name(t, i),
                            t.show(v),
                            t.show_key(m.key)
                        ));
                    }
                }
                (MopKind::Read, MopValue::List { start, len }) if x.outcome == Outcome::Ok => {
                    let k = m.key as usize;
                    if longest[k].is_none_or(|(_, l)| len > l) {
                        longest[k] = Some((start, len));
                    }
                }
                _ => {}
            }
        }
    }

    lap("writers");
    // 2. Version orders: the longest read, without duplicates.
    let mut order = vec![(0u32, 0u32); nkeys];
    let mut versions: Vec<Scalar> = Vec::new();
    let mut version_writers: Vec<u32> = Vec::new();
    for k in 0..nkeys {
        let Some((s, l)) = longest[k] else {
            order[k] = (versions.len() as u32, 0);
            continue;
        };
        let start = versions.len() as u32;
        for &e in t.list(s, l) {
            let pos = versions.len() as u32 - start;
            match slots.get_mut(&sk(k as u32, e)) {
                Some(slot) if slot.pos != UNREAD => continue, // duplicate; reported below
                Some(slot) => {
                    slot.pos = pos;
                    version_writers.push(slot.writer);
                }
                None => {
                    version_writers.push(u32::MAX);
                    // Nobody (who did not fail) appended it: keep its place with a
                    // writerless slot so positions stay right.
                    slots.insert(
                        sk(k as u32, e),
                        Slot {
                            writer: u32::MAX,
                            intermediate: false,
                            pos,
                        },
                    );
                }
            }
            versions.push(e);
        }
        order[k] = (start, versions.len() as u32 - start);
    }
    let la = ListAppend {
        slots,
        order,
        versions,
        version_writers,
    };

    lap("orders");
    // 3. Reads: compatibility with the order, duplicates, G1a, G1b; readers by position.
    // readers: (global position of the state read, reader)
    let mut readers: Vec<(u32, u32)> = Vec::new();
    let mut incompatible_keys: Vec<bool> = vec![false; nkeys];
    let mut edges = EdgeList::default();
    let mut ext_reads: Vec<(u32, u32)> = Vec::new(); // per txn scratch: (key, len) of first read
    let mut lost: Vec<(u32, u32, u32)> = Vec::new(); // (key, read len, txn)
    let mut touched: Vec<u32> = Vec::new();
    let mut internal_scratch = Vec::new();
    for (i, x) in t.txns.iter().enumerate() {
        if x.outcome != Outcome::Ok {
            continue;
        }
        let i = i as u32;
        ext_reads.clear();
        touched.clear();
        internal_check(t, i, &mut internal_scratch, found);
        for m in t.mops(i as usize) {
            let first_touch = !touched.contains(&m.key);
            if first_touch {
                touched.push(m.key);
            }
            match m.kind {
                MopKind::Read => {
                    let (start, len) = match m.value {
                        MopValue::List { start, len } => (start, len),
                        _ => (0, 0),
                    };
                    let r = t.list(start, len);
                    let k = m.key;
                    let full = {
                        let (s, l) = longest[k as usize].unwrap_or((0, 0));
                        t.list(s, l)
                    };
                    let compatible = r.len() <= full.len() && full[..r.len()] == *r;
                    if !compatible {
                        if !incompatible_keys[k as usize] {
                            incompatible_keys[k as usize] = true;
                            found.add(
                                "incompatible-order",
                                Some(t.key_text(k)),
                                format!(
                                    "{} read key {} as {}, which is not a prefix of the longest read {}: the two reads cannot come from one order of appends",
                                    txn_name(t, i),
                                    t.show_key(k),
                                    show_list(t, r),
                                    show_list(t, full)
                                ),
                                vec![x.ret],
                                json!({"key": t.scalar_json(t.keys[k as usize]), "values": [list_json(t, r), list_json(t, full)]}),
                            );
                        }
                        if has_duplicates(r) {
                            report_duplicates(t, i, k, r, found);
                        }
                        // Its last element still names the txn it read from.
                        if let Some(slot) = r.last().and_then(|e| la.slots.get(&sk(k, *e)))
                            && slot.writer != u32::MAX
                        {
                            edges.link(slot.writer, i, rel::WR);
                        }
                        continue;
                    }
                    if std::ptr::eq(r.as_ptr(), full.as_ptr()) && has_duplicates(r) {
                        report_duplicates(t, i, k, r, found);
                    }
                    if first_touch {
                        ext_reads.push((k, r.len() as u32));
                    }
                    if !failed.is_empty() {
                        for &e in r {
                            if let Some(&w) = failed.get(&sk(k, e)) {
                                found.add(
                                    "G1a",
                                    Some(t.key_text(k)),
                                    format!(
                                        "{} read key {} = {}, including {}, which {} appended before it failed (aborted read)",
                                        txn_name(t, i),
                                        t.show_key(k),
                                        show_list(t, r),
                                        t.show(e),
                                        txn_name(t, w)
                                    ),
                                    vec![t.txns[w as usize].call, x.ret],
                                    json!({"key": t.scalar_json(t.keys[k as usize]), "element": t.scalar_json(e), "writer": t.txns[w as usize].op, "reader": x.op}),
                                );
                            }
                        }
                    }
                    let pos = match r.last() {
                        None => 0,
                        Some(&e) => {
                            let slot = la.slots[&sk(k, e)];
                            if slot.writer != u32::MAX && slot.writer != i {
                                edges.link(slot.writer, i, rel::WR);
                                if slot.intermediate {
                                    found.add(
                                        "G1b",
                                        Some(t.key_text(k)),
                                        format!(
                                            "{} read key {} ending in {}, an intermediate append of {}, which appended more to {} later (intermediate read)",
                                            txn_name(t, i),
                                            t.show_key(k),
                                            t.show(e),
                                            txn_name(t, slot.writer),
                                            t.show_key(k)
                                        ),
                                        vec![t.txns[slot.writer as usize].ret, x.ret],
                                        json!({"key": t.scalar_json(t.keys[k as usize]), "element": t.scalar_json(e)}),
                                    );
                                }
                            }
                            slot.pos + 1
                        }
                    };
                    readers.push((la.gpos(k, pos) as u32, i));
                }
                MopKind::Append => {
                    if let Some(&(k, len)) = ext_reads.iter().find(|(k, _)| *k == m.key)
                        && !lost
                            .iter()
                            .rev()
                            .take(8)
                            .any(|&(lk, _, lt)| lk == k && lt == i)
                    {
                        lost.push((k, len, i));
                    }
                }
                MopKind::Write => {}
            }
        }
    }

    lap("reads");
    // 4. ww and rw edges, from each append's place in the order.
    // Readers bucketed by the state they read (a counting sort: no comparisons).
    let npos = la.versions.len() + nkeys;
    let mut off = vec![0u32; npos + 1];
    for &(g, _) in &readers {
        off[g as usize + 1] += 1;
    }
    for j in 0..npos {
        off[j + 1] += off[j];
    }
    let mut by_pos = vec![0u32; readers.len()];
    let mut fill = off.clone();
    for &(g, r) in &readers {
        by_pos[fill[g as usize] as usize] = r;
        fill[g as usize] += 1;
    }
    drop(readers);
    for (i, x) in t.txns.iter().enumerate() {
        if x.outcome == Outcome::Fail {
            continue;
        }
        let i = i as u32;
        for m in t.mops(i as usize) {
            let (MopKind::Append, MopValue::One(v)) = (m.kind, m.value) else {
                continue;
            };
            let k = m.key;
            let prev = la.prev_pos(k, v);
            if prev > 0 {
                let w = la.writer_at(k, prev - 1);
                if w != u32::MAX {
                    edges.link(w, i, rel::WW);
                }
            }
            let g = la.gpos(k, prev);
            for &r in &by_pos[off[g] as usize..off[g + 1] as usize] {
                edges.link(r, i, rel::RW);
            }
        }
    }

    lap("ww/rw");
    // 5. Lost updates: two committed txns read the same state of a key and both appended.
    lost.sort_unstable();
    let mut j = 0;
    while j < lost.len() {
        let mut e = j + 1;
        while e < lost.len() && lost[e].0 == lost[j].0 && lost[e].1 == lost[j].1 {
            e += 1;
        }
        if e - j >= 2 {
            let (k, len, _) = lost[j];
            let txns: Vec<u32> = lost[j..e].iter().map(|l| l.2).collect();
            let state = &la.order_of(k)[..len as usize];
            found.add(
                "lost-update",
                Some(t.key_text(k)),
                format!(
                    "{} all read key {} = {} and then appended to it: each update was made without seeing the others (lost update)",
                    txns.iter().map(|&x| txn_name(t, x)).collect::<Vec<_>>().join(", "),
                    t.show_key(k),
                    show_list(t, state)
                ),
                txns.iter().map(|&x| t.txns[x as usize].ret).collect(),
                json!({"key": t.scalar_json(t.keys[k as usize]), "value": list_json(t, state), "txns": txns.iter().map(|&x| t.txns[x as usize].op).collect::<Vec<_>>()}),
            );
        }
        j = e;
    }

    // 6. Dirty updates: a failed append followed, in the version order, by a committed one.
    if !failed.is_empty() {
        dirty_updates(t, &la, &failed, found);
    }

    lap("done");
    Inference {
        vertex,
        edges,
        explainer: la,
    }
}

fn dirty_updates(t: &Txns, la: &ListAppend, failed: &FxMap<u128, u32>, found: &mut Found) {
    for k in 0..la.order.len() as u32 {
        let mut aborted: Option<(u32, Scalar)> = None;
        for &e in la.order_of(k) {
            let (writer, outcome) = match (failed.get(&sk(k, e)), la.slots.get(&sk(k, e))) {
                (Some(&w), _) => (w, Outcome::Fail),
                (None, Some(s)) if s.writer != u32::MAX => {
                    (s.writer, t.txns[s.writer as usize].outcome)
                }
                _ => continue,
            };
            match outcome {
                Outcome::Fail => aborted = aborted.or(Some((writer, e))),
                Outcome::Ok => {
                    if let Some((fw, fe)) = aborted.take() {
                        found.add(
                            "dirty-update",
                            Some(t.key_text(k)),
                            format!(
                                "{} appended {} to key {} after {}'s append of {}, which failed (dirty update)",
                                txn_name(t, writer),
                                t.show(e),
                                t.show_key(k),
                                txn_name(t, fw),
                                t.show(fe)
                            ),
                            vec![t.txns[fw as usize].call, t.txns[writer as usize].ret],
                            json!({"key": t.scalar_json(t.keys[k as usize])}),
                        );
                    }
                }
                Outcome::Info => {}
            }
        }
    }
}

/// Per key, inside one txn: (key, its last read as (start, len), appends since).
type KeyState = (u32, Option<(u32, u32)>, Vec<Scalar>);

/// Within one transaction, each read must show the state its own earlier reads and
/// appends imply. `state` is scratch space reused across transactions.
fn internal_check(t: &Txns, i: u32, state: &mut Vec<KeyState>, found: &mut Found) {
    let mops = t.mops(i as usize);
    if mops.len() < 2 {
        return;
    }
    // key -> (the last read of it, what this txn appended since)
    state.clear();
    for m in mops {
        let slot = match state.iter().position(|s| s.0 == m.key) {
            Some(p) => p,
            None => {
                state.push((m.key, None, Vec::new()));
                state.len() - 1
            }
        };
        match (m.kind, m.value) {
            (MopKind::Append, MopValue::One(v)) => state[slot].2.push(v),
            (MopKind::Read, value) => {
                let (start, len) = match value {
                    MopValue::List { start, len } => (start, len),
                    _ => (0, 0),
                };
                let r = t.list(start, len);
                let (_, known, suffix) = &state[slot];
                let bad = match known {
                    Some((ks, kl)) => {
                        let k = t.list(*ks, *kl);
                        r.len() != k.len() + suffix.len()
                            || !r.starts_with(k)
                            || !r.ends_with(suffix)
                    }
                    None => !r.ends_with(suffix),
                };
                if bad {
                    let expected = match known {
                        Some((ks, kl)) => {
                            let mut e = t.list(*ks, *kl).to_vec();
                            e.extend_from_slice(suffix);
                            show_list(t, &e)
                        }
                        None => format!("a list ending in {}", show_list(t, suffix)),
                    };
                    found.add(
                        "internal",
                        Some(t.key_text(m.key)),
                        format!(
                            "{} read key {} = {} but its own earlier reads and appends imply {}",
                            txn_name(t, i),
                            t.show_key(m.key),
                            show_list(t, r),
                            expected
                        ),
                        vec![t.txns[i as usize].ret],
                        json!({"key": t.scalar_json(t.keys[m.key as usize]), "read": list_json(t, r)}),
                    );
                }
                state[slot].1 = Some((start, len));
                state[slot].2.clear();
            }
            _ => {}
        }
    }
}

fn has_duplicates(r: &[Scalar]) -> bool {
    if r.len() < 2 {
        return false;
    }
    let mut seen = std::collections::HashSet::with_capacity(r.len());
    r.iter().any(|e| !seen.insert(*e))
}

fn report_duplicates(t: &Txns, i: u32, k: u32, r: &[Scalar], found: &mut Found) {
    let mut seen = std::collections::HashSet::new();
    let dups: Vec<Scalar> = r.iter().filter(|e| !seen.insert(**e)).copied().collect();
    found.add(
        "duplicate-elements",
        Some(t.key_text(k)),
        format!(
            "{} read key {} = {}, in which {} appear more than once, though each element is appended once",
            txn_name(t, i),
            t.show_key(k),
            show_list(t, r),
            show_list(t, &dups)
        ),
        vec![t.txns[i as usize].ret],
        json!({"key": t.scalar_json(t.keys[k as usize]), "read": list_json(t, r), "duplicates": list_json(t, &dups)}),
    );
}

pub fn show_list(t: &Txns, r: &[Scalar]) -> String {
    let parts: Vec<String> = r.iter().map(|e| t.show(*e).to_string()).collect();
    format!("[{}]", parts.join(" "))
}

fn list_json(t: &Txns, r: &[Scalar]) -> serde_json::Value {
    r.iter().map(|e| t.scalar_json(*e)).collect()
}

impl Explain for ListAppend {
    fn explain(&self, t: &Txns, a: u32, b: u32, r: u8) -> Option<(u32, String)> {
        let (an, bn) = (txn_name(t, a), txn_name(t, b));
        match r {
            rel::WW => t.mops(b as usize).iter().find_map(|m| {
                let (MopKind::Append, MopValue::One(v)) = (m.kind, m.value) else { return None };
                let prev = self.prev_pos(m.key, v);
                if prev == 0 {
                    return None;
                }
                let e = self.order_of(m.key)[prev as usize - 1];
                (self.slots[&sk(m.key, e)].writer == a).then(|| {
                    (
                        m.key,
                        format!("{bn} appended {} to key {} after {an} appended {}, so {an} precedes {bn} (ww)", t.show(v), t.show_key(m.key), t.show(e)),
                    )
                })
            }),
            rel::WR => t.mops(b as usize).iter().find_map(|m| {
                let (MopKind::Read, MopValue::List { start, len }) = (m.kind, m.value) else { return None };
                let e = *t.list(start, len).last()?;
                (self.slots.get(&sk(m.key, e))?.writer == a).then(|| {
                    (m.key, format!("{bn} read key {} ending in {an}'s append of {}, so {an} precedes {bn} (wr)", t.show_key(m.key), t.show(e)))
                })
            }),
            rel::RW => t.mops(b as usize).iter().find_map(|m| {
                let (MopKind::Append, MopValue::One(v)) = (m.kind, m.value) else { return None };
                let prev = self.prev_pos(m.key, v);
                let reads_prev = t.mops(a as usize).iter().any(|am| {
                    am.kind == MopKind::Read
                        && am.key == m.key
                        && match am.value {
                            MopValue::List { start, len } => match t.list(start, len).last() {
                                None => prev == 0,
                                Some(e) => self.slots.get(&sk(m.key, *e)).is_some_and(|s| s.pos + 1 == prev),
                            },
                            _ => prev == 0,
                        }
                });
                reads_prev.then(|| {
                    let text = if prev == 0 {
                        format!("{an} read key {} as empty, and {bn} appended {} to it, so {an} precedes {bn} (rw)", t.show_key(m.key), t.show(v))
                    } else {
                        format!("{an} read key {} without {bn}'s append of {}, so {an} precedes {bn} (rw)", t.show_key(m.key), t.show(v))
                    };
                    (m.key, text)
                })
            }),
            _ => None,
        }
    }
}
