//! The seeded operation generator: one ChaCha stream per run decides every op's kind, key
//! and value, so a run is reproducible from its seed (timing aside).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::op::OpRequest;
use super::spec::{Kind, WorkloadSpec};

/// Internal storage key for the set workload's elements.
pub const SET_KEY: &str = "set";

/// The set workload's storage key in the key namespace `prefix` (empty: [`SET_KEY`]).
pub fn set_key(prefix: &str) -> String {
    format!("{prefix}{SET_KEY}")
}

/// Final reads cover at most this many keys (the most recent ones).
pub const MAX_FINAL_READ_KEYS: usize = 512;

struct KeySlot {
    id: u64,
    used: u32,
}

pub struct Generator {
    spec: WorkloadSpec,
    rng: ChaCha8Rng,
    active: Vec<KeySlot>,
    next_key: u64,
    /// Every key ever handed out, in order.
    touched: Vec<u64>,
    /// Next unique value for appends and set adds.
    next_unique: u64,
    /// Put before every key sent (a run's namespace on a cluster that keeps its data).
    prefix: String,
}

impl Generator {
    pub fn new(spec: &WorkloadSpec, seed: u64) -> Generator {
        let mut g = Generator {
            spec: spec.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            active: Vec::new(),
            next_key: 0,
            touched: Vec::new(),
            next_unique: 1,
            prefix: String::new(),
        };
        for _ in 0..spec.keys {
            g.fresh_key();
        }
        g
    }

    /// Every key this generator hands out (ops and final reads) starts with `prefix`: a
    /// cluster that outlives the run keeps the keys earlier runs wrote, so each run on it
    /// gets a namespace of its own. The op stream (kinds, values, key choice) is the same as
    /// without one. Empty (the default): the bare key ids.
    pub fn with_key_prefix(mut self, prefix: &str) -> Generator {
        self.prefix = prefix.to_string();
        self
    }

    fn key_name(&self, id: u64) -> String {
        format!("{}{id}", self.prefix)
    }

    fn fresh_key(&mut self) -> usize {
        let id = self.next_key;
        self.next_key += 1;
        self.touched.push(id);
        self.active.push(KeySlot { id, used: 0 });
        self.active.len() - 1
    }

    /// Picks an active key and counts one use of it, retiring it when its quota is spent.
    fn pick_key(&mut self) -> u64 {
        let i = self.rng.random_range(0..self.active.len());
        let slot = &mut self.active[i];
        slot.used += 1;
        let id = slot.id;
        if self.spec.ops_per_key > 0 && slot.used >= self.spec.ops_per_key {
            self.active.swap_remove(i);
            self.fresh_key();
        }
        id
    }

    fn unique(&mut self) -> u64 {
        let v = self.next_unique;
        self.next_unique += 1;
        v
    }

    /// Chooses an index by weight; weights are validated non-zero in total.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.rng.random_range(0..total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        unreachable!("weights sum to {total}")
    }

    pub fn next_op(&mut self) -> OpRequest {
        let m = self.spec.mix.clone();
        match self.spec.kind {
            Kind::Register => {
                let id = self.pick_key();
                let key = Some(self.key_name(id));
                let values = self.spec.values;
                match self.weighted(&[m.read, m.write, m.cas]) {
                    0 => OpRequest::new("read", key, Value::Null),
                    1 => {
                        let v = self.rng.random_range(0..values);
                        OpRequest::new("write", key, json!(v))
                    }
                    _ => {
                        let a = self.rng.random_range(0..values);
                        let b = self.rng.random_range(0..values);
                        OpRequest::new("cas", key, json!([a, b]))
                    }
                }
            }
            Kind::ListAppend => {
                let len = self.rng.random_range(self.spec.txn_min..=self.spec.txn_max);
                let mut ops = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    let id = self.pick_key();
                    let k = self.key_name(id);
                    if self.weighted(&[m.read, m.append]) == 0 {
                        ops.push(json!(["r", k, null]));
                    } else {
                        let v = self.unique();
                        ops.push(json!(["append", k, v]));
                    }
                }
                OpRequest::new("txn", None, Value::Array(ops))
            }
            Kind::Set => {
                let key = self.set_op_key();
                if self.weighted(&[m.read, m.add]) == 0 {
                    OpRequest::new("read", key, Value::Null)
                } else {
                    let v = self.unique();
                    OpRequest::new("add", key, json!(v))
                }
            }
        }
    }

    /// A set op's key: none with one key (the classic one-set history, stored at the
    /// client's set key), else a key picked like a register's (one set per key).
    fn set_op_key(&mut self) -> Option<String> {
        (self.spec.keys > 1).then(|| {
            let id = self.pick_key();
            self.key_name(id)
        })
    }

    /// The reads that end a run: every key touched (the last `MAX_FINAL_READ_KEYS`), or the
    /// whole set.
    pub fn final_reads(&self) -> Vec<OpRequest> {
        let recent = &self.touched[self.touched.len().saturating_sub(MAX_FINAL_READ_KEYS)..];
        match self.spec.kind {
            Kind::ListAppend => recent
                .iter()
                .map(|k| OpRequest::new("txn", None, json!([["r", self.key_name(*k), null]])))
                .collect(),
            Kind::Set if self.spec.keys == 1 => vec![OpRequest::new("read", None, Value::Null)],
            Kind::Register | Kind::Set => recent
                .iter()
                .map(|k| OpRequest::new("read", Some(self.key_name(*k)), Value::Null))
                .collect(),
        }
    }

    /// Keys touched so far.
    pub fn keys_touched(&self) -> usize {
        self.touched.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> WorkloadSpec {
        WorkloadSpec::load(name).unwrap()
    }

    fn ops(name: &str, seed: u64, n: usize) -> Vec<OpRequest> {
        let mut g = Generator::new(&spec(name), seed);
        (0..n).map(|_| g.next_op()).collect()
    }

    #[test]
    fn same_seed_same_ops_other_seed_other_ops() {
        for w in ["register", "cas-register", "kv", "list-append", "set"] {
            assert_eq!(ops(w, 7, 300), ops(w, 7, 300), "{w}");
            assert_ne!(ops(w, 7, 300), ops(w, 8, 300), "{w}");
        }
    }

    #[test]
    fn kv_keys_rotate_after_their_quota() {
        let s = spec("kv");
        let all = ops("kv", 1, 3000);
        let mut per_key = std::collections::HashMap::<String, u32>::new();
        for op in &all {
            *per_key.entry(op.key.clone().unwrap()).or_default() += 1;
            assert!(matches!(op.f.as_str(), "read" | "write" | "cas"));
        }
        assert!(per_key.values().all(|&n| n <= s.ops_per_key));
        assert!(per_key.len() >= 3000 / s.ops_per_key as usize);
        let mut g = Generator::new(&s, 1);
        for _ in 0..3000 {
            g.next_op();
        }
        assert_eq!(g.final_reads().len(), g.keys_touched());
    }

    #[test]
    fn mix_weights_are_respected() {
        let all = ops("cas-register", 3, 4000);
        let count = |f: &str| all.iter().filter(|o| o.f == f).count() as f64;
        // weights read 2, write 1, cas 1
        assert!((count("read") / 4000.0 - 0.5).abs() < 0.05);
        assert!((count("cas") / 4000.0 - 0.25).abs() < 0.05);
        assert!(all.iter().all(|o| o.key.as_deref() == Some("0")));
    }

    #[test]
    fn appends_and_adds_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for op in ops("list-append", 5, 500) {
            let micro = op.value.as_array().unwrap();
            assert!((1..=4).contains(&micro.len()));
            for m in micro {
                if m[0] == "append" {
                    assert!(seen.insert(m[2].as_u64().unwrap()));
                }
            }
        }
        let mut adds = std::collections::HashSet::new();
        for op in ops("set", 5, 500).iter().filter(|o| o.f == "add") {
            assert!(adds.insert(op.value.as_u64().unwrap()));
        }
        assert!(adds.len() > 400);
    }

    #[test]
    fn a_key_prefix_namespaces_every_key_and_changes_nothing_else() {
        let p = "flabc123-";
        for w in ["kv", "list-append", "set"] {
            let mut bare = Generator::new(&spec(w), 9);
            let mut pre = Generator::new(&spec(w), 9).with_key_prefix(p);
            for _ in 0..500 {
                let (b, q) = (bare.next_op(), pre.next_op());
                assert_eq!((&b.f, b.key.is_some()), (&q.f, q.key.is_some()), "{w}");
                if let (Some(bk), Some(qk)) = (&b.key, &q.key) {
                    assert_eq!(format!("{p}{bk}"), *qk);
                }
                if b.f == "txn" {
                    let (bm, qm) = (b.value.as_array().unwrap(), q.value.as_array().unwrap());
                    assert_eq!(bm.len(), qm.len());
                    for (x, y) in bm.iter().zip(qm) {
                        assert_eq!(format!("{p}{}", x[1].as_str().unwrap()), y[1]);
                        assert_eq!((&x[0], &x[2]), (&y[0], &y[2]));
                    }
                } else {
                    assert_eq!(b.value, q.value, "{w}");
                }
            }
            let (bf, qf) = (bare.final_reads(), pre.final_reads());
            assert_eq!(bf.len(), qf.len());
            for q in &qf {
                let keys: Vec<String> = match &q.key {
                    Some(k) => vec![k.clone()],
                    None => q.value.as_array().map_or(vec![], |m| {
                        m.iter()
                            .map(|x| x[1].as_str().unwrap().to_string())
                            .collect()
                    }),
                };
                assert!(keys.iter().all(|k| k.starts_with(p)), "{w}: {q:?}");
            }
        }
        // the set's ops keep key None (the history shape); its storage key is namespaced
        assert_eq!(set_key(""), SET_KEY);
        assert_eq!(set_key(p), "flabc123-set");
    }

    #[test]
    fn a_set_over_several_keys_names_the_key_of_every_op_and_final_read() {
        let one = spec("set");
        let mut many = one.clone();
        many.keys = 4;
        let mut g = Generator::new(&one, 3);
        assert!((0..50).all(|_| g.next_op().key.is_none()));
        assert_eq!(
            g.final_reads(),
            vec![OpRequest::new("read", None, Value::Null)]
        );

        let mut g = Generator::new(&many, 3).with_key_prefix("p-");
        let ops: Vec<OpRequest> = (0..400).map(|_| g.next_op()).collect();
        let keys: std::collections::BTreeSet<&str> =
            ops.iter().map(|o| o.key.as_deref().unwrap()).collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert!(ops.iter().any(|o| o.f == "read") && ops.iter().any(|o| o.f == "add"));
        let finals = g.final_reads();
        assert_eq!(finals.len(), g.keys_touched());
        assert!(
            finals
                .iter()
                .all(|o| o.f == "read" && o.key.as_deref().unwrap().starts_with("p-"))
        );
    }
}
