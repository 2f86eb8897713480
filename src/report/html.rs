//! Assembles the self-contained report page: inline CSS, SVG and script, no network.

use std::fmt::Write;

use serde_json::Value;

use super::anomalies::{self, Context, validity_word};
use super::escape;
use super::fault_bands::{self, fault_bands};
use super::input::ReportInput;
use super::node_logs::{clock_offsets, started_at_ms};
use super::plots;
use super::results::{Counts, overall};
use super::timeline::{end_ns, timeline_data, value_text};

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

fn meta_row(out: &mut String, name: &str, v: &Value) {
    if v.is_null() {
        return;
    }
    let text = match v {
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
        other => value_text(other),
    };
    let _ = write!(
        out,
        "<tr><th>{}</th><td>{}</td></tr>",
        escape::html(name),
        escape::html(&text)
    );
}

/// The whole page for `input`.
/// The message windows drawn besides the densest: the windows the user named, then what led
/// up to each anomaly with operations (the first `MAX_FOCUS`).
fn message_focus(input: &ReportInput) -> Vec<super::space_time::Focus> {
    use super::space_time::{Focus, MAX_FOCUS};
    let mut out: Vec<Focus> = input
        .message_windows
        .iter()
        .map(|&(a, b)| Focus {
            label: format!("window {:.3} s to {:.3} s", a as f64 / 1e9, b as f64 / 1e9),
            start_ns: a,
            end_ns: b,
        })
        .collect();
    let anomalies = input
        .verdicts
        .iter()
        .flat_map(|v| v.anomalies.iter().map(move |a| (v, a)));
    for (v, a) in anomalies.take(MAX_FOCUS) {
        let times: Vec<u64> = a
            .events
            .iter()
            .filter_map(|&i| input.history.events.get(i as usize).map(|e| e.time))
            .collect();
        let (Some(&t0), Some(&t1)) = (times.iter().min(), times.iter().max()) else {
            continue;
        };
        let key = a
            .key
            .as_ref()
            .map(|k| format!(" (key {k})"))
            .unwrap_or_default();
        out.push(Focus::around(
            format!("before {}: {}{key}", v.checker, a.kind),
            t0,
            t1,
        ));
    }
    out
}

pub fn render_html(input: &ReportInput) -> String {
    let h = input.history;
    let end = end_ns(h);
    let bands = fault_bands(h);
    let valid = input
        .results
        .map_or_else(|| overall(input.verdicts), |r| r.valid);
    let word = validity_word(valid);
    let offsets = clock_offsets(h);
    let started = input.results.and_then(|r| started_at_ms(&r.started_at));
    let ctx = Context::new(h, input.node_logs, offsets, started);
    let (verdict_html, marks) = anomalies::render(&ctx, input.verdicts);
    let tl = timeline_data(h, &bands, marks);
    let tl_json = escape::script_json(&serde_json::to_string(&tl).unwrap_or_else(|_| "{}".into()));

    let mut out = String::with_capacity(tl_json.len() + 200_000);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} · {word} · faultline</title><style>{CSS}</style></head><body data-valid="{word}">"#,
        escape::html(&input.title)
    );
    let _ = write!(
        out,
        r##"<header class="top"><span class="badge big b-{word}" id="overall-verdict">{word}</span><h1>{}</h1><nav><a href="#summary">summary</a><a href="#verdicts">verdicts</a><a href="#faults">faults</a><a href="#timeline-section">timeline</a>{}<a href="#plots">latency &amp; throughput</a></nav></header><main><div id="js-errors"></div>"##,
        escape::html(&input.title),
        if input.messages.is_empty() {
            ""
        } else {
            r##"<a href="#messages">messages</a>"##
        }
    );

    // Summary
    out.push_str(r#"<section id="summary"><h2>Summary</h2><table class="meta"><tbody>"#);
    let counts = Counts::of(h);
    if let Some(r) = input.results {
        meta_row(&mut out, "seed", &r.seed);
        meta_row(&mut out, "system", &r.system);
        meta_row(&mut out, "workload", &r.workload);
        meta_row(&mut out, "nemesis", &r.nemesis);
        meta_row(&mut out, "nodes", &r.nodes);
        meta_row(&mut out, "started at", &r.started_at);
        meta_row(&mut out, "elapsed (s)", &r.elapsed_s);
        for (name, key) in [
            ("bugs", "bugs"),
            // an external cluster's keys carry the run's prefix: what to look for in its data
            ("key prefix", crate::runner::run::KEY_PREFIX),
        ] {
            if let Some(v) = r
                .extra
                .get(key)
                .filter(|v| v.as_array().is_none_or(|a| !a.is_empty()))
            {
                meta_row(&mut out, name, v);
            }
        }
        if let Some(p) = r.extra.get(crate::runner::checks::PINNING) {
            meta_row(&mut out, "info ops", &p["summary"]);
        }
        // the run's params chose the envelope: say which, so "outside" reads right
        if let Some(by) = r.extra.get("promise").and_then(|p| p.get("chosen_by")) {
            meta_row(&mut out, "promise for", by);
        }
    }
    if let Some(src) = &input.source {
        meta_row(&mut out, "history", &Value::String(src.clone()));
    }
    let _ = write!(
        out,
        r#"<tr><th>operations</th><td>{} · <span class="o-ok">{} ok</span> · <span class="o-fail">{} fail</span> · <span class="o-info">{} info</span> · {} events over {:.3} s</td></tr>"#,
        h.operations.len(),
        counts.ok,
        counts.fail,
        counts.info,
        h.events.len(),
        end as f64 / 1e9
    );
    out.push_str("</tbody></table>");
    out.push_str(r#"<table class="verdict-summary"><thead><tr><th>checker</th><th>verdict</th><th>anomalies</th><th>explanation</th></tr></thead><tbody>"#);
    let outside = input
        .results
        .map(|r| crate::runner::promise::outside_names(&r.extra))
        .unwrap_or_default();
    for (i, v) in input.verdicts.iter().enumerate() {
        let w = validity_word(v.valid);
        let label = if outside.contains(&v.checker) {
            r#" <span class="outside-promise">outside what this system promises (not counted)</span>"#
        } else {
            ""
        };
        // What the checker decides, from the registry, as the name's tooltip.
        let about = crate::checker::registry::about(&v.checker)
            .map(|a| format!(r#" title="{}""#, escape::html(a)))
            .unwrap_or_default();
        let _ = write!(
            out,
            r##"<tr><td><a href="#verdict-{i}"{about}>{}</a></td><td><span class="badge b-{w}">{w}</span>{label}</td><td>{}</td><td>{}</td></tr>"##,
            escape::html(&v.checker),
            v.anomalies.len(),
            escape::html(&escape::truncate(&v.explanation, 300))
        );
    }
    out.push_str("</tbody></table>");
    if !input.files.is_empty() {
        out.push_str(r#"<p class="files">files: "#);
        for f in &input.files {
            let _ = write!(
                out,
                r#"<a href="{}">{}</a> "#,
                escape::html(f),
                escape::html(f)
            );
        }
        out.push_str("</p>");
    }
    out.push_str("</section>");

    let _ = write!(
        out,
        r#"<section id="verdicts"><h2>Verdicts</h2>{verdict_html}</section>"#
    );
    // Faults
    out.push_str(r#"<section id="faults"><h2>Faults</h2>"#);
    if let Some(s) = input.schedule {
        let planned = s
            .get("faults")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let _ = write!(
            out,
            r#"<p>Schedule <code>{}</code>, seed <code>{}</code>: {planned} planned fault action(s) in schedule.json.</p>"#,
            escape::html(&s.get("nemesis").map(value_text).unwrap_or_default()),
            escape::html(&s.get("seed").map(value_text).unwrap_or_default()),
        );
    }
    if let Some(r) = input.replay {
        out.push_str(&replay_html(r));
    }
    if bands.is_empty() {
        out.push_str(r#"<p class="muted">The history records no nemesis faults.</p>"#);
    } else {
        out.push_str(r#"<table><thead><tr><th>fault</th><th>targets</th><th>start (s)</th><th>stop (s)</th><th>detail</th></tr></thead><tbody>"#);
        for b in &bands {
            let _ = write!(
                out,
                r#"<tr><td><span class="bandkey" style="background:{}"></span>{}</td><td>{}</td><td>{:.3}</td><td>{}</td><td><code>{}</code></td></tr>"#,
                fault_bands::color(&b.fault),
                escape::html(&b.fault),
                escape::html(&b.targets.join(", ")),
                b.start_ns as f64 / 1e9,
                b.end_ns.map_or("never stopped".to_string(), |e| format!(
                    "{:.3}",
                    e as f64 / 1e9
                )),
                escape::html(&escape::truncate(&value_text(&b.detail), 160))
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");

    // Timeline
    out.push_str(r#"<section id="timeline-section"><h2>Timeline</h2><div class="controls"><button id="tl-prev">◀</button><input id="tl-pos" type="range" min="0" max="1000" value="0" aria-label="window position"><button id="tl-next">▶</button><label>window <select id="tl-size"><option value="0.1">0.1 s</option><option value="1">1 s</option><option value="5">5 s</option><option value="10">10 s</option><option value="30">30 s</option><option value="all" selected>all</option><option value="zoom" hidden>zoomed</option></select></label><button id="tl-clear">clear highlight</button><span id="tl-info" class="muted"></span></div><div id="timeline"></div>"#);
    out.push_str(r#"<div class="legend"><span><i style="background:var(--ok)"></i>ok</span><span><i style="background:var(--fail)"></i>fail (did not happen)</span><span><i style="background:var(--info)"></i>info (unknown / never returned)</span>"#);
    let mut seen: Vec<&str> = Vec::new();
    for b in &bands {
        if !seen.contains(&b.fault.as_str()) {
            seen.push(&b.fault);
            let _ = write!(
                out,
                r#"<span><i style="background:{}"></i>{}</span>"#,
                fault_bands::color(&b.fault),
                escape::html(&b.fault)
            );
        }
    }
    out.push_str("</div></section>");

    if !input.messages.is_empty() {
        out.push_str(&super::space_time::section(
            input.messages,
            &message_focus(input),
        ));
    }

    // Plots
    out.push_str(r#"<section id="plots"><h2>Latency</h2>"#);
    out.push_str(&plots::latency_scatter(h, &bands, end));
    out.push_str("<h3>Latency quantiles over time</h3>");
    out.push_str(&plots::latency_quantiles(h, &bands, end));
    out.push_str(&plots::quantile_table(h));
    out.push_str("<h2>Throughput</h2>");
    out.push_str(&plots::throughput(h, &bands, end));
    out.push_str("</section>");

    let _ = write!(
        out,
        r#"</main><footer>faultline {} · report generated offline</footer><script type="application/json" id="timeline-data">{tl_json}</script><script>{JS}</script></body></html>"#,
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// What a replay says of itself (`replay.json`): whose faults, how faithfully, and whether
/// the original's outcome came back.
fn replay_html(r: &Value) -> String {
    let text = |p: &str| escape::html(&r.pointer(p).map(value_text).unwrap_or_else(|| "-".into()));
    let outcome = match r.get("reproduced").and_then(Value::as_bool) {
        Some(true) => "reproduced",
        Some(false) => "<strong>not reproduced</strong>",
        None => "nothing to compare with (the original has no results)",
    };
    format!(
        r#"<p class="replay">A replay of <code>{}</code> (faults from <code>{}</code>): {} of {} faults put in force again, {} on the same nodes, {} re-aimed at this run's leader; start delta median {} ms (max {}), op index delta median {} (max {}). Fingerprint <code>{}</code> before, <code>{}</code> now: {outcome}.</p>"#,
        text("/original"),
        text("/faults_from"),
        text("/schedule/replayed"),
        text("/schedule/recorded"),
        text("/schedule/same_targets"),
        text("/schedule/reaimed"),
        text("/schedule/start_delta_ms/median"),
        text("/schedule/start_delta_ms/max"),
        text("/schedule/op_index_delta/median"),
        text("/schedule/op_index_delta/max"),
        text("/original_fingerprint/signatures"),
        text("/replay_fingerprint/signatures"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_says_whose_faults_and_whether_it_reproduced() {
        let r = serde_json::json!({"original": "store/t/1", "faults_from": "store/t/1/schedule.json",
            "reproduced": false, "original_fingerprint": {"signatures": ["a:b"]},
            "replay_fingerprint": {"signatures": []},
            "schedule": {"recorded": 3, "replayed": 2, "same_targets": 1, "reaimed": 1,
                         "start_delta_ms": {"median": 2.5, "max": 9.0},
                         "op_index_delta": {"median": 4.0, "max": 7.0}}});
        let h = replay_html(&r);
        assert!(h.contains("A replay of <code>store/t/1</code>"), "{h}");
        assert!(h.contains("2 of 3 faults"), "{h}");
        assert!(h.contains("<strong>not reproduced</strong>"), "{h}");
        assert!(replay_html(&serde_json::json!({})).contains("nothing to compare with"));
    }

    #[test]
    fn the_summary_names_bugs_and_an_external_runs_key_prefix() {
        let h =
            crate::history::History::from_events(vec![], std::path::Path::new("h"), None).unwrap();
        let mut r = crate::report::results::RunResults::from_verdicts(&h, &[]);
        r.extra
            .insert("bugs".into(), serde_json::json!(["stale-local-read"]));
        r.extra
            .insert("key_prefix".into(), serde_json::json!("fl1a2b-"));
        let mut input = ReportInput::new("t", &h, &[]);
        input.results = Some(&r);
        let page = render_html(&input);
        assert!(
            page.contains("<th>bugs</th><td>stale-local-read</td>"),
            "bugs row"
        );
        assert!(
            page.contains("<th>key prefix</th><td>fl1a2b-</td>"),
            "prefix row"
        );
        r.extra.insert("bugs".into(), serde_json::json!([]));
        r.extra.remove("key_prefix");
        let mut input = ReportInput::new("t", &h, &[]);
        input.results = Some(&r);
        let page = render_html(&input);
        assert!(!page.contains("<th>bugs</th>") && !page.contains("<th>key prefix</th>"));
    }
}
