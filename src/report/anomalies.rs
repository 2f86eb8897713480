//! One section per checker verdict, and in it each anomaly: its description, the ops it
//! names (linked to the timeline), a drawing when the data has a known shape (a
//! linearizability counterexample, a dependency cycle), its other data as a table, and the
//! node log lines written around it.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value;

use super::node_logs::{ClockMap, NodeLog};
use super::timeline::value_text;
use super::{counterexample, cycle_drawing, escape, witness};
use crate::checker::{Anomaly, Validity, Verdict};
use crate::history::History;

/// Anomalies drawn per verdict; the rest are counted by kind.
pub const MAX_ANOMALIES_SHOWN: usize = 20;
const MAX_EVENTS_LISTED: usize = 20;
const MAX_DATA_CHARS: usize = 8000;
/// Log lines are taken from this long before the anomaly's first event to after its last.
const LOG_MARGIN_MS: f64 = 1000.0;

pub struct Context<'a> {
    pub history: &'a History,
    /// Event index (invoke or completion) to op id.
    pub op_of_event: HashMap<u64, usize>,
    pub node_logs: &'a [NodeLog],
    /// Per node: wall-clock ms minus history ms, over the run.
    pub offsets: HashMap<String, ClockMap>,
    /// The run's start as unix ms, for nodes without probe samples.
    pub started_ms: Option<f64>,
}

impl<'a> Context<'a> {
    pub fn new(
        history: &'a History,
        node_logs: &'a [NodeLog],
        offsets: HashMap<String, ClockMap>,
        started_ms: Option<f64>,
    ) -> Self {
        let mut op_of_event = HashMap::with_capacity(history.operations.len() * 2);
        for op in &history.operations {
            op_of_event.insert(op.call, op.id);
            if let Some(r) = op.ret {
                op_of_event.insert(r, op.id);
            }
        }
        Context {
            history,
            op_of_event,
            node_logs,
            offsets,
            started_ms,
        }
    }
}

/// A checker's figure: fractions to 3 decimals, everything else as compact JSON.
fn stat_text(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if v.is_f64() => format!("{f:.3}"),
        _ => value_text(v),
    }
}

pub fn validity_word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
}

/// An anomaly's data in a shape the report draws.
enum Witness {
    Linearizability(witness::LinWitness),
    Cycle(Vec<witness::CycleStep>),
    Other,
}

impl Witness {
    fn of(a: &Anomaly) -> Witness {
        if let Some(w) = witness::lin_witness(a) {
            Witness::Linearizability(w)
        } else if let Some(c) = witness::cycle(a) {
            Witness::Cycle(c)
        } else {
            Witness::Other
        }
    }
}

/// Every event an anomaly involves: its own list and those its data names.
fn anomaly_events(ctx: &Context, a: &Anomaly, w: &Witness) -> Vec<u64> {
    let mut ev = a.events.clone();
    match w {
        Witness::Linearizability(l) => ev.extend(&l.unplaceable),
        Witness::Cycle(c) => ev.extend(c.iter().filter_map(|s| {
            cycle_drawing::op_of(s.op, ctx.history).map(|o| ctx.history.operations[o].call)
        })),
        Witness::Other => {}
    }
    ev.sort_unstable();
    ev.dedup();
    ev
}

/// The verdict sections, and for the timeline each shown anomaly's id and events.
pub fn render(ctx: &Context, verdicts: &[Verdict]) -> (String, Vec<(String, Vec<u64>)>) {
    let mut out = String::new();
    let mut marks = Vec::new();
    if verdicts.is_empty() {
        out.push_str(r#"<p class="muted">No checker ran: there is no verdict.</p>"#);
    }
    for (vi, v) in verdicts.iter().enumerate() {
        let word = validity_word(v.valid);
        let _ = write!(
            out,
            r#"<div class="verdict v-{word}" id="verdict-{vi}"><h3><span class="badge b-{word}">{word}</span> {}</h3><p>{}</p>"#,
            escape::html(&v.checker),
            escape::html(&v.explanation)
        );
        if let Value::Object(stats) = &v.stats
            && !stats.is_empty()
        {
            out.push_str(r#"<dl class="stats">"#);
            for (k, val) in stats {
                let _ = write!(
                    out,
                    "<dt>{}</dt><dd>{}</dd>",
                    escape::html(k),
                    escape::html(&escape::truncate(&stat_text(val), 80))
                );
            }
            out.push_str("</dl>");
        }
        for (ai, a) in v.anomalies.iter().take(MAX_ANOMALIES_SHOWN).enumerate() {
            let id = format!("a{vi}-{ai}");
            let w = Witness::of(a);
            let events = anomaly_events(ctx, a, &w);
            out.push_str(&anomaly(ctx, a, &w, &id, &events));
            if !events.is_empty() {
                marks.push((id, events));
            }
        }
        if v.anomalies.len() > MAX_ANOMALIES_SHOWN {
            let mut kinds: Vec<(&str, usize)> = Vec::new();
            for a in &v.anomalies[MAX_ANOMALIES_SHOWN..] {
                match kinds.iter_mut().find(|(k, _)| *k == a.kind) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((&a.kind, 1)),
                }
            }
            let list: Vec<String> = kinds
                .iter()
                .map(|(k, n)| format!("{n} × {}", escape::html(k)))
                .collect();
            let _ = write!(
                out,
                r#"<p class="muted">{} more anomalies not drawn ({}); all are in results.json.</p>"#,
                v.anomalies.len() - MAX_ANOMALIES_SHOWN,
                list.join(", ")
            );
        }
        out.push_str("</div>");
    }
    (out, marks)
}

fn anomaly(ctx: &Context, a: &Anomaly, w: &Witness, id: &str, events: &[u64]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<div class="anomaly" id="{id}"><h4><span class="kind">{}</span>{}"#,
        escape::html(&a.kind),
        a.key
            .as_deref()
            .map(|k| format!(" on key <code>{}</code>", escape::html(k)))
            .unwrap_or_default()
    );
    if !events.is_empty() {
        let _ = write!(
            out,
            r#" <button class="show-mark" data-mark="{id}">show on timeline</button>"#
        );
    }
    let _ = write!(out, "</h4><p>{}</p>", escape::html(&a.description));

    let rich = match w {
        Witness::Linearizability(l) => counterexample::render(l, ctx.history, &ctx.op_of_event)
            .map(|html| format!(r#"<div class="counterexample">{html}</div>"#)),
        Witness::Cycle(c) => Some(cycle_drawing::render(c, ctx.history)),
        Witness::Other => None,
    };
    let drew = rich.is_some();
    if let Some(html) = rich {
        out.push_str(&html);
    } else if let Value::Object(o) = &a.data {
        out.push_str(&data_table(o));
    }
    if !a.events.is_empty() {
        out.push_str(&event_table(ctx.history, &a.events));
    }
    out.push_str(&log_excerpts(ctx, events));
    if !a.data.is_null() {
        let _ = write!(
            out,
            r#"<details{}><summary>data</summary><pre>{}</pre></details>"#,
            if drew || a.data.is_object() {
                ""
            } else {
                " open"
            },
            escape::html(&escape::json_preview(&a.data, MAX_DATA_CHARS))
        );
    }
    out.push_str("</div>");
    out
}

/// An object's fields as a two-column table (split-brain findings: nodes, terms, times, ...).
fn data_table(o: &serde_json::Map<String, Value>) -> String {
    let mut out = String::from(r#"<table class="data"><tbody>"#);
    for (k, v) in o {
        let _ = write!(
            out,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape::html(k),
            escape::html(&escape::truncate(&value_text(v), 300))
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn event_table(history: &History, events: &[u64]) -> String {
    let mut out = String::from(
        r#"<table class="events"><thead><tr><th>event</th><th>time (s)</th><th>process</th><th>type</th><th>f</th><th>key</th><th>value</th><th>node</th></tr></thead><tbody>"#,
    );
    for &i in events.iter().take(MAX_EVENTS_LISTED) {
        let Some(e) = history.events.get(i as usize) else {
            let _ = write!(
                out,
                r#"<tr><td>{i}</td><td colspan="7" class="muted">not in the history</td></tr>"#
            );
            continue;
        };
        let _ = write!(
            out,
            r#"<tr><td>{i}</td><td>{:.6}</td><td>{}</td><td class="o-{}">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>"#,
            e.time as f64 / 1e9,
            escape::html(&e.process.to_string()),
            e.kind.as_str(),
            e.kind.as_str(),
            escape::html(&e.f),
            escape::html(e.key.as_deref().unwrap_or("")),
            escape::html(&escape::truncate(&value_text(&e.value), 90)),
            escape::html(e.node.as_deref().unwrap_or(""))
        );
    }
    if events.len() > MAX_EVENTS_LISTED {
        let _ = write!(
            out,
            r#"<tr><td colspan="8" class="muted">… {} more events</td></tr>"#,
            events.len() - MAX_EVENTS_LISTED
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn log_excerpts(ctx: &Context, events: &[u64]) -> String {
    if ctx.node_logs.is_empty() || events.is_empty() {
        return String::new();
    }
    let times: Vec<u64> = events
        .iter()
        .filter_map(|&i| ctx.history.events.get(i as usize).map(|e| e.time))
        .collect();
    let (Some(t0), Some(t1)) = (times.iter().min(), times.iter().max()) else {
        return String::new();
    };
    let (t0_ms, t1_ms) = (*t0 as f64 / 1e6, *t1 as f64 / 1e6);
    let mut out = String::new();
    let mut unstamped = Vec::new();
    let mut lines_total = 0;
    let mut nodes_with_lines = 0;
    for log in ctx.node_logs.iter().filter(|l| !l.lines.is_empty()) {
        if !log.has_stamps() {
            unstamped.push(log.file.as_str());
            continue;
        }
        // The node's clock as it was at each end of the window (clock faults move it).
        let at = |t: f64| {
            ctx.offsets
                .get(&log.node)
                .and_then(|m| m.offset_at(t))
                .or(ctx.started_ms)
        };
        let (Some(off0), Some(off1)) = (at(t0_ms), at(t1_ms)) else {
            unstamped.push(log.file.as_str());
            continue;
        };
        let (lines, left_out) =
            log.excerpt(t0_ms + off0 - LOG_MARGIN_MS, t1_ms + off1 + LOG_MARGIN_MS);
        if lines.is_empty() {
            continue;
        }
        lines_total += lines.len();
        nodes_with_lines += 1;
        // Lines written while the anomaly's own ops were in flight stand out.
        let (hot0, hot1) = (t0_ms + off0, t1_ms + off1);
        let _ = write!(
            out,
            r#"<div class="log"><div class="log-head">{} ({} line(s) within ±1 s{})</div><pre>"#,
            escape::html(&log.file),
            lines.len() + left_out,
            if left_out > 0 {
                format!(", {left_out} not shown")
            } else {
                String::new()
            }
        );
        for l in lines {
            let hot = l
                .unix_ms
                .is_some_and(|t| t >= hot0 - 50.0 && t <= hot1 + 50.0);
            let _ = writeln!(
                out,
                r#"<span class="{}"><span class="ln">{:>6}</span> {}</span>"#,
                if hot { "hot" } else { "line" },
                l.no,
                escape::html(&escape::truncate(&l.text, 400))
            );
        }
        out.push_str("</pre></div>");
    }
    let mut head = String::new();
    if !out.is_empty() || !unstamped.is_empty() {
        let _ = write!(
            head,
            r#"<details class="logs"><summary>node logs around this anomaly: {lines_total} line(s) from {nodes_with_lines} log(s), ±1 s</summary>"#
        );
        if out.is_empty() && unstamped.is_empty() {
            head.push_str(r#"<p class="muted">No node wrote a log line within ±1 s.</p>"#);
        }
        if !unstamped.is_empty() {
            let _ = write!(
                head,
                r#"<p class="muted">Without wall-clock stamps (or a clock mapping), these logs cannot be aligned: {}</p>"#,
                escape::html(&unstamped.join(", "))
            );
        }
        head.push_str(&out);
        head.push_str("</details>");
    }
    head
}
