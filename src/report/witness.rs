//! The shapes of `Anomaly.data` the report draws richly. Parsing is tolerant of the
//! spellings checkers use; anything else falls back to the generic anomaly view.
//!
//! Linearizability (`linearizable/*`, as the checker writes it): `{"prefix":[{"op":OP,
//! "state":S},...], "state":S, "unplaceable":[OP,...], "producers":[OP+{"placed":bool}],
//! "candidates":[OP]}` where OP is an object with the op's invoke event index in `call` (or
//! the index itself), `prefix` is the longest linearizable prefix in linearization order
//! with the model state after each op, `unplaceable` the op that cannot come next,
//! `producers` the ops that could have produced what it needs. Also read: `linearized`,
//! `longest_prefix`, `linearization` for the prefix; `cannot_place`, `stuck`, `blocked` for
//! the unplaceable ops; `event`/`index` for `call`; `model_state` for `state`.
//!
//! Cycles (`elle/*`, as the checker writes them): `{"steps":[{"from":"T12","to":"T40",
//! "type":"rw","text":"..."},...], "ops":[op id,...]}`, step i leading from `ops[i]` to the
//! next step's txn (the last back to the first). Also read: `{"cycle":[{"txn":EVENT,
//! "edge":..,"explanation":..}]}` or that list alone, `cycles[0]`; `event`/`index` for `txn`;
//! `type`/`kind`/`rel` for `edge`; `text`/`why` for `explanation`; a name `T<event>` when no
//! index is given.

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
    pub initial_state: Option<Value>,
    /// The state the prefix leaves, when the checker says it.
    pub final_state: Option<Value>,
    /// Ops that could have produced what the unplaceable op needs: (event, placed in prefix).
    pub producers: Vec<(u64, bool)>,
}

/// Where a cycle step's transaction is: an op id, an event index, or only a name.
#[derive(Clone, Debug, PartialEq)]
pub enum TxnRef {
    Op(usize),
    Event(u64),
    Name(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct CycleStep {
    pub txn: TxnRef,
    pub name: Option<String>,
    pub edge: String,
    pub explanation: String,
}

fn first<'a>(obj: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| obj.get(*n))
}

/// An event index: a number, or an object's `call` (an op as the checker writes it), or the
/// first of `names` (itself a number or such an object).
fn event_of(v: &Value, names: &[&str]) -> Option<u64> {
    match v {
        Value::Number(_) => v.as_u64(),
        Value::Object(o) => match o.get("call").and_then(Value::as_u64) {
            Some(c) => Some(c),
            None => event_of(first(o, names)?, &[]),
        },
        _ => None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn lin_witness(data: &Value) -> Option<LinWitness> {
    let obj = data.as_object()?;
    let prefix_v = first(
        obj,
        &["prefix", "linearized", "longest_prefix", "linearization"],
    )?;
    let unplaceable_v = first(
        obj,
        &["unplaceable", "cannot_place", "stuck", "blocked", "failed"],
    )?;
    let prefix = prefix_v
        .as_array()?
        .iter()
        .map(|s| {
            Some(LinearizationStep {
                event: event_of(s, &["op", "event", "index"])?,
                state: s
                    .as_object()
                    .and_then(|o| first(o, &["state", "model_state"]))
                    .cloned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let unplaceable = unplaceable_v
        .as_array()?
        .iter()
        .map(|u| event_of(u, &["op", "event", "index"]))
        .collect::<Option<Vec<_>>>()?;
    if unplaceable.is_empty() {
        return None;
    }
    let producers = obj
        .get("producers")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let placed = p.get("placed").and_then(Value::as_bool).unwrap_or(false);
                    Some((event_of(p, &["op", "event", "index"])?, placed))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(LinWitness {
        prefix,
        unplaceable,
        initial_state: first(obj, &["initial_state", "initial", "init"]).cloned(),
        final_state: obj.get("state").cloned(),
        producers,
    })
}

pub fn cycle(data: &Value) -> Option<Vec<CycleStep>> {
    let objects = |v: &Value| {
        v.as_array()
            .filter(|a| a.iter().all(Value::is_object))
            .cloned()
    };
    let (steps, ops) = match data {
        Value::Array(_) => (objects(data)?, None),
        Value::Object(o) => {
            let steps = ["steps", "cycle"]
                .iter()
                .find_map(|n| o.get(*n).and_then(objects))
                .or_else(|| objects(o.get("cycles")?.as_array()?.first()?))?;
            (steps, o.get("ops").and_then(Value::as_array))
        }
        _ => return None,
    };
    let steps = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let o = s.as_object()?;
            let name = first(o, &["from", "name"]).map(text);
            let txn = if let Some(op) = ops.and_then(|ops| ops.get(i)).and_then(Value::as_u64) {
                TxnRef::Op(op as usize)
            } else if let Some(e) = event_of(s, &["txn", "event", "index", "op"]) {
                TxnRef::Event(e)
            } else {
                match name
                    .as_deref()
                    .and_then(|n| n.strip_prefix('T')?.parse().ok())
                {
                    Some(e) => TxnRef::Event(e),
                    None => TxnRef::Name(name.clone()?),
                }
            };
            Some(CycleStep {
                txn,
                name,
                edge: first(o, &["edge", "type", "kind", "rel"])
                    .map(text)
                    .unwrap_or_default(),
                explanation: first(o, &["explanation", "text", "why"])
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    (steps.len() >= 2).then_some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_documented_linearizability_shape_and_aliases() {
        let w = lin_witness(&json!({
            "prefix":[{"op":0,"state":1},{"op":4,"state":2}],
            "unplaceable":[7], "initial_state": null
        }))
        .unwrap();
        assert_eq!(
            w.prefix[1],
            LinearizationStep {
                event: 4,
                state: Some(json!(2))
            }
        );
        assert_eq!(w.unplaceable, vec![7]);
        let w = lin_witness(&json!({"linearized":[3, 5], "stuck":[{"event":9}]})).unwrap();
        assert_eq!((w.prefix[1].event, w.prefix[1].state.clone()), (5, None));
        assert_eq!(w.unplaceable, vec![9]);
        assert_eq!(lin_witness(&json!({"prefix":[], "unplaceable":[]})), None);
        assert_eq!(lin_witness(&json!({"cycle":[]})), None);
    }

    #[test]
    fn reads_the_checker_shape_with_op_objects() {
        let op = |call: u64| json!({"process": 1, "f": "write", "call": call, "ret": call + 1});
        let mut producer = op(2);
        producer["placed"] = json!(true);
        let w = lin_witness(&json!({
            "prefix": [{"op": op(0), "state": 1}, {"op": op(2), "state": 2}],
            "state": 2, "unplaceable": [op(6)], "producers": [producer]
        }))
        .unwrap();
        assert_eq!(w.prefix[1].event, 2);
        assert_eq!(w.unplaceable, vec![6]);
        assert_eq!(w.final_state, Some(json!(2)));
        assert_eq!(w.producers, vec![(2, true)]);
    }

    #[test]
    fn reads_cycles_in_several_spellings() {
        let c = cycle(&json!({"cycle":[
            {"txn":1,"edge":"rw","explanation":"T1 read x without 3"},
            {"txn":5,"edge":"wr","explanation":"T2 wrote 3"}]}))
        .unwrap();
        assert_eq!(c[0].edge, "rw");
        assert_eq!(c[1].txn, TxnRef::Event(5));
        let c =
            cycle(&json!({"cycles":[[{"index":1,"type":"ww"},{"index":2,"type":"ww"}]]})).unwrap();
        assert_eq!(c[1].edge, "ww");
        // The Elle checker's shape: names in `cycle`, steps with from/to/type/text, op ids.
        let c = cycle(
            &json!({"type":"G1c","cycle":["T12","T40"],"ops":[3,9],"steps":[
            {"from":"T12","to":"T40","type":"wr","text":"T40 read 1 written by T12"},
            {"from":"T40","to":"T12","type":"ww","text":"T12 overwrote T40"}]}),
        )
        .unwrap();
        assert_eq!(c[0].txn, TxnRef::Op(3));
        assert_eq!(c[1].name.as_deref(), Some("T40"));
        assert_eq!(c[0].explanation, "T40 read 1 written by T12");
        let c = cycle(&json!({"steps":[{"from":"T12","type":"wr"},{"from":"Tx","type":"ww"}]}))
            .unwrap();
        assert_eq!(
            (c[0].txn.clone(), c[1].txn.clone()),
            (TxnRef::Event(12), TxnRef::Name("Tx".into()))
        );
        assert_eq!(cycle(&json!([{"txn":1}])), None);
        assert_eq!(cycle(&json!({"prefix":[1]})), None);
    }
}
