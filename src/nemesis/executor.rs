//! Running a schedule against a live cluster: decide (seeded), inject through the cluster's
//! primitives, report each realized step on a channel, and on request stop the current fault
//! and heal everything.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cluster::Cluster;
use crate::faults::{self, Fault, Faults};

use super::error::NemesisError;
use super::fault::{Action, ClockOf, ClockSpec, FaultEvent, FaultKind, TargetSpec};
use super::grudge::{self, Grudge};
use super::schedule::{FaultSpec, Lane, Plan, Schedule};

/// A fault in force, with what it takes to undo it.
#[derive(Clone, Debug)]
pub struct ActiveFault {
    pub kind: FaultKind,
    pub targets: Vec<String>,
    /// The fault as the backend applied it.
    pub fault: Fault,
    pub clock: Option<ClockSpec>,
    /// Per-target clock offsets set at start (bump) or the strobe/drift base.
    pub offsets: BTreeMap<String, i64>,
    started: Instant,
}

fn ns_since(run_start: Instant) -> u64 {
    run_start.elapsed().as_nanos() as u64
}

/// Proxy rule ids, unique in this process.
pub(super) static NEXT_RULE: AtomicU64 = AtomicU64::new(1);

/// The nodes a schedule runs on: their ids and, when a fault targets it, the current leader.
/// A local `Cluster` is one; an external cluster (`--cluster FILE`) is another.
pub trait Roster: Send + Sync {
    fn node_ids(&self) -> Vec<String>;
    fn leader(&self) -> faults::BoxFuture<'_, Option<String>>;
}

impl Roster for Cluster {
    fn node_ids(&self) -> Vec<String> {
        Cluster::node_ids(self)
    }
    fn leader(&self) -> faults::BoxFuture<'_, Option<String>> {
        Box::pin(Cluster::leader(self))
    }
}

/// Refuses a schedule whose faults a backend of this cluster cannot do, naming why.
pub fn check_supported(cluster: &Cluster, schedule: &Schedule) -> Result<(), NemesisError> {
    check_clock(
        schedule,
        &cluster.descriptor().name,
        cluster.clock_support(),
        cluster.descriptor().peers.proxy,
    )?;
    check_backend(&*faults::for_cluster(cluster), schedule)
}

pub fn check_backend(backend: &dyn Faults, schedule: &Schedule) -> Result<(), NemesisError> {
    for need in schedule.needs() {
        if let Err(why) = backend.supports(need) {
            let hint = if need.kind == FaultKind::Clock {
                " or use `Schedule::without(FaultKind::Clock)`"
            } else {
                ""
            };
            return Err(NemesisError::Unsupported(format!(
                "nemesis `{}` needs {} faults, which this run cannot do ({why}); pick a \
                 nemesis without them{hint}",
                schedule.name,
                need.kind.as_str()
            )));
        }
    }
    Ok(())
}

/// Refuses a schedule with clock faults for a system whose clock they cannot move; callable
/// before any cluster exists (`support` from `cluster::clock::support_for`, `proxy` the
/// descriptor's `[peers] proxy`: the built-in schedules offered instead are those the system
/// can run).
pub fn check_clock(
    schedule: &Schedule,
    system: &str,
    support: &crate::cluster::ClockSupport,
    proxy: crate::faults::proxy::ProxyMode,
) -> Result<(), NemesisError> {
    // Protocol-clock faults go through the node's clock file, not libfaketime: the backend
    // judges those once the cluster exists.
    let wall_clock = schedule
        .needs()
        .iter()
        .any(|n| n.kind == FaultKind::Clock && !n.protocol_clock);
    if wall_clock && let crate::cluster::ClockSupport::Unsupported(why) = support {
        let runnable = |s: &Schedule| {
            s.needs().into_iter().all(|n| match n.kind {
                FaultKind::Clock => false,
                FaultKind::Partition | FaultKind::Loss | FaultKind::Pause | FaultKind::Kill => true,
                _ => crate::faults::proxy::mode_supports(proxy, system, n).is_ok(),
            })
        };
        let without: Vec<&str> = Schedule::builtin_names()
            .into_iter()
            .filter(|n| Schedule::load(n).is_ok_and(|s| runnable(&s)))
            .collect();
        return Err(NemesisError::Unsupported(format!(
            "clock faults unsupported for this system ({system}): {why}; nemesis `{}` has \
             clock faults: pick one without ({}) or a schedule file without `clock` faults",
            schedule.name,
            without.join(", ")
        )));
    }
    Ok(())
}

/// The clock a fault moves and how: a protocol clock drifts by its rate (the node's clock
/// file carries one), a wall clock by offsets the executor ticks.
pub(super) fn clock_domain(of: ClockOf, spec: &ClockSpec) -> faults::ClockDomain {
    match (of, spec) {
        (ClockOf::Wall, _) => faults::ClockDomain::Wall,
        (ClockOf::Protocol, ClockSpec::Drift { ms_per_s }) => faults::ClockDomain::Protocol {
            rate: 1.0 + ms_per_s / 1000.0,
        },
        (ClockOf::Protocol, _) => faults::ClockDomain::Protocol { rate: 1.0 },
    }
}

/// Whether resolving `spec` needs the current leader.
fn needs_leader(spec: &FaultSpec) -> bool {
    use super::fault::{GrudgeSpec, LinkSpec, TargetSpec};
    match spec {
        FaultSpec::Partition { grudge, .. } => {
            matches!(grudge, GrudgeSpec::Leader | GrudgeSpec::LeaderLink)
        }
        FaultSpec::Pause { targets, .. }
        | FaultSpec::Kill { targets, .. }
        | FaultSpec::Clock { targets, .. }
        | FaultSpec::Loss { targets, .. } => *targets == TargetSpec::Leader,
        FaultSpec::Msg { spec, .. } => matches!(
            spec.links,
            LinkSpec::Leader | LinkSpec::LeaderIn | LinkSpec::LeaderOut
        ),
    }
}

/// Decides the concrete fault for `spec` (targets from the plan's target stream) and the
/// detail to record.
fn resolve(
    spec: &FaultSpec,
    nodes: &[String],
    leader: Option<&str>,
    cut_off: Option<&[String]>,
    plan: &mut Plan,
) -> (
    Fault,
    Vec<String>,
    serde_json::Map<String, Value>,
    Option<ClockSpec>,
) {
    let mut detail = serde_json::Map::new();
    let mut clock = None;
    // `cut-off` names the side another lane's partition cut off, when one is in force.
    let pick = |spec: TargetSpec, rng: &mut _| match (spec, cut_off) {
        (TargetSpec::CutOff, Some(c)) if !c.is_empty() => c.to_vec(),
        _ => grudge::targets(spec, nodes, leader, rng),
    };
    let (fault, targets) = match spec {
        FaultSpec::Partition { grudge: g, .. } => {
            let gr = grudge::grudge(*g, nodes, leader, &mut plan.targets);
            detail.insert("grudge".into(), json!(gr));
            detail.insert("shape".into(), json!(g));
            let targets: Vec<String> = gr.keys().cloned().collect();
            (Fault::Partition { grudge: gr }, targets)
        }
        FaultSpec::Loss {
            targets, percent, ..
        } => {
            let t = pick(*targets, &mut plan.targets);
            detail.insert("shape".into(), json!(targets));
            detail.insert("percent".into(), json!(percent));
            (
                Fault::Loss {
                    targets: t.clone(),
                    percent: *percent,
                },
                t,
            )
        }
        FaultSpec::Pause { targets, .. } => {
            let t = pick(*targets, &mut plan.targets);
            detail.insert("shape".into(), json!(targets));
            (Fault::Pause { targets: t.clone() }, t)
        }
        FaultSpec::Kill { targets, wipe, .. } => {
            let t = pick(*targets, &mut plan.targets);
            detail.insert("shape".into(), json!(targets));
            if *wipe {
                detail.insert("wipe".into(), json!(true));
            }
            (
                Fault::Kill {
                    targets: t.clone(),
                    wipe: *wipe,
                },
                t,
            )
        }
        FaultSpec::Clock {
            targets,
            clock: c,
            of,
            ..
        } => {
            use rand::RngExt;
            let t = pick(*targets, &mut plan.targets);
            detail.insert("shape".into(), json!(targets));
            let mut offsets = BTreeMap::new();
            for id in &t {
                let off = match c {
                    ClockSpec::Bump { offset_ms } => {
                        plan.targets.random_range(offset_ms[0]..=offset_ms[1])
                    }
                    ClockSpec::Strobe { delta_ms, .. } => *delta_ms,
                    ClockSpec::Drift { .. } => 0,
                };
                offsets.insert(id.clone(), off);
            }
            let mut d = serde_json::to_value(c).expect("clock spec serialises");
            if let Value::Object(m) = &mut d {
                detail.append(m);
            }
            detail.insert("offset_ms".into(), json!(offsets));
            clock = Some(c.clone());
            let domain = clock_domain(*of, c);
            if let faults::ClockDomain::Protocol { rate } = domain {
                detail.insert("clock".into(), json!(of));
                detail.insert("rate".into(), json!(rate));
            }
            (Fault::Clock { offsets, domain }, t)
        }
        FaultSpec::Msg { spec: m, .. } => {
            let links = grudge::links(m.links, nodes, leader, &mut plan.targets);
            let mut rule = m.rule_template();
            rule.id = NEXT_RULE.fetch_add(1, Ordering::Relaxed);
            rule.links = links;
            let mut d = serde_json::to_value(&rule).expect("rule serialises");
            if let Value::Object(o) = &mut d {
                o.remove("id");
                detail.append(o);
            }
            detail.insert("shape".into(), json!(m.links));
            let mut t: Vec<String> = rule
                .links
                .iter()
                .flat_map(|(a, b)| [a.clone(), b.clone()])
                .collect();
            t.sort();
            t.dedup();
            (Fault::Message { rule }, t)
        }
    };
    (fault, targets, detail, clock)
}

/// Injects one fault now. The returned event carries `apply_us`, the time from this call
/// (the decision) to the fault being in force; on failure the event has `error` and no
/// fault is active.
pub async fn start_fault(
    cluster: &Cluster,
    spec: &FaultSpec,
    plan: &mut Plan,
    run_start: Instant,
) -> (FaultEvent, Option<ActiveFault>) {
    start_on(
        &*faults::for_cluster(cluster),
        cluster,
        spec,
        None,
        plan,
        run_start,
    )
    .await
}

async fn start_on(
    backend: &dyn Faults,
    cluster: &dyn Roster,
    spec: &FaultSpec,
    in_force: Option<&Grudge>,
    plan: &mut Plan,
    run_start: Instant,
) -> (FaultEvent, Option<ActiveFault>) {
    let nodes = cluster.node_ids();
    let leader = if needs_leader(spec) {
        cluster.leader().await
    } else {
        None
    };
    let decided = Instant::now();
    let cut_off = in_force.map(|g| grudge::cut_off(g, &nodes));
    let (fault, targets, mut detail, clock) =
        resolve(spec, &nodes, leader.as_deref(), cut_off.as_deref(), plan);
    if let Some(l) = &leader {
        // what a replay re-aims the fault at the leader of its own run by
        detail.insert("leader".into(), json!(l));
    }
    let (event, active) =
        put_in_force(backend, fault, targets, detail, clock, decided, run_start).await;
    (event, Some(active))
}

/// Applies a resolved fault and records it: the event carries `apply_us` (from `decided` to
/// the fault in force) and, on failure, `error`. A fault that failed half-way may still be
/// partly in force, so it is returned as active either way: its stop undoes whatever did
/// happen.
pub(super) async fn put_in_force(
    backend: &dyn Faults,
    fault: Fault,
    targets: Vec<String>,
    mut detail: serde_json::Map<String, Value>,
    clock: Option<ClockSpec>,
    decided: Instant,
    run_start: Instant,
) -> (FaultEvent, ActiveFault) {
    let result = backend.apply(&fault).await;
    detail.insert(
        "apply_us".into(),
        json!(decided.elapsed().as_micros() as u64),
    );
    if let Err(e) = &result {
        detail.insert("error".into(), json!(e.to_string()));
    }
    let kind = fault.kind();
    let event = FaultEvent {
        at_ns: ns_since(run_start),
        action: Action::Start,
        fault: kind,
        targets: targets.clone(),
        detail: Value::Object(detail),
    };
    let offsets = match &fault {
        Fault::Clock { offsets, .. } => offsets.clone(),
        _ => BTreeMap::new(),
    };
    let active = ActiveFault {
        kind,
        targets,
        fault,
        clock,
        offsets,
        started: Instant::now(),
    };
    (event, active)
}

/// One tick of a time-varying clock fault (strobe, drift); no-op for other faults.
pub async fn tick(cluster: &Cluster, active: &ActiveFault) {
    tick_on(&*faults::for_cluster(cluster), active).await
}

async fn tick_on(backend: &dyn Faults, active: &ActiveFault) {
    let Some(clock) = &active.clock else { return };
    let Fault::Clock { domain, .. } = &active.fault else {
        return;
    };
    let elapsed = active.started.elapsed();
    let mut offsets = BTreeMap::new();
    for id in &active.targets {
        let base = active.offsets.get(id).copied().unwrap_or(0);
        let off = match clock {
            ClockSpec::Bump { .. } => continue,
            ClockSpec::Strobe {
                delta_ms,
                period_ms,
            } => {
                if (elapsed.as_millis() as u64 / period_ms).is_multiple_of(2) {
                    *delta_ms
                } else {
                    0
                }
            }
            ClockSpec::Drift { ms_per_s } => base + (ms_per_s * elapsed.as_secs_f64()) as i64,
        };
        offsets.insert(id.clone(), off);
    }
    if !offsets.is_empty() {
        let fault = Fault::Clock {
            offsets,
            domain: *domain,
        };
        let _ = backend.apply(&fault).await;
    }
}

/// How often time-varying clock faults update the offset.
pub fn tick_period(active: &ActiveFault) -> Option<Duration> {
    match &active.clock {
        Some(ClockSpec::Strobe { period_ms, .. }) => {
            Some(Duration::from_millis(*period_ms / 2).max(Duration::from_millis(5)))
        }
        // A protocol clock drifts by its own rate; only a wall clock's offset is stepped.
        Some(ClockSpec::Drift { .. }) => match active.fault {
            Fault::Clock {
                domain: faults::ClockDomain::Wall,
                ..
            } => Some(Duration::from_millis(50)),
            _ => None,
        },
        _ => None,
    }
}

/// Undoes one fault (heal the partition, stop the loss, resume, restart, reset clocks,
/// remove the proxy rule).
pub async fn stop_fault(cluster: &Cluster, active: ActiveFault, run_start: Instant) -> FaultEvent {
    stop_on(&*faults::for_cluster(cluster), active, run_start).await
}

async fn stop_on(backend: &dyn Faults, active: ActiveFault, run_start: Instant) -> FaultEvent {
    let decided = Instant::now();
    let mut detail = serde_json::Map::new();
    match backend.undo(&active.fault).await {
        Ok(Value::Object(mut d)) => detail.append(&mut d),
        Ok(_) => {}
        Err(e) => {
            detail.insert("error".into(), json!(e.to_string()));
        }
    }
    detail.insert(
        "apply_us".into(),
        json!(decided.elapsed().as_micros() as u64),
    );
    FaultEvent {
        at_ns: ns_since(run_start),
        action: Action::Stop,
        fault: active.kind,
        targets: active.targets,
        detail: Value::Object(detail),
    }
}

/// A schedule running in the background.
pub struct NemesisHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<Vec<FaultEvent>, String>>,
    backend: Arc<dyn Faults>,
}

/// Sleeps until `d` passes or a stop is requested; true if stopped.
pub(super) async fn pause_or_stop(d: Duration, rx: &mut watch::Receiver<bool>) -> bool {
    if *rx.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *rx.borrow(),
        _ = rx.changed() => true,
    }
}

/// Keeps `active` in force until `until` (ticking a time-varying clock fault); true if a
/// stop was requested first.
async fn hold(
    backend: &dyn Faults,
    active: &ActiveFault,
    until: Instant,
    stop_rx: &mut watch::Receiver<bool>,
) -> bool {
    let period = tick_period(active);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let d = period.map_or(left, |p| p.min(left));
        if pause_or_stop(d, stop_rx).await {
            return true;
        }
        tick_on(backend, active).await;
    }
}

/// A lane's realised events: each sent on as it happens and kept for `stop_and_heal`.
pub(super) struct LaneLog {
    events: mpsc::UnboundedSender<FaultEvent>,
    log: Vec<FaultEvent>,
}

impl LaneLog {
    pub(super) fn new(events: mpsc::UnboundedSender<FaultEvent>) -> LaneLog {
        LaneLog {
            events,
            log: Vec::new(),
        }
    }

    pub(super) fn emit(&mut self, e: FaultEvent) {
        let _ = self.events.send(e.clone());
        self.log.push(e);
    }

    pub(super) fn into_events(self) -> Vec<FaultEvent> {
        self.log
    }
}

/// Records a fault just put in force (`started`), keeps it until `until`, then undoes and
/// records that; true if a stop was requested first.
pub(super) async fn held_then_undone(
    backend: &dyn Faults,
    out: &mut LaneLog,
    started: FaultEvent,
    active: ActiveFault,
    until: Instant,
    stop_rx: &mut watch::Receiver<bool>,
    run_start: Instant,
) -> bool {
    out.emit(started);
    let stopped = hold(backend, &active, until, stop_rx).await;
    out.emit(stop_on(backend, active, run_start).await);
    stopped
}

/// Runs one lane until it runs out of faults or a stop is requested; the fault in force
/// at a stop is undone (and recorded) before returning.
#[allow(clippy::too_many_arguments)]
async fn run_lane(
    c: Arc<dyn Roster>,
    backend: Arc<dyn Faults>,
    partition: Arc<Mutex<Option<Grudge>>>,
    lane: Lane,
    mut plan: Plan,
    run_start: Instant,
    events: mpsc::UnboundedSender<FaultEvent>,
    mut stop_rx: watch::Receiver<bool>,
) -> Vec<FaultEvent> {
    let mut out = LaneLog::new(events);
    if pause_or_stop(lane.start_after, &mut stop_rx).await {
        return out.into_events();
    }
    while let Some(step) = plan.next(&lane) {
        let in_force = partition.lock().expect("partition lock").clone();
        let (ev, active) = start_on(
            &*backend,
            &*c,
            &step.fault,
            in_force.as_ref(),
            &mut plan,
            run_start,
        )
        .await;
        let stopped = match active {
            Some(active) => {
                let until = Instant::now() + step.hold;
                // What `cut-off` targets in the other lanes while this partition holds.
                let cuts = match &active.fault {
                    Fault::Partition { grudge } => Some(grudge.clone()),
                    _ => None,
                };
                if cuts.is_some() {
                    *partition.lock().expect("partition lock") = cuts.clone();
                }
                let stopped = held_then_undone(
                    &*backend,
                    &mut out,
                    ev,
                    active,
                    until,
                    &mut stop_rx,
                    run_start,
                )
                .await;
                if cuts.is_some() {
                    *partition.lock().expect("partition lock") = None;
                }
                stopped
            }
            None => {
                out.emit(ev);
                false
            }
        };
        if stopped || pause_or_stop(step.then_wait, &mut stop_rx).await {
            break;
        }
    }
    out.into_events()
}

/// Starts `schedule` on `cluster`, seeded by `seed`: every lane at once, each with its own
/// seeded plan. Each realized step is sent on `events` as it happens (times relative to
/// `run_start`) and also returned, in time order, by `stop_and_heal`.
pub fn spawn(
    cluster: Cluster,
    schedule: Schedule,
    seed: u64,
    run_start: Instant,
    events: mpsc::UnboundedSender<FaultEvent>,
) -> Result<NemesisHandle, NemesisError> {
    let backend = faults::for_cluster(&cluster);
    spawn_on(
        backend,
        Arc::new(cluster),
        schedule,
        seed,
        run_start,
        events,
    )
}

/// `spawn` on any roster and fault backend (an external cluster's, say).
pub fn spawn_on(
    backend: Arc<dyn Faults>,
    roster: Arc<dyn Roster>,
    schedule: Schedule,
    seed: u64,
    run_start: Instant,
    events: mpsc::UnboundedSender<FaultEvent>,
) -> Result<NemesisHandle, NemesisError> {
    check_backend(&*backend, &schedule)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let partition = Arc::new(Mutex::new(None));
    let lanes: Vec<_> = schedule
        .lanes
        .into_iter()
        .enumerate()
        .map(|(i, lane)| {
            tokio::spawn(run_lane(
                roster.clone(),
                backend.clone(),
                partition.clone(),
                lane,
                Plan::for_lane(seed, i),
                run_start,
                events.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    Ok(NemesisHandle::from_tasks(stop_tx, lanes, backend))
}

impl NemesisHandle {
    /// A handle over lane tasks that all stop on `stop`; their events are merged in time
    /// order.
    pub(super) fn from_tasks(
        stop: watch::Sender<bool>,
        lanes: Vec<tokio::task::JoinHandle<Vec<FaultEvent>>>,
        backend: Arc<dyn Faults>,
    ) -> NemesisHandle {
        let task = tokio::spawn(async move {
            let mut log = Vec::new();
            for lane in lanes {
                match lane.await {
                    Ok(l) => log.extend(l),
                    Err(e) => return Err(format!("nemesis lane failed: {e}")),
                }
            }
            log.sort_by_key(|e| e.at_ns);
            Ok(log)
        });
        NemesisHandle {
            stop,
            task,
            backend,
        }
    }

    /// Ends the schedule (undoing the faults in force, each recorded as its stop event),
    /// then heals everything on the cluster. Returns every realized event.
    pub async fn stop_and_heal(self) -> Result<Vec<FaultEvent>, NemesisError> {
        let _ = self.stop.send(true);
        let log = self
            .task
            .await
            .map_err(|e| format!("nemesis task failed: {e}"))
            .and_then(|r| r)
            .map_err(NemesisError::Unsupported)?;
        self.backend.heal().await?;
        Ok(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultsError, Need};

    /// A backend that only takes note: every fault applies at once.
    struct Noted;

    impl Faults for Noted {
        fn name(&self) -> &'static str {
            "noted"
        }
        fn supports(&self, _need: Need) -> Result<(), String> {
            Ok(())
        }
        fn apply<'a>(&'a self, _f: &'a Fault) -> faults::BoxFuture<'a, Result<(), FaultsError>> {
            Box::pin(async { Ok(()) })
        }
        fn undo<'a>(&'a self, _f: &'a Fault) -> faults::BoxFuture<'a, Result<Value, FaultsError>> {
            Box::pin(async { Ok(Value::Null) })
        }
        fn heal(&self) -> faults::BoxFuture<'_, Result<(), FaultsError>> {
            Box::pin(async { Ok(()) })
        }
    }

    struct Five;

    impl Roster for Five {
        fn node_ids(&self) -> Vec<String> {
            (1..=5).map(|i| format!("n{i}")).collect()
        }
        fn leader(&self) -> faults::BoxFuture<'_, Option<String>> {
            Box::pin(async { None })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cut_off_kills_hit_the_side_the_partition_in_force_cut_off() {
        let text = r#"
description = "t"
start_after_s = 0.0
interval_s = [0.0, 0.0]
duration_s = [0.15, 0.15]

[[fault]]
kind = "partition"
grudge = "random-halves"

[[lane]]
name = "crashes"
start_after_s = 0.02
interval_s = [0.01, 0.01]
duration_s = [0.01, 0.01]

[[lane.fault]]
kind = "kill"
targets = "cut-off"
"#;
        let schedule = Schedule::parse(text, "t", "t.toml").unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let h = spawn_on(
            Arc::new(Noted),
            Arc::new(Five),
            schedule,
            7,
            Instant::now(),
            tx,
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let events = h.stop_and_heal().await.unwrap();
        // Replay the log: every kill that started while a partition held hit its minority.
        let mut in_force: Option<Vec<String>> = None;
        let (mut aimed, mut kills) = (0, 0);
        for e in &events {
            match (e.fault, e.action) {
                (FaultKind::Partition, Action::Start) => {
                    let g: Grudge = serde_json::from_value(e.detail["grudge"].clone()).unwrap();
                    in_force = Some(grudge::cut_off(&g, &Five.node_ids()));
                }
                (FaultKind::Partition, Action::Stop) => in_force = None,
                (FaultKind::Kill, Action::Start) => {
                    kills += 1;
                    if let Some(c) = &in_force {
                        assert_eq!(&e.targets, c, "{events:?}");
                        assert_eq!(c.len(), 2);
                        aimed += 1;
                    }
                }
                _ => {}
            }
        }
        assert!(aimed >= 5, "{aimed} of {kills} kills during partitions");
    }
}
