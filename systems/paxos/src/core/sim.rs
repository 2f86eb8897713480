//! A seeded, randomized simulation of whole clusters of cores in memory: message loss, delay
//! (reordering), duplication, partitions, crashes that keep only what was synced, wall-clock
//! jumps and clock-rate drift. An observer records every durable vote and every applied value
//! and checks agreement (no two values chosen or applied for one slot) and read freshness (a
//! read's index covers every write acknowledged before the read began).

use super::bugs::{Bug, Bugs};
use super::message::Message;
use super::paxos::{Command, Config, Input, Paxos};
use super::types::{Accepted, Ballot, Durable, Role, Slot, SnapshotMeta};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const STEP_MS: u64 = 5;
const SNAPSHOT_EVERY: u64 = 25;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 + f64::EPSILON < p
    }
}

/// What a replica's disk holds; `pending` is written but not yet synced (a crash loses it).
#[derive(Default)]
struct Disk {
    promised: Ballot,
    votes: BTreeMap<Slot, Accepted>,
    pending: Vec<Command>,
    /// The snapshot and the applied ids it captures (slot i at index i-1).
    snapshot: (SnapshotMeta, Vec<String>),
}

struct Node {
    id: String,
    px: Option<Paxos>,
    disk: Disk,
    /// Applied ids, slot i at index i-1 (the state machine).
    applied: Vec<String>,
    proposed: BTreeMap<Slot, String>,
    reads: BTreeMap<u64, Slot>,
    wall_offset: i64,
    rate: f64,
    restart_at: u64,
    boots: u64,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub violations: Vec<String>,
    pub chosen: usize,
    pub reads_served: usize,
    pub converged: bool,
}

struct Sim {
    rng: Rng,
    nodes: Vec<Node>,
    bugs: Bugs,
    lease_reads: bool,
    now: u64,
    /// (deliver at, from, to, message)
    net: Vec<(u64, usize, usize, Message)>,
    cut: BTreeSet<(usize, usize)>,
    /// The final fault-free period: everything heals and must converge.
    calm: bool,
    /// Messages of this kind to this replica are dropped (a message-level fault).
    deaf: Option<(usize, &'static str)>,
    loss: f64,
    dup: f64,
    /// (slot, ballot) -> voter -> value id: durable votes, ever.
    votes: BTreeMap<(Slot, Ballot), BTreeMap<usize, String>>,
    chosen: BTreeMap<Slot, String>,
    applied: BTreeMap<Slot, String>,
    acked_max: Slot,
    next_value: u64,
    next_read: u64,
    out: Outcome,
}

impl Sim {
    fn new(seed: u64, bugs: Bugs) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
        let n = if rng.chance(0.5) { 3 } else { 5 };
        let lease_reads = rng.chance(0.5);
        let nodes = (1..=n)
            .map(|i| Node {
                id: format!("n{i}"),
                px: None,
                disk: Disk::default(),
                applied: Vec::new(),
                proposed: BTreeMap::new(),
                reads: BTreeMap::new(),
                wall_offset: 0,
                rate: 0.98 + rng.below(5) as f64 / 100.0,
                restart_at: 0,
                boots: 0,
            })
            .collect();
        let loss = rng.below(15) as f64 / 100.0;
        let dup = rng.below(8) as f64 / 100.0;
        let mut sim = Sim {
            rng,
            nodes,
            bugs,
            lease_reads,
            now: 0,
            net: Vec::new(),
            cut: BTreeSet::new(),
            calm: false,
            deaf: None,
            loss,
            dup,
            votes: BTreeMap::new(),
            chosen: BTreeMap::new(),
            applied: BTreeMap::new(),
            acked_max: 0,
            next_value: 0,
            next_read: 0,
            out: Outcome::default(),
        };
        for i in 0..n {
            sim.boot(i);
        }
        sim
    }

    fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    fn boot(&mut self, i: usize) {
        let voters: BTreeSet<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let node = &mut self.nodes[i];
        node.boots += 1;
        let cfg = Config {
            bugs: self.bugs,
            lease_reads: self.lease_reads,
            seed: self.rng.next() ^ node.boots,
            max_batch: 8,
            ..Config::new(&node.id)
        };
        let durable = Durable {
            promised: node.disk.promised.clone(),
            accepted: node.disk.votes.values().cloned().collect(),
            snapshot: node.disk.snapshot.0.clone(),
        };
        node.applied = node.disk.snapshot.1.clone();
        node.proposed.clear();
        node.reads.clear();
        node.px = Some(Paxos::new(cfg, voters, durable));
    }

    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.px = None;
        node.disk.pending.clear();
        node.restart_at = self.now + 50 + self.rng.below(400);
        self.net.retain(|(_, _, to, _)| *to != i);
    }

    fn clocks(&self, i: usize) -> (u64, u64) {
        let n = &self.nodes[i];
        let mono = (self.now as f64 * n.rate) as u64 + 1;
        let wall = (mono as i64 + 1_000_000 + n.wall_offset).max(0) as u64;
        (mono, wall)
    }

    fn step(&mut self, i: usize, input: Input) {
        let Some(px) = self.nodes[i].px.as_mut() else {
            return;
        };
        let cmds = px.step(input);
        for cmd in cmds {
            if self.nodes[i].px.is_none() {
                break; // crashed part-way: the rest never happened
            }
            self.execute(i, cmd);
        }
    }

    fn execute(&mut self, i: usize, cmd: Command) {
        match cmd {
            Command::PersistPromise(_) | Command::PersistAccepted(_) => {
                self.nodes[i].disk.pending.push(cmd)
            }
            Command::Sync => self.sync(i),
            Command::Send { to, msg } => {
                let to = self.index(&to);
                self.transmit(i, to, msg);
                // Crash points: right after a message leaves is where durability matters.
                let n = self.nodes.len();
                let down = self.nodes.iter().filter(|n| n.px.is_none()).count();
                if !self.calm && down < n / 2 && self.rng.chance(0.0005) {
                    self.crash(i);
                }
            }
            Command::SendSnapshot { to } => {
                let (meta, ids) = self.nodes[i].disk.snapshot.clone();
                let to = self.index(&to);
                let msg = Message::InstallSnapshot {
                    meta,
                    data: json!(ids),
                };
                self.transmit(i, to, msg);
            }
            Command::InstallSnapshot { meta, data } => {
                let ids: Vec<String> = serde_json::from_value(data).expect("sim snapshot data");
                for (k, id) in ids.iter().enumerate() {
                    self.observe_applied(i, k as Slot + 1, id);
                }
                let node = &mut self.nodes[i];
                node.applied = ids.clone();
                node.disk.votes = node.disk.votes.split_off(&(meta.slot + 1));
                node.disk.snapshot = (meta, ids);
            }
            Command::CompactLog { meta } => {
                let node = &mut self.nodes[i];
                node.disk.votes = node.disk.votes.split_off(&(meta.slot + 1));
            }
            Command::Apply { entries } => {
                for e in entries {
                    let slot = e.slot;
                    let node = &mut self.nodes[i];
                    assert_eq!(
                        node.applied.len() as Slot + 1,
                        slot,
                        "{} applied out of order",
                        node.id
                    );
                    let id = e.payload.id().to_string();
                    node.applied.push(id.clone());
                    if node.proposed.remove(&slot).is_some_and(|p| p == id) {
                        // The proposer answers its client now: the write is acknowledged.
                        self.acked_max = self.acked_max.max(slot);
                    }
                    self.observe_applied(i, slot, &id);
                }
                self.maybe_snapshot(i);
            }
            Command::Proposed { id, slot } => {
                self.nodes[i].proposed.insert(slot, id);
            }
            Command::Rejected { .. } | Command::ReadRejected { .. } => {}
            Command::ReadReady { id, index } => {
                if let Some(required) = self.nodes[i].reads.remove(&id) {
                    self.out.reads_served += 1;
                    if index < required {
                        self.violation(format!(
                            "stale read on {} at {} ms: index {index}, but slot {required} was acknowledged before the read began",
                            self.nodes[i].id, self.now
                        ));
                    }
                }
            }
        }
    }

    fn sync(&mut self, i: usize) {
        let pending = std::mem::take(&mut self.nodes[i].disk.pending);
        for cmd in pending {
            match cmd {
                Command::PersistPromise(b) => self.nodes[i].disk.promised = b,
                Command::PersistAccepted(votes) => {
                    for v in votes {
                        if v.slot <= self.nodes[i].disk.snapshot.0.slot {
                            continue;
                        }
                        self.observe_vote(i, &v);
                        self.nodes[i].disk.votes.insert(v.slot, v);
                    }
                }
                _ => unreachable!("only persist commands are pending"),
            }
        }
    }

    fn observe_vote(&mut self, i: usize, v: &Accepted) {
        let voters = self.votes.entry((v.slot, v.ballot.clone())).or_default();
        voters.insert(i, v.payload.id().to_string());
        let id = v.payload.id().to_string();
        let count = voters.values().filter(|x| **x == id).count();
        if count >= self.quorum() {
            match self.chosen.get(&v.slot) {
                Some(c) if *c != id => {
                    let msg = format!(
                        "two values chosen for slot {}: {c} and {id} (ballot {})",
                        v.slot, v.ballot
                    );
                    self.violation(msg);
                }
                Some(_) => {}
                None => {
                    self.chosen.insert(v.slot, id);
                    self.out.chosen += 1;
                }
            }
        }
    }

    fn observe_applied(&mut self, i: usize, slot: Slot, id: &str) {
        let node = self.nodes[i].id.clone();
        match self.applied.get(&slot) {
            Some(a) if a != id => {
                self.violation(format!(
                    "slot {slot} applied as {a} elsewhere but as {id} on {node}"
                ));
            }
            Some(_) => {}
            None => {
                self.applied.insert(slot, id.to_string());
            }
        }
        if let Some(c) = self.chosen.get(&slot)
            && c != id
        {
            let msg = format!("{node} applied {id} at slot {slot}, but {c} was chosen");
            self.violation(msg);
        }
    }

    fn violation(&mut self, msg: String) {
        if self.out.violations.len() < 5 {
            self.out.violations.push(msg);
        }
    }

    fn maybe_snapshot(&mut self, i: usize) {
        let node = &self.nodes[i];
        let applied = node.applied.len() as Slot;
        if applied < node.disk.snapshot.0.slot + SNAPSHOT_EVERY {
            return;
        }
        let meta = SnapshotMeta { slot: applied };
        let ids = node.applied.clone();
        self.nodes[i].disk.snapshot = (meta.clone(), ids);
        self.step(i, Input::SnapshotTaken { meta });
    }

    fn index(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("known node")
    }

    fn transmit(&mut self, from: usize, to: usize, msg: Message) {
        let deaf = self
            .deaf
            .is_some_and(|(i, kind)| i == to && msg.kind() == kind);
        if deaf || self.cut.contains(&(from, to)) || self.rng.chance(self.loss) {
            return;
        }
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + 1 + self.rng.below(30);
            self.net.push((at, from, to, msg.clone()));
        }
    }

    fn faults(&mut self, calm: bool) {
        let n = self.nodes.len();
        if calm {
            self.cut.clear();
            self.deaf = None;
            self.loss = 0.0;
            self.dup = 0.0;
            for i in 0..n {
                if self.nodes[i].px.is_none() {
                    self.boot(i);
                }
            }
            return;
        }
        for i in 0..n {
            if self.nodes[i].px.is_none() && self.now >= self.nodes[i].restart_at {
                self.boot(i);
            }
        }
        if self.rng.chance(0.006) {
            let down = self.nodes.iter().filter(|n| n.px.is_none()).count();
            let i = self.rng.below(n as u64) as usize;
            if down < n / 2 && self.nodes[i].px.is_some() {
                self.crash(i);
            }
        }
        if self.rng.chance(0.008) {
            if self.cut.is_empty() && self.rng.chance(0.5) {
                // a random side against the rest
                let side: Vec<bool> = (0..n).map(|_| self.rng.chance(0.4)).collect();
                for a in 0..n {
                    for b in 0..n {
                        if side[a] != side[b] {
                            self.cut.insert((a, b));
                        }
                    }
                }
            } else if self.cut.is_empty() {
                // a partial partition: some links cut, so a replica may hear two leaders
                for a in 0..n {
                    for b in a + 1..n {
                        if self.rng.chance(0.35) {
                            self.cut.insert((a, b));
                            self.cut.insert((b, a));
                        }
                    }
                }
            } else {
                self.cut.clear();
            }
        }
        if self.rng.chance(0.004) {
            let i = self.rng.below(n as u64) as usize;
            self.nodes[i].wall_offset -= self.rng.below(400) as i64;
        }
        if self.rng.chance(0.006) {
            const KINDS: [&str; 6] = [
                "prepare",
                "promise",
                "accept",
                "accepted",
                "commit",
                "heartbeat",
            ];
            self.deaf = match self.deaf {
                Some(_) => None,
                None => {
                    let i = self.rng.below(n as u64) as usize;
                    Some((i, KINDS[self.rng.below(KINDS.len() as u64) as usize]))
                }
            };
        }
    }

    fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|i| {
                self.nodes[*i]
                    .px
                    .as_ref()
                    .is_some_and(|p| p.role() == Role::Leader)
            })
            .collect();
        leaders.last().copied()
    }

    fn clients(&mut self) {
        let n = self.nodes.len() as u64;
        let target = |sim: &mut Sim| match sim.leader() {
            Some(l) if sim.rng.chance(0.8) => l,
            _ => sim.rng.below(n) as usize,
        };
        if self.rng.chance(0.5) {
            self.next_value += 1;
            let id = format!("v{}", self.next_value);
            let i = target(self);
            self.step(
                i,
                Input::Propose {
                    id,
                    data: json!(null),
                },
            );
        }
        if self.rng.chance(0.3) {
            self.next_read += 1;
            let id = self.next_read;
            let i = target(self);
            if self.nodes[i].px.is_some() {
                let required = self.acked_max;
                self.nodes[i].reads.insert(id, required);
                self.step(i, Input::Read { id });
            }
        }
    }

    fn run(mut self, ms: u64, calm_ms: u64) -> Outcome {
        let n = self.nodes.len();
        while self.now < ms + calm_ms {
            self.now += STEP_MS;
            let calm = self.now > ms;
            self.calm = calm;
            self.faults(calm);
            // deliver what is due, in a random order (reordering within the step, too)
            let now = self.now;
            let (mut due, rest): (Vec<_>, Vec<_>) =
                self.net.drain(..).partition(|(at, ..)| *at <= now);
            self.net = rest;
            for k in (1..due.len()).rev() {
                let j = self.rng.below(k as u64 + 1) as usize;
                due.swap(k, j);
            }
            for (_, from, to, msg) in due {
                let from = self.nodes[from].id.clone();
                self.step(to, Input::Receive { from, msg });
            }
            if !calm {
                self.clients();
            }
            for i in 0..n {
                let (now_ms, wall_ms) = self.clocks(i);
                self.step(i, Input::Tick { now_ms, wall_ms });
                self.step(i, Input::Flush);
            }
        }
        let commits: BTreeSet<Slot> = self
            .nodes
            .iter()
            .filter_map(|n| n.px.as_ref().map(|p| p.commit_index()))
            .collect();
        self.out.converged = commits.len() == 1 && self.nodes.iter().all(|n| n.px.is_some());
        if std::env::var_os("SIM_DEBUG").is_some() {
            for n in &self.nodes {
                if let Some(p) = &n.px {
                    eprintln!(
                        "{} now {} deadline {} contact {} role {:?} gen {} promised {} leader {:?} commit {} snap {} last {}",
                        n.id,
                        p.now,
                        p.election_deadline,
                        p.last_leader_contact,
                        p.role(),
                        p.generation(),
                        p.promised(),
                        p.leader(),
                        p.commit_index(),
                        p.log().snapshot().slot,
                        p.log().last_slot()
                    );
                }
            }
        }
        self.out
    }
}

pub fn simulate(seed: u64, bugs: Bugs) -> Outcome {
    Sim::new(seed, bugs).run(4_000, 1_500)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exploration: `SIM_BUG=name SIM_SEEDS=n` counts the seeds that break (prints nothing
    /// otherwise); `SIM_DEBUG=seed` prints one seed's final state.
    #[test]
    fn explore() {
        let bugs = std::env::var("SIM_BUG")
            .ok()
            .map(|b| Bugs::one(b.parse::<Bug>().expect("SIM_BUG names a bug")))
            .unwrap_or_default();
        if let Some(seed) = std::env::var("SIM_DEBUG").ok().and_then(|s| s.parse().ok()) {
            eprintln!("{:?}", simulate(seed, bugs));
        }
        if let Some(n) = std::env::var("SIM_SEEDS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            let broken: Vec<u64> = (0..n)
                .filter(|s| !simulate(*s, bugs).violations.is_empty())
                .collect();
            eprintln!(
                "{} of {n} seeds broke: {:?}",
                broken.len(),
                &broken[..broken.len().min(10)]
            );
        }
    }

    #[test]
    fn correct_paxos_never_chooses_two_values_nor_serves_a_stale_read() {
        let mut total = 0;
        let mut reads = 0;
        for seed in 0..150 {
            let out = simulate(seed, Bugs::default());
            assert!(
                out.violations.is_empty(),
                "seed {seed}: {:?}",
                out.violations
            );
            assert!(out.chosen > 0, "seed {seed}: nothing was chosen");
            assert!(
                out.converged,
                "seed {seed}: replicas did not converge after healing"
            );
            total += out.chosen;
            reads += out.reads_served;
        }
        assert!(total > 150 * 50, "too little work: {total} slots chosen");
        assert!(reads > 150 * 20, "too few reads served: {reads}");
    }

    /// The bugs a random schedule reaches. Not here (0 of 300 seeds each, measured):
    /// `promise-does-not-raise-on-accept` and `promise-not-persisted` need an acceptor to vote
    /// for a ballot it never promised (or forgot) and then take a lower one while two leaders
    /// overlap; `lease-no-drift-margin` needs the old leader's wall clock set back while it is
    /// cut off. Their deviations are pinned by the exact-command tests.
    const REACHED: [Bug; 5] = [
        Bug::AcceptWithoutPromiseCheck,
        Bug::IgnorePromisedValues,
        Bug::PrepareOnlyFirstSlot,
        Bug::QuorumOffByOne,
        Bug::ReadFromLocalAcceptor,
    ];

    #[test]
    fn every_reachable_planted_bug_breaks_the_simulation_for_some_seed() {
        for bug in REACHED {
            let found = (0..300).find_map(|seed| {
                let out = simulate(seed, Bugs::one(bug));
                out.violations.first().map(|v| (seed, v.clone()))
            });
            let Some((seed, v)) = found else {
                panic!("{bug}: no seed out of 300 broke agreement or read freshness");
            };
            if bug.breaks_agreement() {
                assert!(!v.starts_with("stale read"), "{bug} (seed {seed}): {v}");
            }
            eprintln!("{bug}: seed {seed}: {v}");
        }
    }
}
