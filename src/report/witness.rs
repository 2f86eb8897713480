//! The shapes of `Anomaly.data` the report draws richly. Parsing is tolerant of the
//! spellings checkers use; anything else falls back to the generic anomaly view.
//!
//! Linearizability (checker `linearizable/*`):
//! `{"prefix":[{"op":EVENT,"state":S},...], "unplaceable":[EVENT,...], "initial_state":S}`
//! where EVENT is the invoke (or completion) event index of an op, `prefix` is the longest
//! linearizable prefix in linearization order with the model state after each op, and
//! `unplaceable` the ops none of which can come next. Also read: `linearized`,
//! `longest_prefix`, `linearization` for the prefix; `cannot_place`, `stuck`, `blocked`,
//! `failed` for the unplaceable ops; `event`/`index` for `op`; `model_state` for `state`.
//!
//! Cycles (checker `elle/*`): `{"cycle":[{"txn":EVENT,"edge":"rw","explanation":"..."},...]}`,
//! or the list itself, where step i's edge leads from its txn to the next step's txn (the last
//! back to the first). Also read: `steps`, `cycles[0]`; `event`/`index`/`op` for `txn`;
//! `type`/`kind`/`rel` for `edge`; `text`/`why` for `explanation`.

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
}

#[derive(Clone, Debug, PartialEq)]
pub struct CycleStep {
    pub event: u64,
    pub edge: String,
    pub explanation: String,
}

fn first<'a>(obj: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| obj.get(*n))
}

fn event_of(v: &Value, names: &[&str]) -> Option<u64> {
    match v {
        Value::Number(_) => v.as_u64(),
        Value::Object(o) => first(o, names).and_then(Value::as_u64),
        _ => None,
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
    Some(LinWitness {
        prefix,
        unplaceable,
        initial_state: first(obj, &["initial_state", "initial", "init"]).cloned(),
    })
}

pub fn cycle(data: &Value) -> Option<Vec<CycleStep>> {
    let steps = match data {
        Value::Array(a) => a,
        Value::Object(o) => match first(o, &["cycle", "steps"]) {
            Some(Value::Array(a)) => a,
            _ => o.get("cycles")?.as_array()?.first()?.as_array()?,
        },
        _ => return None,
    };
    let steps = steps
        .iter()
        .map(|s| {
            let o = s.as_object()?;
            Some(CycleStep {
                event: event_of(s, &["txn", "event", "index", "op"])?,
                edge: first(o, &["edge", "type", "kind", "rel"])
                    .map(|e| match e {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
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
    fn reads_cycles_in_several_spellings() {
        let c = cycle(&json!({"cycle":[
            {"txn":1,"edge":"rw","explanation":"T1 read x without 3"},
            {"txn":5,"edge":"wr","explanation":"T2 wrote 3"}]}))
        .unwrap();
        assert_eq!(c[0].edge, "rw");
        assert_eq!(c[1].event, 5);
        let c =
            cycle(&json!({"cycles":[[{"index":1,"type":"ww"},{"index":2,"type":"ww"}]]})).unwrap();
        assert_eq!(c[1].edge, "ww");
        assert_eq!(cycle(&json!([{"txn":1}])), None);
        assert_eq!(cycle(&json!({"prefix":[1]})), None);
    }
}
