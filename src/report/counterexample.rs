//! The linearizability counterexample, drawn the way Porcupine does: the ops around the
//! failure on one lane per process, the longest linearization as numbered points joined in
//! order with the model state after each, and the ops that cannot be placed in red.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use super::escape;
use super::timeline::{op_value_text, value_text};
use super::witness::LinWitness;
use crate::history::{History, Operation};

/// Prefix steps drawn before the failure, at most (the table shows `TABLE_STEPS`).
const DRAWN_STEPS: usize = 12;
const TABLE_STEPS: usize = 12;
const OTHER_OPS: usize = 10;

pub fn op_text(op: &Operation) -> String {
    let key = op
        .key
        .as_deref()
        .map(|k| format!("{k} "))
        .unwrap_or_default();
    format!("{} {key}{}", op.f, op_value_text(op))
}

fn state_text(s: Option<&serde_json::Value>) -> String {
    s.map_or_else(|| "?".to_string(), |v| escape::truncate(&value_text(v), 40))
}

/// Renders the drawing and the step table, or `None` when the witness names ops that are
/// not in the history (then the generic view shows the raw data).
pub fn render(
    w: &LinWitness,
    history: &History,
    op_of_event: &HashMap<u64, usize>,
) -> Option<String> {
    let ops = &history.operations;
    let prefix: Vec<(usize, &Operation, Option<&serde_json::Value>)> = w
        .prefix
        .iter()
        .enumerate()
        .map(|(i, s)| Some((i + 1, &ops[*op_of_event.get(&s.event)?], s.state.as_ref())))
        .collect::<Option<_>>()?;
    let stuck: Vec<&Operation> = w
        .unplaceable
        .iter()
        .map(|e| Some(&ops[*op_of_event.get(e)?]))
        .collect::<Option<_>>()?;
    let end = history.events.last().map_or(0, |e| e.time);
    let ret_or_end = |op: &Operation| op.ret_time.unwrap_or(end).max(op.call_time);
    let t_lo = stuck.iter().map(|o| o.call_time).min()?;
    let t_hi = stuck.iter().map(|o| ret_or_end(o)).max()?;
    let overlaps = |op: &Operation| op.call_time <= t_hi && ret_or_end(op) >= t_lo;

    // Prefix steps drawn: the last few, and any overlapping the stuck ops.
    let tail_from = prefix.len().saturating_sub(DRAWN_STEPS);
    let drawn: Vec<&(usize, &Operation, Option<&serde_json::Value>)> = prefix
        .iter()
        .enumerate()
        .filter(|(i, (_, op, _))| *i >= tail_from || overlaps(op))
        .map(|(_, s)| s)
        .collect();
    let in_prefix: BTreeSet<usize> = prefix.iter().map(|(_, op, _)| op.id).collect();
    let stuck_ids: BTreeSet<usize> = stuck.iter().map(|op| op.id).collect();
    let key = stuck[0].key.clone();
    // Ops that could have produced what the stuck op needs but were not placed where it
    // would help; then other unplaced ops concurrent with the failure.
    let producers: Vec<&Operation> = w
        .producers
        .iter()
        .filter_map(|(e, _)| op_of_event.get(e).map(|&o| &ops[o]))
        .filter(|op| !stuck_ids.contains(&op.id) && !drawn.iter().any(|(_, d, _)| d.id == op.id))
        .take(OTHER_OPS)
        .collect();
    let others: Vec<&Operation> = ops
        .iter()
        .filter(|op| {
            op.key == key
                && !in_prefix.contains(&op.id)
                && !stuck_ids.contains(&op.id)
                && !producers.iter().any(|p| p.id == op.id)
                && overlaps(op)
        })
        .take(OTHER_OPS)
        .collect();

    let shown: Vec<&Operation> = drawn
        .iter()
        .map(|(_, op, _)| *op)
        .chain(stuck.iter().copied())
        .chain(others.iter().copied())
        .chain(producers.iter().copied())
        .collect();
    let x_lo = shown.iter().map(|o| o.call_time).min()?;
    let x_hi = shown.iter().map(|o| ret_or_end(o)).max()?.max(x_lo + 1);
    let procs: BTreeSet<u64> = shown.iter().map(|o| o.process).collect();
    let lane: HashMap<u64, usize> = procs.iter().enumerate().map(|(i, p)| (*p, i)).collect();

    // Each lane: a row for linearization points, the op bars, then labels that do not fit.
    let (left, width, lane_h) = (76.0, 1000.0, 58.0);
    let plot_w = width - left - 20.0;
    let height = 26.0 + lane_h * procs.len() as f64;
    let x = |t: u64| left + (t - x_lo) as f64 / (x_hi - x_lo) as f64 * plot_w;
    let top = |op: &Operation| 22.0 + lane_h * lane[&op.process] as f64;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="porcupine" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">"#
    );
    for (p, i) in &lane {
        let yt = 22.0 + lane_h * *i as f64;
        let _ = write!(
            svg,
            r##"<rect x="0" y="{:.1}" width="{width}" height="{lane_h}" fill="{}"/><text x="4" y="{:.1}" class="lane-label">process {p}</text>"##,
            yt - 2.0,
            if i % 2 == 0 { "#f7f9fc" } else { "#ffffff" },
            yt + 31.0,
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{left}" y="12" class="tick">{:.6} s</text><text x="{}" y="12" class="tick" text-anchor="end">{:.6} s</text>"#,
        x_lo as f64 / 1e9,
        width - 20.0,
        x_hi as f64 / 1e9
    );
    let bar = |svg: &mut String, op: &Operation, class: &str, label: &str| {
        let (x0, x1) = (x(op.call_time), x(ret_or_end(op)));
        let w = (x1 - x0).max(2.0);
        let yt = top(op);
        let open = if op.ret_time.is_none() {
            " (never returned)"
        } else {
            ""
        };
        let fits = label.chars().count() as f64 * 6.4 + 6.0 <= w;
        let (lx, ly, lclass) = if fits {
            (x0 + 3.0, yt + 31.0, "")
        } else {
            (x0, yt + 49.0, r#" class="below""#)
        };
        let _ = write!(
            svg,
            r#"<g class="{class}"><rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="18" rx="3"/><text x="{lx:.1}" y="{ly:.1}"{lclass}>{}</text><title>{} · process {} · {:.6}–{:.6} s{open}</title></g>"#,
            yt + 18.0,
            escape::html(label),
            escape::html(&op_text(op)),
            op.process,
            op.call_time as f64 / 1e9,
            ret_or_end(op) as f64 / 1e9,
        );
    };
    for op in &others {
        bar(&mut svg, op, "cx-other", &op_text(op));
    }
    for op in &producers {
        bar(&mut svg, op, "cx-producer", &op_text(op));
    }
    for (_, op, _) in &drawn {
        bar(&mut svg, op, "cx-lin", &op_text(op));
    }
    for op in &stuck {
        bar(&mut svg, op, "cx-stuck", &format!("✗ {}", op_text(op)));
    }
    // Linearization points: each as early as its invoke allows, never before the previous.
    let mut points = Vec::new();
    let mut lp = 0u64;
    for (n, op, state) in &drawn {
        lp = lp.max(op.call_time).min(ret_or_end(op));
        points.push((*n, x(lp), top(op) + 8.0, *state));
    }
    let path: Vec<String> = points
        .iter()
        .map(|(_, px, py, _)| format!("{px:.1},{py:.1}"))
        .collect();
    let _ = write!(
        svg,
        r#"<polyline class="cx-path" points="{}"/>"#,
        path.join(" ")
    );
    for (n, px, py, state) in &points {
        let pill = (6.0 * n.to_string().len() as f64 + 8.0).max(16.0);
        let _ = write!(
            svg,
            r#"<g class="cx-point"><rect x="{:.1}" y="{:.1}" width="{pill:.1}" height="16" rx="8"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{n}</text><title>step {n}: state after = {}</title></g>"#,
            px - pill / 2.0,
            py - 8.0,
            py + 3.0,
            escape::html(&state_text(*state))
        );
    }
    svg.push_str("</svg>");

    let last_state = w
        .final_state
        .as_ref()
        .or(prefix.last().and_then(|(_, _, s)| *s));
    let last_state = state_text(last_state);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<p class="cx-summary">The longest linearizable prefix has <b>{}</b> op(s){}. From model state <code>{}</code>, none of the {} op(s) in red can be linearized next, and no other order gets further: the history is not linearizable{}.</p>"#,
        prefix.len(),
        if prefix.len() > drawn.len() {
            format!(" (the last {} drawn)", drawn.len())
        } else {
            String::new()
        },
        escape::html(&last_state),
        stuck.len(),
        key.as_deref()
            .map(|k| format!(" on key <code>{}</code>", escape::html(k)))
            .unwrap_or_default()
    );
    out.push_str(r#"<div class="legend cx-legend"><span><i style="background:#cfe2f3;border:1px solid #3d85c6"></i>linearized, numbered in order</span><span><i style="background:#f4cccc;border:1px solid #d64545"></i>cannot be placed</span><span><i style="background:#ead1f5;border:1px dashed #8e44ad"></i>could have produced what it needs</span><span><i style="background:#eee;border:1px dashed #aaa"></i>other concurrent ops</span></div>"#);
    out.push_str(&svg);
    out.push_str(r#"<table class="cx-steps"><thead><tr><th>step</th><th>process</th><th>op</th><th>invoked – returned (s)</th><th>model state after</th></tr></thead><tbody>"#);
    let from = prefix.len().saturating_sub(TABLE_STEPS);
    if from > 0 {
        let _ = write!(
            out,
            r#"<tr><td colspan="5" class="muted">… {from} earlier step(s)</td></tr>"#
        );
    }
    let interval = |op: &Operation| match op.ret_time {
        Some(r) => format!("{:.3} – {:.3}", op.call_time as f64 / 1e9, r as f64 / 1e9),
        None => format!("{:.3} – never", op.call_time as f64 / 1e9),
    };
    for (n, op, state) in &prefix[from..] {
        let _ = write!(
            out,
            r#"<tr><td>{n}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>"#,
            op.process,
            escape::html(&op_text(op)),
            interval(op),
            escape::html(&state_text(*state))
        );
    }
    for op in &stuck {
        let _ = write!(
            out,
            r#"<tr class="cx-stuck-row"><td>✗</td><td>{}</td><td>{}</td><td>{}</td><td>cannot follow <code>{}</code></td></tr>"#,
            op.process,
            escape::html(&op_text(op)),
            interval(op),
            escape::html(&last_state)
        );
    }
    out.push_str("</tbody></table>");
    Some(out)
}
