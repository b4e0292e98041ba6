//! Flags and config files resolved into the settings each command reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

use super::UsageError;
use super::lowargs::{AlertFormatArg, DetectArgs, ParseArgs, RunArgs};
use crate::archive::ArchiveOptions;
use crate::classify::{Classifier, GrammarError, IpBlock, TrustedProxies};
use crate::detect::{DetectOptions, RuleError, RuleSet};
use crate::pipeline::ParseSettings;
use crate::sink::alerts::AlertFormat;
use crate::source::InputSpec;
use crate::source::syslog::{ListenSpec, Transport};

/// Everything needed to turn lines into events.
pub struct ParseConfig {
    pub settings: ParseSettings,
    pub classifier: Arc<Classifier>,
    pub max_line: usize,
}

/// Where alerts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertDest {
    Stdout,
    File(PathBuf),
}

/// Everything needed to turn events into alerts.
pub struct DetectConfig {
    pub rules: RuleSet,
    pub options: DetectOptions,
    pub alerts: AlertDest,
    pub alert_format: AlertFormat,
    /// `--drain-timeout`: after a stop signal, how long to wait for a blocked alert consumer.
    pub alert_drain: std::time::Duration,
}

/// `secpipe run`.
pub struct RunConfig {
    pub inputs: Vec<InputSpec>,
    pub parse: ParseConfig,
    pub detect: DetectConfig,
    pub archive: Option<ArchiveOptions>,
    pub live: LiveConfig,
}

/// The service side of `run`: following files, listening for syslog, metrics.
#[derive(Clone, Debug, Default)]
pub struct LiveConfig {
    /// `--follow`: file INPUTs are followed like `tail -F`.
    pub follow: bool,
    /// `--state DIR`: checkpoints of followed files.
    pub state: Option<PathBuf>,
    pub listen: Vec<ListenSpec>,
    /// `--tls-cert`, `--tls-key`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--metrics ADDR`.
    pub metrics: Option<String>,
    /// Stdin is an input: a pipe that may be live (`journalctl -f | secpipe`), judged by its
    /// events (see [`crate::pipeline::WallClock`]).
    pub stdin: bool,
}

impl LiveConfig {
    /// Input never ends by itself: the watermark must also move with the wall clock.
    pub fn is_live(&self) -> bool {
        self.follow || !self.listen.is_empty()
    }

    fn from_args(args: &RunArgs) -> Result<LiveConfig, UsageError> {
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
        Ok(LiveConfig {
            follow: args.follow,
            state: args.state.clone(),
            listen,
            tls,
            metrics: args.metrics.clone(),
            stdin: false,
        })
    }
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
        let classifier = classifier.with_trusted_proxies(TrustedProxies::new(proxies));
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
        })
    }
}

impl DetectConfig {
    pub fn from_args(
        args: &DetectArgs,
        tz: &jiff::tz::TimeZone,
    ) -> Result<DetectConfig, UsageError> {
        let rules = load_rules(args.config.as_deref())?;
        let lateness = parse_duration("--lateness", &args.lateness)?;
        if args.reorder_buffer_events == 0 || args.reorder_buffer_mib == 0 {
            return Err(UsageError::plain(
                "--reorder-buffer-events and --reorder-buffer-mib must be at least 1",
            ));
        }
        let alert_drain = match &args.drain_timeout {
            Some(text) => std::time::Duration::from_micros(
                u64::try_from(parse_duration("--drain-timeout", text)?).unwrap_or(0),
            ),
            None => crate::sink::alerts::DEFAULT_DRAIN,
        };
        let alerts = if args.alerts == "-" {
            AlertDest::Stdout
        } else {
            AlertDest::File(PathBuf::from(&args.alerts))
        };
        Ok(DetectConfig {
            rules,
            options: DetectOptions {
                lateness,
                tz: tz.clone(),
                max_keys: 1_000_000,
                max_held_events: args.reorder_buffer_events,
                max_held_bytes: args.reorder_buffer_mib.saturating_mul(1 << 20),
            },
            alerts,
            alert_format: match args.alert_format {
                AlertFormatArg::Json => AlertFormat::Json,
                AlertFormatArg::Text => AlertFormat::Text,
            },
            alert_drain,
        })
    }
}

impl RunConfig {
    pub fn from_args(args: &RunArgs) -> Result<RunConfig, UsageError> {
        let mut live = LiveConfig::from_args(args)?;
        let parse = ParseConfig::from_args(&args.parse)?;
        let detect = DetectConfig::from_args(&args.detect, &parse.settings.tz)?;
        if args.roll_rows == 0 || args.roll_secs == 0 {
            return Err(UsageError::plain(
                "--roll-rows and --roll-secs must be at least 1",
            ));
        }
        let archive = args.archive.as_ref().map(|dir| ArchiveOptions {
            dir: dir.clone(),
            key: args.key.clone(),
            roll_rows: args.roll_rows,
            roll_secs: args.roll_secs,
        });
        // With listeners and no INPUT, read only the network: stdin is not an implied input.
        let inputs = if args.inputs.is_empty() && !live.listen.is_empty() {
            Vec::new()
        } else {
            inputs(&args.inputs)
        };
        live.stdin = inputs.contains(&InputSpec::Stdin);
        Ok(RunConfig {
            inputs,
            parse,
            detect,
            archive,
            live,
        })
    }
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

fn load_rules(path: Option<&Path>) -> Result<RuleSet, UsageError> {
    let Some(path) = path else {
        return Ok(RuleSet::builtin());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::plain(format!("--config {}: {e}", path.display())))?;
    RuleSet::with_config(&path.display().to_string(), &text).map_err(rule_error)
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
