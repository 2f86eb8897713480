//! Shrinking a realised fault schedule: which of a failing run's faults the failure needs,
//! and for how long. Each candidate is tested by replaying it (the caller's `test`), so the
//! order of candidates is chosen to need few replays: first drop the faults that began after
//! the anomaly was seen, then try the last few faults before it (a bug is usually set off by
//! the faults just before it), then delta debugging over what is left, then halve each
//! remaining hold.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::checker::shrink::ddmin;
use crate::nemesis::Recorded;

/// A sub-schedule: the indexes of the faults kept, and shortened holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub keep: Vec<usize>,
    pub holds: BTreeMap<usize, Duration>,
}

/// Holds shorter than this are not halved again.
const MIN_HOLD: Duration = Duration::from_millis(500);

/// The smallest candidate `test` accepted, given that it accepts every fault of `faults`.
/// `seen_ns`: when the anomaly was seen in the original (the latest witness op), if known.
pub fn shrink(
    faults: &[Recorded],
    seen_ns: Option<u64>,
    test: &mut dyn FnMut(&Candidate) -> bool,
) -> Candidate {
    // Delta debugging asks about some candidates more than once: each costs a replay.
    let mut seen_before: HashMap<Candidate, bool> = HashMap::new();
    let test = &mut |c: &Candidate| {
        if let Some(&r) = seen_before.get(c) {
            return r;
        }
        let r = test(c);
        seen_before.insert(c.clone(), r);
        r
    };
    let mut keep: Vec<usize> = faults.iter().map(|f| f.index).collect();
    let by_keep = |keep: &[usize], test: &mut dyn FnMut(&Candidate) -> bool| {
        test(&Candidate {
            keep: keep.to_vec(),
            holds: BTreeMap::new(),
        })
    };
    // 1. Nothing that began after the anomaly was seen can have caused it.
    if let Some(seen) = seen_ns {
        let before: Vec<usize> = faults
            .iter()
            .filter(|f| f.start_ns < seen)
            .map(|f| f.index)
            .collect();
        if !before.is_empty() && before.len() < keep.len() && by_keep(&before, test) {
            keep = before;
        }
    }
    // 2. The last 1, 2, 4, ... faults.
    let mut k = 1;
    while k < keep.len() {
        let tail = keep[keep.len() - k..].to_vec();
        if by_keep(&tail, test) {
            keep = tail;
            break;
        }
        k *= 2;
    }
    // 3. Delta debugging (down to no fault at all: a failure that needs none says so).
    let keep = ddmin(keep, &mut |sub: &[usize]| by_keep(sub, test));
    // 4. Halve each hold once.
    let mut best = Candidate {
        keep,
        holds: BTreeMap::new(),
    };
    let kept: Vec<&Recorded> = faults
        .iter()
        .filter(|f| best.keep.contains(&f.index))
        .collect();
    for f in kept {
        let Some(h) = f.hold() else { continue };
        if h < MIN_HOLD * 2 {
            continue;
        }
        let mut c = best.clone();
        c.holds.insert(f.index, h / 2);
        if test(&c) {
            best = c;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Fault;

    fn faults(n: usize) -> Vec<Recorded> {
        (0..n)
            .map(|i| Recorded {
                index: i,
                start_ns: (i as u64 + 1) * 3_000_000_000,
                stop_ns: Some((i as u64 + 1) * 3_000_000_000 + 2_000_000_000),
                apply_us: 0,
                undo_us: 0,
                fault: Fault::Kill {
                    targets: vec!["n1".into()],
                    wipe: false,
                },
                targets: vec!["n1".into()],
                clock: None,
                detail: Default::default(),
                leader: None,
            })
            .collect()
    }

    #[test]
    fn finds_the_one_fault_needed_in_few_tests() {
        let fs = faults(40);
        let mut tests = 0;
        let got = shrink(&fs, Some(36_500_000_000), &mut |c| {
            tests += 1;
            c.keep.contains(&11)
        });
        assert_eq!(got.keep, [11]);
        // fault 11 held 2 s: halved to 1 s
        assert_eq!(got.holds[&11], Duration::from_secs(1));
        assert!(tests <= 12, "{tests} replays");
    }

    #[test]
    fn keeps_a_pair_that_is_needed_together() {
        let fs = faults(16);
        let got = shrink(&fs, None, &mut |c| {
            c.keep.contains(&3) && c.keep.contains(&9) && c.holds.is_empty()
        });
        assert_eq!(got.keep, [3, 9]);
        assert!(got.holds.is_empty(), "shorter holds were refused");
    }

    #[test]
    fn no_candidate_is_replayed_twice() {
        let fs = faults(16);
        let mut asked: Vec<Candidate> = Vec::new();
        shrink(&fs, Some(30_000_000_000), &mut |c| {
            assert!(!asked.contains(c), "asked again: {c:?}");
            asked.push(c.clone());
            c.keep.contains(&3) && c.keep.contains(&5)
        });
    }

    #[test]
    fn a_failure_that_needs_no_fault_shrinks_to_none() {
        let got = shrink(&faults(8), None, &mut |_| true);
        assert!(got.keep.is_empty(), "{got:?}");
    }

    #[test]
    fn a_failure_after_all_faults_keeps_what_it_needs() {
        let fs = faults(5);
        // needs all of the first three, seen after the last fault
        let got = shrink(&fs, Some(100_000_000_000), &mut |c| {
            (0..3).all(|i| c.keep.contains(&i))
        });
        assert_eq!(got.keep, [0, 1, 2]);
    }
}
