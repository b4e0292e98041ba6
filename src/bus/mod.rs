//! bus: detection spread over machines on NATS JetStream (issue 16, DESIGN section 9).
//!
//! ```text
//!  edge (secpipe --emit)                 JetStream                     worker (secpipe worker)
//!  sources ► parse ► classify ► archive ─► SECPIPE_EVENTS  sp.ev.<family>.<p> ─► merge ► rules
//!                                         SECPIPE_ALERTS  sp.alerts.<family>.<p> ◄────────┘
//!                                                        └─ durable consumer `deliver` ─► sinks
//! ```
//!
//! - **Families and partitions.** One event feeds rules with different keys (`auth.bruteforce`
//!   counts per `src_ip`, `auth.concurrent_ips` per `user`), so an edge publishes each event
//!   once per key field the rules use ([`crate::detect::RuleSet::families`]), to partition
//!   `hash(key) mod N` of that family ([`partition_of`]; IPv6 cut to the family's prefix
//!   first). Every key of every rule then lands whole in one partition, and a worker runs
//!   only that family's rules there. A line of a login session that does not name the key
//!   (`pam_unix … rhost=<a name>` before `Failed password … from ADDR`) goes to every
//!   partition of a family whose rules count attempts: the partition of the address the
//!   session later names needs it to count the attempt, the others bind it to nothing.
//! - **Time.** A worker's state is a function of its partition's stream alone: events are
//!   merged across edges in event time ([`merge`]), edges' beats move the watermark, and
//!   nothing reads the worker's own clock. So a worker that takes a partition over rebuilds
//!   exactly the state of the one that died by reading the stream from its start, and makes
//!   the same alerts; `Sp-Through` on each alert says up to where alerts were published, so
//!   it republishes none ([`worker`]).
//! - **Exactly once.** Message ids are a hash of the batch's content, so an edge that reads
//!   the same lines again (a restart) publishes nothing new within the stream's duplicate
//!   window; alert ids are the message ids of the alerts stream.

pub mod edge;
pub mod merge;
pub mod snapshots;
pub mod wire;
pub mod worker;

use std::time::Duration;

use async_nats::jetstream;

use crate::detect::RuleSet;
use crate::event::{Event, EventField, FieldValue};

/// Stream of events, all families and partitions.
pub const EVENTS_STREAM: &str = "SECPIPE_EVENTS";
/// Stream of alerts, one subject per partition.
pub const ALERTS_STREAM: &str = "SECPIPE_ALERTS";
/// Key-value bucket of partition leases (TTL = the lease).
pub const LEASES_BUCKET: &str = "secpipe_leases";
/// Key-value bucket of fleet settings (`partitions`) and finished partitions (`done.*`).
pub const FLEET_BUCKET: &str = "secpipe_fleet";
/// The shared durable consumer of the alerts stream that feeds the workers' sinks.
pub const DELIVER_CONSUMER: &str = "deliver";

/// Default number of partitions per family.
pub const DEFAULT_PARTITIONS: u32 = 8;

/// How long the events stream remembers message ids: an edge restarted within it republishes
/// nothing. JetStream's default is 2 minutes; a restart by systemd after a crash, with the
/// lines since the last saved position read again, fits in 10.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Message headers.
pub const TYPE_HEADER: &str = "Sp-Type";
pub const EDGE_HEADER: &str = "Sp-Edge";
pub const THROUGH_HEADER: &str = "Sp-Through";

/// What a message on the events stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Events,
    Beat,
    Done,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Events => "events",
            MessageType::Beat => "beat",
            MessageType::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<MessageType> {
        [MessageType::Events, MessageType::Beat, MessageType::Done]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A partition family: the key field and the IPv6 prefix its addresses are cut to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    pub field: EventField,
    pub ipv6_prefix: u8,
    /// Its rules count login attempts: session lines without the key go to every partition.
    pub counts_attempts: bool,
}

impl Family {
    /// The families of a rule set, in pack order.
    pub fn of(rules: &RuleSet) -> Vec<Family> {
        rules
            .families()
            .into_iter()
            .map(|(field, ipv6_prefix)| Family {
                field,
                ipv6_prefix,
                counts_attempts: rules.counts_attempts_by(field),
            })
            .collect()
    }

    pub fn name(&self) -> &'static str {
        self.field.name()
    }

    pub fn events_subject(&self, partition: u32) -> String {
        format!("sp.ev.{}.{partition}", self.name())
    }

    pub fn alerts_subject(&self, partition: u32) -> String {
        format!("sp.alerts.{}.{partition}", self.name())
    }

    /// `<family>.<p>`: the lease and done key of a partition.
    pub fn key(&self, partition: u32) -> String {
        format!("{}.{partition}", self.name())
    }
}

/// Where an event goes in a family: one partition, every partition, or none.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    One(u32),
    All,
    None,
}

/// The partition of `ev` in `family` among `partitions`.
///
/// ```
/// use secpipe::bus::{Family, Route, route};
/// use secpipe::event::{Event, EventField};
/// let ip = Family { field: EventField::SrcIp, ipv6_prefix: 64, counts_attempts: true };
/// let a = Event { src_ip: "2001:db8:1:2::1".parse().ok(), ..Event::default() };
/// let b = Event { src_ip: "2001:db8:1:2:ffff::9".parse().ok(), ..Event::default() };
/// // One /64, one partition: the rule's key is whole there.
/// assert_eq!(route(&ip, &a, 8), route(&ip, &b, 8));
/// assert!(matches!(route(&ip, &a, 8), Route::One(p) if p < 8));
/// ```
pub fn route(family: &Family, ev: &Event, partitions: u32) -> Route {
    let partitions = partitions.max(1);
    let hash = match family.field.get(ev) {
        Some(FieldValue::Ip(ip)) => {
            let bytes = crate::detect::ip_key_bytes(ip, family.ipv6_prefix);
            fnv1a(&bytes)
        }
        Some(FieldValue::Text(t)) => fnv1a(t.as_bytes()),
        Some(FieldValue::Number(n)) => fnv1a(n.to_string().as_bytes()),
        Some(FieldValue::Time(t)) => fnv1a(t.to_string().as_bytes()),
        Some(FieldValue::Bool(b)) => fnv1a(if b { b"true" } else { b"false" }),
        None => {
            return if family.counts_attempts && is_session_line(ev) {
                Route::All
            } else {
                Route::None
            };
        }
    };
    Route::One((hash % u64::from(partitions)) as u32)
}

/// A line of a login session (it has a pid and a role in counting attempts, or is a login
/// that may forgive a pending one): the session's address may be on another line.
fn is_session_line(ev: &Event) -> bool {
    ev.pid.is_some()
        && (ev.attempt != crate::event::Attempt::None || ev.kind == crate::event::Kind::AuthSuccess)
}

/// FNV-1a, 64 bits: the partition hash must be the same in every edge and worker, whatever
/// their build, so not a seeded or library hasher that may change.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `nats://HOST:PORT` as given; anything else is a usage error.
pub fn server_address(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("nats://")
        .ok_or_else(|| format!("{url}: expected nats://HOST:PORT"))?;
    if rest.is_empty() || rest.contains('/') || rest.chars().any(char::is_whitespace) {
        return Err(format!("{url}: expected nats://HOST:PORT"));
    }
    Ok(url.to_string())
}

/// Connect and open JetStream, retrying for up to `patience` (a server that starts with us).
pub async fn connect(url: &str, patience: Duration) -> Result<jetstream::Context, String> {
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("secpipe");
        match options.connect(url).await {
            Ok(client) => return Ok(jetstream::new(client)),
            Err(e) if started.elapsed() >= patience => {
                return Err(format!("{url}: cannot connect: {e}"));
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The streams and buckets, created with secpipe's settings when missing.
pub struct Bus {
    pub js: jetstream::Context,
    pub events: jetstream::stream::Stream,
    pub alerts: jetstream::stream::Stream,
    pub snapshots: jetstream::stream::Stream,
    pub fleet: jetstream::kv::Store,
}

impl Bus {
    pub async fn open(js: jetstream::Context) -> Result<Bus, String> {
        let events = js
            .get_or_create_stream(jetstream::stream::Config {
                name: EVENTS_STREAM.to_string(),
                subjects: vec!["sp.ev.>".to_string()],
                storage: jetstream::stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("stream {EVENTS_STREAM}: {e}"))?;
        let alerts = js
            .get_or_create_stream(jetstream::stream::Config {
                name: ALERTS_STREAM.to_string(),
                subjects: vec!["sp.alerts.>".to_string()],
                storage: jetstream::stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("stream {ALERTS_STREAM}: {e}"))?;
        let fleet = key_value(
            &js,
            FLEET_BUCKET,
            Duration::ZERO,
            jetstream::stream::StorageType::File,
        )
        .await?;
        let snapshots = snapshots::stream(&js).await?;
        Ok(Bus {
            js,
            events,
            alerts,
            snapshots,
            fleet,
        })
    }

    /// The fleet's partition count: recorded by the first edge or worker, checked by the rest
    /// (a different count would put one key in two partitions).
    pub async fn partitions(&self, wanted: Option<u32>) -> Result<u32, String> {
        let recorded = self
            .fleet
            .get("partitions")
            .await
            .map_err(|e| format!("bucket {FLEET_BUCKET}: {e}"))?;
        let parse = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .filter(|n| (1..=MAX_PARTITIONS).contains(n))
                .ok_or_else(|| format!("bucket {FLEET_BUCKET}: `partitions` is not a count"))
        };
        match (recorded, wanted) {
            (Some(bytes), None) => parse(&bytes),
            (Some(bytes), Some(n)) => {
                let recorded = parse(&bytes)?;
                if recorded != n {
                    return Err(format!(
                        "--nats-partitions {n}: this bus was set up with {recorded} partitions; \
                         a different count would split keys (use {recorded}, or a new stream)"
                    ));
                }
                Ok(n)
            }
            (None, wanted) => {
                let n = wanted.unwrap_or(DEFAULT_PARTITIONS);
                // Two starting at once: one create wins, the other reads what it wrote.
                if self
                    .fleet
                    .create("partitions", n.to_string().into())
                    .await
                    .is_err()
                {
                    return Box::pin(self.partitions(Some(n))).await;
                }
                Ok(n)
            }
        }
    }
}

/// A key-value bucket, its stream created when missing. Not `create_key_value`: that asks
/// for the account's API level first, whose answer async-nats 0.51 cannot read from Debian's
/// nats-server 2.9; the stream is the one it would make (one value per key, rollups, direct
/// gets, `max_age` as the entries' time to live).
pub async fn key_value(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    storage: jetstream::stream::StorageType,
) -> Result<jetstream::kv::Store, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("bucket {bucket}: {e}"))?;
    js.get_key_value(bucket)
        .await
        .map_err(|e| format!("bucket {bucket}: {e}"))
}

/// More partitions than this is a usage error: each is a subject, a lease and a consumer.
pub const MAX_PARTITIONS: u32 = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_hash_is_pinned() {
        // FNV-1a 64 of "a" and of "" (published test vectors): a changed hash would split a
        // key between edges of two builds.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_session_line_without_the_key_goes_everywhere_and_other_lines_nowhere() {
        let ip = Family {
            field: EventField::SrcIp,
            ipv6_prefix: 64,
            counts_attempts: true,
        };
        let session = Event {
            pid: Some(7),
            attempt: crate::event::Attempt::Start,
            ..Event::default()
        };
        assert_eq!(route(&ip, &session, 8), Route::All);
        assert_eq!(route(&ip, &Event::default(), 8), Route::None);
        let no_attempts = Family {
            counts_attempts: false,
            ..ip
        };
        assert_eq!(route(&no_attempts, &session, 8), Route::None);
    }

    #[test]
    fn mapped_and_plain_ipv4_share_a_partition() {
        let ip = Family {
            field: EventField::SrcIp,
            ipv6_prefix: 64,
            counts_attempts: false,
        };
        let plain = Event {
            src_ip: "203.0.113.7".parse().ok(),
            ..Event::default()
        };
        let mapped = Event {
            src_ip: "::ffff:203.0.113.7".parse().ok(),
            ..Event::default()
        };
        assert_eq!(route(&ip, &plain, 16), route(&ip, &mapped, 16));
    }

    #[test]
    fn only_nats_urls_are_servers() {
        assert!(server_address("nats://127.0.0.1:4222").is_ok());
        assert!(server_address("http://127.0.0.1:4222").is_err());
        assert!(server_address("nats://").is_err());
        assert!(server_address("nats://a b").is_err());
    }
}
