//! Test helpers: a three-node core, ticks, deliveries, a primary made by hand, and a small
//! deterministic cluster that delivers every message each 10 ms step.

use super::*;

pub fn nodes() -> Vec<NodeId> {
    ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect()
}

pub fn core(id: &str, mode: Mode, bugs: Bugs) -> Core {
    let mut cfg = Config::new(id, mode);
    cfg.bugs = bugs;
    Core::new(cfg, nodes(), 0, None, vec![])
}

pub fn tick(c: &mut Core, t: u64) -> Vec<Command> {
    c.step(Input::Tick {
        now_ms: t,
        wall_ms: t,
    })
}

pub fn recv(c: &mut Core, from: &str, msg: Message) -> Vec<Command> {
    c.step(Input::Receive {
        from: from.into(),
        msg,
    })
}

/// A primary of its first generation at time `t`, its noop committed by n2 and n3.
pub fn primary(id: &str, mode: Mode, bugs: Bugs, t: u64) -> Core {
    let mut c = core(id, mode, bugs);
    c.now = t;
    c.wall = t;
    c.become_candidate();
    c.last_renew = t;
    let epoch = c.generation();
    for p in c.peers() {
        let m = Message::ClaimReply {
            epoch,
            seq: 1,
            granted: true,
            my_gen: epoch,
            last_gen: 0,
            last_index: 0,
            entries: vec![],
        };
        recv(&mut c, &p, m);
    }
    for p in c.peers() {
        let m = Message::AppendReply {
            epoch,
            seq: 1,
            ok: true,
            my_gen: epoch,
            match_index: 1,
        };
        recv(&mut c, &p, m);
    }
    c.step(Input::Flush);
    assert!(c.serving(), "primary() made a serving primary");
    c
}

/// Nodes that step together: every message sent in one 10 ms step is delivered in the next,
/// unless its link is cut.
pub struct Cluster {
    pub cores: Vec<Core>,
    pub now: u64,
    pub cut: std::collections::BTreeSet<(NodeId, NodeId)>,
    queue: Vec<(NodeId, NodeId, Message)>,
    pub applied: std::collections::BTreeMap<NodeId, Vec<(Index, Entry)>>,
}

impl Cluster {
    pub fn new(n: usize, mode: Mode, gate: bool, bugs: Bugs) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).map(|i| format!("n{i}")).collect();
        let cores = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut cfg = Config::new(id, mode);
                cfg.quorum_gate = gate;
                cfg.bugs = bugs;
                cfg.seed = i as u64 + 7;
                Core::new(cfg, ids.clone(), 0, None, vec![])
            })
            .collect();
        Cluster {
            cores,
            now: 0,
            cut: Default::default(),
            queue: Vec::new(),
            applied: Default::default(),
        }
    }

    fn absorb(&mut self, from: &str, out: Vec<Command>) {
        for c in out {
            match c {
                Command::Send { to, msg } => self.queue.push((from.to_string(), to, msg)),
                Command::Apply(es) => self.applied.entry(from.to_string()).or_default().extend(es),
                _ => {}
            }
        }
    }

    pub fn step(&mut self) {
        self.now += 10;
        let q = std::mem::take(&mut self.queue);
        for (from, to, msg) in q {
            if self.cut.contains(&(from.clone(), to.clone())) {
                continue;
            }
            let i = self.cores.iter().position(|c| *c.id() == to).unwrap();
            let out = recv(&mut self.cores[i], &from, msg);
            self.absorb(&to, out);
        }
        for i in 0..self.cores.len() {
            let id = self.cores[i].id().clone();
            let mut out = tick(&mut self.cores[i], self.now);
            out.extend(self.cores[i].step(Input::Flush));
            self.absorb(&id, out);
        }
    }

    pub fn run_ms(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.step();
        }
    }

    pub fn serving(&self) -> Vec<NodeId> {
        self.cores
            .iter()
            .filter(|c| c.serving())
            .map(|c| c.id().clone())
            .collect()
    }

    pub fn isolate(&mut self, a: &[&str], b: &[&str]) {
        for x in a {
            for y in b {
                self.cut.insert((x.to_string(), y.to_string()));
                self.cut.insert((y.to_string(), x.to_string()));
            }
        }
    }

    /// Proposes at node `i`; returns whether it was taken (not rejected).
    pub fn propose(&mut self, i: usize, id: &str) -> bool {
        let data = serde_json::json!({"op": "write", "key": "k", "value": id});
        let out = self.cores[i].step(Input::Propose {
            id: id.into(),
            data,
        });
        let taken = out.iter().any(|c| matches!(c, Command::Proposed { .. }));
        let me = self.cores[i].id().clone();
        self.absorb(&me, out);
        taken
    }
}
