//! Raft's WAL records (framing, fsync and torn-tail truncation are the kit's) and how they
//! replay: term/vote, entries (an entry at an index the log already holds replaces it and
//! everything after), and the base a rewrite starts from.

use crate::core::{Entry, HardState, Index, Term};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Record {
    HardState(HardState),
    Entry(Entry),
    /// The log starts after this snapshot position (written first by a rewrite).
    Base {
        index: Index,
        term: Term,
    },
}

/// The durable Raft state the records describe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovered {
    pub hard_state: HardState,
    pub base: Index,
    pub entries: Vec<Entry>,
    pub records: usize,
}

/// Replays records in order; a gap in the entries is corruption, named by index.
pub fn replay(records: Vec<Record>) -> Result<Recovered, String> {
    let mut rec = Recovered {
        records: records.len(),
        ..Recovered::default()
    };
    for r in records {
        match r {
            Record::HardState(hs) => rec.hard_state = hs,
            Record::Base { index, .. } => {
                rec.base = index;
                rec.entries.retain(|e| e.index > index);
            }
            Record::Entry(e) => {
                if e.index <= rec.base {
                    continue;
                }
                let expected = rec.entries.last().map_or(rec.base + 1, |l| l.index + 1);
                if e.index > expected {
                    return Err(format!("entry {} follows entry {}", e.index, expected - 1));
                }
                rec.entries.retain(|x| x.index < e.index);
                rec.entries.push(e);
            }
        }
    }
    Ok(rec)
}

/// The records a rewritten WAL holds: term/vote, the base, the entries after it.
pub fn rewrite_records(hs: &HardState, base: (Index, Term), entries: &[Entry]) -> Vec<Record> {
    let mut out = vec![
        Record::HardState(hs.clone()),
        Record::Base {
            index: base.0,
            term: base.1,
        },
    ];
    out.extend(
        entries
            .iter()
            .filter(|e| e.index > base.0)
            .cloned()
            .map(Record::Entry),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_node::wal::Wal;
    use std::io::Write;

    fn e(index: Index, term: Term) -> Entry {
        Entry::noop(index, term)
    }

    #[test]
    fn replay_overwrites_and_torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, rec) = Wal::<Record>::open(dir.path()).unwrap();
            assert_eq!(replay(rec.records).unwrap(), Recovered::default());
            wal.append(&Record::HardState(HardState {
                term: 2,
                vote: Some("n1".into()),
            }));
            for r in [e(1, 1), e(2, 1), e(3, 1), e(2, 2)] {
                wal.append(&Record::Entry(r));
            }
            wal.sync().unwrap();
        }
        let path = dir.path().join("wal.log");
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
        drop(f);
        let (_, found) = Wal::<Record>::open(dir.path()).unwrap();
        assert_eq!(found.truncated, Some((good_len, 9)));
        let rec = replay(found.records).unwrap();
        assert_eq!(rec.hard_state.term, 2);
        assert_eq!(rec.entries, vec![e(1, 1), e(2, 2)]);
    }

    #[test]
    fn a_rewrite_sets_a_base_and_a_gap_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::<Record>::open(dir.path()).unwrap();
        wal.rewrite(&rewrite_records(
            &HardState::default(),
            (5, 1),
            &[e(5, 1), e(6, 1)],
        ))
        .unwrap();
        wal.append(&Record::Entry(e(7, 2)));
        wal.sync().unwrap();
        let (_, found) = Wal::<Record>::open(dir.path()).unwrap();
        let rec = replay(found.records).unwrap();
        assert_eq!(rec.base, 5);
        assert_eq!(rec.entries, vec![e(6, 1), e(7, 2)]);
        let gap = replay(vec![Record::Entry(e(1, 1)), Record::Entry(e(3, 1))]).unwrap_err();
        assert!(gap.contains("entry 3 follows entry 1"), "{gap}");
    }
}
