//! The checkers on histories recorded from real runs of the bundled Raft with planted bugs
//! (`histories/`): `vote-twice-per-term` under leader partitions must show the terms with
//! two leaders and the index where committed logs diverge; `lease-no-drift-margin` under
//! partition-leader-drift must show the one stale lease read, and nothing else.

use std::collections::BTreeMap;
use std::path::Path;

use faultline::checker::Validity;
use faultline::checker::elle::{self, ElleModel, ElleOptions};
use faultline::checker::linearizable::{self, Model};
use faultline::checker::split_brain::{self, LogEntry};
use faultline::history::jsonl;

const RUN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/histories/raft-vote-twice-per-term"
);

#[test]
fn recorded_vote_twice_per_term_run_is_split_brain() {
    let dir = Path::new(RUN);
    let h = jsonl::read_path(&dir.join("history.jsonl")).expect("recorded history");

    let probes = split_brain::check_probes(&h);
    assert_eq!(probes.valid, Validity::Invalid, "{}", probes.explanation);
    let terms: Vec<u64> = probes
        .anomalies
        .iter()
        .filter(|a| a.kind == "two-leaders-one-term")
        .map(|a| a.data["term"].as_u64().unwrap())
        .collect();
    assert_eq!(terms, [13, 14, 15]);
    assert!(
        probes.anomalies[1]
            .description
            .starts_with("term 14 had 2 leaders: n2")
    );

    let mut logs: BTreeMap<String, Vec<LogEntry>> = BTreeMap::new();
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        let text = std::fs::read_to_string(dir.join("nodes").join(n).join("log.json")).unwrap();
        logs.insert(n.to_string(), serde_json::from_str(&text).unwrap());
    }
    let v = split_brain::check_logs(&logs);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(v.anomalies[0].kind, "log-divergence");
    assert_eq!(v.anomalies[0].data["index"], 304);
    assert!(
        v.anomalies[0]
            .description
            .contains("n2 committed term 14 entry"),
        "{}",
        v.anomalies[0].description
    );

    let e = elle::check(&h, &ElleOptions::new(ElleModel::ListAppend));
    assert_eq!(e.valid, Validity::Invalid, "{}", e.explanation);
}

#[test]
fn recorded_lease_no_drift_margin_run_has_one_stale_read() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/histories/raft-lease-no-drift-margin"
    ));
    let h = jsonl::read_path(&dir.join("history.jsonl")).expect("recorded history");
    let mut o = linearizable::Options::new(Model::CasRegister);
    o.all_keys = true;
    let v = linearizable::check_with(&h, &o);
    assert_eq!(v.valid, Validity::Invalid, "{}", v.explanation);
    assert_eq!(v.anomalies.len(), 1, "{:#?}", v.anomalies);
    assert!(
        v.explanation
            .contains("key 6: read → 0 (process 5, events 2399–2400) cannot be linearized"),
        "{}",
        v.explanation
    );
    // The deposed leader never claimed a term another node led.
    let probes = split_brain::check_probes(&h);
    assert_eq!(probes.valid, Validity::Valid, "{}", probes.explanation);
}
