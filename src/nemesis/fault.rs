//! The typed fault vocabulary, and a realized fault as the history and schedule.json record
//! it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Loss,
    Pause,
    Kill,
    Clock,
    MsgDelay,
    MsgDup,
    MsgDrop,
    MsgHold,
    ConnReset,
    Bandwidth,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Partition,
        FaultKind::Loss,
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::Clock,
        FaultKind::MsgDelay,
        FaultKind::MsgDup,
        FaultKind::MsgDrop,
        FaultKind::MsgHold,
        FaultKind::ConnReset,
        FaultKind::Bandwidth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Loss => "loss",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Clock => "clock",
            FaultKind::MsgDelay => "msg-delay",
            FaultKind::MsgDup => "msg-dup",
            FaultKind::MsgDrop => "msg-drop",
            FaultKind::MsgHold => "msg-hold",
            FaultKind::ConnReset => "conn-reset",
            FaultKind::Bandwidth => "bandwidth",
        }
    }
}

/// Who a partition cuts off from whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrudgeSpec {
    /// First half of the nodes (by id order) against the rest, majority on the bigger side.
    Halves,
    /// Halves of a seeded shuffle.
    RandomHalves,
    /// One random node against the rest.
    One,
    /// The current leader against the rest.
    Leader,
    /// Each node hears only its nearest ring neighbours, a majority that differs per node.
    MajoritiesRing,
    /// Two halves joined only through one bridge node that hears both.
    Bridge,
    /// Random halves, one direction only: the first half stops hearing the second.
    OneWay,
    /// The link between the leader and one other node, both ways: that node campaigns while
    /// every other node still hears the leader (and holds its lease), and the leader does
    /// not hear the campaign.
    LeaderLink,
}

/// Which nodes a process, loss or clock fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSpec {
    /// One random node.
    One,
    /// The current leader (a random node if none is known).
    Leader,
    /// A random minority (floor((n-1)/2) nodes, at least one).
    Minority,
    /// A random majority.
    Majority,
    All,
    /// The nodes another lane's partition in force cut off from a majority (the smaller
    /// side of halves, an isolated node), so they crash or pause while cut off; a random
    /// minority when no partition is in force.
    CutOff,
}

/// How a clock fault moves the node's wall clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum ClockSpec {
    /// Jump by a seeded offset in [min, max] ms, held until the fault stops.
    Bump { offset_ms: [i64; 2] },
    /// Flip between +delta and 0 every period, like Jepsen's strobe.
    Strobe { delta_ms: i64, period_ms: u64 },
    /// Run fast (or slow, if negative) by `ms_per_s` ms every second.
    Drift { ms_per_s: f64 },
}

/// Which clock a clock fault moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockOf {
    /// The wall clock, through libfaketime (Jepsen's clock nemesis: monotonic stays real).
    #[default]
    Wall,
    /// The node's protocol clock, wall and monotonic together, through the file the
    /// descriptor's `clock_file_env` names (`OFFSET_MS RATE`): drift is a true rate, so
    /// timers and leases on the monotonic clock run fast or slow.
    Protocol,
}

/// Which directed peer links a message fault acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkSpec {
    /// Every directed link.
    All,
    /// Every link to or from the current leader.
    Leader,
    /// The leader's outgoing links only.
    LeaderOut,
    /// The leader's incoming links only.
    LeaderIn,
    /// Every link to or from one random node.
    One,
    /// Every link to or from a random minority.
    Minority,
    /// Random halves, one direction only: the first half's messages to the second.
    OneWay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Start,
    Stop,
}

/// One realized fault step: recorded in the history as a nemesis `info` event and in
/// schedule.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When it took effect (rules loaded, signal sent), nanoseconds since the run began.
    pub at_ns: u64,
    pub action: Action,
    pub fault: FaultKind,
    pub targets: Vec<String>,
    /// Kind-specific detail: "grudge", "percent", "offset_ms", "mode", "apply_us", "error".
    pub detail: Value,
}

impl FaultEvent {
    /// The history event's `f`: `start-partition`, `stop-kill`, ...
    pub fn f(&self) -> String {
        let a = match self.action {
            Action::Start => "start",
            Action::Stop => "stop",
        };
        format!("{a}-{}", self.fault.as_str())
    }

    /// The history event's `value`: {"targets":[...], ...detail}.
    pub fn history_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("targets".into(), json!(self.targets));
        if let Value::Object(d) = &self.detail {
            for (k, v) in d {
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Object(m)
    }

    /// One entry of schedule.json's `faults`: {"at_ns","action","fault","targets","detail"}.
    pub fn schedule_entry(&self) -> Value {
        serde_json::to_value(self).expect("fault event serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_once() {
        // exhaustive: a new kind does not compile here until it has a place in ALL
        let place = |k: FaultKind| match k {
            FaultKind::Partition => 0,
            FaultKind::Loss => 1,
            FaultKind::Pause => 2,
            FaultKind::Kill => 3,
            FaultKind::Clock => 4,
            FaultKind::MsgDelay => 5,
            FaultKind::MsgDup => 6,
            FaultKind::MsgDrop => 7,
            FaultKind::MsgHold => 8,
            FaultKind::ConnReset => 9,
            FaultKind::Bandwidth => 10,
        };
        for (i, k) in FaultKind::ALL.iter().enumerate() {
            assert_eq!(place(*k), i, "{k:?}");
            let v = serde_json::to_value(k).unwrap();
            assert_eq!(v, json!(k.as_str()));
        }
    }

    #[test]
    fn history_shapes() {
        let e = FaultEvent {
            at_ns: 5,
            action: Action::Start,
            fault: FaultKind::Partition,
            targets: vec!["n1".into()],
            detail: json!({"grudge": {"n1": ["n2"]}}),
        };
        assert_eq!(e.f(), "start-partition");
        assert_eq!(
            e.history_value(),
            json!({"targets": ["n1"], "grudge": {"n1": ["n2"]}})
        );
        assert_eq!(
            e.schedule_entry(),
            json!({"at_ns": 5, "action": "start", "fault": "partition", "targets": ["n1"],
                   "detail": {"grudge": {"n1": ["n2"]}}})
        );
    }
}
