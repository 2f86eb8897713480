//! `bank`: Jepsen's bank checker (`jepsen.tests.bank`). Clients `transfer`
//! `{from, to, amount}` between accounts and `read` every balance as a map account ->
//! balance. Transfers preserve the total, so every `ok` read must show it: the total
//! given in the options, else the first `ok` read's sum. Each read is judged as Jepsen
//! does, by the first of: `unexpected-key` (an account outside the given accounts, else
//! outside the first read's), `nil-balance`, `wrong-total`, and, unless negative balances
//! are allowed, `negative-value`. Transfers are checked for shape only. Keys are
//! independent banks.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::bad_op::BadOp;
use crate::counter::num;
use crate::set::{key_prefix, preview};
use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome};

pub const NAME: &str = "bank";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BankOptions {
    /// The total every read must show; `None`: the first `ok` read's sum.
    pub total: Option<i64>,
    /// The accounts that exist; `None`: the first `ok` read's accounts.
    pub accounts: Option<BTreeSet<String>>,
    /// Balances may go negative (Jepsen's `:negative-balances?`).
    pub negative_balances: bool,
}

impl BankOptions {
    /// Options from an initial state given as JSON: a total (`100`), or the opening
    /// balances (`{"0": 50, "1": 50}`), which give both the total and the accounts.
    pub fn from_initial(v: &Value) -> Result<BankOptions, String> {
        match v {
            Value::Number(n) => Ok(BankOptions {
                total: Some(
                    n.as_i64()
                        .ok_or_else(|| format!("a bank's total is an integer, not {n}"))?,
                ),
                ..BankOptions::default()
            }),
            Value::Object(m) => {
                let mut total = 0i64;
                for (k, b) in m {
                    let b = b.as_i64().ok_or_else(|| {
                        format!("account {k}'s opening balance is an integer, not {b}")
                    })?;
                    total = total
                        .checked_add(b)
                        .ok_or("the opening balances overflow")?;
                }
                Ok(BankOptions {
                    total: Some(total),
                    accounts: Some(m.keys().cloned().collect()),
                    negative_balances: false,
                })
            }
            other => Err(format!(
                "a bank starts from a total or a map of opening balances, not {other}"
            )),
        }
    }
}

/// A read's balances: `None` for a nil balance.
fn balances(op: &Operation) -> Result<Vec<(&str, Option<i64>)>, BadOp> {
    let Value::Object(m) = &op.value else {
        return Err(BadOp::new(
            op,
            format!(
                "a bank read returns a map of account to balance, found {}",
                op.value
            ),
        ));
    };
    m.iter()
        .map(|(k, b)| match b {
            Value::Null => Ok((k.as_str(), None)),
            b => b.as_i64().map(|b| (k.as_str(), Some(b))).ok_or_else(|| {
                BadOp::new(
                    op,
                    format!("account {k}'s balance is an integer, found {b}"),
                )
            }),
        })
        .collect()
}

fn check_transfer(op: &Operation) -> Result<(), BadOp> {
    let shape = || {
        BadOp::new(
            op,
            format!(
                "a transfer's value is {{from, to, amount}}, found {}",
                op.invoke_value
            ),
        )
    };
    let m: &Map<String, Value> = op.invoke_value.as_object().ok_or_else(shape)?;
    let present = |f: &str| m.get(f).is_some_and(|v| !v.is_null());
    if !(present("from") && present("to") && m.get("amount").is_some_and(Value::is_i64)) {
        return Err(shape());
    }
    Ok(())
}

pub fn check(h: &History, opts: &BankOptions) -> Result<Verdict, BadOp> {
    let start = std::time::Instant::now();
    let groups = h.by_key();
    let keys = groups.len();
    let mut anomalies = Vec::new();
    let (mut reads, mut transfers, mut transfers_ok) = (0usize, 0usize, 0usize);
    let mut totals_seen: Option<(i128, i128)> = None;
    let mut expected_totals = Vec::new();
    for (key, ops) in groups {
        let mut ok_reads = Vec::new();
        for op in ops {
            match op.f.as_str() {
                "transfer" => {
                    check_transfer(op)?;
                    transfers += 1;
                    transfers_ok += (op.outcome == Outcome::Ok) as usize;
                }
                "read" if op.outcome == Outcome::Ok => ok_reads.push((op, balances(op)?)),
                "read" => {}
                _ => return Err(BadOp::unknown_f(op, NAME, &["transfer", "read"])),
            }
        }
        let Some((_, first)) = ok_reads.first() else {
            continue;
        };
        let accounts: BTreeSet<String> = opts
            .accounts
            .clone()
            .unwrap_or_else(|| first.iter().map(|(k, _)| k.to_string()).collect());
        let total: i128 = match opts.total {
            Some(t) => t as i128,
            None => first.iter().map(|(_, b)| b.unwrap_or(0) as i128).sum(),
        };
        expected_totals.push(total);
        for (op, bal) in &ok_reads {
            reads += 1;
            let ret = op.ret.expect("ok ops have completed");
            let at = format!("{}the read at events {}-{ret}", key_prefix(&key), op.call);
            let unexpected: Vec<&str> = bal
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| !accounts.contains(*k))
                .collect();
            let nils: Vec<&str> = bal
                .iter()
                .filter(|(_, b)| b.is_none())
                .map(|(k, _)| *k)
                .collect();
            let sum: i128 = bal.iter().map(|(_, b)| b.unwrap_or(0) as i128).sum();
            let negative: Vec<(&str, i64)> = bal
                .iter()
                .filter_map(|(k, b)| b.filter(|b| *b < 0).map(|b| (*k, b)))
                .collect();
            let texts = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
            let (kind, description, data) = if !unexpected.is_empty() {
                (
                    "unexpected-key",
                    format!(
                        "{at} shows account(s) {} that {}",
                        preview(&texts(&unexpected)),
                        if opts.accounts.is_some() {
                            "are not among the given accounts"
                        } else {
                            "the first read did not show"
                        }
                    ),
                    json!({"unexpected": unexpected}),
                )
            } else if !nils.is_empty() {
                (
                    "nil-balance",
                    format!(
                        "{at} shows no balance for account(s) {}",
                        preview(&texts(&nils))
                    ),
                    json!({"nils": nils}),
                )
            } else if sum != total {
                totals_seen = Some(match totals_seen {
                    None => (sum, sum),
                    Some((lo, hi)) => (lo.min(sum), hi.max(sum)),
                });
                (
                    "wrong-total",
                    format!("{at} totals {sum}, not {total}"),
                    json!({"total": num(sum), "expected": num(total)}),
                )
            } else if !opts.negative_balances && !negative.is_empty() {
                let shown: Vec<String> =
                    negative.iter().map(|(k, b)| format!("{k}: {b}")).collect();
                (
                    "negative-value",
                    format!("{at} shows negative balance(s) {}", preview(&shown)),
                    json!({"negative": negative.iter().map(|(_, b)| *b).collect::<Vec<_>>(),
                           "accounts": negative.iter().map(|(k, _)| *k).collect::<Vec<_>>()}),
                )
            } else {
                continue;
            };
            let mut data = data;
            data["read"] = json!(op.call);
            data["value"] = op.value.clone();
            anomalies.push(Anomaly {
                kind: kind.into(),
                key: key.clone(),
                description,
                events: vec![op.call, ret],
                data,
            });
        }
    }
    let explanation = if anomalies.is_empty() {
        format!(
            "{reads} bank reads each showed the expected total with no account missing or overdrawn"
        )
    } else {
        format!(
            "{} of {reads} bank reads are wrong. {}",
            anomalies.len(),
            anomalies[0].description
        )
    };
    let mut by_kind = Map::new();
    for a in &anomalies {
        let n = by_kind.get(&a.kind).and_then(Value::as_u64).unwrap_or(0);
        by_kind.insert(a.kind.clone(), json!(n + 1));
    }
    Ok(Verdict {
        checker: NAME.into(),
        valid: Validity::from_anomalies(&anomalies),
        explanation,
        stats: json!({
            "ops": h.operations.len(),
            "keys": keys,
            "read_count": reads,
            "transfers": transfers,
            "transfers_ok": transfers_ok,
            "error_count": anomalies.len(),
            "errors": by_kind,
            "expected_total": expected_totals.first().map(|t| num(*t)),
            "lowest_wrong_total": totals_seen.map(|t| num(t.0)),
            "highest_wrong_total": totals_seen.map(|t| num(t.1)),
            "elapsed_ms": start.elapsed().as_secs_f64() * 1e3,
        }),
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::Event;
    use faultline_history::EventType::{self, *};
    use faultline_history::testkit::{client_history, push_client};
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A client's op in flight: (process, f, value, applied: `None` until decided).
    type InFlight = (u64, &'static str, Value, Option<bool>);

    fn snapshot(b: &[i64]) -> Value {
        Value::Object(
            b.iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), json!(v)))
                .collect(),
        )
    }

    /// `procs` clients transferring between `accounts` accounts (10 each to start) of a
    /// serializable bank and reading every balance; a transfer that would overdraw fails,
    /// some end info (applied or not).
    fn simulate(seed: u64, procs: u64, accounts: usize, ops: usize) -> Vec<Event> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events = Vec::new();
        let mut bal = vec![10i64; accounts];
        let mut inflight: Vec<Option<InFlight>> = vec![None; procs as usize];
        let mut pid: Vec<u64> = (0..procs).collect();
        let (mut next_pid, mut started) = (procs, 0);
        while started < ops || inflight.iter().any(Option::is_some) {
            let slot = rng.random_range(0..procs as usize);
            match inflight[slot].take() {
                None if started < ops => {
                    started += 1;
                    let (f, v) = if rng.random_bool(0.5) {
                        let from = rng.random_range(0..accounts);
                        let to = (from + rng.random_range(1..accounts)) % accounts;
                        (
                            "transfer",
                            json!({"from": from, "to": to, "amount": rng.random_range(1..=6)}),
                        )
                    } else {
                        ("read", Value::Null)
                    };
                    push_client(&mut events, pid[slot], Invoke, f, None, v.clone());
                    inflight[slot] = Some((pid[slot], f, v, None));
                }
                None => {}
                Some((p, f, v, None)) => {
                    let (v, applied) = if f == "read" {
                        (snapshot(&bal), true)
                    } else {
                        let (from, to) = (
                            v["from"].as_u64().unwrap() as usize,
                            v["to"].as_u64().unwrap() as usize,
                        );
                        let amount = v["amount"].as_i64().unwrap();
                        let ok = bal[from] >= amount && rng.random_bool(0.9);
                        if ok {
                            bal[from] -= amount;
                            bal[to] += amount;
                        }
                        (v, ok)
                    };
                    inflight[slot] = Some((p, f, v, Some(applied)));
                }
                Some((p, f, v, Some(applied))) => {
                    let kind: EventType = if f == "transfer" && rng.random_bool(0.1) {
                        Info
                    } else if applied {
                        Ok
                    } else {
                        Fail
                    };
                    push_client(&mut events, p, kind, f, None, v);
                    if kind == Info {
                        pid[slot] = next_pid;
                        next_pid += 1;
                    }
                }
            }
        }
        events
    }

    use faultline_history::testkit::history_of as history;

    fn read(events: &mut Vec<Event>, v: Value) {
        push_client(events, 9999, Invoke, "read", None, Value::Null);
        push_client(events, 9999, Ok, "read", None, v);
    }

    #[test]
    fn each_read_gets_jepsens_first_matching_error() {
        let h = client_history(
            None,
            &[
                (0, Invoke, "read", Value::Null),
                (0, Ok, "read", json!({"a": 10, "b": 10})),
                (
                    1,
                    Invoke,
                    "transfer",
                    json!({"from": "a", "to": "b", "amount": 15}),
                ),
                (
                    1,
                    Ok,
                    "transfer",
                    json!({"from": "a", "to": "b", "amount": 15}),
                ),
                (0, Invoke, "read", Value::Null),
                (0, Ok, "read", json!({"a": -5, "b": 25})),
                (0, Invoke, "read", Value::Null),
                (0, Ok, "read", json!({"a": -5, "b": 24})),
                (0, Invoke, "read", Value::Null),
                (0, Ok, "read", json!({"a": null, "b": 20})),
                (0, Invoke, "read", Value::Null),
                (0, Ok, "read", json!({"a": 0, "c": 20})),
            ],
        );
        let v = check(&h, &BankOptions::default()).unwrap();
        let kinds: Vec<&str> = v.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "negative-value",
                "wrong-total",
                "nil-balance",
                "unexpected-key"
            ]
        );
        assert_eq!(v.anomalies[0].data["negative"], json!([-5]));
        assert_eq!(v.anomalies[1].data["total"], json!(19));
        assert_eq!(v.stats["expected_total"], json!(20));
        let allowed = BankOptions {
            negative_balances: true,
            ..BankOptions::default()
        };
        assert_eq!(check(&h, &allowed).unwrap().anomalies.len(), 3);
        // A given total overrides the first read's.
        let given = BankOptions::from_initial(&json!({"a": 10, "b": 9})).unwrap();
        let v = check(&h, &given).unwrap();
        assert_eq!(v.anomalies[0].kind, "wrong-total");
        assert_eq!(v.anomalies.len(), 5);
    }

    #[test]
    fn malformed_ops_are_errors() {
        for (f, inv, out) in [
            ("read", Value::Null, json!([1, 2])),
            ("read", Value::Null, json!({"a": "x"})),
            ("transfer", json!({"from": 1}), json!({"from": 1})),
            ("deposit", json!(1), json!(1)),
        ] {
            let h = client_history(None, &[(0, Invoke, f, inv), (0, Ok, f, out)]);
            let e = check(&h, &BankOptions::default()).unwrap_err();
            assert_eq!(e.event, 0, "{e}");
        }
        assert!(BankOptions::from_initial(&json!("x")).is_err());
        assert_eq!(BankOptions::from_initial(&json!(7)).unwrap().total, Some(7));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_serializable_bank_passes(seed: u64, procs in 1u64..6, accounts in 2usize..6, ops in 1usize..80) {
            let v = check(&history(simulate(seed, procs, accounts, ops)), &BankOptions::default()).unwrap();
            prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }

        #[test]
        fn one_planted_bad_read_is_found_and_named(seed: u64, procs in 1u64..6, accounts in 2usize..6, ops in 0usize..80, which in 0usize..3) {
            let mut events = simulate(seed, procs, accounts, ops);
            let mut bal = vec![10i64; accounts];
            // Opening snapshot first, so the total is known whatever the clients read.
            let mut all = Vec::new();
            read(&mut all, snapshot(&bal));
            for e in events.drain(..) {
                let i = all.len() as u64;
                all.push(Event { index: i, time: i * 1000, ..e });
            }
            let (bad, kind) = match which {
                0 => { bal[0] = -1; bal[1] = 21; (snapshot(&bal), "negative-value") }
                1 => { bal[1] = 11; (snapshot(&bal), "wrong-total") }
                _ => {
                    let mut m = snapshot(&bal);
                    m["ghost"] = json!(0);
                    (m, "unexpected-key")
                }
            };
            read(&mut all, bad);
            let v = check(&history(all), &BankOptions::default()).unwrap();
            prop_assert_eq!(v.valid, Validity::Invalid);
            prop_assert_eq!(v.anomalies.len(), 1, "{:?}", v.anomalies);
            prop_assert_eq!(v.anomalies[0].kind.as_str(), kind);
        }
    }
}
