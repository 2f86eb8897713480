//! The space-time diagram of peer messages, from `messages.jsonl` (`run --trace-messages`):
//! one lane per node, time left to right, an arrow per message from where the proxy took it
//! to where it handed it on (slanted by the delay it added). Drops and losses end in a cross
//! half way, holds in a bar until their release, duplicates are dashed. A run sends thousands
//! of messages a second, so the page draws windows: where messages meeting faults are
//! densest, which is where a reader wants to look first; the messages leading up to each
//! anomaly a checker found (its operations' times); and any window the user names
//! (`faultline report RUN_DIR --messages-window 3.2..3.6`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::faults::proxy::trace::MessageEvent;

use super::escape;

/// Most messages drawn in one diagram; a denser window is cut short at this many.
pub const MAX_DRAWN: usize = 100;
/// How long the drawn window is at most (ns).
pub const WINDOW_NS: u64 = 400_000_000;
/// The window starts this long before the first faulted message (ns).
const LEAD_NS: u64 = 40_000_000;

/// Message types get these colours, in order of first appearance.
const PALETTE: [&str; 8] = [
    "#3c78d8", "#6aa84f", "#e69138", "#8e7cc3", "#45818e", "#c27ba0", "#a61c00", "#7f6000",
];

/// The messages a diagram draws, and why that window.
#[derive(Debug, PartialEq)]
pub struct Window<'a> {
    pub start_ns: u64,
    pub end_ns: u64,
    pub events: Vec<&'a MessageEvent>,
    /// Messages in the whole trace.
    pub total: usize,
}

fn faulted(e: &MessageEvent) -> bool {
    e.fate != "delivered"
}

/// The window to draw: it starts shortly before the densest run of messages that met a
/// fault (or at the first message, if none did) and holds at most `WINDOW_NS` and
/// `MAX_DRAWN` messages.
pub fn pick_window(events: &[MessageEvent]) -> Window<'_> {
    let mut sorted: Vec<&MessageEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.time);
    let faults: Vec<u64> = sorted
        .iter()
        .filter(|e| faulted(e))
        .map(|e| e.time)
        .collect();
    // Two pointers over the faulted messages: the start with the most of them within reach.
    let (mut best, mut best_n, mut j) = (0, 0, 0);
    for i in 0..faults.len() {
        while j < faults.len() && faults[j] < faults[i] + WINDOW_NS / 2 {
            j += 1;
        }
        if j - i > best_n {
            (best, best_n) = (i, j - i);
        }
    }
    let anchor = faults
        .get(best)
        .copied()
        .or(sorted.first().map(|e| e.time))
        .unwrap_or(0);
    let start_ns = anchor.saturating_sub(LEAD_NS);
    let mut end_ns = start_ns + WINDOW_NS;
    let mut drawn: Vec<&MessageEvent> = sorted
        .into_iter()
        .filter(|e| e.time >= start_ns && e.time < end_ns)
        .collect();
    if drawn.len() > MAX_DRAWN {
        drawn.truncate(MAX_DRAWN);
        end_ns = drawn.last().map_or(end_ns, |e| e.time + 1);
    }
    Window {
        start_ns,
        end_ns,
        events: drawn,
        total: events.len(),
    }
}

/// A window drawn besides the densest one: what led up to an anomaly, or one the user named.
#[derive(Clone, Debug, PartialEq)]
pub struct Focus {
    /// The diagram's heading, e.g. `linearizable/cas-register: nonlinearizable (key 7)`.
    pub label: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// At most this many anomalies get a diagram of their own.
pub const MAX_FOCUS: usize = 5;

impl Focus {
    /// The messages up to an anomaly whose operations span `first_ns..=last_ns`: from shortly
    /// before the first, or `WINDOW_NS` before the end if the span is longer, to shortly after
    /// the last (the messages nearest the anomaly's last operation are the ones kept).
    pub fn around(label: String, first_ns: u64, last_ns: u64) -> Focus {
        let end_ns = last_ns + LEAD_NS;
        let start_ns = first_ns
            .saturating_sub(LEAD_NS)
            .max(end_ns.saturating_sub(WINDOW_NS));
        Focus {
            label,
            start_ns,
            end_ns,
        }
    }
}

/// The messages of `[start_ns, end_ns)`, the last `MAX_DRAWN` of them if there are more
/// (the window then starts at the first one kept).
pub fn window_before(events: &[MessageEvent], start_ns: u64, end_ns: u64) -> Window<'_> {
    let mut drawn: Vec<&MessageEvent> = events
        .iter()
        .filter(|e| e.time >= start_ns && e.time < end_ns)
        .collect();
    drawn.sort_by_key(|e| e.time);
    let mut start_ns = start_ns;
    if drawn.len() > MAX_DRAWN {
        drawn.drain(..drawn.len() - MAX_DRAWN);
        start_ns = drawn[0].time;
    }
    Window {
        start_ns,
        end_ns,
        events: drawn,
        total: events.len(),
    }
}

/// Counts per (type, fate) over the whole trace, for the table under the diagram.
pub fn fate_counts(events: &[MessageEvent]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for e in events {
        let kind = e.kind.clone().unwrap_or_else(|| "(request)".into());
        *m.entry((kind, e.fate.clone())).or_insert(0) += 1;
    }
    m
}

/// The diagram of `w` as a standalone SVG element.
pub fn svg(w: &Window<'_>) -> String {
    let mut nodes: Vec<&str> = w
        .events
        .iter()
        .flat_map(|e| [e.from.as_str(), e.to.as_str()])
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut kinds: Vec<&str> = Vec::new();
    for e in &w.events {
        let k = e.kind.as_deref().unwrap_or("(request)");
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let colour = |k: &str| PALETTE[kinds.iter().position(|x| *x == k).unwrap_or(0) % 8];
    let (left, right, top, lane) = (60.0, 20.0, 30.0, 56.0);
    let width = 1000.0;
    let height = top + lane * nodes.len().max(1) as f64 + 70.0;
    let span = (w.end_ns - w.start_ns).max(1) as f64;
    let x = |t: f64| left + (t - w.start_ns as f64) / span * (width - left - right);
    let y = |n: &str| top + lane * nodes.iter().position(|x| *x == n).unwrap_or(0) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="space-time" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><defs>"#
    );
    for (i, k) in kinds.iter().enumerate() {
        let _ = write!(
            out,
            r#"<marker id="st-a{i}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="{}"/></marker>"#,
            colour(k)
        );
    }
    out.push_str("</defs>");
    for n in &nodes {
        let _ = write!(
            out,
            r##"<text x="8" y="{:.1}" dominant-baseline="middle">{}</text><line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/>"##,
            y(n),
            escape::html(n),
            width - right,
            y(n),
            y(n)
        );
    }
    // Time ticks every tenth of the window.
    let bottom = top + lane * (nodes.len().max(1) as f64 - 1.0) + 20.0;
    for i in 0..=10 {
        let t = w.start_ns as f64 + span * i as f64 / 10.0;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">{:.3}s</text>"##,
            x(t),
            bottom,
            t / 1e9
        );
    }
    for e in &w.events {
        let k = e.kind.as_deref().unwrap_or("(request)");
        let c = colour(k);
        let i = kinds.iter().position(|x| *x == k).unwrap_or(0);
        let t0 = e.time as f64;
        let t1 = t0 + e.delay_ms.unwrap_or(0.0) * 1e6;
        let (x0, y0, y1) = (x(t0), y(&e.from), y(&e.to));
        let x1 = x(t1.min(w.end_ns as f64));
        let title = format!(
            "{} → {} {} ({} bytes) {}{} at {:.3} s",
            e.from,
            e.to,
            k,
            e.bytes,
            e.fate,
            e.delay_ms
                .map(|d| format!(" +{d:.1} ms"))
                .unwrap_or_default(),
            t0 / 1e9
        );
        let title = escape::html(&title);
        match e.fate.as_str() {
            "dropped" | "lost" | "reset" => {
                let (mx, my) = ((x0 + x1) / 2.0 + 4.0, (y0 + y1) / 2.0);
                let _ = write!(
                    out,
                    r##"<g><title>{title}</title><line x1="{x0:.1}" y1="{y0:.1}" x2="{mx:.1}" y2="{my:.1}" stroke="{c}" stroke-width="1.2"/><path d="M{:.1} {:.1}l8 8m0 -8l-8 8" stroke="#cc0000" stroke-width="2"/></g>"##,
                    mx - 4.0,
                    my - 4.0
                );
            }
            "held" => {
                let _ = write!(
                    out,
                    r##"<g><title>{title}</title><rect x="{:.1}" y="{:.1}" width="4" height="12" fill="{c}"/></g>"##,
                    x0 - 2.0,
                    y0 - 6.0
                );
            }
            fate => {
                let dash = if fate == "duplicated" {
                    r#" stroke-dasharray="4 2""#
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    r##"<g><title>{title}</title><line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="{c}" stroke-width="1.2"{dash} marker-end="url(#st-a{i})"/></g>"##
                );
            }
        }
    }
    // Legend: types, then fates.
    let mut lx = left;
    let ly = height - 28.0;
    for k in &kinds {
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{ly:.1}" dominant-baseline="middle">{}</text>"#,
            ly - 5.0,
            colour(k),
            lx + 14.0,
            escape::html(k)
        );
        lx += 24.0 + 7.0 * k.len() as f64;
    }
    let _ = write!(
        out,
        r##"<text x="{left}" y="{:.1}" fill="#444">arrow: handed on (slant = added delay) · dashed: duplicate · red cross: dropped or lost · bar: held until released</text></svg>"##,
        height - 8.0
    );
    out
}

/// The report section: the diagram of the densest window, one per focus, and the fate counts
/// of the run.
pub fn section(events: &[MessageEvent], focus: &[Focus]) -> String {
    let w = pick_window(events);
    let mut out = String::from(r#"<section id="messages"><h2>Messages</h2>"#);
    let _ = write!(
        out,
        r#"<p>{} peer messages traced (messages.jsonl). Drawn: {} from {:.3} s to {:.3} s, starting just before the densest run of messages that met a fault.</p><div class="space-time-wrap">"#,
        w.total,
        w.events.len(),
        w.start_ns as f64 / 1e9,
        w.end_ns as f64 / 1e9
    );
    out.push_str(&svg(&w));
    out.push_str("</div>");
    for f in focus {
        let w = window_before(events, f.start_ns, f.end_ns);
        let _ = write!(
            out,
            r#"<h3>{}</h3><p>{} messages from {:.3} s to {:.3} s.</p>"#,
            escape::html(&f.label),
            w.events.len(),
            w.start_ns as f64 / 1e9,
            w.end_ns as f64 / 1e9
        );
        if !w.events.is_empty() {
            let _ = write!(out, r#"<div class="space-time-wrap">{}</div>"#, svg(&w));
        }
    }
    out.push_str(
        r#"<table><thead><tr><th>type</th><th>fate</th><th>messages</th></tr></thead><tbody>"#,
    );
    for ((k, f), n) in fate_counts(events) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
            escape::html(&k),
            escape::html(&f)
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(
        ms: u64,
        from: &str,
        to: &str,
        kind: &str,
        fate: &str,
        delay: Option<f64>,
    ) -> MessageEvent {
        MessageEvent {
            time: ms * 1_000_000,
            from: from.into(),
            to: to.into(),
            kind: Some(kind.into()),
            bytes: 100,
            fate: fate.into(),
            delay_ms: delay,
        }
    }

    #[test]
    fn window_starts_before_the_densest_faulted_messages_and_is_bounded() {
        let mut events: Vec<MessageEvent> = (0..2000)
            .map(|i| ev(i, "n1", "n2", "append_entries", "delivered", None))
            .collect();
        events.push(ev(300, "n2", "n1", "vote", "dropped", None));
        for t in [1500, 1510, 1520] {
            events.push(ev(t, "n2", "n1", "vote", "dropped", None));
        }
        let w = pick_window(&events);
        assert_eq!(w.start_ns, 1_460_000_000);
        assert_eq!(w.total, 2004);
        assert!(w.events.len() <= MAX_DRAWN);
        assert!(w.events.iter().any(|e| e.fate == "dropped"));
        assert!(
            w.events
                .iter()
                .all(|e| e.time >= w.start_ns && e.time < w.end_ns)
        );
    }

    #[test]
    fn no_fault_draws_from_the_first_message() {
        let events = vec![
            ev(700, "n1", "n2", "a", "delivered", None),
            ev(500, "n2", "n1", "b", "delivered", None),
        ];
        let w = pick_window(&events);
        assert_eq!(w.start_ns, 460_000_000);
        assert_eq!(w.events.len(), 2);
        assert_eq!(w.events[0].time, 500_000_000, "sorted by time");
    }

    #[test]
    fn svg_draws_each_fate_its_own_way() {
        let events = vec![
            ev(10, "n1", "n2", "append_entries", "delayed", Some(20.0)),
            ev(12, "n1", "n3", "append_entries", "dropped", None),
            ev(14, "n2", "n1", "reply", "duplicated", Some(5.0)),
            ev(16, "n3", "n1", "reply", "held", None),
        ];
        let s = svg(&pick_window(&events));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        for n in ["n1", "n2", "n3"] {
            assert!(s.contains(&format!(">{n}</text>")), "lane {n}");
        }
        assert_eq!(s.matches("stroke=\"#cc0000\"").count(), 1, "one cross");
        assert_eq!(s.matches("stroke-dasharray").count(), 1, "one duplicate");
        assert_eq!(
            s.matches("<rect x=").count(),
            1 + 2,
            "one hold bar + two legend keys"
        );
        assert!(s.contains("+20.0 ms"), "delay in the tooltip");
    }

    #[test]
    fn section_counts_every_fate_of_the_run() {
        let events = vec![
            ev(1, "n1", "n2", "a", "delivered", None),
            ev(2, "n1", "n2", "a", "delivered", None),
            ev(3, "n1", "n2", "a", "dropped", None),
        ];
        let c = fate_counts(&events);
        assert_eq!(c[&("a".to_string(), "delivered".to_string())], 2);
        assert_eq!(c[&("a".to_string(), "dropped".to_string())], 1);
        assert!(section(&events, &[]).contains("3 peer messages traced"));
    }

    #[test]
    fn an_anomaly_window_keeps_the_messages_nearest_its_last_operation() {
        let events: Vec<MessageEvent> = (0..1000)
            .map(|i| ev(i, "n1", "n2", "append_entries", "delivered", None))
            .collect();
        // Operations from 100 ms to 900 ms: longer than a window, so it ends 40 ms after the
        // last and reaches back at most WINDOW_NS.
        let f = Focus::around("x".into(), 100_000_000, 900_000_000);
        assert_eq!((f.start_ns, f.end_ns), (540_000_000, 940_000_000));
        let w = window_before(&events, f.start_ns, f.end_ns);
        assert_eq!(w.events.len(), MAX_DRAWN);
        assert_eq!(w.events.last().unwrap().time, 939_000_000);
        assert_eq!(w.start_ns, 840_000_000, "starts at the first message kept");
        // A short anomaly starts shortly before its first operation.
        let f = Focus::around("y".into(), 500_000_000, 520_000_000);
        assert_eq!((f.start_ns, f.end_ns), (460_000_000, 560_000_000));
        let s = section(&events, &[f]);
        assert!(
            s.contains("<h3>y</h3><p>100 messages from 0.460 s to 0.560 s.</p>"),
            "{s}"
        );
        assert_eq!(s.matches("<svg").count(), 2, "densest window and the focus");
    }
}
