//! Builders for the exact-command tests: messages, votes and replicas in a given state.

use super::bugs::Bugs;
use super::message::Message;
use super::paxos::{Command, Config, Input, Paxos};
use super::types::{Accepted, Ballot, Durable, Entry, Payload, Role, Slot, SnapshotMeta};
use serde_json::json;
use std::collections::BTreeSet;

pub const N3: [&str; 3] = ["n1", "n2", "n3"];

pub fn b(round: u64, node: &str) -> Ballot {
    Ballot::new(round, node)
}

pub fn data(id: &str) -> Payload {
    Payload::Data {
        id: id.into(),
        data: json!(id),
    }
}

pub fn entry(slot: Slot, id: &str) -> Entry {
    Entry {
        slot,
        payload: data(id),
    }
}

pub fn noop(slot: Slot) -> Entry {
    Entry {
        slot,
        payload: Payload::Noop,
    }
}

pub fn vote(slot: Slot, ballot: Ballot, id: &str) -> Accepted {
    Accepted {
        slot,
        ballot,
        payload: data(id),
    }
}

pub fn vote_of(e: &Entry, ballot: &Ballot) -> Accepted {
    Accepted {
        slot: e.slot,
        ballot: ballot.clone(),
        payload: e.payload.clone(),
    }
}

pub fn prepare(ballot: Ballot, from: Slot) -> Message {
    Message::Prepare { ballot, from }
}

pub fn promise(ballot: Ballot, accepted: Vec<Accepted>, snapshot: Slot, commit: Slot) -> Message {
    Message::Promise {
        ballot,
        accepted,
        snapshot,
        commit,
    }
}

pub fn accept(ballot: Ballot, entries: Vec<Entry>, commit: Slot) -> Message {
    Message::Accept {
        ballot,
        entries,
        commit,
    }
}

pub fn accepted(ballot: Ballot, slots: Vec<Slot>, commit: Slot) -> Message {
    Message::Accepted {
        ballot,
        slots,
        commit,
    }
}

pub fn nack(ballot: Ballot, promised: Ballot) -> Message {
    Message::Nack { ballot, promised }
}

pub fn heartbeat(ballot: Ballot, commit: Slot, seq: u64) -> Message {
    Message::Heartbeat {
        ballot,
        commit,
        seq,
    }
}

pub fn send(to: &str, msg: Message) -> Command {
    Command::Send { to: to.into(), msg }
}

pub fn tick(r: &mut Paxos, now: u64) -> Vec<Command> {
    r.step(Input::Tick {
        now_ms: now,
        wall_ms: now,
    })
}

pub fn recv(r: &mut Paxos, from: &str, msg: Message) -> Vec<Command> {
    r.step(Input::Receive {
        from: from.into(),
        msg,
    })
}

pub fn voters() -> BTreeSet<String> {
    N3.iter().map(|s| s.to_string()).collect()
}

/// A replica of three that promised `promised` and holds `votes`, its clock started at 1 ms.
pub fn follower_with(
    id: &str,
    bugs: Bugs,
    promised: Ballot,
    votes: &[(Slot, Ballot, &str)],
) -> Paxos {
    let cfg = Config {
        bugs,
        seed: 7,
        ..Config::new(id)
    };
    let durable = Durable {
        promised,
        accepted: votes
            .iter()
            .map(|(s, b, v)| vote(*s, b.clone(), v))
            .collect(),
        snapshot: SnapshotMeta::default(),
    };
    let mut r = Paxos::new(cfg, voters(), durable);
    tick(&mut r, 1);
    r
}

/// `id` after its timeout at 1000 ms: running phase 1 for ballot 5 (it had promised 4.n3).
pub fn candidate(id: &str, bugs: Bugs, votes: &[(Slot, Ballot, &str)]) -> Paxos {
    let mut r = follower_with(id, bugs, b(4, "n3"), votes);
    tick(&mut r, 1000);
    assert_eq!(r.role(), Role::Candidate);
    r
}

/// A fresh replica elected at 1000 ms with ballot 1 (n2's promise); both acknowledged the
/// first heartbeat round.
pub fn leader_from(cfg: Config) -> Paxos {
    let id = cfg.id.clone();
    let mut r = Paxos::new(cfg, voters(), Durable::default());
    tick(&mut r, 1);
    tick(&mut r, 1000);
    let ballot = b(1, &id);
    recv(&mut r, "n2", promise(ballot.clone(), vec![], 0, 0));
    assert_eq!(r.role(), Role::Leader);
    for p in ["n2", "n3"] {
        let ack = Message::HeartbeatAck {
            ballot: ballot.clone(),
            seq: 1,
            commit: 0,
        };
        recv(&mut r, p, ack);
    }
    r
}

pub fn leader(id: &str) -> Paxos {
    leader_from(Config {
        seed: 7,
        ..Config::new(id)
    })
}
