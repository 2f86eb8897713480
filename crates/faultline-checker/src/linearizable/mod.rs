//! Linearizability: is there a total order of the operations, consistent with real time,
//! that a sequential model accepts? Checked per key (P-compositionality), keys in
//! parallel, each with a memoised WGL search (`search`) against a model (`model`), within
//! a time and memory budget. An invalid key comes with a witness (`witness`).

mod append_kv;
mod fingerprint;
mod intern;
mod limits;
mod model;
mod multi_register;
mod mutex;
mod queue;
mod register;
pub mod search;
mod set;
#[cfg(test)]
mod testing;
mod witness;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::{Anomaly, Budget, Validity, Verdict};
use faultline_history::Operation;
use faultline_history::compact::OpSource;

pub use limits::Stop;
pub use model::{Machine, Model};

/// Called with (keys decided, keys in total) as keys finish.
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    pub model: Model,
    pub budget: Budget,
    /// Decide every key instead of stopping at the first invalid one.
    pub all_keys: bool,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    pub progress: Option<Progress>,
    /// The model's initial state, when not its default (nil, "", empty, free).
    pub initial: Option<Value>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            model: Model::CasRegister,
            budget: Budget::default(),
            all_keys: false,
            threads: 0,
            progress: None,
            initial: None,
        }
    }
}

impl Options {
    pub fn new(model: Model) -> Self {
        Options {
            model,
            ..Options::default()
        }
    }
}

/// What happened to one key.
#[derive(Clone, Debug)]
pub struct KeyResult {
    pub key: Option<String>,
    /// Ops checked (failed ops and unknown-outcome reads are left out).
    pub ops: usize,
    pub valid: Validity,
    pub anomaly: Option<Anomaly>,
    /// Why the key is undecided, or why its ops could not be interpreted.
    pub reason: Option<String>,
    pub stats: search::SearchStats,
    pub elapsed_ms: f64,
}

/// Checks `history` (a [`History`](faultline_history::History) or a
/// [`CompactHistory`](faultline_history::compact::CompactHistory)) against `model` within
/// `budget`, stopping at the first key with no valid order.
///
/// ```
/// use faultline_checker::linearizable::{self, Model};
/// use faultline_checker::{Budget, Validity};
/// use faultline_history::testkit::client_history;
/// use faultline_history::EventType::{Invoke, Ok};
/// use serde_json::json;
///
/// // Process 0 writes 1; process 1 then reads nil: a stale read.
/// let history = client_history(Some("x"), &[
///     (0, Invoke, "write", json!(1)),
///     (0, Ok, "write", json!(1)),
///     (1, Invoke, "read", json!(null)),
///     (1, Ok, "read", json!(null)),
/// ]);
/// let v = linearizable::check(&history, Model::CasRegister, &Budget::default());
/// assert_eq!(v.valid, Validity::Invalid);
/// assert_eq!(v.anomalies[0].kind, "nonlinearizable");
/// ```
pub fn check<S: OpSource + ?Sized>(history: &S, model: Model, budget: &Budget) -> Verdict {
    let opts = Options {
        budget: budget.clone(),
        ..Options::new(model)
    };
    check_with(history, &opts)
}

/// Checks `history` with every option (all keys, threads, progress, initial state).
pub fn check_with<S: OpSource + ?Sized>(history: &S, opts: &Options) -> Verdict {
    let start = Instant::now();
    let limits = limits::Limits::new(&opts.budget, start);
    let mut groups: Vec<(Option<String>, Vec<usize>)> = history.key_groups();
    // Biggest keys first, so the slowest start early and threads finish together.
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    let total = groups.len();
    let threads = faultline_history::cores::or_available(opts.threads).clamp(1, total.max(1));
    let cursor = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let worker = || {
        let mut out = Vec::new();
        let mut pool = Vec::new();
        loop {
            let i = cursor.fetch_add(1, Ordering::Relaxed);
            let Some((key, ids)) = groups.get(i) else {
                break;
            };
            // A compact history's ops become whole only while their key is checked.
            let ops: Vec<&Operation> = history
                .ops_of(ids, &mut pool)
                .into_iter()
                .filter(|o| !opts.model.ignores(o))
                .collect();
            let r = check_key(opts, key.as_deref(), &ops, &limits);
            if r.valid == Validity::Invalid && !opts.all_keys {
                limits.cancel();
            }
            out.push(r);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = &opts.progress {
                p(n, total);
            }
        }
        out
    };
    let mut results: Vec<KeyResult> = if threads == 1 {
        worker() // one key or one thread: no thread to start
    } else {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a key's search panicked"))
                .collect()
        })
    };
    results.sort_by(|a, b| a.key.cmp(&b.key));
    verdict(opts, results, history, start, limits.peak_bytes())
}

/// Decides one key.
fn check_key(
    opts: &Options,
    key: Option<&str>,
    ops: &[&Operation],
    limits: &limits::Limits,
) -> KeyResult {
    let model = opts.model;
    let start = Instant::now();
    let mut result = KeyResult {
        key: key.map(str::to_string),
        ops: ops.len(),
        valid: Validity::Unknown,
        anomaly: None,
        reason: None,
        stats: Default::default(),
        elapsed_ms: 0.0,
    };
    if let Err(stop) = limits.check() {
        result.reason = Some(stop.as_str().into());
        return result;
    }
    let machine = match model.build(ops, opts.initial.as_ref()) {
        Ok(m) => m,
        Err(e) => {
            result.reason = Some(e);
            return result;
        }
    };
    use model::AnyMachine as A;
    let (decision, stats, anomaly) = match machine {
        A::Register(mut m) => run(&mut m, model, key, ops, limits, 0),
        A::AppendKv(mut m) => run(&mut m, model, key, ops, limits, 96),
        A::MultiRegister(mut m) => run(&mut m, model, key, ops, limits, 96),
        A::Mutex(mut m) => run(&mut m, model, key, ops, limits, 0),
        A::Set(mut m) => run(&mut m, model, key, ops, limits, 96),
        A::Queue(mut m) => run(&mut m, model, key, ops, limits, 96),
    };
    result.stats = stats;
    result.anomaly = anomaly;
    match decision {
        search::Decision::Valid => result.valid = Validity::Valid,
        search::Decision::Invalid(_) => result.valid = Validity::Invalid,
        search::Decision::Unknown(stop) => result.reason = Some(stop.as_str().into()),
    }
    result.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    result
}

fn run<M: Machine>(
    m: &mut M,
    model: Model,
    key: Option<&str>,
    ops: &[&Operation],
    limits: &limits::Limits,
    bytes_per_state: u64,
) -> (search::Decision, search::SearchStats, Option<Anomaly>) {
    let (decision, stats) = search::search(m, ops, limits, bytes_per_state);
    let anomaly = match &decision {
        search::Decision::Invalid(deep) => Some(witness::anomaly(m, model, key, ops, deep)),
        _ => None,
    };
    (decision, stats, anomaly)
}

fn key_label(k: &Option<String>) -> String {
    k.clone().unwrap_or_else(|| "(no key)".into())
}

fn verdict<S: OpSource + ?Sized>(
    opts: &Options,
    mut results: Vec<KeyResult>,
    history: &S,
    start: Instant,
    peak: u64,
) -> Verdict {
    let count = |v: Validity| results.iter().filter(|r| r.valid == v).count();
    let (valid_keys, invalid_keys, unknown_keys) = (
        count(Validity::Valid),
        count(Validity::Invalid),
        count(Validity::Unknown),
    );
    let valid = results
        .iter()
        .fold(Validity::Valid, |acc, r| acc.and(r.valid));
    let ops: usize = results.iter().map(|r| r.ops).sum();
    let mut per_key = Map::new();
    for r in &results {
        let mut k =
            json!({"valid": r.valid, "ops": r.ops, "states": r.stats.states, "ms": r.elapsed_ms});
        if let Some(reason) = &r.reason {
            k["reason"] = Value::String(reason.clone());
        }
        per_key.insert(key_label(&r.key), k);
    }
    let anomalies: Vec<Anomaly> = results
        .iter_mut()
        .filter_map(|r| r.anomaly.take())
        .collect();
    let mut reasons: Vec<String> = results
        .iter()
        .filter(|r| r.valid == Validity::Unknown)
        .filter_map(|r| {
            r.reason
                .as_ref()
                .map(|why| format!("{}: {why}", key_label(&r.key)))
        })
        .collect();
    reasons.truncate(5);
    let model = opts.model.name();
    let keys = results.len();
    let explanation = match valid {
        Validity::Valid => {
            format!("linearizable: {ops} ops over {keys} key(s) fit the {model} model.")
        }
        Validity::Invalid => format!(
            "not linearizable: {invalid_keys} of {keys} key(s) have no valid order ({valid_keys} valid, {unknown_keys} undecided). {}",
            anomalies.first().map_or("", |a| a.description.as_str())
        ),
        Validity::Unknown => format!(
            "undecided: {unknown_keys} of {keys} key(s) could not be decided ({valid_keys} valid): {}.",
            reasons.join("; ")
        ),
    };
    let sum = |f: fn(&KeyResult) -> u64| results.iter().map(f).sum::<u64>();
    Verdict {
        checker: format!("linearizable/{model}"),
        valid,
        anomalies,
        explanation,
        stats: json!({
            "model": model,
            "ops": ops,
            "events": history.event_count(),
            "keys": keys,
            "keys_valid": valid_keys,
            "keys_invalid": invalid_keys,
            "keys_unknown": unknown_keys,
            "states": sum(|r| r.stats.states),
            "steps": sum(|r| r.stats.steps),
            "pruned": sum(|r| r.stats.pruned),
            "peak_memo_bytes": peak,
            "elapsed_ms": start.elapsed().as_secs_f64() * 1e3,
            "per_key": per_key,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::history;
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys_are_independent_and_all_keys_decides_each() {
        let h = history(
            "0 invoke write 1 a; 0 ok write 1 a; 1 invoke read nil b; 1 ok read 2 b; \
             2 invoke read nil a; 2 ok read 1 a; 3 invoke read nil c; 3 ok read 3 c",
        );
        let mut opts = Options::new(Model::CasRegister);
        opts.all_keys = true;
        let v = check_with(&h, &opts);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies.len(), 2);
        assert_eq!(v.stats["per_key"]["a"]["valid"], json!(true));
        assert_eq!(v.stats["keys_invalid"], json!(2));
        let words = &v.anomalies[0].description;
        assert!(
            words.starts_with("key b: read → 2 (process 1, events 2–3) cannot be linearized"),
            "{words}"
        );
        assert!(
            words.contains("No operation in the history could produce"),
            "{words}"
        );
    }

    #[test]
    fn witness_names_the_superseding_write() {
        let h = history(
            "0 invoke write 1; 0 ok write 1; 0 invoke write 2; 0 ok write 2; 1 invoke read nil; 1 ok read 1",
        );
        let v = check_with(&h, &Options::new(Model::CasRegister));
        assert_eq!(v.valid, Validity::Invalid);
        let a = &v.anomalies[0];
        assert!(
            a.description
                .contains("superseded by write 2 (process 0, events 2–3)"),
            "{}",
            a.description
        );
        assert_eq!(a.data["prefix"].as_array().unwrap().len(), 2);
        assert_eq!(a.data["state"], json!(2));
        assert_eq!(a.data["unplaceable"][0]["call"], json!(4));
        assert_eq!(a.events, vec![4, 5, 0]);
    }

    #[test]
    fn budgets_give_unknown() {
        let h = history("0 invoke write 1; 0 ok write 1; 1 invoke read nil; 1 ok read 1");
        let mut opts = Options::new(Model::CasRegister);
        opts.budget.time_limit = Some(Duration::ZERO);
        let v = check_with(&h, &opts);
        assert_eq!(v.valid, Validity::Unknown);
        assert!(v.explanation.contains("time limit"), "{}", v.explanation);
        opts.budget = Budget {
            time_limit: None,
            memory_limit_bytes: Some(1),
        };
        let v = check_with(&h, &opts);
        assert_eq!(v.valid, Validity::Unknown);
        assert!(v.explanation.contains("memory limit"), "{}", v.explanation);
    }

    #[test]
    fn model_mismatch_is_unknown_with_the_event() {
        let h = history("0 invoke cas [1,2]; 0 ok cas [1,2]");
        let v = check_with(&h, &Options::new(Model::Register));
        assert_eq!(v.valid, Validity::Unknown);
        assert!(v.explanation.contains("event 0"), "{}", v.explanation);
    }
}
