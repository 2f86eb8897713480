//! Replaying a realised schedule (a run's `schedule.json`): every fault that took effect is
//! put in force again when it took effect (time since the run began), on the same nodes, and
//! undone when it was undone. A fault that was aimed at the leader is re-aimed at the replay's
//! leader (its node swapped with the recorded one): who leads depends on timing, and the
//! fault was meant for whoever led.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};

use super::error::NemesisError;
use super::executor::{
    LaneLog, NEXT_RULE, NemesisHandle, Roster, held_then_undone, pause_or_stop, put_in_force,
};
use super::fault::{Action, ClockSpec, FaultEvent, FaultKind};
use super::schedule::mechanism;
use crate::faults::proxy::MsgRule;
use crate::faults::{Fault, Faults};

/// One fault of a realised schedule, ready to be put in force again.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// Its place among the schedule's faults that took effect, in start order.
    pub index: usize,
    pub start_ns: u64,
    /// When it was undone; None if it was still in force when the schedule ended (the heal
    /// undid it).
    pub stop_ns: Option<u64>,
    /// How long applying and undoing took: a replay begins each that much earlier.
    pub apply_us: u64,
    pub undo_us: u64,
    pub fault: Fault,
    pub targets: Vec<String>,
    pub clock: Option<ClockSpec>,
    /// The detail as recorded (shape, mode, and in a replay's schedule `replay_of` and
    /// `reaimed_from`), less timings and the leader.
    pub detail: Map<String, Value>,
    /// The leader it was aimed at, if it was aimed at one.
    pub leader: Option<String>,
}

impl Recorded {
    pub fn kind(&self) -> FaultKind {
        self.fault.kind()
    }

    /// How long it held; None if it held to the end.
    pub fn hold(&self) -> Option<Duration> {
        self.stop_ns
            .map(|s| Duration::from_nanos(s.saturating_sub(self.start_ns)))
    }
}

/// A run's realised schedule as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Realised {
    pub seed: u64,
    pub nemesis: String,
    pub faults: Vec<Recorded>,
    /// Faults that did not take effect in the original run (their start failed): not
    /// replayed, each with why.
    pub failed: Vec<String>,
}

fn bad(origin: &str, field: String, message: impl Into<String>) -> NemesisError {
    NemesisError::Schedule {
        file: origin.to_string(),
        field,
        message: message.into(),
    }
}

/// Reads a `schedule.json` (`origin` names it in errors). A stop is matched to the earliest
/// unmatched start of the same fault on the same targets.
pub fn parse(text: &str, origin: &str) -> Result<Realised, NemesisError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            origin,
            format!("line {}", e.line()),
            format!("not JSON: {e}"),
        )
    })?;
    let seed = v
        .get("seed")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(origin, "seed".into(), "missing or not an unsigned integer"))?;
    let nemesis = v
        .get("nemesis")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let entries = v
        .get("faults")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(origin, "faults".into(), "missing or not an array"))?;
    let mut faults: Vec<Recorded> = Vec::new();
    let mut failed = Vec::new();
    // starts not yet stopped: (kind, targets, Some(index in faults) or None if it failed)
    let mut open: Vec<(FaultKind, Vec<String>, Option<usize>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let field = |k: &str| format!("faults[{i}]{k}");
        let ev: FaultEvent = serde_json::from_value(e.clone())
            .map_err(|err| bad(origin, field(""), err.to_string()))?;
        let detail = ev.detail.as_object().cloned().unwrap_or_default();
        let us = |d: &Map<String, Value>| d.get("apply_us").and_then(Value::as_u64).unwrap_or(0);
        match ev.action {
            Action::Start => {
                if let Some(err) = detail.get("error") {
                    failed.push(format!(
                        "faults[{i}] ({} on {}): failed in the original run: {}",
                        ev.fault.as_str(),
                        ev.targets.join(","),
                        err.as_str().unwrap_or("error")
                    ));
                    open.push((ev.fault, ev.targets, None));
                    continue;
                }
                let (fault, clock) = fault_of(&ev, &detail)
                    .map_err(|(k, m)| bad(origin, field(&format!(".detail.{k}")), m))?;
                if fault.kind() != ev.fault {
                    return Err(bad(
                        origin,
                        field(".fault"),
                        format!("{} does not match its detail", ev.fault.as_str()),
                    ));
                }
                let leader = detail
                    .get("leader")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| leader_of_old(&fault, &ev.targets, &detail));
                let mut kept = detail.clone();
                for k in ["apply_us", "leader"] {
                    kept.remove(k);
                }
                open.push((ev.fault, ev.targets.clone(), Some(faults.len())));
                faults.push(Recorded {
                    index: faults.len(),
                    start_ns: ev.at_ns,
                    stop_ns: None,
                    apply_us: us(&detail),
                    undo_us: 0,
                    fault,
                    targets: ev.targets,
                    clock,
                    detail: kept,
                    leader,
                });
            }
            Action::Stop => {
                let Some(pos) = open
                    .iter()
                    .position(|(k, t, _)| *k == ev.fault && *t == ev.targets)
                else {
                    return Err(bad(
                        origin,
                        field(""),
                        format!(
                            "stop-{} on {} with no start before it",
                            ev.fault.as_str(),
                            ev.targets.join(",")
                        ),
                    ));
                };
                if let (_, _, Some(f)) = open.remove(pos) {
                    faults[f].stop_ns = Some(ev.at_ns);
                    faults[f].undo_us = us(&detail);
                }
            }
        }
    }
    Ok(Realised {
        seed,
        nemesis,
        faults,
        failed,
    })
}

/// The concrete fault a start event recorded, or (detail field, what is wrong).
fn fault_of(
    ev: &FaultEvent,
    d: &Map<String, Value>,
) -> Result<(Fault, Option<ClockSpec>), (String, String)> {
    fn get<T: serde::de::DeserializeOwned>(
        d: &Map<String, Value>,
        k: &str,
    ) -> Result<T, (String, String)> {
        let v = d.get(k).cloned().ok_or((k.to_string(), "missing".into()))?;
        serde_json::from_value(v).map_err(|e| (k.to_string(), e.to_string()))
    }
    let targets = ev.targets.clone();
    Ok(match ev.fault {
        FaultKind::Partition => (
            Fault::Partition {
                grudge: get(d, "grudge")?,
            },
            None,
        ),
        FaultKind::Loss => (
            Fault::Loss {
                targets,
                percent: get(d, "percent")?,
            },
            None,
        ),
        FaultKind::Pause => (Fault::Pause { targets }, None),
        FaultKind::Kill => (
            Fault::Kill {
                targets,
                wipe: d.get("wipe").and_then(Value::as_bool).unwrap_or(false),
            },
            None,
        ),
        FaultKind::Clock => {
            let offsets: BTreeMap<String, i64> = get(d, "offset_ms")?;
            let mode: String = get(d, "mode")?;
            // a bump's range was replaced by the offsets drawn from it
            let clock = if mode == "bump" {
                let lo = offsets.values().copied().min().unwrap_or(0);
                let hi = offsets.values().copied().max().unwrap_or(0);
                ClockSpec::Bump {
                    offset_ms: [lo, hi],
                }
            } else {
                serde_json::from_value(Value::Object(d.clone()))
                    .map_err(|e| ("mode".to_string(), e.to_string()))?
            };
            // Recorded only for protocol clocks; older schedules moved the wall clock.
            let of: super::ClockOf = d
                .get("clock")
                .map(|_| get(d, "clock"))
                .transpose()?
                .unwrap_or_default();
            let domain = super::executor::clock_domain(of, &clock);
            (Fault::Clock { offsets, domain }, Some(clock))
        }
        _ => {
            let mut o = d.clone();
            o.insert("id".into(), json!(0));
            let mut rule: MsgRule = serde_json::from_value(Value::Object(o))
                .map_err(|e| ("links".to_string(), e.to_string()))?;
            rule.id = NEXT_RULE.fetch_add(1, Ordering::Relaxed);
            (Fault::Message { rule }, None)
        }
    })
}

/// For schedules recorded before faults named their leader: the node a leader-shaped fault
/// singled out.
fn leader_of_old(fault: &Fault, targets: &[String], d: &Map<String, Value>) -> Option<String> {
    let shape = d.get("shape").and_then(Value::as_str)?;
    match fault {
        Fault::Partition { grudge } if shape == "leader" => grudge
            .iter()
            .find(|(k, v)| v.len() + 1 == grudge.len() && !v.contains(k))
            .map(|(k, _)| k.clone()),
        Fault::Message { rule } if shape.starts_with("leader") => {
            let mut common: Option<Vec<&String>> = None;
            for (a, b) in &rule.links {
                let here = [a, b];
                common = Some(match common {
                    None => here.to_vec(),
                    Some(c) => c.into_iter().filter(|n| here.contains(n)).collect(),
                });
            }
            common.and_then(|c| (c.len() == 1).then(|| c[0].clone()))
        }
        _ if shape == "leader" && targets.len() == 1 => Some(targets[0].clone()),
        _ => None,
    }
}

/// What a replay does besides the recorded faults.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub faults: Vec<Recorded>,
    /// Aim a fault that was aimed at the leader at the replay's leader.
    pub reaim_leader: bool,
}

/// Refuses a replay with a fault the backend cannot do here.
pub fn check_replay(backend: &dyn Faults, replay: &Replay) -> Result<(), NemesisError> {
    for r in &replay.faults {
        let need = r.fault.need();
        if let Err(why) = backend.supports(need) {
            return Err(NemesisError::Unsupported(format!(
                "the recorded schedule has {} faults, which this run cannot do ({why})",
                need.kind.as_str()
            )));
        }
    }
    Ok(())
}

/// The detail keys that name nodes, from the fault as it is now applied.
fn describe(fault: &Fault, detail: &mut Map<String, Value>) {
    match fault {
        Fault::Partition { grudge } => {
            detail.insert("grudge".into(), json!(grudge));
        }
        Fault::Clock { offsets, .. } => {
            detail.insert("offset_ms".into(), json!(offsets));
        }
        Fault::Message { rule } => {
            detail.insert("links".into(), json!(rule.links));
        }
        _ => {}
    }
}

/// The swap of `a` and `b` (every other node stays).
fn swap(a: String, b: String) -> impl Fn(&str) -> String {
    move |n: &str| {
        if n == a {
            b.clone()
        } else if n == b {
            a.clone()
        } else {
            n.to_string()
        }
    }
}

/// Sleeps until `at`; true if a stop came first.
async fn until(at: Instant, rx: &mut watch::Receiver<bool>) -> bool {
    pause_or_stop(at.saturating_duration_since(Instant::now()), rx).await
}

/// One mechanism's faults, in order (they never overlapped: undoing one heals its whole
/// mechanism).
async fn run_recorded(
    roster: Arc<dyn Roster>,
    backend: Arc<dyn Faults>,
    faults: Vec<Recorded>,
    reaim_leader: bool,
    run_start: Instant,
    events: mpsc::UnboundedSender<FaultEvent>,
    mut stop_rx: watch::Receiver<bool>,
) -> Vec<FaultEvent> {
    let mut out = LaneLog::new(events);
    let at = |ns: u64, us: u64| {
        run_start + Duration::from_nanos(ns).saturating_sub(Duration::from_micros(us))
    };
    for r in faults {
        if until(at(r.start_ns, r.apply_us), &mut stop_rx).await {
            break;
        }
        let decided = Instant::now();
        let (mut fault, mut targets) = (r.fault.clone(), r.targets.clone());
        let mut detail = r.detail.clone();
        detail.remove("reaimed_from");
        detail.insert("replay_of".into(), json!(r.index));
        if let Some(was) = &r.leader {
            let now = if reaim_leader {
                roster.leader().await
            } else {
                None
            };
            match now {
                Some(l) if l != *was && roster.node_ids().contains(&l) => {
                    let name = swap(was.clone(), l.clone());
                    fault = fault.renamed(&name);
                    targets = targets.iter().map(|t| name(t)).collect();
                    targets.sort();
                    detail.insert("reaimed_from".into(), json!(was));
                    detail.insert("leader".into(), json!(l));
                }
                _ => {
                    detail.insert("leader".into(), json!(was));
                }
            }
        }
        describe(&fault, &mut detail);
        let (ev, active) = put_in_force(
            &*backend,
            fault,
            targets,
            detail,
            r.clock.clone(),
            decided,
            run_start,
        )
        .await;
        let end = match r.stop_ns {
            Some(s) => at(s, r.undo_us),
            // held to the end: until the schedule is stopped
            None => Instant::now() + Duration::from_secs(366 * 86_400),
        };
        let stopped = held_then_undone(
            &*backend,
            &mut out,
            ev,
            active,
            end,
            &mut stop_rx,
            run_start,
        )
        .await;
        if stopped {
            break;
        }
    }
    out.into_events()
}

/// Starts `replay` on `backend` over `roster`: one task per fault mechanism, each fault at
/// its recorded time since `run_start`. Events go to `events` as they happen.
pub fn spawn_replay(
    backend: Arc<dyn Faults>,
    roster: Arc<dyn Roster>,
    replay: &Replay,
    run_start: Instant,
    events: mpsc::UnboundedSender<FaultEvent>,
) -> Result<NemesisHandle, NemesisError> {
    check_replay(&*backend, replay)?;
    let mut by_mechanism: BTreeMap<&str, Vec<Recorded>> = BTreeMap::new();
    for r in &replay.faults {
        by_mechanism
            .entry(mechanism(r.kind()))
            .or_default()
            .push(r.clone());
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = by_mechanism
        .into_values()
        .map(|mut faults| {
            faults.sort_by_key(|r| r.start_ns);
            tokio::spawn(run_recorded(
                roster.clone(),
                backend.clone(),
                faults,
                replay.reaim_leader,
                run_start,
                events.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    Ok(NemesisHandle::from_tasks(stop_tx, tasks, backend))
}

/// Keeps the faults whose index is in `keep` and sets new holds (`holds[i]` for fault `i`,
/// when given): what a shrink candidate replays.
pub fn select(
    faults: &[Recorded],
    keep: &[usize],
    holds: &BTreeMap<usize, Duration>,
) -> Vec<Recorded> {
    faults
        .iter()
        .filter(|r| keep.contains(&r.index))
        .map(|r| {
            let mut r = r.clone();
            if let Some(h) = holds.get(&r.index) {
                r.stop_ns = Some(r.start_ns + h.as_nanos() as u64);
            }
            r
        })
        .collect()
}

/// Writes `faults` as a `schedule.json` (start and stop events at their recorded times), so
/// `parse` reads them back and `faultline replay --faults` replays them.
pub fn to_schedule_json(seed: u64, nemesis: &str, faults: &[Recorded]) -> Value {
    let mut events: Vec<FaultEvent> = Vec::new();
    for r in faults {
        let mut d = r.detail.clone();
        describe(&r.fault, &mut d);
        d.insert("apply_us".into(), json!(r.apply_us));
        if let Some(l) = &r.leader {
            d.insert("leader".into(), json!(l));
        }
        events.push(FaultEvent {
            at_ns: r.start_ns,
            action: Action::Start,
            fault: r.kind(),
            targets: r.targets.clone(),
            detail: Value::Object(d),
        });
        if let Some(s) = r.stop_ns {
            events.push(FaultEvent {
                at_ns: s,
                action: Action::Stop,
                fault: r.kind(),
                targets: r.targets.clone(),
                detail: json!({"apply_us": r.undo_us}),
            });
        }
    }
    events.sort_by_key(|e| e.at_ns);
    json!({"seed": seed, "nemesis": nemesis,
           "faults": events.iter().map(FaultEvent::schedule_entry).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Value {
        json!({"seed": 7, "nemesis": "mixed", "faults": [
            {"at_ns": 1_000_000_000u64, "action": "start", "fault": "partition", "targets": ["n1","n2","n3"],
             "detail": {"grudge": {"n1": ["n2","n3"], "n2": ["n1"], "n3": ["n1"]}, "shape": "leader",
                        "apply_us": 900}},
            {"at_ns": 1_500_000_000u64, "action": "start", "fault": "kill", "targets": ["n2"],
             "detail": {"shape": "one", "apply_us": 100, "error": "no such node"}},
            {"at_ns": 1_600_000_000u64, "action": "stop", "fault": "kill", "targets": ["n2"],
             "detail": {"apply_us": 5}},
            {"at_ns": 2_000_000_000u64, "action": "start", "fault": "clock", "targets": ["n3"],
             "detail": {"mode": "strobe", "delta_ms": 200, "period_ms": 50, "offset_ms": {"n3": 200},
                        "shape": "one", "apply_us": 10}},
            {"at_ns": 3_000_000_000u64, "action": "stop", "fault": "partition", "targets": ["n1","n2","n3"],
             "detail": {"apply_us": 700}},
            {"at_ns": 3_500_000_000u64, "action": "start", "fault": "msg-drop", "targets": ["n1","n2","n3"],
             "detail": {"links": [["n2","n1"],["n3","n1"]], "types": [], "paths": [], "probability": 1.0,
                        "action": "drop", "shape": "leader-in", "leader": "n1", "apply_us": 50}},
        ]})
    }

    #[test]
    fn reads_back_starts_stops_and_failures() {
        let r = parse(&schedule().to_string(), "schedule.json").unwrap();
        assert_eq!((r.seed, r.nemesis.as_str()), (7, "mixed"));
        assert_eq!(r.faults.len(), 3);
        assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
        assert!(r.failed[0].contains("no such node"));
        let p = &r.faults[0];
        assert_eq!(p.kind(), FaultKind::Partition);
        assert_eq!(
            (p.start_ns, p.stop_ns),
            (1_000_000_000, Some(3_000_000_000))
        );
        assert_eq!((p.apply_us, p.undo_us), (900, 700));
        assert_eq!(p.hold(), Some(Duration::from_secs(2)));
        // recorded before faults named their leader: the one cut off from all
        assert_eq!(p.leader.as_deref(), Some("n1"));
        let c = &r.faults[1];
        assert_eq!(c.stop_ns, None);
        assert_eq!(
            c.clock,
            Some(ClockSpec::Strobe {
                delta_ms: 200,
                period_ms: 50
            })
        );
        assert_eq!(c.leader, None);
        let m = &r.faults[2];
        assert_eq!(m.kind(), FaultKind::MsgDrop);
        assert_eq!(m.leader.as_deref(), Some("n1"));
        assert!(!m.detail.contains_key("apply_us"));
    }

    #[test]
    fn a_wiping_kill_replays_as_one() {
        let mut s = schedule();
        s["faults"][1]["detail"] = json!({"shape": "one", "wipe": true, "apply_us": 100});
        let r = parse(&s.to_string(), "s").unwrap();
        let k = r
            .faults
            .iter()
            .find(|f| f.kind() == FaultKind::Kill)
            .unwrap();
        assert_eq!(
            k.fault,
            Fault::Kill {
                targets: vec!["n2".into()],
                wipe: true
            }
        );
    }

    #[test]
    fn written_back_it_reads_the_same() {
        let r = parse(&schedule().to_string(), "s").unwrap();
        let again = parse(&to_schedule_json(7, "mixed", &r.faults).to_string(), "s").unwrap();
        let strip = |fs: &[Recorded]| {
            fs.iter()
                .map(|f| {
                    let mut f = f.clone();
                    if let Fault::Message { rule } = &mut f.fault {
                        rule.id = 0;
                    }
                    f
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&again.faults), strip(&r.faults));
        assert!(again.failed.is_empty());
    }

    #[test]
    fn selecting_keeps_indexes_and_shortens_holds() {
        let r = parse(&schedule().to_string(), "s").unwrap();
        let holds = BTreeMap::from([(0, Duration::from_millis(500))]);
        let kept = select(&r.faults, &[0, 2], &holds);
        assert_eq!(kept.iter().map(|f| f.index).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(kept[0].stop_ns, Some(1_500_000_000));
        assert_eq!(kept[1].stop_ns, r.faults[2].stop_ns);
    }

    #[test]
    fn reaiming_swaps_the_recorded_leader_with_the_new_one() {
        let r = parse(&schedule().to_string(), "s").unwrap();
        let name = swap("n1".into(), "n3".into());
        let Fault::Partition { grudge } = r.faults[0].fault.renamed(&name) else {
            panic!()
        };
        assert_eq!(grudge["n3"], ["n2", "n1"]);
        assert_eq!(grudge["n1"], ["n3"]);
    }

    #[test]
    fn malformed_schedules_name_the_field() {
        let mut s = schedule();
        s["faults"][0]["detail"]["grudge"] = json!(3);
        let e = parse(&s.to_string(), "run/schedule.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("run/schedule.json: faults[0].detail.grudge:"),
            "{e}"
        );
        let e = parse(
            &json!({"seed": 1, "faults": [{"at_ns": 1u64, "action": "stop", "fault": "kill",
                     "targets": ["n1"], "detail": {}}]})
            .to_string(),
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("faults[0]") && e.contains("no start"), "{e}");
        assert!(
            parse("{", "x")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
    }
}
