//! At-most-once for refusals. A node remembers, for a while, the definite refusals it gave by
//! client request id (`not-leader`, `overloaded`, ...), and answers a copy of the same request
//! with the same refusal instead of running it. Without this a definite `not-leader` is false
//! whenever a copy of the request can still arrive after the node became leader: a forward the
//! network delivered twice, an intermediary's retry (at-most-once RPC, Birrell and Nelson 1984).
//! Requests that ran are deduplicated where they apply (`kv`); this covers the ones that never
//! reached the log.

use crate::node::Reply;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a refusal is remembered: far longer than any copy of a request stays in flight
/// (a forward's budget is the request timeout plus 500 ms), short enough that a client that
/// retries much later with the same id is served afresh.
pub const TTL: Duration = Duration::from_secs(30);
/// Most refusals remembered; the oldest go first.
pub const CAP: usize = 50_000;

#[derive(Debug, Default)]
pub struct Refusals {
    given: HashMap<String, (Instant, Reply)>,
    order: VecDeque<(Instant, String)>,
}

/// A refusal the op surely did not survive: an error answer marked `definite`.
fn is_definite_refusal(r: &Reply) -> bool {
    r.status >= 400 && r.body.get("definite").and_then(|d| d.as_bool()) == Some(true)
}

impl Refusals {
    /// The refusal given to `rid`, if one was given within `TTL` of `now`.
    pub fn get(&self, rid: &str, now: Instant) -> Option<Reply> {
        let (at, reply) = self.given.get(rid)?;
        (now.duration_since(*at) < TTL).then(|| reply.clone())
    }

    /// Remembers `reply` for `rid` if it is a definite refusal.
    pub fn remember(&mut self, rid: &str, reply: &Reply, now: Instant) {
        while let Some((at, old)) = self.order.front() {
            if now.duration_since(*at) < TTL && self.order.len() < CAP {
                break;
            }
            if self.given.get(old).is_some_and(|(t, _)| t == at) {
                self.given.remove(old);
            }
            self.order.pop_front();
        }
        if is_definite_refusal(reply) {
            self.given.insert(rid.to_string(), (now, reply.clone()));
            self.order.push_back((now, rid.to_string()));
        }
    }

    pub fn len(&self) -> usize {
        self.given.len()
    }

    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_definite_refusal_is_given_again_until_it_expires() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        let no = Reply::error(503, "not-leader", true);
        r.remember("p1:7", &no, t0);
        assert_eq!(r.get("p1:7", t0 + Duration::from_secs(1)), Some(no));
        assert_eq!(r.get("p1:7", t0 + TTL), None, "expired");
        assert_eq!(r.get("p1:8", t0), None);
    }

    #[test]
    fn answers_that_may_have_taken_effect_are_not_remembered() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        r.remember("a", &Reply::error(504, "timeout", false), t0);
        r.remember("b", &Reply::ok(json!({})), t0);
        assert!(r.is_empty());
    }

    #[test]
    fn old_entries_are_dropped_as_new_ones_come() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        let no = Reply::error(503, "not-leader", true);
        r.remember("old", &no, t0);
        r.remember("new", &no, t0 + TTL + Duration::from_secs(1));
        assert_eq!(r.len(), 1);
        assert!(r.get("new", t0 + TTL + Duration::from_secs(2)).is_some());
    }
}
