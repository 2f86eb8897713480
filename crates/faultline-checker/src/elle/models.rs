//! Which anomalies imply which, which consistency models imply which, and which anomalies
//! each model forbids: the tables Elle reasons with, so a verdict can say which models a
//! history rules out ("not": the weakest; "also-not": the stronger ones). Model names are
//! canonical (Adya's PL-* where one exists); `friendly` gives the name people use.

use std::collections::BTreeSet;

/// anomaly -> anomalies it implies.
const IMPLIED: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "GSIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("GSIa", &["GSI"]),
    ("GSIb", &["GSI"]),
    ("incompatible-order", &["G1a"]),
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

/// model -> models it implies (a history satisfying the first satisfies the others).
const MODELS: &[(&str, &[&str])] = &[
    ("causal-cerone", &["read-atomic"]),
    ("PL-2+", &["PL-CS", "PL-2L"]),
    ("PL-CS", &["read-committed", "PL-2"]),
    ("PL-FCV", &["PL-2+"]),
    ("PL-2", &["PL-1"]),
    ("PL-3", &["PL-2.99", "PL-3U"]),
    ("PL-3U", &["PL-FCV"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("PL-2L", &["PL-2"]),
    ("PL-MSR", &["PL-2"]),
    (
        "parallel-snapshot-isolation",
        &["causal-cerone", "update-atomic"],
    ),
    ("prefix", &["causal-cerone"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("read-committed", &["PL-1"]),
    ("PL-2.99", &["PL-CS", "monotonic-atomic-view"]),
    ("update-atomic", &["PL-2"]),
    ("serializable", &["PL-2.99", "PL-SI", "view-serializable"]),
    ("session-serializable", &["1SR"]),
    (
        "PL-SI",
        &[
            "PL-FCV",
            "monotonic-atomic-view",
            "PL-MSR",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "PL-SS",
        &[
            "PL-3",
            "serializable",
            "linearizable",
            "PL-SI",
            "strong-snapshot-isolation",
            "strong-session-serializable",
            "session-serializable",
        ],
    ),
    ("strong-session-PL-1", &["PL-1"]),
    ("strong-session-PL-2", &["PL-2", "strong-session-PL-1"]),
    ("strong-PL-1", &["strong-session-PL-1"]),
    ("strong-PL-2", &["strong-session-PL-2", "strong-PL-1"]),
    (
        "strong-session-serializable",
        &["serializable", "PL-3", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["PL-SI", "strong-session-PL-2"],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-PL-2"],
    ),
    ("linearizable", &["sequential"]),
    ("sequential", &["causal"]),
    ("causal", &["writes-follow-reads", "PRAM"]),
    (
        "PRAM",
        &["monotonic-reads", "monotonic-writes", "read-your-writes"],
    ),
];

/// model -> anomalies it forbids directly (weaker models' prohibitions are inherited).
const PROSCRIBED: &[(&str, &[&str])] = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("PL-CS", &["G1", "G-cursor", "lost-update"]),
    ("PL-2L", &["G1", "G-monotonic"]),
    ("PL-MSR", &["G1", "G-MSR"]),
    ("PL-2+", &["G1", "G-single"]),
    ("PL-FCV", &["G1", "G-SIb"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    (
        "PL-3",
        &["G1", "G2", "predicate-read-miss", "PL-3-cycle-exists"],
    ),
    (
        "serializable",
        &["G1", "G2", "internal", "PL-3-cycle-exists"],
    ),
    ("PL-2", &["G1", "PL-2-cycle-exists"]),
    (
        "PL-1",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "PL-1-cycle-exists",
        ],
    ),
    ("prefix", &["internal", "G1a"]),
    (
        "PL-SI",
        &[
            "internal",
            "G1",
            "G-SI",
            "G-nonadjacent",
            "PL-SI-cycle-exists",
        ],
    ),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    (
        "PL-2.99",
        &["G1", "G2-item", "PL-2.99-cycle-exists", "lost-update"],
    ),
    ("update-atomic", &["lost-update"]),
    (
        "PL-SS",
        &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"],
    ),
    (
        "strong-session-PL-1",
        &["strong-session-PL-1-cycle-exists", "G0-process"],
    ),
    (
        "strong-session-PL-2",
        &["strong-session-PL-2-cycle-exists", "G1c-process"],
    ),
    ("strong-PL-1", &["strong-PL-1-cycle-exists", "G0-realtime"]),
    ("strong-PL-2", &["strong-PL-2-cycle-exists", "G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &[
            "internal",
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &[
            "internal",
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-session-serializable",
        &[
            "G1-process",
            "G2-process",
            "strong-session-serializable-cycle-exists",
        ],
    ),
    ("PL-3U", &["G1", "G-update"]),
];

/// (friendly name, canonical name).
const CANONICAL: &[(&str, &str)] = &[
    ("consistent-view", "PL-2+"),
    ("conflict-serializable", "PL-3"),
    ("cursor-stability", "PL-CS"),
    ("forward-consistent-view", "PL-FCV"),
    ("monotonic-snapshot-read", "PL-MSR"),
    ("monotonic-view", "PL-2L"),
    ("read-committed", "PL-2"),
    ("read-uncommitted", "PL-1"),
    ("repeatable-read", "PL-2.99"),
    ("serializable", "PL-3"),
    ("snapshot-isolation", "PL-SI"),
    ("strict-serializable", "PL-SS"),
    ("strong-serializable", "PL-SS"),
    ("update-serializable", "PL-3U"),
    ("strong-session-read-uncommitted", "strong-session-PL-1"),
    ("strong-session-read-committed", "strong-session-PL-2"),
    ("strong-read-uncommitted", "strong-PL-1"),
    ("strong-read-committed", "strong-PL-2"),
];

pub fn canonical(model: &str) -> &str {
    CANONICAL
        .iter()
        .find(|(f, _)| *f == model)
        .map_or(model, |(_, c)| c)
}

/// The name people use for a canonical model (Elle's choice where there are several).
pub fn friendly(model: &str) -> &str {
    match model {
        "PL-3" => "serializable",
        "PL-SS" => "strong-serializable",
        m => CANONICAL
            .iter()
            .find(|(_, c)| *c == m)
            .map_or(m, |(f, _)| f),
    }
}

/// Every model name known, canonical.
pub fn is_known_model(model: &str) -> bool {
    let m = canonical(model);
    MODELS.iter().any(|(a, bs)| *a == m || bs.contains(&m))
        || PROSCRIBED.iter().any(|(a, _)| *a == m)
}

fn closure(
    table: &[(&str, &[&str])],
    start: impl IntoIterator<Item = String>,
    forward: bool,
) -> BTreeSet<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = start.into_iter().collect();
    while let Some(x) = todo.pop() {
        if !seen.insert(x.clone()) {
            continue;
        }
        for (a, bs) in table {
            if forward && canonical(a) == x {
                todo.extend(bs.iter().map(|b| canonical(b).to_string()));
            } else if !forward && bs.iter().any(|b| canonical(b) == x) {
                todo.push(canonical(a).to_string());
            }
        }
    }
    seen
}

pub fn all_implied_anomalies<S: AsRef<str>>(anomalies: &[S]) -> BTreeSet<String> {
    closure(
        IMPLIED,
        anomalies.iter().map(|a| a.as_ref().to_string()),
        true,
    )
}

pub fn all_anomalies_implying<S: AsRef<str>>(anomalies: &[S]) -> BTreeSet<String> {
    closure(
        IMPLIED,
        anomalies.iter().map(|a| a.as_ref().to_string()),
        false,
    )
}

/// Models that cannot hold if these cannot: the given ones and every model implying them.
pub fn all_impossible_models<S: AsRef<str>>(models: &[S]) -> BTreeSet<String> {
    closure(
        MODELS,
        models.iter().map(|m| canonical(m.as_ref()).to_string()),
        false,
    )
}

/// Anomalies that must not appear if all these models hold.
pub fn anomalies_prohibited_by<S: AsRef<str>>(models: &[S]) -> BTreeSet<String> {
    let implied = closure(
        MODELS,
        models.iter().map(|m| canonical(m.as_ref()).to_string()),
        true,
    );
    let direct: Vec<String> = PROSCRIBED
        .iter()
        .filter(|(m, _)| implied.contains(canonical(m)))
        .flat_map(|(_, an)| an.iter().map(|a| a.to_string()))
        .collect();
    all_anomalies_implying(&direct)
}

/// Models these anomalies rule out.
pub fn impossible_models<S: AsRef<str>>(anomalies: &[S]) -> BTreeSet<String> {
    let implied = all_implied_anomalies(anomalies);
    let direct: Vec<String> = PROSCRIBED
        .iter()
        .filter(|(_, an)| an.iter().any(|a| implied.contains(*a)))
        .map(|(m, _)| canonical(m).to_string())
        .collect();
    all_impossible_models(&direct)
}

/// (not, also-not) in friendly names: the weakest models ruled out, and the rest.
pub fn boundary<S: AsRef<str>>(anomalies: &[S]) -> (BTreeSet<String>, BTreeSet<String>) {
    let impossible = impossible_models(anomalies);
    let mut weakest = impossible.clone();
    for m in &impossible {
        let others: BTreeSet<String> = weakest.iter().filter(|x| *x != m).cloned().collect();
        let below = closure(MODELS, [m.clone()], true);
        if below.iter().any(|b| b != m && others.contains(b)) {
            weakest.remove(m);
        }
    }
    let not: BTreeSet<String> = weakest.iter().map(|m| friendly(m).to_string()).collect();
    let also: BTreeSet<String> = impossible
        .iter()
        .filter(|m| !weakest.contains(*m))
        .map(|m| friendly(m).to_string())
        .collect();
    (not, also)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &BTreeSet<String>) -> Vec<&str> {
        s.iter().map(|x| x.as_str()).collect()
    }

    #[test]
    fn g_single_item_rules_out_consistent_view_and_repeatable_read() {
        let (not, also) = boundary(&["G-single-item"]);
        assert_eq!(names(&not), ["consistent-view", "repeatable-read"]);
        assert_eq!(
            names(&also),
            [
                "forward-consistent-view",
                "serializable",
                "snapshot-isolation",
                "strong-serializable",
                "strong-session-serializable",
                "strong-session-snapshot-isolation",
                "strong-snapshot-isolation",
                "update-serializable"
            ]
        );
    }

    #[test]
    fn strict_serializable_prohibits_realtime_cycles_but_serializable_does_not() {
        let ss = anomalies_prohibited_by(&["strict-serializable"]);
        assert!(
            ss.contains("G2-item-realtime") && ss.contains("G0") && ss.contains("G1c-realtime")
        );
        let s = anomalies_prohibited_by(&["serializable"]);
        assert!(s.contains("G2-item") && s.contains("G-single-item"));
        assert!(!s.contains("G2-item-realtime") && !s.contains("G-single-item-realtime"));
    }

    #[test]
    fn lost_update_rules_out_cursor_stability_and_update_atomic() {
        let (not, _) = boundary(&["G2-item", "lost-update"]);
        assert_eq!(names(&not), ["cursor-stability", "update-atomic"]);
    }
}
