//! The scale-out on NATS JetStream against a real `nats-server` (Debian's, with JetStream on a
//! loopback port; tests/run-all.sh installs it): 2 edges + N workers over any split of an input
//! give the alerts of one `secpipe run` over the whole input — the same ids, rules, keys and
//! counts — also after a worker or an edge is SIGKILLed mid-stream, when an edge reads its input
//! twice, when a message is duplicated, and with pinned partitions. The alerts stream holds
//! every alert exactly once: a failover never pages twice.
//!
//! Each test skips (saying so on stderr) when `nats-server` is not installed.

mod common;
mod live_support;
mod nats_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::fixture;
use live_support::wait_for_within;
use nats_support::*;

/// A nats-server and a directory for one test's inputs, archives and peer outputs.
struct Fleet {
    /// Kept running for the whole test; stopped on drop.
    _server: NatsServer,
    dir: tempfile::TempDir,
    url: String,
}

impl Fleet {
    fn start() -> Option<Fleet> {
        let server = NatsServer::start()?;
        let url = server.url();
        // NATSTEST_KEEP=1 keeps the directory (the peers' stdout and stderr) to look into.
        let keep = std::env::var_os("NATSTEST_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .prefix("natstest")
            .disable_cleanup(keep)
            .tempdir()
            .expect("temp dir");
        if keep {
            eprintln!("peers' output kept in {}", dir.path().display());
        }
        Some(Fleet {
            _server: server,
            dir,
            url,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write an input");
        path
    }

    fn edge(&self, id: &str, extra: &[&str], inputs: &[&Path]) -> Peer {
        Peer::start(
            self.dir.path(),
            &format!("edge-{id}"),
            &edge_args(&self.url, id, extra, inputs),
        )
    }

    fn worker(&self, id: &str, extra: &[&str]) -> Peer {
        Peer::start(
            self.dir.path(),
            &format!("worker-{id}"),
            &worker_args(&self.url, id, extra),
        )
    }

    /// Run each edge to the end of its input, asserting exit 0 and that it printed no alert
    /// (an edge runs no detection).
    fn run_edges(&self, edges: &[(&str, &[&str], &Path)]) {
        for (id, extra, input) in edges {
            let mut edge = self.edge(id, extra, &[input]);
            edge.wait_success();
            assert_eq!(edge.stdout(), "", "edge {id} printed alerts");
        }
    }

    /// What the workers printed, together: every expected alert, each printed once.
    fn assert_workers_printed_once(&self, workers: &[&Peer], expected: &AlertSet, what: &str) {
        let stdouts: Vec<String> = workers.iter().map(|w| w.stdout()).collect();
        let (got, times) = printed_alerts(&stdouts);
        let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).take(10).collect();
        assert!(
            twice.is_empty(),
            "{what}: alerts printed more than once: {twice:?}"
        );
        assert_same_alerts(expected, &got, what);
        assert_alerts_stream_holds_each_once(&self.url, expected);
    }
}

/// The sample of attacks: 13 rules of all four key families fire on it (16 alerts).
fn attacks() -> (PathBuf, String) {
    let path = fixture("sample/attacks.log");
    let text = std::fs::read_to_string(&path).expect("read the sample");
    (path, text)
}

/// The expected alerts of `text` (written to `name`), checked to be worth comparing.
fn expected_of(fleet: &Fleet, name: &str, text: &str) -> AlertSet {
    let whole = fleet.write(name, text);
    let expected = expected_alerts(&[], &[&whole]);
    assert_nontrivial(&expected);
    expected
}

/// Families (key fields) the default rules key by, and the default partition count.
const FAMILIES: [&str; 4] = ["src_ip", "user", "actor", "host"];
const PARTITIONS: u32 = 8;

#[test]
fn two_edges_and_one_worker_alert_as_secpipe_run_does() {
    let Some(fleet) = Fleet::start() else { return };
    let (path, text) = attacks();
    let expected = expected_alerts(&[], &[&path]);
    assert_nontrivial(&expected);
    let (a, b) = split_alternating(&text, 7);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));

    // The worker starts first and waits for the edges it is told about.
    let mut worker = fleet.worker("W1", &["--once", "--edges", "A,B"]);
    fleet.run_edges(&[("A", &[], &a), ("B", &[], &b)]);
    worker.wait_success();

    fleet.assert_workers_printed_once(&[&worker], &expected, "2 edges + 1 worker");
    let fleet_kv = kv_entries(&fleet.url, FLEET_BUCKET);
    assert_eq!(
        fleet_kv.get("partitions").map(String::as_str),
        Some("8"),
        "{FLEET_BUCKET} should record the default 8 partitions: {fleet_kv:?}"
    );
}

#[test]
fn two_edges_and_two_workers_alert_as_secpipe_run_does() {
    let Some(fleet) = Fleet::start() else { return };
    let text = synthetic_log(4 * 3600);
    let expected = expected_of(&fleet, "whole.log", &text);
    let (a, b) = split_alternating(&text, 1);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));

    let mut w1 = fleet.worker("W1", &["--once", "--edges", "A,B"]);
    let mut w2 = fleet.worker("W2", &["--once", "--edges", "A,B"]);
    fleet.run_edges(&[("A", &[], &a), ("B", &[], &b)]);
    w1.wait_success();
    w2.wait_success();

    fleet.assert_workers_printed_once(&[&w1, &w2], &expected, "2 edges + 2 workers");
}

#[test]
fn a_worker_sigkilled_mid_stream_is_taken_over_with_the_same_alerts() {
    let Some(fleet) = Fleet::start() else { return };
    // Large enough that a worker is still replaying its partitions when its first alerts are
    // in the stream. (Files, not a pipe: an edge on stdin may be live, and a live edge's beats
    // carry its wall clock, which moves the workers' watermark as in a live `secpipe run`.)
    let text = synthetic_log(24 * 3600);
    let expected = expected_of(&fleet, "whole.log", &text);
    let (a, b) = split_alternating(&text, 5);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));
    fleet.run_edges(&[("A", &[], &a), ("B", &[], &b)]);

    let once = ["--once", "--edges", "A,B", "--lease", "2s"];
    let mut w1 = fleet.worker("W1", &once);
    let mut w2 = fleet.worker("W2", &once);
    // Evidence that W1 is mid-stream: it owns a partition, has published alerts from it, and
    // has not finished it.
    let (unfinished, leases) = wait_for_within(
        PEER_PATIENCE,
        "W1 to own a partition and publish an alert from it before finishing it",
        || {
            assert!(
                w1.is_running(),
                "W1 exited before it could be killed mid-stream (make the input larger): {}",
                w1.stderr()
            );
            let leases = partition_leases(&kv_entries(&fleet.url, LEASES_BUCKET));
            let alerts = stream_subject_counts(&fleet.url, ALERTS_STREAM);
            let fleet_kv = kv_entries(&fleet.url, FLEET_BUCKET);
            let unfinished: Vec<String> = leases
                .iter()
                .filter(|(partition, owner)| {
                    owner.as_str() == "W1" && !fleet_kv.contains_key(&format!("done.{partition}"))
                })
                .map(|(partition, _)| partition.clone())
                .collect();
            unfinished
                .iter()
                .any(|p| alerts.contains_key(&format!("sp.alerts.{p}")))
                .then_some((unfinished, leases))
        },
    );
    w1.kill();
    w2.wait_success();
    let fleet_kv = kv_entries(&fleet.url, FLEET_BUCKET);
    let never_done: Vec<_> = unfinished
        .iter()
        .filter(|p| !fleet_kv.contains_key(&format!("done.{p}")))
        .collect();
    assert!(
        never_done.is_empty(),
        "W2 did not finish W1's partitions {never_done:?} (leases at the kill: {leases:?})"
    );

    // W1 may have printed an alert it did not get to acknowledge; W2 then prints it again.
    // So each worker prints an alert at most once, and together they print every alert.
    let (_, by_w1) = printed_alerts(&[w1.stdout()]);
    let (_, by_w2) = printed_alerts(&[w2.stdout()]);
    for (who, times) in [("W1", &by_w1), ("W2", &by_w2)] {
        let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).take(10).collect();
        assert!(twice.is_empty(), "{who} printed alerts twice: {twice:?}");
    }
    let (got, _) = printed_alerts(&[w1.stdout(), w2.stdout()]);
    assert_same_alerts(&expected, &got, "W1 SIGKILLed mid-stream, W2 took over");
    assert_alerts_stream_holds_each_once(&fleet.url, &expected);
}

/// How many event batches edge `id` has in the events stream.
fn event_batches_of(url: &str, id: &str) -> usize {
    stream_messages(url, EVENTS_STREAM)
        .iter()
        .filter(|m| m.header("Sp-Edge") == Some(id) && m.header("Sp-Type") == Some("events"))
        .count()
}

#[test]
fn an_edge_sigkilled_mid_stream_and_restarted_publishes_each_event_once() {
    let Some(fleet) = Fleet::start() else { return };
    // Large enough that the edge is still reading when its first batches are in the stream.
    // The restart has the same --edge-id and --archive; the spec's --state too, but the
    // binary refuses --state without --follow, and a restart without saved positions reads
    // the file again from its start: the batches' message ids make that republish a no-op.
    let text = synthetic_log(24 * 3600);
    let expected = expected_of(&fleet, "whole.log", &text);
    let (a, b) = split_alternating(&text, 5);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));
    let archive = fleet.path("archive-b");
    let durable = ["--archive", archive.to_str().expect("path")];

    let mut worker = fleet.worker("W1", &["--once", "--edges", "A,B"]);
    fleet.run_edges(&[("A", &[], &a)]);
    // Only B publishes from here on: a growing message count (one cheap request, where
    // reading the messages would take longer than B) says B is under way.
    let after_a = stream_message_count(&fleet.url, EVENTS_STREAM);
    let mut edge_b = fleet.edge("B", &durable, &[&b]);
    wait_for_within(
        PEER_PATIENCE,
        "edge B's first event batches in the stream",
        || {
            assert!(
                edge_b.is_running(),
                "edge B finished before it could be killed mid-stream (make the input larger): {}",
                edge_b.stderr()
            );
            (stream_message_count(&fleet.url, EVENTS_STREAM) > after_a).then_some(())
        },
    );
    edge_b.kill();
    let batches_at_kill = event_batches_of(&fleet.url, "B");

    let mut restarted = fleet.edge("B", &durable, &[&b]);
    restarted.wait_success();
    assert!(
        event_batches_of(&fleet.url, "B") > batches_at_kill,
        "the restarted edge published nothing new: the kill did not land mid-stream"
    );
    worker.wait_success();

    fleet.assert_workers_printed_once(&[&worker], &expected, "edge B SIGKILLed and restarted");
}

#[test]
fn an_edge_run_twice_over_the_same_input_counts_each_event_once() {
    let Some(fleet) = Fleet::start() else { return };
    let (path, text) = attacks();
    let expected = expected_alerts(&[], &[&path]);
    assert_nontrivial(&expected);
    let (a, b) = split_alternating(&text, 3);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));
    let archive = fleet.path("archive-b");
    let durable = ["--archive", archive.to_str().expect("path")];

    fleet.run_edges(&[("A", &[], &a), ("B", &durable, &b), ("B", &durable, &b)]);
    let mut worker = fleet.worker("W1", &["--once", "--edges", "A,B"]);
    worker.wait_success();

    fleet.assert_workers_printed_once(&[&worker], &expected, "edge B run twice");
}

#[test]
fn an_event_batch_published_again_under_a_new_message_id_is_counted_once() {
    let Some(fleet) = Fleet::start() else { return };
    let (path, text) = attacks();
    let expected = expected_alerts(&[], &[&path]);
    assert_nontrivial(&expected);
    let (a, b) = split_alternating(&text, 7);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));
    let archive = fleet.path("archive-b");
    let durable = ["--archive", archive.to_str().expect("path")];
    fleet.run_edges(&[("A", &[], &a), ("B", &durable, &b)]);

    // An edge restarted after the server's duplicate window has passed republishes what it
    // published before, and the server no longer recognises it: the same events (edge,
    // archive, seq) under new message ids. Every message of B (its batches, beats and `done`)
    // is sent again that way, in its order.
    let batches: Vec<StreamMessage> = stream_messages(&fleet.url, EVENTS_STREAM)
        .into_iter()
        .filter(|m| m.header("Sp-Edge") == Some("B"))
        .collect();
    assert!(
        batches
            .iter()
            .any(|m| m.header("Sp-Type") == Some("events")),
        "edge B published no event batch"
    );
    block_on(async {
        let client = async_nats::connect(fleet.url.as_str())
            .await
            .expect("connect");
        let js = async_nats::jetstream::new(client);
        for batch in &batches {
            let mut headers = batch.headers.clone();
            // Beats and `done` carry no message id; batches get one the server has not seen.
            if let Some(id) = batch.header("Nats-Msg-Id") {
                headers.insert("Nats-Msg-Id", format!("{id}-again").as_str());
            }
            js.publish_with_headers(batch.subject.clone(), headers, batch.payload.clone().into())
                .await
                .expect("publish")
                .await
                .expect("the stream's acknowledgement");
        }
    });

    let mut worker = fleet.worker("W1", &["--once", "--edges", "A,B"]);
    worker.wait_success();
    fleet.assert_workers_printed_once(&[&worker], &expected, "B's batches published twice");
}

#[test]
fn pinned_workers_take_only_their_partitions_and_together_alert_as_secpipe_run_does() {
    let Some(fleet) = Fleet::start() else { return };
    let (path, text) = attacks();
    let expected = expected_alerts(&[], &[&path]);
    assert_nontrivial(&expected);
    let (a, b) = split_alternating(&text, 7);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));
    fleet.run_edges(&[("A", &[], &a), ("B", &[], &b)]);

    // W1 alone, pinned to 0-3: it finishes those partitions of every family and no others.
    let low: BTreeSet<u32> = (0..PARTITIONS / 2).collect();
    let mut w1 = fleet.worker("W1", &["--once", "--edges", "A,B", "--partitions", "0-3"]);
    let done_low: Vec<String> = FAMILIES
        .iter()
        .flat_map(|f| low.iter().map(move |p| format!("done.{f}.{p}")))
        .collect();
    wait_for_within(PEER_PATIENCE, "W1 to finish partitions 0-3", || {
        assert!(
            w1.is_running(),
            "W1 exited before partitions 4-7 were finished: {}",
            w1.stderr()
        );
        let kv = kv_entries(&fleet.url, FLEET_BUCKET);
        done_low.iter().all(|k| kv.contains_key(k)).then_some(())
    });
    let partition_of = |subject_or_key: &str| -> u32 {
        let p = subject_or_key.rsplit('.').next().unwrap_or_default();
        p.parse()
            .unwrap_or_else(|_| panic!("no partition in {subject_or_key}"))
    };
    let kv = kv_entries(&fleet.url, FLEET_BUCKET);
    let done_high: Vec<_> = kv
        .keys()
        .filter(|k| k.starts_with("done.") && !low.contains(&partition_of(k)))
        .collect();
    assert!(
        done_high.is_empty(),
        "W1 finished partitions it is not pinned to: {done_high:?}"
    );
    let leases = partition_leases(&kv_entries(&fleet.url, LEASES_BUCKET));
    let foreign: Vec<_> = leases
        .keys()
        .filter(|k| !low.contains(&partition_of(k)))
        .collect();
    assert!(
        foreign.is_empty(),
        "W1 leased partitions it is not pinned to: {foreign:?}"
    );
    let alert_subjects = stream_subject_counts(&fleet.url, ALERTS_STREAM);
    let foreign: Vec<_> = alert_subjects
        .keys()
        .filter(|s| !low.contains(&partition_of(s)))
        .collect();
    assert!(
        foreign.is_empty(),
        "W1 alerted on partitions it is not pinned to: {foreign:?}"
    );
    assert!(
        !alert_subjects.is_empty(),
        "W1 published no alert from partitions 0-3"
    );

    let mut w2 = fleet.worker("W2", &["--once", "--edges", "A,B", "--partitions", "4-7"]);
    w1.wait_success();
    w2.wait_success();
    fleet.assert_workers_printed_once(&[&w1, &w2], &expected, "workers pinned to 0-3 and 4-7");
}

#[test]
fn a_different_partition_count_later_is_a_usage_error() {
    let Some(fleet) = Fleet::start() else { return };
    let (path, _) = attacks();
    fleet.run_edges(&[("A", &["--nats-partitions", "8"], &path)]);
    let mut other = fleet.edge("B", &["--nats-partitions", "4"], &[&path]);
    let status = other.wait_exit();
    assert_eq!(status.code(), Some(2), "stderr: {}", other.stderr());
    assert!(other.stderr().contains("partitions"), "{}", other.stderr());
}

#[test]
fn an_edge_that_cannot_reach_nats_exits_2() {
    if nats_server_binary().is_none() {
        eprintln!("nats-server is not installed: NATS scale-out test skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = attacks();
    // A port nothing listens on.
    let url = format!("nats://127.0.0.1:{}", live_support::free_port());
    let mut edge = Peer::start(dir.path(), "edge-A", &edge_args(&url, "A", &[], &[&path]));
    let status = edge.wait_exit();
    assert_eq!(status.code(), Some(2), "stderr: {}", edge.stderr());
    // Exit 2 is also a usage error: the message must be about the server it could not reach.
    let address = url.trim_start_matches("nats://");
    assert!(edge.stderr().contains(address), "{}", edge.stderr());
}

/// Events applied, from a worker's end note (`worker: N events applied, …`).
fn events_applied(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("secpipe: worker: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no end note in the worker's stderr: {stderr}"))
}

#[test]
fn a_worker_taking_over_starts_from_the_snapshots_and_alerts_the_same() {
    let Some(fleet) = Fleet::start() else { return };
    let text = synthetic_log(12 * 3600);
    let expected = expected_of(&fleet, "whole.log", &text);
    let (a, b) = split_alternating(&text, 5);
    let (a, b) = (fleet.write("a.log", &a), fleet.write("b.log", &b));
    fleet.run_edges(&[("A", &[], &a), ("B", &[], &b)]);
    // Every event copy the workers can apply: the events in every partition's batches.
    let in_stream: u64 = stream_messages(&fleet.url, EVENTS_STREAM)
        .iter()
        .filter(|m| m.header("Sp-Type") == Some("events"))
        .map(|m| {
            serde_json::from_slice::<Vec<serde_json::Value>>(&m.payload)
                .map_or(0, |list| list.len() as u64)
        })
        .sum();

    // W1 alone, snapshotting often; killed once every partition it owns has a snapshot.
    // A 6 s lease: W2 must not lose a partition to a refresh that a loaded machine delayed
    // past the lease (a fresh-clone CI run beside other builds did, with 2 s: the partition
    // was restored and applied a second time, and W2 counted more events than the stream has).
    let once = ["--once", "--edges", "A,B", "--lease", "6s"];
    let mut w1 = fleet.worker("W1", &[&once[..], &["--snapshot-every", "50ms"]].concat());
    wait_for_within(PEER_PATIENCE, "W1 to snapshot every partition", || {
        assert!(
            w1.is_running(),
            "W1 finished before the kill: {}",
            w1.stderr()
        );
        let heads = stream_subject_counts(&fleet.url, "SECPIPE_SNAPSHOTS")
            .keys()
            .filter(|s| s.ends_with(".head"))
            .count();
        (heads == FAMILIES.len() * PARTITIONS as usize).then_some(())
    });
    w1.kill();

    let mut w2 = fleet.worker("W2", &once);
    w2.wait_success();
    let applied = events_applied(&w2.stderr());
    assert!(
        applied < in_stream,
        "W2 applied {applied} of the {in_stream} events in the stream: it did not start from \
         the snapshots ({})",
        w2.stderr()
    );
    let (got, _) = printed_alerts(&[w1.stdout(), w2.stdout()]);
    assert_same_alerts(
        &expected,
        &got,
        "W1 killed after its snapshots, W2 took over from them",
    );
    assert_alerts_stream_holds_each_once(&fleet.url, &expected);
}

#[test]
fn a_worker_serves_its_partitions_and_their_lag_as_metrics() {
    let Some(fleet) = Fleet::start() else { return };
    let (path, _) = attacks();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut worker = fleet.worker("W", &["--metrics", &addr]);
    fleet.run_edges(&[("A", &[], &path)]);
    let scrape = || -> Option<String> {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(&addr).ok()?;
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        conn.read_to_string(&mut text).ok()?;
        Some(text)
    };
    // One worker owns all 32 partitions; once it has applied everything, every lag is 0.
    let text = wait_for_within(PEER_PATIENCE, "the worker to apply every partition", || {
        assert!(
            worker.is_running(),
            "the worker exited: {}",
            worker.stderr()
        );
        let text = scrape()?;
        let owned = text.contains("secpipe_bus_partitions_owned 32");
        let lags: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("secpipe_bus_consumer_lag{"))
            .collect();
        (owned && lags.len() == 32 && lags.iter().all(|l| l.ends_with(" 0"))).then_some(text)
    });
    assert!(
        text.contains(r#"secpipe_bus_consumer_lag{partition="src_ip.0"} 0"#),
        "{text}"
    );
    worker.kill();
}
