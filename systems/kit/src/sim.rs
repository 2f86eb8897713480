//! An in-memory network for testing pure protocol cores without IO: messages queue up and
//! are delivered one at a time in an order drawn from a seed, optionally dropped or
//! duplicated, never across a cut link. The same seed gives the same schedule.

use crate::replica::NodeId;
use std::collections::BTreeSet;

pub struct SimNet<M> {
    queue: Vec<(NodeId, NodeId, M)>,
    rng: u64,
    /// Per-message chance (percent) to be lost.
    pub drop_percent: u64,
    /// Per-message chance (percent) to be delivered twice.
    pub dup_percent: u64,
    cut: BTreeSet<(NodeId, NodeId)>,
    pub delivered: u64,
}

impl<M: Clone> SimNet<M> {
    pub fn new(seed: u64) -> SimNet<M> {
        SimNet {
            queue: Vec::new(),
            rng: seed ^ 0x2545_f491_4f6c_dd1d,
            drop_percent: 0,
            dup_percent: 0,
            cut: BTreeSet::new(),
            delivered: 0,
        }
    }

    /// A seeded draw (splitmix64), also for tests that pick which node acts next.
    pub fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn send(&mut self, from: &str, to: &str, msg: M) {
        self.queue.push((from.to_string(), to.to_string(), msg));
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Cuts every link between the two sides, both ways (queued messages across are lost).
    pub fn partition(&mut self, a: &[&str], b: &[&str]) {
        for x in a {
            for y in b {
                self.cut.insert((x.to_string(), y.to_string()));
                self.cut.insert((y.to_string(), x.to_string()));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The next message to deliver `(from, to, msg)`, picked at random among those queued.
    pub fn deliver(&mut self) -> Option<(NodeId, NodeId, M)> {
        loop {
            if self.queue.is_empty() {
                return None;
            }
            let i = (self.random() % self.queue.len() as u64) as usize;
            let m = self.queue.swap_remove(i);
            if self.cut.contains(&(m.0.clone(), m.1.clone()))
                || self.random() % 100 < self.drop_percent
            {
                continue;
            }
            if self.random() % 100 < self.dup_percent {
                self.queue.push(m.clone());
            }
            self.delivered += 1;
            return Some(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(seed: u64) -> Vec<u32> {
        let mut net = SimNet::new(seed);
        for i in 0..20 {
            net.send("a", "b", i);
        }
        std::iter::from_fn(|| net.deliver().map(|m| m.2)).collect()
    }

    #[test]
    fn delivery_is_reordered_deterministically_by_seed() {
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
        let mut sorted = order(7);
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn cut_links_lose_messages_and_duplicates_arrive_twice() {
        let mut net = SimNet::new(1);
        net.partition(&["a"], &["b"]);
        net.send("a", "b", 1);
        net.send("b", "c", 2);
        assert_eq!(net.deliver(), Some(("b".into(), "c".into(), 2)));
        assert_eq!(net.deliver(), None);
        net.heal();
        net.dup_percent = 100;
        net.send("a", "b", 3);
        assert_eq!(net.deliver().map(|m| m.2), Some(3));
        assert_eq!(net.deliver().map(|m| m.2), Some(3));
    }
}
