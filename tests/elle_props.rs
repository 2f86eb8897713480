//! Property tests of the Elle checker: histories of a strictly serializable store
//! (generated with random seeds, sizes and concurrency) are always valid, under every
//! consistency model; planting stale reads makes them invalid with a realtime cycle.

use faultline::checker::Validity;
use faultline::checker::elle::generate::{GenOptions, list_append};
use faultline::checker::elle::{self, ConsistencyModel, ElleModel, ElleOptions};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn serializable_histories_are_valid(
        seed in any::<u64>(),
        txns in 1usize..400,
        concurrency in 1usize..8,
        active_keys in 1usize..6,
        writes_per_key in 1usize..10,
    ) {
        let t = list_append(&GenOptions { txns, concurrency, active_keys, writes_per_key, stale_every: 0, seed });
        for model in ["strict-serializable", "serializable", "snapshot-isolation", "read-committed"] {
            let mut o = ElleOptions::new(ElleModel::ListAppend);
            o.consistency_models = vec![model.parse::<ConsistencyModel>().unwrap()];
            let v = elle::check_txns(&t, &o);
            prop_assert_eq!(v.valid, Validity::Valid, "{}: {}", model, v.explanation);
        }
    }

    #[test]
    fn sequential_histories_stay_valid_with_process_order(seed in any::<u64>(), txns in 1usize..200) {
        // Concurrency 1: every txn follows the previous in real time and on one process.
        let t = list_append(&GenOptions { txns, concurrency: 1, active_keys: 3, writes_per_key: 5, stale_every: 0, seed });
        let mut o = ElleOptions::new(ElleModel::ListAppend);
        o.consistency_models = vec!["strong-session-serializable".parse().unwrap()];
        let v = elle::check_txns(&t, &o);
        prop_assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }
}

#[test]
fn planted_stale_reads_are_caught_with_a_realtime_cycle() {
    // Sequential txns: a stale read (missing the key's last append, which completed before
    // the read began) is a G-single-item-realtime at least.
    let t = list_append(&GenOptions {
        txns: 2000,
        concurrency: 1,
        active_keys: 2,
        writes_per_key: 50,
        stale_every: 50,
        seed: 9,
    });
    let v = elle::check_txns(&t, &ElleOptions::new(ElleModel::ListAppend));
    assert_eq!(v.valid, Validity::Invalid, "{}", v.explanation);
    let types: Vec<&str> = v.stats["anomaly_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        types
            .iter()
            .any(|t| t.ends_with("-realtime") || t.starts_with("G-single") || *t == "internal"),
        "{types:?}"
    );
    // Every reported cycle is explained step by step.
    for a in v.anomalies.iter().filter(|a| a.kind.starts_with('G')) {
        if let Some(steps) = a.data["steps"].as_array() {
            assert!(steps.len() >= 2);
            assert!(a.description.contains("precedes"), "{}", a.description);
        }
    }
}
