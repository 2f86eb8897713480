//! Porcupine's kv model for one key: `get` returns the whole string, `put s` replaces it,
//! `append s` concatenates; initially "".
//!
//! A state is a string, but strings grow long (every append adds to it) and a search
//! explores many of them, so a state is identified by (length, polynomial hash mod
//! 2^61-1) of its text: O(1) per append, equal texts get the same id whatever order of
//! pieces built them, and the text is rebuilt from parent links only for witnesses and
//! for the exact check that confirms a `get`.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use serde_json::Value;

use faultline_history::Operation;

use super::model::{Lookahead, Machine, Walk};

/// How many pending entries the lookahead reads at most.
const SCAN_LIMIT: usize = 4096;
const NO_PREFIXES: u32 = u32::MAX;

const P: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1F3D_5B79_A2C4_E681 % P;

const fn mulmod(a: u64, b: u64) -> u64 {
    let x = (a as u128) * (b as u128);
    let lo = (x as u64) & P;
    let hi = (x >> 61) as u64;
    let s = lo + hi;
    if s >= P { s - P } else { s }
}

const fn addmod(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= P { s - P } else { s }
}

const B2: u64 = mulmod(BASE, BASE);
const B3: u64 = mulmod(B2, BASE);
const B4: u64 = mulmod(B3, BASE);

/// (hash, BASE^len) of a text: the hash is Σ (byte + 1)·BASE^(len-1-i), the recurrence
/// `h·BASE + byte + 1` taken four bytes a step, so the serial chain of multiplications
/// is a quarter as long; BASE^len by squaring.
fn hash_text(t: &str) -> (u64, u64) {
    let bytes = t.as_bytes();
    let mut chunks = bytes.chunks_exact(4);
    let mut h = 0;
    for c in &mut chunks {
        let d = |i: usize| c[i] as u64 + 1;
        let four = addmod(
            addmod(mulmod(d(0), B3), mulmod(d(1), B2)),
            addmod(mulmod(d(2), BASE), d(3)),
        );
        h = addmod(mulmod(h, B4), four);
    }
    for &b in chunks.remainder() {
        h = addmod(mulmod(h, BASE), b as u64 + 1);
    }
    let (mut pw, mut sq, mut n) = (1, BASE, bytes.len());
    while n > 0 {
        if n & 1 == 1 {
            pw = mulmod(pw, sq);
        }
        sq = mulmod(sq, sq);
        n >>= 1;
    }
    (h, pw)
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Index into `texts`.
    Get(usize),
    Put(usize),
    Append(usize),
}

/// A text of the key's ops: a span of `AppendKv::arena`.
struct Text {
    start: usize,
    len: u64,
    hash: u64,
    pow: u64,
}

struct State {
    len: u64,
    hash: u64,
    /// The state this one was built from by appending `piece`; `None` for "" and puts.
    parent: Option<u64>,
    piece: usize,
}

type Fx = BuildHasherDefault<faultline_history::compact::Fx>;

pub struct AppendKv {
    initial: u64,
    ops: Vec<Op>,
    /// Every text of the key's ops, end to end: one allocation instead of one per op.
    arena: String,
    texts: Vec<Text>,
    states: Vec<State>,
    ids: HashMap<(u64, u64), u64, Fx>,
    /// Where a get's text's prefix hashes start in `prefixes`, by text id; `NO_PREFIXES`
    /// until the lookahead first needs them.
    prefix_at: Vec<u32>,
    /// Prefix hashes (of lengths 0..=len) of the texts that have them, end to end: one
    /// allocation, one indirection per lookup.
    prefixes: Vec<u64>,
    /// (state, get text) pairs whose texts were compared in full and are equal.
    confirmed: HashSet<(u64, usize), Fx>,
    /// Scratch for walking a state's pieces.
    pieces: Vec<usize>,
}

impl AppendKv {
    pub fn set_initial(&mut self, v: &Value) -> Result<(), String> {
        let Value::String(s) = v else {
            return Err(format!("append-kv starts from a string, not {v}"));
        };
        let t = self.text(s);
        let (len, hash) = (self.texts[t].len, self.texts[t].hash);
        self.initial = self.intern(len, hash, None, t);
        Ok(())
    }

    pub fn new(ops: &[&Operation]) -> Result<Self, String> {
        let mut m = AppendKv {
            initial: 0,
            ops: Vec::with_capacity(ops.len()),
            arena: String::new(),
            texts: Vec::with_capacity(ops.len() + 1),
            states: Vec::new(),
            ids: HashMap::default(),
            prefix_at: Vec::new(),
            prefixes: Vec::new(),
            confirmed: Default::default(),
            pieces: Vec::new(),
        };
        m.text("");
        m.intern(0, 0, None, 0);
        for op in ops {
            fn text_of(v: &Value, call: u64) -> Result<&str, String> {
                match v {
                    Value::String(s) => Ok(s),
                    Value::Null => Ok(""),
                    other => Err(format!(
                        "event {call}: append-kv values are strings, found {other}"
                    )),
                }
            }
            let compiled = match op.f.as_str() {
                "get" | "read" => Op::Get(m.text(text_of(&op.value, op.call)?)),
                "put" | "write" => Op::Put(m.text(text_of(&op.invoke_value, op.call)?)),
                "append" => Op::Append(m.text(text_of(&op.invoke_value, op.call)?)),
                f => {
                    return Err(format!(
                        "event {}: append-kv knows get, put, append, not {f:?}",
                        op.call
                    ));
                }
            };
            m.ops.push(compiled);
        }
        Ok(m)
    }

    fn text(&mut self, text: &str) -> usize {
        let (hash, pow) = hash_text(text);
        self.texts.push(Text {
            start: self.arena.len(),
            len: text.len() as u64,
            hash,
            pow,
        });
        self.arena.push_str(text);
        self.texts.len() - 1
    }

    fn text_str(&self, t: usize) -> &str {
        let x = &self.texts[t];
        &self.arena[x.start..x.start + x.len as usize]
    }

    fn intern(&mut self, len: u64, hash: u64, parent: Option<u64>, piece: usize) -> u64 {
        let next = self.states.len() as u64;
        let id = *self.ids.entry((len, hash)).or_insert(next);
        if id == next {
            self.states.push(State {
                len,
                hash,
                parent,
                piece,
            });
        }
        id
    }

    /// The pieces that built state `s`, last first, into `self.pieces`.
    fn collect_pieces(&mut self, mut s: u64) {
        self.pieces.clear();
        loop {
            let st = &self.states[s as usize];
            self.pieces.push(st.piece);
            match st.parent {
                Some(p) => s = p,
                None => break,
            }
        }
    }

    fn state_text(&self, mut s: u64) -> String {
        let mut pieces = Vec::new();
        loop {
            let st = &self.states[s as usize];
            pieces.push(st.piece);
            match st.parent {
                Some(p) => s = p,
                None => break,
            }
        }
        pieces.iter().rev().map(|&p| self.text_str(p)).collect()
    }

    /// Whether state `s`'s text is exactly text `t` (lengths already agree), compared
    /// piece by piece without building the state's text.
    fn state_is_text(&mut self, s: u64, t: usize) -> bool {
        self.collect_pieces(s);
        let want = self.text_str(t).as_bytes();
        let mut at = 0;
        for &p in self.pieces.iter().rev() {
            let piece = self.text_str(p).as_bytes();
            if want.get(at..at + piece.len()) != Some(piece) {
                return false;
            }
            at += piece.len();
        }
        at == want.len()
    }

    /// Is text `p` a prefix of text `t`?
    fn text_is_prefix(&mut self, p: usize, t: usize) -> bool {
        let (len, hash) = (self.texts[p].len, self.texts[p].hash);
        len <= self.texts[t].len && self.prefix_hash(t, len) == hash
    }

    fn is_prefix(&mut self, state: u64, t: usize) -> bool {
        let (len, hash) = {
            let st = &self.states[state as usize];
            (st.len, st.hash)
        };
        len <= self.texts[t].len && self.prefix_hash(t, len) == hash
    }

    fn prefix_hash(&mut self, get_text: usize, len: u64) -> u64 {
        let x = &self.texts[get_text];
        if len == x.len {
            return x.hash;
        }
        if self.prefix_at.len() < self.texts.len() {
            self.prefix_at.resize(self.texts.len(), NO_PREFIXES);
        }
        let mut at = self.prefix_at[get_text];
        if at == NO_PREFIXES {
            at = self.prefixes.len() as u32;
            self.prefix_at[get_text] = at;
            let text = &self.arena.as_bytes()[x.start..x.start + x.len as usize];
            self.prefixes.reserve(text.len() + 1);
            let mut h = 0;
            self.prefixes.push(h);
            for &b in text {
                h = addmod(mulmod(h, BASE), b as u64 + 1);
                self.prefixes.push(h);
            }
        }
        self.prefixes[at as usize + len as usize]
    }
}

impl Machine for AppendKv {
    fn init(&mut self) -> u64 {
        self.initial
    }

    fn step(&mut self, state: u64, op: usize) -> Option<u64> {
        match self.ops[op] {
            Op::Get(t) => {
                let (st, tx) = (&self.states[state as usize], &self.texts[t]);
                // Confirm exactly only once per (state, text) pair: a verdict rests on it.
                if st.len != tx.len || st.hash != tx.hash {
                    return None;
                }
                if !self.confirmed.contains(&(state, t)) {
                    if !self.state_is_text(state, t) {
                        return None;
                    }
                    self.confirmed.insert((state, t));
                }
                Some(state)
            }
            Op::Put(t) => {
                let tx = &self.texts[t];
                Some(self.intern(tx.len, tx.hash, None, t))
            }
            Op::Append(t) => {
                let (st, tx) = (&self.states[state as usize], &self.texts[t]);
                let (len, hash) = (st.len + tx.len, addmod(mulmod(st.hash, tx.pow), tx.hash));
                Some(self.intern(len, hash, Some(state), t))
            }
        }
    }

    fn read_only(&self, op: usize) -> bool {
        matches!(self.ops[op], Op::Get(_))
    }

    fn lookahead(&self) -> Lookahead {
        Lookahead::Scan
    }

    /// The text only grows between puts, so every pending get must return either an
    /// extension of the current text or an extension of a put that may take effect
    /// before it: one of the pending puts whose call entries come before the get's
    /// return entry.
    fn scan(&mut self, state: u64, pending: Walk<'_>) -> bool {
        let mut puts: [usize; 16] = [0; 16];
        let mut n_puts = 0;
        for e in pending.take(SCAN_LIMIT) {
            match (e.call, self.ops[e.op]) {
                (true, Op::Put(p)) => {
                    if n_puts == puts.len() {
                        return true;
                    }
                    puts[n_puts] = p;
                    n_puts += 1;
                }
                (false, _) if !e.ok => return true,
                (false, Op::Get(t)) => {
                    // The put called last before the get's return is the likeliest base
                    // of its text, so it is tried first (`any` is order-free).
                    let ok = self.is_prefix(state, t)
                        || puts[..n_puts]
                            .iter()
                            .rev()
                            .any(|&p| self.text_is_prefix(p, t));
                    if !ok {
                        return false;
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Without a put in between, the text only grows: it must already be a prefix of
    /// what the get returned.
    fn reachable(&mut self, state: u64, target: usize, between: &[usize]) -> bool {
        let Op::Get(t) = self.ops[target] else {
            return true;
        };
        if between.iter().any(|&o| matches!(self.ops[o], Op::Put(_))) {
            return true;
        }
        self.is_prefix(state, t)
    }

    fn producers(&self, target: usize) -> Vec<usize> {
        let Op::Get(t) = self.ops[target] else {
            return Vec::new();
        };
        let want = self.text_str(t);
        (0..self.ops.len())
            .filter(|&o| match self.ops[o] {
                Op::Put(p) | Op::Append(p) => {
                    let piece = self.text_str(p);
                    !piece.is_empty() && want.contains(piece)
                }
                Op::Get(_) => false,
            })
            .collect()
    }

    fn state_json(&self, state: u64) -> Value {
        Value::String(self.state_text(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::testing::op;
    use serde_json::json;

    #[test]
    fn append_concatenates_and_get_compares_exactly() {
        let ops = [
            op(0, "append", json!("ab"), json!("ab")),
            op(1, "append", json!("c"), json!("c")),
            op(2, "get", json!(null), json!("abc")),
            op(3, "put", json!("abc"), json!("abc")),
            op(4, "get", json!(null), json!("")),
            op(5, "append", json!("a"), json!("a")),
            op(6, "append", json!("bc"), json!("bc")),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut m = AppendKv::new(&refs).unwrap();
        let s0 = m.init();
        assert_eq!(m.step(s0, 4), Some(s0));
        let s1 = m.step(s0, 0).unwrap();
        let s2 = m.step(s1, 1).unwrap();
        assert_eq!(m.step(s2, 2), Some(s2));
        assert_eq!(m.state_json(s2), json!("abc"));
        assert_eq!(
            m.step(s0, 3),
            Some(s2),
            "put of equal text is the same state"
        );
        let sa = m.step(s0, 5).unwrap();
        let other = m.step(sa, 6).unwrap();
        assert_eq!(other, s2, "a+bc is ab+c");
        assert_eq!(m.step(s1, 2), None);
        assert!(m.reachable(s1, 2, &[1]));
        let sc = m.step(s0, 1).unwrap();
        assert!(!m.reachable(sc, 2, &[0]), "\"c\" is no prefix of \"abc\"");
        assert!(m.reachable(sc, 2, &[3]), "a put may intervene");
        assert_eq!(m.producers(2), vec![0, 1, 3, 5, 6]);
    }

    #[test]
    fn hash_text_is_the_byte_recurrence() {
        let slow = |t: &str| {
            t.bytes().fold((0, 1), |(h, pw), b| {
                (addmod(mulmod(h, BASE), b as u64 + 1), mulmod(pw, BASE))
            })
        };
        let mut t = String::new();
        for i in 0..40u8 {
            assert_eq!(hash_text(&t), slow(&t), "{t:?}");
            t.push((b'a' + i % 26) as char);
        }
        assert_eq!(hash_text("ü x 3 ÿ"), slow("ü x 3 ÿ"));
    }
}
