//! Flags and config files resolved into the settings each command reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

use super::UsageError;
use super::lowargs::{AlertFormatArg, BlockArgs, BlockModeArg, DetectArgs, ParseArgs, RunArgs};
use crate::archive::store::ArchiveLocation;
use crate::archive::{Archive, ArchiveOptions};
use crate::block::config::{BlockMode, BlockOptions};
use crate::block::{BlockConfig, Blocker};
use crate::classify::{Classifier, GrammarError, IpBlock, TrustedProxies};
use crate::detect::{DetectOptions, Detector, RuleError, RuleSet};
use crate::event::TimeRange;
use crate::parse::ParseSettings;
use crate::pipeline::reload::Reloader;
use crate::pipeline::run::DetectionRun;
use crate::pipeline::topology::{Services, Topology};
use crate::pipeline::unverified::Unverified;
use crate::sink::SinkConfig;
use crate::sink::encode::Encoding;
use crate::sink::routes::{AlertRoute, RouteError, routes_in_config};
use crate::source::follow::FollowedFiles;
use crate::source::journal::{JournalConfig, JournalSource};
use crate::source::syslog::{ListenConfig, ListenSpec, Transport};
use crate::source::{BatchInputs, InputSpec, Source};

/// Everything needed to turn lines into events.
pub struct ParseConfig {
    pub settings: ParseSettings,
    pub classifier: Arc<Classifier>,
    pub max_line: usize,
    /// `--grammars` and `--trusted-proxy`, for a reload to build the classifier again.
    pub grammars: Option<PathBuf>,
    pub trusted_proxies: TrustedProxies,
}

/// Everything needed to turn events into alerts.
pub struct DetectConfig {
    pub rules: RuleSet,
    pub options: DetectOptions,
    /// Where alerts go, each with its encoding and the alerts it takes (`--alerts`, and the
    /// config file's `[[alerts]]`).
    pub sinks: Vec<AlertRoute>,
    /// `--drain-timeout`: after a stop signal, how long to wait for a blocked alert consumer.
    pub alert_drain: std::time::Duration,
    /// `--config`: its path and the text the rules were read from (a reload compares with it).
    pub config: Option<(PathBuf, String)>,
}

impl DetectConfig {
    /// Assemble a detection run over `sources`: the one place where a run's parts are put
    /// together (`run` and `replay` both come here).
    pub fn assemble(
        self,
        parse: ParseConfig,
        sources: Vec<Box<dyn Source>>,
        archive: Option<Archive>,
        metrics_addr: Option<&str>,
    ) -> Result<DetectionRun, UsageError> {
        Ok(DetectionRun {
            services: Services::start(metrics_addr).map_err(UsageError::plain)?,
            topology: Topology {
                settings: parse.settings,
                classifier: crate::pipeline::reload::ClassifierSwitch::new(parse.classifier),
                sources,
                max_line: parse.max_line,
            },
            detector: Detector::new(self.rules, self.options),
            archive,
            sinks: self.sinks,
            drain: self.alert_drain,
            state: None,
            range: TimeRange::default(),
            unverified: Unverified::Nothing,
            block: None,
            emit: None,
            reload: None,
        })
    }
}

/// `secpipe run`.
pub struct RunConfig {
    pub inputs: Vec<InputSpec>,
    pub parse: ParseConfig,
    pub detect: DetectConfig,
    pub archive: Option<ArchiveOptions>,
    /// A bucket archive (`--archive s3://…`) and its local spool; `None`: a directory.
    pub archive_bucket: Option<(ArchiveLocation, PathBuf)>,
    /// `--follow`: file INPUTs are followed like `tail -F`.
    pub follow: bool,
    /// `--state DIR`: positions of followed files, spools of network outputs, the ban ledger.
    pub state: Option<PathBuf>,
    pub listen: ListenConfig,
    /// `--journal [MATCH…]`, `--journal-dir`.
    pub journal: Option<JournalConfig>,
    /// `--metrics ADDR`.
    pub metrics: Option<String>,
    /// `--block simulate|enforce` (None when off).
    pub block: Option<BlockConfig>,
    /// `--emit nats://…`: be an edge ([`crate::bus::edge`]).
    pub emit: Option<EmitConfig>,
}

/// `--emit`, `--edge-id`, `--nats-partitions`.
pub struct EmitConfig {
    pub url: String,
    pub edge: String,
    pub partitions: Option<u32>,
}

impl EmitConfig {
    fn from_args(args: &RunArgs) -> Result<Option<EmitConfig>, UsageError> {
        let Some(url) = &args.emit else {
            return Ok(None);
        };
        let url = crate::bus::server_address(url)
            .map_err(|e| UsageError::plain(format!("--emit {e}")))?;
        let edge = match &args.edge_id {
            Some(id) => id.clone(),
            None => crate::sink::encode::rfc5424::hostname().to_string(),
        };
        bus_name("--edge-id", &edge)?;
        if let Some(n) = args.nats_partitions
            && !(1..=crate::bus::MAX_PARTITIONS).contains(&n)
        {
            return Err(UsageError::plain(format!(
                "--nats-partitions {n}: from 1 to {}",
                crate::bus::MAX_PARTITIONS
            )));
        }
        if args.block.mode != crate::flags::lowargs::BlockModeArg::Off {
            return Err(UsageError::with_help(
                "--block with --emit: an edge does not detect",
                "run --block on a worker's alerts (secpipe worker), or without --emit",
            ));
        }
        if !args.detect.alerts.is_empty() {
            return Err(UsageError::with_help(
                "--alerts with --emit: an edge does not detect, so it has no alerts",
                "give --alerts to `secpipe worker`",
            ));
        }
        Ok(Some(EmitConfig {
            url,
            edge,
            partitions: args.nats_partitions,
        }))
    }
}

/// An edge or worker name: it goes into message headers and key-value keys, so it is kept to
/// letters, digits, `.`, `_` and `-` (no spaces, no line breaks, no wildcards).
pub fn bus_name(flag: &str, name: &str) -> Result<(), UsageError> {
    // The rule workers apply to the names they read on the bus.
    if crate::bus::is_bus_name(name) {
        Ok(())
    } else {
        Err(UsageError::plain(format!(
            "{flag} {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"
        )))
    }
}

impl RunConfig {
    /// Open the archive, open the state, bind the listeners, start the services: what can fail
    /// fails here, before any input is read (the alert outputs are opened next, by
    /// [`DetectionRun::run`], also before any source starts).
    pub fn build(self) -> Result<DetectionRun, UsageError> {
        let archive = match (self.archive, self.archive_bucket) {
            (Some(opts), None) => Some(
                Archive::open(opts).map_err(|e| UsageError::plain(format!("--archive: {e}")))?,
            ),
            (Some(opts), Some((location, spool))) => {
                let store = location
                    .open(Some(spool))
                    .map_err(|e| UsageError::plain(format!("--archive: {e}")))?;
                Some(
                    Archive::open_in(store, opts)
                        .map_err(|e| UsageError::plain(format!("--archive: {e}")))?,
                )
            }
            (None, _) => None,
        };
        let (followed, read): (Vec<InputSpec>, Vec<InputSpec>) = self
            .inputs
            .into_iter()
            .partition(|i| self.follow && matches!(i, InputSpec::File(_)));
        let followed: Vec<PathBuf> = followed
            .into_iter()
            .filter_map(|i| match i {
                InputSpec::File(path) => Some(path),
                InputSpec::Stdin => None,
            })
            .collect();
        let mut sources: Vec<Box<dyn Source>> = Vec::new();
        // `--follow` makes the run live and opens `--state` even when no file is followed
        // (`journalctl -f | secpipe --follow`): stdin is then live too, and a bad state
        // directory is a usage error, as before the sources were split.
        if self.follow {
            let files = FollowedFiles::new(followed, self.state.as_deref());
            sources.push(Box::new(files.map_err(UsageError::plain)?));
        }
        if !read.is_empty() {
            sources.push(Box::new(BatchInputs::new(read)));
        }
        if !self.listen.specs.is_empty() {
            sources.push(Box::new(self.listen.bind().map_err(UsageError::plain)?));
        }
        if let Some(journal) = self.journal {
            let journal = JournalSource::new(journal, self.state.as_deref());
            sources.push(Box::new(journal.map_err(UsageError::plain)?));
        }
        let emit = match &self.emit {
            Some(cfg) => Some(
                crate::bus::edge::Emitter::connect(
                    &cfg.url,
                    cfg.edge.clone(),
                    cfg.partitions,
                    &self.detect.rules,
                )
                .map_err(|e| UsageError::plain(format!("--emit: {e}")))?,
            ),
            None => None,
        };
        let config = self.detect.config.clone();
        let (grammars, proxies) = (
            self.parse.grammars.clone(),
            self.parse.trusted_proxies.clone(),
        );
        let mut run =
            self.detect
                .assemble(self.parse, sources, archive, self.metrics.as_deref())?;
        // SIGHUP re-reads the rules of --config and the grammars of --grammars.
        let (config_path, config_text) = config.unzip();
        run.reload = Some(Reloader::new(
            config_path,
            config_text.as_deref(),
            grammars,
            proxies,
            run.topology.classifier.clone(),
        ));
        run.emit = emit;
        run.state = self.state;
        // Blocking starts last, before any input is read: in enforce the table is in place
        // with the ledger's live bans before the first new decision.
        if let Some(cfg) = self.block {
            let blocker = Blocker::start(cfg, crate::event::now_micros());
            run.block = Some(blocker.map_err(UsageError::plain)?);
        }
        Ok(run)
    }
}

/// `--listen`, `--tls-cert`, `--tls-key`.
fn listen_config(args: &RunArgs) -> Result<ListenConfig, UsageError> {
    let listen = args
        .listen
        .iter()
        .map(|l| ListenSpec::parse(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            UsageError::with_help(
                format!("--listen {e}"),
                "for example --listen syslog+udp://0.0.0.0:514 --listen syslog+tcp://0.0.0.0:601",
            )
        })?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => {
            return Err(UsageError::plain(
                "--tls-cert and --tls-key go together: give both",
            ));
        }
    };
    let wants_tls = listen.iter().any(|l| l.transport == Transport::Tls);
    if wants_tls && tls.is_none() {
        return Err(UsageError::with_help(
            "syslog+tls needs --tls-cert and --tls-key",
            "pass a PEM certificate chain and its private key",
        ));
    }
    Ok(ListenConfig { specs: listen, tls })
}

impl ParseConfig {
    pub fn from_args(args: &ParseArgs) -> Result<ParseConfig, UsageError> {
        let tz = time_zone(args.tz.as_deref())?;
        let classifier = match &args.grammars {
            None => Classifier::builtin(),
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(UsageError::with_help(
                        format!("--grammars {}: not a directory", dir.display()),
                        "pass a directory that holds *.toml grammar files",
                    ));
                }
                Classifier::with_dir(dir)
            }
        }
        .map_err(grammar_error)?;
        let mut proxies = Vec::with_capacity(args.trusted_proxies.len());
        for text in &args.trusted_proxies {
            let block = IpBlock::parse(text).map_err(|message| {
                UsageError::with_help(
                    format!("--trusted-proxy {text}: {message}"),
                    "pass an address or a CIDR block, e.g. --trusted-proxy 10.0.0.0/8",
                )
            })?;
            proxies.push(block);
        }
        let trusted_proxies = TrustedProxies::new(proxies);
        let classifier = classifier.with_trusted_proxies(trusted_proxies.clone());
        if args.max_line == 0 {
            return Err(UsageError::plain("--max-line must be at least 1"));
        }
        Ok(ParseConfig {
            settings: ParseSettings {
                tz,
                year: args.year,
            },
            classifier: Arc::new(classifier),
            max_line: args.max_line,
            grammars: args.grammars.clone(),
            trusted_proxies,
        })
    }
}

impl DetectConfig {
    pub fn from_args(
        args: &DetectArgs,
        tz: &jiff::tz::TimeZone,
    ) -> Result<DetectConfig, UsageError> {
        let config = read_config(args.config.as_deref())?;
        let rules = match &config {
            Some((path, text)) => RuleSet::with_config(path, text).map_err(rule_error)?,
            None => RuleSet::builtin(),
        };
        let lateness = parse_duration("--lateness", &args.lateness)?;
        // One message per flag, starting with it: a config file's key is found by it.
        for (flag, n) in [
            ("--reorder-buffer-events", args.reorder_buffer_events),
            ("--reorder-buffer-mib", args.reorder_buffer_mib),
        ] {
            if n == 0 {
                return Err(UsageError::plain(format!("{flag} must be at least 1")));
            }
        }
        let alert_drain = match &args.drain_timeout {
            Some(text) => std::time::Duration::from_micros(
                u64::try_from(parse_duration("--drain-timeout", text)?).unwrap_or(0),
            ),
            None => crate::sink::queue::DEFAULT_DRAIN,
        };
        let encoding = match args.alert_format {
            AlertFormatArg::Json => Encoding::Json,
            AlertFormatArg::Text => Encoding::Text,
            AlertFormatArg::Ocsf => Encoding::Ocsf,
        };
        let mut sinks: Vec<AlertRoute> = match &config {
            Some((path, text)) => {
                let dir = Path::new(path).parent().unwrap_or(Path::new(""));
                routes_in_config(text)
                    .map_err(|e| route_error(path, text, e))?
                    .into_iter()
                    .map(|route| AlertRoute {
                        to: route.to.with_files_in(dir),
                        ..route
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        // Without any destination named, alerts go to stdout.
        let stdout = ["-".to_string()];
        let specs = if args.alerts.is_empty() && sinks.is_empty() {
            &stdout[..]
        } else {
            &args.alerts[..]
        };
        for text in specs {
            let sink = SinkConfig::parse(text, encoding)
                .map_err(|e| UsageError::plain(format!("--alerts {e}")))?;
            if sinks.iter().any(|before| sink.same_destination(&before.to)) {
                // Two writers on one output would clobber each other or repeat every alert.
                return Err(UsageError::plain(format!("--alerts {text}: named twice")));
            }
            sinks.push(AlertRoute::every_alert(sink));
        }
        for (i, route) in sinks.iter().enumerate() {
            if sinks[..i]
                .iter()
                .any(|before| route.to.same_destination(&before.to))
            {
                return Err(UsageError::plain(format!(
                    "alerts: {} is named twice in the config file",
                    route.to.name()
                )));
            }
        }
        Ok(DetectConfig {
            rules,
            options: DetectOptions {
                lateness,
                tz: tz.clone(),
                max_keys: 1_000_000,
                max_held_events: args.reorder_buffer_events,
                max_held_bytes: args.reorder_buffer_mib.saturating_mul(1 << 20),
            },
            sinks,
            alert_drain,
            config: args.config.clone().zip(config.map(|(_, text)| text)),
        })
    }
}

impl RunConfig {
    pub fn from_args(args: &RunArgs) -> Result<RunConfig, UsageError> {
        needed_flags(args)?;
        // Checked here, not only when the run is built, so that `config check` refuses them.
        if let Some(matches) = &args.journal {
            crate::source::journal::matches::check_matches(matches).map_err(UsageError::plain)?;
        }
        // journalctl on a directory that is not there exits at once, and would be restarted
        // every 10 s for as long as the run lasts.
        if let Some(dir) = &args.journal_dir
            && !dir.is_dir()
        {
            return Err(UsageError::with_help(
                format!("--journal-dir {}: not a directory", dir.display()),
                "name the directory that holds the journal files (*.journal)",
            ));
        }
        if let Some(key) = &args.key {
            crate::archive::keys::load_signing_key(key)
                .map_err(|e| UsageError::plain(format!("--key {e}")))?;
        }
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            crate::source::syslog::tls::acceptor(cert, key).map_err(UsageError::plain)?;
        }
        if let Some(addr) = &args.metrics {
            use std::net::ToSocketAddrs;
            addr.to_socket_addrs()
                .map_err(|e| UsageError::plain(format!("--metrics {addr}: {e}")))?;
        }
        let listen = listen_config(args)?;
        let parse = ParseConfig::from_args(&args.parse)?;
        let detect = DetectConfig::from_args(&args.detect, &parse.settings.tz)?;
        for (flag, n) in [
            ("--roll-rows", args.roll_rows),
            ("--roll-secs", args.roll_secs),
        ] {
            if n == 0 {
                return Err(UsageError::plain(format!("{flag} must be at least 1")));
            }
        }
        let location = args
            .archive
            .as_deref()
            .map(ArchiveLocation::parse)
            .transpose()
            .map_err(|e| UsageError::plain(format!("--archive: {e}")))?;
        let archive_bucket = match &location {
            Some(bucket @ ArchiveLocation::Bucket(_)) => {
                let spool = match (&args.spool, &args.state) {
                    (Some(spool), _) => spool.clone(),
                    (None, Some(state)) => state.join("archive-spool"),
                    (None, None) => {
                        return Err(UsageError::plain(
                            "--archive in a bucket needs a local spool, where sealed files \
                             wait for their upload and a crash's unfinished uploads are \
                             finished by the next run: give --state DIR or --spool DIR",
                        ));
                    }
                };
                Some((bucket.clone(), spool))
            }
            Some(ArchiveLocation::Local(_)) if args.spool.is_some() => {
                return Err(UsageError::plain(
                    "--spool is for an archive in a bucket; a directory archive needs none",
                ));
            }
            _ => None,
        };
        let archive = location.as_ref().map(|location| ArchiveOptions {
            dir: match location {
                ArchiveLocation::Local(dir) => dir.clone(),
                ArchiveLocation::Bucket(url) => PathBuf::from(url),
            },
            key: args.key.clone(),
            roll_rows: args.roll_rows,
            roll_secs: args.roll_secs,
        });
        // With listeners or the journal and no INPUT, read only those: stdin is not an implied
        // input.
        let inputs =
            if args.inputs.is_empty() && (!listen.specs.is_empty() || args.journal.is_some()) {
                Vec::new()
            } else {
                inputs(&args.inputs)
            };
        let block = block_config(args, &listen)?;
        let spooled = detect.sinks.iter().any(|route| route.to.reaches_others());
        if args.state.is_some()
            && !args.follow
            && args.journal.is_none()
            && block.is_none()
            && !spooled
            && archive_bucket.is_none()
        {
            return Err(UsageError::plain(
                "--state is for --follow or --journal (read positions), --block (the ban ledger) or \
                 network --alerts outputs (their spools)",
            ));
        }
        Ok(RunConfig {
            inputs,
            parse,
            detect,
            archive,
            archive_bucket,
            follow: args.follow,
            state: args.state.clone(),
            listen,
            journal: args.journal.as_ref().map(|matches| JournalConfig {
                matches: matches.clone(),
                dir: args.journal_dir.clone(),
            }),
            metrics: args.metrics.clone(),
            block,
            emit: EmitConfig::from_args(args)?,
        })
    }
}

/// `--block*` flags over the `[block]` section of `--config`; `None` when blocking is off.
fn block_config(args: &RunArgs, listen: &ListenConfig) -> Result<Option<BlockConfig>, UsageError> {
    let flags: &BlockArgs = &args.block;
    // The section is checked even with blocking off, so a typo shows before the day it is on.
    let mut options = match &args.detect.config {
        Some(path) => {
            let text = crate::text::read_config_text(path).map_err(UsageError::plain)?;
            let name = path.display().to_string();
            BlockOptions::from_config(&name, &text).map_err(|e| match e.span {
                Some(span) => UsageError::InFile {
                    message: e.message,
                    source_code: NamedSource::new(name, text),
                    span: span.into(),
                    help: e.help,
                },
                None => UsageError::Plain {
                    message: e.message,
                    help: e.help,
                },
            })?
        }
        None => BlockOptions::default(),
    };
    let mode = match flags.mode {
        BlockModeArg::Off => return Ok(None),
        BlockModeArg::Simulate => BlockMode::Simulate,
        BlockModeArg::Enforce => BlockMode::Enforce,
    };
    options.allow.extend(flags.allow.iter().cloned());
    options.block_private |= flags.private;
    if let Some(n) = flags.max_per_minute {
        options.max_per_minute = n;
    }
    if let Some(r) = &flags.reconcile {
        options.reconcile = r.clone();
    }
    let settings = options.resolve(mode).map_err(UsageError::plain)?;
    if mode == BlockMode::Enforce && args.state.is_none() {
        return Err(UsageError::with_help(
            "--block enforce needs --state DIR",
            "the ban ledger lives there: it re-applies live bans after a restart and is what \
             `secpipe bans` and `secpipe unban` read",
        ));
    }
    let mut proxies = Vec::new();
    for text in &args.parse.trusted_proxies {
        // Already checked by ParseConfig::from_args.
        if let Ok(block) = IpBlock::parse(text) {
            proxies.push(block);
        }
    }
    Ok(Some(BlockConfig {
        settings,
        state: args.state.clone(),
        proxies,
        udp_input: listen.specs.iter().any(|l| l.transport == Transport::Udp),
        nft: crate::block::nft::Nft::default(),
    }))
}

/// INPUT arguments; none means stdin.
pub fn inputs(args: &[String]) -> Vec<InputSpec> {
    if args.is_empty() {
        vec![InputSpec::Stdin]
    } else {
        args.iter().map(|a| InputSpec::from_arg(a)).collect()
    }
}

/// `--tz`, else `$TZ` / the system zone, else UTC.
pub fn time_zone(name: Option<&str>) -> Result<jiff::tz::TimeZone, UsageError> {
    match name {
        Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
            UsageError::with_help(
                format!("--tz {name}: {e}"),
                "use an IANA zone name such as UTC, Europe/Berlin or America/New_York",
            )
        }),
        None => Ok(jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC)),
    }
}

/// `--from`/`--to`: RFC 3339 (`2026-01-05T00:00:00Z`), or a plain date `2026-01-05` meaning
/// midnight UTC. Returns µs UTC.
///
/// ```
/// use secpipe::flags::hiargs::parse_time;
/// assert_eq!(parse_time("--from", "1970-01-02").unwrap(), 86_400_000_000);
/// assert_eq!(parse_time("--from", "1970-01-01T00:00:01+00:00").unwrap(), 1_000_000);
/// assert!(parse_time("--from", "yesterday").is_err());
/// ```
pub fn parse_time(flag: &str, text: &str) -> Result<i64, UsageError> {
    let t = text.trim();
    let parsed = t.parse::<jiff::Timestamp>().or_else(|_| {
        t.parse::<jiff::civil::Date>()
            .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC))
            .map(|z| z.timestamp())
    });
    match parsed {
        Ok(ts) => Ok(ts.as_microsecond()),
        Err(e) => Err(UsageError::with_help(
            format!("{flag} {text}: not a time ({e})"),
            "write RFC 3339 such as 2026-01-05T00:00:00Z, or a date such as 2026-01-05 (UTC)",
        )),
    }
}

/// An optional `--from`/`--to` ([`parse_time`]) when given.
///
/// ```
/// use secpipe::flags::hiargs::parse_optional_time;
/// assert_eq!(parse_optional_time("--to", None).unwrap(), None);
/// assert_eq!(parse_optional_time("--to", Some("1970-01-02")).unwrap(), Some(86_400_000_000));
/// ```
pub fn parse_optional_time(flag: &str, text: Option<&str>) -> Result<Option<i64>, UsageError> {
    text.map(|t| parse_time(flag, t)).transpose()
}

/// A duration flag such as `10s`, `500ms`, `5m`, `1m 30s`, `1h`, `1d`, in µs.
///
/// ```
/// use secpipe::flags::hiargs::parse_duration;
/// assert_eq!(parse_duration("--lateness", "10s").unwrap(), 10_000_000);
/// assert_eq!(parse_duration("--lateness", "1m 30s").unwrap(), 90_000_000);
/// assert!(parse_duration("--lateness", "soon").is_err());
/// ```
pub fn parse_duration(flag: &str, text: &str) -> Result<i64, UsageError> {
    // The same parser as rule windows (`crate::duration`), so both take the same spellings.
    crate::duration::parse(text).map_err(|why| {
        UsageError::with_help(
            format!("{flag} {text}: not a duration ({why})"),
            "write it like 10s, 500ms, 5m, 1m 30s or 1h",
        )
    })
}

/// `--config FILE`: its path as shown in messages and its text.
/// A flag that only means something with another (`--key` with `--archive`). Checked here,
/// after the config file filled what the command line left out, rather than by clap's
/// `requires`: either half may be in the file, and a half alone, wherever it comes from, would
/// be silently ignored (an archive believed signed that is not written at all).
fn needed_flags(args: &RunArgs) -> Result<(), UsageError> {
    let pairs = [
        (
            "--tls-cert",
            args.tls_cert.is_some(),
            "--tls-key",
            args.tls_key.is_some(),
        ),
        (
            "--tls-key",
            args.tls_key.is_some(),
            "--tls-cert",
            args.tls_cert.is_some(),
        ),
        (
            "--spool",
            args.spool.is_some(),
            "--archive",
            args.archive.is_some(),
        ),
        (
            "--key",
            args.key.is_some(),
            "--archive",
            args.archive.is_some(),
        ),
        (
            "--journal-dir",
            args.journal_dir.is_some(),
            "--journal",
            args.journal.is_some(),
        ),
        (
            "--edge-id",
            args.edge_id.is_some(),
            "--emit",
            args.emit.is_some(),
        ),
        (
            "--nats-partitions",
            args.nats_partitions.is_some(),
            "--emit",
            args.emit.is_some(),
        ),
    ];
    for (flag, given, needs, present) in pairs {
        if given && !present {
            return Err(UsageError::plain(format!("{flag} needs {needs}")));
        }
    }
    Ok(())
}

fn read_config(path: Option<&Path>) -> Result<Option<(String, String)>, UsageError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = crate::text::read_config_text(path).map_err(UsageError::plain)?;
    Ok(Some((path.display().to_string(), text)))
}

/// `[[alerts]]` errors point into the config file.
fn route_error(path: &str, text: &str, e: RouteError) -> UsageError {
    match e.span {
        Some(span) => {
            let (line, column) = crate::text::line_col(text, span.start);
            UsageError::InFile {
                message: format!("{path}:{line}:{column}: {}", e.message),
                source_code: NamedSource::new(path, text.to_string()),
                span: span.into(),
                help: None,
            }
        }
        None => UsageError::plain(format!("{path}: {}", e.message)),
    }
}

/// Rules errors point into the config file.
pub fn rule_error(e: RuleError) -> UsageError {
    match e.span.clone() {
        Some(span) => UsageError::InFile {
            message: format!("{}:{}:{}: {}", e.path, e.line, e.column, e.message),
            source_code: NamedSource::new(e.path.clone(), e.source_text.clone()),
            span: span.into(),
            help: None,
        },
        None => UsageError::plain(e.to_string()),
    }
}

fn grammar_error(e: GrammarError) -> UsageError {
    UsageError::with_help(
        e.to_string(),
        "fix the grammar file, or check it with `secpipe events --grammars DIR --stats`",
    )
}
