//! Planted bugs: each switches one line of the protocol away from correct Raft.
//!
//! | flag | deviation | symptom the harness should catch |
//! |---|---|---|
//! | `vote-without-log-check` | votes ignore whether the candidate's log is up to date | a stale node becomes leader and overwrites committed entries: lost acknowledged writes |
//! | `vote-twice-per-term` | a node grants a vote even though it already voted this term | two leaders in one term (split brain), divergent committed logs |
//! | `commit-prior-term` | the leader commits entries of earlier terms by counting replicas (and, as in figure 8, appends no no-op on election) | Raft figure 8: committed entries later overwritten (lost writes) |
//! | `ack-before-fsync` | messages and client acks leave before the WAL is written out and synced | acknowledged writes (and votes) lost after kill -9 |
//! | `stale-local-read` | any node answers reads from its local state, no ReadIndex | stale reads under partition (followers and deposed leaders lag) |
//! | `lease-no-drift-margin` | reads use a leader lease on the wall clock with no drift margin | stale reads when the leader's clock is skewed or it is paused |
//! | `accept-stale-term-append` | followers accept AppendEntries from a leader of an older term | a deposed leader overwrites entries: divergent logs, lost writes |
//! | `apply-duplicate-request` | the state machine applies a client request id again (no dedupe), so a request delivered twice (a duplicated forward, a client retry) takes effect twice | duplicate list elements, a write resurrected after a later one |

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    VoteWithoutLogCheck,
    VoteTwicePerTerm,
    CommitPriorTerm,
    AckBeforeFsync,
    StaleLocalRead,
    LeaseNoDriftMargin,
    AcceptStaleTermAppend,
    ApplyDuplicateRequest,
}

impl Bug {
    pub const ALL: [Bug; 8] = [
        Bug::VoteWithoutLogCheck,
        Bug::VoteTwicePerTerm,
        Bug::CommitPriorTerm,
        Bug::AckBeforeFsync,
        Bug::StaleLocalRead,
        Bug::LeaseNoDriftMargin,
        Bug::AcceptStaleTermAppend,
        Bug::ApplyDuplicateRequest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::VoteWithoutLogCheck => "vote-without-log-check",
            Bug::VoteTwicePerTerm => "vote-twice-per-term",
            Bug::CommitPriorTerm => "commit-prior-term",
            Bug::AckBeforeFsync => "ack-before-fsync",
            Bug::StaleLocalRead => "stale-local-read",
            Bug::LeaseNoDriftMargin => "lease-no-drift-margin",
            Bug::AcceptStaleTermAppend => "accept-stale-term-append",
            Bug::ApplyDuplicateRequest => "apply-duplicate-request",
        }
    }

    pub fn symptom(self) -> &'static str {
        match self {
            Bug::VoteWithoutLogCheck => "lost committed writes (stale leader elected)",
            Bug::VoteTwicePerTerm => "two leaders in one term",
            Bug::CommitPriorTerm => "committed entries overwritten (Raft figure 8)",
            Bug::AckBeforeFsync => "acknowledged writes lost after kill",
            Bug::StaleLocalRead => "stale reads under partition",
            Bug::LeaseNoDriftMargin => "stale reads under clock drift or pause",
            Bug::AcceptStaleTermAppend => "entries accepted from a deposed leader: divergent logs",
            Bug::ApplyDuplicateRequest => "a request delivered twice is applied twice",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown bug {0:?}; known: vote-without-log-check, vote-twice-per-term, commit-prior-term, ack-before-fsync, stale-local-read, lease-no-drift-margin, accept-stale-term-append, apply-duplicate-request"
)]
pub struct UnknownBug(pub String);

impl FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBug(s.to_string()))
    }
}

/// The set of active bugs, as flags the core reads on its hot paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    pub vote_without_log_check: bool,
    pub vote_twice_per_term: bool,
    pub commit_prior_term: bool,
    pub ack_before_fsync: bool,
    pub stale_local_read: bool,
    pub lease_no_drift_margin: bool,
    pub accept_stale_term_append: bool,
    pub apply_duplicate_request: bool,
}

impl Bugs {
    pub fn from_list(list: &[Bug]) -> Bugs {
        let mut b = Bugs::default();
        for bug in list {
            match bug {
                Bug::VoteWithoutLogCheck => b.vote_without_log_check = true,
                Bug::VoteTwicePerTerm => b.vote_twice_per_term = true,
                Bug::CommitPriorTerm => b.commit_prior_term = true,
                Bug::AckBeforeFsync => b.ack_before_fsync = true,
                Bug::StaleLocalRead => b.stale_local_read = true,
                Bug::LeaseNoDriftMargin => b.lease_no_drift_margin = true,
                Bug::AcceptStaleTermAppend => b.accept_stale_term_append = true,
                Bug::ApplyDuplicateRequest => b.apply_duplicate_request = true,
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_rejected() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>().unwrap(), bug);
        }
        assert!("vote-twice".parse::<Bug>().is_err());
        let all = Bugs::from_list(&Bug::ALL);
        assert!(all.vote_twice_per_term && all.accept_stale_term_append && all.ack_before_fsync);
    }
}
