//! The worker (`secpipe worker nats://…`): claims partitions, rebuilds and runs their rules
//! from the stream, publishes alerts, and delivers alerts to its sinks (see [`super`]).
//!
//! - **Leases.** A partition is owned by the worker whose name is under `<family>.<p>` in the
//!   [`LEASES_BUCKET`] bucket, whose entries expire after `--lease` unless refreshed (every
//!   third of it, by revision, so a worker that lost its lease notices and stops). Workers
//!   announce themselves there too (`worker.<id>`) and each aims at its share of the
//!   partitions; `--partitions` pins a set instead.
//! - **A partition** ([`PartitionState`]) is a pure function of its stream: its owner reads
//!   the stream from the first message, merges the edges in event time, runs the family's rules
//!   and numbers the alerts of each message. Before publishing it reads the newest alert of
//!   the partition already in [`super::ALERTS_STREAM`] and its `Sp-Through` (stream sequence and
//!   index): everything up to it was published by an earlier owner, so a takeover publishes
//!   only what is new. Alert ids are the message ids, so two owners at once (a worker paused
//!   past its lease) are deduplicated by JetStream too.
//! - **Delivery.** Every worker pulls from the shared durable consumer [`DELIVER_CONSUMER`]
//!   and acknowledges an alert once its sinks took it: each alert reaches the sinks once,
//!   except when a worker dies between the two (at least once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::merge::{EdgeMerge, MergeStats};
use super::wire::{Beat, WireAlert, WireEvent};
use super::{
    Bus, DELIVER_CONSUMER, EDGE_HEADER, Family, LEASES_BUCKET, MessageType, THROUGH_HEADER,
    TYPE_HEADER,
};
use crate::alert::Alert;
use crate::detect::{DetectOptions, Detector, RuleSet};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::sink::AlertSinks;

/// Partitions a worker is given by `--partitions`: per family (all families when `None`).
#[derive(Clone, Debug, Default)]
pub struct Pinned(pub Vec<(Option<String>, u32, u32)>);

impl Pinned {
    /// `0-3`, `src_ip:0-3,user:1`.
    pub fn parse(text: &str) -> Result<Pinned, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (family, range) = match part.split_once(':') {
                Some((f, r)) => (Some(f.to_string()), r),
                None => (None, part),
            };
            let bad =
                || format!("--partitions {text}: expected N, N-M or FAMILY:N-M, comma-separated");
            let (from, to) = match range.split_once('-') {
                Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
                None => {
                    let n = range.parse().map_err(|_| bad())?;
                    (n, n)
                }
            };
            if from > to {
                return Err(bad());
            }
            out.push((family, from, to));
        }
        if out.is_empty() {
            return Err(format!("--partitions {text}: names no partition"));
        }
        Ok(Pinned(out))
    }

    fn holds(&self, family: &Family, p: u32) -> bool {
        self.0.iter().any(|(f, from, to)| {
            f.as_deref().is_none_or(|f| f == family.name()) && (*from..=*to).contains(&p)
        })
    }
}

/// Everything a worker is made of.
pub struct WorkerConfig {
    pub url: String,
    pub id: String,
    pub edges: Vec<String>,
    pub pinned: Option<Pinned>,
    pub once: bool,
    pub lease: Duration,
    /// How often a partition's state is snapshotted to the bus (`Duration::ZERO`: never).
    pub snapshot_every: Duration,
    pub rules: RuleSet,
    pub options: DetectOptions,
}

/// Counters of a worker's partitions, shared by its tasks.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub events: u64,
    pub alerts_published: u64,
    pub alerts_delivered: u64,
    pub bad_messages: u64,
    /// Events dropped as published twice.
    pub duplicates: u64,
    /// Events the merge released before every edge had caught up (its queues full).
    pub merge_forced: u64,
    /// Edge names the merge forgot (more than it keeps).
    pub edges_forgotten: u64,
}

/// One partition's detection: the merge, the detector and where alerts were published to.
pub struct PartitionState {
    family: Family,
    rules: RuleSet,
    options: DetectOptions,
    partitions: u32,
    merge: EdgeMerge,
    detector: Detector,
    /// All edges finished and the end-of-input alerts decided (until an edge speaks again).
    finished: bool,
    /// The partition's most recent events, to drop one published again under another
    /// message id (an edge restarted from an older position, its batches cut differently).
    recent: RecentEvents,
    pub bad_messages: u64,
    pub events: u64,
    /// Events dropped as already applied.
    pub duplicates: u64,
    /// What the merges before the last restart counted.
    merged_before: MergeStats,
}

/// The last [`RECENT_EVENTS`] events of a partition, by a keyed hash of their edge, input,
/// line number and bytes. Keyed with a random seed: an attacker who writes lines cannot make
/// two different lines collide, so cannot make a worker drop one. The same line read again
/// after more than that many later events counts again (at least once).
struct RecentEvents {
    seen: hashbrown::HashSet<u64>,
    order: std::collections::VecDeque<u64>,
    /// The key of the fingerprints: random, and kept in a snapshot so a restored worker
    /// recognizes what the one before it applied.
    seed: u64,
}

/// Events a partition remembers for dropping duplicates: about 1 MiB each.
pub const RECENT_EVENTS: usize = 65_536;

impl RecentEvents {
    fn new() -> RecentEvents {
        RecentEvents::with(
            getrandom::u64().unwrap_or(0x5ec9_1e5e_ed00_0002),
            Vec::new(),
        )
    }

    fn with(seed: u64, order: Vec<u64>) -> RecentEvents {
        let mut seen = hashbrown::HashSet::with_capacity(order.len());
        seen.extend(order.iter().copied());
        RecentEvents {
            seen,
            order: order.into(),
            seed,
        }
    }

    /// Whether the event was seen recently; remembers it either way.
    fn repeated(&mut self, edge: &str, ev: &crate::event::Event) -> bool {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = foldhash::quality::FixedState::with_seed(self.seed).build_hasher();
        edge.hash(&mut h);
        ev.source.hash(&mut h);
        ev.line.hash(&mut h);
        ev.raw.hash(&mut h);
        let fingerprint = h.finish();
        if !self.seen.insert(fingerprint) {
            return true;
        }
        self.order.push_back(fingerprint);
        if self.order.len() > RECENT_EVENTS
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        false
    }
}

impl PartitionState {
    pub fn new(
        family: Family,
        rules: &RuleSet,
        options: &DetectOptions,
        partitions: u32,
        expected: &[String],
    ) -> PartitionState {
        let rules = rules.for_partition(family.field, partitions);
        PartitionState {
            family,
            detector: Detector::new(rules.clone(), options.clone()),
            rules,
            options: options.clone(),
            partitions,
            merge: EdgeMerge::new(expected),
            finished: false,
            recent: RecentEvents::new(),
            bad_messages: 0,
            events: 0,
            duplicates: 0,
            merged_before: MergeStats::default(),
        }
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Finished, and every edge heard of since has finished too (an edge that only beat
    /// after the end is still running).
    pub fn all_done(&self) -> bool {
        self.finished && self.merge.all_done()
    }

    /// Apply one message of the partition's stream; the alerts it decides, in order.
    pub fn apply(&mut self, kind: MessageType, edge: &str, payload: &[u8]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        if !super::is_bus_name(edge) {
            self.bad_messages += 1;
            return alerts;
        }
        match kind {
            MessageType::Events => {
                let Ok(list) = serde_json::from_slice::<Vec<WireEvent>>(payload) else {
                    self.bad_messages += 1;
                    return alerts;
                };
                let mut events = Vec::with_capacity(list.len());
                for wire in list {
                    match wire.into_event() {
                        Ok(ev) if self.recent.repeated(edge, &ev) => self.duplicates += 1,
                        Ok(ev) => events.push(ev),
                        Err(_) => self.bad_messages += 1,
                    }
                }
                if events.is_empty() {
                    // Nothing new (all repeats): in particular, a republish after the end
                    // does not start detection over.
                    return alerts;
                }
                if self.finished {
                    // An edge came back after the end with new lines: a new run of detection.
                    self.restart();
                }
                self.events += events.len() as u64;
                self.merge.events(edge, events);
            }
            MessageType::Beat | MessageType::Done => {
                let Ok(beat) = serde_json::from_slice::<Beat>(payload) else {
                    self.bad_messages += 1;
                    return alerts;
                };
                self.merge.beat(edge, beat);
                if kind == MessageType::Done {
                    self.merge.done(edge);
                }
            }
        }
        let detector = &mut self.detector;
        self.merge.release(|ev| detector.push(ev, &mut alerts));
        if let Some(progress) = self.merge.progress() {
            self.detector.advance_event_time(progress, &mut alerts);
        }
        if let Some(wall) = self.merge.live_wall() {
            self.detector.settle_start(wall, &mut alerts);
            self.detector.advance_wallclock(wall, &mut alerts);
        }
        if !self.finished && self.merge.all_done() {
            self.detector.finish(&mut alerts);
            self.finished = true;
        }
        alerts
    }

    /// The merge's counters since the partition was built, across restarts.
    pub fn merge_stats(&self) -> MergeStats {
        let now = self.merge.stats();
        MergeStats {
            forced: self.merged_before.forced + now.forced,
            edges_forgotten: self.merged_before.edges_forgotten + now.edges_forgotten,
        }
    }

    /// The partition's state, as of the message just applied: detector, merge, the
    /// duplicate window and whether it finished.
    pub fn snapshot(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let b64 = &base64::engine::general_purpose::STANDARD;
        serde_json::to_vec(&PartitionSnapshot {
            detector: b64.encode(self.detector.snapshot()),
            merge: b64.encode(self.merge.snapshot()),
            finished: self.finished,
            recent_seed: self.recent.seed,
            recent: self.recent.order.iter().copied().collect(),
            events: self.events,
        })
        .map_err(|e| e.to_string())
    }

    /// The state a [`PartitionState::snapshot`] holds, under these rules and options (which
    /// must be the ones it was taken with).
    pub fn restore(
        family: Family,
        rules: &RuleSet,
        options: &DetectOptions,
        partitions: u32,
        snapshot: &[u8],
    ) -> Result<PartitionState, String> {
        use base64::Engine as _;
        let b64 = &base64::engine::general_purpose::STANDARD;
        let s: PartitionSnapshot = serde_json::from_slice(snapshot).map_err(|e| e.to_string())?;
        if s.recent.len() > RECENT_EVENTS {
            return Err("the duplicate window is larger than a worker keeps".into());
        }
        let rules = rules.for_partition(family.field, partitions);
        let detector_bytes = b64
            .decode(s.detector.as_bytes())
            .map_err(|e| e.to_string())?;
        let merge_bytes = b64.decode(s.merge.as_bytes()).map_err(|e| e.to_string())?;
        Ok(PartitionState {
            family,
            detector: Detector::restore(rules.clone(), options.clone(), &detector_bytes)
                .map_err(|e| e.to_string())?,
            rules,
            options: options.clone(),
            partitions,
            merge: EdgeMerge::restore(&merge_bytes).map_err(|e| e.to_string())?,
            finished: s.finished,
            recent: RecentEvents::with(s.recent_seed, s.recent),
            bad_messages: 0,
            events: s.events,
            duplicates: 0,
            merged_before: MergeStats::default(),
        })
    }

    /// A new run of detection after the end: the edges that come back are merged as they
    /// speak (the `--edges` of the first run all finished; waiting for them again would wait
    /// for an edge that may never return). The duplicate window stays.
    fn restart(&mut self) {
        self.merged_before = self.merge_stats();
        self.detector = Detector::new(self.rules.clone(), self.options.clone());
        self.merge = EdgeMerge::new(&[]);
        self.finished = false;
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }
}

/// What a partition snapshot holds (the detector's and the merge's own formats inside).
#[derive(serde::Serialize, serde::Deserialize)]
struct PartitionSnapshot {
    detector: String,
    merge: String,
    finished: bool,
    recent_seed: u64,
    recent: Vec<u64>,
    events: u64,
}

/// `Sp-Through`: the stream sequence of the message an alert came from, and its index among
/// that message's alerts.
fn through(seq: u64, index: usize) -> String {
    format!("{seq}.{index}")
}

fn parse_through(text: &str) -> Option<(u64, usize)> {
    let (seq, index) = text.split_once('.')?;
    Some((seq.parse().ok()?, index.parse().ok()?))
}

/// How a worker ended.
pub struct WorkerOutcome {
    pub stats: WorkerStats,
    pub error: Option<String>,
}

/// Run a worker until `--once` says all is finished, a stop signal, or a failure.
pub fn run(
    cfg: WorkerConfig,
    sinks: AlertSinks,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    handle: tokio::runtime::Handle,
) -> (AlertSinks, WorkerOutcome) {
    let sinks = Arc::new(Mutex::new(sinks));
    let stats = Arc::new(Mutex::new(WorkerStats::default()));
    let result = handle.block_on(worker_main(
        cfg,
        sinks.clone(),
        shutdown,
        metrics,
        stats.clone(),
    ));
    let stats = std::mem::take(&mut *lock(&stats));
    let sinks = match Arc::try_unwrap(sinks) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        // Every task holding a clone has ended with the runtime's block_on; a clone still
        // alive is a task that outlived it, which would be a bug: close nothing then.
        Err(_) => AlertSinks::new(Vec::new()),
    };
    (
        sinks,
        WorkerOutcome {
            stats,
            error: result.err(),
        },
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn worker_main(
    cfg: WorkerConfig,
    sinks: Arc<Mutex<AlertSinks>>,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    stats: Arc<Mutex<WorkerStats>>,
) -> Result<(), String> {
    let js = super::connect(&cfg.url, Duration::from_secs(30)).await?;
    let bus = Arc::new(Bus::open(js.clone()).await?);
    let partitions = bus.partitions(None).await?;
    let families = Family::of(&cfg.rules);
    let leases = super::key_value(
        &js,
        LEASES_BUCKET,
        cfg.lease,
        jetstream::stream::StorageType::Memory,
    )
    .await?;
    let stop = CancellationToken::new();
    let deliver = tokio::spawn(deliver_alerts(
        bus.clone(),
        sinks.clone(),
        stop.clone(),
        stats.clone(),
    ));
    let all: Vec<(Family, u32)> = families
        .iter()
        .flat_map(|f| (0..partitions).map(move |p| (*f, p)))
        .collect();
    let mut owned: BTreeMap<String, Owned> = BTreeMap::new();
    let refresh = (cfg.lease / 3).max(Duration::from_millis(100));
    let cfg = Arc::new(cfg);
    let mut failure = None;
    loop {
        // Leases: refresh what is ours, drop what is not any more, claim our share.
        if let Err(e) = leases
            .put(format!("worker.{}", cfg.id), cfg.id.clone().into())
            .await
        {
            failure = Some(format!("bucket {LEASES_BUCKET}: {e}"));
            break;
        }
        let workers = live_workers(&leases).await.max(1);
        let mine: Vec<&(Family, u32)> = all
            .iter()
            .filter(|(f, p)| cfg.pinned.as_ref().is_none_or(|pin| pin.holds(f, *p)))
            .collect();
        let share = if cfg.pinned.is_some() {
            mine.len()
        } else {
            mine.len().div_ceil(workers)
        };
        let mut lost = Vec::new();
        for (key, own) in owned.iter_mut() {
            match leases
                .update(key, cfg.id.clone().into(), own.revision)
                .await
            {
                Ok(revision) => own.revision = revision,
                Err(_) => lost.push(key.clone()),
            }
        }
        for key in lost {
            if let Some(own) = owned.remove(&key) {
                own.stop.cancel();
            }
        }
        // Over our share (a worker joined): give back the last ones, so the newcomer gets them.
        while owned.len() > share {
            let Some((key, own)) = owned.pop_last() else {
                break;
            };
            own.stop.cancel();
            let _ = leases.delete(&key).await;
        }
        for (family, p) in &mine {
            if owned.len() >= share {
                break;
            }
            let key = family.key(*p);
            if owned.contains_key(&key) {
                continue;
            }
            if let Ok(revision) = leases.create(&key, cfg.id.clone().into()).await {
                let token = stop.child_token();
                tokio::spawn(run_partition(
                    bus.clone(),
                    cfg.clone(),
                    *family,
                    *p,
                    partitions,
                    token.clone(),
                    metrics.clone(),
                    stats.clone(),
                ));
                owned.insert(
                    key,
                    Owned {
                        revision,
                        stop: token,
                    },
                );
            }
        }
        BUS_GAUGES.owned.set(owned.len() as i64);
        // Between lease rounds, look for the end (`--once`) every quarter second.
        let next_round = tokio::time::Instant::now() + refresh;
        let mut finished = false;
        loop {
            if cfg.once && all_finished(&bus, &all).await && delivered_everything(&bus).await {
                finished = true;
                break;
            }
            let tick = tokio::time::Instant::now() + Duration::from_millis(250);
            tokio::select! {
                _ = shutdown.triggered() => { finished = true; break; }
                _ = tokio::time::sleep_until(tick.min(next_round)) => {}
            }
            if tokio::time::Instant::now() >= next_round {
                break;
            }
        }
        if finished {
            break;
        }
    }
    stop.cancel();
    // Hand the partitions over at once rather than after the lease runs out.
    for key in owned.keys() {
        let _ = leases.delete(key).await;
    }
    let _ = leases.delete(format!("worker.{}", cfg.id)).await;
    let _ = deliver.await;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Owned {
    revision: u64,
    stop: CancellationToken,
}

/// Workers that announced themselves within the lease.
async fn live_workers(leases: &jetstream::kv::Store) -> usize {
    let Ok(mut keys) = leases.keys().await else {
        return 1;
    };
    let mut n = 0;
    while let Some(Ok(key)) = keys.next().await {
        if key.starts_with("worker.") {
            n += 1;
        }
    }
    n
}

/// Every partition is done up to its newest message: a `done.*` mark stays in the bucket
/// after its run, so one older than the partition's last message is not the end.
async fn all_finished(bus: &Bus, all: &[(Family, u32)]) -> bool {
    for (family, p) in all {
        let done = match bus.fleet.get(format!("done.{}", family.key(*p))).await {
            Ok(Some(value)) => std::str::from_utf8(&value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok()),
            _ => None,
        };
        let Some(done) = done else {
            return false;
        };
        match bus
            .events
            .get_last_raw_message_by_subject(&family.events_subject(*p))
            .await
        {
            Ok(last) if last.sequence <= done => {}
            _ => return false,
        }
    }
    true
}

async fn deliver_consumer(
    bus: &Bus,
) -> Result<jetstream::consumer::Consumer<consumer::pull::Config>, String> {
    bus.alerts
        .get_or_create_consumer(
            DELIVER_CONSUMER,
            consumer::pull::Config {
                durable_name: Some(DELIVER_CONSUMER.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                filter_subject: "sp.alerts.>".to_string(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {DELIVER_CONSUMER}: {e}"))
}

async fn delivered_everything(bus: &Bus) -> bool {
    let Ok(consumer) = deliver_consumer(bus).await else {
        return false;
    };
    match consumer.get_info().await {
        Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
        Err(_) => false,
    }
}

/// Pull alerts from the shared consumer and write them to this worker's sinks.
async fn deliver_alerts(
    bus: Arc<Bus>,
    sinks: Arc<Mutex<AlertSinks>>,
    stop: CancellationToken,
    stats: Arc<Mutex<WorkerStats>>,
) {
    let consumer = loop {
        match deliver_consumer(&bus).await {
            Ok(c) => break c,
            Err(_) => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    while !stop.is_cancelled() {
        let batch = consumer
            .batch()
            .max_messages(100)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let Ok(mut batch) = batch else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut taken = Vec::new();
        let mut alerts = Vec::new();
        while let Some(Ok(message)) = batch.next().await {
            let alert = serde_json::from_slice::<WireAlert>(&message.payload)
                .map_err(|e| e.to_string())
                .and_then(WireAlert::into_alert);
            match alert {
                Ok(alert) => {
                    alerts.push(alert);
                    taken.push(message);
                }
                Err(_) => {
                    lock(&stats).bad_messages += 1;
                    let _ = message.ack().await;
                }
            }
        }
        if alerts.is_empty() {
            continue;
        }
        // Acknowledged once the outputs have them: a worker killed with alerts still in its
        // sinks' queues leaves them to be delivered again (at least once), not lost.
        let written = lock(&sinks).write(&alerts);
        if written.is_err() || !settled(&sinks, &stop).await {
            // A sink failed (reported at the end) or is slow: another worker, or this one
            // after `ack_wait`, gets them again.
            continue;
        }
        lock(&stats).alerts_delivered += alerts.len() as u64;
        for message in taken {
            let _ = message.ack().await;
        }
    }
}

/// Wait (up to [`SETTLE_FOR`]) until the sinks have delivered what they were given.
async fn settled(sinks: &Mutex<AlertSinks>, stop: &CancellationToken) -> bool {
    let started = tokio::time::Instant::now();
    loop {
        if lock(sinks).in_flight() == 0 {
            return true;
        }
        if started.elapsed() >= SETTLE_FOR || stop.is_cancelled() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How long an alert may wait in a sink's queue before the worker leaves it unacknowledged
/// (JetStream delivers it again after the consumer's `ack_wait`).
const SETTLE_FOR: Duration = Duration::from_secs(10);

/// Own one partition until `stop`: rebuild it from the stream's start and go on live.
#[allow(clippy::too_many_arguments)]
async fn run_partition(
    bus: Arc<Bus>,
    cfg: Arc<WorkerConfig>,
    family: Family,
    p: u32,
    partitions: u32,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
    stats: Arc<Mutex<WorkerStats>>,
) {
    let _ = metrics;
    let label = family.key(p);
    let result = tokio::select! {
        r = partition_loop(&bus, &cfg, family, p, partitions, &stats) => r,
        _ = stop.cancelled() => Ok(()),
    };
    if let Err(e) = result {
        crate::report::note(&format!("worker: partition {label}: {e}"));
        // Give it up: another worker (or this one, at the next round) takes it again and
        // rebuilds it from the stream.
        stop.cancel();
    }
}

async fn partition_loop(
    bus: &Bus,
    cfg: &WorkerConfig,
    family: Family,
    p: u32,
    partitions: u32,
    stats: &Mutex<WorkerStats>,
) -> Result<(), String> {
    let alerts_subject = family.alerts_subject(p);
    // Where the last owner got to: alerts up to here are published already.
    let published = match bus
        .alerts
        .get_last_raw_message_by_subject(&alerts_subject)
        .await
    {
        Ok(message) => message
            .headers
            .get(THROUGH_HEADER)
            .and_then(|v| parse_through(v.as_str())),
        Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => None,
        Err(e) => return Err(format!("{alerts_subject}: {e}")),
    };
    let published = match published {
        Some((seq, _)) if !through_in_partition(bus, &family.events_subject(p), seq).await? => {
            // Anyone who can publish there could write it: a mark past the partition's
            // stream would silence every owner from now on. Publishing again what was
            // published is the lesser harm (ids deduplicate within the window).
            crate::report::note(&format!(
                "worker: {alerts_subject}: {THROUGH_HEADER} {seq} is not a message of {}, ignored",
                family.events_subject(p)
            ));
            None
        }
        other => other,
    };
    // The newest snapshot, if any checks out, and the stream after it; else the whole stream.
    let loaded = super::snapshots::load(bus, &family, p).await?;
    // The next snapshot goes to the slot the newest one is not in.
    let mut slot = loaded.as_ref().map_or(0, |l| l.slot ^ 1);
    let restored = match loaded {
        Some(l) => {
            match PartitionState::restore(family, &cfg.rules, &cfg.options, partitions, &l.bytes) {
                Ok(state) => Some((l.through, state)),
                Err(e) => {
                    crate::report::note(&format!(
                        "worker: snapshot of {} not used ({e}); rebuilding it from the stream",
                        family.key(p)
                    ));
                    None
                }
            }
        }
        None => None,
    };
    let done_key = format!("done.{}", family.key(p));
    let (mut state, deliver_policy) = match restored {
        Some((through, state)) => {
            if state.all_done() {
                // The owner before was killed after its snapshot of the end and before its
                // done mark: no message may come to write it, so it is written now.
                bus.fleet
                    .put(&done_key, through.to_string().into())
                    .await
                    .map_err(|e| format!("{done_key}: {e}"))?;
            }
            (
                state,
                consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: through + 1,
                },
            )
        }
        None => (
            PartitionState::new(family, &cfg.rules, &cfg.options, partitions, &cfg.edges),
            consumer::DeliverPolicy::All,
        ),
    };
    let consumer = bus
        .events
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: family.events_subject(p),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("consumer of {}: {e}", family.events_subject(p)))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("consumer of {}: {e}", family.events_subject(p)))?;
    let lag = BUS_GAUGES
        .lag
        .get_or_create(&vec![("partition", family.key(p))])
        .clone();
    let label = family.key(p);
    let mut last_snapshot = tokio::time::Instant::now();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| format!("reading {}: {e}", family.events_subject(p)))?;
        let (seq, pending) = match message.info() {
            Ok(info) => (info.stream_sequence, info.pending),
            Err(e) => return Err(format!("message info: {e}")),
        };
        lag.set(i64::try_from(pending).unwrap_or(i64::MAX));
        let headers = message.headers.clone().unwrap_or_default();
        let kind = headers
            .get(TYPE_HEADER)
            .and_then(|v| MessageType::parse(v.as_str()));
        let edge = headers.get(EDGE_HEADER).map(|v| v.as_str().to_string());
        let (Some(kind), Some(edge)) = (kind, edge) else {
            state.bad_messages += 1;
            lock(stats).bad_messages += 1;
            continue;
        };
        let was_finished = state.finished();
        let (events_before, bad_before, dup_before) =
            (state.events, state.bad_messages, state.duplicates);
        let merged_before = state.merge_stats();
        let alerts = state.apply(kind, &edge, &message.payload);
        {
            let merged = state.merge_stats();
            let mut s = lock(stats);
            s.merge_forced += merged.forced - merged_before.forced;
            s.edges_forgotten += merged.edges_forgotten - merged_before.edges_forgotten;
            s.events += state.events - events_before;
            s.bad_messages += state.bad_messages - bad_before;
            s.duplicates += state.duplicates - dup_before;
        }
        let fresh: Vec<(usize, &Alert)> = alerts
            .iter()
            .enumerate()
            .filter(|(index, _)| published.is_none_or(|done| (seq, *index) > done))
            .collect();
        if !fresh.is_empty() {
            publish_alerts(bus, &alerts_subject, seq, &fresh).await?;
            lock(stats).alerts_published += fresh.len() as u64;
        }
        let due = !cfg.snapshot_every.is_zero()
            && (last_snapshot.elapsed() >= cfg.snapshot_every
                || (state.finished() && !was_finished));
        if due {
            // A failed snapshot costs a slower takeover, never an alert: said, not fatal.
            match state.snapshot() {
                Ok(bytes) => {
                    match super::snapshots::save(bus, &family, p, slot, seq, &bytes).await {
                        Ok(()) => slot ^= 1,
                        Err(e) => crate::report::note(&format!("worker: snapshot of {label}: {e}")),
                    }
                }
                Err(e) => crate::report::note(&format!("worker: snapshot of {label}: {e}")),
            }
            last_snapshot = tokio::time::Instant::now();
        }
        if state.all_done() {
            // At every message that leaves it done, with that message's sequence: `--once`
            // compares it with the partition's newest, so the mark of an earlier run (or of
            // an earlier point of this one) is not taken for the end.
            bus.fleet
                .put(&done_key, seq.to_string().into())
                .await
                .map_err(|e| format!("{done_key}: {e}"))?;
        } else if was_finished && !state.finished() {
            let _ = bus.fleet.delete(&done_key).await;
        }
    }
    Err(format!("{}: the consumer ended", family.events_subject(p)))
}

/// Whether stream sequence `seq` can be a message of the partition's `subject`: not past its
/// newest, and on that subject if the stream still holds it (retention may have removed it).
async fn through_in_partition(bus: &Bus, subject: &str, seq: u64) -> Result<bool, String> {
    use jetstream::stream::LastRawMessageErrorKind as Kind;
    let last = match bus.events.get_last_raw_message_by_subject(subject).await {
        Ok(last) => last.sequence,
        Err(e) if e.kind() == Kind::NoMessageFound => return Ok(false),
        Err(e) => return Err(format!("{subject}: {e}")),
    };
    if seq > last {
        return Ok(false);
    }
    match bus.events.get_raw_message(seq).await {
        Ok(message) => Ok(message.subject.as_str() == subject),
        Err(e) if e.kind() == Kind::NoMessageFound => Ok(true),
        Err(e) => Err(format!("{subject}: message {seq}: {e}")),
    }
}

/// Publish one message's alerts, in order, and wait for every acknowledgement; retried as a
/// whole (the ids make repeats no-ops) for about a minute before the partition is given up.
async fn publish_alerts(
    bus: &Bus,
    subject: &str,
    seq: u64,
    alerts: &[(usize, &Alert)],
) -> Result<(), String> {
    let mut messages = Vec::with_capacity(alerts.len());
    for (index, alert) in alerts {
        let payload =
            serde_json::to_vec(&WireAlert::from_alert(alert)).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, alert.id.as_str());
        headers.insert(THROUGH_HEADER, through(seq, *index).as_str());
        messages.push((headers, bytes::Bytes::from(payload)));
    }
    let mut wait = Duration::from_millis(100);
    for _ in 0..20 {
        if publish_in_order(bus, subject, &messages).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    Err(format!("{subject}: cannot publish {} alerts", alerts.len()))
}

async fn publish_in_order(
    bus: &Bus,
    subject: &str,
    messages: &[(HeaderMap, bytes::Bytes)],
) -> Result<(), String> {
    let mut acks = Vec::with_capacity(messages.len());
    for (headers, payload) in messages {
        let ack = bus
            .js
            .publish_with_headers(subject.to_string(), headers.clone(), payload.clone())
            .await
            .map_err(|e| e.to_string())?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Gauges of the worker for `--metrics`.
pub struct BusGauges {
    pub lag: prometheus_client::metrics::family::Family<
        Vec<(&'static str, String)>,
        prometheus_client::metrics::gauge::Gauge,
    >,
    pub owned: prometheus_client::metrics::gauge::Gauge,
}

pub static BUS_GAUGES: std::sync::LazyLock<BusGauges> = std::sync::LazyLock::new(|| BusGauges {
    lag: Default::default(),
    owned: Default::default(),
});

/// Partitions named in a set, for tests and `--partitions` checks.
pub fn partition_keys(
    families: &[Family],
    partitions: u32,
    pinned: Option<&Pinned>,
) -> BTreeSet<String> {
    families
        .iter()
        .flat_map(|f| (0..partitions).map(move |p| (*f, p)))
        .filter(|(f, p)| pinned.is_none_or(|pin| pin.holds(f, *p)))
        .map(|(f, p)| f.key(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_partitions_parse_per_family_or_for_all() {
        let ip = Family {
            field: crate::event::EventField::SrcIp,
            ipv6_prefix: 64,
            counts_attempts: true,
        };
        let user = Family {
            field: crate::event::EventField::User,
            ..ip
        };
        let pin = Pinned::parse("src_ip:0-1,3").unwrap();
        let keys = partition_keys(&[ip, user], 4, Some(&pin));
        let want: BTreeSet<String> = ["src_ip.0", "src_ip.1", "src_ip.3", "user.3"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(keys, want);
        assert!(Pinned::parse("3-1").is_err());
        assert!(Pinned::parse("x").is_err());
        assert!(Pinned::parse("").is_err());
    }

    fn sshd_failure(line: u64, ts: i64) -> WireEvent {
        WireEvent::from_event(&crate::event::Event {
            source: "auth.log".into(),
            line,
            ts,
            kind: crate::event::Kind::AuthFailure,
            src_ip: "203.0.113.7".parse().ok(),
            raw: format!("Failed password {line}")
                .into_bytes()
                .into_boxed_slice(),
            ..crate::event::Event::default()
        })
    }

    fn ip_partition() -> PartitionState {
        let ip = Family::of(&RuleSet::builtin())[0];
        assert_eq!(ip.field, crate::event::EventField::SrcIp);
        PartitionState::new(ip, &RuleSet::builtin(), &DetectOptions::default(), 8, &[])
    }

    fn message(events: &[WireEvent]) -> Vec<u8> {
        serde_json::to_vec(events).unwrap()
    }

    #[test]
    fn the_same_events_published_twice_under_other_ids_count_once() {
        let batch: Vec<WireEvent> = (1..=3)
            .map(|i| sshd_failure(i, i as i64 * 1_000_000))
            .collect();
        let rest: Vec<WireEvent> = (4..=5)
            .map(|i| sshd_failure(i, i as i64 * 1_000_000))
            .collect();
        let done = serde_json::to_vec(&Beat {
            newest: 5_000_000,
            sent: 1,
            wall: None,
        })
        .unwrap();
        // Once: five failures from one address, one alert.
        let mut once = ip_partition();
        let mut alerts = once.apply(MessageType::Events, "e", &message(&batch));
        alerts.extend(once.apply(MessageType::Events, "e", &message(&rest)));
        alerts.extend(once.apply(MessageType::Done, "e", &done));
        assert_eq!(alerts.len(), 1);
        // The first three again (a restarted edge), and the whole batch again as one message:
        // still five failures, not ten.
        let mut twice = ip_partition();
        let mut again = twice.apply(MessageType::Events, "e", &message(&batch));
        again.extend(twice.apply(MessageType::Events, "e", &message(&batch)));
        let all: Vec<WireEvent> = (1..=5)
            .map(|i| sshd_failure(i, i as i64 * 1_000_000))
            .collect();
        again.extend(twice.apply(MessageType::Events, "e", &message(&all)));
        again.extend(twice.apply(MessageType::Done, "e", &done));
        assert_eq!(twice.duplicates, 6);
        assert_eq!(twice.events, 5);
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].id.as_str(), again[0].count),
            (alerts[0].id.as_str(), alerts[0].count)
        );
    }

    /// Five failures from one address, a beat between each (as an edge sends every second),
    /// with or without one planted line ten years ahead after the second: the alerts.
    fn five_failures_with_a_planted_line(planted: bool) -> Vec<Alert> {
        let mut p = ip_partition();
        let beat = |sent: i64| {
            serde_json::to_vec(&Beat {
                newest: 2_000_000,
                sent,
                wall: None,
            })
            .unwrap()
        };
        let first: Vec<WireEvent> = (1..=2)
            .map(|i| sshd_failure(i, i as i64 * 1_000_000))
            .collect();
        let mut alerts = p.apply(MessageType::Events, "e", &message(&first));
        if planted {
            let mut far = sshd_failure(3, 10 * 365 * 86_400 * 1_000_000);
            far.src_ip = "198.51.100.9".parse().ok();
            far.raw = Some("planted".into());
            alerts.extend(p.apply(MessageType::Events, "e", &message(&[far])));
        }
        // Half a minute of beats: the edge's own `newest` stays at 2 s (the edge judges
        // the planted line as detect does).
        for sent in 0..30 {
            alerts.extend(p.apply(MessageType::Beat, "e", &beat(sent)));
        }
        let rest: Vec<WireEvent> = (4..=6)
            .map(|i| sshd_failure(i, i as i64 * 1_000_000))
            .collect();
        alerts.extend(p.apply(MessageType::Events, "e", &message(&rest)));
        alerts.extend(p.apply(MessageType::Done, "e", &beat(31)));
        alerts
    }

    #[test]
    fn a_planted_line_far_ahead_does_not_move_the_partition_past_the_real_events() {
        let honest = five_failures_with_a_planted_line(false);
        assert_eq!(honest.len(), 1);
        let attacked = five_failures_with_a_planted_line(true);
        let brute: Vec<&Alert> = attacked
            .iter()
            .filter(|a| a.key_value == "203.0.113.7")
            .collect();
        assert_eq!(
            brute.len(),
            1,
            "the brute force is still seen: {attacked:?}"
        );
        assert_eq!(
            (brute[0].id.as_str(), brute[0].count),
            (honest[0].id.as_str(), honest[0].count)
        );
    }

    #[test]
    fn an_edge_name_no_edge_could_have_is_refused_not_remembered() {
        // Sp-Edge is whatever a publisher wrote: a worker keeps up to MAX_EDGES names per
        // partition, so names of a megabyte would be gigabytes.
        let mut p = ip_partition();
        let huge = "e".repeat(512 * 1024);
        for name in [huge.as_str(), "", "a b", "edge\u{1b}[2J"] {
            p.apply(MessageType::Events, name, &message(&[sshd_failure(1, 1)]));
        }
        assert_eq!((p.bad_messages, p.events), (4, 0));
        p.apply(
            MessageType::Events,
            "web-1.example_2",
            &message(&[sshd_failure(1, 1)]),
        );
        assert_eq!((p.bad_messages, p.events), (4, 1));
    }

    #[test]
    fn what_the_merge_forces_is_counted_by_the_partition_across_restarts() {
        // The merge's limits release events early; a worker that never says so hides it.
        let mut p = PartitionState::new(
            Family::of(&RuleSet::builtin())[0],
            &RuleSet::builtin(),
            &DetectOptions::default(),
            8,
            &["silent".to_string()],
        );
        for i in 0..(super::super::merge::MAX_EDGES + 10) {
            p.apply(
                MessageType::Events,
                &format!("e{i}"),
                &message(&[sshd_failure(i as u64, 1)]),
            );
        }
        let forced = p.merge_stats().forced;
        assert!(forced >= 10, "{forced}");
        assert!(p.merge_stats().edges_forgotten >= 10);
        // Every edge, the silent one too, finishes; an edge speaking again restarts the merge.
        let done = serde_json::to_vec(&Beat {
            newest: 1,
            sent: 1,
            wall: None,
        })
        .unwrap();
        p.apply(MessageType::Done, "silent", &done);
        for i in 0..(super::super::merge::MAX_EDGES + 10) {
            p.apply(MessageType::Done, &format!("e{i}"), &done);
        }
        assert!(p.finished());
        p.apply(
            MessageType::Events,
            "again",
            &message(&[sshd_failure(1, 2)]),
        );
        assert!(!p.finished());
        assert!(p.merge_stats().forced >= forced);
    }

    #[test]
    fn a_partition_restored_from_a_snapshot_goes_on_as_if_never_stopped() {
        let all: Vec<WireEvent> = (1..=40)
            .map(|i| sshd_failure(i, i as i64 * 20_000_000))
            .collect();
        let done = serde_json::to_vec(&Beat {
            newest: 800_000_000,
            sent: 1,
            wall: None,
        })
        .unwrap();
        let run = |cut: Option<usize>| {
            let mut p = ip_partition();
            let mut alerts = Vec::new();
            for (i, chunk) in all.chunks(4).enumerate() {
                if cut == Some(i) {
                    let bytes = p.snapshot().unwrap();
                    p = PartitionState::restore(
                        p.family(),
                        &RuleSet::builtin(),
                        &DetectOptions::default(),
                        8,
                        &bytes,
                    )
                    .unwrap();
                    // What was applied before the snapshot is still known as applied.
                    assert!(
                        p.apply(MessageType::Events, "e", &message(&all[..4]))
                            .is_empty()
                    );
                }
                let json = serde_json::to_vec(chunk).unwrap();
                alerts.extend(p.apply(MessageType::Events, "e", &json));
            }
            alerts.extend(p.apply(MessageType::Done, "e", &done));
            (alerts, p.events, p.duplicates)
        };
        let (whole, events, _) = run(None);
        assert!(whole.len() >= 2, "{whole:?}");
        assert_eq!(events, 40);
        for cut in [1, 5, 9] {
            let (again, events, duplicates) = run(Some(cut));
            assert_eq!(again, whole, "cut at message {cut}");
            assert_eq!((events, duplicates), (40, 4));
        }
        // Another partition count is another rule set: refused, not misapplied.
        let bytes = ip_partition().snapshot().unwrap();
        let family = Family::of(&RuleSet::builtin())[0];
        assert!(
            PartitionState::restore(
                family,
                &RuleSet::builtin(),
                &DetectOptions::default(),
                4,
                &bytes
            )
            .is_err()
        );
    }

    #[test]
    fn a_republish_after_the_end_changes_nothing_and_new_lines_start_a_new_run() {
        let batch: Vec<WireEvent> = (1..=5)
            .map(|i| sshd_failure(i, i as i64 * 1_000_000))
            .collect();
        let done = serde_json::to_vec(&Beat {
            newest: 5_000_000,
            sent: 1,
            wall: None,
        })
        .unwrap();
        let mut p = PartitionState::new(
            Family::of(&RuleSet::builtin())[0],
            &RuleSet::builtin(),
            &DetectOptions::default(),
            8,
            &["a".to_string(), "b".to_string()],
        );
        p.apply(MessageType::Events, "a", &message(&batch));
        p.apply(MessageType::Done, "b", &done);
        assert_eq!(p.apply(MessageType::Done, "a", &done).len(), 1);
        assert!(p.finished());
        // a's messages again, after the end: repeats, still finished, no alert.
        assert!(
            p.apply(MessageType::Events, "a", &message(&batch))
                .is_empty()
        );
        assert!(p.apply(MessageType::Done, "a", &done).is_empty());
        assert!(p.finished());
        // New lines from b: a new run that does not wait for a to come back.
        let later: Vec<WireEvent> = (6..=10)
            .map(|i| sshd_failure(i, 900_000_000 + i as i64))
            .collect();
        p.apply(MessageType::Events, "b", &message(&later));
        assert!(!p.finished());
        assert_eq!(p.apply(MessageType::Done, "b", &done).len(), 1);
        assert!(p.finished());
    }

    #[test]
    fn a_message_that_does_not_decode_is_counted_not_applied() {
        let mut p = ip_partition();
        assert!(p.apply(MessageType::Events, "e", b"{not json").is_empty());
        let mut bad_kind = sshd_failure(1, 1);
        bad_kind.kind = "auth.sideways".into();
        p.apply(
            MessageType::Events,
            "e",
            &message(&[bad_kind, sshd_failure(2, 2)]),
        );
        assert!(p.apply(MessageType::Beat, "e", b"[]").is_empty());
        assert_eq!((p.bad_messages, p.events), (3, 1));
    }

    #[test]
    fn through_marks_round_trip_and_order_by_message_then_index() {
        assert_eq!(parse_through(&through(12, 3)), Some((12, 3)));
        assert!((12, 3) < (13, 0));
        assert_eq!(parse_through("12"), None);
        assert_eq!(parse_through("a.b"), None);
    }
}
