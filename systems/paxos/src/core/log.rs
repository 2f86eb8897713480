//! The slot log: per slot, the acceptor's vote and, once known, the chosen value; slots up to
//! the snapshot are compacted away (chosen, applied, votes dropped).

use super::types::{Accepted, Ballot, Entry, Payload, Slot, SnapshotMeta};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
struct SlotState {
    accepted: Option<(Ballot, Payload)>,
    chosen: Option<Payload>,
}

#[derive(Clone, Debug, Default)]
pub struct SlotLog {
    snapshot: SnapshotMeta,
    slots: BTreeMap<Slot, SlotState>,
}

impl SlotLog {
    pub fn new(snapshot: SnapshotMeta, accepted: Vec<Accepted>) -> SlotLog {
        let mut log = SlotLog {
            snapshot,
            slots: BTreeMap::new(),
        };
        for a in accepted {
            log.accept(a.slot, a.ballot, a.payload);
        }
        log
    }

    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// The highest slot holding a vote or a chosen value (or the snapshot's).
    pub fn last_slot(&self) -> Slot {
        self.slots
            .last_key_value()
            .map_or(self.snapshot.slot, |(s, _)| *s)
    }

    /// Records a vote; slots inside the snapshot are already decided and ignored.
    pub fn accept(&mut self, slot: Slot, ballot: Ballot, payload: Payload) {
        if slot > self.snapshot.slot {
            self.slots.entry(slot).or_default().accepted = Some((ballot, payload));
        }
    }

    pub fn accepted(&self, slot: Slot) -> Option<(&Ballot, &Payload)> {
        let (b, p) = self.slots.get(&slot)?.accepted.as_ref()?;
        Some((b, p))
    }

    /// Every vote in `from..=to`, as a promise reports them.
    pub fn votes(&self, from: Slot, to: Slot) -> Vec<Accepted> {
        if from > to {
            return Vec::new();
        }
        self.slots
            .range(from..=to)
            .filter_map(|(slot, st)| {
                let (ballot, payload) = st.accepted.clone()?;
                Some(Accepted {
                    slot: *slot,
                    ballot,
                    payload,
                })
            })
            .collect()
    }

    pub fn choose(&mut self, slot: Slot, payload: Payload) {
        if slot > self.snapshot.slot {
            self.slots.entry(slot).or_default().chosen = Some(payload);
        }
    }

    pub fn chosen(&self, slot: Slot) -> Option<&Payload> {
        self.slots.get(&slot)?.chosen.as_ref()
    }

    /// Chosen values in `from..=to` up to the first slot not known to be chosen; at most `max`.
    pub fn chosen_run(&self, from: Slot, to: Slot, max: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut slot = from.max(self.snapshot.slot + 1);
        while slot <= to && out.len() < max {
            let Some(payload) = self.chosen(slot) else {
                break;
            };
            out.push(Entry {
                slot,
                payload: payload.clone(),
            });
            slot += 1;
        }
        out
    }

    /// Drops everything up to `meta.slot` (captured in a snapshot, or installed from one).
    pub fn compact(&mut self, meta: SnapshotMeta) {
        if meta.slot <= self.snapshot.slot {
            return;
        }
        self.slots = self.slots.split_off(&(meta.slot + 1));
        self.snapshot = meta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(id: &str) -> Payload {
        Payload::Data {
            id: id.into(),
            data: serde_json::json!(id),
        }
    }

    #[test]
    fn votes_chosen_runs_and_compaction() {
        let b = Ballot::new(1, "n1");
        let mut log = SlotLog::new(
            SnapshotMeta::default(),
            vec![Accepted {
                slot: 2,
                ballot: b.clone(),
                payload: data("a"),
            }],
        );
        log.accept(4, b.clone(), Payload::Noop);
        assert_eq!(log.last_slot(), 4);
        assert_eq!(log.votes(3, 9).len(), 1);
        assert_eq!(log.votes(2, 2)[0].payload, data("a"));
        log.choose(1, data("x"));
        log.choose(2, data("a"));
        log.choose(4, Payload::Noop);
        let run = log.chosen_run(1, 9, 10);
        assert_eq!(run.iter().map(|e| e.slot).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(log.chosen_run(1, 9, 1).len(), 1);
        log.compact(SnapshotMeta { slot: 2 });
        assert_eq!(log.accepted(2), None);
        assert_eq!(log.chosen(4), Some(&Payload::Noop));
        log.accept(1, b, data("late"));
        assert_eq!(
            log.votes(0, 9).len(),
            1,
            "votes inside the snapshot are ignored"
        );
        assert_eq!(log.chosen_run(1, 9, 9), vec![], "slot 3 is not chosen");
    }
}
