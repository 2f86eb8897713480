//! Latency (scatter and quantiles over time) and throughput over time, as SVG with the same
//! nemesis bands as the timeline. Sizes stay bounded on any history: the scatter keeps one
//! mark per pixel cell and outcome, the over-time plots use at most `BUCKETS` buckets.

use std::collections::HashSet;
use std::fmt::Write;

use super::chart::{Frame, YScale};
use super::escape;
use super::fault_bands::FaultBand;
use crate::history::{History, Operation, Outcome};

const BUCKETS: usize = 120;

pub fn outcome_color(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "#3a8f3a",
        Outcome::Fail => "#d64545",
        Outcome::Info => "#e09b00",
    }
}

pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

const OUTCOMES: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Info];

/// Latency in milliseconds of a completed op.
fn latency_ms(op: &Operation) -> Option<f64> {
    op.ret_time
        .map(|r| (r.saturating_sub(op.call_time)) as f64 / 1e6)
}

fn latency_range(history: &History) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi: f64 = 0.0;
    for l in history.operations.iter().filter_map(latency_ms) {
        lo = lo.min(l);
        hi = hi.max(l);
    }
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    let lo = 10f64.powf(lo.max(1e-3).log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    (lo, hi)
}

/// Closes a plot whose series are the op outcomes, with their legend.
fn finish_with_outcome_legend(mut out: String, frame: &Frame) -> String {
    legend(
        &mut out,
        frame,
        &OUTCOMES.map(|o| (outcome_name(o), outcome_color(o))),
    );
    out.push_str("</svg>");
    out
}

fn legend(out: &mut String, frame: &Frame, items: &[(&str, &str)]) {
    let mut x = frame.left + 8.0;
    for (name, color) in items {
        let _ = write!(
            out,
            r#"<rect x="{x:.0}" y="{}" width="10" height="10" fill="{color}"/><text x="{:.0}" y="{}" class="tick">{}</text>"#,
            frame.top + 6.0,
            x + 14.0,
            frame.top + 15.0,
            escape::html(name)
        );
        x += 24.0 + 7.0 * name.len() as f64;
    }
}

/// Each completed op as a dot at (completion time, latency), log scale, colored by outcome.
pub fn latency_scatter(history: &History, bands: &[FaultBand], end_ns: u64) -> String {
    let (lo, hi) = latency_range(history);
    let frame = Frame::new(
        end_ns as f64 / 1e9,
        YScale::Log { min: lo, max: hi },
        "latency (ms)",
    );
    let mut out = String::new();
    frame.open(&mut out, "latency-scatter", bands, end_ns);
    let mut seen: HashSet<(i32, i32, u8)> = HashSet::new();
    for o in OUTCOMES {
        let _ = write!(
            out,
            r#"<g fill="{}" fill-opacity="0.55">"#,
            outcome_color(o)
        );
        for op in history.operations.iter().filter(|op| op.outcome == o) {
            let (Some(ret), Some(l)) = (op.ret_time, latency_ms(op)) else {
                continue;
            };
            let x = frame.x(ret as f64 / 1e9);
            let y = frame.y(l);
            // One mark per 2x2 pixel cell and outcome: identical pictures, bounded size.
            if seen.insert(((x / 2.0) as i32, (y / 2.0) as i32, o as u8)) {
                let _ = write!(out, r#"<circle cx="{x:.1}" cy="{y:.1}" r="1.8"/>"#);
            }
        }
        out.push_str("</g>");
    }
    finish_with_outcome_legend(out, &frame)
}

/// q in [0,1] of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn bucket_of(t_ns: u64, end_ns: u64) -> usize {
    ((t_ns as f64 / end_ns.max(1) as f64) * BUCKETS as f64) as usize
}

/// p50, p95, p99 and max latency of ops completing in each time bucket.
pub fn latency_quantiles(history: &History, bands: &[FaultBand], end_ns: u64) -> String {
    let (lo, hi) = latency_range(history);
    let frame = Frame::new(
        end_ns as f64 / 1e9,
        YScale::Log { min: lo, max: hi },
        "latency (ms)",
    );
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS + 1];
    for op in &history.operations {
        if let (Some(ret), Some(l)) = (op.ret_time, latency_ms(op)) {
            buckets[bucket_of(ret, end_ns).min(BUCKETS)].push(l);
        }
    }
    for b in &mut buckets {
        b.sort_by(f64::total_cmp);
    }
    let mut out = String::new();
    frame.open(&mut out, "latency-quantiles", bands, end_ns);
    let series = [
        ("p50", 0.5, "#1f77b4"),
        ("p95", 0.95, "#9467bd"),
        ("p99", 0.99, "#d62728"),
        ("max", 1.0, "#555555"),
    ];
    let width = end_ns as f64 / 1e9 / BUCKETS as f64;
    for (_, q, color) in series {
        let pts: Vec<String> = buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(i, b)| {
                format!(
                    "{:.1},{:.1}",
                    frame.x((i as f64 + 0.5) * width),
                    frame.y(quantile(b, q))
                )
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            pts.join(" ")
        );
    }
    legend(&mut out, &frame, &series.map(|(n, _, c)| (n, c)));
    out.push_str("</svg>");
    out
}

/// Completions per second in each time bucket, one line per outcome.
pub fn throughput(history: &History, bands: &[FaultBand], end_ns: u64) -> String {
    let mut counts = vec![[0u32; 3]; BUCKETS + 1];
    for op in &history.operations {
        if let Some(ret) = op.ret_time {
            counts[bucket_of(ret, end_ns).min(BUCKETS)][op.outcome as usize] += 1;
        }
    }
    let width = end_ns.max(1) as f64 / 1e9 / BUCKETS as f64;
    let max_rate = counts
        .iter()
        .flat_map(|c| c.iter())
        .map(|&c| c as f64 / width)
        .fold(1.0f64, f64::max);
    let frame = Frame::new(
        end_ns as f64 / 1e9,
        YScale::Linear {
            min: 0.0,
            max: max_rate * 1.1,
        },
        "ops/s",
    );
    let mut out = String::new();
    frame.open(&mut out, "throughput", bands, end_ns);
    for o in OUTCOMES {
        let pts: Vec<String> = counts
            .iter()
            .take(BUCKETS)
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "{:.1},{:.1}",
                    frame.x((i as f64 + 0.5) * width),
                    frame.y(c[o as usize] as f64 / width)
                )
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            outcome_color(o),
            pts.join(" ")
        );
    }
    finish_with_outcome_legend(out, &frame)
}

/// Latency quantiles per function and outcome, as an HTML table.
pub fn quantile_table(history: &History) -> String {
    let mut groups: Vec<((String, Outcome), Vec<f64>)> = Vec::new();
    for op in &history.operations {
        let Some(l) = latency_ms(op) else { continue };
        let key = (op.f.clone(), op.outcome);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(l),
            None => groups.push((key, vec![l])),
        }
    }
    groups.sort_by(|a, b| (&a.0.0, a.0.1 as u8).cmp(&(&b.0.0, b.0.1 as u8)));
    let mut out = String::from(
        r#"<table class="quantiles"><thead><tr><th>f</th><th>outcome</th><th>count</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr></thead><tbody>"#,
    );
    for ((f, o), mut v) in groups {
        v.sort_by(f64::total_cmp);
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="o-{}">{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>"#,
            escape::html(&f),
            outcome_name(o),
            outcome_name(o),
            v.len(),
            quantile(&v, 0.5),
            quantile(&v, 0.9),
            quantile(&v, 0.99),
            quantile(&v, 1.0)
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
