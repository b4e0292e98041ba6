//! Criterion benches for the hot stages: parse, classify, detect — per line, on real sshd lines
//! (../shared/corpus when present, else the bundled sample).
//!
//!   cargo bench --bench pipeline

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secpipe::classify::Classifier;
use secpipe::detect::{DetectOptions, Detector, RuleSet};
use secpipe::event::{Event, Kind};
use secpipe::parse::{Format, Parser};

fn corpus() -> Vec<Vec<u8>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let candidates = [
        format!("{root}/../shared/corpus/loghub/OpenSSH_2k.log"),
        format!("{root}/fixtures/sample/attacks.log"),
    ];
    for path in candidates {
        if let Ok(text) = std::fs::read(&path) {
            return text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
        }
    }
    panic!("no corpus found");
}

const RECEIVED: i64 = 1_790_000_000_000_000;

fn events(lines: &[Vec<u8>], classifier: &Classifier) -> Vec<Event> {
    let mut parser = Parser::new(jiff::tz::TimeZone::UTC, Some(2026));
    let source: Arc<str> = "bench".into();
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let rec = parser.parse(line, RECEIVED);
            let mut ev = Event {
                source: source.clone(),
                line: i as u64 + 1,
                ts: rec.ts.unwrap_or(RECEIVED),
                ts_inferred: rec.ts.is_none(),
                received: RECEIVED,
                host: rec.host.as_deref().map(Box::from),
                app: rec.app.as_deref().map(Box::from),
                pid: rec.pid,
                kind: if rec.format == Format::Unparsed {
                    Kind::Unparsed
                } else {
                    Kind::Other
                },
                message: Box::from(&*rec.message),
                raw: Box::from(line.as_slice()),
                ..Event::default()
            };
            classifier.classify(&rec, &mut ev);
            ev
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = corpus();
    let classifier = Classifier::builtin().expect("builtin grammars");
    let mut group = c.benchmark_group("per_line");
    group.throughput(Throughput::Elements(lines.len() as u64));

    group.bench_function("parse", |b| {
        let mut parser = Parser::new(jiff::tz::TimeZone::UTC, Some(2026));
        b.iter(|| {
            for line in &lines {
                black_box(parser.parse(black_box(line), RECEIVED));
            }
        })
    });

    group.bench_function("parse+classify", |b| {
        b.iter(|| black_box(events(&lines, &classifier)))
    });

    let evs = events(&lines, &classifier);
    group.bench_function("detect", |b| {
        b.iter_batched(
            || evs.clone(),
            |evs| {
                let mut detector = Detector::new(
                    RuleSet::builtin(),
                    DetectOptions {
                        lateness: 10_000_000,
                        tz: jiff::tz::TimeZone::UTC,
                        max_keys: 1_000_000,
                    },
                );
                let mut alerts = Vec::new();
                for ev in evs {
                    detector.push(ev, &mut alerts);
                }
                detector.finish(&mut alerts);
                black_box(alerts)
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
