//! `faultline suite FILE [--store DIR] [--junit OUT] [--table OUT] [--rerun-failed K]
//! [--filter TEXT] [--parallel N]`: every run of a suite file as a `faultline run` child,
//! judged against its row; one JUnit file, `summary.json`, a Markdown table per row, and the
//! exit code of the worst (255 > 2 > 1 > 0).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::Parser;
use faultline::cluster::SystemDescriptor;
use faultline::nemesis::Schedule;
use faultline::runner::store;
use faultline::suite::child::ChildRun;
use faultline::suite::outcome::{self, Classification, Judgement, RunRecord};
use faultline::suite::report::{self, CaseResult, Summary};
use faultline::suite::spec::shell_words;
use faultline::suite::{Case, Expect, Suite};
use faultline::workload::WorkloadSpec;

use super::BadInput;

#[derive(clap::Args)]
pub struct Args {
    /// The suite file (suites/NAME.toml).
    pub file: PathBuf,
    /// Where runs (and the suite's summary, under suites/NAME/) are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Also write the JUnit file here.
    #[arg(long, value_name = "OUT")]
    pub junit: Option<PathBuf>,
    /// Make each failed run again K times on the same seed: reproducible, flaky or infra.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub rerun_failed: usize,
    /// Only runs whose id (`row name/seed=N`) contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Also write the per-row Markdown table (what README's catch tables are) here.
    #[arg(long, value_name = "OUT")]
    pub table: Option<PathBuf>,
    /// Runs at once (each on its own subnet).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub parallel: usize,
}

/// `faultline run`'s arguments, to validate a row's command before anything runs.
#[derive(Parser)]
#[command(name = "faultline")]
struct RunLine {
    #[command(subcommand)]
    cmd: RunOnly,
}

#[derive(clap::Subcommand)]
enum RunOnly {
    Run(super::run::Args),
}

/// The long options `faultline run` accepts.
pub fn run_option_names() -> Vec<String> {
    let cmd = super::run::Args::augment_args(clap::Command::new("run"));
    cmd.get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect()
}

use clap::Args as _;

/// Loads the file and checks every row (names resolve, commands parse) before any run.
pub fn load(file: &Path) -> anyhow::Result<Suite> {
    let text =
        std::fs::read_to_string(file).map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
    let stem = file
        .file_stem()
        .map_or("suite".into(), |s| s.to_string_lossy().into_owned());
    let origin = file.display().to_string();
    let suite = Suite::parse(&text, &stem, &origin, &run_option_names())
        .map_err(|e| BadInput(e.to_string()))?;
    for (i, row) in suite.rows.iter().enumerate() {
        let line_of = |key: &str| {
            // the key's own line inside the row, else the row's header
            text.lines()
                .enumerate()
                .skip(row.line)
                .take_while(|(_, l)| !l.trim_start().starts_with("[[row]]"))
                .find(|(_, l)| l.trim_start().starts_with(key))
                .map_or(row.line, |(n, _)| n + 1)
        };
        let bad = |key: &str, e: &dyn std::fmt::Display| {
            BadInput(format!(
                "{origin}: line {}: row[{i}].{key}: {e}",
                line_of(key)
            ))
        };
        WorkloadSpec::load(&row.workload).map_err(|e| bad("workload", &e))?;
        Schedule::load(&row.nemesis).map_err(|e| bad("nemesis", &e))?;
        let d = SystemDescriptor::load(&row.system).map_err(|e| bad("system", &e))?;
        if !row.bugs.is_empty() && d.bug_args.is_none() {
            return Err(bad("bug", &format!("system `{}` has no planted bugs", d.name)).into());
        }
        let argv = std::iter::once("faultline".to_string()).chain(row.run_args(row.seeds[0]));
        if let Err(e) = RunLine::try_parse_from(argv) {
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            // name the option at fault if clap quotes it
            let key = row
                .options
                .iter()
                .find(|(k, v, _)| {
                    first.contains(&format!("--{k}"))
                        || (!v.is_empty() && first.contains(v.as_str()))
                })
                .map(|(k, _, l)| (k.replace('-', "_"), *l));
            return Err(match key {
                Some((k, l)) => BadInput(format!("{origin}: line {l}: row[{i}].{k}: {first}")),
                None => BadInput(format!("{origin}: line {}: row[{i}]: {first}", row.line)),
            }
            .into());
        }
    }
    Ok(suite)
}

/// A fresh `store/suites/<name>/<stamp>/` for this night.
fn night_dir(store: &Path, suite: &str) -> std::io::Result<PathBuf> {
    let base = store.join("suites").join(suite);
    std::fs::create_dir_all(&base)?;
    let stamp = store::compact_utc(SystemTime::now());
    let mut n = 1;
    loop {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let d = base.join(name);
        match std::fs::create_dir(&d) {
            Ok(()) => {
                std::fs::create_dir_all(d.join("logs"))?;
                return Ok(d);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

struct Runner<'a> {
    suite: &'a Suite,
    exe: PathBuf,
    store: PathBuf,
    logs: PathBuf,
    started: Instant,
    /// Runs started so far (for progress lines).
    count: Mutex<usize>,
    total: usize,
}

impl Runner<'_> {
    fn command(&self, case: &Case) -> String {
        let args = self.suite.rows[case.row].run_args(case.seed);
        format!("faultline {}", shell_words(&args))
    }

    /// One run of `case` (attempt 0 is the first, then reruns), or a skip if the budget
    /// cannot fit it.
    fn run(&self, case: &Case, attempt: usize) -> RunRecord {
        let row = &self.suite.rows[case.row];
        let mut rec = RunRecord {
            case: case.id.clone(),
            seed: case.seed,
            command: self.command(case),
            ..RunRecord::default()
        };
        // a run is started only if its load phase and checks (~20 s) fit in what is left
        let left = self.suite.time_budget_s - self.started.elapsed().as_secs_f64();
        if left < row.time_limit + 20.0 {
            rec.skipped = true;
            return rec;
        }
        let n = {
            let mut c = self.count.lock().unwrap();
            *c += 1;
            *c
        };
        let tag = if attempt == 0 {
            String::new()
        } else {
            format!(" (rerun {attempt})")
        };
        eprintln!(
            "faultline suite: [{n}/{}] {}{tag}: start",
            self.total, case.id
        );
        let file = format!(
            "{}{}.log",
            case.id
                .replace(|c: char| !(c.is_ascii_alphanumeric() || c == '-'), "_"),
            if attempt == 0 {
                String::new()
            } else {
                format!("-rerun{attempt}")
            }
        );
        let child = ChildRun {
            exe: self.exe.clone(),
            args: row.run_args(case.seed),
            store: self.store.clone(),
            log: self.logs.join(file),
            wall_limit: Duration::from_secs_f64(row.run_timeout_s.min(left)),
        };
        child.run(rec)
    }
}

/// Runs `jobs` on `parallel` threads; results in job order.
fn run_all<T: Sync, R: Send>(jobs: &[T], parallel: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let queue = Mutex::new((0..jobs.len()).collect::<VecDeque<_>>());
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1).min(jobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let Some(i) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let r = f(&jobs[i]);
                    out.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    out.into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

fn progress_line(case: &Case, rec: &RunRecord, j: &Judgement) {
    let verdict = match rec.valid {
        Some(faultline::checker::Validity::Valid) => "valid".to_string(),
        Some(faultline::checker::Validity::Invalid) => "INVALID".to_string(),
        Some(faultline::checker::Validity::Unknown) => "unknown".to_string(),
        None => "no verdict".into(),
    };
    let word = if j.is_failure() { "FAIL" } else { "ok" };
    eprintln!(
        "faultline suite: {word:4} {} ({verdict}, {} ok ops, {} faults, {:.0} s){}{}",
        case.id,
        rec.ok_ops,
        rec.faults,
        rec.elapsed_s,
        if j.is_failure() {
            format!(": {}: {}", j.word(), j.why())
        } else {
            String::new()
        },
        if rec.fingerprint.is_empty() {
            String::new()
        } else {
            format!(" fingerprint {}", rec.fingerprint.id())
        }
    );
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    if args.parallel == 0 {
        return Err(BadInput("--parallel must be at least 1".into()).into());
    }
    let suite = load(&args.file)?;
    let cases = suite.cases(args.filter.as_deref());
    if cases.is_empty() {
        return Err(BadInput(format!(
            "{}: no run matches --filter {:?}",
            args.file.display(),
            args.filter.as_deref().unwrap_or("")
        ))
        .into());
    }
    let night = night_dir(&args.store, &suite.name).with_context(|| {
        format!(
            "creating the suite's directory under {}",
            args.store.display()
        )
    })?;
    let started_at = SystemTime::now();
    eprintln!(
        "faultline suite: {} ({} runs, budget {} s, suite seed {}); summary in {}",
        suite.name,
        cases.len(),
        suite.time_budget_s,
        suite.seed,
        night.display()
    );
    let runner = Runner {
        suite: &suite,
        exe: std::env::current_exe().context("finding the faultline binary")?,
        store: args.store.clone(),
        logs: night.join("logs"),
        started: Instant::now(),
        count: Mutex::new(0),
        total: cases.len(),
    };
    let records = run_all(&cases, args.parallel, |c| {
        let rec = runner.run(c, 0);
        let j = outcome::judge(&suite.rows[c.row], &rec);
        if !rec.skipped {
            progress_line(c, &rec, &j);
        }
        rec
    });
    let mut judgements: Vec<Judgement> = cases
        .iter()
        .zip(&records)
        .map(|(c, r)| outcome::judge(&suite.rows[c.row], r))
        .collect();
    for (ri, row) in suite.rows.iter().enumerate() {
        let idx: Vec<usize> = (0..cases.len()).filter(|&i| cases[i].row == ri).collect();
        let mut js: Vec<Judgement> = idx.iter().map(|&i| judgements[i].clone()).collect();
        outcome::apply_catch_rate(row, &mut js);
        for (k, &i) in idx.iter().enumerate() {
            judgements[i] = js[k].clone();
        }
    }
    // reruns of what failed, on the same seed
    let failed: Vec<usize> = (0..cases.len())
        .filter(|&i| judgements[i].is_failure() && !matches!(judgements[i], Judgement::Skipped(_)))
        .collect();
    let mut reruns: Vec<Vec<RunRecord>> = vec![Vec::new(); cases.len()];
    let mut classes: Vec<Option<Classification>> = vec![None; cases.len()];
    if args.rerun_failed > 0 && !failed.is_empty() {
        let jobs: Vec<(usize, usize)> = failed
            .iter()
            .flat_map(|&i| (1..=args.rerun_failed).map(move |a| (i, a)))
            .collect();
        let done = run_all(&jobs, args.parallel, |&(i, a)| runner.run(&cases[i], a));
        for ((i, _), rec) in jobs.iter().zip(done) {
            if !rec.skipped {
                reruns[*i].push(rec);
            }
        }
        for &i in &failed {
            let judged: Vec<(RunRecord, Judgement)> = reruns[i]
                .iter()
                .map(|r| (r.clone(), outcome::judge(&suite.rows[cases[i].row], r)))
                .collect();
            if !judged.is_empty() || matches!(judgements[i], Judgement::Harness(_)) {
                classes[i] = Some(outcome::classify(&judgements[i], &records[i], &judged));
            }
        }
    }
    let exit = outcome::exit_code(&judgements);
    let canaries: Vec<usize> = (0..cases.len())
        .filter(|&i| suite.rows[cases[i].row].canary)
        .collect();
    let canaries_caught =
        !canaries.is_empty() && canaries.iter().all(|&i| judgements[i] == Judgement::Pass);
    let case_results: Vec<CaseResult> = (0..cases.len())
        .map(|i| CaseResult {
            row: suite.rows[cases[i].row].name.clone(),
            canary: suite.rows[cases[i].row].canary,
            record: records[i].clone(),
            judgement: judgements[i].clone(),
            classification: classes[i],
            reruns: reruns[i].clone(),
        })
        .collect();
    let summary = Summary {
        suite: suite.name.clone(),
        file: args.file.display().to_string(),
        seed: suite.seed,
        started_at: store::rfc3339_utc(started_at),
        elapsed_s: runner.started.elapsed().as_secs_f64(),
        time_budget_s: suite.time_budget_s,
        exit_code: exit,
        passed: judgements.iter().filter(|j| **j == Judgement::Pass).count(),
        failed: judgements.iter().filter(|j| j.is_failure()).count(),
        quarantined: judgements
            .iter()
            .filter(|j| matches!(j, Judgement::Quarantined(_)))
            .count(),
        canaries_caught,
        cases: case_results,
    };
    let xml = report::junit(&summary);
    std::fs::write(night.join("junit.xml"), &xml).context("writing junit.xml")?;
    if let Some(out) = &args.junit {
        std::fs::write(out, &xml).with_context(|| format!("writing {}", out.display()))?;
    }
    let json = serde_json::to_vec_pretty(&summary)?;
    std::fs::write(night.join("summary.json"), json).context("writing summary.json")?;
    let table = faultline::suite::table::markdown(&summary, &suite.rows);
    std::fs::write(night.join("table.md"), &table).context("writing table.md")?;
    if let Some(out) = &args.table {
        std::fs::write(out, &table).with_context(|| format!("writing {}", out.display()))?;
    }
    print_summary(&summary, &night, &suite);
    Ok(exit)
}

fn print_summary(s: &Summary, night: &Path, suite: &Suite) {
    println!(
        "\nsuite {}: {} passed, {} failed, {} quarantined of {} runs in {:.0} s",
        s.suite,
        s.passed,
        s.failed,
        s.quarantined,
        s.cases.len(),
        s.elapsed_s
    );
    for c in &s.cases {
        if !c.judgement.is_failure() {
            continue;
        }
        println!(
            "  FAIL {}: {}: {}{}",
            c.record.case,
            c.judgement.word(),
            c.judgement.why(),
            c.classification.map_or(String::new(), |k| format!(
                " [{k:?} over {} reruns]",
                c.reruns.len()
            ))
        );
        println!("       reproduce: {}", c.record.command);
        if let Some(d) = &c.record.run_dir {
            println!("       run: {d}");
        }
    }
    let has_canary = suite
        .rows
        .iter()
        .any(|r| r.canary && r.expect == Expect::Invalid);
    if has_canary {
        println!(
            "canaries: {}",
            if s.canaries_caught {
                "caught every time"
            } else {
                "NOT all caught: this suite's passes cannot be trusted"
            }
        );
    } else {
        println!("canaries: none in this suite (a suite without one can go silently green)");
    }
    println!("summary: {}", night.join("summary.json").display());
    println!("junit: {}", night.join("junit.xml").display());
    println!("table: {}", night.join("table.md").display());
    println!("exit: {}", s.exit_code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_options_are_the_run_command_options() {
        let names = run_option_names();
        for n in [
            "nodes",
            "node-choice",
            "concurrency",
            "seed",
            "store",
            "bug",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
    }

    #[test]
    fn shipped_suites_load() {
        for f in [
            "suites/ci.toml",
            "suites/nightly.toml",
            "suites/bugs-raft.toml",
        ] {
            let s = load(Path::new(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert!(s.rows.iter().any(|r| r.canary), "{f} has a canary");
        }
    }

    #[test]
    fn a_bad_row_is_refused_with_file_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.toml");
        let write = |t: &str| std::fs::write(&p, t).unwrap();
        write(
            "time_budget_s = 60\n[[row]]\nsystem = \"raft\"\nseeds = [1]\nexpect = \"valid\"\nnemesis = \"no-such\"\n",
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("s.toml: line 6: row[0].nemesis:"), "{e}");
        write(
            "time_budget_s = 60\n[[row]]\nsystem = \"raft\"\nseeds = [1]\nexpect = \"valid\"\nnode_choice = \"sometimes\"\n",
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("s.toml: line 6: row[0].node_choice:"), "{e}");
        write(
            "time_budget_s = 60\n[[row]]\nsystem = \"raft\"\nseeds = [1]\nexpect = \"valid\"\nnodes = \"many\"\n",
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("line 6: row[0].nodes:"), "{e}");
    }
}
