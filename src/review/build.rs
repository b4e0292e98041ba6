//! Computing a [`Review`] from an archive: verify, then the passes the module doc lists.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::alert::Severity;
use crate::archive::schema::Table;
use crate::archive::store::{ArchiveStore, MANIFESTS};
use crate::archive::verify::{ProblemClass, VerifyOptions, VerifyReport, verify_store};
use crate::event::TimeRange;
use crate::source::archive::{ArchiveFiles, table_files_in};

use super::model::{
    ActorRow, AlertTotals, ArchiveFacts, BanRow, Bans, Compared, Counts, HostRow, Hosts, KindCount,
    PrefixRow, PriorityRow, Response, ResponseItem, Review, RuleRow, SilentHost, SourceRow,
    Timeline, TopList, UserRow,
};
use super::period::{Length, Period, format_time};
use super::read::{self, AlertRow, EventRow};
use super::tally::{Tally, Weight};
use super::{MAX_HOST_ROWS, MAX_ITEMS, MAX_KEYS_PER_RULE, MAX_TEXT_CHARS, TOP_N};

/// Distinct addresses, prefixes, users and actors a tally holds.
const KEY_CAP: usize = 100_000;
/// Distinct hosts (each holds a series of buckets).
const HOST_CAP: usize = 10_000;
/// Distinct kinds and rules (a set the rule pack fixes; capped against a forged archive).
const NAME_CAP: usize = 1_000;
/// Bans kept for matching alerts to their response.
const BAN_CAP: usize = 100_000;
/// A host is silent when its last event is this long before the end of the period.
const SILENT_AFTER: i64 = 24 * 3_600_000_000;

/// What to review.
#[derive(Clone, Debug)]
pub struct ReviewOptions {
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The period's length when a bound is missing.
    pub length: Length,
    /// As `--lateness` of the run: a row older than the highest event time before it minus
    /// this is late.
    pub lateness: i64,
    pub verify: VerifyOptions,
}

/// Review the archive in `store`. Errors only when it is not an archive that can be read at
/// all; a tampered archive gives a review that says so.
pub fn review(store: Arc<dyn ArchiveStore>, opts: &ReviewOptions) -> Result<Review, String> {
    let verdict = verify_store(&*store, &opts.verify);
    let manifests = store
        .read_manifests()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: no manifests", store.location_of(MANIFESTS)))?;
    let (trusted, unanchored) = anchored_prefix(&manifests, &verdict);
    let mut events = table_files_in(Arc::clone(&store), Table::Events, trusted)?;
    let mut alerts = table_files_in(Arc::clone(&store), Table::Alerts, trusted)?;
    // A file verify found altered is the attacker's, not evidence: its rows are not counted
    // (and a crafted file is never decoded), and the review names it.
    let altered: BTreeSet<&str> = verdict.problems.iter().map(|p| p.file.as_str()).collect();
    let mut skipped: Vec<String> = unanchored
        .iter()
        .map(|path| format!("not read (manifest line not anchored in the chain): {path}"))
        .collect();
    for files in [&mut events, &mut alerts] {
        files.files.retain(|f| {
            let keep = !altered.contains(f.path.as_str());
            if !keep {
                skipped.push(format!("not read (failed verification): {}", f.path));
            }
            keep
        });
    }
    let last_time =
        |files: &ArchiveFiles| files.files.iter().filter_map(|f| f.time).map(|t| t.1).max();
    // When verify left no events file to read, the period is placed by the manifests'
    // word alone (only placed: nothing of those files is read), so a tampered archive still
    // gets a review that says so rather than "no events".
    let last_event = last_time(&events).or_else(|| {
        table_files_in(Arc::clone(&store), Table::Events, &manifests)
            .ok()
            .and_then(|all| last_time(&all))
    });
    let period = Period::resolve(opts.from, opts.to, opts.length, last_event)?;

    let mut unreadable = Vec::new();
    let mut now = EventPass::new(&period, true);
    unreadable.extend(now.run(&events, period.range(), opts.lateness));
    let bans = BanLedger::read(&alerts, &period, &mut unreadable);
    let mut fired = AlertPass::new(&period, &bans, &now);
    // From the start: a silence decided in the period has its last line (by which the alerts
    // table is ordered and partitioned) as long before as the silence lasted.
    unreadable.extend(read::alerts(
        &alerts,
        TimeRange {
            from: None,
            to: Some(period.to),
        },
        |a| fired.add(a),
    ));
    let mut before = EventPass::new(&period, false);
    before.watch(&now);
    unreadable.extend(before.run(&events, period.previous_range(), opts.lateness));

    let mut review = Review {
        v: super::model::REVIEW_VERSION,
        archive: facts(&verdict),
        period: super::model::Period {
            kind: period.kind().into(),
            from: format_time(period.from),
            to: format_time(period.to),
            previous_from: format_time(period.previous_from()),
            previous_to: format_time(period.from),
            bucket: period.bucket_name(),
            lateness: crate::duration::format(opts.lateness),
        },
        ..Review::default()
    };
    // Named one by one up to a limit: a break near the start of a long chain leaves every
    // later file unread, and the page must stay a page.
    let unnamed = skipped.len().saturating_sub(MAX_ITEMS);
    review
        .archive
        .warnings
        .extend(skipped.into_iter().take(MAX_ITEMS));
    if unnamed > 0 {
        review
            .archive
            .warnings
            .push(format!("and {unnamed} more files not read"));
    }
    review.archive.warnings.extend(
        unreadable
            .into_iter()
            .map(|e| format!("could not read {e}")),
    );
    now.fill(&before, &period, &mut review);
    let fired_limits = fired.limits(&bans);
    fired.fill(&now, &bans, &mut review);
    review.limits = now.limits(&before);
    review.limits.extend(fired_limits);
    Ok(review)
}

/// The manifest lines the chain vouches for, and the files named by the others: the lines
/// from the one before the first broken link on are not read. A break at line N means line N
/// was inserted or edited (or does not parse at all), or line N-1 was edited (its file and hash
/// swapped together, which only line N's link catches), and every later line links back to
/// that unverified line. Verify names only the manifests for such a break, not the files, so
/// without this a forged manifest line would have its (attacker-written) file read as
/// evidence, and a line edited into garbage would leave no review at all.
fn anchored_prefix<'a>(manifests: &'a [u8], v: &VerifyReport) -> (&'a [u8], Vec<String>) {
    let first_break = v
        .problems
        .iter()
        .filter(|p| p.class == ProblemClass::BrokenLink && p.file == MANIFESTS)
        .filter_map(|p| p.row)
        .min();
    let Some(first_break) = first_break else {
        return (manifests, Vec::new());
    };
    // Lines are numbered from 1, as verify numbers them; keep lines 1..=N-2.
    let keep = usize::try_from(first_break.saturating_sub(2)).unwrap_or(usize::MAX);
    let mut end = 0;
    let mut unanchored = Vec::new();
    for (i, line) in manifests.split_inclusive(|b| *b == b'\n').enumerate() {
        if i < keep {
            end += line.len();
        } else if let Ok(m) = serde_json::from_slice::<serde_json::Value>(line)
            && let Some(path) = m["path"].as_str()
        {
            unanchored.push(path.to_owned());
        }
    }
    (&manifests[..end], unanchored)
}

fn facts(v: &VerifyReport) -> ArchiveFacts {
    let signature = serde_json::to_value(&v.signature)
        .ok()
        .and_then(|s| s.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut problems: Vec<String> = v
        .problems
        .iter()
        .map(|p| {
            let at = p.row.map(|r| format!(" row {r}")).unwrap_or_default();
            format!("{} in {}{at}: {}", p.class.as_str(), p.file, p.detail)
        })
        .collect();
    problems.extend(v.unsigned.iter().map(|s| {
        format!(
            "manifest lines {}..={} are not covered by a valid signature ({} file(s)): {}",
            s.first_line,
            s.last_line,
            s.files.len(),
            s.why
        )
    }));
    problems.extend(
        v.inconclusive
            .iter()
            .map(|why| format!("could not conclude: {why}")),
    );
    // The first problem is the one that matters; a thousand altered files must not make the
    // page a thousand lines of them.
    if problems.len() > MAX_ITEMS {
        let more = problems.len() - MAX_ITEMS;
        problems.truncate(MAX_ITEMS);
        problems.push(format!(
            "and {more} more problems (secpipe verify lists them)"
        ));
    }
    ArchiveFacts {
        id: v.archive.clone(),
        head: v.head.clone(),
        manifests: v.manifests,
        verdict: v.status().into(),
        signature,
        problems,
        warnings: v.warnings.clone(),
    }
}

/// Log text cut to [`MAX_TEXT_CHARS`] characters.
fn cut(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_TEXT_CHARS {
        return Cow::Borrowed(text);
    }
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// `203.0.113.0/24` for IPv4, `2001:db8:1:2::/64` for IPv6; `None` for text that is no address.
fn prefix_of(address: &str) -> Option<String> {
    match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let n = u32::from(v4) & 0xffff_ff00;
            Some(format!("{}/24", std::net::Ipv4Addr::from(n)))
        }
        IpAddr::V6(v6) => {
            let n = u128::from(v6) & !((1u128 << 64) - 1);
            Some(format!("{}/64", std::net::Ipv6Addr::from(n)))
        }
    }
}

#[derive(Default)]
struct Seen {
    events: u64,
    failures: u64,
}
impl Weight for Seen {
    fn weight(&self) -> u64 {
        self.events
    }
}

#[derive(Default)]
struct UserSeen {
    failures: u64,
    successes: u64,
}
impl Weight for UserSeen {
    fn weight(&self) -> u64 {
        self.failures + self.successes
    }
}

#[derive(Default)]
struct ActorSeen {
    events: u64,
    records: u64,
}
impl Weight for ActorSeen {
    fn weight(&self) -> u64 {
        self.events
    }
}

#[derive(Default)]
struct HostSeen {
    lines: u64,
    errors: u64,
    last: Option<i64>,
    buckets: Vec<u32>,
}
impl Weight for HostSeen {
    fn weight(&self) -> u64 {
        self.lines
    }
}

#[derive(Default)]
struct Count(u64);
impl Weight for Count {
    fn weight(&self) -> u64 {
        self.0
    }
}

/// One pass over the events of a period. The pass over the period itself tallies everything;
/// the pass over the previous period counts, and checks which keys of the first pass's top
/// lists (its `watched` sets) it sees.
struct EventPass {
    period: Period,
    main: bool,
    lines: u64,
    unparsed: u64,
    ts_inferred: u64,
    late: u64,
    kinds: Tally<Count>,
    buckets: Vec<u64>,
    sources: Tally<Seen>,
    prefixes: Tally<Seen>,
    users: Tally<UserSeen>,
    actors: Tally<ActorSeen>,
    hosts: Tally<HostSeen>,
    /// Previous pass: keys to look for, and those found.
    watched: BTreeMap<&'static str, BTreeSet<String>>,
    found: BTreeMap<&'static str, BTreeSet<String>>,
    /// The last address seen and its prefix: a flood from one address parses it once.
    last_prefix: Option<(String, Option<String>)>,
    /// The period's top lists, taken once when its pass ends (empty for the previous one).
    tops: Tops,
}

/// The top lists of a period, each row its key and the two counts the list shows, in list
/// order: sorted once, then read by the previous period's pass (which keys to look for), the
/// alerts pass (alerts per top address) and the review.
#[derive(Default)]
struct Tops {
    /// (address, events, failures)
    sources: Vec<(String, u64, u64)>,
    /// (prefix, events, failures)
    prefixes: Vec<(String, u64, u64)>,
    /// (user, failures, successes)
    users: Vec<(String, u64, u64)>,
    /// (actor, events, records)
    actors: Vec<(String, u64, u64)>,
}

/// The first [`TOP_N`] of `rows`, already in list order, with the two counts `counts` shows.
fn first_rows<S>(
    rows: Vec<(&str, &S)>,
    counts: impl Fn(&S) -> (u64, u64),
) -> Vec<(String, u64, u64)> {
    rows.into_iter()
        .take(TOP_N)
        .map(|(key, s)| {
            let (a, b) = counts(s);
            (key.to_owned(), a, b)
        })
        .collect()
}

impl EventPass {
    fn new(period: &Period, main: bool) -> EventPass {
        let cap = |c: usize| if main { c } else { 1 };
        EventPass {
            period: *period,
            main,
            lines: 0,
            unparsed: 0,
            ts_inferred: 0,
            late: 0,
            kinds: Tally::with_cap(NAME_CAP),
            buckets: vec![0; if main { period.buckets() } else { 0 }],
            sources: Tally::with_cap(cap(KEY_CAP)),
            prefixes: Tally::with_cap(cap(KEY_CAP)),
            users: Tally::with_cap(cap(KEY_CAP)),
            actors: Tally::with_cap(cap(KEY_CAP)),
            // The previous period's hosts matter too (a host silent all of this period).
            hosts: Tally::with_cap(HOST_CAP),
            watched: BTreeMap::new(),
            found: BTreeMap::new(),
            last_prefix: None,
            tops: Tops::default(),
        }
    }

    /// Watch for the keys of `main`'s top lists.
    fn watch(&mut self, main: &EventPass) {
        let keys = |rows: &[(String, u64, u64)]| rows.iter().map(|r| r.0.clone()).collect();
        self.watched.insert("sources", keys(&main.tops.sources));
        self.watched.insert("prefixes", keys(&main.tops.prefixes));
        self.watched.insert("users", keys(&main.tops.users));
        self.watched.insert("actors", keys(&main.tops.actors));
    }

    fn run(&mut self, files: &ArchiveFiles, range: TimeRange, lateness: i64) -> Vec<String> {
        let mut highest = i64::MIN;
        let unreadable = read::events(files, range, |row| {
            let late = row.ts < highest.saturating_sub(lateness);
            // An undated row carries the time it was received, which says nothing of the
            // stream's progress (the run's watermark ignores it too): one such line in an
            // old log would make every row after it late.
            if !row.ts_inferred {
                highest = highest.max(row.ts);
            }
            if range.contains(row.ts) {
                self.add(row, late);
            }
        });
        if self.main {
            self.tops = self.tops();
        }
        unreadable
    }

    fn add(&mut self, row: &EventRow, late: bool) {
        self.lines += 1;
        self.late += u64::from(late);
        self.ts_inferred += u64::from(row.ts_inferred);
        self.unparsed += u64::from(row.kind == "unparsed");
        self.kinds.entry(&cut(row.kind)).0 += 1;
        let failure = u64::from(row.kind == "auth.failure");
        if let Some(host) = row.host {
            let h = self.hosts.entry(&cut(host));
            h.lines += 1;
            h.errors += u64::from(row.kind == "log.error");
            h.last = Some(h.last.map_or(row.ts, |l| l.max(row.ts)));
            if let Some(b) = self.period.bucket_of(row.ts).filter(|_| self.main) {
                if h.buckets.is_empty() {
                    h.buckets = vec![0; self.period.buckets()];
                }
                if let Some(n) = h.buckets.get_mut(b) {
                    *n = n.saturating_add(1);
                }
            }
        }
        if let Some(b) = self.period.bucket_of(row.ts).filter(|_| self.main)
            && let Some(n) = self.buckets.get_mut(b)
        {
            *n += 1;
        }
        if !self.main {
            self.note_seen(row);
            return;
        }
        if let Some(ip) = row.src_ip {
            let ip = cut(ip);
            let s = self.sources.entry(&ip);
            s.events += 1;
            s.failures += failure;
            if let Some(prefix) = self.prefix_of(&ip) {
                let p = self.prefixes.entry(&prefix);
                p.events += 1;
                p.failures += failure;
            }
        }
        if let Some(user) = row.user {
            let success = u64::from(row.kind == "auth.success");
            if failure + success > 0 {
                let u = self.users.entry(&cut(user));
                u.failures += failure;
                u.successes += success;
            }
        }
        if let Some(actor) = row.actor {
            let a = self.actors.entry(&cut(actor));
            a.events += 1;
            // The application chooses `count`: saturate, "at least this many".
            let records = row.count.map_or(1, |c| u64::try_from(c).unwrap_or(0));
            a.records = a.records.saturating_add(records);
        }
    }

    /// The prefix of `ip`, remembered for the next row from the same address.
    fn prefix_of(&mut self, ip: &str) -> Option<String> {
        if let Some((last, prefix)) = &self.last_prefix
            && last == ip
        {
            return prefix.clone();
        }
        let prefix = prefix_of(ip);
        self.last_prefix = Some((ip.to_owned(), prefix.clone()));
        prefix
    }

    /// The previous period: which watched keys occur.
    fn note_seen(&mut self, row: &EventRow) {
        let mut look = |list: &'static str, key: Option<String>| {
            if let Some(key) = key
                && self.watched.get(list).is_some_and(|w| w.contains(&key))
            {
                self.found.entry(list).or_default().insert(key);
            }
        };
        let ip = row.src_ip.map(|ip| cut(ip).into_owned());
        look("prefixes", ip.as_deref().and_then(prefix_of));
        look("sources", ip);
        if matches!(row.kind, "auth.failure" | "auth.success") {
            look("users", row.user.map(|u| cut(u).into_owned()));
        }
        look("actors", row.actor.map(|a| cut(a).into_owned()));
    }

    fn was_seen(&self, list: &str, key: &str) -> bool {
        self.found.get(list).is_some_and(|f| f.contains(key))
    }

    /// The top lists of the tallies as they stand.
    fn tops(&self) -> Tops {
        // Most failures first: these are the targeted users.
        let mut users: Vec<_> = self.users.iter().collect();
        users.sort_unstable_by(|a, b| {
            (std::cmp::Reverse((a.1.failures, a.1.successes)), a.0)
                .cmp(&(std::cmp::Reverse((b.1.failures, b.1.successes)), b.0))
        });
        Tops {
            sources: first_rows(self.sources.sorted(), |s| (s.events, s.failures)),
            prefixes: first_rows(self.prefixes.sorted(), |s| (s.events, s.failures)),
            users: first_rows(users, |s| (s.failures, s.successes)),
            actors: first_rows(self.actors.sorted(), |s| (s.events, s.records)),
        }
    }

    /// Tallies that hit their cap (the hosts of the previous period count: silent hosts come
    /// from them).
    fn limits(&self, before: &EventPass) -> Vec<String> {
        [
            self.sources.limit_note("source addresses"),
            self.prefixes.limit_note("prefixes"),
            self.users.limit_note("users"),
            self.actors.limit_note("actors"),
            // The heavier error of the two periods' host tallies.
            if self.hosts.max_error() >= before.hosts.max_error() {
                self.hosts
                    .limit_note("hosts")
                    .or(before.hosts.limit_note("hosts"))
            } else {
                before.hosts.limit_note("hosts")
            },
            self.kinds.limit_note("event kinds"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The event parts of the review: counts, timeline lines, top lists, hosts.
    fn fill(&self, before: &EventPass, period: &Period, review: &mut Review) {
        let c = |now: u64, previous: u64| Compared { now, previous };
        let per_mille = (self.unparsed * 1000).checked_div(self.lines).unwrap_or(0);
        let mut kinds: BTreeMap<String, Compared> = BTreeMap::new();
        for (k, n) in self.kinds.iter() {
            kinds.entry(k.to_string()).or_default().now = n.0;
        }
        for (k, n) in before.kinds.iter() {
            kinds.entry(k.to_string()).or_default().previous = n.0;
        }
        let mut kinds: Vec<KindCount> = kinds
            .into_iter()
            .map(|(kind, count)| KindCount { kind, count })
            .collect();
        kinds.sort_by(|a, b| {
            (
                std::cmp::Reverse(a.count.now),
                std::cmp::Reverse(a.count.previous),
                &a.kind,
            )
                .cmp(&(
                    std::cmp::Reverse(b.count.now),
                    std::cmp::Reverse(b.count.previous),
                    &b.kind,
                ))
        });
        review.counts = Counts {
            lines: c(self.lines, before.lines),
            kinds,
            unparsed: c(self.unparsed, before.unparsed),
            unparsed_per_mille: per_mille,
            ts_inferred: c(self.ts_inferred, before.ts_inferred),
            late: c(self.late, before.late),
        };
        let n = period.buckets();
        review.timeline = Timeline {
            starts: (0..n)
                .map(|i| format_time(period.bucket_start(i)))
                .collect(),
            lines: self.buckets.clone(),
            critical: vec![0; n],
            high: vec![0; n],
            medium: vec![0; n],
            low: vec![0; n],
        };
        review.sources = top_list(
            &self.sources,
            self.tops
                .sources
                .iter()
                .cloned()
                .map(|(address, events, failures)| SourceRow {
                    new: !before.was_seen("sources", &address),
                    address,
                    events,
                    failures,
                    alerts: 0,
                    banned: false,
                })
                .collect(),
        );
        review.prefixes = top_list(
            &self.prefixes,
            self.tops
                .prefixes
                .iter()
                .cloned()
                .map(|(prefix, events, failures)| PrefixRow {
                    new: !before.was_seen("prefixes", &prefix),
                    prefix,
                    events,
                    failures,
                })
                .collect(),
        );
        review.users = top_list(
            &self.users,
            self.tops
                .users
                .iter()
                .cloned()
                .map(|(user, failures, successes)| UserRow {
                    new: !before.was_seen("users", &user),
                    user,
                    failures,
                    successes,
                })
                .collect(),
        );
        review.actors = top_list(
            &self.actors,
            self.tops
                .actors
                .iter()
                .cloned()
                .map(|(actor, events, records)| ActorRow {
                    new: !before.was_seen("actors", &actor),
                    actor,
                    events,
                    records,
                })
                .collect(),
        );
        let mut rows: Vec<HostRow> = self
            .hosts
            .sorted()
            .into_iter()
            .take(MAX_HOST_ROWS)
            .map(|(host, h)| HostRow {
                host: host.to_string(),
                lines: h.lines,
                errors: h.errors,
                last_event: h.last.map(format_time),
                sparkline: if h.buckets.is_empty() {
                    vec![0; n]
                } else {
                    h.buckets.iter().map(|&b| u64::from(b)).collect()
                },
            })
            .collect();
        rows.truncate(MAX_HOST_ROWS);
        // Silent: last event (in either period) a day or more before the end.
        let mut seen: BTreeMap<&str, (Option<i64>, u64)> = BTreeMap::new();
        for (host, h) in before.hosts.iter().chain(self.hosts.iter()) {
            let e = seen.entry(host).or_insert((None, 0));
            e.0 = e.0.max(h.last);
            e.1 += h.lines;
        }
        let silent = seen
            .into_iter()
            .filter(|(_, (l, _))| l.is_none_or(|l| l < period.to - SILENT_AFTER))
            .map(|(host, (l, lines))| SilentHost {
                host: host.to_string(),
                last_event: l.map(format_time),
                lines,
                silence_alerts: 0,
            })
            .collect();
        review.hosts = Hosts {
            rows,
            silent,
            distinct: self.hosts.distinct(),
            exact: self.hosts.is_exact() && before.hosts.is_exact(),
        };
    }
}

/// A top list of `rows` taken from `tally`, with what the tally knows of its own accuracy.
fn top_list<S: Default + Weight, R>(tally: &Tally<S>, rows: Vec<R>) -> TopList<R> {
    TopList {
        rows,
        distinct: tally.distinct(),
        exact: tally.is_exact(),
        max_error: tally.max_error(),
    }
}

/// The bans on record in the period and the one before: matched to the alerts they answer.
struct BanLedger {
    /// Ban time by the id of the alert that caused it (the earliest).
    by_cause: hashbrown::HashMap<String, i64, foldhash::fast::RandomState>,
    /// (since, until) of each ban by the address or prefix banned.
    by_address: hashbrown::HashMap<String, Vec<(i64, i64)>, foldhash::fast::RandomState>,
    kept: usize,
    issued: Compared,
    simulated: u64,
    lifted: u64,
    overflows: u64,
    rows: Vec<BanRow>,
    addresses: BTreeSet<String>,
}

impl BanLedger {
    fn read(alerts: &ArchiveFiles, period: &Period, unreadable: &mut Vec<String>) -> BanLedger {
        let mut ledger = BanLedger {
            by_cause: Default::default(),
            by_address: Default::default(),
            kept: 0,
            issued: Compared::default(),
            simulated: 0,
            lifted: 0,
            overflows: 0,
            rows: Vec::new(),
            addresses: BTreeSet::new(),
        };
        let range = TimeRange {
            from: Some(period.previous_from()),
            to: Some(period.to),
        };
        unreadable.extend(read::alerts(alerts, range, |a| {
            if !range.contains(a.last_seen) {
                return;
            }
            let now = period.contains(a.last_seen);
            match a.rule {
                "secpipe.ban" => ledger.add_ban(a, now),
                "secpipe.unban" if now => ledger.lifted += 1,
                "secpipe.block_overflow" if now => ledger.overflows += 1,
                _ => {}
            }
        }));
        ledger
    }

    /// A ban issued in the period (`now`) or the one before: both answer the alerts they
    /// cover (a ban issued yesterday and still in force answers today's alert on its key);
    /// only those of the period are counted and listed.
    fn add_ban(&mut self, a: &AlertRow, now: bool) {
        let action: serde_json::Value = serde_json::from_str(a.action).unwrap_or_default();
        let note = |name: &str| action[name].as_str().unwrap_or_default().to_owned();
        let mode = note("mode");
        // Only a ban that was applied answers an alert or marks an address banned: a
        // simulated one ("would ban") blocked nothing, and an incident review must not read
        // it as a response.
        if mode == "enforce" && self.kept < BAN_CAP {
            self.kept += 1;
            let cause = note("cause");
            let since = a.window_start;
            let e = self.by_cause.entry(cause).or_insert(since);
            *e = (*e).min(since);
            self.by_address
                .entry(a.key_value.to_owned())
                .or_default()
                .push((since, a.window_end));
            if now && self.addresses.len() < BAN_CAP {
                self.addresses.insert(cut(a.key_value).into_owned());
            }
        }
        if !now {
            self.issued.previous += 1;
            return;
        }
        self.issued.now += 1;
        self.simulated += u64::from(mode == "simulate");
        if self.rows.len() < MAX_ITEMS {
            self.rows.push(BanRow {
                address: cut(a.key_value).into_owned(),
                since: format_time(a.window_start),
                until: format_time(a.window_end),
                mode,
                cause_rule: cut(&note("cause_rule")).into_owned(),
                nth: u64::try_from(a.count).unwrap_or(0),
            });
        }
    }

    /// When the alert `id` keyed on `key`, raised at `raised`, was answered: an enforced ban it
    /// caused, or an enforced ban of its key in force at some time between its raise and
    /// `deadline`.
    fn answered(&self, id: &str, key: &str, raised: i64, deadline: i64) -> Option<i64> {
        let caused = self.by_cause.get(id).map(|&t| t.max(raised));
        let covering = self.by_address.get(key).and_then(|bans| {
            bans.iter()
                .filter(|&&(since, until)| since <= deadline && until >= raised)
                .map(|&(since, _)| since.max(raised))
                .min()
        });
        caused.into_iter().chain(covering).min()
    }
}

/// Per-rule numbers.
#[derive(Default)]
struct RuleSeen {
    severity: Option<Severity>,
    priority: String,
    now: u64,
    previous: u64,
    keys: BTreeSet<String>,
    keys_over: bool,
    first: Option<i64>,
    last: Option<i64>,
}

/// When an alert was decided, in event time: the event that crossed its threshold
/// (`last_seen`), or for a silence the end of the quiet window (`window_end`, after the host's
/// last line). A count rule's window ends at `last_seen`, so the later of the two is right
/// for both.
fn decided_at(a: &AlertRow) -> i64 {
    a.last_seen.max(a.window_end)
}

/// One pass over the alerts of both periods.
struct AlertPass<'a> {
    period: Period,
    bans: &'a BanLedger,
    totals: [Compared; 4],
    buckets: [Vec<u64>; 4],
    rules: BTreeMap<String, RuleSeen>,
    priorities: BTreeMap<String, PriorityRow>,
    items: Vec<(ItemOrder, ResponseItem)>,
    items_total: u64,
    /// Alerts per address/prefix on the top sources list.
    per_source: BTreeMap<String, u64>,
    /// `log.silence` alerts per host (host names are log text: a tally with a cap).
    silence: Tally<Count>,
    /// Alerts of rules past [`NAME_CAP`] distinct rules: in the totals, not in a rule row.
    rules_dropped: u64,
}

/// Not met first (missed, late, open), then priority, then raise time, then id.
type ItemOrder = (u8, String, i64, String);

impl<'a> AlertPass<'a> {
    fn new(period: &Period, bans: &'a BanLedger, events: &EventPass) -> AlertPass<'a> {
        let mut per_source = BTreeMap::new();
        for (address, _, _) in &events.tops.sources {
            if let Some(p) = prefix_of(address).filter(|p| p.ends_with("/64")) {
                per_source.insert(p, 0);
            }
            per_source.insert(address.clone(), 0);
        }
        let n = period.buckets();
        AlertPass {
            period: *period,
            bans,
            totals: [Compared::default(); 4],
            buckets: [vec![0; n], vec![0; n], vec![0; n], vec![0; n]],
            rules: BTreeMap::new(),
            priorities: BTreeMap::new(),
            items: Vec::new(),
            items_total: 0,
            per_source,
            silence: Tally::with_cap(HOST_CAP),
            rules_dropped: 0,
        }
    }

    fn add(&mut self, a: &AlertRow) {
        // Bans and unbans are responses, shown apart.
        if matches!(a.rule, "secpipe.ban" | "secpipe.unban") {
            return;
        }
        let decided = decided_at(a);
        let now = self.period.contains(decided);
        let previous = !now && decided >= self.period.previous_from() && decided < self.period.from;
        if !now && !previous {
            return;
        }
        let severity = Severity::parse(a.severity);
        let slot = match severity {
            Some(Severity::Critical) => 0,
            Some(Severity::High) => 1,
            Some(Severity::Medium) => 2,
            _ => 3,
        };
        if previous {
            self.totals[slot].previous += 1;
        } else {
            self.totals[slot].now += 1;
            if let Some(b) = self.period.bucket_of(decided)
                && let Some(n) = self.buckets[slot].get_mut(b)
            {
                *n += 1;
            }
            if let Some(n) = self.per_source.get_mut(a.key_value) {
                *n += 1;
            }
            if a.rule == "log.silence" {
                self.silence.entry(&cut(a.key_value)).0 += 1;
            }
            self.respond(a, severity);
        }
        let name = cut(a.rule);
        if !self.rules.contains_key(name.as_ref()) && self.rules.len() >= NAME_CAP {
            self.rules_dropped += 1;
            return;
        }
        let rule = self.rules.entry(name.into_owned()).or_default();
        if previous {
            rule.previous += 1;
            return;
        }
        rule.now += 1;
        rule.severity = rule.severity.max(severity);
        if rule.priority.is_empty() || severity >= rule.severity {
            rule.priority = cut(a.priority).into_owned();
        }
        if rule.keys.len() < MAX_KEYS_PER_RULE as usize {
            rule.keys.insert(cut(a.key_value).into_owned());
        } else if !rule.keys.contains(a.key_value) {
            rule.keys_over = true;
        }
        rule.first = Some(rule.first.map_or(decided, |f| f.min(decided)));
        rule.last = Some(rule.last.map_or(decided, |l| l.max(decided)));
    }

    /// The caps this pass hit, as the review's `limits` say them.
    fn limits(&self, bans: &BanLedger) -> Vec<String> {
        let mut limits = Vec::new();
        if self.rules_dropped > 0 {
            limits.push(format!(
                "rules: more than {NAME_CAP} distinct rules; {} alerts of the others are in the totals but in no rule row",
                self.rules_dropped
            ));
        }
        limits.extend(self.silence.limit_note("hosts named by silence alerts"));
        if bans.kept >= BAN_CAP {
            limits.push(format!(
                "bans: more than {BAN_CAP} applied bans; later ones answer no alert here"
            ));
        }
        limits
    }

    /// The response item of a P0–P3 alert.
    fn respond(&mut self, a: &AlertRow, severity: Option<Severity>) {
        let priority = match a.priority {
            p @ ("P0" | "P1" | "P2" | "P3") => p,
            _ => return,
        };
        let within = crate::duration::parse(a.respond_within)
            .ok()
            .or_else(|| severity.and_then(|s| crate::duration::parse(s.respond_within()).ok()))
            .unwrap_or(0);
        let raised = decided_at(a);
        let deadline = raised.saturating_add(within);
        let answered = self.bans.answered(a.id, a.key_value, raised, deadline);
        let status = match answered {
            Some(t) if t <= deadline => "met",
            Some(_) => "late",
            None if deadline < self.period.to => "missed",
            None => "open",
        };
        let row = self
            .priorities
            .entry(priority.to_owned())
            .or_insert_with(|| PriorityRow {
                priority: priority.to_owned(),
                ..PriorityRow::default()
            });
        row.alerts += 1;
        match status {
            "met" => row.met += 1,
            "open" => row.open += 1,
            _ => row.missed += 1,
        }
        self.items_total += 1;
        let rank = match status {
            "missed" => 0,
            "late" => 1,
            "open" => 2,
            _ => 3,
        };
        let order = (rank, priority.to_owned(), raised, a.id.to_owned());
        // Keep the first MAX_ITEMS in order without holding every alert.
        if self.items.len() >= MAX_ITEMS && self.items.last().is_some_and(|l| order >= l.0) {
            return;
        }
        self.items.push((
            order,
            ResponseItem {
                id: cut(a.id).into_owned(),
                rule: cut(a.rule).into_owned(),
                severity: cut(a.severity).into_owned(),
                priority: priority.to_owned(),
                key_field: cut(a.key_field).into_owned(),
                key: cut(a.key_value).into_owned(),
                raised: format_time(raised),
                deadline: format_time(deadline),
                status: status.to_owned(),
                answered: answered.map(format_time),
                summary: cut(a.summary).into_owned(),
            },
        ));
        // Sorted as soon as the list is full, so `last()` above is the worst item kept (an
        // unsorted full list let a missed item pushed last turn away every later one).
        if self.items.len() >= MAX_ITEMS {
            self.items.sort_by(|a, b| a.0.cmp(&b.0));
            self.items.truncate(MAX_ITEMS);
        }
    }

    fn fill(mut self, events: &EventPass, bans: &BanLedger, review: &mut Review) {
        let [critical, high, medium, low] = self.totals;
        let sum = |f: fn(&Compared) -> u64| self.totals.iter().map(f).sum();
        review.alerts = AlertTotals {
            total: Compared {
                now: sum(|c| c.now),
                previous: sum(|c| c.previous),
            },
            critical,
            high,
            medium,
            low,
        };
        let [c, h, m, l] = std::mem::take(&mut self.buckets);
        review.timeline.critical = c;
        review.timeline.high = h;
        review.timeline.medium = m;
        review.timeline.low = l;
        let mut rules: Vec<RuleRow> = self
            .rules
            .iter()
            .map(|(rule, r)| RuleRow {
                rule: rule.clone(),
                severity: r.severity.map(Severity::as_str).unwrap_or("").into(),
                priority: r.priority.clone(),
                alerts: Compared {
                    now: r.now,
                    previous: r.previous,
                },
                keys: r.keys.len() as u64 + u64::from(r.keys_over),
                first: r.first.map(format_time),
                last: r.last.map(format_time),
            })
            .collect();
        rules.sort_by(|a, b| {
            (
                std::cmp::Reverse(a.alerts.now),
                std::cmp::Reverse(a.alerts.previous),
                &a.rule,
            )
                .cmp(&(
                    std::cmp::Reverse(b.alerts.now),
                    std::cmp::Reverse(b.alerts.previous),
                    &b.rule,
                ))
        });
        review.rules = rules;
        self.items.sort_by(|a, b| a.0.cmp(&b.0));
        review.response = Response {
            priorities: ["P0", "P1", "P2", "P3"]
                .iter()
                .map(|p| {
                    self.priorities.remove(*p).unwrap_or_else(|| PriorityRow {
                        priority: (*p).into(),
                        ..PriorityRow::default()
                    })
                })
                .collect(),
            items: self.items.into_iter().map(|(_, item)| item).collect(),
            items_total: self.items_total,
        };
        for row in &mut review.sources.rows {
            let prefix = prefix_of(&row.address).filter(|p| p.ends_with("/64"));
            let keys = std::iter::once(row.address.clone()).chain(prefix);
            for key in keys {
                row.alerts += self.per_source.get(&key).copied().unwrap_or(0);
                row.banned |= bans.addresses.contains(&key);
            }
        }
        let mut listed = BTreeSet::new();
        for host in &mut review.hosts.silent {
            host.silence_alerts = self.silence.get(&host.host).map_or(0, |n| n.0);
            listed.insert(host.host.clone());
        }
        // A host a silence alert names that logged again later is listed too.
        for (host, n) in self.silence.sorted() {
            if listed.contains(host) {
                continue;
            }
            let h = events.hosts.get(host);
            review.hosts.silent.push(SilentHost {
                last_event: h.and_then(|h| h.last).map(format_time),
                lines: h.map_or(0, |h| h.lines),
                host: host.to_owned(),
                silence_alerts: n.0,
            });
        }
        // Alerted first, then the busiest: a flood of one-line forged host names, each
        // "silent" the next day, sorts after every host that really logged.
        review.hosts.silent.sort_by(|a, b| {
            (
                std::cmp::Reverse(a.silence_alerts),
                std::cmp::Reverse(a.lines),
                &a.host,
            )
                .cmp(&(
                    std::cmp::Reverse(b.silence_alerts),
                    std::cmp::Reverse(b.lines),
                    &b.host,
                ))
        });
        review.hosts.silent.truncate(MAX_ITEMS);
        review.bans = Bans {
            issued: bans.issued,
            simulated: bans.simulated,
            lifted: bans.lifted,
            overflows: bans.overflows,
            rows: bans.rows.clone(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_slash_24_and_slash_64() {
        assert_eq!(prefix_of("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            prefix_of("2001:db8:1:2:aaaa::9").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(prefix_of("not an address"), None);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT_CHARS + 5);
        let c = cut(&long);
        assert_eq!(c.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(c.ends_with('…'));
        assert_eq!(cut("short"), "short");
    }
}

#[cfg(test)]
mod response_item_tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn ledger() -> BanLedger {
        BanLedger {
            by_cause: Default::default(),
            by_address: Default::default(),
            kept: 0,
            issued: Compared::default(),
            simulated: 0,
            lifted: 0,
            overflows: 0,
            rows: Vec::new(),
            addresses: BTreeSet::new(),
        }
    }

    fn alert<'a>(id: &'a str, key: &'a str, at: i64) -> AlertRow<'a> {
        AlertRow {
            id,
            rule: "ssh.bruteforce",
            severity: "high",
            priority: "P1",
            respond_within: "1h",
            key_field: "src_ip",
            key_value: key,
            window_start: at,
            window_end: at,
            last_seen: at,
            count: 5,
            summary: "",
            action: "{}",
        }
    }

    /// A ban issued late in the previous period and still in force when today's alert on
    /// the same address is raised answers it (the alert is met, not missed). Before, only
    /// bans issued in the period were matched.
    #[test]
    fn a_ban_from_the_previous_period_still_in_force_answers_the_alert() {
        let period = Period::resolve(Some(24 * H), Some(48 * H), Length::Day, None).unwrap();
        let mut bans = ledger();
        let ban = AlertRow {
            rule: "secpipe.ban",
            window_start: 23 * H,
            window_end: 26 * H,
            last_seen: 23 * H,
            action: r#"{"mode":"enforce","cause":"a-yesterday"}"#,
            ..alert("b1", "203.0.113.7", 23 * H)
        };
        bans.add_ban(&ban, false);
        assert_eq!(bans.issued.previous, 1);
        assert!(
            bans.rows.is_empty(),
            "listed only when issued in the period"
        );
        let events = EventPass::new(&period, true);
        let mut pass = AlertPass::new(&period, &bans, &events);
        pass.add(&alert("a-today", "203.0.113.7", 25 * H));
        let mut review = Review::default();
        pass.fill(&events, &bans, &mut review);
        assert_eq!(review.response.items[0].status, "met");
    }

    /// A forged alerts table with more rules than the cap: every alert is still in the
    /// totals, the rows stop at the cap, and the review says how many were left out.
    #[test]
    fn alerts_of_rules_past_the_cap_are_counted_and_said() {
        let period = Period::resolve(Some(0), Some(24 * H), Length::Day, None).unwrap();
        let bans = ledger();
        let events = EventPass::new(&period, true);
        let mut pass = AlertPass::new(&period, &bans, &events);
        let names: Vec<String> = (0..=NAME_CAP).map(|i| format!("forged.{i}")).collect();
        for name in &names {
            pass.add(&AlertRow {
                rule: name,
                ..alert("x", "203.0.113.7", H)
            });
        }
        let limits = pass.limits(&bans);
        let mut review = Review::default();
        pass.fill(&events, &bans, &mut review);
        assert_eq!(review.alerts.total.now, NAME_CAP as u64 + 1);
        assert_eq!(review.rules.len(), NAME_CAP);
        assert!(
            limits
                .iter()
                .any(|l| l.starts_with("rules:") && l.contains(" 1 alerts")),
            "{limits:?}"
        );
    }

    /// `--block simulate` decided a ban but applied none: it is listed under bans, and the
    /// alert it would have answered is not met.
    #[test]
    fn a_simulated_ban_answers_nothing() {
        let period = Period::resolve(Some(0), Some(24 * H), Length::Day, None).unwrap();
        let mut bans = ledger();
        let ban = AlertRow {
            rule: "secpipe.ban",
            window_start: 2 * H,
            window_end: 3 * H,
            last_seen: 2 * H,
            action: r#"{"mode":"simulate","cause":"a1"}"#,
            ..alert("b1", "203.0.113.7", 2 * H)
        };
        bans.add_ban(&ban, true);
        assert_eq!(
            (bans.issued.now, bans.simulated, bans.rows.len()),
            (1, 1, 1)
        );
        let events = EventPass::new(&period, true);
        let mut pass = AlertPass::new(&period, &bans, &events);
        pass.add(&alert("a1", "203.0.113.7", 2 * H));
        let mut review = Review::default();
        pass.fill(&events, &bans, &mut review);
        assert_eq!(review.response.items[0].status, "missed");
        assert_eq!(review.response.items[0].answered, None);
    }

    /// 99 alerts answered in time, then one missed, then more missed ones: the list of at
    /// most MAX_ITEMS puts every missed item before any met one. Before the fix the check
    /// against "the last kept item" looked at an unsorted list when it had just reached
    /// MAX_ITEMS (the missed one, pushed last), so every later missed item was dropped and
    /// met items filled the list.
    #[test]
    fn missed_items_are_never_crowded_out_by_met_ones() {
        let period = Period::resolve(Some(0), Some(24 * H), Length::Day, None).unwrap();
        let mut bans = ledger();
        // Keys `met-N` are banned from the start: their alerts are met.
        for i in 0..99 {
            bans.by_address
                .insert(format!("met-{i}"), vec![(0, 24 * H)]);
        }
        let events = EventPass::new(&period, true);
        let mut pass = AlertPass::new(&period, &bans, &events);
        let ids: Vec<String> = (0..120).map(|i| format!("a{i:03}")).collect();
        let keys: Vec<String> = (0..99)
            .map(|i| format!("met-{i}"))
            .chain((99..120).map(|i| format!("missed-{i}")))
            .collect();
        for (i, (id, key)) in ids.iter().zip(&keys).enumerate() {
            pass.add(&alert(id, key, H + i as i64));
        }
        let mut review = Review::default();
        pass.fill(&events, &bans, &mut review);
        assert_eq!(review.response.items_total, 120);
        assert_eq!(review.response.items.len(), MAX_ITEMS);
        let missed = review
            .response
            .items
            .iter()
            .filter(|i| i.status == "missed")
            .count();
        assert_eq!(missed, 21, "every missed item is listed");
        assert!(
            review.response.items[..21]
                .iter()
                .all(|i| i.status == "missed")
        );
    }
}
