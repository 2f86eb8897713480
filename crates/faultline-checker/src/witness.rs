//! The witnesses checkers attach to the anomalies a report can draw, as types. A checker
//! builds one and stores it in `Anomaly::data` ([`Witness::to_data`]); the report and the
//! suite read it back with [`Witness::of`]. Both sides share these types, so a change of
//! shape is a compile error rather than an anomaly silently shown plain. The JSON carries a
//! `witness` tag (`linearizability`, `cycle`) beside the fields.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Anomaly;

/// An op as a witness names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WitnessOp {
    pub process: u64,
    pub f: String,
    #[serde(default)]
    pub invoke_value: Value,
    #[serde(default)]
    pub value: Value,
    /// `ok`, `fail` or `info`.
    #[serde(default)]
    pub outcome: String,
    /// The invoke's event index: how the report finds the op.
    pub call: u64,
    #[serde(default)]
    pub ret: Option<u64>,
    /// Producers only: whether the longest linearizable prefix placed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<bool>,
}

/// One op of the longest linearizable prefix, and the model state after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrefixStep {
    pub op: WitnessOp,
    pub state: Value,
}

/// Why a key is not linearizable: the longest prefix the search placed, the op that cannot
/// come next, and the ops that could have produced what it needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linearizability {
    pub model: String,
    #[serde(default)]
    pub key: Option<String>,
    /// Ops of the key.
    #[serde(default)]
    pub ops: usize,
    /// In linearization order.
    pub prefix: Vec<PrefixStep>,
    /// The state the prefix leaves.
    pub state: Value,
    pub unplaceable: Vec<WitnessOp>,
    #[serde(default)]
    pub candidates: Vec<WitnessOp>,
    #[serde(default)]
    pub producers: Vec<WitnessOp>,
}

/// One edge of a dependency cycle: `from` must precede `to` because of `text`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleStep {
    pub from: String,
    pub to: String,
    /// `ww`, `wr`, `rw`, `realtime`, `process`.
    #[serde(rename = "type")]
    pub rel: String,
    #[serde(default)]
    pub key: Option<String>,
    pub text: String,
}

/// A cycle of transactions (Elle): step i leads from op `ops[i]` to the next step's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    /// The anomaly: `G0`, `G1c`, `G-single`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub key: Option<String>,
    /// The transactions' names, in cycle order.
    pub cycle: Vec<String>,
    /// Op ids (indexes into the history's operations), one per step.
    pub ops: Vec<usize>,
    pub steps: Vec<CycleStep>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "witness", rename_all = "lowercase")]
pub enum Witness {
    Linearizability(Linearizability),
    Cycle(Cycle),
}

impl Witness {
    /// The value for `Anomaly::data`.
    pub fn to_data(&self) -> Value {
        serde_json::to_value(self).expect("a witness is plain data")
    }

    /// The witness an anomaly carries, if it carries one (other anomalies have data of their
    /// own, shown as a table).
    pub fn of(a: &Anomaly) -> Option<Witness> {
        a.data.get("witness")?;
        Witness::deserialize(&a.data).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(call: u64) -> WitnessOp {
        WitnessOp {
            process: 1,
            f: "write".into(),
            invoke_value: json!(call),
            value: json!(call),
            outcome: "ok".into(),
            call,
            ret: Some(call + 1),
            placed: None,
        }
    }

    fn anomaly(data: Value) -> Anomaly {
        Anomaly {
            kind: "k".into(),
            key: None,
            description: String::new(),
            events: vec![],
            data,
        }
    }

    #[test]
    fn a_witness_round_trips_through_anomaly_data_with_its_tag() {
        let w = Witness::Linearizability(Linearizability {
            model: "cas-register".into(),
            key: Some("x".into()),
            ops: 3,
            prefix: vec![PrefixStep {
                op: op(0),
                state: json!(0),
            }],
            state: json!(0),
            unplaceable: vec![op(4)],
            candidates: vec![],
            producers: vec![WitnessOp {
                placed: Some(true),
                ..op(0)
            }],
        });
        let data = w.to_data();
        assert_eq!(data["witness"], "linearizability");
        assert_eq!(data["unplaceable"][0]["call"], 4);
        assert_eq!(data["producers"][0]["placed"], true);
        assert!(data["prefix"][0]["op"].get("placed").is_none());
        assert_eq!(Witness::of(&anomaly(data)), Some(w));

        let c = Witness::Cycle(Cycle {
            kind: "G1c".into(),
            key: None,
            cycle: vec!["T1".into(), "T5".into()],
            ops: vec![0, 2],
            steps: vec![],
        });
        let data = c.to_data();
        assert_eq!(
            (data["witness"].clone(), data["type"].clone()),
            (json!("cycle"), json!("G1c"))
        );
        assert_eq!(Witness::of(&anomaly(data)), Some(c));
    }

    #[test]
    fn data_without_a_witness_tag_or_of_the_wrong_shape_is_none() {
        assert_eq!(Witness::of(&anomaly(json!({"key": "x", "value": 3}))), None);
        assert_eq!(Witness::of(&anomaly(Value::Null)), None);
        assert_eq!(
            Witness::of(&anomaly(json!({"witness": "cycle", "steps": 3}))),
            None
        );
    }
}
