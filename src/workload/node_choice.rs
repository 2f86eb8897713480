//! Which node a client sends its next op to: a random node each time, always the same
//! node, or the leader (learned from `not-leader` answers and kept until it fails).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeChoice {
    Random,
    Sticky,
    Leader,
}

/// One client's node picker; its randomness derives from the run seed and the client.
pub struct NodePicker {
    choice: NodeChoice,
    nodes: usize,
    current: usize,
    rng: ChaCha8Rng,
}

impl NodePicker {
    pub fn new(choice: NodeChoice, nodes: usize, client: usize, seed: u64) -> NodePicker {
        assert!(nodes > 0, "a picker needs at least one node");
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(client as u64 + 1)),
        );
        let current = match choice {
            NodeChoice::Random => rng.random_range(0..nodes),
            NodeChoice::Sticky | NodeChoice::Leader => client % nodes,
        };
        NodePicker {
            choice,
            nodes,
            current,
            rng,
        }
    }

    /// The node for the next attempt.
    pub fn pick(&mut self) -> usize {
        if self.choice == NodeChoice::Random {
            self.current = self.rng.random_range(0..self.nodes);
        }
        self.current
    }

    /// The node answered `not-leader`, naming `hint` (an index) when it knows the leader.
    pub fn not_leader(&mut self, hint: Option<usize>) {
        if self.choice == NodeChoice::Leader {
            self.current = match hint {
                Some(h) if h != self.current => h,
                // no (useful) hint: try the next node
                _ => (self.current + 1) % self.nodes,
            };
        }
    }

    /// The node did not answer (timeout, refused): a leader-follower moves on.
    pub fn unreachable(&mut self) {
        if self.choice == NodeChoice::Leader {
            self.current = (self.current + 1) % self.nodes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_stays_leader_follows_random_spreads() {
        let mut s = NodePicker::new(NodeChoice::Sticky, 5, 7, 1);
        assert_eq!(s.pick(), 2);
        s.not_leader(Some(4));
        s.unreachable();
        assert_eq!(s.pick(), 2);

        let mut l = NodePicker::new(NodeChoice::Leader, 5, 7, 1);
        assert_eq!(l.pick(), 2);
        l.not_leader(Some(4));
        assert_eq!(l.pick(), 4);
        l.not_leader(None);
        assert_eq!(l.pick(), 0);
        l.unreachable();
        assert_eq!(l.pick(), 1);

        let mut r = NodePicker::new(NodeChoice::Random, 5, 0, 9);
        let seen: std::collections::HashSet<usize> = (0..200).map(|_| r.pick()).collect();
        assert_eq!(seen.len(), 5);
        let mut r2 = NodePicker::new(NodeChoice::Random, 5, 0, 9);
        let mut r3 = NodePicker::new(NodeChoice::Random, 5, 0, 9);
        let a: Vec<usize> = (0..50).map(|_| r2.pick()).collect();
        let b: Vec<usize> = (0..50).map(|_| r3.pick()).collect();
        assert_eq!(a, b, "seeded");
    }
}
