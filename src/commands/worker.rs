//! `secpipe worker nats://…`: detection on the partitions of a NATS JetStream bus
//! ([`crate::bus::worker`]).

use std::process::ExitCode;

use crate::bus::worker::{Pinned, WorkerConfig};
use crate::flags::UsageError;
use crate::flags::hiargs::{DetectConfig, bus_name, parse_duration, time_zone};
use crate::flags::lowargs::WorkerArgs;
use crate::pipeline::topology::Services;
use crate::sink::{AlertSinks, OpenContext};

pub fn worker(args: &WorkerArgs) -> Result<ExitCode, UsageError> {
    let url = crate::bus::server_address(&args.url).map_err(UsageError::plain)?;
    let id = match &args.id {
        Some(id) => id.clone(),
        None => format!(
            "{}-{}",
            crate::sink::encode::rfc5424::hostname(),
            std::process::id()
        ),
    };
    bus_name("--id", &id)?;
    for edge in &args.edges {
        bus_name("--edges", edge)?;
    }
    let pinned = args
        .partitions
        .as_deref()
        .map(Pinned::parse)
        .transpose()
        .map_err(UsageError::plain)?;
    let lease = parse_duration("--lease", &args.lease)?;
    if lease < 1_000_000 {
        return Err(UsageError::plain(format!(
            "--lease {}: at least 1s (it is refreshed every third of it)",
            args.lease
        )));
    }
    let snapshot_every = parse_duration("--snapshot-every", &args.snapshot_every)?;
    let tz = time_zone(args.tz.as_deref())?;
    let detect = DetectConfig::from_args(&args.detect, &tz)?;
    let services = Services::start(args.metrics.as_deref()).map_err(UsageError::plain)?;
    let ctx = OpenContext {
        shutdown: services.shutdown.clone(),
        drain: detect.alert_drain,
        state: args.state.clone(),
        spool_bytes: crate::sink::spool::DEFAULT_SPOOL_BYTES,
        metrics: services.metrics.clone(),
    };
    let mut sinks = Vec::with_capacity(detect.sinks.len());
    for route in &detect.sinks {
        sinks.push((
            route.to.open(&ctx).map_err(UsageError::plain)?,
            route.min_severity,
        ));
    }
    let cfg = WorkerConfig {
        url,
        id,
        edges: args.edges.clone(),
        pinned,
        once: args.once,
        lease: std::time::Duration::from_micros(u64::try_from(lease).unwrap_or(u64::MAX)),
        snapshot_every: std::time::Duration::from_micros(
            u64::try_from(snapshot_every).unwrap_or(0),
        ),
        rules: detect.rules,
        options: detect.options,
    };
    let (sinks, outcome) = crate::bus::worker::run(
        cfg,
        AlertSinks::new(sinks),
        services.shutdown.clone(),
        services.metrics.clone(),
        services.handle(),
    );
    let (reports, sink_failed) = sinks.close();
    let s = &outcome.stats;
    crate::report::note(&format!(
        "worker: {} events applied, {} alerts published, {} delivered here, {} messages not \
         understood",
        s.events, s.alerts_published, s.alerts_delivered, s.bad_messages
    ));
    for (name, report) in reports {
        if report.undelivered() > 0 {
            crate::report::note(&format!(
                "worker: {} of {} alerts not delivered to {name}",
                report.undelivered(),
                report.alerts
            ));
        }
    }
    if let Some(e) = outcome.error.or(sink_failed) {
        return Err(UsageError::plain(e));
    }
    Ok(ExitCode::SUCCESS)
}
