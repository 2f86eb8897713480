//! A cycle in words: one sentence per step, then why the whole cannot be serialized.

use serde_json::Value;

use crate::witness::{Cycle as WitnessCycle, CycleStep, Witness};

use super::cycles::Cycle;
use super::graph::rel;
use super::txns::Txns;
use super::{Explain, txn_name};

/// (description, data for the report, event indexes involved).
pub fn cycle(t: &Txns, ex: &dyn Explain, c: &Cycle) -> (String, Value, Vec<u64>) {
    let mut sentences = Vec::new();
    let mut steps = Vec::new();
    let mut key: Option<String> = None;
    for &(a, b, r) in &c.steps {
        let (k, text) = step(t, ex, a, b, r);
        if key.is_none() {
            key = k.clone();
        }
        sentences.push(text.clone());
        steps.push(CycleStep {
            from: txn_name(t, a),
            to: txn_name(t, b),
            rel: rel::name(r).into(),
            key: k,
            text,
        });
    }
    let names: Vec<String> = c.steps.iter().map(|s| txn_name(t, s.0)).collect();
    let first = names.first().cloned().unwrap_or_default();
    let description = format!(
        "{} cycle {} -> {}: {}. So {} must precede itself: no order of these transactions is consistent with what they observed.",
        c.kind,
        names.join(" -> "),
        first,
        sentences.join("; "),
        first
    );
    let mut events: Vec<u64> = Vec::new();
    for &(a, _, _) in &c.steps {
        let x = &t.txns[a as usize];
        events.push(x.call);
        if x.ret != u64::MAX {
            events.push(x.ret);
        }
    }
    let data = Witness::Cycle(WitnessCycle {
        kind: c.kind.clone(),
        key,
        cycle: names,
        ops: c
            .steps
            .iter()
            .map(|s| t.txns[s.0 as usize].op as usize)
            .collect(),
        steps,
    })
    .to_data();
    (description, data, events)
}

fn step(t: &Txns, ex: &dyn Explain, a: u32, b: u32, r: u8) -> (Option<String>, String) {
    let (an, bn) = (txn_name(t, a), txn_name(t, b));
    let (xa, xb) = (&t.txns[a as usize], &t.txns[b as usize]);
    match r {
        rel::REALTIME => (
            None,
            format!(
                "{an} completed (event {}) before {bn} began (event {}), so {an} precedes {bn} (realtime)",
                xa.ret, xb.call
            ),
        ),
        rel::PROCESS => (
            None,
            format!(
                "{an} and then {bn} ran on process {}, so {an} precedes {bn} (process)",
                xa.process
            ),
        ),
        _ => match ex.explain(t, a, b, r) {
            Some((k, text)) => (Some(t.key_text(k)), text),
            None => (None, format!("{an} precedes {bn} ({})", rel::name(r))),
        },
    }
}
