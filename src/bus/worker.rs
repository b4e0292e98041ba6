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
//!   the partition already in [`ALERTS_STREAM`] and its `Sp-Through` (stream sequence and
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

use super::merge::EdgeMerge;
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
}

/// One partition's detection: the merge, the detector and where alerts were published to.
pub struct PartitionState {
    family: Family,
    rules: RuleSet,
    options: DetectOptions,
    partitions: u32,
    expected: Vec<String>,
    merge: EdgeMerge,
    detector: Detector,
    /// All edges finished and the end-of-input alerts decided (until an edge speaks again).
    finished: bool,
    pub bad_messages: u64,
    pub events: u64,
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
            expected: expected.to_vec(),
            merge: EdgeMerge::new(expected),
            finished: false,
            bad_messages: 0,
            events: 0,
        }
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Apply one message of the partition's stream; the alerts it decides, in order.
    pub fn apply(&mut self, kind: MessageType, edge: &str, payload: &[u8]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        match kind {
            MessageType::Events => {
                let Ok(list) = serde_json::from_slice::<Vec<WireEvent>>(payload) else {
                    self.bad_messages += 1;
                    return alerts;
                };
                let mut events = Vec::with_capacity(list.len());
                for wire in list {
                    match wire.into_event() {
                        Ok(ev) => events.push(ev),
                        Err(_) => self.bad_messages += 1,
                    }
                }
                if self.finished {
                    // An edge came back after the end: a new run of detection.
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

    fn restart(&mut self) {
        self.detector = Detector::new(self.rules.clone(), self.options.clone());
        self.merge = EdgeMerge::new(&self.expected);
        self.finished = false;
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }
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
        if cfg.once && all_finished(&bus, &all).await && delivered_everything(&bus).await {
            break;
        }
        tokio::select! {
            _ = shutdown.triggered() => break,
            _ = tokio::time::sleep(refresh) => {}
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

async fn all_finished(bus: &Bus, all: &[(Family, u32)]) -> bool {
    for (family, p) in all {
        match bus.fleet.get(format!("done.{}", family.key(*p))).await {
            Ok(Some(_)) => {}
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
        while let Some(Ok(message)) = batch.next().await {
            let alert = serde_json::from_slice::<WireAlert>(&message.payload)
                .map_err(|e| e.to_string())
                .and_then(WireAlert::into_alert);
            match alert {
                Ok(alert) => {
                    let written = lock(&sinks).write(std::slice::from_ref(&alert));
                    if written.is_err() {
                        // The sink reports its failure at the end; leave the alert for
                        // another worker.
                        continue;
                    }
                    lock(&stats).alerts_delivered += 1;
                }
                Err(_) => lock(&stats).bad_messages += 1,
            }
            let _ = message.ack().await;
        }
    }
}

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
    let consumer = bus
        .events
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: family.events_subject(p),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("consumer of {}: {e}", family.events_subject(p)))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("consumer of {}: {e}", family.events_subject(p)))?;
    let mut state = PartitionState::new(family, &cfg.rules, &cfg.options, partitions, &cfg.edges);
    let lag = BUS_GAUGES
        .lag
        .get_or_create(&vec![("partition", family.key(p))])
        .clone();
    let done_key = format!("done.{}", family.key(p));
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
        let (events_before, bad_before) = (state.events, state.bad_messages);
        let alerts = state.apply(kind, &edge, &message.payload);
        {
            let mut s = lock(stats);
            s.events += state.events - events_before;
            s.bad_messages += state.bad_messages - bad_before;
        }
        for (index, alert) in alerts.iter().enumerate() {
            if published.is_some_and(|done| (seq, index) <= done) {
                continue;
            }
            publish_alert(bus, &alerts_subject, alert, &through(seq, index)).await?;
            lock(stats).alerts_published += 1;
        }
        if state.finished() && !was_finished {
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

async fn publish_alert(
    bus: &Bus,
    subject: &str,
    alert: &Alert,
    through: &str,
) -> Result<(), String> {
    let payload = serde_json::to_vec(&WireAlert::from_alert(alert)).map_err(|e| e.to_string())?;
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, alert.id.as_str());
    headers.insert(THROUGH_HEADER, through);
    let mut wait = Duration::from_millis(100);
    for _ in 0..20 {
        let sent = bus
            .js
            .publish_with_headers(subject.to_string(), headers.clone(), payload.clone().into())
            .await;
        if let Ok(ack) = sent
            && ack.await.is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    Err(format!("{subject}: cannot publish alert {}", alert.id))
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

    #[test]
    fn through_marks_round_trip_and_order_by_message_then_index() {
        assert_eq!(parse_through(&through(12, 3)), Some((12, 3)));
        assert!((12, 3) < (13, 0));
        assert_eq!(parse_through("12"), None);
        assert_eq!(parse_through("a.b"), None);
    }
}
