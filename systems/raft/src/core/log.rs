//! The in-memory Raft log: entries after the last snapshot, plus the snapshot's index/term.

use super::types::{Entry, Index, Membership, Payload, SnapshotMeta, Term};

#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    snapshot: SnapshotMeta,
    /// entries[i].index == snapshot.index + 1 + i
    entries: Vec<Entry>,
}

impl RaftLog {
    pub fn new(snapshot: SnapshotMeta, entries: Vec<Entry>) -> RaftLog {
        let mut log = RaftLog {
            snapshot,
            entries: Vec::new(),
        };
        for e in entries {
            if e.index > log.snapshot.index {
                log.put(e);
            }
        }
        log
    }

    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    /// Term at `index`, if known (the snapshot's own index counts as known).
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries.get((index - self.snapshot.index - 1) as usize)
    }

    /// Entries in `[from, to]`, clipped to what is held; at most `max` of them.
    pub fn slice(&self, from: Index, to: Index, max: usize) -> Vec<Entry> {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        if from > to {
            return Vec::new();
        }
        let lo = (from - self.snapshot.index - 1) as usize;
        let hi = ((to - self.snapshot.index) as usize).min(lo.saturating_add(max));
        self.entries[lo..hi].to_vec()
    }

    /// Appends at `entry.index`, dropping anything at or after it first (conflict truncation).
    pub fn put(&mut self, entry: Entry) {
        debug_assert!(entry.index > self.snapshot.index);
        debug_assert!(entry.index <= self.last_index() + 1);
        let keep = (entry.index - self.snapshot.index - 1) as usize;
        self.entries.truncate(keep);
        self.entries.push(entry);
    }

    /// First index holding `term`, searching back from `index` (for fast backtracking).
    pub fn first_index_of_term(&self, index: Index, term: Term) -> Index {
        let mut i = index;
        while i > self.first_index() && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Last index whose term is `term`, if the log holds any.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    /// The membership in force at `index`: the last config entry at or before it.
    pub fn membership_at(&self, index: Index) -> (Index, Membership) {
        let upto = index.min(self.last_index());
        for e in self.entries.iter().rev() {
            if e.index > upto {
                continue;
            }
            if let Payload::Config { membership, .. } = &e.payload {
                return (e.index, membership.clone());
            }
        }
        (self.snapshot.index, self.snapshot.membership.clone())
    }

    /// Drops entries up to `meta.index` (already captured in a snapshot).
    pub fn compact(&mut self, meta: SnapshotMeta) {
        if meta.index <= self.snapshot.index {
            return;
        }
        let drop = ((meta.index - self.snapshot.index) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot = meta;
    }

    /// Installs a snapshot from the leader: keeps the suffix only if it agrees at the snapshot.
    pub fn install(&mut self, meta: SnapshotMeta) {
        if self.term(meta.index) == Some(meta.term) && meta.index <= self.last_index() {
            self.compact(meta);
        } else {
            self.entries.clear();
            self.snapshot = meta;
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: Index, term: Term) -> Entry {
        Entry::noop(index, term)
    }

    #[test]
    fn put_truncates_conflicts_and_compaction_keeps_terms() {
        let mut log = RaftLog::default();
        for (i, t) in [(1, 1), (2, 1), (3, 2), (4, 2)] {
            log.put(e(i, t));
        }
        log.put(e(3, 3));
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.term(3), Some(3));
        assert_eq!(log.first_index_of_term(2, 1), 1);
        log.compact(SnapshotMeta {
            index: 2,
            term: 1,
            membership: Membership::default(),
        });
        assert_eq!(log.term(2), Some(1));
        assert_eq!(log.term(1), None);
        assert_eq!(log.slice(1, 10, 10), vec![e(3, 3)]);
        assert_eq!(log.last_index_of_term(3), Some(3));
    }

    #[test]
    fn install_discards_a_disagreeing_suffix() {
        let mut log = RaftLog::new(SnapshotMeta::default(), vec![e(1, 1), e(2, 1), e(3, 1)]);
        let meta = SnapshotMeta {
            index: 2,
            term: 2,
            membership: Membership::default(),
        };
        log.install(meta);
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.last_term(), 2);
    }
}
