//! Every checker that judges a history alone, by name: one table serves `faultline check
//! --model`, the checkers a run's workload names, and the report's descriptions. Adding a
//! checker is one entry here. (Checkers that need more than the history, the nodes' logs
//! or replica dumps, are run where those are: `split_brain`, `weak::convergence`.)

use std::borrow::Cow;

use serde_json::Value;

use crate::bank::{self, BankOptions};
use crate::elle::{self, ConsistencyModel, ElleModel, ElleOptions};
use crate::linearizable::{self, Model};
use crate::{BadOp, Budget, Verdict};
use faultline_history::History;
use faultline_history::compact::OpSource;

/// What a checker is given besides the history. Each checker reads the fields it knows.
#[derive(Clone, Default)]
pub struct Settings {
    pub budget: Budget,
    /// Linearizability: decide every key instead of stopping at the first invalid one.
    pub all_keys: bool,
    /// Linearizability: worker threads (0: one per core).
    pub threads: usize,
    /// The model's initial state, when not its default (bank: the total or the balances).
    pub initial: Option<Value>,
    /// bank: balances may go negative.
    pub negative_balances: bool,
    pub elle: ElleFlags,
    /// Linearizability: called with (keys done, keys in all).
    pub progress: Option<linearizable::Progress>,
    /// liveness: T, the longest an attempted op may wait for a success on its key (None:
    /// `liveness::DEFAULT_WITHIN_MS`).
    pub liveness_within_ms: Option<u64>,
}

/// The options elle-cli users pass, for the Elle models.
#[derive(Clone, Default)]
pub struct ElleFlags {
    /// Empty: Elle's default, strict-serializable.
    pub consistency_models: Vec<ConsistencyModel>,
    pub linearizable_keys: bool,
    pub sequential_keys: bool,
    pub wfr_keys: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown checker {0:?} (expected one of {names})", names = names().join(", "))]
    Unknown(String),
    /// An op the checker cannot interpret: bad input, naming the event.
    #[error(transparent)]
    BadOp(#[from] BadOp),
    #[error("{0}")]
    BadOption(String),
}

/// How an entry runs.
#[derive(Clone, Copy)]
enum Run {
    /// The WGL search, per key, over any op source.
    Linearizable(Model),
    Elle(ElleModel),
    Plain(fn(&History) -> Verdict),
    Fallible(fn(&History) -> Result<Verdict, BadOp>),
    Bank,
    Liveness,
}

/// One checker: its name, what it decides, how it runs.
#[derive(Clone, Copy)]
pub struct Entry {
    pub name: &'static str,
    pub about: &'static str,
    run: Run,
}

const fn entry(name: &'static str, about: &'static str, run: Run) -> Entry {
    Entry { name, about, run }
}

/// The table, in the order `--help` lists it.
const ENTRIES: &[Entry] = &[
    entry(
        "register",
        "linearizable read/write register per key (WGL search)",
        Run::Linearizable(Model::Register),
    ),
    entry(
        "cas-register",
        "linearizable read/write/cas register per key (WGL search)",
        Run::Linearizable(Model::CasRegister),
    ),
    entry(
        "kv",
        "cas-register on every key (an alias)",
        Run::Linearizable(Model::CasRegister),
    ),
    entry(
        "append-kv",
        "linearizable get/put/append strings per key (Porcupine's kv)",
        Run::Linearizable(Model::AppendKv),
    ),
    entry(
        "multi-register",
        "linearizable txns of reads and writes over several registers",
        Run::Linearizable(Model::MultiRegister),
    ),
    entry(
        "mutex",
        "linearizable acquire/release lock",
        Run::Linearizable(Model::Mutex),
    ),
    entry(
        "set",
        "linearizable add/read set",
        Run::Linearizable(Model::Set),
    ),
    entry(
        "queue",
        "linearizable FIFO enqueue/dequeue (Knossos's queue)",
        Run::Linearizable(Model::Queue),
    ),
    entry(
        "list-append",
        "Elle: dependency cycles of list-append transactions",
        Run::Elle(ElleModel::ListAppend),
    ),
    entry(
        "rw-register",
        "Elle: dependency cycles of read/write-register transactions",
        Run::Elle(ElleModel::RwRegister),
    ),
    entry(
        "set-elements",
        "a set's acknowledged adds all in the final read, none duplicated or unexpected",
        Run::Plain(crate::set::check),
    ),
    entry(
        "lost-writes",
        "every acknowledged write that must be visible is in the final reads",
        Run::Plain(crate::split_brain::check_lost_writes),
    ),
    entry(
        "leader-per-generation",
        "status probes: at most one leader per generation, generations never go back",
        Run::Plain(crate::split_brain::check_probes),
    ),
    entry(
        "lease-overlap",
        "status probes: no two nodes hold a leader lease at once in harness time, allowing measured clock slack",
        Run::Plain(crate::split_brain::lease_overlap::check),
    ),
    entry(
        "read-after-write",
        "each key a multi-writer regular register",
        Run::Plain(crate::weak::read_after_write::check),
    ),
    entry(
        "monotonic-reads",
        "per client session, reads never go back in real time",
        Run::Plain(crate::weak::monotonic_reads::check),
    ),
    entry(
        "sibling-lost-writes",
        "each acknowledged write is in the final sibling set or causally superseded",
        Run::Plain(crate::weak::siblings::check),
    ),
    entry(
        "staleness",
        "k-staleness and time-visibility of reads (a figure, not a verdict)",
        Run::Plain(crate::weak::staleness::check),
    ),
    entry(
        "counter",
        "Jepsen's bounded counter: each read within the possible adds",
        Run::Fallible(crate::counter::check),
    ),
    entry(
        "unique-ids",
        "no id generated twice",
        Run::Fallible(crate::unique_ids::check),
    ),
    entry(
        "long-fork",
        "Jepsen's long fork: no two reads each missing a write the other saw",
        Run::Fallible(crate::long_fork::check),
    ),
    entry(
        "liveness",
        "while only a minority is down (or nothing), every op is followed within T by a success on its key",
        Run::Liveness,
    ),
    entry(
        "bank",
        "Jepsen's bank: every read totals the same, no negative balance",
        Run::Bank,
    ),
];

/// Aliases accepted beside the names.
const ALIASES: &[(&str, &str)] = &[("fifo-queue", "queue")];

/// Every checker's name.
pub fn names() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.name).collect()
}

pub fn entries() -> &'static [Entry] {
    ENTRIES
}

/// The entry called `name` (or an alias of it).
pub fn find(name: &str) -> Option<&'static Entry> {
    let name = ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map_or(name, |(_, n)| n);
    ENTRIES.iter().find(|e| e.name == name)
}

/// What the checker behind a verdict's `checker` decides (`linearizable/cas-register`,
/// `elle/list-append`, `lost-writes`, ...), for the report.
pub fn about(verdict_checker: &str) -> Option<&'static str> {
    let name = verdict_checker
        .strip_prefix("linearizable/")
        .or_else(|| verdict_checker.strip_prefix("elle/"))
        .or_else(|| verdict_checker.strip_prefix("split-brain/"))
        .unwrap_or(verdict_checker);
    let name = if name == "set" && !verdict_checker.starts_with("linearizable/") {
        "set-elements"
    } else {
        name
    };
    find(name).map(|e| e.about)
}

impl Entry {
    /// Whether the entry is the WGL search (which reads ops one key at a time, so a compact
    /// history serves it without being made whole).
    pub fn is_linearizable(&self) -> bool {
        matches!(self.run, Run::Linearizable(_))
    }

    /// The entry's verdict on `source`.
    pub fn check<S: OpSource>(&self, source: &S, s: &Settings) -> Result<Verdict, RegistryError> {
        let whole = || -> Cow<'_, History> { source.whole() };
        Ok(match self.run {
            Run::Linearizable(model) => {
                let opts = linearizable::Options {
                    budget: s.budget.clone(),
                    all_keys: s.all_keys,
                    threads: s.threads,
                    initial: s.initial.clone(),
                    progress: s.progress.clone(),
                    ..linearizable::Options::new(model)
                };
                linearizable::check_with(source, &opts)
            }
            Run::Elle(model) => {
                let txns = elle::Txns::from_history(&whole())
                    .map_err(|e| RegistryError::BadOption(e.to_string()))?;
                let mut o = ElleOptions::new(model);
                o.budget = s.budget.clone();
                if !s.elle.consistency_models.is_empty() {
                    o.consistency_models = s.elle.consistency_models.clone();
                }
                o.linearizable_keys = s.elle.linearizable_keys;
                o.sequential_keys = s.elle.sequential_keys;
                o.wfr_keys = s.elle.wfr_keys;
                elle::check_txns(&txns, &o)
            }
            Run::Plain(f) => f(&whole()),
            Run::Fallible(f) => f(&whole())?,
            Run::Bank => {
                let mut o = match &s.initial {
                    None => BankOptions::default(),
                    Some(v) => BankOptions::from_initial(v)
                        .map_err(|e| RegistryError::BadOption(format!("--initial: {e}")))?,
                };
                o.negative_balances = s.negative_balances;
                bank::check(&whole(), &o)?
            }
            Run::Liveness => crate::liveness::check_within(
                &whole(),
                s.liveness_within_ms
                    .unwrap_or(crate::liveness::DEFAULT_WITHIN_MS),
            ),
        })
    }
}

/// The verdict of the checker called `name` on `source`.
pub fn check<S: OpSource>(source: &S, name: &str, s: &Settings) -> Result<Verdict, RegistryError> {
    find(name)
        .ok_or_else(|| RegistryError::Unknown(name.to_string()))?
        .check(source, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validity;
    use faultline_history::EventType::{Invoke, Ok as Done};
    use faultline_history::testkit::{history_of, push_client};
    use serde_json::json;

    #[test]
    fn names_are_unique_and_every_linearizability_model_is_listed() {
        let mut n = names();
        n.sort_unstable();
        n.dedup();
        assert_eq!(n.len(), ENTRIES.len());
        for m in Model::NAMES {
            assert!(find(m).is_some_and(Entry::is_linearizable), "{m}");
        }
        assert_eq!(find("fifo-queue").map(|e| e.name), Some("queue"));
        assert!(find("nope").is_none());
    }

    #[test]
    fn a_name_runs_its_checker_and_an_unknown_one_is_an_error() {
        let mut events = Vec::new();
        push_client(&mut events, 0, Invoke, "add", None, json!(1));
        push_client(&mut events, 0, Done, "add", None, json!(1));
        push_client(&mut events, 1, Invoke, "read", None, json!(null));
        push_client(&mut events, 1, Done, "read", None, json!(5));
        let h = history_of(events);
        let s = Settings::default();
        // A counter read of 5 after one add of 1 is out of bounds.
        let v = check(&h, "counter", &s).unwrap();
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies[0].kind, "out-of-bounds");
        // A unique-ids history it is not: the checker names the op it cannot read.
        assert!(matches!(
            check(&h, "unique-ids", &s),
            Err(RegistryError::BadOp(_))
        ));
        let e = check(&h, "nope", &s).unwrap_err();
        assert!(
            e.to_string()
                .contains("expected one of register, cas-register"),
            "{e}"
        );
    }

    #[test]
    fn verdict_checker_names_find_their_description() {
        assert!(
            about("linearizable/cas-register")
                .unwrap()
                .contains("cas register")
        );
        assert!(about("elle/list-append").unwrap().starts_with("Elle"));
        assert!(about("set").unwrap().starts_with("a set's"));
        assert!(about("split-brain/lost-writes").is_some());
        assert_eq!(about("split-brain/probes"), None);
    }
}
