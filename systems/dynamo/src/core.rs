//! The pure core of a leaderless quorum store: one replica's storage (`Store`) and one
//! coordinated client request (`Coordinator`), as state machines that take peer answers and
//! return the messages to send and the client's answer. No IO, no clock: the shell passes
//! the LWW timestamp in and drives the timeouts.
//!
//! Modes:
//! - **ABD** (N, R, W with R + W > N): a write first reads a quorum's stamps and writes
//!   `(max ts + 1, me)`; a read writes the newest value it saw back to a write quorum before
//!   answering. Linearizable for read and write.
//! - **LWW**: a write is stamped with the coordinator's wall clock (so clock faults matter)
//!   and sent to the N replicas, acknowledged after W; a read answers the newest of R replies
//!   and repairs stale replicas asynchronously (after answering, late replies included).
//! - **Vector clocks** (sets): an add reads R replicas' sibling sets, and writes the union of
//!   their values plus the element under a clock that descends from every sibling it read;
//!   concurrent adds stay siblings, a read answers the union of the siblings. The clock's
//!   actor is the coordinator's incarnation (`n1.<random>`), so a restarted node never
//!   reissues a clock.
//!
//! Replicas keep the entry with the greatest stamp `(ts, writer)` (ABD, LWW), or every sibling
//! no other descends from (vector clocks).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::merkle::{self, Tree};
use crate::version::{self, Resolution, Version};

/// A version's order: timestamp (ABD: a counter; LWW: wall-clock µs-ish), then the writer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub ts: u64,
    pub writer: String,
}

/// One key's value at a replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub stamp: Stamp,
    pub value: Value,
}

/// An LWW stamp from the coordinator's wall clock: ms * 1000 plus a per-node sequence (mod
/// 1000), so one node's writes within a millisecond still differ.
pub fn lww_ts(wall_ms: i64, seq: u64) -> u64 {
    (wall_ms.max(0) as u64) * 1000 + seq % 1000
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Abd,
    Lww,
    Vclock,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Abd => "abd",
            Mode::Lww => "lww",
            Mode::Vclock => "vclock",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "abd" => Ok(Mode::Abd),
            "lww" => Ok(Mode::Lww),
            "vclock" => Ok(Mode::Vclock),
            o => Err(format!("--mode: {o:?} is not abd, lww or vclock")),
        }
    }
}

/// What an LWW read does about the stale replicas it met (ABD always writes back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRepair {
    /// Nothing: stale replicas wait for anti-entropy.
    Off,
    /// Answer at R, then repair stale replicas (late repliers too) in the background.
    Async,
    /// Repair the stale repliers and answer only once R replicas hold the value read
    /// (Cassandra's blocking read repair): a later quorum read cannot go back.
    Blocking,
}

impl ReadRepair {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadRepair::Off => "off",
            ReadRepair::Async => "async",
            ReadRepair::Blocking => "blocking",
        }
    }
}

impl std::str::FromStr for ReadRepair {
    type Err = String;
    fn from_str(s: &str) -> Result<ReadRepair, String> {
        match s {
            "off" => Ok(ReadRepair::Off),
            "async" => Ok(ReadRepair::Async),
            "blocking" => Ok(ReadRepair::Blocking),
            o => Err(format!(
                "--read-repair: {o:?} is not off, async or blocking"
            )),
        }
    }
}

/// The planted bugs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// ABD reads answer without writing back: a value one replica holds can be read, then
    /// not read by a later read (new-old inversion, not linearizable).
    AbdSkipWriteback,
    /// The coordinator's own replica's reply counts twice toward any quorum (R or W): a
    /// node cut off from the others still "reaches" a quorum of 2 alone.
    AcksCountedTwice,
    /// A replica stores a read-repair write without comparing stamps, so a repair carrying an
    /// older value clobbers a newer acknowledged one.
    ReadRepairOverwritesNewer,
    /// Merging two or more concurrent siblings loses one (vector clocks).
    VclockMergeDropsSibling,
    /// Anti-entropy's Merkle comparison skips the last key range: replicas that diverged
    /// there (a write missed during a partition, a key no read repairs) never converge.
    MerkleSkipsLastRange,
    /// Hints (writes a stand-in holds for an unreachable home replica) live only in memory:
    /// a stand-in that restarts before handing them off loses them, and a write acknowledged
    /// only by stand-ins is gone.
    HintsDroppedOnRestart,
}

impl Bug {
    pub const ALL: [Bug; 6] = [
        Bug::AbdSkipWriteback,
        Bug::AcksCountedTwice,
        Bug::ReadRepairOverwritesNewer,
        Bug::VclockMergeDropsSibling,
        Bug::MerkleSkipsLastRange,
        Bug::HintsDroppedOnRestart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::AbdSkipWriteback => "abd-skip-writeback",
            Bug::AcksCountedTwice => "acks-counted-twice",
            Bug::ReadRepairOverwritesNewer => "read-repair-overwrites-newer",
            Bug::VclockMergeDropsSibling => "vclock-merge-drops-sibling",
            Bug::MerkleSkipsLastRange => "merkle-skips-last-range",
            Bug::HintsDroppedOnRestart => "hints-dropped-on-restart",
        }
    }

    pub fn symptom(self) -> &'static str {
        match self {
            Bug::AbdSkipWriteback => "a read sees a value a later read does not (ABD)",
            Bug::AcksCountedTwice => "writes acknowledged by one replica alone are lost",
            Bug::ReadRepairOverwritesNewer => "a late repair rolls back an acknowledged write",
            Bug::VclockMergeDropsSibling => "an acknowledged add vanishes from the sibling set",
            Bug::MerkleSkipsLastRange => "replicas of keys in the last range never converge",
            Bug::HintsDroppedOnRestart => "a write only stand-ins acknowledged vanishes",
        }
    }
}

impl std::str::FromStr for Bug {
    type Err = String;
    fn from_str(s: &str) -> Result<Bug, String> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug {s:?} (known: {})", names.join(", "))
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    pub skip_writeback: bool,
    pub acks_twice: bool,
    pub repair_overwrites: bool,
    pub drop_sibling: bool,
    pub merkle_skip_last: bool,
    pub hints_dropped: bool,
}

impl Bugs {
    pub fn from_list(bugs: &[Bug]) -> Bugs {
        Bugs {
            skip_writeback: bugs.contains(&Bug::AbdSkipWriteback),
            acks_twice: bugs.contains(&Bug::AcksCountedTwice),
            repair_overwrites: bugs.contains(&Bug::ReadRepairOverwritesNewer),
            drop_sibling: bugs.contains(&Bug::VclockMergeDropsSibling),
            merkle_skip_last: bugs.contains(&Bug::MerkleSkipsLastRange),
            hints_dropped: bugs.contains(&Bug::HintsDroppedOnRestart),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub me: String,
    /// The vector-clock actor: this node's incarnation.
    pub actor: String,
    pub mode: Mode,
    pub read_repair: ReadRepair,
    pub n: usize,
    pub r: usize,
    pub w: usize,
    pub bugs: Bugs,
}

/// Peer requests, tagged by `"type"` (the peer proxy and message traces read it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Msg {
    Get {
        key: String,
    },
    Put {
        key: String,
        entry: Entry,
        /// A read repair (LWW) rather than a write or an ABD write-back.
        #[serde(default)]
        repair: bool,
        /// Sloppy quorum: the receiver stands in for this unreachable home replica and keeps
        /// the entry as a hint to hand off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// Anti-entropy: the sender's entries (and sibling sets) for keys the receiver replicates.
    Sync {
        entries: Vec<(String, Entry)>,
        #[serde(default)]
        siblings: Vec<(String, Vec<Version>)>,
    },
    /// Anti-entropy: the sender's Merkle trees over the keys it holds that the receiver
    /// replicates; answered by the differing segments' entries (`Answer::Diff`).
    Digest {
        from: String,
        tree: Tree,
    },
    /// Vector clocks: the replica's siblings of `key`.
    SibGet {
        key: String,
    },
    /// Vector clocks: merge `versions` into the replica's siblings of `key`.
    SibPut {
        key: String,
        versions: Vec<Version>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
}

/// Peer answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Answer {
    Got {
        entry: Option<Entry>,
    },
    /// `applied`: the entry replaced what the replica held (false: it held a newer one).
    Stored {
        applied: bool,
    },
    Synced {
        applied: usize,
    },
    /// The segments where the trees differ, and the receiver's entries there (the sender
    /// merges them and sends its own entries of those segments back as a `Sync`).
    Diff {
        segments: Vec<(u32, u32)>,
        entries: Vec<(String, Entry)>,
        siblings: Vec<(String, Vec<Version>)>,
    },
    Sibs {
        versions: Vec<Version>,
    },
}

/// What a replica logs (and replays in order on recovery): an entry that replaced the held
/// one, or a key's whole sibling set after a merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Entry(String, Entry),
    Siblings(String, Vec<Version>),
    /// A hint held for `home` (its whole value after the merge).
    Hint {
        home: String,
        key: String,
        held: Held,
    },
    /// `held` was handed off to `home`: the hint goes unless it has grown since.
    HintDone {
        home: String,
        key: String,
        held: Held,
    },
}

/// What a replica (or a hint) holds for one key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Held {
    Entry(Entry),
    Siblings(Vec<Version>),
}

/// The union of the siblings' values (each a list of elements), sorted and deduplicated.
pub fn union(versions: &[Version]) -> Vec<Value> {
    let mut all: Vec<Value> = versions
        .iter()
        .flat_map(|v| v.value.as_array().cloned().unwrap_or_default())
        .collect();
    all.sort_by_key(Value::to_string);
    all.dedup();
    all
}

/// One replica's storage: the newest entry per key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Store {
    map: BTreeMap<String, Entry>,
    sibs: BTreeMap<String, Vec<Version>>,
    /// Hints held for unreachable home replicas: (home, key) -> what to hand off.
    hints: BTreeMap<(String, String), Held>,
}

impl Store {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.map.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.map.iter()
    }

    pub fn siblings(&self, key: &str) -> Option<&Vec<Version>> {
        self.sibs.get(key)
    }

    pub fn iter_siblings(&self) -> impl Iterator<Item = (&String, &Vec<Version>)> {
        self.sibs.iter()
    }

    /// The Merkle trees over the keys `shared` admits (those a peer replicates too).
    pub fn tree(&self, shared: impl Fn(&str) -> bool) -> Tree {
        let entries = self
            .map
            .iter()
            .filter(|(k, _)| shared(k))
            .map(|(k, e)| (k.as_str(), merkle::digest(e)));
        let sibs = self
            .sibs
            .iter()
            .filter(|(k, _)| shared(k))
            .map(|(k, v)| (k.as_str(), merkle::digest(v)));
        Tree::build(entries.chain(sibs))
    }

    /// What is held for the keys `shared` admits in `segments` (entries, sibling sets).
    #[allow(clippy::type_complexity)]
    pub fn in_segments(
        &self,
        segments: &[(u32, u32)],
        shared: impl Fn(&str) -> bool,
    ) -> (Vec<(String, Entry)>, Vec<(String, Vec<Version>)>) {
        let wanted = |k: &str| shared(k) && segments.contains(&merkle::locate(k));
        (
            self.map
                .iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect(),
            self.sibs
                .iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Merges `incoming` into `key`'s siblings; the new set if it changed.
    fn merge_siblings(&mut self, key: &str, incoming: &[Version], drop: bool) -> Option<Record> {
        let held = self.sibs.get(key).cloned().unwrap_or_default();
        let merged = version::merge(Resolution::VectorClocks, &held, incoming, drop);
        if merged == held {
            return None;
        }
        self.sibs.insert(key.to_string(), merged.clone());
        Some(Record::Siblings(key.to_string(), merged))
    }

    /// Replays one WAL record; the planted bug forgets hints.
    pub fn replay(&mut self, r: Record, bugs: &Bugs) {
        match r {
            Record::Entry(k, e) => {
                self.put(&k, e, true);
            }
            Record::Siblings(k, v) => {
                self.sibs.insert(k, v);
            }
            Record::Hint { .. } | Record::HintDone { .. } if bugs.hints_dropped => {}
            Record::Hint { home, key, held } => {
                self.hints.insert((home, key), held);
            }
            Record::HintDone { home, key, held } => {
                self.hint_delivered(&home, &key, &held);
            }
        }
    }

    /// Merges `incoming` into the hint for (`home`, `key`); the record if it changed.
    fn hold_hint(&mut self, home: String, key: String, incoming: Held) -> Option<Record> {
        let slot = (home, key);
        let merged = match (self.hints.get(&slot), incoming) {
            (None, h) => h,
            (Some(Held::Entry(cur)), Held::Entry(e)) if cur.stamp >= e.stamp => return None,
            (Some(Held::Siblings(cur)), Held::Siblings(v)) => {
                let m = version::merge(Resolution::VectorClocks, cur, &v, false);
                if &m == cur {
                    return None;
                }
                Held::Siblings(m)
            }
            (_, h) => h,
        };
        self.hints.insert(slot.clone(), merged.clone());
        Some(Record::Hint {
            home: slot.0,
            key: slot.1,
            held: merged,
        })
    }

    /// The hints to hand off: (home, key, what is held), in order.
    pub fn hints(&self) -> Vec<(String, String, Held)> {
        self.hints
            .iter()
            .map(|((h, k), v)| (h.clone(), k.clone(), v.clone()))
            .collect()
    }

    /// `home` stored `held`: the hint goes, unless it has grown since it was sent. The
    /// record to log, if it went.
    pub fn hint_delivered(&mut self, home: &str, key: &str, held: &Held) -> Option<Record> {
        let slot = (home.to_string(), key.to_string());
        if self.hints.get(&slot) != Some(held) {
            return None;
        }
        self.hints.remove(&slot);
        Some(Record::HintDone {
            home: slot.0,
            key: slot.1,
            held: held.clone(),
        })
    }

    /// The newest entry held for `key`, its hints included (a stand-in answers reads).
    fn read(&self, key: &str) -> Option<Entry> {
        let hinted = self.hints.iter().filter_map(|((_, k), h)| match h {
            Held::Entry(e) if k == key => Some(e),
            _ => None,
        });
        self.map
            .get(key)
            .into_iter()
            .chain(hinted)
            .max_by(|a, b| a.stamp.cmp(&b.stamp))
            .cloned()
    }

    /// The siblings held for `key`, its hints merged in.
    fn read_siblings(&self, key: &str) -> Vec<Version> {
        let mut out = self.sibs.get(key).cloned().unwrap_or_default();
        for ((_, k), h) in &self.hints {
            if let (true, Held::Siblings(v)) = (k == key, h) {
                out = version::merge(Resolution::VectorClocks, &out, v, false);
            }
        }
        out
    }

    /// Stores `entry` if its stamp is greater than the held one's, or unconditionally with
    /// `force` (WAL replay; the planted repair bug). Returns whether the state changed.
    pub fn put(&mut self, key: &str, entry: Entry, force: bool) -> bool {
        match self.map.get(key) {
            Some(cur) if cur == &entry => false,
            Some(cur) if !force && cur.stamp >= entry.stamp => false,
            _ => {
                self.map.insert(key.to_string(), entry);
                true
            }
        }
    }

    /// Answers one peer message; also returns the entries it stored, which must be durable
    /// before the answer leaves. `shared(peer, key)`: whether `peer` replicates `key` too.
    pub fn handle(
        &mut self,
        msg: Msg,
        bugs: &Bugs,
        shared: &dyn Fn(&str, &str) -> bool,
    ) -> (Answer, Vec<Record>) {
        match msg {
            Msg::Digest { from, tree } => {
                let ours = self.tree(|k| shared(&from, k));
                let segments = tree.diff(&ours, bugs.merkle_skip_last);
                let (entries, siblings) = self.in_segments(&segments, |k| shared(&from, k));
                (
                    Answer::Diff {
                        segments,
                        entries,
                        siblings,
                    },
                    vec![],
                )
            }
            Msg::Get { key } => (
                Answer::Got {
                    entry: self.read(&key),
                },
                vec![],
            ),
            Msg::Put {
                key,
                entry,
                hint: Some(home),
                ..
            } => {
                let r = self.hold_hint(home, key, Held::Entry(entry));
                (
                    Answer::Stored {
                        applied: r.is_some(),
                    },
                    r.into_iter().collect(),
                )
            }
            Msg::SibPut {
                key,
                versions,
                hint: Some(home),
            } => {
                let r = self.hold_hint(home, key, Held::Siblings(versions));
                (
                    Answer::Stored {
                        applied: r.is_some(),
                    },
                    r.into_iter().collect(),
                )
            }
            Msg::Put {
                key, entry, repair, ..
            } => {
                let force = repair && bugs.repair_overwrites;
                let applied = self.put(&key, entry.clone(), force);
                let stored = if applied {
                    vec![Record::Entry(key, entry)]
                } else {
                    vec![]
                };
                (Answer::Stored { applied }, stored)
            }
            Msg::Sync { entries, siblings } => {
                let mut stored: Vec<Record> = entries
                    .into_iter()
                    .filter(|(k, e)| self.put(k, e.clone(), false))
                    .map(|(k, e)| Record::Entry(k, e))
                    .collect();
                for (k, vs) in siblings {
                    stored.extend(self.merge_siblings(&k, &vs, bugs.drop_sibling));
                }
                (
                    Answer::Synced {
                        applied: stored.len(),
                    },
                    stored,
                )
            }
            Msg::SibGet { key } => (
                Answer::Sibs {
                    versions: self.read_siblings(&key),
                },
                vec![],
            ),
            Msg::SibPut { key, versions, .. } => {
                let r = self.merge_siblings(&key, &versions, bugs.drop_sibling);
                (
                    Answer::Stored {
                        applied: r.is_some(),
                    },
                    r.into_iter().collect(),
                )
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: Value,
    },
    /// Vector clocks: add `element` to the set at `key`.
    Add {
        key: String,
        element: Value,
    },
}

impl Request {
    pub fn key(&self) -> &str {
        match self {
            Request::Read { key } | Request::Write { key, .. } | Request::Add { key, .. } => key,
        }
    }
}

/// A client's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Done {
    Read(Value),
    Written,
    /// Definitely no effect (no quorum answered the first phase).
    Unavailable,
    /// May or may not have taken effect (a write's store phase missed its quorum).
    Indefinite,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Send { to: String, msg: Msg },
    Finish(Done),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Collecting R stamps (ABD reads and writes, LWW reads).
    Query,
    /// Waiting for W acknowledgements of `chosen` (writes, ABD write-backs).
    Store,
    /// LWW read answered; late replies still get repaired.
    Repair,
    Finished,
}

/// One client request, from the node that coordinates it.
#[derive(Clone, Debug)]
pub struct Coordinator {
    cfg: Config,
    key: String,
    req: Request,
    targets: Vec<String>,
    /// Sloppy quorum: stand-in -> the unreachable home replica it holds hints for.
    stand_in_for: BTreeMap<String, String>,
    phase: Phase,
    replies: BTreeMap<String, Option<Entry>>,
    sib_replies: BTreeMap<String, Vec<Version>>,
    chosen: Option<Entry>,
    acks: usize,
    ackers: BTreeSet<String>,
    /// Acknowledgements the store phase waits for: W, or R for a blocking read repair.
    need: usize,
    /// Vector clocks: the last version this actor issued for the key (see `include_own`),
    /// and the one this add issues.
    own: Option<Version>,
    issued: Option<Version>,
    seq: u64,
}

impl Coordinator {
    /// Starts `req` against `targets` (the key's preference list, or a sloppy quorum's
    /// nodes, each with the home replica it stands in for); `lww_ts` stamps an LWW
    /// write (ignored otherwise); `seq` numbers this coordinator's requests, so two ABD writes
    /// it coordinates at once never share a stamp.
    pub fn start(
        cfg: &Config,
        targets: Vec<(String, Option<String>)>,
        req: Request,
        lww_ts: u64,
        seq: u64,
    ) -> (Coordinator, Vec<Action>) {
        let stand_in_for = targets
            .iter()
            .filter_map(|(n, h)| h.clone().map(|h| (n.clone(), h)))
            .collect();
        let targets = targets.into_iter().map(|(n, _)| n).collect();
        let key = req.key().to_string();
        let mut c = Coordinator {
            cfg: cfg.clone(),
            key,
            req,
            targets,
            stand_in_for,
            phase: Phase::Query,
            replies: BTreeMap::new(),
            sib_replies: BTreeMap::new(),
            chosen: None,
            acks: 0,
            ackers: BTreeSet::new(),
            need: cfg.w,
            own: None,
            issued: None,
            seq,
        };
        let actions = match (&c.req, c.cfg.mode) {
            (Request::Write { value, .. }, Mode::Lww) => {
                let entry = Entry {
                    stamp: Stamp {
                        ts: lww_ts,
                        writer: c.cfg.me.clone(),
                    },
                    value: value.clone(),
                };
                c.store(entry)
            }
            (_, Mode::Vclock) => {
                let key = c.key.clone();
                c.broadcast(|_| Msg::SibGet { key: key.clone() })
            }
            _ => {
                let key = c.key.clone();
                c.broadcast(|_| Msg::Get { key: key.clone() })
            }
        };
        (c, actions)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Vector clocks: the version this actor last issued for the key. A new version's clock
    /// claims everything its actor issued before (a counter of n covers 1..n), so it must
    /// contain that content even when the read quorum missed it (a sloppy quorum's
    /// stand-ins, a replica not yet repaired); otherwise the new version supersedes the old
    /// one without its elements, and acknowledged adds vanish at the next merge.
    pub fn include_own(&mut self, last: Version) {
        self.own = Some(last);
    }

    /// Vector clocks: the version this add sent to be stored, once it has.
    pub fn issued(&self) -> Option<&Version> {
        self.issued.as_ref()
    }

    /// One message per target; `msg` gets the home replica a stand-in holds hints for.
    fn broadcast(&self, msg: impl Fn(Option<String>) -> Msg) -> Vec<Action> {
        self.targets
            .iter()
            .map(|t| Action::Send {
                to: t.clone(),
                msg: msg(self.stand_in_for.get(t).cloned()),
            })
            .collect()
    }

    fn store(&mut self, entry: Entry) -> Vec<Action> {
        self.phase = Phase::Store;
        self.chosen = Some(entry.clone());
        let key = self.key.clone();
        self.broadcast(|hint| Msg::Put {
            key: key.clone(),
            entry: entry.clone(),
            repair: false,
            hint,
        })
    }

    /// What one reply counts toward a quorum (the planted bug counts our own twice).
    fn weight(&self, from: &str) -> usize {
        if self.cfg.bugs.acks_twice && from == self.cfg.me {
            2
        } else {
            1
        }
    }

    fn newest(&self) -> Option<Entry> {
        self.replies
            .values()
            .flatten()
            .max_by(|a, b| a.stamp.cmp(&b.stamp))
            .cloned()
    }

    fn repair_msg(&self, to: &str, entry: &Entry) -> Action {
        Action::Send {
            to: to.to_string(),
            msg: Msg::Put {
                key: self.key.clone(),
                entry: entry.clone(),
                repair: true,
                hint: self.stand_in_for.get(to).cloned(),
            },
        }
    }

    /// A peer's answer (ours too: the local replica answers like any other).
    pub fn on_answer(&mut self, from: &str, answer: Answer) -> Vec<Action> {
        if !self.targets.iter().any(|t| t == from) {
            return vec![];
        }
        match (self.phase, answer) {
            (Phase::Query, Answer::Got { entry }) => {
                if self.replies.insert(from.to_string(), entry).is_some() {
                    return vec![];
                }
                let counted: usize = self.replies.keys().map(|n| self.weight(n)).sum();
                if counted < self.cfg.r {
                    return vec![];
                }
                self.decide()
            }
            (Phase::Query, Answer::Sibs { versions }) => {
                if self
                    .sib_replies
                    .insert(from.to_string(), versions)
                    .is_some()
                {
                    return vec![];
                }
                let counted: usize = self.sib_replies.keys().map(|n| self.weight(n)).sum();
                if counted < self.cfg.r {
                    return vec![];
                }
                self.decide_siblings()
            }
            (Phase::Repair, Answer::Got { entry }) => {
                if self.replies.contains_key(from) {
                    return vec![];
                }
                self.replies.insert(from.to_string(), entry.clone());
                let chosen = self.chosen.clone();
                match chosen {
                    Some(c) if entry.as_ref().is_none_or(|e| e.stamp < c.stamp) => {
                        vec![self.repair_msg(from, &c)]
                    }
                    _ => vec![],
                }
            }
            (Phase::Store, Answer::Stored { .. }) => {
                if !self.ackers.insert(from.to_string()) {
                    return vec![];
                }
                self.acks += self.weight(from);
                if self.acks < self.need {
                    return vec![];
                }
                self.phase = Phase::Finished;
                vec![Action::Finish(match &self.req {
                    Request::Write { .. } | Request::Add { .. } => Done::Written,
                    Request::Read { .. } => Done::Read(
                        self.chosen
                            .as_ref()
                            .map_or(Value::Null, |e| e.value.clone()),
                    ),
                })]
            }
            _ => vec![],
        }
    }

    /// Vector clocks: a read quorum's sibling sets answered.
    fn decide_siblings(&mut self) -> Vec<Action> {
        let mut merged: Vec<Version> = self.own.iter().cloned().collect();
        for vs in self.sib_replies.values() {
            merged = version::merge(
                Resolution::VectorClocks,
                &merged,
                vs,
                self.cfg.bugs.drop_sibling,
            );
        }
        let mut elements = union(&merged);
        match &self.req {
            Request::Add { element, .. } => {
                elements.push(element.clone());
                elements.sort_by_key(Value::to_string);
                elements.dedup();
                let context = version::join(merged.iter().map(|v| &v.clock));
                let v = Version {
                    value: Value::Array(elements),
                    ts: 0,
                    writer: self.cfg.me.clone(),
                    clock: version::next_clock(&context, &self.cfg.actor),
                };
                self.phase = Phase::Store;
                self.issued = Some(v.clone());
                let key = self.key.clone();
                self.broadcast(|hint| Msg::SibPut {
                    key: key.clone(),
                    versions: vec![v.clone()],
                    hint,
                })
            }
            _ => {
                self.phase = Phase::Finished;
                vec![Action::Finish(Done::Read(Value::Array(elements)))]
            }
        }
    }

    /// A read quorum answered.
    fn decide(&mut self) -> Vec<Action> {
        let newest = self.newest();
        match (&self.req, self.cfg.mode) {
            (Request::Add { .. }, _) | (_, Mode::Vclock) => self.decide_siblings(),
            (Request::Write { value, .. }, _) => {
                // The writer names this request, not just this node: two writes one node
                // coordinates concurrently read the same max and would otherwise store two
                // values under one stamp, which replicas then keep apart forever.
                let entry = Entry {
                    stamp: Stamp {
                        ts: newest.map_or(0, |e| e.stamp.ts) + 1,
                        writer: format!("{}#{}", self.cfg.actor, self.seq),
                    },
                    value: value.clone(),
                };
                self.store(entry)
            }
            (Request::Read { .. }, Mode::Abd) => match newest {
                Some(e) if !self.cfg.bugs.skip_writeback => self.store(e),
                other => {
                    self.phase = Phase::Finished;
                    vec![Action::Finish(Done::Read(
                        other.map_or(Value::Null, |e| e.value),
                    ))]
                }
            },
            (Request::Read { .. }, Mode::Lww) => match (self.cfg.read_repair, newest) {
                (ReadRepair::Blocking, Some(c)) => self.repair_then_answer(c),
                (mode, newest) => {
                    self.phase = if mode == ReadRepair::Async {
                        Phase::Repair
                    } else {
                        Phase::Finished
                    };
                    self.chosen = newest.clone();
                    let mut out = vec![Action::Finish(Done::Read(
                        newest.as_ref().map_or(Value::Null, |e| e.value.clone()),
                    ))];
                    if let (ReadRepair::Async, Some(c)) = (mode, &newest) {
                        out.extend(self.stale_repliers(c).map(|n| self.repair_msg(n, c)));
                    }
                    out
                }
            },
        }
    }

    /// Repliers holding something older than `c`.
    fn stale_repliers<'a>(&'a self, c: &'a Entry) -> impl Iterator<Item = &'a String> + 'a {
        self.replies
            .iter()
            .filter(move |(_, e)| e.as_ref().is_none_or(|e| e.stamp < c.stamp))
            .map(|(n, _)| n)
    }

    /// Blocking read repair: the up-to-date repliers already hold `c`; the stale ones are
    /// repaired and the read answers once R replicas acknowledge holding it.
    fn repair_then_answer(&mut self, c: Entry) -> Vec<Action> {
        let stale: Vec<String> = self.stale_repliers(&c).cloned().collect();
        self.phase = Phase::Store;
        self.need = self.cfg.r;
        for n in self.replies.keys() {
            if !stale.contains(n) {
                self.ackers.insert(n.clone());
                self.acks += self.weight(n);
            }
        }
        if self.acks >= self.need {
            self.phase = Phase::Finished;
            return vec![Action::Finish(Done::Read(c.value))];
        }
        let out = stale.iter().map(|n| self.repair_msg(n, &c)).collect();
        self.chosen = Some(c);
        out
    }

    /// The request's time is up: whatever has not answered never will.
    pub fn on_timeout(&mut self) -> Vec<Action> {
        let done = match self.phase {
            Phase::Query => Done::Unavailable,
            Phase::Store => match self.req {
                Request::Write { .. } | Request::Add { .. } => Done::Indefinite,
                // A write-back that missed its quorum: the read returns nothing.
                Request::Read { .. } => Done::Unavailable,
            },
            Phase::Repair | Phase::Finished => {
                self.phase = Phase::Finished;
                return vec![];
            }
        };
        self.phase = Phase::Finished;
        vec![Action::Finish(done)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(mode: Mode, bugs: Bugs) -> Config {
        Config {
            me: "n1".into(),
            actor: "n1".into(),
            mode,
            read_repair: ReadRepair::Async,
            n: 3,
            r: 2,
            w: 2,
            bugs,
        }
    }

    fn nodes() -> Vec<(String, Option<String>)> {
        ["n1", "n2", "n3"].map(|n| (n.to_string(), None)).to_vec()
    }

    fn e(ts: u64, w: &str, v: i64) -> Entry {
        Entry {
            stamp: Stamp {
                ts,
                writer: w.into(),
            },
            value: json!(v),
        }
    }

    fn got(x: Option<Entry>) -> Answer {
        Answer::Got { entry: x }
    }

    fn put(to: &str, entry: Entry, repair: bool) -> Action {
        Action::Send {
            to: to.into(),
            msg: Msg::Put {
                key: "k".into(),
                entry,
                repair,
                hint: None,
            },
        }
    }

    const STORED: Answer = Answer::Stored { applied: true };

    /// Every peer replicates every key (3 nodes, N = 3).
    fn all(_peer: &str, _key: &str) -> bool {
        true
    }

    #[test]
    fn abd_write_reads_a_quorum_then_stores_the_next_stamp() {
        let w = Request::Write {
            key: "k".into(),
            value: json!(7),
        };
        let (mut c, a) = Coordinator::start(&cfg(Mode::Abd, Bugs::default()), nodes(), w, 0, 0);
        assert_eq!(a.len(), 3);
        assert!(matches!(
            &a[0],
            Action::Send {
                msg: Msg::Get { .. },
                ..
            }
        ));
        assert_eq!(c.on_answer("n1", got(Some(e(4, "n3", 1)))), vec![]);
        let a = c.on_answer("n2", got(Some(e(5, "n2", 2))));
        let next = e(6, "n1#0", 7);
        assert_eq!(
            a,
            vec![
                put("n1", next.clone(), false),
                put("n2", next.clone(), false),
                put("n3", next, false)
            ]
        );
        // A late stamp changes nothing; one ack is not enough; the second one answers.
        assert_eq!(c.on_answer("n3", got(Some(e(9, "n3", 3)))), vec![]);
        assert_eq!(c.on_answer("n2", STORED), vec![]);
        assert_eq!(c.on_answer("n2", STORED), vec![], "a duplicate ack");
        assert_eq!(
            c.on_answer("n3", Answer::Stored { applied: false }),
            vec![Action::Finish(Done::Written)]
        );
        assert_eq!(c.phase(), Phase::Finished);
    }

    #[test]
    fn abd_read_writes_back_before_answering_unless_the_bug_skips_it() {
        let r = Request::Read { key: "k".into() };
        let (mut c, _) =
            Coordinator::start(&cfg(Mode::Abd, Bugs::default()), nodes(), r.clone(), 0, 0);
        c.on_answer("n1", got(None));
        let a = c.on_answer("n3", got(Some(e(2, "n2", 5))));
        assert_eq!(a.len(), 3, "{a:?}");
        assert_eq!(a[0], put("n1", e(2, "n2", 5), false));
        c.on_answer("n1", STORED);
        assert_eq!(
            c.on_answer("n3", STORED),
            vec![Action::Finish(Done::Read(json!(5)))]
        );

        let bugs = Bugs {
            skip_writeback: true,
            ..Bugs::default()
        };
        let (mut c, _) = Coordinator::start(&cfg(Mode::Abd, bugs), nodes(), r.clone(), 0, 0);
        c.on_answer("n1", got(None));
        assert_eq!(
            c.on_answer("n3", got(Some(e(2, "n2", 5)))),
            vec![Action::Finish(Done::Read(json!(5)))]
        );
        // Nothing written yet anywhere: null, and nothing to write back.
        let (mut c, _) = Coordinator::start(&cfg(Mode::Abd, Bugs::default()), nodes(), r, 0, 0);
        c.on_answer("n2", got(None));
        assert_eq!(
            c.on_answer("n3", got(None)),
            vec![Action::Finish(Done::Read(json!(null)))]
        );
    }

    #[test]
    fn lww_write_is_stamped_by_the_clock_and_acked_by_w() {
        let w = Request::Write {
            key: "k".into(),
            value: json!(1),
        };
        let (mut c, a) =
            Coordinator::start(&cfg(Mode::Lww, Bugs::default()), nodes(), w, 1_000_123, 0);
        assert_eq!(a[2], put("n3", e(1_000_123, "n1", 1), false));
        assert_eq!(c.on_answer("n1", STORED), vec![]);
        assert_eq!(c.on_answer("n9", STORED), vec![], "not a replica of k");
        assert_eq!(
            c.on_answer("n3", STORED),
            vec![Action::Finish(Done::Written)]
        );
        assert_eq!(lww_ts(1_000, 1_002), 1_000_002);
    }

    #[test]
    fn lww_read_answers_the_newest_and_repairs_stale_replicas_late_ones_too() {
        let r = Request::Read { key: "k".into() };
        let (mut c, a) = Coordinator::start(&cfg(Mode::Lww, Bugs::default()), nodes(), r, 0, 0);
        assert_eq!(a.len(), 3);
        c.on_answer("n1", got(Some(e(10, "n1", 1))));
        assert_eq!(
            c.on_answer("n2", got(Some(e(20, "n2", 2)))),
            vec![
                Action::Finish(Done::Read(json!(2))),
                put("n1", e(20, "n2", 2), true)
            ]
        );
        assert_eq!(c.phase(), Phase::Repair);
        assert_eq!(
            c.on_answer("n3", got(None)),
            vec![put("n3", e(20, "n2", 2), true)]
        );
        assert_eq!(c.on_timeout(), vec![]);
        assert_eq!(c.phase(), Phase::Finished);
    }

    #[test]
    fn lww_blocking_read_repair_answers_once_r_replicas_hold_the_value() {
        let mut c = cfg(Mode::Lww, Bugs::default());
        c.read_repair = ReadRepair::Blocking;
        let r = Request::Read { key: "k".into() };
        let (mut co, _) = Coordinator::start(&c, nodes(), r.clone(), 0, 0);
        assert_eq!(co.on_answer("n1", got(Some(e(10, "n1", 1)))), vec![]);
        // n2 is newer: n1 is repaired, and nothing is answered until it acknowledges.
        let a = co.on_answer("n2", got(Some(e(20, "n2", 2))));
        assert_eq!(a, vec![put("n1", e(20, "n2", 2), true)]);
        assert_eq!(co.on_answer("n3", got(None)), vec![], "a late reply");
        assert_eq!(co.on_answer("n2", STORED), vec![], "n2 already counts");
        assert_eq!(
            co.on_answer("n1", Answer::Stored { applied: true }),
            vec![Action::Finish(Done::Read(json!(2)))]
        );
        // Replicas that agree answer at once; a repair that never lands fails the read.
        let (mut co, _) = Coordinator::start(&c, nodes(), r.clone(), 0, 0);
        co.on_answer("n1", got(Some(e(20, "n2", 2))));
        assert_eq!(
            co.on_answer("n3", got(Some(e(20, "n2", 2)))),
            vec![Action::Finish(Done::Read(json!(2)))]
        );
        let (mut co, _) = Coordinator::start(&c, nodes(), r, 0, 0);
        co.on_answer("n1", got(None));
        co.on_answer("n3", got(Some(e(20, "n2", 2))));
        assert_eq!(co.on_timeout(), vec![Action::Finish(Done::Unavailable)]);
    }

    #[test]
    fn lww_read_without_repair_sends_nothing_after_answering() {
        let mut c = cfg(Mode::Lww, Bugs::default());
        c.read_repair = ReadRepair::Off;
        let (mut co, _) = Coordinator::start(&c, nodes(), Request::Read { key: "k".into() }, 0, 0);
        co.on_answer("n1", got(None));
        assert_eq!(
            co.on_answer("n2", got(Some(e(20, "n2", 2)))),
            vec![Action::Finish(Done::Read(json!(2)))]
        );
        assert_eq!(co.phase(), Phase::Finished);
        assert_eq!(co.on_answer("n3", got(None)), vec![]);
        assert_eq!("blocking".parse::<ReadRepair>(), Ok(ReadRepair::Blocking));
        assert!(
            "sync"
                .parse::<ReadRepair>()
                .unwrap_err()
                .contains("--read-repair")
        );
    }

    #[test]
    fn concurrent_abd_writes_of_one_coordinator_never_share_a_stamp() {
        // Found under packet loss (seed 1101681240): two writes n1 coordinated at once both
        // read ts 4 and stored (5, n1) with different values; each replica kept whichever
        // came first, so reads flipped between them.
        let c = cfg(Mode::Abd, Bugs::default());
        let write = |v: i64, seq: u64| {
            let w = Request::Write {
                key: "k".into(),
                value: json!(v),
            };
            let (mut co, _) = Coordinator::start(&c, nodes(), w, 0, seq);
            co.on_answer("n1", got(Some(e(4, "n2", 0))));
            match co.on_answer("n2", got(Some(e(4, "n2", 0)))).remove(0) {
                Action::Send {
                    msg: Msg::Put { entry, .. },
                    ..
                } => entry,
                o => panic!("{o:?}"),
            }
        };
        let (a, b) = (write(1, 1), write(2, 2));
        assert_eq!(a.stamp.ts, b.stamp.ts);
        assert_ne!(a.stamp, b.stamp);
        // Whatever order two replicas see them in, both keep the same one.
        let (mut x, mut y) = (Store::default(), Store::default());
        x.put("k", a.clone(), false);
        x.put("k", b.clone(), false);
        y.put("k", b, false);
        y.put("k", a, false);
        assert_eq!(x.get("k"), y.get("k"));
    }

    #[test]
    fn acks_counted_twice_lets_the_coordinator_reach_a_quorum_alone() {
        let bugs = Bugs {
            acks_twice: true,
            ..Bugs::default()
        };
        let w = Request::Write {
            key: "k".into(),
            value: json!(3),
        };
        let (mut c, _) =
            Coordinator::start(&cfg(Mode::Abd, bugs.clone()), nodes(), w.clone(), 0, 0);
        let a = c.on_answer("n1", got(None));
        assert_eq!(a.len(), 3, "the query quorum is met by n1 alone");
        assert_eq!(
            c.on_answer("n1", STORED),
            vec![Action::Finish(Done::Written)]
        );
        // Another node's ack still counts once.
        let (mut c, _) = Coordinator::start(&cfg(Mode::Lww, bugs), nodes(), w, 5, 0);
        assert_eq!(c.on_answer("n2", STORED), vec![]);
    }

    #[test]
    fn timeouts_are_definite_before_anything_is_stored_and_not_after() {
        let w = Request::Write {
            key: "k".into(),
            value: json!(3),
        };
        let (mut c, _) =
            Coordinator::start(&cfg(Mode::Abd, Bugs::default()), nodes(), w.clone(), 0, 0);
        assert_eq!(c.on_timeout(), vec![Action::Finish(Done::Unavailable)]);
        let (mut c, _) = Coordinator::start(&cfg(Mode::Lww, Bugs::default()), nodes(), w, 0, 0);
        c.on_answer("n1", STORED);
        assert_eq!(c.on_timeout(), vec![Action::Finish(Done::Indefinite)]);
        assert_eq!(c.on_timeout(), vec![], "finished once");
    }

    #[test]
    fn a_merkle_exchange_repairs_both_sides_except_the_last_range_under_the_bug() {
        // a key in the first range and one in the last
        let key_in = |r: u32| {
            (0..)
                .map(|i| format!("k{i}"))
                .find(|k| merkle::locate(k).0 == r)
                .unwrap()
        };
        let (first, last) = (key_in(0), key_in(merkle::RANGES - 1));
        let exchange = |bugs: &Bugs| {
            let (mut a, mut b) = (Store::default(), Store::default());
            // a missed the newer first-range write, b missed the last-range key entirely
            a.put(&first, e(1, "n1", 1), false);
            b.put(&first, e(2, "n2", 2), false);
            a.put(&last, e(1, "n1", 3), false);
            a.put("same", e(1, "n1", 4), false);
            b.put("same", e(1, "n1", 4), false);
            let tree = a.tree(|_| true);
            let digest = Msg::Digest {
                from: "n1".into(),
                tree,
            };
            let (
                Answer::Diff {
                    segments,
                    entries,
                    siblings,
                },
                stored,
            ) = b.handle(digest, bugs, &all)
            else {
                panic!("a diff")
            };
            assert!(stored.is_empty() && siblings.is_empty());
            assert_eq!(entries, vec![(first.clone(), e(2, "n2", 2))], "b's side");
            a.handle(
                Msg::Sync {
                    entries,
                    siblings: vec![],
                },
                bugs,
                &all,
            );
            let (mine, _) = a.in_segments(&segments, |_| true);
            b.handle(
                Msg::Sync {
                    entries: mine,
                    siblings: vec![],
                },
                bugs,
                &all,
            );
            (a, b, segments)
        };
        let (a, b, segments) = exchange(&Bugs::default());
        assert_eq!(
            segments.len(),
            2,
            "only the two differing segments: {segments:?}"
        );
        assert_eq!(a.get(&first), b.get(&first));
        assert_eq!(b.get(&last), Some(&e(1, "n1", 3)));
        let bug = Bugs {
            merkle_skip_last: true,
            ..Bugs::default()
        };
        let (a, b, _) = exchange(&bug);
        assert_eq!(a.get(&first), b.get(&first));
        assert_eq!(b.get(&last), None, "the last range is never compared");
        // Keys a peer does not replicate are left out of both the tree and the answer.
        let mut c = Store::default();
        c.put(&first, e(9, "n3", 9), false);
        assert_eq!(c.tree(|k| k != first), Store::default().tree(|_| true));
    }

    #[test]
    fn a_sloppy_write_hints_its_stand_in_which_holds_answers_and_hands_off() {
        let w = Request::Write {
            key: "k".into(),
            value: json!(4),
        };
        let targets = vec![
            ("n1".to_string(), None),
            ("n4".to_string(), Some("n2".to_string())),
            ("n3".to_string(), None),
        ];
        let (_, a) = Coordinator::start(&cfg(Mode::Lww, Bugs::default()), targets, w, 77, 0);
        let hinted = Msg::Put {
            key: "k".into(),
            entry: e(77, "n1", 4),
            repair: false,
            hint: Some("n2".into()),
        };
        assert_eq!(
            a[1],
            Action::Send {
                to: "n4".into(),
                msg: hinted.clone()
            }
        );
        assert!(matches!(
            &a[0],
            Action::Send {
                msg: Msg::Put { hint: None, .. },
                ..
            }
        ));
        // The stand-in keeps a hint, not a replica entry, and answers reads with it.
        let mut s = Store::default();
        let (ans, rec) = s.handle(hinted.clone(), &Bugs::default(), &all);
        assert_eq!(ans, STORED);
        let held = Held::Entry(e(77, "n1", 4));
        assert_eq!(
            rec,
            vec![Record::Hint {
                home: "n2".into(),
                key: "k".into(),
                held: held.clone()
            }]
        );
        assert_eq!(s.get("k"), None);
        assert_eq!(
            s.handle(Msg::Get { key: "k".into() }, &Bugs::default(), &all)
                .0,
            got(Some(e(77, "n1", 4)))
        );
        assert_eq!(s.hints(), vec![("n2".into(), "k".into(), held.clone())]);
        // Replayed after a restart it is still there; under the planted bug it is gone.
        let mut again = Store::default();
        rec.iter()
            .for_each(|r| again.replay(r.clone(), &Bugs::default()));
        assert_eq!(again.hints().len(), 1);
        let dropped = Bugs {
            hints_dropped: true,
            ..Bugs::default()
        };
        let mut lost = Store::default();
        rec.into_iter().for_each(|r| lost.replay(r, &dropped));
        assert_eq!(lost.hints(), vec![]);
        // Handed off: the hint goes, unless a newer write grew it meanwhile.
        let newer = Msg::Put {
            key: "k".into(),
            entry: e(90, "n3", 5),
            repair: false,
            hint: Some("n2".into()),
        };
        let mut grown = s.clone();
        grown.handle(newer, &Bugs::default(), &all);
        assert_eq!(grown.hint_delivered("n2", "k", &held), None);
        assert_eq!(grown.hints().len(), 1);
        let done = s.hint_delivered("n2", "k", &held).expect("delivered");
        assert_eq!(s.hints(), vec![]);
        let mut replayed = again;
        replayed.replay(done, &Bugs::default());
        assert_eq!(replayed.hints(), vec![]);
    }

    #[test]
    fn replicas_keep_the_greatest_stamp_unless_the_repair_bug_forces_it() {
        let mut s = Store::default();
        let ok = Bugs::default();
        let (a, stored) = s.handle(
            Msg::Put {
                key: "k".into(),
                entry: e(5, "n1", 1),
                repair: false,
                hint: None,
            },
            &ok,
            &all,
        );
        assert_eq!((a, stored.len()), (Answer::Stored { applied: true }, 1));
        let old = Msg::Put {
            key: "k".into(),
            entry: e(3, "n2", 0),
            repair: true,
            hint: None,
        };
        let (a, stored) = s.handle(old.clone(), &ok, &all);
        assert_eq!((a, stored), (Answer::Stored { applied: false }, vec![]));
        assert_eq!(s.get("k"), Some(&e(5, "n1", 1)));
        let bug = Bugs {
            repair_overwrites: true,
            ..Bugs::default()
        };
        let (a, _) = s.handle(old, &bug, &all);
        assert_eq!(a, Answer::Stored { applied: true });
        assert_eq!(s.get("k"), Some(&e(3, "n2", 0)), "rolled back");
        let (a, stored) = s.handle(
            Msg::Sync {
                entries: vec![("k".into(), e(4, "n3", 9)), ("j".into(), e(1, "n3", 2))],
                siblings: vec![],
            },
            &bug,
            &all,
        );
        assert_eq!(a, Answer::Synced { applied: 2 });
        assert_eq!(stored.len(), 2);
        assert_eq!(
            s.handle(Msg::Get { key: "j".into() }, &ok, &all).0,
            got(Some(e(1, "n3", 2)))
        );
    }

    #[test]
    fn messages_are_tagged_by_type_on_the_wire() {
        let m = serde_json::to_value(Msg::Get { key: "k".into() }).unwrap();
        assert_eq!(m, json!({"type": "get", "key": "k"}));
        let a: Answer = serde_json::from_value(json!({"type": "stored", "applied": true})).unwrap();
        assert_eq!(a, STORED);
        assert_eq!(
            "acks-counted-twice".parse::<Bug>(),
            Ok(Bug::AcksCountedTwice)
        );
        assert!(
            "nope"
                .parse::<Bug>()
                .unwrap_err()
                .contains("abd-skip-writeback")
        );
    }

    fn sib(elements: &[i64], clock: &[(&str, u64)]) -> Version {
        Version {
            value: json!(elements),
            ts: 0,
            writer: String::new(),
            clock: clock.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }

    #[test]
    fn a_vclock_add_writes_the_union_under_a_clock_descending_from_what_it_read() {
        let add = Request::Add {
            key: "s".into(),
            element: json!(5),
        };
        let (mut c, a) =
            Coordinator::start(&cfg(Mode::Vclock, Bugs::default()), nodes(), add, 0, 0);
        assert_eq!(
            a[0],
            Action::Send {
                to: "n1".into(),
                msg: Msg::SibGet { key: "s".into() }
            }
        );
        let concurrent = vec![sib(&[1], &[("n2", 1)]), sib(&[2], &[("n3", 1)])];
        assert_eq!(
            c.on_answer(
                "n2",
                Answer::Sibs {
                    versions: concurrent
                }
            ),
            vec![]
        );
        let a = c.on_answer(
            "n3",
            Answer::Sibs {
                versions: vec![sib(&[2], &[("n3", 1)])],
            },
        );
        let mut want = sib(&[1, 2, 5], &[("n1", 1), ("n2", 1), ("n3", 1)]);
        want.writer = "n1".into();
        assert_eq!(
            a[2],
            Action::Send {
                to: "n3".into(),
                msg: Msg::SibPut {
                    key: "s".into(),
                    versions: vec![want],
                    hint: None,
                }
            }
        );
        c.on_answer("n1", STORED);
        assert_eq!(
            c.on_answer("n2", STORED),
            vec![Action::Finish(Done::Written)]
        );
    }

    #[test]
    fn an_add_contains_its_actors_last_version_even_when_the_quorum_missed_it() {
        // Found under a sloppy quorum: n1's first add went to stand-ins only ({n1:1} = [7]);
        // its next add read homes that had not heard of it, and without its last version
        // would have issued {n1:1, n2:1} = [1, 8], which supersedes [7] without containing it.
        let c = cfg(Mode::Vclock, Bugs::default());
        let add = |element: i64| Request::Add {
            key: "s".into(),
            element: json!(element),
        };
        let (mut first, _) = Coordinator::start(&c, nodes(), add(7), 0, 0);
        first.on_answer("n1", Answer::Sibs { versions: vec![] });
        first.on_answer("n2", Answer::Sibs { versions: vec![] });
        let last = first.issued().cloned().expect("issued");
        assert_eq!(last.clock, sib(&[7], &[("n1", 1)]).clock);
        let (mut next, _) = Coordinator::start(&c, nodes(), add(8), 0, 1);
        next.include_own(last.clone());
        let theirs = vec![sib(&[1], &[("n2", 1)])];
        next.on_answer(
            "n2",
            Answer::Sibs {
                versions: theirs.clone(),
            },
        );
        next.on_answer("n3", Answer::Sibs { versions: theirs });
        let v = next.issued().cloned().expect("issued");
        assert_eq!(v.value, json!([1, 7, 8]));
        assert_eq!(v.clock, sib(&[], &[("n1", 2), ("n2", 1)]).clock);
        // Merged anywhere, nothing acknowledged is lost.
        let merged = version::merge(Resolution::VectorClocks, &[last], &[v], false);
        assert_eq!(union(&merged), vec![json!(1), json!(7), json!(8)]);
    }

    #[test]
    fn concurrent_adds_stay_siblings_a_read_answers_their_union_and_the_bug_drops_one() {
        let mut s = Store::default();
        let ok = Bugs::default();
        for v in [sib(&[1], &[("n1", 1)]), sib(&[2], &[("n2", 1)])] {
            let (a, rec) = s.handle(
                Msg::SibPut {
                    key: "s".into(),
                    versions: vec![v],
                    hint: None,
                },
                &ok,
                &all,
            );
            assert_eq!((a, rec.len()), (STORED, 1));
        }
        let (Answer::Sibs { versions }, _) = s.handle(Msg::SibGet { key: "s".into() }, &ok, &all)
        else {
            panic!("siblings answer")
        };
        assert_eq!(versions.len(), 2);
        assert_eq!(union(&versions), vec![json!(1), json!(2)]);
        let r = Request::Read { key: "s".into() };
        let (mut c, _) = Coordinator::start(&cfg(Mode::Vclock, Bugs::default()), nodes(), r, 0, 0);
        c.on_answer(
            "n1",
            Answer::Sibs {
                versions: versions.clone(),
            },
        );
        assert_eq!(
            c.on_answer("n2", Answer::Sibs { versions: vec![] }),
            vec![Action::Finish(Done::Read(json!([1, 2])))]
        );
        // The planted bug: the second concurrent sibling is merged away, its add lost.
        let bug = Bugs {
            drop_sibling: true,
            ..Bugs::default()
        };
        let mut b = Store::default();
        b.handle(
            Msg::SibPut {
                key: "s".into(),
                versions: versions.clone(),
                hint: None,
            },
            &bug,
            &all,
        );
        assert_eq!(b.siblings("s").map(Vec::len), Some(1));
        // Replay restores exactly the logged sibling set.
        let mut r = Store::default();
        r.replay(
            Record::Siblings("s".into(), versions.clone()),
            &Bugs::default(),
        );
        assert_eq!(r.siblings("s"), Some(&versions));
    }
}
