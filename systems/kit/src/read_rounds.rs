//! Quorum read rounds for a leader-based core (Raft's ReadIndex, a Multi-Paxos leader's reads):
//! pure bookkeeping, no IO and no clock reads, so a core's `step` stays pure.
//!
//! The leader numbers the heartbeat rounds it sends. A read that arrives while round `s` is
//! the last one sent waits for round `s + 1`, which starts after it, and is served once a
//! quorum of voters (the leader among them) has acknowledged a round at least that high: then
//! no other leader had taken over when the read arrived. The round a quorum acknowledged also
//! says when it was sent, which is where a leader lease may start.

use std::collections::VecDeque;

/// How many sent rounds are remembered for lease starts.
const KEPT_ROUNDS: usize = 256;

#[derive(Clone, Debug, Default)]
pub struct ReadRounds {
    sent: u64,
    acked: u64,
    /// (seq, timer clock, wall clock) when each remembered round was sent.
    rounds: VecDeque<(u64, u64, u64)>,
    /// Waiting reads: (read id, round that serves it, index to apply before answering).
    reads: VecDeque<(u64, u64, u64)>,
}

/// What a quorum's acknowledgements released.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Reads to answer, as (read id, index), in the order they came.
    pub ready: Vec<(u64, u64)>,
    /// When the round the quorum acknowledged was sent, (timer clock, wall clock), if it is
    /// still remembered: where a lease may start.
    pub sent_at: Option<(u64, u64)>,
    /// Reads still wait for a round not sent yet: send one.
    pub need_round: bool,
}

impl ReadRounds {
    /// The last round sent: what the leader itself has acknowledged.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// A new reign: rounds are numbered from 1 again, earlier acknowledgements mean nothing.
    pub fn restart(&mut self) {
        self.sent = 0;
        self.acked = 0;
        self.rounds.clear();
    }

    /// Numbers a round sent at `now` (timer clock) and `wall`; returns its seq for the
    /// heartbeats.
    pub fn start_round(&mut self, now: u64, wall: u64) -> u64 {
        self.sent += 1;
        self.rounds.push_back((self.sent, now, wall));
        while self.rounds.len() > KEPT_ROUNDS {
            self.rounds.pop_front();
        }
        self.sent
    }

    /// Queues read `id`, to be answered after applying `index`. True when no round is in
    /// flight, so the caller must start one now.
    pub fn queue(&mut self, id: u64, index: u64) -> bool {
        self.reads.push_back((id, self.sent + 1, index));
        self.acked == self.sent
    }

    /// The ids of every waiting read, which are dropped (the leader stepped down).
    pub fn abandon(&mut self) -> Vec<u64> {
        self.reads.drain(..).map(|(id, _, _)| id).collect()
    }

    /// Takes the highest round each voter acknowledged (the leader's own is [`sent`]) and
    /// releases what a quorum of them allows.
    ///
    /// [`sent`]: ReadRounds::sent
    pub fn acknowledged(&mut self, mut acked: Vec<u64>, quorum: usize) -> Released {
        if quorum == 0 || acked.len() < quorum {
            return Released::default();
        }
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let seq = acked[quorum - 1];
        if seq <= self.acked {
            return Released::default();
        }
        self.acked = seq;
        let mut released = Released::default();
        while let Some(&(s, mono, wall)) = self.rounds.front() {
            if s > seq {
                break;
            }
            if s == seq {
                released.sent_at = Some((mono, wall));
            }
            self.rounds.pop_front();
        }
        while let Some(&(id, s, index)) = self.reads.front() {
            if s > seq {
                break;
            }
            released.ready.push((id, index));
            self.reads.pop_front();
        }
        released.need_round = self.reads.front().is_some_and(|r| r.1 > self.sent);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_waits_for_a_round_sent_after_it_and_a_quorum_of_acks() {
        let mut r = ReadRounds::default();
        assert!(r.queue(7, 40), "no round in flight: start one");
        let seq = r.start_round(100, 5_000);
        assert_eq!(seq, 1);
        // the leader alone of three voters is no quorum
        assert_eq!(r.acknowledged(vec![1, 0, 0], 2), Released::default());
        let out = r.acknowledged(vec![1, 1, 0], 2);
        assert_eq!(
            out,
            Released {
                ready: vec![(7, 40)],
                sent_at: Some((100, 5_000)),
                need_round: false,
            }
        );
        // the same acknowledgements again release nothing
        assert_eq!(r.acknowledged(vec![1, 1, 1], 2), Released::default());
    }

    #[test]
    fn a_read_queued_during_a_round_needs_the_next_one() {
        let mut r = ReadRounds::default();
        assert!(r.queue(1, 10));
        r.start_round(10, 10);
        assert!(!r.queue(2, 11), "round 1 is in flight");
        let out = r.acknowledged(vec![1, 1, 0], 2);
        assert_eq!(
            out.ready,
            vec![(1, 10)],
            "read 2 came after round 1 was sent"
        );
        assert!(out.need_round);
        assert_eq!(r.start_round(20, 20), 2);
        let out = r.acknowledged(vec![2, 0, 2], 2);
        assert_eq!(out.ready, vec![(2, 11)]);
        assert_eq!(out.sent_at, Some((20, 20)));
        assert!(!out.need_round);
    }

    #[test]
    fn a_new_reign_numbers_rounds_again_and_abandon_drops_reads() {
        let mut r = ReadRounds::default();
        r.queue(1, 1);
        r.start_round(1, 1);
        r.start_round(2, 2);
        assert_eq!(r.abandon(), vec![1]);
        r.restart();
        assert_eq!(r.sent(), 0);
        assert!(r.queue(2, 5), "nothing in flight after a restart");
        assert_eq!(r.start_round(3, 3), 1);
        assert_eq!(r.acknowledged(vec![1, 1], 2).ready, vec![(2, 5)]);
    }

    #[test]
    fn only_the_last_rounds_are_remembered_for_lease_starts() {
        let mut r = ReadRounds::default();
        for t in 0..(KEPT_ROUNDS as u64 + 10) {
            r.start_round(t, t);
        }
        assert_eq!(r.acknowledged(vec![5, 5], 2).sent_at, None, "forgotten");
        let last = r.sent();
        assert_eq!(
            r.acknowledged(vec![last, last], 2).sent_at,
            Some((last - 1, last - 1))
        );
    }
}
