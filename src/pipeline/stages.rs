//! The two stages between the sources and the ordered stage: parse, which is sequential per
//! source (year inference carries state from line to line), and classify, which is stateless.
//! Each batch is counted here ([`EventTally`]), on these threads, so that the ordered stage,
//! the one that cannot be parallel, does not walk its events again.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::classify::Classifier;
use crate::event::{Event, EventTally, Kind};
use crate::frame::{Ack, LineBatch};
use crate::parse::{Format, ParseSettings, Parser, Record, journal_trust};

/// A timestamp more than this far ahead of its receive time is not believed (µs): one bad clock
/// must not drag the watermark years ahead and make every later event "late". This is the
/// judgment against today's clock; detect also judges each time against the stream's own
/// progress ([`crate::detect::MAX_AHEAD_OF_STREAM`]), which is what protects a replay of old
/// logs, where any date up to today passes this test.
pub const MAX_FUTURE: i64 = 24 * 3600 * 1_000_000;

/// Parsers kept (one per source) before the table is cleared.
const MAX_PARSERS: usize = 16_384;

/// Events parsed from one [`LineBatch`], in line order.
pub struct EventBatch {
    pub events: Vec<Event>,
    /// Grammar pattern hits (for `events --stats`), indexed by PatternId; `unmatched` last.
    pub pattern_hits: Vec<(usize, u64)>,
    pub unmatched: u64,
    pub truncated: u64,
    pub future_ts: u64,
    /// Lines whose written timestamp was refused (out of range, e.g. year 9999 or 0001).
    pub rejected_ts: u64,
    /// Lines whose address was left empty because attacker text could have chosen it.
    pub ambiguous_addresses: u64,
    /// Moved from the [`LineBatch`]: what its source is told once the batch is done (held
    /// until the archive holds its lines durably, when archiving).
    pub ack: Option<Ack>,
    /// What the summary and the metrics count per event, counted by [`classify_batch`] (on
    /// its own thread) so that the ordered stage, the one that cannot be parallel, does not
    /// walk every event again for them.
    pub tally: EventTally,
}

/// What classify needs from a parsed line beyond the [`Event`] itself: the envelope format and
/// its structured fields (JSON members, logfmt pairs, access-log parts, SD params). Fields are
/// empty, and cost nothing, for plain syslog lines.
pub struct Envelope {
    pub format: Format,
    pub fields: Vec<(Box<str>, Box<str>)>,
}

/// Parse one batch into events (kind `other`/`unparsed` until classified). `parsers` keeps one
/// [`Parser`] per source, because year inference carries state from line to line within an
/// input: this step is sequential per source, while [`classify_batch`] is stateless.
pub fn parse_batch(
    batch: &LineBatch,
    parsers: &mut HashMap<Arc<str>, Parser>,
    settings: &ParseSettings,
) -> (EventBatch, Vec<Envelope>) {
    let mut out = EventBatch {
        events: Vec::with_capacity(batch.len()),
        pattern_hits: Vec::new(),
        unmatched: 0,
        truncated: 0,
        future_ts: 0,
        rejected_ts: 0,
        ambiguous_addresses: 0,
        ack: None,
        tally: EventTally {
            newest_dated_ts: i64::MIN,
            ..EventTally::default()
        },
    };
    let mut envelopes = Vec::with_capacity(batch.len());
    let mut shared = SharedFields::default();
    // A listener's batch mixes peers: each run of lines from one source has its parser.
    let mut lines = batch.lines().enumerate();
    for (source, _, run) in batch.runs() {
        let parser = parser_for(parsers, source, settings);
        for (i, (line_no, raw, truncated)) in lines.by_ref().take(run.len()) {
            if truncated {
                out.truncated += 1;
            }
            // A CRLF file's `\r` stays in `raw` (exact bytes) but is not part of the message.
            let text = raw.strip_suffix(b"\r").unwrap_or(raw);
            let rec = parser.parse(text, batch.received);
            out.rejected_ts += parser.take_rejected_timestamps();
            let (ts, ts_inferred) = match batch.known_ts.get(i) {
                Some(&known) => known,
                None => match rec.ts {
                    Some(t) if t > batch.received + MAX_FUTURE => {
                        out.future_ts += 1;
                        (batch.received, true)
                    }
                    Some(t) => (t, false),
                    None => (batch.received, true),
                },
            };
            out.events.push(Event {
                source: source.clone(),
                line: line_no,
                seq: batch.first_seq.map(|s| s + i as u64),
                ts,
                ts_inferred,
                received: batch.received,
                host: shared.host.get(rec.host.as_deref()),
                app: shared.app.get(rec.app.as_deref()),
                pid: rec.pid,
                kind: if rec.format == Format::Unparsed {
                    Kind::Unparsed
                } else {
                    Kind::Other
                },
                severity: shared.severity.get(rec.severity.as_deref()),
                message: Box::from(&*rec.message),
                raw: Box::from(raw),
                ..Event::default()
            });
            envelopes.push(Envelope {
                format: rec.format,
                fields: rec
                    .fields
                    .iter()
                    .map(|(k, v)| (Box::from(&**k), Box::from(&**v)))
                    .collect(),
            });
        }
    }
    (out, envelopes)
}

/// The last host, app and level a batch's events were given: a line that names the same one
/// as the line before (nearly every line) shares its allocation.
#[derive(Default)]
struct SharedFields {
    host: LastText,
    app: LastText,
    severity: LastText,
}

#[derive(Default)]
struct LastText(Option<Arc<str>>);

impl LastText {
    fn get(&mut self, text: Option<&str>) -> Option<Arc<str>> {
        let text = text?;
        match &self.0 {
            Some(last) if **last == *text => Some(last.clone()),
            _ => {
                let fresh: Arc<str> = Arc::from(text);
                self.0 = Some(fresh.clone());
                Some(fresh)
            }
        }
    }
}

/// The parser of `source`, made on first use. Syslog listeners make one source per peer
/// connection; without a cap `parsers` would keep a parser for every connection ever seen.
/// Forgetting them only resets year inference.
fn parser_for<'a>(
    parsers: &'a mut HashMap<Arc<str>, Parser>,
    source: &Arc<str>,
    settings: &ParseSettings,
) -> &'a mut Parser {
    if parsers.len() >= MAX_PARSERS && !parsers.contains_key(source) {
        parsers.clear();
    }
    parsers
        .entry(source.clone())
        .or_insert_with(|| Parser::new(settings.tz.clone(), settings.year))
}

/// Classify the events of a parsed batch, in place, and count pattern hits.
pub fn classify_batch(batch: &mut EventBatch, envelopes: Vec<Envelope>, classifier: &Classifier) {
    let mut hits: Vec<u64> = Vec::new();
    for (ev, env) in batch.events.iter_mut().zip(envelopes) {
        match classify_event(ev, &env, classifier) {
            Some(id) => {
                if hits.len() <= id {
                    hits.resize(id + 1, 0);
                }
                hits[id] += 1;
            }
            None => batch.unmatched += 1,
        }
        if ev.src_ip.is_none() && ev.reason.as_deref() == Some(crate::classify::AMBIGUOUS_ADDRESS) {
            batch.ambiguous_addresses += 1;
        }
        let tally = &mut batch.tally;
        tally.by_kind[ev.kind as usize] += 1;
        if ev.kind == Kind::Other && ev.reason.as_deref() == Some(journal_trust::FORGED_SOURCE) {
            tally.forged_sources += 1;
        }
        if !ev.ts_inferred {
            tally.newest_dated_ts = tally.newest_dated_ts.max(ev.ts);
        }
    }
    batch.pattern_hits = hits
        .into_iter()
        .enumerate()
        .filter(|&(_, n)| n > 0)
        .collect();
}

/// Classify one event from its own envelope fields. The [`Record`] classify reads borrows the
/// event's strings, so they are moved out for the call and back after it.
fn classify_event(ev: &mut Event, env: &Envelope, classifier: &Classifier) -> Option<usize> {
    let message = std::mem::take(&mut ev.message);
    let host = ev.host.take();
    let app = ev.app.take();
    let severity = ev.severity.take();
    let rec = Record {
        format: env.format,
        ts: (!ev.ts_inferred).then_some(ev.ts),
        host: host.as_deref().map(Cow::Borrowed),
        app: app.as_deref().map(Cow::Borrowed),
        pid: ev.pid,
        severity: severity.as_deref().map(Cow::Borrowed),
        message: Cow::Borrowed(&message),
        fields: env
            .fields
            .iter()
            .map(|(k, v)| (Cow::Borrowed(&**k), Cow::Borrowed(&**v)))
            .collect(),
    };
    let matched = classifier.classify(&rec, ev);
    drop(rec);
    ev.message = message;
    ev.host = host;
    ev.app = app;
    ev.severity = severity;
    if env.format == Format::JournalJson {
        distrust_forged_journal_source(ev, &env.fields);
    }
    matched
}

/// A journal entry whose trusted fields (`_COMM`, `_EXE`, `_UID` …) disagree with the app it
/// claims counts toward nothing: kind `other`, reason `forged_source`, no address
/// ([`crate::parse::journal_trust`]).
fn distrust_forged_journal_source(ev: &mut Event, fields: &[(Box<str>, Box<str>)]) {
    let Some(app) = ev.app.as_deref() else {
        return;
    };
    let auth_event = matches!(ev.kind, Kind::AuthFailure | Kind::AuthSuccess);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| &**key == name)
            .map(|(_, value)| &**value)
    };
    if !journal_trust::source_agrees(app, auth_event, field) {
        ev.kind = Kind::Other;
        ev.reason = Some(journal_trust::FORGED_SOURCE.into());
        ev.src_ip = None;
        ev.attempt = crate::event::Attempt::None;
    }
}
