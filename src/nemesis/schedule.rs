//! Fault schedules (TOML, `nemeses/*.toml`): when faults start, how long they hold, and which
//! faults with what targets, drawn from the run's seed. Pure: `Plan` turns (schedule, seed)
//! into the same decisions every time; only `leader` targets wait for the live cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::error::NemesisError;
use super::fault::{ClockSpec, FaultKind, GrudgeSpec, TargetSpec};

const BUILTIN: &[(&str, &str)] = &[
    ("none", include_str!("../../nemeses/none.toml")),
    (
        "partition-halves",
        include_str!("../../nemeses/partition-halves.toml"),
    ),
    (
        "partition-leader",
        include_str!("../../nemeses/partition-leader.toml"),
    ),
    (
        "partition-ring",
        include_str!("../../nemeses/partition-ring.toml"),
    ),
    (
        "pause-leader",
        include_str!("../../nemeses/pause-leader.toml"),
    ),
    (
        "kill-random",
        include_str!("../../nemeses/kill-random.toml"),
    ),
    (
        "clock-drift",
        include_str!("../../nemeses/clock-drift.toml"),
    ),
    (
        "clock-strobe",
        include_str!("../../nemeses/clock-strobe.toml"),
    ),
    (
        "kill-majority",
        include_str!("../../nemeses/kill-majority.toml"),
    ),
    (
        "partition-flip",
        include_str!("../../nemeses/partition-flip.toml"),
    ),
    (
        "leader-flip",
        include_str!("../../nemeses/leader-flip.toml"),
    ),
    (
        "partition-leader-drift",
        include_str!("../../nemeses/partition-leader-drift.toml"),
    ),
    ("loss", include_str!("../../nemeses/loss.toml")),
    ("mixed", include_str!("../../nemeses/mixed.toml")),
];

/// One kind of fault a schedule may pick.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultSpec {
    Partition {
        grudge: GrudgeSpec,
        weight: u32,
    },
    Loss {
        targets: TargetSpec,
        percent: u8,
        weight: u32,
    },
    Pause {
        targets: TargetSpec,
        weight: u32,
    },
    Kill {
        targets: TargetSpec,
        weight: u32,
    },
    Clock {
        targets: TargetSpec,
        clock: ClockSpec,
        weight: u32,
    },
}

/// A `[[fault]]` table as written; clock fields are flat (`mode = "bump"`, `offset_ms`...).
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawFault {
    Partition {
        grudge: GrudgeSpec,
        #[serde(default = "one")]
        weight: u32,
    },
    Loss {
        #[serde(default = "all")]
        targets: TargetSpec,
        percent: u8,
        #[serde(default = "one")]
        weight: u32,
    },
    Pause {
        targets: TargetSpec,
        #[serde(default = "one")]
        weight: u32,
    },
    Kill {
        targets: TargetSpec,
        #[serde(default = "one")]
        weight: u32,
    },
    Clock {
        targets: TargetSpec,
        mode: String,
        offset_ms: Option<[i64; 2]>,
        delta_ms: Option<i64>,
        period_ms: Option<u64>,
        ms_per_s: Option<f64>,
        #[serde(default = "one")]
        weight: u32,
    },
}

impl RawFault {
    /// The typed fault, or (field, message).
    fn typed(self) -> Result<FaultSpec, (String, String)> {
        Ok(match self {
            RawFault::Partition { grudge, weight } => FaultSpec::Partition { grudge, weight },
            RawFault::Loss {
                targets,
                percent,
                weight,
            } => FaultSpec::Loss {
                targets,
                percent,
                weight,
            },
            RawFault::Pause { targets, weight } => FaultSpec::Pause { targets, weight },
            RawFault::Kill { targets, weight } => FaultSpec::Kill { targets, weight },
            RawFault::Clock {
                targets,
                mode,
                offset_ms,
                delta_ms,
                period_ms,
                ms_per_s,
                weight,
            } => {
                let need = |f: &str| (f.to_string(), format!("required for mode `{mode}`"));
                let extra = |f: &str, present: bool| {
                    if present {
                        Err((f.to_string(), format!("not used by mode `{mode}`")))
                    } else {
                        Ok(())
                    }
                };
                let clock = match mode.as_str() {
                    "bump" => {
                        extra("delta_ms", delta_ms.is_some())?;
                        extra("period_ms", period_ms.is_some())?;
                        extra("ms_per_s", ms_per_s.is_some())?;
                        ClockSpec::Bump {
                            offset_ms: offset_ms.ok_or_else(|| need("offset_ms"))?,
                        }
                    }
                    "strobe" => {
                        extra("offset_ms", offset_ms.is_some())?;
                        extra("ms_per_s", ms_per_s.is_some())?;
                        ClockSpec::Strobe {
                            delta_ms: delta_ms.ok_or_else(|| need("delta_ms"))?,
                            period_ms: period_ms.ok_or_else(|| need("period_ms"))?,
                        }
                    }
                    "drift" => {
                        extra("offset_ms", offset_ms.is_some())?;
                        extra("delta_ms", delta_ms.is_some())?;
                        extra("period_ms", period_ms.is_some())?;
                        ClockSpec::Drift {
                            ms_per_s: ms_per_s.ok_or_else(|| need("ms_per_s"))?,
                        }
                    }
                    other => {
                        return Err((
                            "mode".into(),
                            format!("unknown clock mode `{other}` (bump, strobe, drift)"),
                        ));
                    }
                };
                FaultSpec::Clock {
                    targets,
                    clock,
                    weight,
                }
            }
        })
    }
}

fn one() -> u32 {
    1
}
fn all() -> TargetSpec {
    TargetSpec::All
}

impl FaultSpec {
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultSpec::Partition { .. } => FaultKind::Partition,
            FaultSpec::Loss { .. } => FaultKind::Loss,
            FaultSpec::Pause { .. } => FaultKind::Pause,
            FaultSpec::Kill { .. } => FaultKind::Kill,
            FaultSpec::Clock { .. } => FaultKind::Clock,
        }
    }
    pub fn weight(&self) -> u32 {
        match self {
            FaultSpec::Partition { weight, .. }
            | FaultSpec::Loss { weight, .. }
            | FaultSpec::Pause { weight, .. }
            | FaultSpec::Kill { weight, .. }
            | FaultSpec::Clock { weight, .. } => *weight,
        }
    }
}

/// The document. Its timing keys repeat `RawLane`'s (they are the `main` lane) because
/// serde cannot flatten a struct under `deny_unknown_fields`, and unknown keys must stay errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    description: String,
    #[serde(default = "default_start_after")]
    start_after_s: f64,
    #[serde(default = "default_range")]
    interval_s: [f64; 2],
    #[serde(default = "default_range")]
    duration_s: [f64; 2],
    #[serde(default)]
    fault: Vec<RawFault>,
    #[serde(default)]
    lane: Vec<RawLane>,
}

/// A `[[lane]]` table: the same timing keys and `[[lane.fault]]`s as the top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLane {
    name: Option<String>,
    #[serde(default = "default_start_after")]
    start_after_s: f64,
    #[serde(default = "default_range")]
    interval_s: [f64; 2],
    #[serde(default = "default_range")]
    duration_s: [f64; 2],
    #[serde(default)]
    fault: Vec<RawFault>,
}

fn default_start_after() -> f64 {
    1.0
}
fn default_range() -> [f64; 2] {
    [5.0, 5.0]
}

/// One lane of a schedule: faults drawn one at a time, each held then undone, with the
/// lane's own timings. Lanes run side by side (Jepsen's composed nemeses), so a partition
/// can hold while a clock strobes or a node is killed.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    pub name: String,
    /// Quiet time before the first fault.
    pub start_after: Duration,
    /// Quiet time between faults, drawn uniformly from [min, max].
    pub interval: [Duration; 2],
    /// How long each fault holds, drawn uniformly from [min, max].
    pub duration: [Duration; 2],
    pub faults: Vec<FaultSpec>,
}

/// A parsed schedule: the top-level keys form the first lane (`main`), each `[[lane]]`
/// another.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub description: String,
    pub lanes: Vec<Lane>,
}

/// Faults that act on the same mechanism; one lane owns each, or two lanes would undo each
/// other's faults (a resume of a killed node, a heal of another lane's partition).
fn mechanism(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Partition => "partition",
        FaultKind::Loss => "loss",
        FaultKind::Pause | FaultKind::Kill => "process (kill, pause)",
        FaultKind::Clock => "clock",
    }
}

/// One lane's timings and faults, validated; errors name `{prefix}field`.
fn parse_lane(
    l: RawLane,
    name: String,
    prefix: &str,
    bad: &dyn Fn(String, String) -> NemesisError,
) -> Result<Lane, NemesisError> {
    let secs = |field: &str, v: f64| {
        if (0.0..=86_400.0).contains(&v) {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(bad(
                format!("{prefix}{field}"),
                format!("must be in [0, 86400] s, got {v}"),
            ))
        }
    };
    let range = |field: &str, r: [f64; 2]| -> Result<[Duration; 2], NemesisError> {
        let (a, b) = (secs(field, r[0])?, secs(field, r[1])?);
        if a > b {
            return Err(bad(
                format!("{prefix}{field}"),
                format!("min {} > max {}", r[0], r[1]),
            ));
        }
        Ok([a, b])
    };
    let duration = range("duration_s", l.duration_s)?;
    if !l.fault.is_empty() && duration[1].is_zero() {
        return Err(bad(
            format!("{prefix}duration_s"),
            "faults must hold for some time".into(),
        ));
    }
    let mut faults = Vec::with_capacity(l.fault.len());
    for (i, f) in l.fault.into_iter().enumerate() {
        let field = |k: &str| format!("{prefix}fault[{i}].{k}");
        let f = f.typed().map_err(|(k, m)| bad(field(&k), m))?;
        if f.weight() == 0 {
            return Err(bad(field("weight"), "must be at least 1".into()));
        }
        match &f {
            FaultSpec::Loss { percent, .. } if !(1..=100).contains(percent) => {
                return Err(bad(
                    field("percent"),
                    format!("must be 1..=100, got {percent}"),
                ));
            }
            FaultSpec::Clock {
                clock: ClockSpec::Bump { offset_ms },
                ..
            } if offset_ms[0] > offset_ms[1] => {
                return Err(bad(field("offset_ms"), "min > max".into()));
            }
            FaultSpec::Clock {
                clock: ClockSpec::Strobe { period_ms, .. },
                ..
            } if *period_ms < 10 => {
                return Err(bad(field("period_ms"), "must be at least 10".into()));
            }
            _ => {}
        }
        faults.push(f);
    }
    Ok(Lane {
        name,
        start_after: secs("start_after_s", l.start_after_s)?,
        interval: range("interval_s", l.interval_s)?,
        duration,
        faults,
    })
}

impl Schedule {
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A name (`nemeses/NAME.toml` in the working directory, else built in) or a path.
    pub fn load(name_or_path: &str) -> Result<Schedule, NemesisError> {
        let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".toml");
        let from_file = |p: &Path| {
            let text = std::fs::read_to_string(p).map_err(|e| NemesisError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Schedule::parse(&text, &name, &p.display().to_string())
        };
        if looks_like_path {
            return from_file(Path::new(name_or_path));
        }
        let local = Path::new("nemeses").join(format!("{name_or_path}.toml"));
        if local.is_file() {
            return from_file(&local);
        }
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Schedule::parse(text, name_or_path, &format!("builtin:{name_or_path}"));
        }
        Err(NemesisError::UnknownSchedule(
            name_or_path.into(),
            Self::builtin_names().join(", "),
        ))
    }

    pub fn parse(text: &str, name: &str, origin: &str) -> Result<Schedule, NemesisError> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            NemesisError::Schedule {
                file: origin.into(),
                field: line.map_or("document".into(), |l| format!("line {l}")),
                message: e.message().to_string(),
            }
        })?;
        let bad = |field: String, message: String| NemesisError::Schedule {
            file: origin.into(),
            field,
            message,
        };
        let top = RawLane {
            name: Some("main".into()),
            start_after_s: raw.start_after_s,
            interval_s: raw.interval_s,
            duration_s: raw.duration_s,
            fault: raw.fault,
        };
        let mut raws = Vec::new();
        if !top.fault.is_empty() || raw.lane.is_empty() {
            raws.push((String::new(), top));
        }
        for (i, l) in raw.lane.into_iter().enumerate() {
            raws.push((format!("lane[{i}]."), l));
        }
        let mut lanes: Vec<Lane> = Vec::with_capacity(raws.len());
        let mut owner: BTreeMap<&'static str, String> = BTreeMap::new();
        for (n, (prefix, l)) in raws.into_iter().enumerate() {
            let name = l.name.clone().unwrap_or_else(|| format!("lane{n}"));
            if lanes.iter().any(|o| o.name == name) {
                return Err(bad(
                    format!("{prefix}name"),
                    format!("lane `{name}` is named twice"),
                ));
            }
            let lane = parse_lane(l, name, &prefix, &bad)?;
            for (i, f) in lane.faults.iter().enumerate() {
                let m = mechanism(f.kind());
                match owner.get(m) {
                    Some(other) if *other != lane.name => {
                        return Err(bad(
                            format!("{prefix}fault[{i}].kind"),
                            format!(
                                "{m} faults are already drawn by lane `{other}`; each mechanism \
                                 belongs to one lane, or the lanes would undo each other's faults"
                            ),
                        ));
                    }
                    _ => {
                        owner.insert(m, lane.name.clone());
                    }
                }
            }
            lanes.push(lane);
        }
        Ok(Schedule {
            name: name.into(),
            description: raw.description,
            lanes,
        })
    }

    pub fn kinds(&self) -> Vec<FaultKind> {
        let mut k: Vec<FaultKind> = self
            .lanes
            .iter()
            .flat_map(|l| l.faults.iter().map(|f| f.kind()))
            .collect();
        k.sort();
        k.dedup();
        k
    }

    /// The same schedule without faults of `kind` (e.g. clock faults on etcd).
    pub fn without(&self, kind: FaultKind) -> Schedule {
        let mut s = self.clone();
        for l in &mut s.lanes {
            l.faults.retain(|f| f.kind() != kind);
        }
        s
    }
}

/// Seeded decisions for a schedule. `rng` decides which fault next, how long to hold it and
/// how long to wait after: that sequence depends on the seed alone. `targets` picks victims
/// (see `grudge`); it is a separate stream because `leader` targets depend on the live
/// cluster and must not shift the timeline.
pub struct Plan {
    pub rng: ChaCha8Rng,
    pub targets: ChaCha8Rng,
}

/// The next fault step decided by the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub fault: FaultSpec,
    pub hold: Duration,
    pub then_wait: Duration,
}

fn uniform(rng: &mut ChaCha8Rng, r: [Duration; 2]) -> Duration {
    if r[0] == r[1] {
        return r[0];
    }
    Duration::from_nanos(rng.random_range(r[0].as_nanos() as u64..=r[1].as_nanos() as u64))
}

impl Plan {
    pub fn new(seed: u64) -> Plan {
        Plan {
            rng: ChaCha8Rng::seed_from_u64(seed),
            targets: ChaCha8Rng::seed_from_u64(seed ^ 0x7461_7267_6574_7321),
        }
    }

    /// The plan of lane `i`: lane 0 is `Plan::new(seed)`, so a one-lane schedule draws what
    /// it always drew; the others get their own streams of the same seed.
    pub fn for_lane(seed: u64, i: usize) -> Plan {
        Plan::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The lane's next step, or None if the lane has no faults.
    pub fn next(&mut self, s: &Lane) -> Option<Step> {
        let total: u32 = s.faults.iter().map(|f| f.weight()).sum();
        if total == 0 {
            return None;
        }
        let mut pick = self.rng.random_range(0..total);
        let fault = s
            .faults
            .iter()
            .find(|f| {
                if pick < f.weight() {
                    true
                } else {
                    pick -= f.weight();
                    false
                }
            })
            .expect("weights sum to total")
            .clone();
        let hold = uniform(&mut self.rng, s.duration);
        let then_wait = uniform(&mut self.rng, s.interval);
        Some(Step {
            fault,
            hold,
            then_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_builtins_parse() {
        for n in Schedule::builtin_names() {
            let s = Schedule::load(n).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(s.name, n);
            if n != "none" {
                assert!(!s.kinds().is_empty(), "{n}");
            }
        }
        let mixed = Schedule::load("mixed").unwrap();
        assert!(mixed.kinds().len() >= 4, "{:?}", mixed.kinds());
        assert!(
            !mixed
                .without(FaultKind::Clock)
                .kinds()
                .contains(&FaultKind::Clock)
        );
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = Schedule::parse("[[fault]]\nkind = \"loss\"\npercent = 0\n", "x", "x.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.toml: fault[0].percent: must be 1..=100, got 0");
        let e = Schedule::parse("interval_s = [1.0]\n", "x", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml: line 1:"), "{e}");
        let e = Schedule::parse(
            "[[fault]]\nkind = \"partition\"\ngrudge = \"nope\"\n",
            "x",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line"), "{e}");
        let e = Schedule::parse("duration_s = [5.0, 1.0]\n", "x", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("duration_s: min 5 > max 1"), "{e}");
    }

    #[test]
    fn clock_specs_parse() {
        let s = Schedule::parse(
            "[[fault]]\nkind = \"clock\"\ntargets = \"one\"\nmode = \"strobe\"\ndelta_ms = 200\nperiod_ms = 50\n",
            "x",
            "x",
        )
        .unwrap();
        assert_eq!(
            s.lanes[0].faults[0],
            FaultSpec::Clock {
                targets: TargetSpec::One,
                clock: ClockSpec::Strobe {
                    delta_ms: 200,
                    period_ms: 50
                },
                weight: 1
            }
        );
    }

    #[test]
    fn plan_is_seeded() {
        let s = Schedule::load("mixed").unwrap();
        let steps = |seed| {
            let mut p = Plan::new(seed);
            (0..20)
                .map(|_| p.next(&s.lanes[0]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(steps(7), steps(7));
        assert_ne!(steps(7), steps(8));
        for st in steps(3) {
            assert!(st.hold >= s.lanes[0].duration[0] && st.hold <= s.lanes[0].duration[1]);
        }
        assert!(
            Plan::new(1)
                .next(&Schedule::load("none").unwrap().lanes[0])
                .is_none()
        );
    }

    const TWO_LANES: &str = r#"
[[lane]]
name = "net"
interval_s = [0.0, 0.0]
duration_s = [1.0, 2.0]
[[lane.fault]]
kind = "partition"
grudge = "leader"

[[lane]]
start_after_s = 0.5
duration_s = [30.0, 30.0]
[[lane.fault]]
kind = "clock"
targets = "all"
mode = "strobe"
delta_ms = 3000
period_ms = 500
"#;

    #[test]
    fn lanes_parse_with_their_own_timings() {
        let s = Schedule::parse(TWO_LANES, "x", "x.toml").unwrap();
        let names: Vec<&str> = s.lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["net", "lane1"]);
        assert_eq!(s.lanes[0].interval, [Duration::ZERO; 2]);
        assert_eq!(s.lanes[1].start_after, Duration::from_millis(500));
        assert_eq!(s.kinds(), [FaultKind::Partition, FaultKind::Clock]);
        let no_clock = s.without(FaultKind::Clock);
        assert!(no_clock.lanes[1].faults.is_empty());
        // A top-level fault list is the first lane, `main`, beside the others.
        let both = format!("[[fault]]\nkind = \"kill\"\ntargets = \"one\"\n{TWO_LANES}");
        let s = Schedule::parse(&both, "x", "x.toml").unwrap();
        assert_eq!(s.lanes.len(), 3);
        assert_eq!(s.lanes[0].name, "main");
    }

    #[test]
    fn one_mechanism_belongs_to_one_lane() {
        let text = "[[fault]]\nkind = \"kill\"\ntargets = \"one\"\n\n[[lane]]\n[[lane.fault]]\nkind = \"partition\"\ngrudge = \"one\"\n[[lane.fault]]\nkind = \"pause\"\ntargets = \"leader\"\n";
        let e = Schedule::parse(text, "x", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.toml: lane[0].fault[1].kind: process (kill, pause) faults are already drawn by lane `main`"),
            "{e}"
        );
        let e = Schedule::parse(
            "[[lane]]\nname = \"a\"\n[[lane]]\nname = \"a\"\n",
            "x",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "x.toml: lane[1].name: lane `a` is named twice");
        let e = Schedule::parse("[[lane]]\nduration_s = [2.0, 1.0]\n", "x", "x.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.toml: lane[0].duration_s: min 2 > max 1");
    }

    #[test]
    fn lane_zero_draws_what_a_one_lane_schedule_drew() {
        let s = Schedule::load("mixed").unwrap();
        let draw = |mut p: Plan| {
            (0..10)
                .map(|_| p.next(&s.lanes[0]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(Plan::for_lane(9, 0)), draw(Plan::new(9)));
        assert_ne!(draw(Plan::for_lane(9, 1)), draw(Plan::new(9)));
    }
}
