//! Whole-process benchmarks of `faultline check`: the reference corpora and generated kv
//! histories (100k / 1M / 10M ops, Porcupine's kv format and native JSONL, valid by
//! construction or with one planted stale read). Each measurement runs `faultline check`
//! as a child process and reports the median wall time, CPU time and peak resident
//! memory (wait4's rusage) over several runs, with the load average before the first.
//!
//!     cargo build --release --workspace
//!     target/release/faultline-bench [--runs 5] [--only NAME]... [--large]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser)]
#[command(
    name = "faultline-bench",
    about = "Whole-process figures for `faultline check`: corpora and generated kv histories",
    after_help = "Cases: etcd (102 Jepsen etcd logs), kv (6 Porcupine kv files), \
                  kv-{100k,1m,10m}-{valid,stale} (Porcupine kv format), \
                  jsonl-{100k,1m,10m}-{valid,stale} (native JSONL). The 10m cases run only \
                  with --large or --only."
)]
struct Args {
    /// Runs per case (the median is printed).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only these cases (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Also run the 10M-op cases.
    #[arg(long)]
    large: bool,
    /// The reference corpora (default: ../shared/corpora beside the project root).
    #[arg(long)]
    corpora: Option<PathBuf>,
    /// The faultline binary (default: beside this one).
    #[arg(long)]
    faultline: Option<PathBuf>,
    /// Where generated histories are kept between runs (default: a temporary directory,
    /// removed at the end).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Seed of the generated histories.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let corpora = args.corpora.clone().unwrap_or_else(default_corpora);
    let me = std::env::current_exe()?;
    let faultline = args
        .faultline
        .clone()
        .unwrap_or_else(|| me.with_file_name("faultline"));
    if !faultline.exists() {
        bail!(
            "{} not found: cargo build --release --workspace",
            faultline.display()
        );
    }
    let tmp;
    let work = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    let mut cases: Vec<String> = vec!["etcd".into(), "kv".into()];
    for size in ["100k", "1m", "10m"] {
        for fmt in ["kv", "jsonl"] {
            for kind in ["valid", "stale"] {
                cases.push(format!("{fmt}-{size}-{kind}"));
            }
        }
    }
    println!(
        "seed {}, runs {}, load average {}",
        args.seed,
        args.runs,
        loadavg()
    );
    println!(
        "{:<18} {:>4} {:>10} {:>10} {:>9} {:>9}  verdict",
        "case", "runs", "wall ms", "cpu ms", "peak MiB", "file MiB"
    );
    for case in &cases {
        let wanted = if args.only.is_empty() {
            !case.contains("10m") || args.large
        } else {
            args.only.iter().any(|o| o == case)
        };
        if !wanted {
            continue;
        }
        let (files, model) = inputs(case, &corpora, &work, args.seed)?;
        let bytes: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        let mut runs = Vec::new();
        let mut verdict = String::new();
        for _ in 0..args.runs {
            let (r, v) = measure(&faultline, &files, model)?;
            runs.push(r);
            verdict = v;
        }
        let med = |f: fn(&Run) -> f64| {
            let mut xs: Vec<f64> = runs.iter().map(f).collect();
            xs.sort_by(f64::total_cmp);
            xs[xs.len() / 2]
        };
        println!(
            "{:<18} {:>4} {:>10.1} {:>10.1} {:>9.1} {:>9.1}  {verdict}",
            case,
            runs.len(),
            med(|r| r.wall_ms),
            med(|r| r.cpu_ms),
            med(|r| r.peak_mib),
            bytes as f64 / (1 << 20) as f64,
        );
    }
    if args.work_dir.is_none() {
        std::fs::remove_dir_all(&work)?;
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn default_corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpora"))
        .find(|p| p.join("EXPECTED.tsv").exists())
        .unwrap_or_else(|| PathBuf::from("../shared/corpora"))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The files of a case and the model to check them with.
fn inputs(
    case: &str,
    corpora: &Path,
    work: &Path,
    seed: u64,
) -> anyhow::Result<(Vec<PathBuf>, &'static str)> {
    let list = |dir: &str, ext: &str| -> anyhow::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(corpora.join(dir))
            .with_context(|| corpora.join(dir).display().to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        v.sort();
        Ok(v)
    };
    Ok(match case {
        "etcd" => (list("porcupine/etcd", "log")?, "cas-register"),
        "kv" => (list("porcupine/kv", "txt")?, "append-kv"),
        _ => {
            let parts: Vec<&str> = case.split('-').collect();
            let [fmt, size, kind] = parts[..] else {
                bail!("unknown case {case}");
            };
            let ops = match size {
                "100k" => 100_000,
                "1m" => 1_000_000,
                "10m" => 10_000_000,
                _ => bail!("unknown size in {case}"),
            };
            let ext = if fmt == "kv" { "txt" } else { "jsonl" };
            let path = work.join(format!("{case}-{seed}.{ext}"));
            if !path.exists() {
                let t = Instant::now();
                generate_kv(&path, fmt == "jsonl", ops, 1_000, 30, seed, kind == "stale")?;
                eprintln!(
                    "generated {} in {:.1} s",
                    path.display(),
                    t.elapsed().as_secs_f64()
                );
            }
            (vec![path], "append-kv")
        }
    })
}

struct Run {
    wall_ms: f64,
    cpu_ms: f64,
    peak_mib: f64,
}

/// Runs `faultline check` once on `files`; its figures and the verdict summary.
fn measure(faultline: &Path, files: &[PathBuf], model: &str) -> anyhow::Result<(Run, String)> {
    let start = Instant::now();
    let child = Command::new(faultline)
        .args(["check", "--json", "--model", model])
        .args(files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let out = child.wait_with_output_rusage(pid)?;
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let (status, stdout, ru) = out;
    if !(0..=2).contains(&status) {
        bail!("faultline check exited {status}");
    }
    let (mut valid, mut invalid, mut unknown) = (0, 0, 0);
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        match &v["valid"] {
            serde_json::Value::Bool(true) => valid += 1,
            serde_json::Value::Bool(false) => invalid += 1,
            _ => unknown += 1,
        }
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    Ok((
        Run {
            wall_ms,
            cpu_ms: tv(ru.ru_utime) + tv(ru.ru_stime),
            peak_mib: ru.ru_maxrss as f64 / 1024.0,
        },
        format!("{valid} valid, {invalid} invalid, {unknown} unknown"),
    ))
}

trait WaitRusage {
    fn wait_with_output_rusage(
        self,
        pid: libc::pid_t,
    ) -> anyhow::Result<(i32, String, libc::rusage)>;
}

impl WaitRusage for std::process::Child {
    /// Reads the child's output, then reaps it with wait4 for its own rusage.
    fn wait_with_output_rusage(
        mut self,
        pid: libc::pid_t,
    ) -> anyhow::Result<(i32, String, libc::rusage)> {
        use std::io::Read;
        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut err = self.stderr.take().context("stderr")?;
        let reader = std::thread::spawn(move || {
            let _ = err.read_to_string(&mut stderr);
            stderr
        });
        self.stdout
            .take()
            .context("stdout")?
            .read_to_string(&mut stdout)?;
        let stderr = reader.join().unwrap_or_default();
        let mut status = 0;
        // SAFETY: wait4 writes into the status and rusage we own; the pid is our child,
        // reaped here and never waited on by `Child` (it is dropped unwaited).
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r != pid {
            bail!("wait4: {}", std::io::Error::last_os_error());
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        if !(0..=2).contains(&code) {
            bail!("faultline check exited {code}: {stderr}");
        }
        Ok((code, stdout, ru))
    }
}

/// A client's op in flight: its process, f, key, argument, and result once applied.
struct Slot {
    process: u64,
    f: &'static str,
    key: usize,
    arg: String,
    result: Option<String>,
    planted: bool,
}

/// Writes a kv history (Porcupine's get / put / append on strings) of `ops` ops by
/// `clients` concurrent clients over `keys` keys, linearizable by construction: each op
/// takes effect at a random moment between its invoke and its completion; 1% end `info`
/// (having taken effect). Values stay short: every piece and every put is unique, and a
/// key is put afresh once its text passes 40 bytes. With `stale`, one get in the middle
/// returns its key's previous text although the op that replaced it completed before
/// the get began: the one violation.
fn generate_kv(
    path: &Path,
    jsonl: bool,
    ops: usize,
    keys: usize,
    clients: usize,
    seed: u64,
    stale: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let file = std::fs::File::create_new(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    // per key: current text, previous text, whether the op that made `current` has completed
    let mut text: Vec<String> = vec![String::new(); keys];
    let mut prev: Vec<Option<String>> = vec![None; keys];
    let mut settled: Vec<bool> = vec![true; keys];
    // which op (client) last changed each key
    let mut changer: Vec<usize> = vec![usize::MAX; keys];
    let mut slots: Vec<Option<Slot>> = (0..clients).map(|_| None).collect();
    let mut process_of: Vec<u64> = (0..clients as u64).collect();
    let mut next_process = clients as u64;
    let (mut invoked, mut piece, mut index) = (0usize, 0u64, 0u64);
    let mut planted = !stale;
    let mut line = String::with_capacity(128);
    let mut emit = |out: &mut std::io::BufWriter<std::fs::File>,
                    p: u64,
                    kind: &str,
                    f: &str,
                    key: usize,
                    value: Option<&str>|
     -> std::io::Result<()> {
        line.clear();
        use std::fmt::Write as _;
        if jsonl {
            let v = value.map_or("null".to_string(), |v| format!("\"{v}\""));
            let _ = write!(
                line,
                "{{\"index\":{index},\"time\":{},\"process\":{p},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"{key}\",\"value\":{v}}}",
                index * 1000
            );
        } else {
            let v = value.map_or("nil".to_string(), |v| format!("\"{v}\""));
            let _ = write!(
                line,
                "{{:process {p}, :type :{kind}, :f :{f}, :key \"{key}\", :value {v}}}"
            );
        }
        line.push('\n');
        index += 1;
        out.write_all(line.as_bytes())
    };
    while invoked < ops || slots.iter().any(Option::is_some) {
        let c = rng.random_range(0..clients);
        match slots[c].take() {
            None if invoked < ops => {
                let key = rng.random_range(0..keys);
                let (f, arg) = match rng.random_range(0..10) {
                    0..5 => ("get", String::new()),
                    5..7 => ("put", format!("p{piece} ")),
                    _ if text[key].len() > 40 => ("put", format!("p{piece} ")),
                    _ => ("append", format!("a{piece} ")),
                };
                piece += 1;
                invoked += 1;
                // The planted read: its key's previous text was replaced by an op that
                // has completed, so no order can return it now.
                let plant = !planted
                    && f == "get"
                    && invoked > ops / 2
                    && settled[key]
                    && prev[key].is_some();
                planted |= plant;
                let value = (f != "get").then_some(arg.as_str());
                emit(&mut out, process_of[c], "invoke", f, key, value)?;
                slots[c] = Some(Slot {
                    process: process_of[c],
                    f,
                    key,
                    arg,
                    result: None,
                    planted: plant,
                });
            }
            None => {}
            Some(mut s) if s.result.is_none() => {
                let k = s.key;
                s.result = Some(match s.f {
                    "get" if s.planted => prev[k].clone().expect("planted on a key with a past"),
                    "get" => text[k].clone(),
                    f => {
                        let new = if f == "put" {
                            s.arg.clone()
                        } else {
                            format!("{}{}", text[k], s.arg)
                        };
                        prev[k] = Some(std::mem::replace(&mut text[k], new));
                        settled[k] = false;
                        changer[k] = c;
                        s.arg.clone()
                    }
                });
                slots[c] = Some(s);
            }
            Some(s) => {
                let info = rng.random_range(0..100) == 0;
                // An info op might not have happened, so only an ok one settles its key.
                if s.f != "get" && changer[s.key] == c && !info {
                    settled[s.key] = true;
                }
                let result = s.result.as_deref().expect("applied");
                if info {
                    let value = (s.f != "get").then_some(s.arg.as_str());
                    emit(&mut out, s.process, "info", s.f, s.key, value)?;
                    process_of[c] = next_process;
                    next_process += 1;
                } else {
                    emit(&mut out, s.process, "ok", s.f, s.key, Some(result))?;
                }
            }
        }
    }
    out.flush()?;
    if !planted {
        bail!("no get qualified for the planted stale read");
    }
    Ok(())
}
