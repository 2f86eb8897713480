//! Property tests of the linearizability checker: histories linearizable by construction
//! are valid; the same histories with one planted stale read are invalid; malformed
//! histories are rejected with an error naming file, line and field.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};

use faultline::checker::Validity;
use faultline::checker::linearizable::{Model, Options, check_with};
use faultline::history::{Event, EventType, Format, History, Process, import, jsonl};

/// One simulated client action.
#[derive(Clone, Debug)]
enum Step {
    /// Process `p % procs` invokes an op of kind `kind` on key `key`.
    Invoke { p: usize, kind: u8, key: u8 },
    /// The pending op of process `p` takes effect (its linearization point).
    Apply { p: usize },
    /// The pending op of process `p` completes; `crash` makes an unapplied op end `info`.
    Complete { p: usize, crash: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..5, 0u8..3, 0u8..3).prop_map(|(p, kind, key)| Step::Invoke { p, kind, key }),
        (0usize..5).prop_map(|p| Step::Apply { p }),
        (0usize..5, prop::bool::weighted(0.1)).prop_map(|(p, crash)| Step::Complete { p, crash }),
    ]
}

struct Pending {
    process: u64,
    f: &'static str,
    key: String,
    invoke_value: Value,
    result: Option<(EventType, Value)>,
}

/// Runs the steps against a real register (or append-kv store) per key, emitting
/// invoke and completion events; every op takes effect between its invoke and its
/// completion, so the history is linearizable by construction. Written values are unique.
fn simulate(steps: &[Step], kv: bool) -> Vec<Event> {
    simulate_values(steps, kv, u64::MAX)
}

/// `simulate`, with written values taken modulo `modulo` (repeated values exercise the
/// search's handling of interchangeable ops).
fn simulate_values(steps: &[Step], kv: bool, modulo: u64) -> Vec<Event> {
    let mut state: std::collections::HashMap<String, Value> = Default::default();
    let mut slots: Vec<Option<Pending>> = (0..5).map(|_| None).collect();
    let mut process_of: Vec<u64> = (0..5).collect();
    let mut next_process = 5u64;
    let mut next_value = 1u64;
    let mut events = Vec::new();
    let emit = |events: &mut Vec<Event>, p: u64, kind, f: &str, key: &str, value: Value| {
        faultline::history::testkit::push_client(events, p, kind, f, Some(key), value);
    };
    for s in steps {
        match *s {
            Step::Invoke { p, kind, key } => {
                if slots[p].is_some() {
                    continue;
                }
                let key = format!("k{key}");
                let cur = state.get(&key).cloned().unwrap_or(Value::Null);
                let nv = next_value % modulo;
                let (f, v): (&'static str, Value) = match (kv, kind) {
                    (false, 0) | (true, 0) => (if kv { "get" } else { "read" }, Value::Null),
                    (false, 1) => ("write", json!(nv)),
                    (false, _) => ("cas", json!([cur, nv])),
                    (true, 1) => ("put", json!(format!("[{nv}]"))),
                    (true, _) => ("append", json!(format!("[{nv}]"))),
                };
                next_value += 1;
                emit(
                    &mut events,
                    process_of[p],
                    EventType::Invoke,
                    f,
                    &key,
                    v.clone(),
                );
                slots[p] = Some(Pending {
                    process: process_of[p],
                    f,
                    key,
                    invoke_value: v,
                    result: None,
                });
            }
            Step::Apply { p } => {
                let Some(op) = slots[p].as_mut().filter(|o| o.result.is_none()) else {
                    continue;
                };
                let cur =
                    state
                        .get(&op.key)
                        .cloned()
                        .unwrap_or(if kv { json!("") } else { Value::Null });
                let v = op.invoke_value.clone();
                op.result = Some(match op.f {
                    "read" | "get" => (EventType::Ok, cur),
                    "write" | "put" => {
                        state.insert(op.key.clone(), v.clone());
                        (EventType::Ok, v)
                    }
                    "append" => {
                        let s = format!("{}{}", cur.as_str().unwrap(), v.as_str().unwrap());
                        state.insert(op.key.clone(), json!(s));
                        (EventType::Ok, v)
                    }
                    _ => {
                        // cas: succeeds if the register still holds the expected value.
                        if cur == v[0] {
                            state.insert(op.key.clone(), v[1].clone());
                            (EventType::Ok, v)
                        } else {
                            (EventType::Fail, v)
                        }
                    }
                });
            }
            Step::Complete { p, crash } => {
                let Some(op) = slots[p].take() else { continue };
                match op.result {
                    Some((kind, value)) if !crash => {
                        emit(&mut events, op.process, kind, op.f, &op.key, value)
                    }
                    // Applied or not, an info completion leaves it open.
                    _ if crash || op.result.is_some() => {
                        emit(
                            &mut events,
                            op.process,
                            EventType::Info,
                            op.f,
                            &op.key,
                            op.invoke_value,
                        );
                        process_of[p] = next_process;
                        next_process += 1;
                    }
                    // Never applied and not crashed: it did not happen.
                    _ => emit(
                        &mut events,
                        op.process,
                        EventType::Fail,
                        op.f,
                        &op.key,
                        op.invoke_value,
                    ),
                }
            }
        }
    }
    events
}

fn history(events: Vec<Event>) -> History {
    History::from_events(events, Path::new("sim.jsonl"), None)
        .expect("simulated history is well formed")
}

/// Plants a stale read: after everything, process 100 writes a fresh value, process 101
/// overwrites it, then process 102 reads the first value back. Values are unique, so no
/// order explains the read.
fn plant_stale_read(events: &mut Vec<Event>, kv: bool, key: &str) {
    let (w, r) = if kv {
        ("put", "get")
    } else {
        ("write", "read")
    };
    let (a, b) = if kv {
        (json!("[900001]"), json!("[900002]"))
    } else {
        (json!(900001), json!(900002))
    };
    let seq = [
        (100, EventType::Invoke, w, a.clone()),
        (100, EventType::Ok, w, a.clone()),
        (101, EventType::Invoke, w, b.clone()),
        (101, EventType::Ok, w, b),
        (102, EventType::Invoke, r, Value::Null),
        (102, EventType::Ok, r, a),
    ];
    let t0 = events.last().map_or(0, |e| e.time + 1000);
    for (i, (p, kind, f, value)) in seq.into_iter().enumerate() {
        events.push(Event {
            request_id: None,
            index: events.len() as u64,
            time: t0 + i as u64,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: Some(key.into()),
            value,
            node: None,
            error: None,
        });
    }
}

fn opts(kv: bool) -> Options {
    let mut o = Options::new(if kv {
        Model::AppendKv
    } else {
        Model::CasRegister
    });
    o.all_keys = true;
    o
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn linearizable_by_construction_is_valid(steps in prop::collection::vec(step(), 0..160), kv in any::<bool>()) {
        let h = history(simulate(&steps, kv));
        let v = check_with(&h, &opts(kv));
        prop_assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }

    #[test]
    fn linearizable_with_repeated_values_is_valid(steps in prop::collection::vec(step(), 0..160), kv in any::<bool>(), modulo in 1u64..4) {
        let h = history(simulate_values(&steps, kv, modulo));
        let v = check_with(&h, &opts(kv));
        prop_assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }

    #[test]
    fn one_planted_stale_read_is_invalid(steps in prop::collection::vec(step(), 0..160), kv in any::<bool>(), key in 0u8..3) {
        let mut events = simulate(&steps, kv);
        let key = format!("k{key}");
        plant_stale_read(&mut events, kv, &key);
        let v = check_with(&history(events), &opts(kv));
        prop_assert_eq!(v.valid, Validity::Invalid, "{}", v.explanation);
        prop_assert_eq!(v.anomalies.len(), 1);
        prop_assert_eq!(v.anomalies[0].key.as_deref(), Some(key.as_str()));
        // The witness names the stale read as the op that cannot be placed.
        let stale = &v.anomalies[0].data["unplaceable"][0];
        prop_assert_eq!(stale["process"].as_u64(), Some(102));
    }

    #[test]
    fn malformed_lines_are_named(steps in prop::collection::vec(step(), 4..60), pick in any::<prop::sample::Index>(), how in 0u8..4) {
        let events = simulate(&steps, false);
        prop_assume!(!events.is_empty());
        let mut text = Vec::new();
        jsonl::write_all(&events, &mut text).unwrap();
        let mut lines: Vec<String> = String::from_utf8(text).unwrap().lines().map(str::to_string).collect();
        let i = pick.index(lines.len());
        let mut obj: serde_json::Map<String, Value> = serde_json::from_str(&lines[i]).unwrap();
        let field = match how {
            0 => { lines[i] = "{\"index\":".into(); "json" }
            1 => { obj.remove("f"); lines[i] = Value::Object(obj).to_string(); "f" }
            2 => { obj.insert("type".into(), json!("begin")); lines[i] = Value::Object(obj).to_string(); "type" }
            _ => { obj.insert("index".into(), json!(99999)); lines[i] = Value::Object(obj).to_string(); "index" }
        };
        let text = lines.join("\n");
        let err = import::read_str(&text, Path::new("h.jsonl"), Format::Auto).unwrap_err().to_string();
        let want = format!("h.jsonl:{}: {field}:", i + 1);
        prop_assert!(err.starts_with(&want), "{} should start with {}", err, want);
    }
}
