//! Which node a client sends its next op to. The default binds each client to one node, as
//! Jepsen does (clients spread evenly; a retired client's successor keeps the node), so every
//! node that believes it may serve is exercised, a second primary included. A bound client
//! follows a `not-leader` hint for that op only and starts the next op at its own node again.
//! `random` picks a node per op (and follows hints within it), `sticky` never moves, `leader`
//! follows hints and stays with the node that answered.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum NodeChoice {
    /// Client i on node i mod n; hints followed within an op only.
    Bound,
    /// A random node per op; hints followed within it.
    Random,
    /// Client i on node i mod n, hints ignored.
    Sticky,
    /// Follow hints to the leader and stay there until it fails.
    Leader,
}

impl NodeChoice {
    /// What a run uses when neither the command line nor the descriptor says.
    pub const DEFAULT: NodeChoice = NodeChoice::Bound;
}

/// One client's node picker; its randomness derives from the run seed and the client.
pub struct NodePicker {
    choice: NodeChoice,
    nodes: usize,
    home: usize,
    current: usize,
    rng: ChaCha8Rng,
}

impl NodePicker {
    pub fn new(choice: NodeChoice, nodes: usize, client: usize, seed: u64) -> NodePicker {
        assert!(nodes > 0, "a picker needs at least one node");
        let rng = ChaCha8Rng::seed_from_u64(
            seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(client as u64 + 1)),
        );
        NodePicker {
            choice,
            nodes,
            home: client % nodes,
            current: client % nodes,
            rng,
        }
    }

    /// The node for the first attempt of a new op.
    pub fn begin(&mut self) -> usize {
        match self.choice {
            NodeChoice::Random => self.current = self.rng.random_range(0..self.nodes),
            NodeChoice::Bound | NodeChoice::Sticky => self.current = self.home,
            NodeChoice::Leader => {}
        }
        self.current
    }

    /// The node for the next attempt of the op in flight.
    pub fn pick(&self) -> usize {
        self.current
    }

    /// The node answered `not-leader`, naming `hint` (an index) when it knows the leader.
    pub fn not_leader(&mut self, hint: Option<usize>) {
        if self.choice != NodeChoice::Sticky {
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
    fn bound_clients_spread_evenly_and_come_home_after_a_redirect() {
        let homes: Vec<usize> = (0..10)
            .map(|c| NodePicker::new(NodeChoice::Bound, 5, c, 1).begin())
            .collect();
        assert_eq!(homes, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
        let mut b = NodePicker::new(NodeChoice::Bound, 5, 7, 1);
        assert_eq!(b.begin(), 2);
        b.not_leader(Some(4));
        assert_eq!(b.pick(), 4, "the op in flight follows the hint");
        b.unreachable();
        assert_eq!(b.begin(), 2, "the next op starts at the client's own node");
    }

    #[test]
    fn sticky_stays_leader_follows_random_spreads_and_follows_hints() {
        let mut s = NodePicker::new(NodeChoice::Sticky, 5, 7, 1);
        assert_eq!(s.begin(), 2);
        s.not_leader(Some(4));
        s.unreachable();
        assert_eq!(s.pick(), 2);
        assert_eq!(s.begin(), 2);

        let mut l = NodePicker::new(NodeChoice::Leader, 5, 7, 1);
        assert_eq!(l.begin(), 2);
        l.not_leader(Some(4));
        assert_eq!(l.begin(), 4);
        l.not_leader(None);
        assert_eq!(l.begin(), 0);
        l.unreachable();
        assert_eq!(l.begin(), 1);

        let mut r = NodePicker::new(NodeChoice::Random, 5, 0, 9);
        let seen: std::collections::HashSet<usize> = (0..200).map(|_| r.begin()).collect();
        assert_eq!(seen.len(), 5);
        let first = r.begin();
        r.not_leader(Some((first + 1) % 5));
        assert_eq!(
            r.pick(),
            (first + 1) % 5,
            "random follows a hint within the op"
        );
        let mut r2 = NodePicker::new(NodeChoice::Random, 5, 0, 9);
        let mut r3 = NodePicker::new(NodeChoice::Random, 5, 0, 9);
        let a: Vec<usize> = (0..50).map(|_| r2.begin()).collect();
        let b: Vec<usize> = (0..50).map(|_| r3.begin()).collect();
        assert_eq!(a, b, "seeded");
    }
}
