//! Cycle search inside strongly connected components, the way Elle does it. For each
//! SCC: first prove which "cycle exists" subgraphs are cyclic (cheap SCC tests that rule
//! out whole consistency models and prune the search), then look for the shortest cycle
//! of each anomaly shape, weakest first, skipping shapes already implied by one found or
//! impossible given the cycle-exists results. A cycle's shape comes from the relation
//! that explains each step (data dependencies before process before real time).

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::fxhash::FxMap;
use super::graph::{Graph, cyclic_sccs, rel};
use super::models;

/// A cycle found: its anomaly type and its steps `(from, to, relation)` in global ids.
#[derive(Clone, Debug)]
pub struct Cycle {
    pub kind: String,
    pub steps: Vec<(u32, u32, u8)>,
}

/// A "cycle exists" finding: some subgraph forbidden by `model` has a cycle among `scc`.
#[derive(Clone, Debug)]
pub struct CycleExists {
    pub kind: String,
    pub model: &'static str,
    pub subgraph: &'static str,
    pub scc: Vec<u32>,
}

#[derive(Debug, Default)]
pub struct SccResult {
    pub cycles: Vec<Cycle>,
    pub exists: Vec<CycleExists>,
    /// Set when the search ran out of time: (the shape being searched, SCC size).
    pub timeout: Option<(String, usize)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Data {
    G0,
    G1c,
    GSingle,
    GNonadjacent,
    G2Item,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Shape {
    data: Data,
    /// 0, rel::PROCESS or rel::REALTIME.
    variant: u8,
}

impl Shape {
    fn name(self) -> String {
        let d = match self.data {
            Data::G0 => "G0",
            Data::G1c => "G1c",
            Data::GSingle => "G-single-item",
            Data::GNonadjacent => "G-nonadjacent-item",
            Data::G2Item => "G2-item",
        };
        match self.variant {
            rel::PROCESS => format!("{d}-process"),
            rel::REALTIME => format!("{d}-realtime"),
            _ => d.to_string(),
        }
    }

    fn allowed(self) -> u8 {
        let d = match self.data {
            Data::G0 => rel::WW,
            Data::G1c => rel::WW | rel::WR,
            _ => rel::DATA,
        };
        d | self.variant
    }

    /// The kind of edge every cycle of this shape has; candidates start with it.
    fn anchor(self) -> u8 {
        match self.data {
            Data::G0 => rel::WW,
            Data::G1c => rel::WR,
            _ => rel::RW,
        }
    }
}

/// Search order: data-only shapes, then process, then real-time variants, each from the
/// most to the least severe, as Elle's anomaly depth order has it.
fn shapes() -> Vec<Shape> {
    let mut v = Vec::new();
    for variant in [0, rel::PROCESS, rel::REALTIME] {
        for data in [
            Data::G0,
            Data::G1c,
            Data::GSingle,
            Data::GNonadjacent,
            Data::G2Item,
        ] {
            v.push(Shape { data, variant });
        }
    }
    v
}

/// Elle's cycle-exists specifications: a model and the subgraph that must be acyclic
/// for it to hold. `ext` is A ∪ (A ; rw): A edges, extended through one rw hop.
struct ExistsSpec {
    model: &'static str,
    name: &'static str,
    base: u8,
    ext: bool,
    subgraph: &'static str,
}

const EXISTS: &[ExistsSpec] = &[
    ExistsSpec {
        model: "PL-1",
        name: "PL-1-cycle-exists",
        base: rel::WW,
        ext: false,
        subgraph: "ww",
    },
    ExistsSpec {
        model: "PL-2",
        name: "PL-2-cycle-exists",
        base: rel::WW | rel::WR,
        ext: false,
        subgraph: "ww ∪ wr",
    },
    ExistsSpec {
        model: "PL-SI",
        name: "PL-SI-cycle-exists",
        base: rel::WW | rel::WR,
        ext: true,
        subgraph: "(ww ∪ wr) extended by one rw",
    },
    ExistsSpec {
        model: "PL-3",
        name: "PL-3-cycle-exists",
        base: rel::DATA,
        ext: false,
        subgraph: "ww ∪ wr ∪ rw",
    },
    ExistsSpec {
        model: "strong-session-PL-1",
        name: "strong-session-PL-1-cycle-exists",
        base: rel::WW | rel::PROCESS,
        ext: false,
        subgraph: "ww ∪ process",
    },
    ExistsSpec {
        model: "strong-session-PL-2",
        name: "strong-session-PL-2-cycle-exists",
        base: rel::WW | rel::WR | rel::PROCESS,
        ext: false,
        subgraph: "ww ∪ wr ∪ process",
    },
    ExistsSpec {
        model: "strong-session-snapshot-isolation",
        name: "strong-session-snapshot-isolation-cycle-exists",
        base: rel::WW | rel::WR | rel::PROCESS,
        ext: true,
        subgraph: "(ww ∪ wr ∪ process) extended by one rw",
    },
    ExistsSpec {
        model: "strong-session-serializable",
        name: "strong-session-serializable-cycle-exists",
        base: rel::DATA | rel::PROCESS,
        ext: false,
        subgraph: "ww ∪ wr ∪ rw ∪ process",
    },
    ExistsSpec {
        model: "strong-PL-1",
        name: "strong-PL-1-cycle-exists",
        base: rel::WW | rel::REALTIME,
        ext: false,
        subgraph: "ww ∪ realtime",
    },
    ExistsSpec {
        model: "strong-PL-2",
        name: "strong-PL-2-cycle-exists",
        base: rel::WW | rel::WR | rel::REALTIME,
        ext: false,
        subgraph: "ww ∪ wr ∪ realtime",
    },
    ExistsSpec {
        model: "strong-snapshot-isolation",
        name: "strong-snapshot-isolation-cycle-exists",
        base: rel::WW | rel::WR | rel::REALTIME,
        ext: true,
        subgraph: "(ww ∪ wr ∪ realtime) extended by one rw",
    },
    ExistsSpec {
        model: "PL-SS",
        name: "PL-SS-cycle-exists",
        base: rel::DATA | rel::REALTIME,
        ext: false,
        subgraph: "ww ∪ wr ∪ rw ∪ realtime",
    },
];

/// Composed edges beyond this make an extension spec too costly; it is then skipped
/// (which only means less pruning, never a wrong answer).
const MAX_COMPOSED_EDGES: usize = 4_000_000;

/// The SCC as a small graph with local ids.
struct Local {
    nodes: Vec<u32>,
    adj: Vec<Vec<(u32, u8)>>,
}

impl Local {
    fn new(g: &Graph, scc: &[u32]) -> Local {
        let mut nodes = scc.to_vec();
        nodes.sort_unstable();
        let mut adj = vec![Vec::new(); nodes.len()];
        for (li, &v) in nodes.iter().enumerate() {
            for (w, m) in g.out(v) {
                if let Ok(lw) = nodes.binary_search(&w) {
                    adj[li].push((lw as u32, m));
                }
            }
        }
        Local { nodes, adj }
    }

    fn has(&self, r: u8) -> bool {
        self.adj
            .iter()
            .any(|es| es.iter().any(|&(_, m)| m & r != 0))
    }
}

/// Does the subgraph (edges whose label meets `base`, optionally extended through one rw
/// hop) have a cycle? Returns a strongly connected set witnessing it.
fn exists(l: &Local, spec: &ExistsSpec) -> Option<Vec<u32>> {
    let n = l.nodes.len();
    let mut edges: Vec<(u32, u32)> = Vec::new();
    for (a, es) in l.adj.iter().enumerate() {
        for &(b, m) in es {
            if m & spec.base != 0 {
                edges.push((a as u32, b));
            }
        }
    }
    if spec.ext {
        let base_len = edges.len();
        for i in 0..base_len {
            let (a, b) = edges[i];
            for &(c, m) in &l.adj[b as usize] {
                if m & rel::RW != 0 {
                    if c == a {
                        return Some(vec![l.nodes[a as usize]]);
                    }
                    edges.push((a, c));
                }
            }
            if edges.len() > MAX_COMPOSED_EDGES {
                return None;
            }
        }
    }
    if edges.is_empty() {
        return None;
    }
    edges.sort_unstable();
    edges.dedup();
    let csr: petgraph::csr::Csr<(), (), petgraph::Directed, u32> =
        petgraph::csr::Csr::from_sorted_edges(&edges).expect("sorted");
    let sccs = cyclic_sccs(&csr, n);
    sccs.into_iter()
        .min_by_key(|s| s.len())
        .map(|s| s.into_iter().map(|v| l.nodes[v as usize]).collect())
}

/// A cycle's steps: (from, to, relation).
pub type Steps = Vec<(u32, u32, u8)>;

/// The deadline passed mid-search.
#[derive(Debug)]
pub struct TimedOut;

// Search state bits.
const LAST_RW: u8 = 1;
const RW_ONE: u8 = 2;
const RW_MANY: u8 = 4;
const SAW_WR: u8 = 8;
const SAW_VAR: u8 = 16;
const ADJ: u8 = 32;

fn step(shape: Shape, s: u8, r: u8) -> Option<u8> {
    let is_rw = r == rel::RW;
    let mut n = s & !LAST_RW;
    if is_rw {
        if s & LAST_RW != 0 {
            if shape.data == Data::GNonadjacent {
                return None;
            }
            n |= ADJ;
        }
        n |= LAST_RW;
        if s & (RW_ONE | RW_MANY) != 0 {
            if shape.data == Data::GSingle {
                return None;
            }
            n = (n & !RW_ONE) | RW_MANY;
        } else {
            n |= RW_ONE;
        }
    }
    if r == rel::WR && matches!(shape.data, Data::G0 | Data::G1c) {
        n |= SAW_WR;
    }
    if r == rel::PROCESS || r == rel::REALTIME {
        n |= SAW_VAR;
    }
    if !matches!(shape.data, Data::GNonadjacent | Data::G2Item) {
        n &= !(LAST_RW | ADJ);
    }
    Some(n)
}

/// The data-dependency class of a closed cycle with final state `s` (first edge `anchor`).
fn data_class(s: u8, anchor: u8) -> Data {
    let adj = s & ADJ != 0 || (s & LAST_RW != 0 && anchor == rel::RW);
    if s & RW_MANY != 0 {
        if adj {
            Data::G2Item
        } else {
            Data::GNonadjacent
        }
    } else if s & RW_ONE != 0 {
        Data::GSingle
    } else if s & SAW_WR != 0 {
        Data::G1c
    } else {
        Data::G0
    }
}

/// Does a closed cycle with final state `s` (first edge `anchor`) have exactly `shape`?
fn accepts(shape: Shape, s: u8, anchor: u8) -> bool {
    let data = data_class(s, anchor);
    let variant_ok = if shape.variant == 0 {
        s & SAW_VAR == 0
    } else {
        s & SAW_VAR != 0
    };
    data == shape.data && variant_ok
}

/// The shortest cycle of `shape` through the edge u -> v (whose relation is `anchor`).
/// Only cycles shorter than `max_len` steps are looked for.
fn cycle_through(
    l: &Local,
    shape: Shape,
    (u, v, anchor): (u32, u32, u8),
    max_len: usize,
    deadline: Option<Instant>,
    work: &mut u64,
) -> Result<Option<Steps>, TimedOut> {
    let allowed = shape.allowed();
    let s0 = step(shape, 0, anchor).expect("anchor is allowed");
    // (node, state) -> (previous node, previous state, relation of the step)
    let mut parent: FxMap<(u32, u8), (u32, u8, u8)> = FxMap::default();
    let mut q: VecDeque<(u32, u8, usize)> = VecDeque::new();
    parent.insert((v, s0), (u, 0, anchor));
    // depth: steps in the cycle so far, counting the anchor
    q.push_back((v, s0, 1));
    while let Some((x, s, depth)) = q.pop_front() {
        if depth + 1 >= max_len {
            continue;
        }
        *work += 1;
        if (*work).is_multiple_of(4096) && deadline.is_some_and(|d| Instant::now() > d) {
            return Err(TimedOut);
        }
        for &(y, m) in &l.adj[x as usize] {
            let r = rel::primary(m);
            if r & allowed == 0 {
                continue;
            }
            let Some(ns) = step(shape, s, r) else {
                continue;
            };
            if y == u {
                if accepts(shape, ns, anchor) {
                    // Rebuild the path v .. x, then close it.
                    let mut steps = vec![(x, u, r)];
                    let mut cur = (x, s);
                    while cur != (v, s0) {
                        let (px, ps, pr) = parent[&cur];
                        steps.push((px, cur.0, pr));
                        cur = (px, ps);
                    }
                    steps.push((u, v, anchor));
                    steps.reverse();
                    let mut seen: Vec<u32> = steps.iter().map(|s| s.0).collect();
                    seen.sort_unstable();
                    seen.dedup();
                    if seen.len() == steps.len() {
                        return Ok(Some(steps));
                    }
                }
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry((y, ns)) {
                e.insert((x, s, r));
                q.push_back((y, ns, depth + 1));
            }
        }
    }
    Ok(None)
}

/// Finds a cycle of `shape` in the SCC, trying anchor edges whose ends share a component
/// of the shape's subgraph.
fn find(l: &Local, shape: Shape, deadline: Option<Instant>) -> Result<Option<Steps>, TimedOut> {
    let allowed = shape.allowed();
    let anchor = shape.anchor();
    let n = l.nodes.len();
    let mut edges: Vec<(u32, u32)> = Vec::new();
    for (a, es) in l.adj.iter().enumerate() {
        for &(b, m) in es {
            if rel::primary(m) & allowed != 0 {
                edges.push((a as u32, b));
            }
        }
    }
    if edges.is_empty() {
        return Ok(None);
    }
    let csr: petgraph::csr::Csr<(), (), petgraph::Directed, u32> =
        petgraph::csr::Csr::from_sorted_edges(&edges).expect("sorted");
    let mut comp = vec![u32::MAX; n];
    for (ci, scc) in cyclic_sccs(&csr, n).into_iter().enumerate() {
        for v in scc {
            comp[v as usize] = ci as u32;
        }
    }
    // The first cycle found bounds the search through later anchors, which only look for
    // shorter ones; a few hundred anchors after the first find is plenty.
    let mut work = 0u64;
    let mut best: Option<Steps> = None;
    let mut tried_since_found = 0;
    'anchors: for (a, es) in l.adj.iter().enumerate() {
        for &(b, m) in es {
            if rel::primary(m) != anchor || comp[a] == u32::MAX || comp[a] != comp[b as usize] {
                continue;
            }
            let max_len = best.as_ref().map_or(usize::MAX, Vec::len);
            if max_len <= 2 || tried_since_found > 256 {
                break 'anchors;
            }
            if best.is_some() {
                tried_since_found += 1;
            }
            match cycle_through(
                l,
                shape,
                (a as u32, b, anchor),
                max_len,
                deadline,
                &mut work,
            ) {
                Ok(Some(c)) => best = Some(c),
                Ok(None) => {}
                // Out of time with a cycle in hand: keep it.
                Err(TimedOut) if best.is_some() => break 'anchors,
                Err(TimedOut) => return Err(TimedOut),
            }
        }
    }
    Ok(best.map(|c| {
        c.into_iter()
            .map(|(x, y, r)| (l.nodes[x as usize], l.nodes[y as usize], r))
            .collect()
    }))
}

/// Searches one SCC of the full graph.
pub fn search_scc(g: &Graph, scc: &[u32], deadline: Option<Instant>) -> SccResult {
    let l = Local::new(g, scc);
    let mut out = SccResult::default();

    // 1. Cycle existence, weakest model first; a cyclic subgraph rules out its model and
    // every stronger one, whose specs are then redundant.
    let mut impossible: BTreeSet<String> = BTreeSet::new();
    for spec in EXISTS {
        if impossible.contains(spec.model) {
            continue;
        }
        if let Some(witness) = exists(&l, spec) {
            out.exists.push(CycleExists {
                kind: spec.name.to_string(),
                model: spec.model,
                subgraph: spec.subgraph,
                scc: witness,
            });
            impossible.extend(models::all_impossible_models(&[spec.model]));
        }
    }
    // Models whose subgraph is acyclic hold here, so what they forbid cannot be found.
    let possible: Vec<&str> = EXISTS
        .iter()
        .map(|s| s.model)
        .filter(|m| !impossible.contains(*m))
        .collect();
    let cannot = models::anomalies_prohibited_by(&possible);

    // 2. Shapes, skipping the implied and the impossible.
    let has_process = l.has(rel::PROCESS);
    let has_realtime = l.has(rel::REALTIME);
    let mut redundant: BTreeSet<String> = BTreeSet::new();
    for shape in shapes() {
        let name = shape.name();
        if redundant.contains(&name) || cannot.contains(&name) {
            continue;
        }
        if (shape.variant == rel::PROCESS && !has_process)
            || (shape.variant == rel::REALTIME && !has_realtime)
        {
            continue;
        }
        match find(&l, shape, deadline) {
            Err(TimedOut) => {
                out.timeout = Some((name, scc.len()));
                break;
            }
            Ok(None) => {}
            Ok(Some(steps)) => {
                redundant.extend(models::all_implied_anomalies(&[name.as_str()]));
                out.cycles.push(Cycle { kind: name, steps });
            }
        }
    }

    // 3. Cycle-exists findings a specific cycle already explains are dropped.
    let kinds: Vec<&str> = out.cycles.iter().map(|c| c.kind.as_str()).collect();
    let ruled_out = models::impossible_models(&kinds);
    out.exists.retain(|e| !ruled_out.contains(e.model));
    out
}

#[cfg(test)]
mod tests {
    use super::super::graph::EdgeList;
    use super::*;

    fn graph(edges: &[(u32, u32, u8)]) -> Graph {
        let mut el = EdgeList::default();
        for &(a, b, r) in edges {
            el.link(a, b, r);
        }
        el.freeze(8)
    }

    fn kinds(g: &Graph) -> Vec<String> {
        let mut out = Vec::new();
        for scc in g.cyclic_sccs() {
            let r = search_scc(g, &scc, None);
            out.extend(r.cycles.into_iter().map(|c| c.kind));
            out.extend(r.exists.into_iter().map(|c| c.kind));
        }
        out.sort();
        out
    }

    #[test]
    fn classifies_pure_data_cycles() {
        assert_eq!(kinds(&graph(&[(0, 1, rel::WW), (1, 0, rel::WW)])), ["G0"]);
        assert_eq!(kinds(&graph(&[(0, 1, rel::WW), (1, 0, rel::WR)])), ["G1c"]);
        assert_eq!(
            kinds(&graph(&[(0, 1, rel::WR), (1, 0, rel::RW)])),
            ["G-single-item"]
        );
        assert_eq!(
            kinds(&graph(&[(0, 1, rel::RW), (1, 0, rel::RW)])),
            ["G2-item"]
        );
        // rw, wr, rw, wr: two rw edges, never adjacent.
        assert_eq!(
            kinds(&graph(&[
                (0, 1, rel::RW),
                (1, 2, rel::WR),
                (2, 3, rel::RW),
                (3, 0, rel::WR)
            ])),
            ["G-nonadjacent-item"]
        );
    }

    #[test]
    fn realtime_variants_need_a_realtime_step() {
        assert_eq!(
            kinds(&graph(&[(0, 1, rel::REALTIME), (1, 0, rel::RW)])),
            ["G-single-item-realtime"]
        );
        // An edge that is both rw and realtime is explained as rw.
        assert_eq!(
            kinds(&graph(&[(0, 1, rel::RW | rel::REALTIME), (1, 0, rel::RW)])),
            ["G2-item", "strong-snapshot-isolation-cycle-exists"]
        );
    }

    #[test]
    fn finds_the_shortest_cycle_of_a_shape() {
        // A long G0 cycle 0-1-2-3-0 and a short one 0-4-0.
        let g = graph(&[
            (0, 1, rel::WW),
            (1, 2, rel::WW),
            (2, 3, rel::WW),
            (3, 0, rel::WW),
            (0, 4, rel::WW),
            (4, 0, rel::WW),
        ]);
        let scc = &g.cyclic_sccs()[0];
        let r = search_scc(&g, scc, None);
        assert_eq!(r.cycles.len(), 1);
        assert_eq!(r.cycles[0].steps.len(), 2);
    }
}

/// The shape of a closed cycle from the relations of its steps.
pub fn classify(steps: &[(u32, u32, u8)]) -> String {
    let Some(&(_, _, anchor)) = steps.first() else {
        return String::new();
    };
    let shape = Shape {
        data: Data::G2Item,
        variant: 0,
    };
    let mut s = 0u8;
    for &(_, _, r) in steps {
        // Track every bit: G2Item keeps adjacency, and wr is recorded separately.
        s = step(shape, s, r).unwrap_or(s);
        if r == rel::WR {
            s |= SAW_WR;
        }
    }
    let data = data_class(s, anchor);
    let variant = steps
        .iter()
        .map(|s| s.2)
        .find(|r| *r == rel::REALTIME)
        .or_else(|| steps.iter().map(|s| s.2).find(|r| *r == rel::PROCESS))
        .unwrap_or(0);
    Shape { data, variant }.name()
}

/// Real-time edges are kept in reduced form, so a cycle may walk a long chain of them
/// where the history shows one direct fact ("A completed before B began"). Replaces such
/// stretches (with no rw step in them) by that one real-time step, as long as the cycle
/// keeps its shape. `precedes(a, b)`: a completed before b was invoked.
pub fn shortcut_realtime(steps: Steps, precedes: impl Fn(u32, u32) -> bool) -> Steps {
    let kind = classify(&steps);
    let mut steps = steps;
    let mut i = 0;
    while i < steps.len() {
        let n = steps.len();
        let from = steps[i].0;
        // Farthest first; j == n closes the cycle at its start.
        for j in (i + 2..=n).rev() {
            if steps[i..j].iter().any(|s| s.2 == rel::RW) {
                continue;
            }
            let to = if j == n { steps[0].0 } else { steps[j].0 };
            if to == from || !precedes(from, to) {
                continue;
            }
            let mut candidate: Steps = steps[..i].to_vec();
            candidate.push((from, to, rel::REALTIME));
            candidate.extend_from_slice(&steps[j..]);
            if classify(&candidate) == kind {
                steps = candidate;
                break;
            }
        }
        i += 1;
    }
    steps
}

#[cfg(test)]
mod shortcut_tests {
    use super::*;

    #[test]
    fn a_chain_of_realtime_steps_becomes_one_fact() {
        // 0 -rw-> 1 -rt-> 2 -ww-> 3 -rt-> 0, and 1 completed before 0 began.
        let steps = vec![
            (0, 1, rel::RW),
            (1, 2, rel::REALTIME),
            (2, 3, rel::WW),
            (3, 0, rel::REALTIME),
        ];
        assert_eq!(classify(&steps), "G-single-item-realtime");
        let short = shortcut_realtime(steps, |a, b| matches!((a, b), (1, 0) | (1, 2) | (3, 0)));
        assert_eq!(short, vec![(0, 1, rel::RW), (1, 0, rel::REALTIME)]);
    }

    #[test]
    fn a_shortcut_that_would_drop_the_only_wr_is_refused() {
        let steps = vec![(0, 1, rel::WR), (1, 2, rel::REALTIME), (2, 0, rel::WW)];
        assert_eq!(classify(&steps), "G1c-realtime");
        // 0 precedes 2 in real time, but 0 -rt-> 2 -ww-> 0 would be G0-realtime.
        let short = shortcut_realtime(steps.clone(), |a, b| a == 0 && b == 2);
        assert_eq!(short, steps);
    }
}
