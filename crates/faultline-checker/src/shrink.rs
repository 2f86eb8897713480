//! Shrinking a rejected history, without re-running anything, to a small sub-history that is
//! still rejected: first one key (or the fewest keys), then whole client processes, then single
//! operations, each by delta debugging (Zeller's ddmin). What "still rejected" means is the
//! caller's: usually the same checker and anomaly kind. Every step keeps a rejected history, so
//! a spent budget leaves the smallest one found so far.
//!
//! Removing the write a read returned would turn any finding into "read a value nobody
//! wrote", which is rejected too but says nothing: if every read of the original is explained
//! by some write in it, it must stay explained in every candidate (`explained`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use faultline_history::{History, Outcome};

/// How much work a shrink may do; when either runs out it stops with what it has.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most calls of the predicate.
    pub max_checks: usize,
    pub time_limit: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_checks: 20_000,
            time_limit: Some(Duration::from_secs(120)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Shrunk {
    pub history: History,
    pub ops_before: usize,
    pub keys_before: usize,
    pub keys_after: usize,
    /// Whether the named-process events (faults, probes) were needed and kept.
    pub kept_annotations: bool,
    pub checks: usize,
    /// Why the shrink stopped early (a budget), if it did; the history is still rejected.
    pub stopped: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShrinkError {
    #[error("the history is not rejected to begin with, so there is nothing to shrink")]
    NotRejected,
}

struct Tester<'a> {
    history: &'a History,
    rejects: &'a mut dyn FnMut(&History) -> bool,
    annotations: bool,
    /// Ops whose observations the original explains; candidates must keep them explained.
    explained: Vec<bool>,
    checks: usize,
    limits: Limits,
    started: Instant,
    stopped: Option<String>,
}

impl Tester<'_> {
    /// Whether the sub-history of `ops` is still rejected; `false` once the budget is spent,
    /// so no step accepts an untested candidate.
    fn rejects(&mut self, ops: &[usize]) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        if self.checks >= self.limits.max_checks {
            self.stopped = Some(format!("stopped after {} checks", self.checks));
            return false;
        }
        if let Some(t) = self.limits.time_limit
            && self.started.elapsed() >= t
        {
            self.stopped = Some(format!("stopped after {:.1} s", t.as_secs_f64()));
            return false;
        }
        let mut kept = vec![false; self.history.operations.len()];
        for &id in ops {
            kept[id] = true;
        }
        let now = explained(self.history, &kept);
        if ops.iter().any(|&id| self.explained[id] && !now[id]) {
            return false;
        }
        let sub = self.history.restrict(ops, self.annotations);
        self.checks += 1;
        (self.rejects)(&sub)
    }
}

/// Shrinks `history`, which `rejects` must reject.
pub fn shrink(
    history: &History,
    rejects: &mut dyn FnMut(&History) -> bool,
    limits: &Limits,
) -> Result<Shrunk, ShrinkError> {
    if !rejects(history) {
        return Err(ShrinkError::NotRejected);
    }
    let all: Vec<usize> = (0..history.operations.len()).collect();
    let mut t = Tester {
        history,
        rejects,
        annotations: false,
        explained: explained(history, &vec![true; history.operations.len()]),
        checks: 1,
        limits: limits.clone(),
        started: Instant::now(),
        stopped: None,
    };
    // Faults and probes matter only to checkers that read them.
    if history.annotations.is_empty() || !t.rejects(&all) {
        t.annotations = !history.annotations.is_empty();
    }

    let mut by_key: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for o in &history.operations {
        by_key.entry(o.key.as_deref()).or_default().push(o.id);
    }
    let keys_before = by_key.len();
    let mut groups: Vec<Vec<usize>> = by_key.into_values().collect();
    // Most findings live on one key: try each alone, smallest first, before ddmin over keys.
    groups.sort_by_key(Vec::len);
    let one = groups.iter().position(|g| t.rejects(g));
    let groups = match one {
        Some(i) => vec![groups.swap_remove(i)],
        None => ddmin(groups, &mut |gs| t.rejects(&gs.concat())),
    };
    let keys_after = groups.len();
    let ops = groups.concat();

    let mut by_process: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for &id in &ops {
        by_process
            .entry(history.operations[id].process)
            .or_default()
            .push(id);
    }
    let procs = ddmin(by_process.into_values().collect(), &mut |ps| {
        t.rejects(&ps.concat())
    });
    let mut ops = ddmin(procs.concat(), &mut |os| t.rejects(os));
    ops.sort_unstable();
    Ok(Shrunk {
        history: history.restrict(&ops, t.annotations),
        ops_before: history.operations.len(),
        keys_before,
        keys_after,
        kept_annotations: t.annotations,
        checks: t.checks,
        stopped: t.stopped,
    })
}

/// A value an op observed, to be explained by another op's write.
enum Seen<'a> {
    /// One written value (a register's value, a cas's old value, an element of a set or list,
    /// a txn's read micro-op, a held lock).
    Value(String, &'a Value),
    /// A string made of appended or put pieces (Porcupine's kv).
    Pieces(String, &'a str),
}

/// Per op of `h` (by id): whether everything it observed was written by some other op among
/// `kept` that did not definitely fail and was invoked before this op returned, or is the
/// empty initial state. Ops that observed nothing are explained.
pub fn explained(h: &History, kept: &[bool]) -> Vec<bool> {
    let text = |k: &Value| k.as_str().map_or_else(|| k.to_string(), String::from);
    // (key, value as JSON text) -> (invoke, op id) of kept ops that wrote it
    let mut written: HashMap<(String, String), Vec<(u64, usize)>> = HashMap::new();
    // key -> (invoke, op id, piece) of kept appends and puts of strings
    let mut pieces: HashMap<String, Vec<(u64, usize, &str)>> = HashMap::new();
    let mut seen: Vec<(usize, Seen)> = Vec::new();
    let held = Value::Bool(true);
    for o in &h.operations {
        let key = o.key.clone().unwrap_or_default();
        let ok = o.outcome == Outcome::Ok;
        let writes = o.outcome != Outcome::Fail && kept[o.id];
        let mut write = |k: String, v: &Value| {
            if writes {
                written
                    .entry((k, v.to_string()))
                    .or_default()
                    .push((o.call, o.id));
            }
        };
        match o.f.as_str() {
            "write" | "add" | "append" => write(key.clone(), &o.invoke_value),
            "cas" => {
                // a cas that succeeded read its old value
                if let (Some(old), true) = (o.invoke_value.get(0), ok) {
                    seen.push((o.id, Seen::Value(key.clone(), old)));
                }
                if let Some(new) = o.invoke_value.get(1) {
                    write(key.clone(), new);
                }
            }
            "read" if ok => seen.push((o.id, Seen::Value(key.clone(), &o.value))),
            "get" if ok => {
                if let Some(v) = o.value.as_str() {
                    seen.push((o.id, Seen::Pieces(key.clone(), v)));
                }
            }
            "acquire" => write(key.clone(), &held),
            "release" if ok => seen.push((o.id, Seen::Value(key.clone(), &held))),
            "txn" => {
                for m in o.value.as_array().into_iter().flatten() {
                    let (Some(f), Some(k), Some(v)) =
                        (m.get(0).and_then(Value::as_str), m.get(1), m.get(2))
                    else {
                        continue;
                    };
                    match f {
                        "w" | "write" | "append" => write(text(k), v),
                        "r" | "read" if ok => seen.push((o.id, Seen::Value(text(k), v))),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        if writes
            && matches!(o.f.as_str(), "put" | "append")
            && let Some(v) = o.invoke_value.as_str()
        {
            pieces.entry(key).or_default().push((o.call, o.id, v));
        }
    }
    let mut out = vec![true; h.operations.len()];
    for (id, s) in seen {
        let ret = h.operations[id].ret.unwrap_or(u64::MAX);
        let by_other = |&(at, w): &(u64, usize)| at < ret && w != id;
        let one = |k: &str, v: &Value| {
            v.is_null()
                || written
                    .get(&(k.to_string(), v.to_string()))
                    .is_some_and(|ws| ws.iter().any(by_other))
        };
        let ok = match s {
            Seen::Value(k, Value::Array(xs)) => xs.iter().all(|x| one(&k, x)),
            Seen::Value(k, v) => one(&k, v),
            Seen::Pieces(k, text) => {
                let mut avail: Vec<&str> = pieces
                    .get(&k)
                    .into_iter()
                    .flatten()
                    .filter(|&&(at, w, _)| at < ret && w != id)
                    .map(|&(_, _, p)| p)
                    .filter(|p| !p.is_empty())
                    .collect();
                avail.sort_unstable();
                avail.dedup();
                segments(text, &avail)
            }
        };
        out[id] &= ok;
    }
    out
}

/// Whether `text` is a concatenation of `pieces` (each usable any number of times).
fn segments(text: &str, pieces: &[&str]) -> bool {
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for i in 0..text.len() {
        if reach[i] {
            for p in pieces {
                if text[i..].starts_with(p) {
                    reach[i + p.len()] = true;
                }
            }
        }
    }
    reach[text.len()]
}

/// Delta debugging: a 1-minimal subset of `items` that `test` accepts, given that `test`
/// accepts `items` itself (removing any single remaining item makes `test` fail, unless
/// `test` gave up).
pub fn ddmin<T: Clone>(mut items: Vec<T>, test: &mut dyn FnMut(&[T]) -> bool) -> Vec<T> {
    let mut n = 2usize;
    while items.len() >= 2 {
        let chunk = items.len().div_ceil(n);
        let parts: Vec<Vec<T>> = items.chunks(chunk).map(<[T]>::to_vec).collect();
        let mut reduced = false;
        for p in &parts {
            if test(p) {
                items = p.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && parts.len() > 2 {
            for i in 0..parts.len() {
                let complement: Vec<T> = parts
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .flat_map(|(_, p)| p.iter().cloned())
                    .collect();
                if test(&complement) {
                    items = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= items.len() {
                break;
            }
            n = (n * 2).min(items.len());
        }
    }
    if items.len() == 1 && test(&[]) {
        items.clear();
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validity;
    use crate::linearizable::{self, Model, Options};
    use faultline_history::{Event, EventType, Process};
    use serde_json::{Value, json};
    use std::path::Path;

    #[test]
    fn ddmin_finds_the_two_items_that_matter() {
        let items: Vec<u32> = (0..100).collect();
        let mut calls = 0;
        let out = ddmin(items, &mut |xs| {
            calls += 1;
            xs.contains(&17) && xs.contains(&83)
        });
        assert_eq!(out, [17, 83]);
        assert!(calls < 100, "{calls} calls");
    }

    /// A register history on several keys where only key "b" has a stale read, buried
    /// among many linearizable ops on every key.
    fn buried_stale_read() -> History {
        let mut evs: Vec<(u64, EventType, &str, &str, Value)> = Vec::new();
        for round in 0..20u64 {
            for (p, key) in [(1, "a"), (2, "b"), (3, "c")] {
                evs.push((p, EventType::Invoke, "write", key, json!(round)));
                evs.push((p, EventType::Ok, "write", key, json!(round)));
                evs.push((p + 10, EventType::Invoke, "read", key, Value::Null));
                evs.push((p + 10, EventType::Ok, "read", key, json!(round)));
            }
            if round == 12 {
                // process 99 reads the value key b held two writes ago
                evs.push((99, EventType::Invoke, "read", "b", Value::Null));
                evs.push((99, EventType::Ok, "read", "b", json!(10)));
            }
        }
        let events = evs
            .into_iter()
            .enumerate()
            .map(|(i, (p, kind, f, key, value))| Event {
                request_id: None,
                index: i as u64,
                time: i as u64 * 1000,
                process: Process::Client(p),
                kind,
                f: f.into(),
                key: Some(key.into()),
                value,
                node: None,
                error: None,
            })
            .collect();
        History::from_events(events, Path::new("t.jsonl"), None).unwrap()
    }

    fn not_linearizable(h: &History) -> bool {
        let mut o = Options::new(Model::Register);
        o.all_keys = true;
        linearizable::check_with(h, &o).valid == Validity::Invalid
    }

    #[test]
    fn shrinks_to_the_stale_read_and_the_write_it_contradicts() {
        let h = buried_stale_read();
        let s = shrink(&h, &mut not_linearizable, &Limits::default()).unwrap();
        assert_eq!((s.ops_before, s.keys_before, s.keys_after), (121, 3, 1));
        assert!(s.stopped.is_none());
        let ops: Vec<(&str, &Value)> = s
            .history
            .operations
            .iter()
            .map(|o| (o.f.as_str(), &o.value))
            .collect();
        // the write of 10 the stale read returned, a later write that finished before the
        // read began, and the read: not just "a read of a value nobody wrote"
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert_eq!(ops[0], ("write", &json!(10)));
        assert_eq!(ops[1].0, "write");
        assert_eq!(ops[2], ("read", &json!(10)));
        assert!(not_linearizable(&s.history));
    }

    #[test]
    fn a_spent_budget_keeps_a_rejected_history() {
        let h = buried_stale_read();
        let limits = Limits {
            max_checks: 5,
            time_limit: None,
        };
        let s = shrink(&h, &mut not_linearizable, &limits).unwrap();
        assert_eq!(s.stopped.as_deref(), Some("stopped after 5 checks"));
        assert!(not_linearizable(&s.history));
        assert!(s.history.operations.len() < h.operations.len());
    }

    #[test]
    fn a_history_that_passes_is_refused() {
        let h = faultline_history::testkit::client_history(
            Some("k"),
            &[
                (1, EventType::Invoke, "write", json!(1)),
                (1, EventType::Ok, "write", json!(1)),
            ],
        );
        assert_eq!(
            shrink(&h, &mut not_linearizable, &Limits::default()).unwrap_err(),
            ShrinkError::NotRejected
        );
    }
}
