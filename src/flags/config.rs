//! `secpipe.toml`'s `[run]` table: every flag of `secpipe run` under its long name, with `_`
//! for `-` (`--reorder-buffer-mib 64` is `reorder_buffer_mib = 64`), and `[block] mode` for
//! `--block`. A service starts with nothing but `--config /etc/secpipe/secpipe.toml`.
//!
//! - A flag given on the command line wins over the file; a list flag given there (`INPUT…`,
//!   `--listen`, `--journal`, `--trusted-proxy`) replaces the file's list, so that one look at
//!   the command line says what is read. `--block-allow` adds to `[block] allow`, as before.
//! - Relative paths are taken from the file's directory, not from wherever the service was
//!   started: a config moved with its key and grammars keeps working.
//! - `--alerts SPEC` is `[[alerts]] to = "SPEC"` ([`crate::sink::routes`]); the other `[block]`
//!   settings are [`crate::block::config`]'s.
//!
//! A value that does not check out is reported at its place in the file: the messages
//! [`super::hiargs`] writes about a flag (`--lateness 10x: not a duration`) are moved to the
//! key's line and column when the value came from here ([`FromFile::locate`]).

use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use miette::NamedSource;
use serde::Deserialize;
use toml::Spanned;

use super::UsageError;
use super::lowargs::{AlertFormatArg, BlockModeArg, RunArgs};

/// The keys of `[run]`. Each is a flag's long name with `_` for `-`, except `inputs` (the
/// INPUT arguments) and `trusted_proxy` (`--trusted-proxy`, repeatable).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunTable {
    inputs: Option<Spanned<Vec<String>>>,
    follow: Option<Spanned<bool>>,
    journal: Option<Spanned<Vec<String>>>,
    journal_dir: Option<Spanned<PathBuf>>,
    state: Option<Spanned<PathBuf>>,
    listen: Option<Spanned<Vec<String>>>,
    tls_cert: Option<Spanned<PathBuf>>,
    tls_key: Option<Spanned<PathBuf>>,
    metrics: Option<Spanned<String>>,
    archive: Option<Spanned<String>>,
    spool: Option<Spanned<PathBuf>>,
    key: Option<Spanned<PathBuf>>,
    roll_rows: Option<Spanned<u64>>,
    roll_secs: Option<Spanned<u64>>,
    grammars: Option<Spanned<PathBuf>>,
    tz: Option<Spanned<String>>,
    year: Option<Spanned<i16>>,
    max_line: Option<Spanned<usize>>,
    trusted_proxy: Option<Spanned<Vec<String>>>,
    lateness: Option<Spanned<String>>,
    reorder_buffer_events: Option<Spanned<usize>>,
    reorder_buffer_mib: Option<Spanned<usize>>,
    alert_format: Option<Spanned<String>>,
    drain_timeout: Option<Spanned<String>>,
    emit: Option<Spanned<String>>,
    edge_id: Option<Spanned<String>>,
    nats_partitions: Option<Spanned<u32>>,
}

/// The `[run]` keys, for "did you mean".
const RUN_KEYS: [&str; 27] = [
    "inputs",
    "follow",
    "journal",
    "journal_dir",
    "state",
    "listen",
    "tls_cert",
    "tls_key",
    "metrics",
    "archive",
    "spool",
    "key",
    "roll_rows",
    "roll_secs",
    "grammars",
    "tz",
    "year",
    "max_line",
    "trusted_proxy",
    "lateness",
    "reorder_buffer_events",
    "reorder_buffer_mib",
    "alert_format",
    "drain_timeout",
    "emit",
    "edge_id",
    "nats_partitions",
];

/// Only `mode` of `[block]`; its other keys are [`crate::block::config`]'s, which checks them.
#[derive(Deserialize, Default)]
struct BlockModeView {
    mode: Option<Spanned<String>>,
}

/// The file as this module reads it; `[rules]`, `[[alerts]]` and the rest of `[block]` are
/// checked by their own loaders.
#[derive(Deserialize, Default)]
struct FileView {
    #[serde(default)]
    run: Option<RunTable>,
    #[serde(default)]
    block: Option<BlockModeView>,
}

/// Which of a run's settings came from the config file, and where they are written.
pub struct FromFile {
    path: String,
    text: String,
    /// Each key taken, with the span of its value.
    taken: Vec<(Key, Range<usize>)>,
}

impl FromFile {
    /// The file's path as shown in messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The keys taken from the file (a flag on the command line won over the others): `[run]`'s
    /// by name, and `[block] mode`.
    pub fn keys_taken(&self) -> impl Iterator<Item = &str> + '_ {
        self.taken.iter().map(|(key, _)| key.label.as_str())
    }

    /// A message about a flag whose value came from the file, moved to the value's place in
    /// the file: `secpipe.toml:3:12: [run] lateness: "10x": not a duration …`.
    pub fn locate(&self, error: UsageError) -> UsageError {
        let UsageError::Plain { message, help } = error else {
            return error;
        };
        let found = self.taken.iter().find_map(|(key, span)| {
            let rest = message.strip_prefix(key.flag.as_str())?;
            (rest.is_empty() || rest.starts_with([' ', ':'])).then_some((key, span, rest))
        });
        match found {
            Some((key, span, rest)) => {
                let rest = rest.trim_start_matches([' ', ':']);
                self.error_at(span.clone(), format!("{}: {rest}", key.label), help)
            }
            None => UsageError::Plain { message, help },
        }
    }

    fn error_at(&self, span: Range<usize>, message: String, help: Option<String>) -> UsageError {
        error_at(&self.path, &self.text, span, message, help)
    }
}

fn error_at(
    path: &str,
    text: &str,
    span: Range<usize>,
    message: String,
    help: Option<String>,
) -> UsageError {
    let (line, column) = crate::text::line_col(text, span.start);
    UsageError::InFile {
        message: format!("{path}:{line}:{column}: {message}"),
        source_code: NamedSource::new(path, text.to_string()),
        span: span.into(),
        help,
    }
}

/// Fill the flags of `args` that were not given on the command line (`given(id)` says, by
/// clap id) from the `[run]` table and `[block] mode` of `--config`. `None` without a config.
pub fn apply_run_table(
    args: &mut RunArgs,
    given: &dyn Fn(&str) -> bool,
) -> Result<Option<FromFile>, UsageError> {
    let Some(path) = args.detect.config.clone() else {
        return Ok(None);
    };
    let text = crate::text::read_config_text(&path).map_err(UsageError::plain)?;
    let name = path.display().to_string();
    let view: FileView = toml::from_str(&text).map_err(|e| toml_error(&name, &text, e))?;
    let mut file = FromFile {
        path: name,
        text,
        taken: Vec::new(),
    };
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut fill = Fill {
        given,
        file: &mut file,
        dir: &dir,
    };
    if let Some(run) = view.run {
        fill.apply(run, args)?;
    }
    if let Some(mode) = view.block.and_then(|b| b.mode) {
        fill.value(
            Key::block_mode(),
            Some(mode),
            &mut args.block.mode,
            |text| {
                BlockModeArg::from_str(&text, false)
                    .map_err(|_| format!("{text:?}: use off, simulate or enforce"))
            },
        )?;
    }
    Ok(Some(file))
}

/// Copies values from the file into flags the command line left alone.
struct Fill<'a> {
    given: &'a dyn Fn(&str) -> bool,
    file: &'a mut FromFile,
    dir: &'a Path,
}

impl Fill<'_> {
    /// Every `[run]` key onto its flag.
    fn apply(&mut self, run: RunTable, args: &mut RunArgs) -> Result<(), UsageError> {
        let dir = self.dir.to_path_buf();
        let rel = |p: PathBuf| -> Result<Option<PathBuf>, String> { Ok(Some(dir.join(&p))) };
        self.value(Key::inputs(), run.inputs, &mut args.inputs, |list| {
            Ok(list.into_iter().map(|i| input_from(&dir, i)).collect())
        })?;
        self.value(Key::run("follow"), run.follow, &mut args.follow, same)?;
        self.value(Key::run("journal"), run.journal, &mut args.journal, some)?;
        let (journal_dir, state) = (run.journal_dir, run.state);
        self.value(
            Key::run("journal_dir"),
            journal_dir,
            &mut args.journal_dir,
            rel,
        )?;
        self.value(Key::run("state"), state, &mut args.state, rel)?;
        self.value(Key::run("listen"), run.listen, &mut args.listen, same)?;
        self.value(Key::run("tls_cert"), run.tls_cert, &mut args.tls_cert, rel)?;
        self.value(Key::run("tls_key"), run.tls_key, &mut args.tls_key, rel)?;
        self.value(Key::run("metrics"), run.metrics, &mut args.metrics, some)?;
        self.value(Key::run("archive"), run.archive, &mut args.archive, |a| {
            // A bucket URL stays as written; a directory is taken from the file's directory.
            Ok(Some(if a.contains("://") {
                PathBuf::from(a)
            } else {
                dir.join(a)
            }))
        })?;
        self.value(Key::run("spool"), run.spool, &mut args.spool, rel)?;
        self.value(Key::run("key"), run.key, &mut args.key, rel)?;
        self.value(
            Key::run("roll_rows"),
            run.roll_rows,
            &mut args.roll_rows,
            same,
        )?;
        self.value(
            Key::run("roll_secs"),
            run.roll_secs,
            &mut args.roll_secs,
            same,
        )?;
        let parse = &mut args.parse;
        self.value(Key::run("grammars"), run.grammars, &mut parse.grammars, rel)?;
        self.value(Key::run("tz"), run.tz, &mut parse.tz, some)?;
        self.value(Key::run("year"), run.year, &mut parse.year, some)?;
        self.value(
            Key::run("max_line"),
            run.max_line,
            &mut parse.max_line,
            same,
        )?;
        let proxies = run.trusted_proxy;
        self.value(
            Key::trusted_proxy(),
            proxies,
            &mut parse.trusted_proxies,
            same,
        )?;
        let detect = &mut args.detect;
        self.value(
            Key::run("lateness"),
            run.lateness,
            &mut detect.lateness,
            same,
        )?;
        let events = run.reorder_buffer_events;
        self.value(
            Key::run("reorder_buffer_events"),
            events,
            &mut detect.reorder_buffer_events,
            same,
        )?;
        let mib = run.reorder_buffer_mib;
        self.value(
            Key::run("reorder_buffer_mib"),
            mib,
            &mut detect.reorder_buffer_mib,
            same,
        )?;
        let format = run.alert_format;
        self.value(
            Key::run("alert_format"),
            format,
            &mut detect.alert_format,
            |text| {
                AlertFormatArg::from_str(&text, false)
                    .map_err(|_| format!("{text:?}: use json, text or ocsf"))
            },
        )?;
        let drain = run.drain_timeout;
        self.value(
            Key::run("drain_timeout"),
            drain,
            &mut detect.drain_timeout,
            some,
        )?;
        self.value(Key::run("emit"), run.emit, &mut args.emit, some)?;
        self.value(Key::run("edge_id"), run.edge_id, &mut args.edge_id, some)?;
        let partitions = run.nats_partitions;
        self.value(
            Key::run("nats_partitions"),
            partitions,
            &mut args.nats_partitions,
            some,
        )?;
        Ok(())
    }

    /// One key: unless clap id `id` was given on the command line, `slot` takes the file's
    /// value through `convert`; a value `convert` refuses is an error at its place.
    fn value<V, T>(
        &mut self,
        key: Key,
        value: Option<Spanned<V>>,
        slot: &mut T,
        convert: impl FnOnce(V) -> Result<T, String>,
    ) -> Result<(), UsageError> {
        let Some(value) = value else {
            return Ok(());
        };
        if (self.given)(key.id) {
            return Ok(());
        }
        let span = value.span();
        match convert(value.into_inner()) {
            Ok(v) => {
                *slot = v;
                self.file.taken.push((key, span));
                Ok(())
            }
            Err(why) => Err(self
                .file
                .error_at(span, format!("{}: {why}", key.label), None)),
        }
    }
}

/// A key of the file and the flag it stands for.
struct Key {
    /// The flag's clap id.
    id: &'static str,
    /// The flag as [`super::hiargs`] starts its messages about it.
    flag: String,
    /// The key as messages name it: `[run] lateness`, `[block] mode`.
    label: String,
}

impl Key {
    /// A `[run]` key named for its flag: `reorder_buffer_mib` is `--reorder-buffer-mib`.
    fn run(name: &'static str) -> Key {
        Key {
            id: name,
            flag: format!("--{}", name.replace('_', "-")),
            label: format!("[run] {name}"),
        }
    }

    /// `inputs`: the INPUT arguments.
    fn inputs() -> Key {
        Key {
            id: "inputs",
            flag: "INPUT".into(),
            label: "[run] inputs".into(),
        }
    }

    /// `trusted_proxy`: `--trusted-proxy`, repeatable, kept in `trusted_proxies`.
    fn trusted_proxy() -> Key {
        Key {
            id: "trusted_proxies",
            ..Key::run("trusted_proxy")
        }
    }

    /// `[block] mode`: `--block`.
    fn block_mode() -> Key {
        Key {
            id: "mode",
            flag: "--block".into(),
            label: "[block] mode".into(),
        }
    }
}

/// A value as the file has it.
fn same<T>(value: T) -> Result<T, String> {
    Ok(value)
}

/// A value for an optional flag.
fn some<T>(value: T) -> Result<Option<T>, String> {
    Ok(Some(value))
}

/// An `inputs` entry: `-` is stdin; a relative path is taken from the config's directory.
fn input_from(dir: &Path, input: String) -> String {
    if input == "-" || Path::new(&input).is_absolute() {
        input
    } else {
        dir.join(input).display().to_string()
    }
}

/// toml's own error (syntax, unknown key, wrong type) at its place, with the closest key.
fn toml_error(path: &str, text: &str, e: toml::de::Error) -> UsageError {
    let message = e.message().trim().to_string();
    let help = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .and_then(|word| {
            RUN_KEYS
                .iter()
                .map(|k| (crate::text::edit_distance(word, k), *k))
                .filter(|(d, k)| *d <= 2.max(k.len() / 3))
                .min()
                .map(|(_, k)| format!("did you mean `{k}`?"))
        });
    match e.span() {
        Some(span) => error_at(path, text, span, message, help),
        None => UsageError::Plain {
            message: format!("{path}: {message}"),
            help,
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::parser::ValueSource;
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::flags::lowargs::LowArgs;

    /// `secpipe ARGS…` as main parses it, with the config file applied.
    fn parse(args: &[&str]) -> Result<(RunArgs, Option<FromFile>), UsageError> {
        let matches = LowArgs::command()
            .try_get_matches_from(std::iter::once("secpipe").chain(args.iter().copied()))
            .map_err(|e| UsageError::plain(e.to_string()))?;
        let mut run = LowArgs::from_arg_matches(&matches)
            .map_err(|e| UsageError::plain(e.to_string()))?
            .run;
        // The real ids: a key mapped to an id clap does not know panics here (debug builds).
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let file = apply_run_table(&mut run, &given)?;
        Ok((run, file))
    }

    fn write(dir: &Path, text: &str) -> String {
        let path = dir.join("secpipe.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn message(e: UsageError) -> String {
        match e {
            UsageError::InFile { message, .. } | UsageError::Plain { message, .. } => message,
        }
    }

    #[test]
    fn every_key_gives_what_its_flag_gives() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let config = write(
            dir.path(),
            r#"
[run]
inputs = ["a.log", "/var/log/b.log", "-"]
follow = true
journal = ["_COMM=sshd", "+", "_SYSTEMD_UNIT=nginx.service"]
journal_dir = "journal"
state = "state"
listen = ["syslog+udp://127.0.0.1:5514", "syslog+tls://127.0.0.1:6514"]
tls_cert = "cert.pem"
tls_key = "/etc/key.pem"
metrics = "127.0.0.1:9750"
archive = "archive"
spool = "spool"
key = "archive.key"
roll_rows = 5000
roll_secs = 7
grammars = "grammars"
tz = "Europe/Berlin"
year = 2024
max_line = 4096
trusted_proxy = ["10.0.0.0/8", "192.0.2.1"]
lateness = "3s"
reorder_buffer_events = 1000
reorder_buffer_mib = 16
alert_format = "ocsf"
drain_timeout = "2s"
emit = "nats://127.0.0.1:4222"
edge_id = "edge-1"
nats_partitions = 4

[block]
mode = "simulate"
"#,
        );
        let (from_file, file) = parse(&["--config", &config]).unwrap();
        let file = file.unwrap();
        assert_eq!(file.keys_taken().count(), RUN_KEYS.len() + 1);
        let (from_flags, _) = parse(&[
            "--config",
            &config,
            "--follow",
            "--journal",
            "_COMM=sshd",
            "+",
            "_SYSTEMD_UNIT=nginx.service",
            &format!("--journal-dir={d}/journal"),
            &format!("--state={d}/state"),
            "--listen=syslog+udp://127.0.0.1:5514",
            "--listen=syslog+tls://127.0.0.1:6514",
            &format!("--tls-cert={d}/cert.pem"),
            "--tls-key=/etc/key.pem",
            "--metrics=127.0.0.1:9750",
            &format!("--archive={d}/archive"),
            &format!("--spool={d}/spool"),
            &format!("--key={d}/archive.key"),
            "--roll-rows=5000",
            "--roll-secs=7",
            &format!("--grammars={d}/grammars"),
            "--tz=Europe/Berlin",
            "--year=2024",
            "--max-line=4096",
            "--trusted-proxy=10.0.0.0/8",
            "--trusted-proxy=192.0.2.1",
            "--lateness=3s",
            "--reorder-buffer-events=1000",
            "--reorder-buffer-mib=16",
            "--alert-format=ocsf",
            "--drain-timeout=2s",
            "--emit=nats://127.0.0.1:4222",
            "--edge-id=edge-1",
            "--nats-partitions=4",
            "--block=simulate",
            &format!("{d}/a.log"),
            "/var/log/b.log",
            "-",
        ])
        .unwrap();
        // Every field, compared as clap filled it from the flags.
        assert_eq!(format!("{from_file:?}"), format!("{from_flags:?}"));
    }

    #[test]
    fn a_flag_on_the_command_line_wins_and_a_list_flag_replaces_the_files_list() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "[run]\nlateness = \"3s\"\ninputs = [\"a.log\", \"b.log\"]\nmax_line = 100\n",
        );
        let (run, file) = parse(&["--config", &config, "--lateness", "1m", "/x.log"]).unwrap();
        assert_eq!(run.detect.lateness, "1m");
        assert_eq!(run.inputs, vec!["/x.log".to_string()]);
        assert_eq!(run.parse.max_line, 100);
        assert_eq!(
            file.unwrap().keys_taken().collect::<Vec<_>>(),
            ["[run] max_line"]
        );
        // A flag's default is not "given": the file's value stays.
        let (run, _) = parse(&["--config", &config]).unwrap();
        assert_eq!(run.detect.lateness, "3s");
    }

    #[test]
    fn mistakes_are_reported_at_their_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("[run]\nfollow = \"yes\"\n", ":2:10: invalid type"),
            ("[run]\nlatenes = \"3s\"\n", ":2:1: unknown field `latenes`"),
            (
                "[run]\nalert_format = \"xml\"\n",
                ":2:16: [run] alert_format: \"xml\"",
            ),
            (
                "[block]\nmode = \"on\"\n",
                ":2:8: [block] mode: \"on\": use off",
            ),
            ("[run]\nyear = 70000\n", ":2:8:"),
            ("[run]\nroll_rows = -1\n", ":2:13:"),
        ];
        for (text, expected) in cases {
            let config = write(dir.path(), text);
            let e = parse(&["--config", &config]).err().unwrap();
            assert!(matches!(e, UsageError::InFile { .. }), "{text}");
            let m = message(e);
            assert!(m.contains(expected), "{text}: {m}");
        }
    }

    #[test]
    fn a_message_about_a_flag_from_the_file_moves_to_the_files_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(dir.path(), "[run]\n\nlateness = \"10x\"\n");
        let (_, file) = parse(&["--config", &config]).unwrap();
        let file = file.unwrap();
        let moved = file.locate(UsageError::plain("--lateness 10x: not a duration"));
        assert!(message(moved).ends_with("secpipe.toml:3:12: [run] lateness: 10x: not a duration"));
        // A message about a flag the file did not set stays as it is.
        let kept = file.locate(UsageError::plain("--tz Mars/Base: unknown zone"));
        assert_eq!(message(kept), "--tz Mars/Base: unknown zone");
        // `--lateness-x` is not `--lateness`.
        let kept = file.locate(UsageError::plain("--latenessx 1"));
        assert_eq!(message(kept), "--latenessx 1");
    }

    #[test]
    fn a_config_that_never_ends_is_refused_not_read_into_memory() {
        let e = crate::text::read_config_text(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("more than 4 MiB"), "{e}");
    }

    #[test]
    fn relative_paths_are_the_config_directorys_and_urls_stay() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "[run]\narchive = \"s3://bucket/prefix\"\nstate = \"../state\"\ninputs = [\"-\"]\n",
        );
        let (run, _) = parse(&["--config", &config]).unwrap();
        assert_eq!(run.archive, Some(PathBuf::from("s3://bucket/prefix")));
        assert_eq!(run.state, Some(dir.path().join("../state")));
        assert_eq!(run.inputs, vec!["-".to_string()]);
    }
}
