//! Generates list-append histories of a strictly serializable store, for property tests
//! and benchmarks: `concurrency` processes run transactions of 1-4 micro-ops over a pool
//! of keys, each key retired after `writes_per_key` appends (as Elle's generator does).
//! Each transaction takes effect at its completion, so the history is strict serializable
//! unless `stale_every` plants stale reads (a read missing the key's last append), which
//! makes G-single-item-realtime cycles.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::txns::{MopKind, Scalar, Txns};
use faultline_history::Outcome;

#[derive(Clone, Debug)]
pub struct GenOptions {
    pub txns: usize,
    pub concurrency: usize,
    pub active_keys: usize,
    pub writes_per_key: usize,
    /// Plant a stale read in one transaction of this many (0: never).
    pub stale_every: usize,
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            txns: 1000,
            concurrency: 10,
            active_keys: 10,
            writes_per_key: 16,
            stale_every: 0,
            seed: 0,
        }
    }
}

struct Pending {
    process: u64,
    call: u64,
    mops: Vec<(MopKind, i64, i64)>,
}

/// The generated transactions, in completion order.
pub fn list_append(o: &GenOptions) -> Txns {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let mut t = Txns::new();
    let mut state: Vec<Vec<Scalar>> = Vec::new(); // key -> list
    let mut writes: Vec<usize> = Vec::new();
    let mut active: Vec<i64> = (0..o.active_keys as i64).collect();
    let mut next_key = o.active_keys as i64;
    let mut pending: Vec<Pending> = Vec::new();
    let mut free: Vec<u64> = (0..o.concurrency as u64).rev().collect();
    let mut event = 0u64;
    let mut started = 0usize;
    let mut done = 0usize;
    let mut scratch: Vec<Scalar> = Vec::new();
    while done < o.txns {
        let invoke = started < o.txns
            && pending.len() < o.concurrency
            && (pending.is_empty() || rng.random_bool(0.5));
        if invoke {
            let n = rng.random_range(1..=4);
            let mops = (0..n)
                .map(|_| {
                    let k = active[rng.random_range(0..active.len())];
                    if rng.random_bool(0.5) {
                        (MopKind::Append, k, 0)
                    } else {
                        (MopKind::Read, k, 0)
                    }
                })
                .collect();
            pending.push(Pending {
                process: free.pop().expect("a free process"),
                call: event,
                mops,
            });
            started += 1;
            event += 1;
            continue;
        }
        // Complete a random pending txn: it takes effect now.
        let p = pending.swap_remove(rng.random_range(0..pending.len()));
        let id = t.len() as u32;
        t.begin(id, p.process, Outcome::Ok, p.call, event);
        free.push(p.process);
        event += 1;
        let stale = o.stale_every > 0 && rng.random_range(0..o.stale_every) == 0;
        for (kind, k, _) in p.mops {
            let ku = k as usize;
            if state.len() <= ku {
                state.resize(ku + 1, Vec::new());
                writes.resize(ku + 1, 0);
            }
            match kind {
                MopKind::Append => {
                    let v = Scalar::Int(writes[ku] as i64 + 1);
                    writes[ku] += 1;
                    state[ku].push(v);
                    t.push_append(Scalar::Int(k), v);
                    if writes[ku] >= o.writes_per_key
                        && let Some(slot) = active.iter_mut().find(|a| **a == k)
                    {
                        *slot = next_key;
                        next_key += 1;
                    }
                }
                _ => {
                    scratch.clear();
                    scratch.extend_from_slice(&state[ku]);
                    if stale && !scratch.is_empty() {
                        scratch.pop();
                    }
                    t.push_read_list(Scalar::Int(k), Some(&scratch));
                }
            }
        }
        done += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_requested_number_of_txns() {
        let t = list_append(&GenOptions {
            txns: 500,
            ..Default::default()
        });
        assert_eq!(t.len(), 500);
        assert!(t.mops.iter().any(|m| m.kind == MopKind::Append));
    }
}
