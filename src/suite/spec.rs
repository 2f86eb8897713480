//! Suite files (`suites/*.toml`): a matrix of rows (system x workload x nemesis x bugs x
//! seeds) with budgets, expectations and floors, parsed strictly (errors name file, line and
//! field) and expanded into the runs to make.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use toml::Spanned;

/// What a row must show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Every run is valid (and did its minimum of work).
    Valid,
    /// Every run is caught (or at least `min_catch_rate` of them).
    Invalid,
    /// Run and shown, never counted.
    Quarantined,
}

/// A row as written, expanded options included.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `name`, or `system-workload-nemesis[+bugs]`.
    pub name: String,
    /// 1-based line of the `[[row]]` header, for messages.
    pub line: usize,
    pub system: String,
    pub workload: String,
    pub nemesis: String,
    pub bugs: Vec<String>,
    pub seeds: Vec<u64>,
    pub time_limit: f64,
    pub expect: Expect,
    pub min_ok_ops: u64,
    /// Faults that must have taken effect (default: 1 unless the nemesis is `none`).
    pub min_faults: u64,
    pub canary: bool,
    /// For `invalid` rows: the share of runs that must be caught (default 1.0).
    pub min_catch_rate: f64,
    /// Wall-clock limit of one run, setup and check included.
    pub run_timeout_s: f64,
    /// Any other `faultline run` option by its long name, rendered as `--name value`
    /// (`true` renders as a bare flag), with the line it was written on.
    pub options: Vec<(String, String, usize)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suite {
    pub name: String,
    pub description: String,
    /// Seed that drew the seeds of `runs = N` rows.
    pub seed: u64,
    pub time_budget_s: f64,
    pub rows: Vec<Row>,
}

/// One run to make: a row and one of its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub row: usize,
    pub seed: u64,
    /// `<row name>/seed=<seed>`, what `--filter` matches.
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: line {line}: {field}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
    seed: Option<Spanned<u64>>,
    time_budget_s: Spanned<f64>,
    #[serde(default)]
    row: Vec<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
}

/// Keys a row understands itself; anything else must be a `faultline run` option.
const ROW_KEYS: &[&str] = &[
    "name",
    "system",
    "workload",
    "nemesis",
    "bug",
    "seeds",
    "runs",
    "time_limit",
    "expect",
    "min_ok_ops",
    "min_faults",
    "canary",
    "min_catch_rate",
    "run_timeout_s",
];

/// Run options a row may not set: the suite owns them.
const OWNED_OPTIONS: &[&str] = &["seed", "store", "bug", "time-limit", "replay-schedule"];

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Suite {
    /// Parses a suite file. `run_options` are the long names `faultline run` accepts (without
    /// `--`); a row key naming one of them (with `_` or `-`) becomes that option.
    pub fn parse(
        text: &str,
        name_fallback: &str,
        origin: &str,
        run_options: &[String],
    ) -> Result<Suite, SpecError> {
        let err = |line: usize, field: &str, message: String| SpecError {
            file: origin.to_string(),
            line,
            field: field.to_string(),
            message,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            err(line, "document", e.message().to_string())
        })?;
        let budget = *raw.time_budget_s.get_ref();
        if !(budget.is_finite() && budget > 0.0) {
            return Err(err(
                line_of(text, raw.time_budget_s.span().start),
                "time_budget_s",
                format!("must be a positive number of seconds, got {budget}"),
            ));
        }
        if raw.row.is_empty() {
            return Err(err(1, "row", "a suite needs at least one [[row]]".into()));
        }
        let seed = raw.seed.as_ref().map_or_else(
            || rand::rng().random_range(1..=u64::from(u32::MAX)),
            |s| *s.get_ref(),
        );
        let mut rows = Vec::with_capacity(raw.row.len());
        for (i, r) in raw.row.iter().enumerate() {
            let row_line = line_of(text, r.span().start);
            let fields = r.get_ref();
            let at = |k: &str| {
                fields
                    .get(k)
                    .map_or(row_line, |v| line_of(text, v.span().start))
            };
            let field = |k: &str| format!("row[{i}].{k}");
            let bad = |k: &str, m: String| err(at(k), &field(k), m);
            let string = |k: &str| -> Result<Option<String>, SpecError> {
                match fields.get(k).map(|v| v.get_ref()) {
                    None => Ok(None),
                    Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                    Some(v) => Err(bad(k, format!("must be a non-empty string, got {v}"))),
                }
            };
            let number = |k: &str| -> Result<Option<f64>, SpecError> {
                match fields.get(k).map(|v| v.get_ref()) {
                    None => Ok(None),
                    Some(toml::Value::Integer(n)) => Ok(Some(*n as f64)),
                    Some(toml::Value::Float(f)) if f.is_finite() => Ok(Some(*f)),
                    Some(v) => Err(bad(k, format!("must be a number, got {v}"))),
                }
            };
            let count = |k: &str| -> Result<Option<u64>, SpecError> {
                match fields.get(k).map(|v| v.get_ref()) {
                    None => Ok(None),
                    Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
                    Some(v) => Err(bad(k, format!("must be a whole number >= 0, got {v}"))),
                }
            };
            let system =
                string("system")?.ok_or_else(|| bad("system", "is required".to_string()))?;
            let workload = string("workload")?.unwrap_or_else(|| "kv".into());
            let nemesis = string("nemesis")?.unwrap_or_else(|| "partition-halves".into());
            let bugs = match fields.get("bug").map(|v| v.get_ref()) {
                None => Vec::new(),
                Some(toml::Value::String(s)) => vec![s.clone()],
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|b| match b {
                        toml::Value::String(s) if !s.is_empty() => Ok(s.clone()),
                        other => Err(bad("bug", format!("bug names are strings, got {other}"))),
                    })
                    .collect::<Result<_, _>>()?,
                Some(v) => Err(bad("bug", format!("a name or a list of names, got {v}")))?,
            };
            let seeds = match (fields.get("seeds"), count("runs")?) {
                (Some(_), Some(_)) => {
                    return Err(bad("runs", "give `seeds` or `runs`, not both".into()));
                }
                (None, None) => {
                    return Err(bad("seeds", "give `seeds = [..]` or `runs = N`".into()));
                }
                (None, Some(0)) => return Err(bad("runs", "must be at least 1".into())),
                (None, Some(n)) => {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (i as u64 + 1));
                    (0..n)
                        .map(|_| rng.random_range(1..=u64::from(u32::MAX)))
                        .collect()
                }
                (Some(s), None) => match s.get_ref() {
                    toml::Value::Array(a) if !a.is_empty() => a
                        .iter()
                        .map(|v| match v {
                            toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
                            other => Err(bad(
                                "seeds",
                                format!("seeds are integers >= 0, got {other}"),
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                    v => return Err(bad("seeds", format!("a non-empty list of seeds, got {v}"))),
                },
            };
            let time_limit = number("time_limit")?.unwrap_or(60.0);
            if time_limit <= 0.0 {
                return Err(bad(
                    "time_limit",
                    format!("must be positive, got {time_limit}"),
                ));
            }
            let expect = match string("expect")?.as_deref() {
                None => {
                    return Err(bad(
                        "expect",
                        "is required: valid, invalid or quarantined".into(),
                    ));
                }
                Some("valid") => Expect::Valid,
                Some("invalid") => Expect::Invalid,
                Some("quarantined") => Expect::Quarantined,
                Some(o) => {
                    return Err(bad(
                        "expect",
                        format!("`{o}` is not one of valid, invalid, quarantined"),
                    ));
                }
            };
            let canary = match fields.get("canary").map(|v| v.get_ref()) {
                None => false,
                Some(toml::Value::Boolean(b)) => *b,
                Some(v) => return Err(bad("canary", format!("must be true or false, got {v}"))),
            };
            if canary && (expect != Expect::Invalid || bugs.is_empty()) {
                return Err(bad(
                    "canary",
                    "a canary is a planted bug that must be caught: it needs `bug` and \
                     expect = \"invalid\""
                        .into(),
                ));
            }
            let min_catch_rate = number("min_catch_rate")?.unwrap_or(1.0);
            if !(0.0..=1.0).contains(&min_catch_rate) {
                return Err(bad(
                    "min_catch_rate",
                    format!("must be in [0, 1], got {min_catch_rate}"),
                ));
            }
            if fields.contains_key("min_catch_rate") && (expect != Expect::Invalid || canary) {
                return Err(bad(
                    "min_catch_rate",
                    "only for expect = \"invalid\" rows that are not canaries (a canary is \
                     caught every time)"
                        .into(),
                ));
            }
            let run_timeout_s = number("run_timeout_s")?.unwrap_or(time_limit * 2.0 + 120.0);
            if run_timeout_s <= time_limit {
                return Err(bad(
                    "run_timeout_s",
                    format!(
                        "must exceed time_limit ({time_limit} s): setup and checks take time too"
                    ),
                ));
            }
            let mut options = Vec::new();
            for (k, v) in fields {
                if ROW_KEYS.contains(&k.as_str()) {
                    continue;
                }
                let long = k.replace('_', "-");
                let line = line_of(text, v.span().start);
                if OWNED_OPTIONS.contains(&long.as_str()) {
                    return Err(err(
                        line,
                        &field(k),
                        "set by the suite, not by a row".into(),
                    ));
                }
                if !run_options.contains(&long) {
                    return Err(err(
                        line,
                        &field(k),
                        format!(
                            "unknown key: neither a row key ({}) nor a `faultline run` option",
                            ROW_KEYS.join(", ")
                        ),
                    ));
                }
                // A list repeats the option: param = ["r=1", "w=1"].
                let values: Vec<&toml::Value> = match v.get_ref() {
                    toml::Value::Array(a) if !a.is_empty() => a.iter().collect(),
                    one => vec![one],
                };
                for one in values {
                    let value = match one {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(n) => n.to_string(),
                        toml::Value::Float(f) => f.to_string(),
                        toml::Value::Boolean(true) => String::new(),
                        other => {
                            return Err(err(
                                line,
                                &field(k),
                                format!(
                                    "a string, number, `true` or a list of strings and \
                                     numbers, got {other}"
                                ),
                            ));
                        }
                    };
                    options.push((long.clone(), value, line));
                }
            }
            let name = match string("name")? {
                Some(n) => n,
                None => {
                    let mut n = format!("{system}-{workload}-{nemesis}");
                    for b in &bugs {
                        n.push('+');
                        n.push_str(b);
                    }
                    n
                }
            };
            let min_faults = count("min_faults")?.unwrap_or(u64::from(nemesis != "none"));
            rows.push(Row {
                name,
                line: row_line,
                system,
                workload,
                nemesis,
                bugs,
                seeds,
                time_limit,
                expect,
                min_ok_ops: count("min_ok_ops")?.unwrap_or(1),
                min_faults,
                canary,
                min_catch_rate,
                run_timeout_s,
                options,
            });
        }
        for (i, r) in rows.iter().enumerate() {
            if let Some(j) = rows[..i].iter().position(|o| o.name == r.name) {
                return Err(err(
                    r.line,
                    &format!("row[{i}].name"),
                    format!(
                        "`{}` is also row[{j}]'s name; give one of them a `name`",
                        r.name
                    ),
                ));
            }
        }
        Ok(Suite {
            name: raw
                .name
                .map_or_else(|| name_fallback.to_string(), |n| n.into_inner()),
            description: raw.description,
            seed,
            time_budget_s: budget,
            rows,
        })
    }

    /// Every run, rows in order, seeds in order; only ids containing `filter` if given.
    pub fn cases(&self, filter: Option<&str>) -> Vec<Case> {
        self.rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.seeds.iter().map(move |&seed| Case {
                    row: i,
                    seed,
                    id: format!("{}/seed={seed}", r.name),
                })
            })
            .filter(|c| filter.is_none_or(|f| c.id.contains(f)))
            .collect()
    }
}

impl Row {
    /// The `faultline run` arguments of this row at `seed` (without the binary and `--store`).
    pub fn run_args(&self, seed: u64) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--system".into(),
            self.system.clone(),
            "--workload".into(),
            self.workload.clone(),
            "--nemesis".into(),
            self.nemesis.clone(),
            "--time-limit".into(),
            self.time_limit.to_string(),
            "--seed".into(),
            seed.to_string(),
        ];
        for b in &self.bugs {
            a.push("--bug".into());
            a.push(b.clone());
        }
        for (k, v, _) in &self.options {
            a.push(format!("--{k}"));
            if !v.is_empty() {
                a.push(v.clone());
            }
        }
        a
    }
}

/// A command line as a shell would read it back (words quoted only where needed).
pub fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Vec<String> {
        [
            "nodes",
            "node-choice",
            "concurrency",
            "seed",
            "store",
            "param",
        ]
        .map(String::from)
        .to_vec()
    }

    const GOOD: &str = r#"
time_budget_s = 600
seed = 9

[[row]]
system = "raft"
workload = "register"
nemesis = "partition-leader"
bug = ["stale-local-read"]
node_choice = "random"
nodes = 3
seeds = [1, 2, 3]
time_limit = 25
expect = "invalid"
canary = true

[[row]]
system = "raft"
runs = 2
expect = "valid"
min_ok_ops = 200
param = ["r=1", "w=1"]
"#;

    #[test]
    fn rows_expand_into_cases_and_commands() {
        let s = Suite::parse(GOOD, "ci", "ci.toml", &opts()).unwrap();
        assert_eq!(s.name, "ci");
        assert_eq!(s.rows.len(), 2);
        let r = &s.rows[0];
        assert_eq!(r.name, "raft-register-partition-leader+stale-local-read");
        assert!(r.canary);
        assert_eq!(r.min_faults, 1);
        assert_eq!(
            shell_words(&r.run_args(2)),
            "run --system raft --workload register --nemesis partition-leader --time-limit 25 \
             --seed 2 --bug stale-local-read --node-choice random --nodes 3"
        );
        let cases = s.cases(None);
        assert_eq!(cases.len(), 5);
        assert_eq!(
            cases[1].id,
            "raft-register-partition-leader+stale-local-read/seed=2"
        );
        // `runs = N` draws seeds from the suite's seed: the same file gives the same seeds
        let again = Suite::parse(GOOD, "ci", "ci.toml", &opts()).unwrap();
        assert_eq!(s.rows[1].seeds, again.rows[1].seeds);
        assert_eq!(s.rows[1].seeds.len(), 2);
        assert_eq!(s.cases(Some("partition-halves")).len(), 2);
        assert_eq!(s.rows[1].min_ok_ops, 200);
        // a list repeats its option
        assert!(
            shell_words(&s.rows[1].run_args(1)).ends_with("--param r=1 --param w=1"),
            "{:?}",
            s.rows[1].run_args(1)
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = |t: &str| {
            Suite::parse(t, "x", "x.toml", &opts())
                .unwrap_err()
                .to_string()
        };
        let head = "time_budget_s = 60\n[[row]]\nsystem = \"raft\"\nseeds = [1]\n";
        assert_eq!(
            e(&format!("{head}expect = \"sometimes\"\n")),
            "x.toml: line 5: row[0].expect: `sometimes` is not one of valid, invalid, quarantined"
        );
        assert_eq!(
            e(&format!(
                "{head}expect = \"valid\"\nnode_choise = \"random\"\n"
            ))
            .split(" (")
            .next(),
            Some("x.toml: line 6: row[0].node_choise: unknown key: neither a row key")
        );
        assert_eq!(
            e(&format!("{head}expect = \"valid\"\ncanary = true\n"))
                .split(':')
                .take(3)
                .collect::<Vec<_>>(),
            ["x.toml", " line 6", " row[0].canary"]
        );
        assert_eq!(
            e(&format!("{head}expect = \"valid\"\nstore = \"/tmp\"\n")),
            "x.toml: line 6: row[0].store: set by the suite, not by a row"
        );
        assert_eq!(
            e("time_budget_s = 60\n[[row]]\nseeds = [1]\nexpect = \"valid\"\n"),
            "x.toml: line 2: row[0].system: is required"
        );
        assert!(e("time_budget_s = 0\n").starts_with("x.toml: line 1: time_budget_s: must be"));
        assert!(e("time_budget_s = 6\nbudget = 1\n").starts_with("x.toml: line 2: document:"));
        assert_eq!(
            e(&format!(
                "{head}expect = \"valid\"\n[[row]]\nsystem = \"raft\"\nseeds = [2]\nexpect = \"valid\"\n"
            )),
            "x.toml: line 6: row[1].name: `raft-kv-partition-halves` is also row[0]'s name; give one of them a `name`"
        );
        assert!(
            e(&format!("{head}runs = 3\nexpect = \"valid\"\n"))
                .contains("row[0].runs: give `seeds` or `runs`, not both")
        );
    }

    #[test]
    fn shell_words_quote_only_when_needed() {
        let w = ["run", "--x", "a b", "it's", ""].map(String::from);
        assert_eq!(shell_words(&w), r"run --x 'a b' 'it'\''s' ''");
    }
}
