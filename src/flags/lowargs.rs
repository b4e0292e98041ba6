//! Command-line flags exactly as typed: a plain record that clap fills. Nothing here is
//! validated beyond its type; [`super::hiargs`] resolves it into validated configs such as
//! [`super::hiargs::RunConfig`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// secpipe: a security log-stream pipeline.
///
/// Reads log lines (stdin, files, syslog), parses and classifies them, detects attacks in
/// event-time windows, and writes alerts plus an optional tamper-evident Parquet archive.
#[derive(Parser, Debug)]
// The version names the git revision it was built from (build.rs).
#[command(
    name = "secpipe",
    version = env!("SECPIPE_LONG_VERSION"),
    args_conflicts_with_subcommands = true
)]
pub struct LowArgs {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `secpipe [INPUT...]` is `secpipe run [INPUT...]`.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Detect attacks and write alerts (the default subcommand).
    Run(Box<RunArgs>),
    /// Parse and classify only: one JSON event per input line (grammar testing).
    Events(EventsArgs),
    /// Re-run detection over archives or raw log files (.gz, .zst too).
    Replay(ReplayArgs),
    /// Verify an archive's hash chain, row roots and signatures.
    Verify(VerifyArgs),
    /// Make an Ed25519 key pair for signing archive checkpoints.
    Keygen(KeygenArgs),
    /// List the active rules with their thresholds.
    Rules(RulesArgs),
    /// Check annotated log files: expected events (`# expect: …`) and alerts.
    Test(TestArgs),
    /// List the active bans of `--block enforce` from the ledger in --state DIR.
    Bans(BansArgs),
    /// Lift a ban: recorded for the running secpipe, and removed from nftables now (as root).
    Unban(UnbanArgs),
    /// The daily or weekly security review of an archive: HTML, JSON or Markdown.
    Report(ReportArgs),
    /// Detect on events that edges (`secpipe --emit nats://…`) publish to NATS JetStream:
    /// claims partitions, publishes alerts to the bus and delivers them to --alerts.
    Worker(WorkerArgs),
    /// Check a config file (secpipe.toml): every section, with file:line:column errors.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Export a verified archive's events as OCSF 1.3.0 (JSON lines or Parquet), one class per
    /// file, optionally in Amazon Security Lake's layout.
    Export(ExportArgs),
}

/// Flags shared by everything that parses lines.
#[derive(Args, Debug, Clone, Default)]
pub struct ParseArgs {
    /// Add or override message grammars with the *.toml files in DIR.
    #[arg(long, value_name = "DIR")]
    pub grammars: Option<PathBuf>,
    /// Time zone for timestamps without an offset (default: $TZ, else the system zone).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Year for RFC 3164 timestamps, which have none (default: inferred).
    #[arg(long, value_name = "YYYY")]
    pub year: Option<i16>,
    /// Lines longer than this many bytes are truncated and counted.
    #[arg(long, value_name = "BYTES", default_value_t = crate::frame::DEFAULT_MAX_LINE)]
    pub max_line: usize,
    /// A reverse proxy (address or CIDR, repeatable) whose X-Forwarded-For list names the
    /// client of a web request. Without it a forwarded address is never the event's src_ip.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
}

/// Flags for detection.
#[derive(Args, Debug, Clone)]
pub struct DetectArgs {
    /// The config file (secpipe.toml): rule overrides and additions, `[[alerts]]` and
    /// `[block]`; `secpipe run` also takes any of its flags from the `[run]` table (flags given
    /// here win; check it with `secpipe config check FILE`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long to wait for out-of-order events before deciding (e.g. 10s, 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub lateness: String,
    /// Events the reorder buffer holds before it forces the watermark forward (counted).
    #[arg(long, value_name = "N", default_value_t = crate::detect::DEFAULT_MAX_HELD_EVENTS)]
    pub reorder_buffer_events: usize,
    /// MiB the reorder buffer holds before it forces the watermark forward (counted).
    #[arg(long, value_name = "MIB", default_value_t = crate::detect::DEFAULT_MAX_HELD_BYTES >> 20)]
    pub reorder_buffer_mib: usize,
    /// Where alerts go: a file path, - for stdout, a syslog server
    /// (syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT; RFC 5424), a webhook (http(s)://URL)
    /// or an Alertmanager (alertmanager+http(s)://HOST:PORT). Repeat it to write alerts to
    /// several places; each gets every alert, and one that fails does not stop the others.
    /// Also syslog over TLS (syslog+tls://HOST:PORT), mail (smtp://HOST?from=ADDR&to=ADDR or
    /// smtps://, with USER@ and :PORT optional) and a program run for each alert (exec:/PATH);
    /// see README.
    /// Without any (here or in the config file's alerts tables), alerts go to stdout.
    #[arg(long, value_name = "SPEC")]
    pub alerts: Vec<String>,
    /// Alert format, for every --alerts output.
    #[arg(long, value_enum, default_value_t = AlertFormatArg::Json)]
    pub alert_format: AlertFormatArg,
    /// After SIGTERM/SIGINT, how long to wait for a blocked alert consumer before exiting and
    /// reporting what was not delivered (default 5s).
    #[arg(long, value_name = "DURATION")]
    pub drain_timeout: Option<String>,
}

/// The flags' own defaults, for commands that build detection without parsing them
/// (`rules`, `test`): a zero-sized reorder buffer would be a usage error.
impl Default for DetectArgs {
    fn default() -> Self {
        DetectArgs {
            config: None,
            lateness: "10s".into(),
            reorder_buffer_events: crate::detect::DEFAULT_MAX_HELD_EVENTS,
            reorder_buffer_mib: crate::detect::DEFAULT_MAX_HELD_BYTES >> 20,
            alerts: Vec::new(),
            alert_format: AlertFormatArg::Json,
            drain_timeout: None,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertFormatArg {
    #[default]
    Json,
    Text,
    /// OCSF 1.3.0 Detection Finding JSON lines.
    Ocsf,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Input files; `-` or nothing reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub parse: ParseArgs,
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Write a tamper-evident Parquet archive into DIR, or into a bucket:
    /// s3://BUCKET/PREFIX (gs://, az:// too; credentials and endpoint as the AWS tools find
    /// them), sealing files locally in the spool first.
    #[arg(long, value_name = "DIR|URL")]
    pub archive: Option<PathBuf>,
    // --spool, --key, --journal-dir, --edge-id and --nats-partitions need another flag, which
    // may come from the config file: RunConfig checks that, not clap's `requires`.
    /// Where sealed archive files wait for their upload to a bucket archive (default:
    /// DIR/archive-spool of --state); a restart finishes the uploads a crash interrupted.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Sign archive checkpoints with this key (from `secpipe keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Seal an archive file every N rows.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub roll_rows: u64,
    /// Seal an archive file every S seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub roll_secs: u64,
    /// Keep reading files as they grow and across rotation, like `tail -F`.
    #[arg(long)]
    pub follow: bool,
    /// Directory for read positions of followed files (a restart resumes where it stopped),
    /// the spools of network alert outputs (alerts a receiver has not taken yet are delivered
    /// after an outage or a restart) and the ban ledger (with --block).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Listen for syslog: syslog+udp://ADDR, syslog+tcp://ADDR, syslog+tls://ADDR.
    #[arg(long, value_name = "URL")]
    pub listen: Vec<String>,
    /// Read the systemd journal (journalctl -o json -f), with these matches
    /// (FIELD=VALUE, `+` between alternatives; none: the whole journal); with --state, a
    /// restart resumes after the last entry done with.
    #[arg(long, num_args = 0.., value_name = "MATCH")]
    pub journal: Option<Vec<String>>,
    /// With --journal: read the journal files in DIR (journalctl --directory), e.g. those
    /// systemd-journal-remote writes for other machines.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// TLS certificate chain (PEM) for syslog+tls.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for syslog+tls.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    #[command(flatten)]
    pub block: BlockArgs,
    /// Be an edge: publish events to NATS JetStream (nats://HOST:PORT) for `secpipe worker`s
    /// to detect on, instead of detecting here (the archive is still written here).
    #[arg(long, value_name = "URL")]
    pub emit: Option<String>,
    /// With --emit: this edge's name on the bus (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub edge_id: Option<String>,
    /// With --emit: partitions per key family, fixed for the bus by the first edge or worker
    /// (default 8).
    #[arg(long, value_name = "N")]
    pub nats_partitions: Option<u32>,
}

/// `--block` and its common settings (the rest: `[block]` in --config).
#[derive(Args, Debug, Clone, Default)]
pub struct BlockArgs {
    /// Ban the addresses of `block` actions in nftables (`table inet secpipe`): off, simulate
    /// (decide, record and report only) or enforce (needs --state DIR for the ban ledger).
    #[arg(long = "block", value_enum, value_name = "MODE", default_value_t = BlockModeArg::Off)]
    pub mode: BlockModeArg,
    /// Never ban this network (address or CIDR, repeatable); added to `[block] allow`.
    #[arg(long = "block-allow", value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Ban private and unique-local addresses too (10/8, 172.16/12, 192.168/16, fc00::/7 …).
    #[arg(long = "block-private")]
    pub private: bool,
    /// At most N new bans a minute; past it, alert secpipe.block_overflow instead.
    #[arg(long = "block-max-per-minute", value_name = "N")]
    pub max_per_minute: Option<u32>,
    /// How often the firewall is checked against the ledger and repaired (default 30s).
    #[arg(long = "block-reconcile", value_name = "DURATION")]
    pub reconcile: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlockModeArg {
    #[default]
    Off,
    Simulate,
    Enforce,
}

#[derive(Args, Debug, Clone, Default)]
pub struct EventsArgs {
    /// Input files; `-` or nothing reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub parse: ParseArgs,
    /// Print per-pattern match counts on stderr at the end.
    #[arg(long)]
    pub stats: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ReplayArgs {
    /// Archive directories or raw log files.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub parse: ParseArgs,
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Only events at or after this time (RFC 3339, or a date meaning midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only events before this time (RFC 3339, or a date meaning midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Go on when the archive does not verify, marking alerts that rest on unverified rows.
    #[arg(long)]
    pub force: bool,
    /// Public key (FILE.pub from `secpipe keygen`) the archives' checkpoints must be signed
    /// with, as for `secpipe verify --pubkey`.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
    /// Send the replayed alerts to network outputs (syslog) too; without it replay refuses
    /// them, so that last month's alerts do not page anyone.
    #[arg(long)]
    pub deliver: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct VerifyArgs {
    /// The archive: a directory, or a bucket URL (s3://BUCKET/PREFIX, gs://, az://).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// Public key (FILE.pub from `secpipe keygen`) the checkpoint must be signed with.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
    /// The chain head recorded elsewhere; catches a deleted tail.
    #[arg(long, value_name = "HEX")]
    pub expect_head: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct KeygenArgs {
    /// Private key file to write (mode 0600); the public key goes to FILE.pub.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RulesArgs {
    /// Rule overrides and additions (secpipe.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct TestArgs {
    /// Annotated log files (`# expect: kind=auth.failure src_ip=192.0.2.1` before a line,
    /// `# expect-alert: RULE KEY`, `# expect-alerts: none`, `# scenario: NAME`).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub parse: ParseArgs,
    /// Rule overrides and additions (secpipe.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long to wait for out-of-order events before deciding (e.g. 10s, 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub lateness: String,
}

#[derive(Args, Debug, Clone, Default)]
pub struct BansArgs {
    /// The --state directory of the run that bans.
    #[arg(long, value_name = "DIR", required = true)]
    pub state: PathBuf,
    /// One JSON object per ban.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct UnbanArgs {
    /// The banned address, or an IPv6 network as `bans` shows it (2001:db8:1::/64).
    #[arg(value_name = "ADDR")]
    pub address: String,
    /// The --state directory of the run that bans.
    #[arg(long, value_name = "DIR", required = true)]
    pub state: PathBuf,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ReportArgs {
    /// The archive: a directory, or a bucket URL (s3://BUCKET/PREFIX, gs://, az://).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// Start of the period (RFC 3339, or a date meaning midnight UTC). Default: one period
    /// before --to.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period, exclusive. Default: one period after --from, or, with neither, the
    /// first full hour after the archive's last event.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// A period is a week, not a day (when --from or --to is missing).
    #[arg(long)]
    pub week: bool,
    /// Write the page to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the numbers as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write Markdown (for a ticket or a mail) to FILE (`-` for stdout). The default when no
    /// output is named.
    #[arg(long, value_name = "FILE")]
    pub md: Option<PathBuf>,
    /// Public key (FILE.pub from `secpipe keygen`) the checkpoint must be signed with.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
    /// The chain head recorded elsewhere; catches a deleted tail.
    #[arg(long, value_name = "HEX")]
    pub expect_head: Option<String>,
    /// The run's --lateness: an event older than the newest one before it by more than this
    /// counts as late.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub lateness: String,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The archive directory.
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// Output format: OCSF objects as JSON lines, or zstd Parquet with nested structs.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub ocsf: OcsfFormatArg,
    /// Directory to write into (created; files already there are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Amazon Security Lake layout: source=NAME,region=R,account=ID (one custom source per
    /// class: NAME_authentication, NAME_http_activity, …).
    #[arg(long, value_name = "source=NAME,region=R,account=ID")]
    pub security_lake: Option<String>,
    /// Public key (FILE.pub from `secpipe keygen`) the checkpoint must be signed with.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
    /// The chain head recorded elsewhere; catches a deleted tail.
    #[arg(long, value_name = "HEX")]
    pub expect_head: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcsfFormatArg {
    Json,
    Parquet,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate FILE as `secpipe run --config FILE` would read it, opening nothing: exit 0
    /// and a summary when it is good, else 2 with the mistake's file:line:column.
    Check(ConfigCheckArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ConfigCheckArgs {
    /// The config file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// The NATS server: nats://HOST:PORT.
    #[arg(value_name = "URL")]
    pub url: String,
    /// This worker's name for leases (default: host name and process id).
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
    /// Edges to wait for before they have published anything (comma-separated --edge-id
    /// names): a partition's events are merged in event time across edges.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub edges: Vec<String>,
    /// Only these partitions: N, N-M or FAMILY:N-M, comma-separated (default: a fair share
    /// of all, agreed with the other workers).
    #[arg(long, value_name = "SPEC")]
    pub partitions: Option<String>,
    /// Exit once every partition has finished (every edge reached the end of its input) and
    /// every alert was delivered.
    #[arg(long)]
    pub once: bool,
    /// How often each partition's detection state is saved to the bus, so that a worker taking
    /// it over starts there rather than at the stream's first message (0s: never).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub snapshot_every: String,
    /// How long a partition stays with a worker that stopped answering.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub lease: String,
    /// Time zone for time-of-day rules (default: $TZ, else the system zone).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Directory for the spools of network alert outputs.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics (consumer lag per partition).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}
