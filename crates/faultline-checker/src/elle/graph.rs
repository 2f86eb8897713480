//! The transaction dependency graph: vertices are transaction ids (indexes into `Txns`),
//! edges carry a bit set of relations. Stored as a petgraph `Csr` built from a sorted
//! edge list; strongly connected components come from petgraph's Tarjan.

use petgraph::algo::TarjanScc;
use petgraph::csr::Csr;
use petgraph::visit::{EdgeRef, IntoNeighbors, IntoNodeIdentifiers, NodeIndexable};

use super::txns::Txns;
use faultline_history::Outcome;

/// Relations, as bits of an edge's label.
pub mod rel {
    pub const WW: u8 = 1;
    pub const WR: u8 = 2;
    pub const RW: u8 = 4;
    pub const PROCESS: u8 = 8;
    pub const REALTIME: u8 = 16;
    pub const DATA: u8 = WW | WR | RW;

    /// The relation an edge is explained by: data dependencies first, as Elle does.
    pub fn primary(mask: u8) -> u8 {
        for r in [WW, WR, RW, PROCESS, REALTIME] {
            if mask & r != 0 {
                return r;
            }
        }
        0
    }

    pub fn name(r: u8) -> &'static str {
        match r {
            WW => "ww",
            WR => "wr",
            RW => "rw",
            PROCESS => "process",
            REALTIME => "realtime",
            _ => "?",
        }
    }
}

/// Collects edges (duplicates allowed) and freezes them into a graph.
#[derive(Default)]
pub struct EdgeList {
    pub edges: Vec<(u32, u32, u8)>,
}

impl EdgeList {
    pub fn link(&mut self, from: u32, to: u32, r: u8) {
        if from != to {
            self.edges.push((from, to, r));
        }
    }

    /// Groups edges by source (a counting sort), merges parallel edges' labels and builds
    /// the CSR over `n` vertices.
    pub fn freeze(self, n: usize) -> Graph {
        let mut off = vec![0u32; n + 1];
        for &(a, _, _) in &self.edges {
            off[a as usize + 1] += 1;
        }
        for j in 0..n {
            off[j + 1] += off[j];
        }
        let mut out: Vec<(u32, u8)> = vec![(0, 0); self.edges.len()];
        let mut fill = off.clone();
        for &(a, b, r) in &self.edges {
            out[fill[a as usize] as usize] = (b, r);
            fill[a as usize] += 1;
        }
        drop(self.edges);
        let mut merged: Vec<(u32, u32, u8)> = Vec::with_capacity(out.len());
        for a in 0..n {
            let row = &mut out[off[a] as usize..off[a + 1] as usize];
            row.sort_unstable_by_key(|e| e.0);
            for &(b, r) in row.iter() {
                match merged.last_mut() {
                    Some(last) if last.0 == a as u32 && last.1 == b => last.2 |= r,
                    _ => merged.push((a as u32, b, r)),
                }
            }
        }
        let mut csr: Csr<(), u8, petgraph::Directed, u32> =
            Csr::from_sorted_edges(&merged).expect("edges were sorted");
        while csr.node_count() < n {
            csr.add_node(());
        }
        Graph { csr }
    }
}

pub struct Graph {
    pub csr: Csr<(), u8, petgraph::Directed, u32>,
}

impl Graph {
    pub fn node_count(&self) -> usize {
        self.csr.node_count()
    }

    pub fn edge_count(&self) -> usize {
        self.csr.edge_count()
    }

    pub fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.csr.edges(v).map(|e| (e.target(), *e.weight()))
    }

    /// Strongly connected components with a cycle in them (two or more vertices).
    pub fn cyclic_sccs(&self) -> Vec<Vec<u32>> {
        cyclic_sccs(&self.csr, self.node_count())
    }
}

/// Tarjan over any petgraph view, keeping components of two or more vertices. petgraph's
/// Tarjan recurses once per vertex on a path, so it runs on a thread whose stack is sized
/// to the graph (untouched stack pages cost nothing).
pub fn cyclic_sccs<G>(g: G, n: usize) -> Vec<Vec<u32>>
where
    G: IntoNodeIdentifiers<NodeId = u32>
        + IntoNeighbors<NodeId = u32>
        + NodeIndexable<NodeId = u32>
        + Send,
{
    let run = move || {
        let mut out = Vec::new();
        let mut t = TarjanScc::new();
        t.run(g, |scc| {
            if scc.len() > 1 {
                out.push(scc.to_vec());
            }
        });
        out
    };
    if n < 20_000 {
        return run();
    }
    let stack = 64 * 1024 * 1024 + n.saturating_mul(256);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("elle-scc".into())
            .stack_size(stack)
            .spawn_scoped(s, run)
            .expect("spawn scc thread")
            .join()
            .expect("scc thread panicked")
    })
}

/// Which ordering edges to add besides data dependencies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEdges {
    None,
    Process,
    Realtime,
}

/// Process order: each process's transactions, in invocation order. Only transactions
/// that are graph vertices (not failed) take part.
pub fn process_edges(t: &Txns, vertex: &[bool], out: &mut EdgeList) {
    let mut last: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    for (i, x) in t.txns.iter().enumerate() {
        if !vertex[i] {
            continue;
        }
        if let Some(prev) = last.insert(x.process, i as u32) {
            out.link(prev, i as u32, rel::PROCESS);
        }
    }
}

/// Real-time order in reduced form: A -> B when A completed before B was invoked, keeping
/// only edges from the frontier of latest completions (transitively implied ones are
/// dropped). Only `ok` transactions complete; `info` ones never precede anything.
pub fn realtime_edges(t: &Txns, vertex: &[bool], out: &mut EdgeList) {
    // (event index, txn, is_completion)
    let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(t.len() * 2);
    for (i, x) in t.txns.iter().enumerate() {
        if !vertex[i] {
            continue;
        }
        events.push((x.call, i as u32, false));
        if x.outcome == Outcome::Ok && x.ret != u64::MAX {
            events.push((x.ret, i as u32, true));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut frontier: Vec<u32> = Vec::new();
    // txn -> the frontier it saw at invocation (as a range into `seen`)
    let mut seen_at: Vec<(u32, u32)> = vec![(0, 0); t.len()];
    let mut seen: Vec<u32> = Vec::new();
    let mut in_frontier = vec![false; t.len()];
    for (_, txn, done) in events {
        if !done {
            let start = seen.len() as u32;
            for &a in &frontier {
                out.link(a, txn, rel::REALTIME);
                seen.push(a);
            }
            seen_at[txn as usize] = (start, seen.len() as u32);
        } else {
            let (s, e) = seen_at[txn as usize];
            let covered = &seen[s as usize..e as usize];
            if !covered.is_empty() {
                for &c in covered {
                    in_frontier[c as usize] = false;
                }
                frontier.retain(|&f| in_frontier[f as usize]);
            }
            frontier.push(txn);
            in_frontier[txn as usize] = true;
        }
    }
}
