//! The witnesses the report draws richly, taken from the checkers' typed witnesses
//! (`checker::witness`) into the shapes the drawings use; any other anomaly falls back to
//! the generic view.

use crate::checker::Anomaly;
use crate::checker::witness::Witness;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct LinearizationStep {
    pub event: u64,
    pub state: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinWitness {
    pub prefix: Vec<LinearizationStep>,
    pub unplaceable: Vec<u64>,
    /// The state the prefix leaves.
    pub final_state: Option<Value>,
    /// Ops that could have produced what the unplaceable op needs: (event, placed in prefix).
    pub producers: Vec<(u64, bool)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CycleStep {
    /// The step's transaction: an op id of the history.
    pub op: usize,
    pub name: Option<String>,
    pub edge: String,
    pub explanation: String,
}

/// A linearizability counterexample, when the anomaly carries one with an op to show.
pub fn lin_witness(a: &Anomaly) -> Option<LinWitness> {
    let Some(Witness::Linearizability(l)) = Witness::of(a) else {
        return None;
    };
    if l.unplaceable.is_empty() {
        return None;
    }
    Some(LinWitness {
        prefix: l
            .prefix
            .iter()
            .map(|s| LinearizationStep {
                event: s.op.call,
                state: Some(s.state.clone()),
            })
            .collect(),
        unplaceable: l.unplaceable.iter().map(|o| o.call).collect(),
        final_state: Some(l.state),
        producers: l
            .producers
            .iter()
            .map(|p| (p.call, p.placed.unwrap_or(false)))
            .collect(),
    })
}

/// A dependency cycle of two or more transactions, step i leading from `ops[i]` on.
pub fn cycle(a: &Anomaly) -> Option<Vec<CycleStep>> {
    let Some(Witness::Cycle(c)) = Witness::of(a) else {
        return None;
    };
    let steps: Vec<CycleStep> = c
        .steps
        .into_iter()
        .zip(c.ops)
        .map(|(s, op)| CycleStep {
            op,
            name: Some(s.from),
            edge: s.rel,
            explanation: s.text,
        })
        .collect();
    (steps.len() >= 2).then_some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::witness::{self, PrefixStep, WitnessOp};
    use serde_json::json;

    fn anomaly(w: Witness) -> Anomaly {
        Anomaly {
            kind: "k".into(),
            key: None,
            description: String::new(),
            events: vec![],
            data: w.to_data(),
        }
    }

    fn op(call: u64, placed: Option<bool>) -> WitnessOp {
        WitnessOp {
            process: 1,
            f: "write".into(),
            invoke_value: json!(1),
            value: json!(1),
            outcome: "ok".into(),
            call,
            ret: Some(call + 1),
            placed,
        }
    }

    #[test]
    fn a_linearizability_witness_becomes_the_drawing_s_events() {
        let w = lin_witness(&anomaly(Witness::Linearizability(
            witness::Linearizability {
                model: "cas-register".into(),
                key: None,
                ops: 4,
                prefix: vec![
                    PrefixStep {
                        op: op(0, None),
                        state: json!(1),
                    },
                    PrefixStep {
                        op: op(2, None),
                        state: json!(2),
                    },
                ],
                state: json!(2),
                unplaceable: vec![op(6, None)],
                candidates: vec![],
                producers: vec![op(2, Some(true))],
            },
        )))
        .unwrap();
        assert_eq!(
            w.prefix[1],
            LinearizationStep {
                event: 2,
                state: Some(json!(2))
            }
        );
        assert_eq!(w.unplaceable, vec![6]);
        assert_eq!(w.final_state, Some(json!(2)));
        assert_eq!(w.producers, vec![(2, true)]);
    }

    #[test]
    fn a_cycle_witness_names_its_ops_and_a_lone_step_is_no_cycle() {
        let step = |from: &str, to: &str| witness::CycleStep {
            from: from.into(),
            to: to.into(),
            rel: "wr".into(),
            key: None,
            text: format!("{to} read what {from} wrote"),
        };
        let c = |steps: Vec<witness::CycleStep>| {
            cycle(&anomaly(Witness::Cycle(witness::Cycle {
                kind: "G1c".into(),
                key: None,
                cycle: vec![],
                ops: vec![3, 9],
                steps,
            })))
        };
        let got = c(vec![step("T12", "T40"), step("T40", "T12")]).unwrap();
        assert_eq!((got[0].op, got[1].op), (3, 9));
        assert_eq!(got[1].name.as_deref(), Some("T40"));
        assert_eq!(got[0].explanation, "T40 read what T12 wrote");
        assert_eq!(c(vec![step("T12", "T12")]), None);
        // Data that is no witness is drawn plain.
        let plain = Anomaly {
            data: json!({"cycle": ["T1", "T2"]}),
            ..anomaly(Witness::Cycle(witness::Cycle {
                kind: String::new(),
                key: None,
                cycle: vec![],
                ops: vec![],
                steps: vec![],
            }))
        };
        assert_eq!(cycle(&plain), None);
    }
}
