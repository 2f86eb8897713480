//! Planted bugs: each switches one line of the protocol away from the correct code, beside it.
//!
//! | flag | mode | deviation | symptom the harness should catch |
//! |---|---|---|---|
//! | `no-fencing` | all | a backup accepts replication from any generation, not only its own or newer | a deposed primary (paused, or cut off) still gets writes accepted and acknowledged after a new primary took over: divergent `/log`s, lost writes |
//! | `renew-without-quorum` | lease | the primary extends its lease when it sends a renewal, not when a majority granted it | a primary cut off from the majority keeps serving reads: stale reads |
//! | `grant-while-leased` | lease | a node grants a new epoch while a lease it granted to another node is still live | two nodes hold valid leases at once: stale reads at the old holder |
//! | `lease-no-drift-margin` | lease | the read lease is timed on the wall clock, with no drift margin | stale reads when the holder's wall clock runs slow (`partition-leader-drift`) |
//! | `read-without-lease-check` | lease | the primary serves reads whenever it believes it is primary, lease or not | a primary cut off or paused past its lease serves stale reads |
//! | `stale-coordinator-accepted` | bully, ring | a COORDINATOR (claim) from a lower generation is obeyed | a node that led a minority comes back with an old generation and is obeyed beside the real primary: lost writes, stale reads even with `--quorum-gate` |
//! | `ring-token-lost-on-skip` | ring | the election token is dropped when the next node on the ring is dead, instead of skipping it | no leader emerges while a node is down: nothing succeeds (liveness) |

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    NoFencing,
    RenewWithoutQuorum,
    GrantWhileLeased,
    LeaseNoDriftMargin,
    ReadWithoutLeaseCheck,
    StaleCoordinatorAccepted,
    RingTokenLostOnSkip,
}

impl Bug {
    pub const ALL: [Bug; 7] = [
        Bug::NoFencing,
        Bug::RenewWithoutQuorum,
        Bug::GrantWhileLeased,
        Bug::LeaseNoDriftMargin,
        Bug::ReadWithoutLeaseCheck,
        Bug::StaleCoordinatorAccepted,
        Bug::RingTokenLostOnSkip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::NoFencing => "no-fencing",
            Bug::RenewWithoutQuorum => "renew-without-quorum",
            Bug::GrantWhileLeased => "grant-while-leased",
            Bug::LeaseNoDriftMargin => "lease-no-drift-margin",
            Bug::ReadWithoutLeaseCheck => "read-without-lease-check",
            Bug::StaleCoordinatorAccepted => "stale-coordinator-accepted",
            Bug::RingTokenLostOnSkip => "ring-token-lost-on-skip",
        }
    }

    pub fn symptom(self) -> &'static str {
        match self {
            Bug::NoFencing => "a deposed primary's writes accepted by backups: lost writes",
            Bug::RenewWithoutQuorum => "a cut-off primary keeps its lease: stale reads",
            Bug::GrantWhileLeased => "two valid leases at once: stale reads",
            Bug::LeaseNoDriftMargin => "stale reads when the holder's wall clock runs slow",
            Bug::ReadWithoutLeaseCheck => "reads past the lease: stale reads",
            Bug::StaleCoordinatorAccepted => "an old-generation coordinator obeyed: lost writes",
            Bug::RingTokenLostOnSkip => "no leader while a ring node is down: no progress",
        }
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

/// The active bugs, as flags the core reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    pub no_fencing: bool,
    pub renew_without_quorum: bool,
    pub grant_while_leased: bool,
    pub lease_no_drift_margin: bool,
    pub read_without_lease_check: bool,
    pub stale_coordinator_accepted: bool,
    pub ring_token_lost_on_skip: bool,
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
            Bug::NoFencing => &mut self.no_fencing,
            Bug::RenewWithoutQuorum => &mut self.renew_without_quorum,
            Bug::GrantWhileLeased => &mut self.grant_while_leased,
            Bug::LeaseNoDriftMargin => &mut self.lease_no_drift_margin,
            Bug::ReadWithoutLeaseCheck => &mut self.read_without_lease_check,
            Bug::StaleCoordinatorAccepted => &mut self.stale_coordinator_accepted,
            Bug::RingTokenLostOnSkip => &mut self.ring_token_lost_on_skip,
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
        }
        let err = "fencing".parse::<Bug>().unwrap_err().to_string();
        assert!(err.contains("no-fencing, renew-without-quorum"), "{err}");
    }
}
