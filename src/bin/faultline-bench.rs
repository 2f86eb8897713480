//! Benchmarks of `faultline check` on the reference corpora and a generated history,
//! printing per-set totals (medians of several runs) and peak memory.
//!
//!     cargo run --release --bin faultline-bench [-- --runs N] [--corpora DIR] [--only NAME]
//!
//! Each measurement runs in a child process (this binary, `one NAME`), so its peak
//! resident memory (getrusage ru_maxrss) is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use faultline::checker::linearizable::{Model, Options, check};
use faultline::checker::{Budget, Validity};
use faultline::history::jsonl::HistoryWriter;
use faultline::history::{Event, EventType, Format, Process, read_file};

const CASES: [&str; 4] = ["etcd", "kv", "c50-bad-all-keys", "generated-1m"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let corpora = flag("--corpora")
        .map(PathBuf::from)
        .unwrap_or_else(default_corpora);
    if args.first().map(String::as_str) == Some("one") {
        let case = args.get(1).context("one CASE")?;
        let r = run_case(case, &corpora)?;
        println!("{r}");
        return Ok(());
    }
    let runs: usize = flag("--runs").map_or(Ok(5), |r| r.parse())?;
    let only = flag("--only");
    let me = std::env::current_exe()?;
    println!(
        "{:<18} {:>4} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6}  verdicts",
        "set", "runs", "check ms", "check cpu", "total ms", "total cpu", "peak MiB", "files"
    );
    for case in CASES {
        if only.as_deref().is_some_and(|o| o != case) {
            continue;
        }
        let reps = if case == "generated-1m" {
            runs.min(3)
        } else {
            runs
        };
        let mut results = Vec::new();
        for _ in 0..reps {
            let out = Command::new(&me)
                .args(["one", case, "--corpora"])
                .arg(&corpora)
                .output()?;
            if !out.status.success() {
                bail!("{case}: {}", String::from_utf8_lossy(&out.stderr));
            }
            let v: Value = serde_json::from_slice(&out.stdout)?;
            results.push(v);
        }
        let med = |field: &str| {
            let mut xs: Vec<f64> = results
                .iter()
                .map(|r| r[field].as_f64().unwrap_or(0.0))
                .collect();
            xs.sort_by(f64::total_cmp);
            xs[xs.len() / 2]
        };
        println!(
            "{:<18} {:>4} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.1} {:>6}  {}",
            case,
            reps,
            med("check_ms"),
            med("check_cpu_ms"),
            med("total_ms"),
            med("total_cpu_ms"),
            med("peak_rss_mib"),
            results[0]["files"],
            results[0]["verdicts"]
        );
    }
    Ok(())
}

fn default_corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpora"))
        .find(|p| p.join("EXPECTED.tsv").exists())
        .unwrap_or_else(|| PathBuf::from("../shared/corpora"))
}

/// CPU time of this process (all threads), milliseconds: steadier than wall time on a
/// machine shared with other work.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

/// Loads and checks every file of a set; returns timings and verdict counts.
fn check_files(
    files: &[PathBuf],
    format: Format,
    model: Model,
    all_keys: bool,
) -> anyhow::Result<Value> {
    let start = Instant::now();
    let mut check_ms = 0.0;
    let mut check_cpu_ms = 0.0;
    let cpu_start = cpu_ms();
    let (mut valid, mut invalid, mut unknown) = (0, 0, 0);
    for f in files {
        let h = read_file(f, format)?;
        let mut opts = Options::new(model);
        opts.all_keys = all_keys;
        opts.budget = Budget {
            time_limit: Some(std::time::Duration::from_secs(60)),
            memory_limit_bytes: Some(2 << 30),
        };
        let (t, c) = (Instant::now(), cpu_ms());
        let v = check(&h, &opts);
        check_ms += t.elapsed().as_secs_f64() * 1e3;
        check_cpu_ms += cpu_ms() - c;
        match v.valid {
            Validity::Valid => valid += 1,
            Validity::Invalid => invalid += 1,
            Validity::Unknown => unknown += 1,
        }
    }
    Ok(json!({
        "check_ms": check_ms,
        "check_cpu_ms": check_cpu_ms,
        "total_cpu_ms": cpu_ms() - cpu_start,
        "total_ms": start.elapsed().as_secs_f64() * 1e3,
        "files": files.len(),
        "verdicts": format!("{valid} valid, {invalid} invalid, {unknown} unknown"),
    }))
}

fn run_case(case: &str, corpora: &Path) -> anyhow::Result<Value> {
    let list = |dir: &str, ext: &str| -> anyhow::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(corpora.join(dir))
            .with_context(|| format!("{}", corpora.join(dir).display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut r = match case {
        "etcd" => check_files(
            &list("porcupine/etcd", "log")?,
            Format::JepsenLog,
            Model::CasRegister,
            false,
        )?,
        "kv" => check_files(
            &list("porcupine/kv", "txt")?,
            Format::PorcupineKv,
            Model::AppendKv,
            false,
        )?,
        "c50-bad-all-keys" => check_files(
            &[corpora.join("porcupine/kv/c50-bad.txt")],
            Format::PorcupineKv,
            Model::AppendKv,
            true,
        )?,
        "generated-1m" => {
            let dir = std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("history.jsonl");
            let result = generate_kv(&path, 1_000_000, 1_000, 20, 7)
                .and_then(|()| check_files(&[path], Format::Jsonl, Model::CasRegister, true));
            std::fs::remove_dir_all(&dir)?;
            let mut r = result?;
            r["ops"] = json!(1_000_000);
            r
        }
        other => bail!("unknown case {other} (one of {})", CASES.join(", ")),
    };
    r["peak_rss_mib"] = json!(peak_rss_mib());
    Ok(r)
}

/// A client's op in flight: (process, f, key, invoke value, result once applied).
type Slot = (u64, &'static str, usize, Value, Option<(EventType, Value)>);

/// Writes a linearizable kv history (read / write / cas per key) of `ops` operations by
/// `clients` concurrent clients over `keys` keys: each op takes effect at a random point
/// between its invoke and its completion; 1% of ops end `info` (taking effect or not).
fn generate_kv(
    path: &Path,
    ops: usize,
    keys: usize,
    clients: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = BufferedHistory::new(path)?;
    let mut regs: Vec<Value> = vec![Value::Null; keys];
    // per client: (process, f, key, invoke value, result once applied)
    let mut slots: Vec<Option<Slot>> = vec![None; clients];
    let mut process_of: Vec<u64> = (0..clients as u64).collect();
    let mut next_process = clients as u64;
    let (mut invoked, mut next_value, mut time) = (0usize, 1u64, 0u64);
    while invoked < ops || slots.iter().any(Option::is_some) {
        let c = rng.random_range(0..clients);
        time += 1000;
        match slots[c].take() {
            None if invoked < ops => {
                let key = rng.random_range(0..keys);
                let (f, v) = match rng.random_range(0..10) {
                    0..5 => ("read", Value::Null),
                    5..8 => ("write", json!(next_value)),
                    _ => ("cas", json!([regs[key].clone(), next_value])),
                };
                next_value += 1;
                invoked += 1;
                w.push(time, process_of[c], EventType::Invoke, f, key, v.clone())?;
                slots[c] = Some((process_of[c], f, key, v, None));
            }
            None => {}
            Some((p, f, key, v, None)) => {
                let result = match f {
                    "read" => (EventType::Ok, regs[key].clone()),
                    "write" => {
                        regs[key] = v.clone();
                        (EventType::Ok, v.clone())
                    }
                    _ if regs[key] == v[0] => {
                        regs[key] = v[1].clone();
                        (EventType::Ok, v.clone())
                    }
                    _ => (EventType::Fail, v.clone()),
                };
                slots[c] = Some((p, f, key, v, Some(result)));
            }
            Some((p, f, key, v, Some((kind, value)))) => {
                if rng.random_range(0..100) == 0 {
                    w.push(time, p, EventType::Info, f, key, v)?;
                    process_of[c] = next_process;
                    next_process += 1;
                } else {
                    w.push(time, p, kind, f, key, value)?;
                }
            }
        }
    }
    std::io::Write::flush(&mut w.out)?;
    Ok(())
}

/// A HistoryWriter without a flush per event: generation, not recording.
struct BufferedHistory {
    out: std::io::BufWriter<std::fs::File>,
    index: u64,
}

impl BufferedHistory {
    fn new(path: &Path) -> anyhow::Result<Self> {
        // Create through HistoryWriter's rules (never overwrite), then write buffered.
        drop(HistoryWriter::create(path)?);
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(BufferedHistory {
            out: std::io::BufWriter::with_capacity(1 << 20, file),
            index: 0,
        })
    }

    fn push(
        &mut self,
        time: u64,
        p: u64,
        kind: EventType,
        f: &str,
        key: usize,
        value: Value,
    ) -> anyhow::Result<()> {
        let e = Event {
            request_id: None,
            index: self.index,
            time,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: Some(key.to_string()),
            value,
            node: None,
            error: None,
        };
        self.index += 1;
        serde_json::to_writer(&mut self.out, &e)?;
        std::io::Write::write_all(&mut self.out, b"\n")?;
        Ok(())
    }
}

impl Drop for BufferedHistory {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(&mut self.out);
    }
}
