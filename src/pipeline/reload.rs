//! Reloading rules and grammars on `SIGHUP` without stopping the run (`secpipe run`).
//!
//! # Order
//!
//! 1. The signal handler ([`ReloadRequests::listen`]) only counts the request: it runs on the
//!    I/O runtime and must not touch the pipeline.
//! 2. The ordered stage, between two deliveries (a batch or a one-second idle tick of live
//!    input), sees the count move ([`Reloader::due`]) and calls [`Reloader::prepare`]: it
//!    reads `--config` and `--grammars` again and builds the new rules and classifier
//!    *beside* the old ones.
//! 3. Anything wrong (a syntax error, an unknown key, a bad grammar, an unreadable file) and
//!    nothing changes: the run goes on with the old rules and grammars, and stderr says why,
//!    with the file, line and column.
//! 4. Otherwise ([`Reloader::apply`]) the classifier is published ([`ClassifierSwitch`]) and
//!    the detector swaps its rules ([`crate::detect::Detector::reload`]: unchanged rules keep
//!    their windows, cooldowns, silence deadlines; changed rules start afresh; sessions and
//!    held PAM attempts stay).
//!
//! # Where the switch falls in the stream
//!
//! - Rules: every event the detector *processes* after the reload, which includes the events
//!   still waiting in the reorder buffer (they are judged when the watermark releases them).
//!   Events processed before it were judged by the old rules and stay judged.
//! - Grammars: the classify thread picks up the new classifier before its next batch (one
//!   atomic load per batch, nothing per line). Batches already classified and waiting in the
//!   channels before the ordered stage (at most a few) keep their old classification.
//!
//! # What a reload does not change
//!
//! Everything in the config file outside its rules (`[rules.*]`, `[options]`): the `[run]`
//! table (sources, listeners, archive, state, lateness …), `[block]` and `[[alerts]]`. Applying
//! half of them would leave a run matching neither file; when they differ from what the run
//! started with, stderr says "restart to apply" and names them, and the rest is reloaded.
//! Flags on the command line are not re-read at all. With `--emit`, rules are not reloaded
//! either: the bus partitions events by the rules' keys, which the workers were started with.
//!
//! # Limits
//!
//! Requests are merged: however many `SIGHUP`s arrive, a reload starts at most once per
//! [`MIN_RELOAD_GAP`] and a burst costs one reload, so a flood of signals cannot keep the
//! ordered stage busy compiling. The old rules' state is freed during the reload (removed and
//! changed rules), and the old classifier once the classify thread has taken the new one: memory
//! holds two classifiers only for the length of one batch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::classify::{Classifier, TrustedProxies};
use crate::detect::{RuleChanges, RuleSet};

/// Reloads closer together than this are merged into one.
pub const MIN_RELOAD_GAP: Duration = Duration::from_secs(1);

/// Config tables a reload applies; every other top-level key needs a restart.
const RELOADABLE_TABLES: [&str; 2] = ["rules", "options"];

/// Ignore `SIGHUP` until [`ReloadRequests::listen`] installs the handler that counts it.
/// Called first thing by `run`: before the handler exists (reading the config, compiling
/// grammars, opening the archive) `SIGHUP`'s default action would end the process, an end
/// systemd counts as clean, so `Restart=on-failure` would leave the service down. A request
/// that early is dropped: the rules and grammars are being read right then anyway. The handler
/// replaces this disposition, so programs the run starts later do not inherit it.
pub fn ignore_hangups_while_starting() {
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code of ours in a handler;
    // nothing else of this process has set SIGHUP's disposition yet.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// `SIGHUP`s received so far, counted by the signal handler and read by the ordered stage.
#[derive(Clone, Default)]
pub struct ReloadRequests {
    received: Arc<AtomicU64>,
    /// Set by a command that reloads (`run`); other commands say that they do not.
    served: Arc<AtomicBool>,
}

impl ReloadRequests {
    /// Count every `SIGHUP` from now on, instead of letting its default action end the
    /// process. Like the stop handler, it must be installed before any input is read.
    pub fn listen(runtime: &tokio::runtime::Handle) -> std::io::Result<ReloadRequests> {
        use tokio::signal::unix::{SignalKind, signal};
        let requests = ReloadRequests::default();
        let _guard = runtime.enter();
        // Registered here, synchronously, so that a SIGHUP right after this returns is caught.
        let mut hangup = signal(SignalKind::hangup())?;
        let counted = requests.clone();
        runtime.spawn(async move {
            // The stream merges signals that arrive before it is polled: a flood costs a few
            // wake-ups, never a queue.
            while hangup.recv().await.is_some() {
                counted.received.fetch_add(1, Ordering::Relaxed);
                if !counted.served.load(Ordering::Relaxed) {
                    crate::report::note("SIGHUP: this command does not reload; ignored");
                }
            }
        });
        Ok(requests)
    }

    /// Requests so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// This command reloads on `SIGHUP` (so the handler stays quiet).
    pub fn serve(&self) {
        self.served.store(true, Ordering::Relaxed);
    }

    /// Count a request as a signal would (tests, and callers without signals).
    pub fn request(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}

/// The classifier the classify thread uses, replaceable while it runs: a generation number it
/// checks once per batch, and the current classifier behind a lock it takes only when that
/// number moved.
///
/// ```
/// use secpipe::classify::Classifier;
/// use secpipe::pipeline::reload::ClassifierSwitch;
/// let switch = ClassifierSwitch::new(std::sync::Arc::new(Classifier::builtin().unwrap()));
/// let mut held = switch.current();
/// let mut seen = switch.generation();
/// assert!(!switch.refresh(&mut seen, &mut held));
/// switch.publish(Classifier::builtin().unwrap());
/// assert!(switch.refresh(&mut seen, &mut held));
/// assert!(!switch.refresh(&mut seen, &mut held));
/// ```
#[derive(Clone)]
pub struct ClassifierSwitch {
    inner: Arc<SwitchInner>,
}

struct SwitchInner {
    generation: AtomicU64,
    current: Mutex<Arc<Classifier>>,
}

impl ClassifierSwitch {
    pub fn new(classifier: Arc<Classifier>) -> ClassifierSwitch {
        ClassifierSwitch {
            inner: Arc::new(SwitchInner {
                generation: AtomicU64::new(0),
                current: Mutex::new(classifier),
            }),
        }
    }

    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Arc<Classifier> {
        match self.inner.current.lock() {
            Ok(current) => current.clone(),
            // A panic while holding this lock can only have been in a clone or a store of an
            // Arc: the value is whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replace the classifier; the classify thread takes it before its next batch.
    pub fn publish(&self, classifier: Classifier) {
        let fresh = Arc::new(classifier);
        match self.inner.current.lock() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Once per batch: take the newest classifier into `held` when a new one was published
    /// since `seen`. Returns whether it did.
    pub fn refresh(&self, seen: &mut u64, held: &mut Arc<Classifier>) -> bool {
        let now = self.generation();
        if now == *seen {
            return false;
        }
        *seen = now;
        *held = self.current();
        true
    }
}

/// What a reload re-reads: the config file and the grammar directory named at start.
pub struct Reloader {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--grammars`.
    pub grammars: Option<PathBuf>,
    /// `--trusted-proxy`: a flag, not re-read, given to every new classifier.
    pub trusted_proxies: TrustedProxies,
    /// The config's tables a reload does not apply, as the run started with them.
    pub restart_only: toml::Table,
    /// The classifier the pipeline uses.
    pub switch: ClassifierSwitch,
    last: Option<Instant>,
    seen: u64,
}

/// What a reload applied.
pub struct Reloaded {
    /// `None` when the rules were not reloaded (`--emit`).
    pub rules: Option<RuleChanges>,
    /// Config tables that changed and need a restart.
    pub restart_to_apply: Vec<String>,
}

/// The rules a reload would run, checked and built, not yet applied.
pub struct Prepared {
    rules: RuleSet,
    classifier: Classifier,
    restart_to_apply: Vec<String>,
}

impl Reloader {
    pub fn new(
        config: Option<PathBuf>,
        config_text: Option<&str>,
        grammars: Option<PathBuf>,
        trusted_proxies: TrustedProxies,
        switch: ClassifierSwitch,
    ) -> Reloader {
        Reloader {
            config,
            grammars,
            trusted_proxies,
            restart_only: config_text.map(restart_only_tables).unwrap_or_default(),
            switch,
            last: None,
            seen: 0,
        }
    }

    /// Whether a reload is due: a request came since the last one, and the last one was at
    /// least [`MIN_RELOAD_GAP`] ago (requests in between wait, merged, for the next check).
    pub fn due(&mut self, requests: &ReloadRequests) -> bool {
        let received = requests.received();
        if received == self.seen {
            return false;
        }
        if self.last.is_some_and(|t| t.elapsed() < MIN_RELOAD_GAP) {
            return false;
        }
        self.seen = received;
        self.last = Some(Instant::now());
        true
    }

    /// Read and build everything the reload needs; an error changes nothing.
    pub fn prepare(&self) -> Result<Prepared, String> {
        let (rules, restart_to_apply) = match &self.config {
            Some(path) => {
                let text = crate::text::read_config_text(path)?;
                let shown = path.display().to_string();
                let rules = RuleSet::with_config(&shown, &text).map_err(|e| e.to_string())?;
                let now = restart_only_tables(&text);
                let mut changed: Vec<String> = self
                    .restart_only
                    .keys()
                    .chain(now.keys())
                    .filter(|k| self.restart_only.get(*k) != now.get(*k))
                    .map(|k| format!("[{k}]"))
                    .collect();
                changed.sort();
                changed.dedup();
                (rules, changed)
            }
            None => (RuleSet::builtin(), Vec::new()),
        };
        let classifier = match &self.grammars {
            Some(dir) => Classifier::with_dir(dir),
            None => Classifier::builtin(),
        }
        .map_err(|e| e.to_string())?
        .with_trusted_proxies(self.trusted_proxies.clone());
        Ok(Prepared {
            rules,
            classifier,
            restart_to_apply,
        })
    }

    /// Apply what [`Reloader::prepare`] built: publish the classifier, and give the rules to
    /// `swap_rules` (which returns `None` when it does not take them).
    pub fn apply(
        &self,
        prepared: Prepared,
        swap_rules: impl FnOnce(RuleSet) -> Option<RuleChanges>,
    ) -> Reloaded {
        self.switch.publish(prepared.classifier);
        Reloaded {
            rules: swap_rules(prepared.rules),
            restart_to_apply: prepared.restart_to_apply,
        }
    }
}

impl Reloaded {
    /// The line stderr gets after a reload that applied.
    pub fn describe(&self) -> String {
        let mut s = String::from("reload applied: grammars reloaded");
        match &self.rules {
            Some(changes) => {
                s.push_str("; rules: ");
                s.push_str(&changes.describe());
            }
            None => s.push_str("; rules not reloaded with --emit (restart to apply)"),
        }
        if !self.restart_to_apply.is_empty() {
            s.push_str(&format!(
                "; {} changed: restart to apply",
                self.restart_to_apply.join(", ")
            ));
        }
        s
    }
}

/// The top-level keys of a config file that a reload does not apply. A file that does not
/// parse gives none (the rules' own parse reports the error).
///
/// ```
/// let t = secpipe::pipeline::reload::restart_only_tables("[run]\nfollow = true\n[rules.x]\nthreshold = 1\n");
/// assert!(t.contains_key("run") && !t.contains_key("rules"));
/// ```
pub fn restart_only_tables(text: &str) -> toml::Table {
    let mut table: toml::Table = text.parse().unwrap_or_default();
    for key in RELOADABLE_TABLES {
        table.remove(key);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reloader(dir: &std::path::Path, text: &str) -> Reloader {
        let config = dir.join("secpipe.toml");
        let _ = std::fs::write(&config, text);
        let classifier = match Classifier::builtin() {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        Reloader::new(
            Some(config),
            Some(text),
            None,
            TrustedProxies::default(),
            ClassifierSwitch::new(Arc::new(classifier)),
        )
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("secpipe-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn a_broken_config_is_refused_with_its_line_and_column() {
        let dir = temp_dir("reload-broken");
        let r = reloader(&dir, "[rules.\"auth.bruteforce\"]\nthreshold = 3\n");
        let _ = std::fs::write(
            dir.join("secpipe.toml"),
            "[rules.\"auth.bruteforce\"]\ntreshold = 3\n",
        );
        let err = match r.prepare() {
            Ok(_) => panic!("a misspelt key was accepted"),
            Err(e) => e,
        };
        assert!(err.contains("secpipe.toml:2:1"), "{err}");
        assert!(err.contains("did you mean `threshold`"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn changed_tables_outside_the_rules_need_a_restart() {
        let dir = temp_dir("reload-restart");
        let r = reloader(&dir, "[block]\nmode = \"simulate\"\n");
        let _ = std::fs::write(
            dir.join("secpipe.toml"),
            "[block]\nmode = \"enforce\"\n\n[rules.\"auth.bruteforce\"]\nthreshold = 3\n",
        );
        let prepared = match r.prepare() {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(prepared.restart_to_apply, ["[block]"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_flood_of_requests_costs_one_reload_per_gap() {
        let dir = temp_dir("reload-flood");
        let mut r = reloader(&dir, "");
        let requests = ReloadRequests::default();
        assert!(!r.due(&requests));
        for _ in 0..10_000 {
            requests.request();
        }
        assert!(r.due(&requests));
        requests.request();
        assert!(!r.due(&requests), "within the gap: merged, not lost");
        r.last = Instant::now().checked_sub(MIN_RELOAD_GAP);
        assert!(
            r.due(&requests),
            "after the gap the waiting request is served"
        );
        assert!(!r.due(&requests));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
