//! The short summary that ends `run` and `analyze`: verdict, checkers, seed, run path.

use std::path::Path;

use faultline::checker::Validity;
use faultline::report::results::RunResults;

pub fn print(r: &RunResults, dir: &Path, report: Result<&Path, &String>) {
    let verdict = match r.valid {
        Validity::Valid => "VALID",
        Validity::Invalid => "INVALID: anomalies found",
        Validity::Unknown => "UNKNOWN: a checker could not decide",
    };
    println!();
    let outside = faultline::runner::promise::outside_names(&r.extra);
    for v in &r.verdicts {
        if outside.contains(&v.checker) {
            println!(
                "  {:<7} {:<28} outside what this system promises (not counted): {}",
                format!("{:?}", v.valid).to_lowercase(),
                v.checker,
                v.explanation
            );
            continue;
        }
        let mark = match v.valid {
            Validity::Valid => "ok     ",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "unknown",
        };
        println!("  {mark} {:<28} {}", v.checker, v.explanation);
    }
    let c = &r.counts;
    let ops_s = r.extra.get("ops_per_s").and_then(|v| v.as_f64());
    println!(
        "ops: {} ok, {} fail, {} info{}",
        c.ok,
        c.fail,
        c.info,
        ops_s.map_or(String::new(), |x| format!(" ({x:.0} ops/s)"))
    );
    if let Some(s) = r
        .extra
        .get(faultline::runner::checks::PINNING)
        .and_then(|p| p["summary"].as_str())
    {
        println!("info ops: {s}");
    }
    if let Some(errs) = r.extra.get("teardown_errors").and_then(|v| v.as_array())
        && !errs.is_empty()
    {
        for e in errs {
            println!("teardown trouble: {}", e.as_str().unwrap_or(""));
        }
    }
    if r.extra.get("interrupted").and_then(|v| v.as_bool()) == Some(true) {
        println!(
            "interrupted: ended early by ^C after {:.1} s; the verdict covers what was recorded",
            r.elapsed_s.as_f64().unwrap_or(0.0)
        );
    }
    let broken_outside = r
        .verdicts
        .iter()
        .filter(|v| outside.contains(&v.checker) && v.valid == Validity::Invalid)
        .count();
    if r.valid == Validity::Valid && outside.len() == r.verdicts.len() && !outside.is_empty() {
        println!("verdict: VALID (nothing promised under these faults: every verdict is outside)");
    } else if broken_outside > 0 {
        println!(
            "verdict: {verdict} ({broken_outside} anomalous verdict(s) outside what this system promises, not counted)"
        );
    } else {
        println!("verdict: {verdict}");
    }
    println!("seed: {}", r.seed);
    println!("run: {}", dir.display());
    match report {
        Ok(p) => println!("report: {}", p.display()),
        Err(e) => println!("report: not written: {e}"),
    }
}
