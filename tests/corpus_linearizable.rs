//! Every corpus history whose model is a linearizability model gets the verdict its
//! source asserts (EXPECTED.tsv): 102 Jepsen etcd logs, 6 Porcupine kv files, 120 Knossos
//! cas-register files, the multi-register and the mutex history.

mod common;

use common::corpora;
use std::time::Duration;

use faultline::checker::linearizable::{Model, Options, check_with};
use faultline::checker::{Budget, Validity};
use faultline::history::{Format, read_file};

#[test]
fn verdicts_match_expected_tsv() {
    let root = corpora();
    let listing = std::fs::read_to_string(root.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    let mut wrong = Vec::new();
    for line in listing
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (path, format, model, expected) = (cols[0], cols[1], cols[2], cols[3]);
        let Ok(model) = model.parse::<Model>() else {
            continue; // transactional models belong to the Elle checker
        };
        let format: Format = format.parse().unwrap();
        let h = read_file(&root.join(path), format).unwrap_or_else(|e| panic!("{e}"));
        let opts = Options {
            budget: Budget {
                time_limit: Some(Duration::from_secs(60)),
                memory_limit_bytes: Some(2 << 30),
            },
            // The file's header: "A multi-register with x=0 and y=0".
            initial: (model == Model::MultiRegister).then(|| serde_json::json!({"x": 0, "y": 0})),
            ..Options::new(model)
        };
        let v = check_with(&h, &opts);
        let want = if expected == "valid" {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        if v.valid != want {
            wrong.push(format!(
                "{path}: expected {expected}, got {:?}: {}",
                v.valid, v.explanation
            ));
        }
        if v.valid == Validity::Invalid {
            assert!(!v.anomalies.is_empty(), "{path}: invalid without a witness");
            assert!(v.anomalies[0].data["unplaceable"].is_array(), "{path}");
        }
        *checked.entry(cols[2].to_string()).or_default() += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let counts: Vec<(String, usize)> = checked.into_iter().collect();
    assert_eq!(
        counts,
        vec![
            ("append-kv".to_string(), 6),
            ("cas-register".to_string(), 222),
            ("multi-register".to_string(), 1),
            ("mutex".to_string(), 1),
        ]
    );
}
