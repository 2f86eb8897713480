//! The streaming, parallel loader: worker threads take the file a block of whole lines
//! at a time (reading under one lock, parsing outside it) and hand parsed blocks to the
//! calling thread, which joins invocations with completions in file order, exactly as
//! `History::from_events` (native JSONL) or `import::assemble` (Jepsen's leniency) do.
//! Memory is the compact ops plus a bounded number of blocks in flight; a time and
//! memory budget stop it between blocks.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use super::fast::{self, LVal, Line, Mode, Syms};
use super::{CompactHistory, CompactOp, FxMap, NO_RET, NONE, Val};
use crate::error::HistoryError;
use crate::event::{Event, EventType, Process};
use crate::import::{self, Format};
use crate::operation::{History, Outcome};

const BLOCK: usize = 4 << 20;
/// Fresh process ids (Jepsen leniency) are placeholders from the top of the range until
/// the largest original id is known.
const FRESH: u64 = 1 << 63;

/// Limits on loading: when to stop, how much to hold, how many threads.
#[derive(Clone, Debug, Default)]
pub struct LoadLimits {
    pub deadline: Option<Instant>,
    pub memory_bytes: Option<u64>,
    /// Parser threads; 0 means one per core.
    pub threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("{file}: time limit reached while loading ({read} of {total} bytes read)")]
    TimeLimit { file: String, read: u64, total: u64 },
    #[error(
        "{file}: memory limit reached while loading ({held} bytes held after {read} of {total} bytes)"
    )]
    MemoryLimit {
        file: String,
        held: u64,
        read: u64,
        total: u64,
    },
}

/// What loading cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadStats {
    pub bytes: u64,
    pub elapsed_ms: f64,
    /// Whether the streaming loader read it (else the whole-file importers did).
    pub streamed: bool,
}

/// Loads `path` in `format` as a compact history. Line formats (native JSONL, one EDN op
/// map a line as Porcupine's kv logs, Jepsen log lines) stream; other formats go through
/// the whole-file importers and are then made compact.
pub fn load(
    path: &Path,
    format: Format,
    limits: &LoadLimits,
) -> Result<(CompactHistory, LoadStats), LoadError> {
    let start = Instant::now();
    let total = std::fs::metadata(path)
        .map_err(|e| HistoryError::io(path, e))?
        .len();
    let head = Head::read(path, format, total)?;
    if let Some(mode) = head.mode {
        match stream(path, mode, limits, total, head.bytes()) {
            Ok(c) => {
                let stats = LoadStats {
                    bytes: total,
                    elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
                    streamed: true,
                };
                return Ok((c, stats));
            }
            // An EDN file that is not one map a line: the whole-file reader decides.
            Err(Stop::NotLines) => {}
            Err(Stop::Error(e)) => return Err(e),
        }
    }
    // The format is known now (or cannot be told, which the importer reports).
    let format = head.format.unwrap_or(format);
    let h = match head.whole {
        Some(Ok(text)) => import::read_str(&text, path, format)?,
        Some(Err(bytes)) => import::read_bytes(bytes, path, format)?,
        None => import::read_whole(path, format)?,
    };
    if limits.deadline.is_some_and(|d| Instant::now() > d) {
        return Err(LoadError::TimeLimit {
            file: path.display().to_string(),
            read: total,
            total,
        });
    }
    let stats = LoadStats {
        bytes: total,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        streamed: false,
    };
    Ok((CompactHistory::from_history(&h), stats))
}

/// The whole history of `path`, for `import::read_file`: the format is told as `load`
/// tells it. Jepsen logs are read by the streaming loader (a log line says nothing the
/// compact form drops); every other format by its whole-history reader, which keeps what
/// the compact form does not (an invoke's own node, request ids).
pub(crate) fn read_history(path: &Path, format: Format) -> Result<History, HistoryError> {
    let total = std::fs::metadata(path)
        .map_err(|e| HistoryError::io(path, e))?
        .len();
    let head = Head::read(path, format, total)?;
    if head.mode == Some(Mode::JepsenLog) {
        let limits = LoadLimits::default();
        return match stream(path, Mode::JepsenLog, &limits, total, head.bytes()) {
            Ok(c) => Ok(c.to_history()),
            Err(Stop::Error(LoadError::History(e))) => Err(e),
            Err(Stop::Error(other)) => unreachable!("loading without limits stopped: {other}"),
            Err(Stop::NotLines) => unreachable!("every log line is a line"),
        };
    }
    let format = head.format.unwrap_or(format);
    match head.whole {
        Some(Ok(text)) => import::read_str(&text, path, format),
        Some(Err(bytes)) => import::read_bytes(bytes, path, format),
        None => import::read_whole(path, format),
    }
}

/// The start of a file: the format it shows and the line mode that fits it, if any.
struct Head {
    format: Option<Format>,
    mode: Option<Mode>,
    /// The whole file, when the start is all of it: its text, or bytes that are not UTF-8.
    whole: Option<Result<String, Vec<u8>>>,
}

const HEAD: u64 = 64 << 10;

impl Head {
    /// The whole file's bytes, when they were read.
    fn bytes(&self) -> Option<&[u8]> {
        self.whole.as_ref().map(|w| match w {
            Ok(text) => text.as_bytes(),
            Err(bytes) => bytes.as_slice(),
        })
    }

    fn read(path: &Path, format: Format, total: u64) -> Result<Head, HistoryError> {
        let mode = match format {
            Format::Jsonl => Some(Mode::Jsonl),
            Format::PorcupineKv => Some(Mode::Edn),
            Format::JepsenLog => Some(Mode::JepsenLog),
            Format::Json => None,
            Format::Auto | Format::Edn => {
                let head = read_head(path, total)?;
                if head.len() as u64 == total {
                    // All of it: checked as UTF-8 once, for sniffing and reading both.
                    let whole = String::from_utf8(head).map_err(|e| e.into_bytes());
                    let (format, mode) = match &whole {
                        Ok(text) => sniff(text, format),
                        Err(bytes) => sniff(&String::from_utf8_lossy(bytes), format),
                    };
                    return Ok(Head {
                        format,
                        mode,
                        whole: Some(whole),
                    });
                }
                let (format, mode) = sniff(&String::from_utf8_lossy(&head), format);
                let whole = None;
                return Ok(Head {
                    format,
                    mode,
                    whole,
                });
            }
        };
        Ok(Head {
            format: Some(format),
            mode,
            whole: None,
        })
    }
}

/// The file's first 64 KiB (all of it, if smaller).
fn read_head(path: &Path, total: u64) -> Result<Vec<u8>, HistoryError> {
    let mut head = Vec::with_capacity(total.min(HEAD) as usize + 1);
    File::open(path)
        .and_then(|f| f.take(HEAD).read_to_end(&mut head))
        .map_err(|e| HistoryError::io(path, e))?;
    Ok(head)
}

/// The format the file's start shows (`format` unless that is `Auto`) and the line mode
/// that fits it, if any.
fn sniff(text: &str, format: Format) -> (Option<Format>, Option<Mode>) {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(';'))
        .unwrap_or("");
    let detected = match format {
        Format::Auto => import::detect(text),
        f => Some(f),
    };
    let mode = match detected {
        Some(Format::Jsonl) => Some(Mode::Jsonl),
        Some(Format::PorcupineKv) => Some(Mode::Edn),
        Some(Format::JepsenLog) => Some(Mode::JepsenLog),
        Some(Format::Edn) if first.starts_with('{') => Some(Mode::Edn),
        _ => None,
    };
    (detected, mode)
}

enum Stop {
    NotLines,
    Error(LoadError),
}

impl From<HistoryError> for Stop {
    fn from(e: HistoryError) -> Self {
        Stop::Error(e.into())
    }
}

/// A parsed block: its lines, its symbols, and how many input lines it spans.
struct Block {
    seq: usize,
    lines: Vec<Line>,
    syms: Vec<String>,
    /// The block's string values, end to end (`LVal::Str` spans).
    vals: String,
    line_count: usize,
    bytes: usize,
    error: Option<HistoryError>,
}

struct Reader {
    file: File,
    carry: Vec<u8>,
    seq: usize,
    done: bool,
}

impl Reader {
    /// The next block of whole lines.
    fn next(&mut self, path: &Path) -> Result<Option<(usize, Vec<u8>)>, HistoryError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.carry);
        loop {
            let have = buf.len();
            // Read into spare capacity: no 4 MiB of zeroes written first.
            buf.reserve(BLOCK);
            let n = (&mut self.file)
                .take(BLOCK as u64)
                .read_to_end(&mut buf)
                .map_err(|e| HistoryError::io(path, e))?;
            if n == 0 {
                self.done = true;
                break;
            }
            if let Some(last) = buf[have..].iter().rposition(|&b| b == b'\n') {
                self.carry = buf[have + last + 1..].to_vec();
                buf.truncate(have + last + 1);
                break;
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.seq += 1;
        Ok(Some((self.seq - 1, buf)))
    }
}

fn parse_block(seq: usize, buf: &[u8], mode: Mode, path: &Path) -> Block {
    let mut block = Block {
        seq,
        lines: Vec::with_capacity(buf.len() / 64),
        syms: Vec::new(),
        vals: String::new(),
        line_count: 0,
        bytes: buf.len(),
        error: None,
    };
    let mut syms = Syms::default();
    // One UTF-8 check for the whole block ('\n' never splits a character); a block
    // that fails is checked line by line to name the line.
    let whole = std::str::from_utf8(buf).ok();
    let (mut start, mut i) = (0usize, 0usize);
    while start < buf.len() {
        let end = memchr::memchr(b'\n', &buf[start..]).map_or(buf.len(), |k| start + k);
        let (from, raw) = (start, &buf[start..end]);
        start = end + 1;
        i += 1;
        let line = i as u32;
        let text = match whole {
            Some(w) => &w[from..end],
            None => match std::str::from_utf8(raw) {
                Ok(t) => t,
                Err(_) => {
                    block.error = Some(HistoryError::malformed(
                        path,
                        line as usize,
                        "encoding",
                        "the file is not UTF-8 text",
                    ));
                    break;
                }
            },
        };
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() || mode == Mode::Edn && text.trim_start().starts_with(';') {
            continue;
        }
        match fast::parse(mode, text, line, &mut syms, path) {
            Ok(Some(l)) => block.lines.push(l),
            Ok(None) => {}
            Err(e) => {
                block.error = Some(e);
                break;
            }
        }
    }
    // Lines spanned: a last line without its '\n' counts too.
    block.line_count = memchr::memchr_iter(b'\n', buf).count()
        + usize::from(buf.last().is_some_and(|&b| b != b'\n'));
    block.vals = std::mem::take(&mut syms.vals);
    block.syms = syms.list.into_iter().map(Cow::into_owned).collect();
    block
}

/// Streams `path` (whose bytes are `whole`, if already read).
fn stream(
    path: &Path,
    mode: Mode,
    limits: &LoadLimits,
    total: u64,
    whole: Option<&[u8]>,
) -> Result<CompactHistory, Stop> {
    let mut asm = Assembler::new(mode, path, total);
    let mut read = 0u64;
    // After each block: whether the budget still holds.
    let within = |asm: &Assembler, read: u64| -> Result<(), Stop> {
        if limits.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(Stop::Error(LoadError::TimeLimit {
                file: path.display().to_string(),
                read,
                total,
            }));
        }
        let held = asm.held_bytes();
        if limits.memory_bytes.is_some_and(|m| held > m) {
            return Err(Stop::Error(LoadError::MemoryLimit {
                file: path.display().to_string(),
                held,
                read,
                total,
            }));
        }
        Ok(())
    };
    if let Some(bytes) = whole {
        asm.block(parse_block(0, bytes, mode, path))?;
        within(&asm, total)?;
        return Ok(asm.finish());
    }
    let file = File::open(path).map_err(|e| HistoryError::io(path, e))?;
    let mut reader = Reader {
        file,
        carry: Vec::new(),
        seq: 0,
        done: false,
    };
    if total <= BLOCK as u64 {
        // One block: parsed here, with no thread to start.
        while let Some((seq, buf)) = reader.next(path)? {
            let block = parse_block(seq, &buf, mode, path);
            read += block.bytes as u64;
            asm.block(block)?;
            within(&asm, read)?;
        }
        return Ok(asm.finish());
    }
    let threads = crate::cores::or_available(limits.threads).clamp(1, 16);
    let reader = Mutex::new(reader);
    let (tx, rx) = sync_channel::<Result<Block, HistoryError>>(threads * 2);
    let result: Result<(), Stop> = std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let reader = &reader;
            s.spawn(move || {
                loop {
                    let next = reader.lock().expect("reader lock").next(path);
                    let msg = match next {
                        Ok(Some((seq, buf))) => Ok(parse_block(seq, &buf, mode, path)),
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
                    let failed = msg.is_err();
                    if tx.send(msg).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Block> = BTreeMap::new();
        let mut next = 0usize;
        for msg in rx.iter() {
            let block = msg?;
            pending.insert(block.seq, block);
            while let Some(block) = pending.remove(&next) {
                next += 1;
                read += block.bytes as u64;
                asm.block(block)?;
                within(&asm, read)?;
            }
        }
        Ok(())
    });
    // Dropping the receiver (on error) ends the workers at their next send.
    result?;
    Ok(asm.finish())
}

/// Joins events into ops in file order, with the strict rules of `History::from_events`
/// and, for Jepsen input, the leniency of `import::assemble` first.
struct Assembler<'p> {
    mode: Mode,
    path: &'p Path,
    c: CompactHistory,
    line_base: usize,
    last_time: u64,
    time_seen: bool,
    in_flight: PidMap<u32>,
    retired: PidMap<usize>,
    // Jepsen leniency
    current: PidMap<u64>,
    lenient_in_flight: PidMap<()>,
    lenient_retired: PidMap<()>,
    fresh: u64,
    max_client: Option<u64>,
    anonymous: Vec<(u32, u32, u64)>,
    remap: Vec<u32>,
}

impl<'p> Assembler<'p> {
    fn new(mode: Mode, path: &'p Path, total: u64) -> Self {
        let mut c = CompactHistory::default();
        // An op line is at least ~60 bytes and an op two lines.
        c.ops.reserve((total / 130) as usize);
        Assembler {
            mode,
            path,
            c,
            line_base: 0,
            last_time: 0,
            time_seen: false,
            in_flight: PidMap::default(),
            retired: PidMap::default(),
            current: PidMap::default(),
            lenient_in_flight: PidMap::default(),
            lenient_retired: PidMap::default(),
            fresh: 0,
            max_client: None,
            anonymous: Vec::new(),
            remap: Vec::new(),
        }
    }

    fn held_bytes(&self) -> u64 {
        (self.c.ops.capacity() * std::mem::size_of::<CompactOp>()
            + self.c.strings.bytes()
            + self.c.text.capacity()
            + self.c.values.len() * 64
            + self.c.annotations.len() * 200
            + self.in_flight.len() * 16) as u64
    }

    fn block(&mut self, b: Block) -> Result<(), Stop> {
        self.remap.clear();
        for s in &b.syms {
            self.remap.push(self.c.strings.intern(s));
        }
        let base = self.line_base;
        for l in &b.lines {
            self.event(l, base + l.line as usize, &b.syms, &b.vals)?;
        }
        if let Some(e) = b.error {
            // A line that is not a whole EDN map may be part of a multi-line one.
            if self.mode == Mode::Edn {
                return Err(Stop::NotLines);
            }
            return Err(Stop::Error(shift(e, base).into()));
        }
        self.line_base += b.line_count;
        Ok(())
    }

    fn sym(&self, id: u32) -> u32 {
        if id == NONE {
            NONE
        } else {
            self.remap[id as usize]
        }
    }

    fn val(&mut self, v: &LVal, vals: &str) -> Val {
        match v {
            LVal::Null => Val::Null,
            LVal::Int(i) => Val::Int(*i),
            &LVal::Str(at, n) => self.c.push_str(&vals[at as usize..(at + n) as usize]),
            LVal::Json(j) => {
                self.c.values.push(j.clone());
                Val::Json(self.c.values.len() as u32 - 1)
            }
        }
    }

    fn next_fresh(&mut self) -> u64 {
        self.fresh += 1;
        FRESH + self.fresh - 1
    }

    fn event(&mut self, l: &Line, line: usize, syms: &[String], vals: &str) -> Result<(), Stop> {
        let i = self.c.events;
        let path = self.path;
        let bad =
            |field: &str, msg: String| Stop::from(HistoryError::malformed(path, line, field, msg));
        let (f, key) = (self.sym(l.f), self.sym(l.key));
        let time = match self.mode {
            Mode::Jsonl => {
                if l.index != Some(i) {
                    return Err(bad(
                        "index",
                        format!(
                            "expected {i} (indexes are dense from 0), found {}",
                            l.index.unwrap_or(0)
                        ),
                    ));
                }
                let t = l.time.unwrap_or(0);
                if t < self.last_time {
                    return Err(bad(
                        "time",
                        format!(
                            "{t} is earlier than the previous event's {}",
                            self.last_time
                        ),
                    ));
                }
                t
            }
            Mode::Edn | Mode::JepsenLog => {
                self.time_seen |= l.time.is_some();
                l.time.unwrap_or(self.last_time).max(self.last_time)
            }
        };
        self.last_time = time;
        let process = match self.mode {
            Mode::Jsonl => l.process.clone().expect("JSONL events have a process"),
            Mode::Edn | Mode::JepsenLog => self.lenient_process(l, f, key, line)?,
        };
        let p = match process {
            Process::Named(name) => {
                let text = |id: u32| (id != NONE).then(|| syms[id as usize].clone());
                self.c.annotations.push(Event {
                    request_id: None,
                    index: i,
                    time,
                    process: Process::Named(name),
                    kind: l.kind,
                    f: text(l.f).unwrap_or_default(),
                    key: text(l.key),
                    value: match &l.value {
                        LVal::Null => serde_json::Value::Null,
                        LVal::Int(n) => (*n).into(),
                        &LVal::Str(at, n) => vals[at as usize..(at + n) as usize].into(),
                        LVal::Json(v) => v.clone(),
                    },
                    node: text(l.node),
                    error: text(l.error),
                });
                self.c.events += 1;
                return Ok(());
            }
            Process::Client(p) => p,
        };
        match l.kind {
            EventType::Invoke => {
                if let Some(open) = self.in_flight.get(p) {
                    return Err(bad(
                        "process",
                        format!(
                            "process {p} invoked again while its op at index {} is in flight",
                            self.c.ops[open as usize].call
                        ),
                    ));
                }
                if let Some(at) = self.retired.get(p) {
                    return Err(bad(
                        "process",
                        format!(
                            "process {p} was retired by an info completion at line {at}; \
                             a client continues under a fresh process id"
                        ),
                    ));
                }
                self.in_flight.insert(p, self.c.ops.len() as u32);
                let v = self.val(&l.value, vals);
                self.c.ops.push(CompactOp {
                    call: i,
                    ret: NO_RET,
                    call_time: time,
                    ret_time: 0,
                    process: p,
                    f,
                    key,
                    node: self.sym(l.node),
                    error: NONE,
                    invoke_value: v,
                    value: v,
                    outcome: Outcome::Info,
                });
            }
            kind => {
                let Some(open) = self.in_flight.remove(p) else {
                    return Err(bad(
                        "type",
                        format!(
                            "{} for process {p}, which has no op in flight",
                            kind.as_str()
                        ),
                    ));
                };
                let (node, error) = (self.sym(l.node), self.sym(l.error));
                // A write's completion mostly repeats its invocation's value: share it.
                let invoked = self.c.ops[open as usize].invoke_value;
                let value = match (&l.value, invoked) {
                    (&LVal::Str(at, n), Val::Str { .. })
                        if self.c.str_of(invoked) == &vals[at as usize..(at + n) as usize] =>
                    {
                        invoked
                    }
                    (LVal::Null, Val::Null) => invoked,
                    (v, _) => self.val(v, vals),
                };
                let strings = &self.c.strings;
                let op = &mut self.c.ops[open as usize];
                if op.f != f {
                    return Err(bad(
                        "f",
                        format!(
                            "completion {:?} does not match its invoke {:?}",
                            strings.get(f),
                            strings.get(op.f)
                        ),
                    ));
                }
                if op.key != key {
                    let name = |k: u32| (k != NONE).then(|| strings.get(k).to_string());
                    return Err(bad(
                        "key",
                        format!(
                            "completion key {:?} does not match its invoke key {:?}",
                            name(key),
                            name(op.key)
                        ),
                    ));
                }
                op.ret = i;
                op.ret_time = time;
                op.error = error;
                op.value = value;
                if node != NONE {
                    op.node = node;
                }
                match kind {
                    EventType::Ok => op.outcome = Outcome::Ok,
                    EventType::Fail => op.outcome = Outcome::Fail,
                    _ => {
                        op.outcome = Outcome::Info;
                        self.retired.insert(p, line);
                    }
                }
            }
        }
        self.c.events += 1;
        Ok(())
    }

    /// `import::assemble`'s process rules, with fresh ids as placeholders.
    fn lenient_process(
        &mut self,
        l: &Line,
        f: u32,
        key: u32,
        line: usize,
    ) -> Result<Process, Stop> {
        Ok(match &l.process {
            None if l.kind == EventType::Invoke => {
                let id = self.next_fresh();
                self.anonymous.push((f, key, id));
                Process::Client(id)
            }
            None => {
                let at = self
                    .anonymous
                    .iter()
                    .position(|&(af, ak, _)| af == f && ak == key)
                    .ok_or_else(|| {
                        Stop::from(HistoryError::malformed(
                            self.path,
                            line,
                            "process",
                            "missing, and no invocation without a process is in flight",
                        ))
                    })?;
                Process::Client(self.anonymous.remove(at).2)
            }
            Some(Process::Named(n)) => Process::Named(n.clone()),
            Some(Process::Client(p)) => {
                let p = *p;
                self.max_client = Some(self.max_client.map_or(p, |m| m.max(p)));
                let id = self.current.get(p).unwrap_or_else(|| {
                    self.current.insert(p, p);
                    p
                });
                if l.kind == EventType::Invoke {
                    let id = if self.lenient_retired.get(id).is_some() {
                        let fresh = self.next_fresh();
                        self.current.insert(p, fresh);
                        fresh
                    } else {
                        id
                    };
                    self.lenient_in_flight.insert(id, ());
                    Process::Client(id)
                } else if self.lenient_in_flight.remove(id).is_some() {
                    if l.kind == EventType::Info {
                        self.lenient_retired.insert(id, ());
                    }
                    Process::Client(id)
                } else {
                    Process::Named(format!("orphaned-{p}"))
                }
            }
        })
    }

    fn finish(mut self) -> CompactHistory {
        if self.mode != Mode::Jsonl {
            let base = self.max_client.map_or(0, |m| m + 1);
            let no_times = !self.time_seen;
            for o in &mut self.c.ops {
                if o.process >= FRESH {
                    o.process = base + (o.process - FRESH);
                }
                if no_times {
                    o.call_time = o.call;
                    o.ret_time = if o.ret == NO_RET { 0 } else { o.ret };
                }
            }
            if no_times {
                for a in &mut self.c.annotations {
                    a.time = a.index;
                }
            }
        }
        self.c.ops.shrink_to_fit();
        self.c
    }
}

/// A map keyed by process id: a slot per id for the small ids recorders use and for the
/// loader's fresh ids, a hash map for any other. Every event looks its process up
/// several times, so this is the assembler's inner loop.
struct PidMap<V: Copy> {
    low: Vec<Option<V>>,
    fresh: Vec<Option<V>>,
    other: FxMap<u64, V>,
    len: usize,
}

impl<V: Copy> Default for PidMap<V> {
    fn default() -> Self {
        PidMap {
            low: Vec::new(),
            fresh: Vec::new(),
            other: FxMap::default(),
            len: 0,
        }
    }
}

/// Ids below this (from 0, and from `FRESH`) get slots: 16 MiB of slots at most.
const DENSE: u64 = 1 << 20;

impl<V: Copy> PidMap<V> {
    /// The dense table and index for `k`, if it has one.
    fn dense(&mut self, k: u64) -> Option<(&mut Vec<Option<V>>, usize)> {
        if k < DENSE {
            Some((&mut self.low, k as usize))
        } else if k >= FRESH && k - FRESH < DENSE {
            Some((&mut self.fresh, (k - FRESH) as usize))
        } else {
            None
        }
    }

    fn get(&self, k: u64) -> Option<V> {
        if k < DENSE {
            self.low.get(k as usize).copied().flatten()
        } else if k >= FRESH && k - FRESH < DENSE {
            self.fresh.get((k - FRESH) as usize).copied().flatten()
        } else {
            self.other.get(&k).copied()
        }
    }

    fn insert(&mut self, k: u64, v: V) {
        let old = match self.dense(k) {
            Some((table, i)) => {
                if table.len() <= i {
                    table.resize(i + 1, None);
                }
                table[i].replace(v)
            }
            None => self.other.insert(k, v),
        };
        self.len += usize::from(old.is_none());
    }

    fn remove(&mut self, k: u64) -> Option<V> {
        let old = match self.dense(k) {
            Some((table, i)) => table.get_mut(i).and_then(Option::take),
            None => self.other.remove(&k),
        };
        self.len -= usize::from(old.is_some());
        old
    }

    fn len(&self) -> usize {
        self.len
    }
}

fn shift(e: HistoryError, base: usize) -> HistoryError {
    match e {
        HistoryError::Malformed {
            file,
            line,
            field,
            message,
        } => HistoryError::Malformed {
            file,
            line: line + base,
            field,
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str, name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, path)
    }

    fn same_as_importer(text: &str, format: Format) {
        let (_d, path) = write(text, "h");
        let (c, stats) = load(&path, format, &LoadLimits::default()).unwrap();
        assert!(stats.streamed);
        let h = import::read_file(&path, format).unwrap();
        // The ops, the named events and the count are the history (an invoke's node is
        // not kept apart from its completion's).
        let back = c.to_history();
        assert_eq!(back.operations, h.operations, "{text}");
        assert_eq!(back.annotations, h.annotations, "{text}");
        assert_eq!(back.events.len(), h.events.len(), "{text}");
    }

    #[test]
    fn streams_the_same_history_the_importers_read() {
        same_as_importer(
            "{\"index\":0,\"time\":1,\"process\":3,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"k1\",\"value\":[1,2]}\n\
             \n\
             {\"index\":1,\"time\":2,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\",\"value\":null}\n\
             {\"index\":2,\"time\":5,\"process\":3,\"type\":\"ok\",\"f\":\"cas\",\"key\":\"k1\",\"value\":[1,2],\"node\":\"n1\"}\n",
            Format::Jsonl,
        );
        same_as_importer(
            "{:process 1, :type :invoke, :f :put, :key \"a\", :value \"x\"}\n\
             {:process 1, :type :info, :f :put, :key \"a\", :value \"x\"}\n\
             {:process :nemesis, :type :info, :f :start, :value nil}\n\
             {:process 1, :type :invoke, :f :get, :key \"a\", :value nil}\n\
             {:process 2, :type :ok, :f :get, :key \"a\", :value \"x\"}\n\
             {:process 1, :type :ok, :f :get, :key \"a\", :value \"x\"}\n",
            Format::Auto,
        );
    }

    #[test]
    fn jepsen_logs_stream_to_the_history_the_log_reader_gives() {
        let text = "INFO  jepsen.core - Worker 2 starting\n\
                    INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 1\t:invoke\t:write\t3\n\
                    \n\
                    INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n\
                    INFO  jepsen.util - 2   :ok   :cas   [3 0]\n\
                    INFO  jepsen.util - 1\t:info\t:write\t:timed-out\n\
                    INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 7\t:ok\t:read\t1\n\
                    INFO  jepsen.util - 1\t:ok\t:read\t3\n\
                    INFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
        let (_d, path) = write(text, "e.log");
        let want = import::read_str(text, &path, Format::JepsenLog).unwrap();
        for format in [Format::Auto, Format::JepsenLog] {
            let got = import::read_file(&path, format).unwrap();
            assert_eq!(got.operations, want.operations);
            assert_eq!(got.events, want.events);
            assert_eq!(got.annotations, want.annotations);
            let (c, stats) = load(&path, format, &LoadLimits::default()).unwrap();
            assert!(stats.streamed);
            assert_eq!(c.to_history().events, want.events);
        }
        let (_d, bad) = write("INFO  jepsen.util - 1 :ok :read [1\n", "b.log");
        let err = import::read_file(&bad, Format::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}:1: value:", bad.display())),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_line_across_blocks() {
        let mut text = String::new();
        let n = 120_000; // more than one block
        for i in 0..n {
            text.push_str(&format!(
                "{{\"index\":{i},\"time\":{i},\"process\":{},\"type\":\"{}\",\"f\":\"read\",\"value\":null}}\n",
                i / 2,
                if i % 2 == 0 { "invoke" } else { "ok" }
            ));
        }
        text.push_str("{\"index\":7,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\"}\n");
        let (_d, path) = write(&text, "h.jsonl");
        let err = load(&path, Format::Jsonl, &LoadLimits::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("h.jsonl:{}: index: expected {n}", n + 1)),
            "{err}"
        );
        let want = import::read_file(&path, Format::Jsonl)
            .unwrap_err()
            .to_string();
        assert_eq!(err, want);
    }

    #[test]
    fn limits_stop_loading() {
        let (_d, path) = write(
            "{\"index\":0,\"time\":1,\"process\":3,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n",
            "h.jsonl",
        );
        let past = LoadLimits {
            deadline: Some(Instant::now()),
            ..Default::default()
        };
        assert!(matches!(
            load(&path, Format::Jsonl, &past),
            Err(LoadError::TimeLimit { .. })
        ));
        let tiny = LoadLimits {
            memory_bytes: Some(1),
            ..Default::default()
        };
        assert!(matches!(
            load(&path, Format::Jsonl, &tiny),
            Err(LoadError::MemoryLimit { .. })
        ));
    }

    #[test]
    fn multi_line_edn_falls_back_to_the_whole_file_reader() {
        let (_d, path) = write(
            "{:process 0, :type :invoke,\n :f :read, :value nil}\n{:process 0, :type :ok, :f :read, :value 1}\n",
            "h.edn",
        );
        let (c, stats) = load(&path, Format::Edn, &LoadLimits::default()).unwrap();
        assert!(!stats.streamed);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn pid_map_holds_small_fresh_and_other_ids() {
        let mut m: PidMap<u32> = PidMap::default();
        for (k, v) in [(3, 1), (FRESH + 2, 2), (DENSE + 5, 3), (u64::MAX, 4)] {
            assert_eq!(m.get(k), None);
            m.insert(k, v);
            assert_eq!(m.get(k), Some(v));
        }
        m.insert(3, 9);
        assert_eq!((m.get(3), m.len()), (Some(9), 4));
        assert_eq!(m.remove(FRESH + 2), Some(2));
        assert_eq!(m.remove(FRESH + 2), None);
        assert_eq!(m.remove(DENSE + 5), Some(3));
        assert_eq!((m.get(FRESH + 2), m.get(7), m.len()), (None, None, 2));
    }
}
