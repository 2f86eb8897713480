//! Line parsers for the streaming loader: a hand-rolled fast path for the shapes
//! recorders write (flat JSON objects, flat EDN op maps with simple values) and, for any
//! other line, the strict parsers of `jsonl` and `jepsen_op`, so both paths give the same
//! events and the same errors.

use std::borrow::Cow;
use std::path::Path;

use serde_json::Value;

use super::{FxMap, NONE};
use crate::edn;
use crate::error::HistoryError;
use crate::event::{EventType, Process};
use crate::jepsen_log;
use crate::jepsen_op;
use crate::jsonl;

/// A value as a worker read it; a string is a span (start, length) of the block's
/// value text.
#[derive(Clone, Debug, PartialEq)]
pub enum LVal {
    Null,
    Int(i64),
    Str(u32, u32),
    Json(Value),
}

/// One event line, its strings as block-local symbols.
#[derive(Clone, Debug)]
pub struct Line {
    /// 1-based line within the block.
    pub line: u32,
    pub index: Option<u64>,
    pub time: Option<u64>,
    pub process: Option<Process>,
    pub kind: EventType,
    pub f: u32,
    pub key: u32,
    pub value: LVal,
    pub node: u32,
    pub error: u32,
}

/// A block's symbol table (names: functions, keys, nodes, errors), strings borrowed from
/// the block where possible, and its string values end to end. Values are nearly all
/// distinct in a large history, so they are copied, not hashed.
#[derive(Default)]
pub struct Syms<'a> {
    ids: FxMap<Cow<'a, str>, u32>,
    pub list: Vec<Cow<'a, str>>,
    pub vals: String,
}

impl<'a> Syms<'a> {
    pub fn intern(&mut self, s: Cow<'a, str>) -> u32 {
        if let Some(&id) = self.ids.get(s.as_ref()) {
            return id;
        }
        let id = self.list.len() as u32;
        self.list.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    fn opt(&mut self, s: Option<String>) -> u32 {
        s.map_or(NONE, |s| self.intern(Cow::Owned(s)))
    }

    fn value(&mut self, v: Value) -> LVal {
        match v {
            Value::Null => LVal::Null,
            Value::Number(n) if n.is_i64() => LVal::Int(n.as_i64().expect("is_i64")),
            Value::String(s) => self.text(&s),
            other => LVal::Json(other),
        }
    }

    /// A string value, copied to the block's value text.
    pub fn text(&mut self, s: &str) -> LVal {
        let start = self.vals.len();
        match (u32::try_from(start), u32::try_from(s.len())) {
            (Ok(at), Ok(n)) => {
                self.vals.push_str(s);
                LVal::Str(at, n)
            }
            _ => LVal::Json(Value::String(s.to_string())),
        }
    }

    /// The text of a string value.
    pub fn text_of(&self, at: u32, n: u32) -> &str {
        &self.vals[at as usize..(at + n) as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Native JSONL: strict.
    Jsonl,
    /// One Jepsen EDN op map a line (Porcupine kv): Jepsen's leniency.
    Edn,
    /// Jepsen `jepsen.util` log lines, other lines skipped: Jepsen's leniency.
    JepsenLog,
}

/// Parses one line (no newline, not blank): its event, or `None` for a line that holds
/// none (a log's other lines). `Err` carries the line's own number.
pub fn parse<'a>(
    mode: Mode,
    text: &'a str,
    line: u32,
    syms: &mut Syms<'a>,
    path: &Path,
) -> Result<Option<Line>, HistoryError> {
    let fast = match mode {
        Mode::Jsonl => json_fast(text.as_bytes(), text, syms),
        Mode::Edn => edn_fast(text.as_bytes(), text, syms),
        Mode::JepsenLog => log_fast(text, syms),
    };
    if let Some(mut l) = fast {
        l.line = line;
        return Ok(Some(l));
    }
    slow(mode, text, line, syms, path)
}

fn slow<'a>(
    mode: Mode,
    text: &'a str,
    line: u32,
    syms: &mut Syms<'a>,
    path: &Path,
) -> Result<Option<Line>, HistoryError> {
    let raw = |r: jepsen_op::RawEvent, syms: &mut Syms<'a>| Line {
        line,
        index: None,
        time: r.time,
        process: r.process,
        kind: r.kind,
        f: syms.intern(Cow::Owned(r.f)),
        key: syms.opt(r.key),
        value: syms.value(r.value),
        node: syms.opt(r.node),
        error: syms.opt(r.error),
    };
    Ok(Some(match mode {
        Mode::Jsonl => {
            let e = jsonl::parse_line(text, path, line as usize)?;
            Line {
                line,
                index: Some(e.index),
                time: Some(e.time),
                process: Some(e.process),
                kind: e.kind,
                f: syms.intern(Cow::Owned(e.f)),
                key: syms.opt(e.key),
                value: syms.value(e.value),
                node: syms.opt(e.node),
                error: syms.opt(e.error),
            }
        }
        Mode::Edn => {
            let v = edn::parse_str(text).map_err(|e| {
                HistoryError::malformed(
                    path,
                    line as usize,
                    "edn",
                    format!("column {}: {}", e.column, e.message),
                )
            })?;
            raw(jepsen_op::from_edn(&v, path, line as usize)?, syms)
        }
        Mode::JepsenLog => match jepsen_log::parse_line(text, path, line as usize)? {
            Some(r) => raw(r, syms),
            None => return Ok(None),
        },
    }))
}

/// The usual Jepsen log line: `... jepsen.util - <client> :<type> :<f> <value>` with a
/// value of nil, an integer, a plain string, a vector of those, or (completing) a keyword
/// that names the error. Anything else is left to `jepsen_log`.
fn log_fast<'a>(t: &'a str, syms: &mut Syms<'a>) -> Option<Line> {
    let at = jepsen_log::find_marker(t)? + jepsen_log::MARKER.len();
    let field = |s: &'a str| {
        let s = s.trim_start_matches([' ', '\t']);
        let end = s.find([' ', '\t']).unwrap_or(s.len());
        (&s[..end], &s[end..])
    };
    let (process, rest) = field(&t[at..]);
    let (kind, rest) = field(rest);
    let (f, rest) = field(rest);
    let value = rest.trim_matches([' ', '\t']);
    if process.is_empty() || !process.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let process: u64 = process.parse().ok()?;
    let kind = kind_of(kind.strip_prefix(':')?)?;
    let keyword = |s: &'a str| {
        let mut c = Cur {
            b: s.as_bytes(),
            t: s,
            i: 1,
        };
        (s.starts_with(':') && c.name().is_some() && c.i == s.len()).then(|| &s[1..])
    };
    let f = keyword(f)?;
    let mut l = empty_line();
    l.process = Some(Process::Client(process));
    l.kind = kind;
    l.f = syms.intern(Cow::Borrowed(f));
    if value.is_empty() {
        l.value = LVal::Null;
    } else if value.starts_with(':') {
        if kind == EventType::Invoke {
            return None;
        }
        l.error = syms.intern(Cow::Borrowed(keyword(value)?));
    } else {
        let mut c = Cur {
            b: value.as_bytes(),
            t: value,
            i: 0,
        };
        l.value = edn_value(&mut c, syms)?;
        if c.i != value.len() {
            return None;
        }
    }
    Some(l)
}

struct Cur<'a> {
    b: &'a [u8],
    t: &'a str,
    i: usize,
}

impl<'a> Cur<'a> {
    #[inline]
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b',') {
            self.i += 1;
        }
    }
    /// Whitespace only (JSON separators are checked, not skipped).
    #[inline]
    fn sp(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r') {
            self.i += 1;
        }
    }
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    /// A string body after its opening quote, without escapes.
    #[inline]
    fn plain_str(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'"' => {
                    let s = &self.t[start..self.i];
                    self.i += 1;
                    return Some(s);
                }
                b'\\' => return None,
                _ => self.i += 1,
            }
        }
        None
    }
    #[inline]
    fn int(&mut self) -> Option<i64> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i == digits || matches!(self.peek(), Some(b'.' | b'e' | b'E' | b'N' | b'M' | b'/'))
        {
            return None;
        }
        self.t[start..self.i].parse().ok()
    }
    /// An EDN keyword's name after its colon.
    #[inline]
    fn name(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.i < self.b.len()
            && (self.b[self.i].is_ascii_alphanumeric()
                || matches!(
                    self.b[self.i],
                    b'-' | b'_' | b'?' | b'!' | b'*' | b'+' | b'.'
                ))
        {
            self.i += 1;
        }
        (self.i > start).then(|| &self.t[start..self.i])
    }
    /// Skips one JSON value; its text.
    fn json_extent(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let (mut depth, mut in_str, mut esc) = (0usize, false, false);
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => {
                        in_str = false;
                        if depth == 0 {
                            self.i += 1;
                            return Some(&self.b[start..self.i]);
                        }
                    }
                    _ => {}
                }
            } else {
                match c {
                    b'"' => in_str = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth == 0 => return Some(&self.b[start..self.i]),
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            self.i += 1;
                            return Some(&self.b[start..self.i]);
                        }
                    }
                    b',' if depth == 0 => return Some(&self.b[start..self.i]),
                    _ => {}
                }
            }
            self.i += 1;
        }
        (depth == 0 && !in_str).then(|| &self.b[start..self.i])
    }
}

fn kind_of(s: &str) -> Option<EventType> {
    Some(match s {
        "invoke" => EventType::Invoke,
        "ok" => EventType::Ok,
        "fail" => EventType::Fail,
        "info" => EventType::Info,
        _ => return None,
    })
}

fn empty_line() -> Line {
    Line {
        line: 0,
        index: None,
        time: None,
        process: None,
        kind: EventType::Invoke,
        f: NONE,
        key: NONE,
        value: LVal::Null,
        node: NONE,
        error: NONE,
    }
}

/// A flat JSON event with simple strings, or `None` for the strict parser to judge.
fn json_fast<'a>(b: &'a [u8], t: &'a str, syms: &mut Syms<'a>) -> Option<Line> {
    let mut c = Cur { b, t, i: 0 };
    let mut l = empty_line();
    let mut seen = 0u16;
    let mut has_kind = false;
    c.sp();
    c.eat(b'{')?;
    c.sp();
    let mut first = true;
    loop {
        if c.eat(b'}').is_some() {
            break;
        }
        if !first {
            c.eat(b',')?;
            c.sp();
        }
        first = false;
        c.eat(b'"')?;
        let field = c.plain_str()?;
        c.sp();
        c.eat(b':')?;
        c.sp();
        let bit = match field {
            "index" => 1,
            "time" => 2,
            "process" => 4,
            "type" => 8,
            "f" => 16,
            "key" => 32,
            "value" => 64,
            "node" => 128,
            "error" => 256,
            _ => 512,
        };
        if bit != 512 && seen & bit != 0 {
            return None; // duplicate field: the strict parser says so
        }
        seen |= bit;
        match field {
            "index" => l.index = Some(u64::try_from(c.int()?).ok()?),
            "time" => l.time = Some(u64::try_from(c.int()?).ok()?),
            "process" => {
                l.process = Some(if c.eat(b'"').is_some() {
                    Process::Named(c.plain_str()?.to_string())
                } else {
                    Process::Client(u64::try_from(c.int()?).ok()?)
                })
            }
            "type" => {
                c.eat(b'"')?;
                l.kind = kind_of(c.plain_str()?)?;
                has_kind = true;
            }
            "f" => {
                c.eat(b'"')?;
                l.f = syms.intern(Cow::Borrowed(c.plain_str()?));
            }
            "key" | "node" | "error" => {
                let id = match c.peek()? {
                    b'"' => {
                        c.i += 1;
                        syms.intern(Cow::Borrowed(c.plain_str()?))
                    }
                    b'n' if b[c.i..].starts_with(b"null") => {
                        c.i += 4;
                        NONE
                    }
                    b'-' | b'0'..=b'9' if field == "key" => {
                        let start = c.i;
                        c.int()?;
                        syms.intern(Cow::Borrowed(&t[start..c.i]))
                    }
                    _ => return None,
                };
                match field {
                    "key" => l.key = id,
                    "node" => l.node = id,
                    _ => l.error = id,
                }
            }
            "value" => {
                l.value = match c.peek()? {
                    b'"' => {
                        c.i += 1;
                        match c.plain_str() {
                            Some(s) => syms.text(s),
                            None => return None,
                        }
                    }
                    b'n' if b[c.i..].starts_with(b"null") => {
                        c.i += 4;
                        LVal::Null
                    }
                    b'-' | b'0'..=b'9' => {
                        let save = c.i;
                        match c.int() {
                            Some(n) => LVal::Int(n),
                            None => {
                                c.i = save;
                                syms.value(serde_json::from_slice(c.json_extent()?).ok()?)
                            }
                        }
                    }
                    _ => syms.value(serde_json::from_slice(c.json_extent()?).ok()?),
                }
            }
            _ => {
                c.json_extent()?;
            }
        }
        c.sp();
    }
    c.sp();
    // Every required field present, nothing after the object.
    (seen & 31 == 31 && has_kind && c.i == b.len()).then_some(l)
}

/// A flat EDN op map with simple values, or `None` for the full parser.
fn edn_fast<'a>(b: &'a [u8], t: &'a str, syms: &mut Syms<'a>) -> Option<Line> {
    let mut c = Cur { b, t, i: 0 };
    let mut l = empty_line();
    let mut has_kind = false;
    c.ws();
    c.eat(b'{')?;
    loop {
        c.ws();
        if c.eat(b'}').is_some() {
            break;
        }
        c.eat(b':')?;
        let field = c.name()?;
        c.ws();
        match field {
            "process" => {
                l.process = Some(if c.eat(b':').is_some() {
                    let n = c.name()?;
                    match n.parse::<u64>() {
                        Ok(p) => Process::Client(p),
                        Err(_) => Process::Named(n.to_string()),
                    }
                } else {
                    Process::Client(u64::try_from(c.int()?).ok()?)
                });
            }
            "type" => {
                c.eat(b':')?;
                l.kind = kind_of(c.name()?)?;
                has_kind = true;
            }
            "f" => {
                let s = if c.eat(b':').is_some() {
                    c.name()?
                } else {
                    c.eat(b'"')?;
                    c.plain_str()?
                };
                l.f = syms.intern(Cow::Borrowed(s));
            }
            "key" => {
                l.key = match c.peek()? {
                    b'"' => {
                        c.i += 1;
                        syms.intern(Cow::Borrowed(c.plain_str()?))
                    }
                    b':' => {
                        c.i += 1;
                        syms.intern(Cow::Borrowed(c.name()?))
                    }
                    b'n' if b[c.i..].starts_with(b"nil") => {
                        c.i += 3;
                        NONE
                    }
                    _ => {
                        let start = c.i;
                        c.int()?;
                        syms.intern(Cow::Borrowed(&t[start..c.i]))
                    }
                };
            }
            "time" => {
                if b[c.i..].starts_with(b"nil") {
                    c.i += 3;
                } else {
                    l.time = Some(u64::try_from(c.int()?).ok()?);
                }
            }
            "value" => l.value = edn_value(&mut c, syms)?,
            _ => return None,
        }
        // A value must end at a separator.
        if !matches!(c.peek()?, b' ' | b',' | b'}' | b'\t') {
            return None;
        }
    }
    c.ws();
    (l.f != NONE && has_kind && c.i == b.len()).then_some(l)
}

fn edn_scalar<'a>(c: &mut Cur<'a>, syms: &mut Syms<'a>) -> Option<LVal> {
    Some(match c.peek()? {
        b'"' => {
            c.i += 1;
            syms.text(c.plain_str()?)
        }
        b':' => {
            c.i += 1;
            syms.text(c.name()?)
        }
        b'n' if c.b[c.i..].starts_with(b"nil") => {
            c.i += 3;
            LVal::Null
        }
        _ => LVal::Int(c.int()?),
    })
}

fn edn_value<'a>(c: &mut Cur<'a>, syms: &mut Syms<'a>) -> Option<LVal> {
    if c.eat(b'[').is_none() {
        return edn_scalar(c, syms);
    }
    let mut items = Vec::new();
    let mark = syms.vals.len();
    loop {
        c.ws();
        if c.eat(b']').is_some() {
            break;
        }
        let item = match edn_scalar(c, syms)? {
            LVal::Null => Value::Null,
            LVal::Int(i) => Value::from(i),
            LVal::Str(at, n) => {
                let s = Value::String(syms.text_of(at, n).to_string());
                // The array holds its own strings: no span of the value text.
                syms.vals.truncate(mark);
                s
            }
            LVal::Json(v) => v,
        };
        items.push(item);
        if !matches!(c.peek()?, b' ' | b',' | b']' | b'\t') {
            return None;
        }
    }
    Some(LVal::Json(Value::Array(items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(mode: Mode, text: &str) {
        let mut a = Syms::default();
        let fast = match mode {
            Mode::Jsonl => json_fast(text.as_bytes(), text, &mut a),
            Mode::Edn => edn_fast(text.as_bytes(), text, &mut a),
            Mode::JepsenLog => log_fast(text, &mut a),
        }
        .unwrap_or_else(|| panic!("fast path declined {text}"));
        let mut b = Syms::default();
        let slow = slow(mode, text, 0, &mut b, Path::new("h"))
            .unwrap()
            .unwrap();
        let show = |l: &Line, s: &Syms| {
            let name = |id: u32| (id != NONE).then(|| s.list[id as usize].to_string());
            let v = match &l.value {
                LVal::Str(at, n) => Value::String(s.text_of(*at, *n).to_string()),
                LVal::Int(i) => Value::from(*i),
                LVal::Null => Value::Null,
                LVal::Json(v) => v.clone(),
            };
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {v} {:?} {:?}",
                l.index,
                l.time,
                l.process,
                l.kind,
                name(l.f),
                name(l.key),
                name(l.node),
                name(l.error)
            )
        };
        assert_eq!(show(&fast, &a), show(&slow, &b), "{text}");
    }

    #[test]
    fn fast_paths_agree_with_the_strict_parsers() {
        for line in [
            r#"{"index":0,"time":1203344,"process":3,"type":"invoke","f":"cas","key":"k1","value":[1,2]}"#,
            r#"{"index":2,"time":5300000,"process":"nemesis","type":"info","f":"start-partition","value":{"grudge":{"n1":["n3","n4","n5"]}}}"#,
            r#"{"index":1,"time":5,"process":0,"type":"ok","f":"read","key":7,"value":-12,"node":"n2","extra":[1,{"a":"}"}]}"#,
            r#"{"index":1,"time":5,"process":0,"type":"fail","f":"write","key":null,"value":"x y","error":"timeout"}"#,
            r#"{"index":1,"time":5,"process":0,"type":"ok","f":"read","value":1.5}"#,
        ] {
            both(Mode::Jsonl, line);
        }
        for line in [
            r#"{:process 9, :type :invoke, :f :append, :key "0", :value "x 9 0 y"}"#,
            r#"{:process 0, :type :ok, :f :get, :key "3", :value nil}"#,
            r#"{:process :nemesis, :type :info, :f :start, :value :cut, :time 12}"#,
            r#"{:type :ok, :process 3, :f :cas, :value [1 nil], :key 4}"#,
        ] {
            both(Mode::Edn, line);
        }
        for line in [
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
            "INFO  jepsen.util - 12   :ok   :write   -3",
            "INFO  jepsen.util - 4\t:info\t:write\t:timed-out",
            "INFO  jepsen.util - 4\t:fail\t:cas",
            "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]",
            "INFO  jepsen.util - 2  :ok  :cas  [3 nil]  ",
            "INFO  jepsen.util - 3\t:ok\t:read\t\"x y\"",
        ] {
            both(Mode::JepsenLog, line);
        }
        let mut s = Syms::default();
        for line in [
            "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0] 1",
            "INFO  jepsen.util - 2\t:invoke\t:cas\tnilly",
            "INFO  jepsen.util - :nemesis\t:info\t:start\tnil",
            "INFO  jepsen.util - 4\t:invoke\t:write\t:x",
            "INFO  jepsen.util - 4\t:ok\t:read\t1.5",
            "INFO  jepsen.util - +4\t:ok\t:read\t1",
            "INFO  jepsen.core - Worker 2 starting",
        ] {
            assert!(log_fast(line, &mut s).is_none(), "{line}");
        }
    }

    #[test]
    fn declines_what_it_cannot_read_exactly() {
        let mut s = Syms::default();
        for line in [
            r#"{"index":0,"time":1,"process":3,"type":"invoke","f":"c\"as"}"#,
            r#"{"index":0,"time":1,"process":3,"type":"invoke","f":"cas","f":"x"}"#,
            r#"{"index":0,"time":1,"process":3,"type":"invoke"}"#,
        ] {
            assert!(json_fast(line.as_bytes(), line, &mut s).is_none(), "{line}");
        }
        for line in [
            r#"{:process 0, :type :ok, :f :get, :value #{1 2}}"#,
            r#"{:process 0, :type :ok, :f :get, :value 1.5}"#,
            r#"{:process 0, :type :ok, :f :get, :error :timeout}"#,
        ] {
            assert!(edn_fast(line.as_bytes(), line, &mut s).is_none(), "{line}");
        }
    }
}
