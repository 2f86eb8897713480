//! Elle-style transactional checking: infer each key's version order from what
//! transactions read, build a dependency graph of transactions (ww, wr, rw, plus process
//! or real-time order), find its strongly connected components, and report the shortest
//! cycle of each anomaly shape inside them, with the consistency models each rules out.
//! Anomaly names and model implications follow Elle's.
//!
//! Layout: `txns` (compact transactions), `list_append` / `rw_register` (inference per
//! model), `graph` (edges, SCCs), `cycles` (typed cycle search), `models` (what implies
//! what), `explain` (cycles in words).

pub mod cycles;
pub mod explain;
mod fxhash;
pub mod generate;
pub mod graph;
pub mod list_append;
pub mod models;
pub mod rw_register;
pub mod txns;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Anomaly, Budget, Validity, Verdict};
use faultline_history::History;
use graph::{EdgeList, OrderEdges};
pub use txns::{Scalar, TxnError, Txns};

/// Which transactional workload the history is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElleModel {
    /// Micro-ops `["append", k, v]` and `["r", k, [v...]]`; appends are unique per key.
    ListAppend,
    /// Micro-ops `["w", k, v]` and `["r", k, v]`; writes are unique per key.
    RwRegister,
}

impl ElleModel {
    pub fn name(self) -> &'static str {
        match self {
            ElleModel::ListAppend => "list-append",
            ElleModel::RwRegister => "rw-register",
        }
    }
}

/// A consistency model the history is expected to satisfy, by Elle's name
/// (`strict-serializable`, `serializable`, `snapshot-isolation`, `read-committed`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyModel(String);

impl ConsistencyModel {
    pub fn strict_serializable() -> Self {
        ConsistencyModel("strict-serializable".into())
    }

    pub fn serializable() -> Self {
        ConsistencyModel("serializable".into())
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ConsistencyModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if models::is_known_model(s) {
            Ok(ConsistencyModel(s.to_string()))
        } else {
            Err(format!("unknown consistency model {s:?}"))
        }
    }
}

#[derive(Clone, Debug)]
pub struct ElleOptions {
    pub model: ElleModel,
    /// Models expected to hold; anomalies they forbid make the history invalid.
    pub consistency_models: Vec<ConsistencyModel>,
    /// Further anomaly names that make the history invalid.
    pub anomalies: Vec<String>,
    /// rw-register: infer version order from each process's successive transactions.
    pub sequential_keys: bool,
    /// rw-register: infer version order from real-time order of transactions on a key.
    pub linearizable_keys: bool,
    /// rw-register: a txn's write of a key comes after the version it read of that key
    /// (Elle's `wfr-keys?`; off by default, as in Elle).
    pub wfr_keys: bool,
    /// Time allowed to search one SCC for cycles (Elle's default: 1 s).
    pub cycle_search_timeout: Duration,
    /// Overall limits; exceeding them gives `unknown` with what was found.
    pub budget: Budget,
}

impl ElleOptions {
    pub fn new(model: ElleModel) -> Self {
        ElleOptions {
            model,
            consistency_models: vec![ConsistencyModel::strict_serializable()],
            anomalies: Vec::new(),
            sequential_keys: false,
            linearizable_keys: false,
            wfr_keys: false,
            cycle_search_timeout: Duration::from_secs(1),
            budget: Budget::default(),
        }
    }
}

/// Anomalies found so far, by type.
#[derive(Default)]
pub struct Found {
    pub by_type: BTreeMap<String, Vec<Anomaly>>,
    /// The history breaks the workload's rules (e.g. an append repeated), so it cannot
    /// be checked.
    pub error: Option<String>,
}

/// Cases kept per anomaly type; the count of all is in the stats.
const MAX_CASES_PER_TYPE: usize = 32;

impl Found {
    pub fn add(
        &mut self,
        kind: &str,
        key: Option<String>,
        description: String,
        events: Vec<u64>,
        data: Value,
    ) {
        let v = self.by_type.entry(kind.to_string()).or_default();
        if v.len() < MAX_CASES_PER_TYPE {
            v.push(Anomaly {
                kind: kind.to_string(),
                key,
                description,
                events: events.into_iter().filter(|e| *e != u64::MAX).collect(),
                data,
            });
        }
    }
}

/// What inference hands to the graph stage.
pub struct Inference<E> {
    /// Which transactions are graph vertices (not failed).
    pub vertex: Vec<bool>,
    pub edges: EdgeList,
    pub explainer: E,
}

/// Explains a data dependency a -> b in words: (key id, sentence).
pub trait Explain {
    fn explain(&self, t: &Txns, a: u32, b: u32, r: u8) -> Option<(u32, String)>;
}

/// A transaction's name in explanations: T and the event index of its completion (of its
/// invocation if it never completed), so it can be found in the history file.
pub fn txn_name(t: &Txns, i: u32) -> String {
    let x = &t.txns[i as usize];
    if x.ret == u64::MAX {
        format!("T{}", x.call)
    } else {
        format!("T{}", x.ret)
    }
}

/// Checks a history's `txn` operations.
pub fn check(h: &History, o: &ElleOptions) -> Verdict {
    match Txns::from_history(h) {
        Ok(t) => check_txns(&t, o),
        Err(e) => Verdict {
            checker: format!("elle/{}", o.model.name()),
            valid: Validity::Unknown,
            anomalies: Vec::new(),
            explanation: format!("cannot check: malformed transaction: {e}"),
            stats: json!({}),
        },
    }
}

/// Checks transactions already in compact form.
pub fn check_txns(t: &Txns, o: &ElleOptions) -> Verdict {
    let started = Instant::now();
    let deadline = o.budget.time_limit.map(|d| started + d);
    let checker = format!("elle/{}", o.model.name());
    let models: Vec<&str> = o.consistency_models.iter().map(|m| m.name()).collect();
    let mut prohibited = models::anomalies_prohibited_by(&models);
    prohibited.extend(models::all_anomalies_implying(&o.anomalies));
    let mut reportable = prohibited.clone();
    reportable.extend([
        "cycle-search-timeout".to_string(),
        "empty-transaction-graph".to_string(),
    ]);
    let order = if reportable.iter().any(|a| a.ends_with("-realtime")) {
        OrderEdges::Realtime
    } else if reportable.iter().any(|a| a.ends_with("-process")) {
        OrderEdges::Process
    } else {
        OrderEdges::None
    };

    // Memory budget: the graph stage needs roughly this much beyond the input.
    if let Some(limit) = o.budget.memory_limit_bytes {
        let estimate = (t.mops.len() as u64) * 48 + (t.len() as u64) * 96;
        if estimate > limit {
            return Verdict {
                checker,
                valid: Validity::Unknown,
                anomalies: Vec::new(),
                explanation: format!(
                    "not checked: {} transactions need about {} MB, over the {} MB memory limit",
                    t.len(),
                    estimate >> 20,
                    limit >> 20
                ),
                stats: json!({"txns": t.len()}),
            };
        }
    }

    let mut found = Found::default();
    let (vertex, mut edges, explainer): (Vec<bool>, EdgeList, Box<dyn Explain>) = match o.model {
        ElleModel::ListAppend => {
            let inf = list_append::infer(t, &mut found);
            (inf.vertex, inf.edges, Box::new(inf.explainer))
        }
        ElleModel::RwRegister => {
            let sources = rw_register::Sources {
                sequential_keys: o.sequential_keys,
                linearizable_keys: o.linearizable_keys,
                wfr_keys: o.wfr_keys,
            };
            let inf = rw_register::infer(t, sources, &mut found);
            (inf.vertex, inf.edges, Box::new(inf.explainer))
        }
    };
    if let Some(err) = found.error {
        return Verdict {
            checker,
            valid: Validity::Unknown,
            anomalies: Vec::new(),
            explanation: format!("cannot check: {err}"),
            stats: json!({"txns": t.len()}),
        };
    }
    let inferred_ms = started.elapsed().as_secs_f64() * 1e3;
    match order {
        OrderEdges::Realtime => graph::realtime_edges(t, &vertex, &mut edges),
        OrderEdges::Process => graph::process_edges(t, &vertex, &mut edges),
        OrderEdges::None => {}
    }
    let g = edges.freeze(t.len());
    let sccs = g.cyclic_sccs();
    let graph_ms = started.elapsed().as_secs_f64() * 1e3 - inferred_ms;

    if !t
        .txns
        .iter()
        .any(|x| x.outcome == faultline_history::Outcome::Ok)
    {
        found.add(
            "empty-transaction-graph",
            None,
            "no transaction completed ok, so there is nothing to order".into(),
            Vec::new(),
            Value::Null,
        );
    }
    let mut timed_out = false;
    let mut largest = 0usize;
    for scc in &sccs {
        largest = largest.max(scc.len());
        if deadline.is_some_and(|d| Instant::now() > d) {
            timed_out = true;
            found.add(
                "cycle-search-timeout",
                None,
                format!("the time limit ran out before the cycles of an SCC of {} transactions were searched", scc.len()),
                Vec::new(),
                json!({"scc-size": scc.len()}),
            );
            continue;
        }
        let scc_deadline = Some(
            deadline.map_or(Instant::now() + o.cycle_search_timeout, |d| {
                d.min(Instant::now() + o.cycle_search_timeout)
            }),
        );
        let r = cycles::search_scc(&g, scc, scc_deadline);
        for mut c in r.cycles {
            if order == OrderEdges::Realtime {
                let precedes = |a: u32, b: u32| {
                    let (x, y) = (&t.txns[a as usize], &t.txns[b as usize]);
                    x.outcome == faultline_history::Outcome::Ok && x.ret < y.call
                };
                c.steps = cycles::shortcut_realtime(c.steps, precedes);
            }
            let (description, data, events) = explain::cycle(t, explainer.as_ref(), &c);
            found.add(
                &c.kind,
                data["key"].as_str().map(String::from),
                description,
                events,
                data,
            );
        }
        for e in r.exists {
            let mut ids: Vec<u64> = e.scc.iter().map(|&i| t.txns[i as usize].ret).collect();
            ids.sort_unstable();
            found.add(
                &e.kind,
                None,
                format!(
                    "the {} subgraph has a cycle among {} transactions ({}), so {} cannot hold, though no simpler anomaly explains it",
                    e.subgraph,
                    e.scc.len(),
                    e.scc.iter().take(8).map(|&i| txn_name(t, i)).collect::<Vec<_>>().join(", "),
                    models::friendly(e.model)
                ),
                ids.clone(),
                json!({"not": models::friendly(e.model), "subgraph": e.subgraph, "scc-size": e.scc.len(), "scc": ids}),
            );
        }
        if let Some((shape, size)) = r.timeout {
            timed_out = true;
            found.add(
                "cycle-search-timeout",
                None,
                format!(
                    "searching an SCC of {size} transactions for {shape} cycles ran out of time"
                ),
                Vec::new(),
                json!({"anomaly-spec-type": shape, "scc-size": size}),
            );
        }
    }

    // Elle's result: what is prohibited makes it invalid; what is merely reportable
    // (timeouts, an empty graph) makes it unknown. Cycle-exists findings that other
    // anomalies already explain are dropped.
    let all_types: Vec<String> = found.by_type.keys().cloned().collect();
    let non_exists: Vec<&str> = all_types
        .iter()
        .filter(|k| !k.ends_with("-cycle-exists"))
        .map(|s| s.as_str())
        .collect();
    let explained = models::impossible_models(&non_exists);
    let reported: Vec<String> = all_types
        .iter()
        .filter(|k| reportable.contains(*k))
        .filter(|k| {
            !k.ends_with("-cycle-exists")
                || !explained.contains(k.trim_end_matches("-cycle-exists"))
        })
        .cloned()
        .collect();
    let bad: Vec<&String> = reported
        .iter()
        .filter(|k| prohibited.contains(*k))
        .collect();
    let valid = if !bad.is_empty() {
        Validity::Invalid
    } else if !reported.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let (not, also_not) = models::boundary(&all_types);
    let counts: BTreeMap<&String, usize> =
        found.by_type.iter().map(|(k, v)| (k, v.len())).collect();
    let anomalies: Vec<Anomaly> = reported
        .iter()
        .flat_map(|k| found.by_type.get(k).cloned().unwrap_or_default())
        .collect();
    let models_text = models.join(", ");
    let explanation = match valid {
        Validity::Valid => format!(
            "{} transactions: no anomaly {} forbids was found",
            t.len(),
            models_text
        ),
        Validity::Invalid => format!(
            "{} found, so the history is not {}; it rules out {}",
            reported.join(", "),
            models_text,
            not.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        Validity::Unknown => format!(
            "could not decide: {}{}",
            reported.join(", "),
            if timed_out {
                " (raise --time-limit to search longer)"
            } else {
                ""
            }
        ),
    };
    let not_set: BTreeSet<String> = not;
    Verdict {
        checker,
        valid,
        anomalies,
        explanation,
        stats: json!({
            "ops": t.len(),
            "txns": t.len(),
            "keys": t.keys.len(),
            "edges": g.edge_count(),
            "order_edges": format!("{order:?}").to_lowercase(),
            "cyclic_sccs": sccs.len(),
            "largest_scc": largest,
            "anomaly_types": reported,
            "cases": counts,
            "consistency_models": models,
            "not": not_set,
            "also_not": also_not,
            "inference_ms": inferred_ms,
            "graph_ms": graph_ms,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        }),
    }
}
