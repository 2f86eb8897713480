//! Turns the deepest point of a failed search into a counterexample: in words (which op,
//! what it returned, what state the longest linearizable prefix left, and why the ops
//! that could have helped did not) and as data the report can draw.

use std::collections::HashSet;

use crate::Anomaly;
use crate::witness::{Linearizability, PrefixStep, Witness, WitnessOp};
use faultline_history::{Operation, Outcome};

use super::model::{Machine, Model, describe};
use super::search::Deepest;

fn op_ref(op: &Operation) -> WitnessOp {
    WitnessOp {
        process: op.process,
        f: op.f.clone(),
        invoke_value: op.invoke_value.clone(),
        value: op.value.clone(),
        outcome: match op.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
        .into(),
        call: op.call,
        ret: op.ret,
        placed: None,
    }
}

/// "write 3 (process 5, events 12–15)"
fn said(op: &Operation) -> String {
    match op.ret {
        Some(r) if op.outcome == Outcome::Ok => {
            format!(
                "{} (process {}, events {}–{})",
                describe(op),
                op.process,
                op.call,
                r
            )
        }
        _ => format!(
            "{} (process {}, invoked at event {}, outcome unknown)",
            describe(op),
            op.process,
            op.call
        ),
    }
}

pub fn anomaly<M: Machine>(
    m: &M,
    model: Model,
    key: Option<&str>,
    ops: &[&Operation],
    deep: &Deepest,
) -> Anomaly {
    let placed: HashSet<usize> = deep.prefix.iter().map(|p| p.0).collect();
    let state = m.state_json(deep.state);
    let key_words = key.map_or(String::new(), |k| format!("key {k}: "));
    let mut events = Vec::new();
    let description = match deep.blocked {
        None => format!(
            "{key_words}no linearization of the {} operations exists (no op could be placed first)",
            ops.len()
        ),
        Some(b) => {
            let blocked = ops[b];
            events.push(blocked.call);
            events.extend(blocked.ret);
            let mut words = format!(
                "{key_words}{} cannot be linearized. The longest linearizable prefix places {} of {} ops{} and leaves the state at {}; {} must take effect next, and no order of the ops concurrent with it makes it succeed.",
                said(blocked),
                deep.prefix.len(),
                ops.len(),
                deep.prefix.last().map_or(String::new(), |&(o, _)| format!(
                    ", ending with {}",
                    said(ops[o])
                )),
                state,
                describe(blocked),
            );
            // Of the producers already placed, only the last one placed matters (it is
            // the one something superseded); unplaced ones come first.
            let position = |o: usize| deep.prefix.iter().position(|&(p, _)| p == o);
            let all = m.producers(b);
            let last_placed = all
                .iter()
                .copied()
                .filter_map(|o| position(o).map(|i| (i, o)))
                .max();
            let mut producers: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&o| !placed.contains(&o))
                .collect();
            producers.extend(last_placed.map(|(_, o)| o));
            let needs_value = matches!(
                blocked.f.as_str(),
                "read" | "get" | "r" | "cas" | "acquire" | "release"
            );
            if needs_value && producers.is_empty() {
                words.push_str(" No operation in the history could produce the state it needs.");
            }
            let mut notes = Vec::new();
            for &p in producers.iter().take(5) {
                let op = ops[p];
                events.push(op.call);
                let why = if placed.contains(&p) {
                    // The first op after it that changed the state it left.
                    let mut rest = deep.prefix.iter().skip_while(|&&(o, _)| o != p);
                    let after = rest.next().map(|&(_, s)| s);
                    let later = rest.find(|&&(_, s)| Some(s) != after);
                    match later {
                        Some(&(o, _)) => {
                            format!("was placed earlier and then superseded by {}", said(ops[o]))
                        }
                        None => "was placed earlier".to_string(),
                    }
                } else if blocked.ret.is_some_and(|r| op.call > r) {
                    format!("was invoked only after it returned (event {})", op.call)
                } else {
                    "is concurrent, but every order that places it first breaks the ops already placed".to_string()
                };
                notes.push(format!("{} {why}", said(op)));
            }
            if !notes.is_empty() {
                words.push_str(" Ops that could have produced what it needs: ");
                words.push_str(&notes.join("; "));
                if producers.len() > 5 {
                    words.push_str(&format!("; and {} more", producers.len() - 5));
                }
                if all.len() > producers.len() {
                    words.push_str(&format!(
                        " ({} earlier ones were placed and superseded too)",
                        all.len() - producers.len()
                    ));
                }
                words.push('.');
            }
            words
        }
    };
    let data = Witness::Linearizability(Linearizability {
        model: model.name().into(),
        key: key.map(str::to_string),
        ops: ops.len(),
        prefix: deep
            .prefix
            .iter()
            .map(|&(o, s)| PrefixStep {
                op: op_ref(ops[o]),
                state: m.state_json(s),
            })
            .collect(),
        state,
        unplaceable: deep
            .blocked
            .map(|b| vec![op_ref(ops[b])])
            .unwrap_or_default(),
        candidates: deep.candidates.iter().map(|&c| op_ref(ops[c])).collect(),
        producers: deep
            .blocked
            .map(|b| m.producers(b))
            .unwrap_or_default()
            .iter()
            .map(|&p| WitnessOp {
                placed: Some(placed.contains(&p)),
                ..op_ref(ops[p])
            })
            .collect(),
    })
    .to_data();
    Anomaly {
        kind: "nonlinearizable".into(),
        key: key.map(str::to_string),
        description,
        events,
        data,
    }
}
