//! A graph checker's cycle: transactions on a circle, an arrow per dependency edge labelled
//! with its type (ww, wr, rw, process, realtime), and the steps explained in words.

use std::f64::consts::PI;
use std::fmt::Write;

use super::counterexample::op_text;
use super::escape;
use super::witness::CycleStep;
use crate::history::History;

fn edge_color(edge: &str) -> &'static str {
    match edge {
        "ww" => "#1f77b4",
        "wr" => "#2ca02c",
        "rw" => "#d62728",
        "process" => "#7f7f7f",
        "realtime" | "real-time" => "#9467bd",
        _ => "#444444",
    }
}

/// The op id a step's transaction refers to, if it is in the history.
pub fn op_of(op: usize, history: &History) -> Option<usize> {
    (op < history.operations.len()).then_some(op)
}

pub fn render(steps: &[CycleStep], history: &History) -> String {
    let label = |i: usize| {
        steps[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("T{}", i + 1))
    };
    let n = steps.len();
    let (w, h) = (520.0, 300.0);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let r = if n <= 2 { 80.0 } else { 110.0 };
    let pos: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = -PI / 2.0 + 2.0 * PI * i as f64 / n as f64;
            (cx + r * a.cos(), cy + r * a.sin())
        })
        .collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="cycle" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>"##
    );
    let node_r = 22.0;
    for (i, s) in steps.iter().enumerate() {
        let (x0, y0) = pos[i];
        let (x1, y1) = pos[(i + 1) % n];
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        // Bend each edge outward so two opposite edges between two nodes stay apart.
        let (mx, my) = (
            (x0 + x1) / 2.0 - dy / len * 30.0,
            (y0 + y1) / 2.0 + dx / len * 30.0,
        );
        let (sx, sy) = (x0 + dx / len * node_r, y0 + dy / len * node_r);
        let (ex, ey) = (x1 - dx / len * node_r, y1 - dy / len * node_r);
        let color = edge_color(&s.edge);
        let _ = write!(
            svg,
            r#"<path d="M{sx:.1},{sy:.1} Q{mx:.1},{my:.1} {ex:.1},{ey:.1}" fill="none" stroke="{color}" stroke-width="2" marker-end="url(#arrow)"/><text x="{mx:.1}" y="{my:.1}" class="edge-label" fill="{color}" text-anchor="middle">{}</text>"#,
            escape::html(&s.edge)
        );
    }
    for (i, s) in steps.iter().enumerate() {
        let (x, y) = pos[i];
        let title = op_of(s.op, history)
            .map(|o| {
                let op = &history.operations[o];
                format!("process {} · {}", op.process, op_text(op))
            })
            .unwrap_or_else(|| label(i));
        let _ = write!(
            svg,
            r#"<g class="txn"><circle cx="{x:.1}" cy="{y:.1}" r="{node_r}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text><title>{}</title></g>"#,
            y + 4.0,
            escape::html(&label(i)),
            escape::html(&title)
        );
    }
    svg.push_str("</svg>");
    let mut out = String::from(r#"<div class="cycle-box">"#);
    out.push_str(&svg);
    out.push_str(r#"<ol class="cycle-steps">"#);
    for (i, s) in steps.iter().enumerate() {
        let txn = op_of(s.op, history)
            .map(|o| {
                let op = &history.operations[o];
                format!(" (process {}, {})", op.process, op_text(op))
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<li><b>{}</b>{} <span class="edge" style="color:{}">–{}→</span> <b>{}</b>{}</li>"#,
            escape::html(&label(i)),
            escape::html(&txn),
            edge_color(&s.edge),
            escape::html(&s.edge),
            escape::html(&label((i + 1) % n)),
            if s.explanation.is_empty() {
                String::new()
            } else {
                format!(": {}", escape::html(&s.explanation))
            }
        );
    }
    out.push_str("</ol></div>");
    out
}
