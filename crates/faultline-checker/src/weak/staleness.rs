//! The `staleness` figure (a measurement, never a verdict): for each successful read,
//! k = how many acknowledged writes definitely overwrote the value it returned before it
//! began (k-staleness: 0 means as fresh as a regular register allows), and t = how long
//! before the read began the first of them was acknowledged (time-visibility, ms).

use serde::Serialize;
use serde_json::json;

use super::Writes;
use crate::{Validity, Verdict};
use faultline_history::{History, Outcome};

pub const NAME: &str = "staleness";

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Staleness {
    pub reads: usize,
    pub stale_reads: usize,
    pub k_max: usize,
    pub k_p50: usize,
    pub k_p99: usize,
    /// Over stale reads only; `None` when there were none.
    pub t_ms_p50: Option<f64>,
    pub t_ms_p99: Option<f64>,
    pub t_ms_max: Option<f64>,
}

fn percentile<T: Copy + PartialOrd>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i])
}

pub fn measure(h: &History) -> Staleness {
    let mut ks = Vec::new();
    let mut ts = Vec::new();
    for (_, ops) in h.by_key() {
        let writes = Writes::new(&ops);
        for r in ops
            .iter()
            .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        {
            let source = writes.source(&r.value);
            let over = writes
                .overwriters(&source, r.call, r.ret.unwrap_or(u64::MAX))
                .unwrap_or_default();
            ks.push(over.len());
            if let Some(first) = over.iter().filter_map(|o| o.ret_time).min() {
                ts.push(r.call_time.saturating_sub(first) as f64 / 1e6);
            }
        }
    }
    ks.sort_unstable();
    ts.sort_by(f64::total_cmp);
    Staleness {
        reads: ks.len(),
        stale_reads: ks.iter().filter(|k| **k > 0).count(),
        k_max: ks.last().copied().unwrap_or(0),
        k_p50: percentile(&ks, 0.5).unwrap_or(0),
        k_p99: percentile(&ks, 0.99).unwrap_or(0),
        t_ms_p50: percentile(&ts, 0.5),
        t_ms_p99: percentile(&ts, 0.99),
        t_ms_max: ts.last().copied(),
    }
}

/// The figure as a verdict-shaped record for the report: always valid, never counted.
pub fn check(h: &History) -> Verdict {
    let s = measure(h);
    Verdict {
        checker: NAME.into(),
        valid: Validity::Valid,
        anomalies: vec![],
        explanation: format!(
            "a figure, not a verdict: {} of {} reads were stale (k max {}, p99 {}); {}",
            s.stale_reads,
            s.reads,
            s.k_max,
            s.k_p99,
            s.t_ms_max
                .map_or("no newer value was missed".into(), |t| format!(
                    "a newer value had been acknowledged up to {t:.1} ms before (p50 {:.1} ms)",
                    s.t_ms_p50.unwrap_or(0.0)
                ))
        ),
        stats: serde_json::to_value(&s).unwrap_or_else(|_| json!({})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weak::histories::{self, Store};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn regular_registers_are_never_stale(seed: u64, procs in 1u64..6, ops in 1usize..60) {
            let s = measure(&histories::history(histories::register(seed, procs, ops, Store::Regular)));
            prop_assert_eq!(s.stale_reads, 0);
            prop_assert_eq!(s.t_ms_max, None);
        }

        #[test]
        fn k_counts_the_overwrites_missed(seed: u64, procs in 1u64..6, ops in 0usize..40, k in 1usize..5) {
            let mut events = histories::register(seed, procs, ops, Store::Regular);
            let p = histories::fresh_process(&events);
            let mut tail = vec![(p, "write", json!("a"), json!("a"))];
            for i in 0..k {
                tail.push((p, "write", json!(format!("b{i}")), json!(format!("b{i}"))));
            }
            tail.push((p + 1, "read", Value::Null, json!("a")));
            histories::append_sequential(&mut events, &tail);
            let s = measure(&histories::history(events));
            prop_assert_eq!(s.stale_reads, 1);
            prop_assert_eq!(s.k_max, k);
            // The first overwrite completed 2k-1 events (1 µs apart) before the read began.
            let t = s.t_ms_max.unwrap();
            prop_assert!((t - (2 * k - 1) as f64 / 1000.0).abs() < 1e-9, "t = {}", t);
        }
    }
}
