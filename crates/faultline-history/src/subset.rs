//! Sub-histories: a history with some of its operations (both their events) and, if asked,
//! its named-process events, re-indexed densely. Every rule of a history survives removal
//! (pairing, one op in flight per process, retirement after `info`, times in order), so a
//! sub-history of a valid history is valid by construction and is not re-validated.

use super::operation::History;

impl History {
    /// The sub-history holding the operations whose ids are in `keep` (any order) and, when
    /// `annotations` is true, every named-process event (faults, probes).
    pub fn restrict(&self, keep: &[usize], annotations: bool) -> History {
        let mut kept_op = vec![false; self.operations.len()];
        for &id in keep {
            if let Some(k) = kept_op.get_mut(id) {
                *k = true;
            }
        }
        // event index -> kept?
        let mut kept_event = vec![false; self.events.len()];
        for op in self.operations.iter().filter(|o| kept_op[o.id]) {
            kept_event[op.call as usize] = true;
            if let Some(r) = op.ret {
                kept_event[r as usize] = true;
            }
        }
        if annotations {
            for &i in &self.annotations {
                kept_event[i] = true;
            }
        }
        let mut new_index = vec![u64::MAX; self.events.len()];
        let mut events = Vec::new();
        let mut out_annotations = Vec::new();
        let named: std::collections::HashSet<usize> = self.annotations.iter().copied().collect();
        for (i, e) in self.events.iter().enumerate() {
            if !kept_event[i] {
                continue;
            }
            new_index[i] = events.len() as u64;
            if named.contains(&i) {
                out_annotations.push(events.len());
            }
            let mut e = e.clone();
            e.index = events.len() as u64;
            events.push(e);
        }
        let operations = self
            .operations
            .iter()
            .filter(|o| kept_op[o.id])
            .enumerate()
            .map(|(id, o)| {
                let mut o = o.clone();
                o.id = id;
                o.call = new_index[o.call as usize];
                o.ret = o.ret.map(|r| new_index[r as usize]);
                o
            })
            .collect();
        History {
            events,
            operations,
            annotations: out_annotations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType::{Info, Invoke, Ok};
    use serde_json::{Value, json};
    use std::path::Path;

    #[test]
    fn a_restricted_history_is_the_one_its_events_would_read_as() {
        let h = crate::testkit::client_history(
            Some("k"),
            &[
                (1, Invoke, "write", json!(1)),
                (2, Invoke, "read", Value::Null),
                (1, Ok, "write", json!(1)),
                (3, Invoke, "write", json!(2)),
                (2, Ok, "read", json!(1)),
                (3, Info, "write", json!(2)),
            ],
        );
        let sub = h.restrict(&[2, 1], false);
        let reread = History::from_events(sub.events.clone(), Path::new("sub"), None).unwrap();
        assert_eq!(sub, reread);
        assert_eq!(sub.operations.len(), 2);
        assert_eq!(sub.operations[0].f, "read");
        assert_eq!(
            (sub.operations[0].call, sub.operations[0].ret),
            (0, Some(2))
        );
        assert_eq!(
            (sub.operations[1].call, sub.operations[1].ret),
            (1, Some(3))
        );
        assert!(h.restrict(&[], false).events.is_empty());
    }
}
