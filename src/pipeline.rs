//! pipeline: the threads that connect the stages, and the counts they keep.
//!
//! ```text
//! sources ──LineBatch──► parse+classify ──EventBatch──► ordered stage (seq, archive, detect, sinks)
//! ```
//!
//! Channels are bounded, so a slow sink slows the readers instead of growing memory. The
//! ordered stage is one thread: detection output must not depend on thread scheduling.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

pub use crate::event::now_micros;

use crate::classify::Classifier;
use crate::event::{Event, Kind};
use crate::frame::LineBatch;
use crate::parse::{Format, Parser, Record, journal_trust};

/// Batches in flight between two stages.
const CHANNEL_BATCHES: usize = 2;

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
    /// Copied from the [`LineBatch`]: where its source may resume once this batch is done.
    pub checkpoint: Option<crate::source::checkpoint::Checkpoint>,
    /// What the summary and the metrics count per event, counted by [`classify_batch`] (on
    /// its own thread) so that the ordered stage, the one that cannot be parallel, does not
    /// walk every event again for them.
    pub tally: BatchTally,
}

/// Per-batch counts of its events, filled by [`classify_batch`].
#[derive(Clone, Debug, Default)]
pub struct BatchTally {
    /// Events per kind, indexed by `Kind as usize`.
    pub by_kind: [u64; Kind::ALL.len()],
    /// Journal lines whose trusted fields contradicted their claimed app.
    pub forged_sources: u64,
    /// The newest written (not inferred) event time, `i64::MIN` when none.
    pub newest_dated_ts: i64,
}

/// Event-time bounds for replay (`--from`, `--to`), µs UTC: `from` inclusive, `to` exclusive.
///
/// ```
/// let r = secpipe::pipeline::TimeRange { from: Some(10), to: Some(20) };
/// assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, ts: i64) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.to.is_none_or(|t| ts < t)
    }
}

/// Time settings for parsing.
#[derive(Clone, Debug)]
pub struct ParseSettings {
    pub tz: jiff::tz::TimeZone,
    pub year: Option<i16>,
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
        checkpoint: batch.checkpoint.clone(),
        tally: BatchTally {
            newest_dated_ts: i64::MIN,
            ..BatchTally::default()
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

/// Counts for the end-of-run summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub inputs: u64,
    pub bytes: u64,
    pub lines: u64,
    pub parsed: u64,
    pub unparsed: u64,
    pub truncated: u64,
    pub dropped_bytes: u64,
    pub future_ts: u64,
    pub rejected_ts: u64,
    /// Dated events too far ahead of the stream's own progress (detect).
    pub ahead_of_stream: u64,
    /// Events forced through a full reorder buffer (detect).
    pub forced_events: u64,
    pub by_kind: [u64; Kind::ALL.len()],
    pub pattern_hits: Vec<u64>,
    pub unmatched: u64,
    /// Lines whose address was left empty because attacker text could have chosen it.
    pub ambiguous_addresses: u64,
    /// Journal entries whose trusted fields disagree with the app they claim.
    pub forged_sources: u64,
    pub late_events: u64,
    /// How attempts without an address found their session's address (detect).
    pub sessions: crate::detect::SessionStats,
    pub alerts: u64,
    pub alerts_by_rule: std::collections::BTreeMap<String, u64>,
    pub input_errors: Vec<String>,
}

impl Summary {
    /// Count one parsed batch.
    pub fn add_batch(&mut self, batch: &EventBatch) {
        self.lines += batch.events.len() as u64;
        let tally = &batch.tally;
        for (total, n) in self.by_kind.iter_mut().zip(tally.by_kind) {
            *total += n;
        }
        let unparsed = tally.by_kind[Kind::Unparsed as usize];
        self.unparsed += unparsed;
        self.parsed += batch.events.len() as u64 - unparsed;
        self.forged_sources += tally.forged_sources;
        for &(id, n) in &batch.pattern_hits {
            if self.pattern_hits.len() <= id {
                self.pattern_hits.resize(id + 1, 0);
            }
            self.pattern_hits[id] += n;
        }
        self.unmatched += batch.unmatched;
        self.ambiguous_addresses += batch.ambiguous_addresses;
        self.truncated += batch.truncated;
        self.future_ts += batch.future_ts;
        self.rejected_ts += batch.rejected_ts;
    }

    /// The human summary printed on stderr at exit.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "secpipe: {} lines ({} bytes) from {} input(s): {} parsed, {} unparsed, {} truncated, {} dropped bytes, {} future timestamps ignored",
            self.lines,
            self.bytes,
            self.inputs,
            self.parsed,
            self.unparsed,
            self.truncated,
            self.dropped_bytes,
            self.future_ts
        );
        if self.rejected_ts + self.ahead_of_stream + self.forced_events > 0 {
            let _ = writeln!(
                s,
                "secpipe: time: {} timestamps out of range, {} ahead of the stream's progress (not believed), {} events forced through a full reorder buffer",
                self.rejected_ts, self.ahead_of_stream, self.forced_events
            );
        }
        let kinds: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| self.by_kind[**k as usize] > 0)
            .map(|k| format!("{} {}", k.as_str(), self.by_kind[*k as usize]))
            .collect();
        if !kinds.is_empty() {
            let _ = writeln!(s, "secpipe: events: {}", kinds.join(", "));
        }
        if self.ambiguous_addresses > 0 {
            let _ = writeln!(
                s,
                "secpipe: {} lines with an ambiguous address (two candidates a crafted name could have written): src_ip left empty",
                self.ambiguous_addresses
            );
        }
        if self.forged_sources > 0 {
            let _ = writeln!(
                s,
                "secpipe: {} journal entries not counted: forged_source (the trusted _COMM/_EXE/_UID disagree with the app they claim)",
                self.forged_sources
            );
        }
        let _ = write!(s, "secpipe: {} alerts", self.alerts);
        if !self.alerts_by_rule.is_empty() {
            let rules: Vec<String> = self
                .alerts_by_rule
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = write!(s, " ({})", rules.join(", "));
        }
        let _ = writeln!(s, ", {} late events", self.late_events);
        let sessions = &self.sessions;
        if *sessions != crate::detect::SessionStats::default() {
            let _ = writeln!(
                s,
                "secpipe: sessions: {} attempts counted toward their session's address, {} attempts whose session named none, {} sessions evicted at the cap",
                sessions.attempts_bound, sessions.attempts_unattributed, sessions.sessions_evicted
            );
        }
        for e in &self.input_errors {
            let _ = writeln!(s, "secpipe: input error: {e}");
        }
        s
    }
}

pub use crate::shutdown::Shutdown;

/// Stdin is judged current while the newest event time detection believes was at most this
/// far behind the receive time of the batch that brought it.
pub const CURRENT_WITHIN: i64 = 120 * 1_000_000;

/// Stdin that has been current this long (µs of wall clock) is a live pipe: from then on the
/// wall clock moves its watermark after every batch, as for `--listen`. The same wait lets the
/// wall clock judge the first lines of stdin that detection still holds
/// ([`crate::detect::Detector::settle_start`]).
pub const LIVE_AFTER: i64 = 1_000_000;

/// When the wall clock may move the watermark (DESIGN section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WallClockMode {
    /// Old logs (files, replay): only data moves the watermark; everything is flushed at the
    /// end, so `cat old.log | secpipe` and `secpipe old.log` give the same alerts.
    Never,
    /// `--follow` and `--listen`: after every batch and every idle second, whatever arrived,
    /// so a trickle of stale lines cannot hold alerts back.
    Always,
    /// Stdin, which is old logs (`cat old.log | secpipe`) or a live pipe (`journalctl -f |
    /// secpipe`): only while stdin is current (see [`WallClock`]).
    WhenCurrent,
}

/// Decides, for the ordered stage, when the wall clock moves the watermark.
///
/// Stdin is *current* when the newest event time detection believes (its progress, which a
/// planted future line does not move) was within [`CURRENT_WITHIN`] of the receive time of
/// the batch that last moved it. `journalctl -f` writes lines as they happen, so it is current
/// and stays current through a quiet spell (the judgment is made when lines arrive, not
/// against the idle wall clock), which lets `log.silence` fire for a host that went quiet.
/// `cat old.log` never is: its events are days or years behind their receive time.
///
/// A current pipe gets the wall clock on every idle second and, once it has been current for
/// [`LIVE_AFTER`], after every batch too, whatever the batch held: a trickle of stale lines
/// (one stamped 2020 every half second, or a host whose clock is behind, neither of which
/// moves the progress or makes the pipe idle) cannot hold back the alert of the last attack.
/// The wait keeps `cat today.log | secpipe`, whose last lines are current only for the instant
/// they are drained, judged by its lines.
///
/// ```
/// use secpipe::pipeline::{WallClock, WallClockMode, LIVE_AFTER};
/// let second = 1_000_000;
/// let now = 1_800_000_000 * second;
/// let mut stdin = WallClock::new(WallClockMode::WhenCurrent);
/// // A line of 2020 read today: not current.
/// stdin.after_batch(now, 1_577_836_800 * second);
/// assert!(!stdin.on_idle() && !stdin.ticks_after_batch(now + LIVE_AFTER));
/// // A line written a second before it was read: current, and live a second later.
/// stdin.after_batch(now, now - second);
/// assert!(stdin.on_idle() && !stdin.ticks_after_batch(now));
/// assert!(stdin.ticks_after_batch(now + LIVE_AFTER));
/// assert!(WallClock::new(WallClockMode::Always).ticks_after_batch(now));
/// assert!(!WallClock::new(WallClockMode::Never).on_idle());
/// ```
#[derive(Clone, Debug)]
pub struct WallClock {
    mode: WallClockMode,
    current: bool,
    /// Receive time of the batch that made stdin current (meaningful while `current`).
    current_since: i64,
    /// Detection's progress when `current` was last judged.
    judged_at: i64,
}

impl WallClock {
    pub fn new(mode: WallClockMode) -> WallClock {
        WallClock {
            mode,
            current: false,
            current_since: i64::MAX,
            judged_at: i64::MIN,
        }
    }

    /// A batch received at `received` (µs) went through detection, whose progress (newest
    /// believed event time, `i64::MIN` before any) is now `progress`.
    /// Only a batch that moved the progress is judged: stale lines that arrive during a quiet
    /// spell say nothing about whether the pipe is live.
    pub fn after_batch(&mut self, received: i64, progress: i64) {
        if progress > self.judged_at {
            self.judged_at = progress;
            let current = received.saturating_sub(progress) <= CURRENT_WITHIN;
            if current && !self.current {
                self.current_since = received;
            }
            self.current = current;
        }
    }

    /// Move the watermark by the wall clock (`now`, µs) after a batch.
    pub fn ticks_after_batch(&self, now: i64) -> bool {
        match self.mode {
            WallClockMode::Never => false,
            WallClockMode::Always => true,
            WallClockMode::WhenCurrent => {
                self.current && now.saturating_sub(self.current_since) >= LIVE_AFTER
            }
        }
    }

    /// Move the watermark by the wall clock on an idle tick.
    pub fn on_idle(&self) -> bool {
        match self.mode {
            WallClockMode::Never => false,
            WallClockMode::Always => true,
            WallClockMode::WhenCurrent => self.current,
        }
    }

    /// Let the wall clock judge the first lines of stdin that detection holds (received at
    /// `held_since`, µs; see [`crate::detect::Detector::settle_start`]): on an idle tick
    /// (`now` is then `None`), or once they have waited [`LIVE_AFTER`].
    pub fn settles_start(&self, held_since: Option<i64>, now: Option<i64>) -> bool {
        self.mode == WallClockMode::WhenCurrent
            && held_since
                .is_some_and(|since| now.is_none_or(|now| now.saturating_sub(since) >= LIVE_AFTER))
    }
}

/// What the ordered stage is told by the pipeline.
// One per batch of lines: the size of the message is nothing next to its events.
#[allow(clippy::large_enum_variant)]
pub enum Delivery {
    Batch(EventBatch),
    /// No input for a while (live sources only): the wall clock may move the watermark.
    Idle,
}

/// Run the front of the pipeline: `spawn_sources` starts the source threads, which send
/// [`LineBatch`]es; one thread parses and classifies; `ordered` runs on the calling thread and
/// sees every [`EventBatch`] in the order the parse stage produced them.
///
/// `idle_after`: for live sources, how long without input before `ordered` gets
/// [`Delivery::Idle`]; `None` for batch input.
pub fn run_pipeline<S, O>(
    settings: ParseSettings,
    classifier: Arc<Classifier>,
    spawn_sources: S,
    idle_after: Option<Duration>,
    mut ordered: O,
) -> std::thread::Result<()>
where
    S: FnOnce(Sender<LineBatch>) -> Vec<std::thread::JoinHandle<()>>,
    O: FnMut(Delivery),
{
    let (line_tx, line_rx): (Sender<LineBatch>, Receiver<LineBatch>) = bounded(CHANNEL_BATCHES);
    let (parsed_tx, parsed_rx) = bounded::<(EventBatch, Vec<Envelope>)>(CHANNEL_BATCHES);
    let (event_tx, event_rx) = bounded::<EventBatch>(CHANNEL_BATCHES);
    let sources = spawn_sources(line_tx);
    // Parsing is sequential per source (year inference); classifying is the heavier half and
    // stateless, so it gets its own thread and the two overlap.
    let parse = std::thread::Builder::new()
        .name("parse".into())
        .spawn(move || {
            let mut parsers = HashMap::new();
            for batch in line_rx {
                let parsed = parse_batch(&batch, &mut parsers, &settings);
                if batch.ends_source {
                    parsers.remove(&batch.source);
                }
                if parsed_tx.send(parsed).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Box::new(e) as Box<dyn std::any::Any + Send>)?;
    let classify = std::thread::Builder::new()
        .name("classify".into())
        .spawn(move || {
            for (mut events, envelopes) in parsed_rx {
                classify_batch(&mut events, envelopes, &classifier);
                if event_tx.send(events).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Box::new(e) as Box<dyn std::any::Any + Send>)?;
    loop {
        let delivery = match idle_after {
            None => match event_rx.recv() {
                Ok(b) => Delivery::Batch(b),
                Err(_) => break,
            },
            Some(idle) => match event_rx.recv_timeout(idle) {
                Ok(b) => Delivery::Batch(b),
                Err(RecvTimeoutError::Timeout) => Delivery::Idle,
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        ordered(delivery);
    }
    for s in sources {
        s.join()?;
    }
    parse.join()?;
    classify.join()
}
