//! Planted bugs: each switches one line of the protocol away from correct Multi-Paxos.
//!
//! | flag | deviation | symptom the harness should catch |
//! |---|---|---|
//! | `accept-without-promise-check` | an acceptor takes an Accept below the ballot it promised | a deposed leader's value is chosen after a new leader chose another: two values for one slot, lost writes |
//! | `promise-does-not-raise-on-accept` | accepting at a ballot above the promise leaves the promise where it was (ScyllaDB #6139) | the acceptor later takes Accepts of a lower ballot, overwriting a chosen value: lost writes |
//! | `ignore-promised-values` | a new leader fills the open slots with no-ops instead of adopting the highest accepted value | values chosen but not yet known to the new leader are overwritten: lost committed writes |
//! | `promise-not-persisted` | the promise is kept in memory only | after a restart the acceptor forgets it promised and accepts for a lower ballot: two values chosen |
//! | `prepare-only-first-slot` | an acceptor's promise reports its vote for the first open slot only | the new leader proposes its own values in later slots that were already chosen: lost writes |
//! | `quorum-off-by-one` | a quorum is n/2 instead of n/2+1 | two minorities choose different values: divergent logs, lost writes |
//! | `read-from-local-acceptor` | any replica answers reads from its own state, no leadership check | stale reads |
//! | `lease-no-drift-margin` | reads use a leader lease on the wall clock with no drift margin | stale reads when the leader's wall clock is slow or set back |

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    AcceptWithoutPromiseCheck,
    PromiseDoesNotRaiseOnAccept,
    IgnorePromisedValues,
    PromiseNotPersisted,
    PrepareOnlyFirstSlot,
    QuorumOffByOne,
    ReadFromLocalAcceptor,
    LeaseNoDriftMargin,
}

impl Bug {
    pub const ALL: [Bug; 8] = [
        Bug::AcceptWithoutPromiseCheck,
        Bug::PromiseDoesNotRaiseOnAccept,
        Bug::IgnorePromisedValues,
        Bug::PromiseNotPersisted,
        Bug::PrepareOnlyFirstSlot,
        Bug::QuorumOffByOne,
        Bug::ReadFromLocalAcceptor,
        Bug::LeaseNoDriftMargin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::AcceptWithoutPromiseCheck => "accept-without-promise-check",
            Bug::PromiseDoesNotRaiseOnAccept => "promise-does-not-raise-on-accept",
            Bug::IgnorePromisedValues => "ignore-promised-values",
            Bug::PromiseNotPersisted => "promise-not-persisted",
            Bug::PrepareOnlyFirstSlot => "prepare-only-first-slot",
            Bug::QuorumOffByOne => "quorum-off-by-one",
            Bug::ReadFromLocalAcceptor => "read-from-local-acceptor",
            Bug::LeaseNoDriftMargin => "lease-no-drift-margin",
        }
    }

    pub fn symptom(self) -> &'static str {
        match self {
            Bug::AcceptWithoutPromiseCheck => {
                "two values chosen for a slot (deposed leader's accept taken)"
            }
            Bug::PromiseDoesNotRaiseOnAccept => {
                "a chosen value overwritten by a lower ballot (ScyllaDB #6139)"
            }
            Bug::IgnorePromisedValues => {
                "lost committed writes (new leader ignores accepted values)"
            }
            Bug::PromiseNotPersisted => "two values chosen after an acceptor restarts",
            Bug::PrepareOnlyFirstSlot => "lost writes in slots after the first open one",
            Bug::QuorumOffByOne => "two minorities choose: divergent logs",
            Bug::ReadFromLocalAcceptor => "stale reads from followers and deposed leaders",
            Bug::LeaseNoDriftMargin => "stale reads under clock skew or pause",
        }
    }

    /// Bugs that break agreement itself (two values chosen for one slot), as opposed to reads.
    pub fn breaks_agreement(self) -> bool {
        !matches!(self, Bug::ReadFromLocalAcceptor | Bug::LeaseNoDriftMargin)
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown bug {0:?}; known: {known}", known = Bug::ALL.map(Bug::name).join(", "))]
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
    pub accept_without_promise_check: bool,
    pub promise_does_not_raise_on_accept: bool,
    pub ignore_promised_values: bool,
    pub promise_not_persisted: bool,
    pub prepare_only_first_slot: bool,
    pub quorum_off_by_one: bool,
    pub read_from_local_acceptor: bool,
    pub lease_no_drift_margin: bool,
}

impl Bugs {
    pub fn from_list(list: &[Bug]) -> Bugs {
        let mut b = Bugs::default();
        for bug in list {
            *b.flag(*bug) = true;
        }
        b
    }

    pub fn one(bug: Bug) -> Bugs {
        Bugs::from_list(&[bug])
    }

    fn flag(&mut self, bug: Bug) -> &mut bool {
        match bug {
            Bug::AcceptWithoutPromiseCheck => &mut self.accept_without_promise_check,
            Bug::PromiseDoesNotRaiseOnAccept => &mut self.promise_does_not_raise_on_accept,
            Bug::IgnorePromisedValues => &mut self.ignore_promised_values,
            Bug::PromiseNotPersisted => &mut self.promise_not_persisted,
            Bug::PrepareOnlyFirstSlot => &mut self.prepare_only_first_slot,
            Bug::QuorumOffByOne => &mut self.quorum_off_by_one,
            Bug::ReadFromLocalAcceptor => &mut self.read_from_local_acceptor,
            Bug::LeaseNoDriftMargin => &mut self.lease_no_drift_margin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_rejected() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>().unwrap(), bug);
            let mut b = Bugs::one(bug);
            assert!(*b.flag(bug));
            assert_eq!(Bugs::from_list(&[bug]), b);
        }
        let err = "quorum".parse::<Bug>().unwrap_err().to_string();
        assert!(
            err.contains("quorum-off-by-one, read-from-local-acceptor"),
            "{err}"
        );
    }
}
