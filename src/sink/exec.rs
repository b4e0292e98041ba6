//! `--alerts exec:/path/to/program`: run a program for every alert, the way Wazuh's active
//! responses do since 4.2 — the alert as JSON on its stdin — and never the way fail2ban's
//! shell templates did (CVE-2021-32749: a crafted user name became shell code).
//!
//! **Nothing an attacker wrote becomes an argument or shell code.** The program is started
//! directly (`execve`, no shell, no `PATH` search: the path must be absolute). Its arguments
//! come only from the configuration (`args = […]` in `secpipe.toml`). The alert, including the
//! key and the evidence an attacker controls, goes on stdin as one JSON object (the DESIGN §5
//! alert, as `--alerts FILE` writes it) followed by a newline. The environment is emptied and
//! holds only `PATH` ([`SAFE_PATH`]) and three values secpipe itself chose:
//! `SECPIPE_RULE` (a rule id from the configuration), `SECPIPE_SEVERITY` (`LOW` … `CRITICAL`)
//! and `SECPIPE_ALERT_ID` (hex). The key is deliberately *not* in the environment: scripts
//! expand variables unquoted (`iptables … $SECPIPE_KEY`), which would hand attacker text to a
//! shell again; a program that needs the key reads it from the JSON.
//!
//! **Bounded.** One program runs at a time per sink, on the sink's own thread (alerts wait in
//! the sink's queue, which drops and counts when full, so a slow program never stalls
//! detection). A program still running at the timeout (`timeout`, default
//! [`DEFAULT_TIMEOUT`]) is killed with its whole process group. Its stdout and stderr are read
//! as it writes them and kept up to [`OUTPUT_CAP`] each; the rest is read, counted and thrown
//! away, so a program that writes gigabytes costs 64 KiB. A program still running when
//! secpipe exits (it gave up at the drain limit, or was killed) is killed with it
//! (`PR_SET_PDEATHSIG`).
//!
//! **Delivery.** Exit status 0 delivers the alert. A non-zero exit, a kill at the timeout or a
//! program that cannot be started is retried (`attempts`, default [`DEFAULT_ATTEMPTS`], with
//! the shared backoff between attempts); after the last, the alert is reported on stderr with
//! the program's status and the start of its stderr, and counted as not delivered.

use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use super::encode::{Encoding, push_clean};
use super::queue::Transport;
use super::retry::{Attempt, DrainClock, GaveUp, RetryPolicy};

/// The only `PATH` the program sees (what systemd gives a service).
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a program may run before it is killed, unless `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often one alert's program is run before the alert is given up, unless `attempts` says.
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// How much of each of stdout and stderr is kept; the rest is counted.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// How long the output of a killed group is still waited for.
const AFTER_KILL: Duration = Duration::from_secs(1);

/// How much of each output a failure report shows.
const REPORTED_OUTPUT: usize = 512;

/// The optional settings of an exec sink (`exec = { … }` in `secpipe.toml`).
///
/// ```
/// use secpipe::sink::exec::ExecOptions;
/// let o: ExecOptions = toml::from_str(r#"args = ["--page", "soc"]
/// timeout = "5s""#).unwrap();
/// assert_eq!(o.args, ["--page", "soc"]);
/// let typo = toml::from_str::<ExecOptions>(r#"timout = "5s""#).unwrap_err().to_string();
/// assert!(typo.contains("unknown field `timout`") && typo.contains("`timeout`"), "{typo}");
/// ```
#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExecOptions {
    /// The program's arguments, exactly as given (no splitting, no expansion).
    #[serde(default)]
    pub args: Vec<String>,
    /// How long one run may take (`"10s"`).
    pub timeout: Option<String>,
    /// Runs per alert before it is given up (at least 1).
    pub attempts: Option<u32>,
}

/// One exec destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// Absolute path of the program.
    pub program: PathBuf,
    pub options: ExecOptions,
    timeout: Duration,
    attempts: u32,
    /// The shared backoff between attempts ([`super::retry`]).
    pub retry: RetryPolicy,
}

impl ExecConfig {
    /// `exec:/absolute/path`; `None` when `spec` is not an exec sink at all.
    ///
    /// ```
    /// use secpipe::sink::exec::ExecConfig;
    /// let c = ExecConfig::parse("exec:/usr/local/bin/page-oncall").unwrap().unwrap();
    /// assert_eq!(c.program.to_str(), Some("/usr/local/bin/page-oncall"));
    /// let relative = ExecConfig::parse("exec:page-oncall").unwrap().unwrap_err();
    /// assert!(relative.contains("absolute path"), "{relative}");
    /// assert!(ExecConfig::parse("alerts.jsonl").is_none());
    /// ```
    pub fn parse(spec: &str) -> Option<Result<ExecConfig, String>> {
        let program = spec.strip_prefix("exec:")?;
        if !program.starts_with('/') {
            return Some(Err(format!(
                "{spec}: give the program as an absolute path (it is run without a shell or PATH search)"
            )));
        }
        Some(ExecConfig::with_options(
            program.into(),
            ExecOptions::default(),
        ))
    }

    /// The program with its settings checked.
    ///
    /// ```
    /// use secpipe::sink::exec::{ExecConfig, ExecOptions};
    /// let options = ExecOptions { timeout: Some("soon".into()), ..Default::default() };
    /// let bad = ExecConfig::with_options("/bin/true".into(), options).unwrap_err();
    /// assert!(bad.contains("timeout"), "{bad}");
    /// ```
    pub fn with_options(program: PathBuf, options: ExecOptions) -> Result<ExecConfig, String> {
        let name = program.display();
        let timeout = match &options.timeout {
            None => DEFAULT_TIMEOUT,
            Some(text) => match super::retry::option_duration("timeout", text)
                .map_err(|e| format!("exec:{name}: {e}"))?
            {
                zero if zero.is_zero() => {
                    return Err(format!("exec:{name}: timeout must be more than 0"));
                }
                timeout => timeout,
            },
        };
        let attempts = options.attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if attempts == 0 {
            return Err(format!("exec:{name}: attempts must be at least 1"));
        }
        Ok(ExecConfig {
            program,
            options,
            timeout,
            attempts,
            retry: RetryPolicy::default(),
        })
    }

    /// Check that the program can be run and start the sink's thread. Retrying stops at the
    /// drain limit once `shutdown` is triggered.
    /// The sink's name in messages.
    pub fn name(&self) -> String {
        format!("exec:{}", self.program.display())
    }

    pub fn remote(&self, ctx: &super::OpenContext) -> Result<super::Remote, String> {
        let name = self.name();
        check_runnable(&self.program).map_err(|e| format!("--alerts {name}: {e}"))?;
        let transport = Exec {
            name: name.clone(),
            program: self.program.clone(),
            args: self.options.args.clone(),
            timeout: self.timeout,
            attempts: self.attempts,
            retry: self.retry.clone(),
            clock: DrainClock::new(ctx.shutdown.clone(), ctx.drain),
        };
        Ok(super::Remote {
            name,
            transport: Box::new(transport),
            encoding: Encoding::Json,
        })
    }
}

/// A regular file with an execute bit: found at start, not at the first attack.
fn check_runnable(program: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(program)?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::other("not an executable file"));
    }
    Ok(())
}

/// The fields of an alert that go into the environment.
#[derive(Deserialize)]
struct AlertHead {
    id: String,
    rule: String,
    severity: String,
}

/// How one run ended.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    /// `None`: killed at the timeout.
    pub status: Option<std::process::ExitStatus>,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl RunOutcome {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// How it ended and the start of what it wrote, cleaned for a terminal.
    fn report(&self, timeout: Duration) -> String {
        let mut report = self.describe(timeout);
        for (name, captured) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            let shown = captured.kept.len().min(REPORTED_OUTPUT);
            let text = String::from_utf8_lossy(captured.kept.get(..shown).unwrap_or_default());
            if text.trim().is_empty() {
                continue;
            }
            report.push_str(&format!("; {name}: "));
            push_clean(&mut report, text.trim_end());
            let more = captured.discarded + (captured.kept.len() - shown) as u64;
            if more > 0 {
                report.push_str(&format!(" (and {more} more bytes)"));
            }
        }
        report
    }

    /// `exit status 3`, `killed by signal 9`, `killed at the timeout (10s)`.
    fn describe(&self, timeout: Duration) -> String {
        match self.status {
            None => format!("killed at the timeout ({timeout:?})"),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => s.to_string(),
            },
        }
    }
}

/// What was kept of one output stream, and how much more there was.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub kept: Vec<u8>,
    pub discarded: u64,
}

/// Read `stream` to its end, keeping at most [`OUTPUT_CAP`] bytes.
fn capture(mut stream: impl Read) -> Captured {
    let mut captured = Captured::default();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return captured,
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or_default();
                let room = OUTPUT_CAP.saturating_sub(captured.kept.len()).min(n);
                captured
                    .kept
                    .extend_from_slice(chunk.get(..room).unwrap_or_default());
                captured.discarded += (n - room) as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return captured,
        }
    }
}

/// Run `program` once with `stdin` as its input; see the module docs for what it gets.
pub(crate) fn run_once(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    stdin: &[u8],
    timeout: Duration,
) -> io::Result<RunOutcome> {
    let mut command = Command::new(program);
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2), which
    // is async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        command.pre_exec(|| {
            // The program dies with the thread that started it (the sink's): a secpipe that
            // exits at the drain limit, or is killed, leaves no program running past it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the timeout kills whatever it started too.
        .process_group(0)
        .spawn()?;
    let group = child.id();
    let (mut input, out, err) = match (child.stdin.take(), child.stdout.take(), child.stderr.take())
    {
        (Some(i), Some(o), Some(e)) => (i, o, e),
        _ => {
            kill_group(group);
            let _ = child.wait();
            return Err(io::Error::other("no pipes to the program"));
        }
    };
    // Each pipe on its own thread: a program that does not read its stdin, or fills one
    // output while we wait on the other, must not block us.
    let input_data = stdin.to_vec();
    let (out_tx, out_rx) = crossbeam_channel::bounded(1);
    let (err_tx, err_rx) = crossbeam_channel::bounded(1);
    let (status_tx, status_rx) = crossbeam_channel::bounded(1);
    let started = helper(move || {
        // A program that exits without reading is not an error of ours.
        let _ = input.write_all(&input_data);
    })
    .and_then(|()| helper(move || drop(out_tx.send(capture(out)))))
    .and_then(|()| helper(move || drop(err_tx.send(capture(err)))));
    if let Err(e) = started {
        kill_group(group);
        let _ = child.wait();
        return Err(e);
    }
    if let Err(e) = helper(move || drop(status_tx.send(child.wait()))) {
        // Not waited for: it ends as a zombie rather than running on.
        kill_group(group);
        return Err(e);
    }

    // A timeout too long for the clock means no timeout.
    let deadline = std::time::Instant::now().checked_add(timeout);
    let status = match receive_until(&status_rx, deadline) {
        Some(status) => Some(status?),
        None => {
            kill_group(group);
            // Reaped by its thread once killed; its status is not the program's answer.
            let _ = status_rx.recv();
            None
        }
    };
    // The outputs end when every process holding them has exited: one the program left
    // behind is killed once the deadline has passed (it is in the program's group). One that
    // left the group (a daemon in its own session) is not waited for: its output is given up,
    // and its reader thread ends when it does.
    let collect = |rx: crossbeam_channel::Receiver<Captured>| match receive_until(&rx, deadline) {
        Some(captured) => captured,
        None => {
            kill_group(group);
            rx.recv_timeout(AFTER_KILL).unwrap_or_default()
        }
    };
    let stdout = collect(out_rx);
    let stderr = collect(err_rx);
    Ok(RunOutcome {
        status,
        stdout,
        stderr,
    })
}

/// A helper thread of one run; failing to start one (no threads left) is that run's error,
/// not a crash.
fn helper(work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name("exec pipe".into())
        .spawn(work)
        .map(drop)
}

/// What `rx` delivers before `deadline` (`None`: no deadline), `None` when it does not.
fn receive_until<T>(
    rx: &crossbeam_channel::Receiver<T>,
    deadline: Option<std::time::Instant>,
) -> Option<T> {
    match deadline {
        Some(deadline) => rx.recv_deadline(deadline).ok(),
        None => rx.recv().ok(),
    }
}

/// SIGKILL to every process of the group the program leads.
fn kill_group(group: u32) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// Runs the program for each alert, one at a time.
struct Exec {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    attempts: u32,
    retry: RetryPolicy,
    clock: DrainClock,
}

impl Exec {
    /// Run the program for one alert until a run succeeds, `attempts` runs failed, or the
    /// drain limit passed; why the last run failed, for the report.
    fn run_with_retries(&mut self, json: &[u8], head: &AlertHead) -> Result<(), GaveUp> {
        let env = [
            ("SECPIPE_RULE", head.rule.as_str()),
            ("SECPIPE_SEVERITY", head.severity.as_str()),
            ("SECPIPE_ALERT_ID", head.id.as_str()),
        ];
        let (program, args, timeout, attempts) =
            (&self.program, &self.args, self.timeout, self.attempts);
        self.retry
            .run(&mut self.clock, |n| {
                let why = match run_once(program, args, &env, json, timeout) {
                    Ok(outcome) if outcome.succeeded() => return Attempt::Done(()),
                    Ok(outcome) => outcome.report(timeout),
                    Err(e) => format!("cannot run: {e}"),
                };
                if n.saturating_add(1) >= attempts {
                    Attempt::Fail(why)
                } else {
                    Attempt::retry(why)
                }
            })
            .map(|_| ())
    }
}

impl Transport for Exec {
    fn observe(&mut self, metrics: crate::metrics::SinkMetrics) {
        self.clock.observe(metrics);
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let head: AlertHead = serde_json::from_slice(line).map_err(io::Error::other)?;
        self.run_with_retries(line, &head).map_err(|gave_up| {
            let message = format!(
                "alerts: {}: alert {} ({}) not delivered after {} runs: {gave_up}",
                self.name,
                head.id,
                head.rule,
                gave_up.retries.saturating_add(1)
            );
            crate::report::warn(&message);
            gave_up.into_io_error(message)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// One alert the program refused is that alert's loss (reported, counted); the next alert
    /// is run again.
    fn stops_on_error(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell script as the program (the script is ours; what it gets is the attacker's).
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// A program that never exits (nor lets its child exit) is killed at the timeout, with
    /// the process it started: nothing of it is left holding the pipes.
    #[test]
    fn a_program_that_never_exits_is_killed_at_the_timeout_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("child.pid");
        let program = script(
            dir.path(),
            "hang",
            &format!("sleep 1000 & echo $! > {}\nwait", pid_file.display()),
        );
        let outcome =
            run_once(&program, &[], &[], b"{}\n", Duration::from_millis(300)).expect("started");
        assert!(outcome.status.is_none(), "killed, not exited: {outcome:?}");
        assert!(!outcome.succeeded());
        let child: i32 = std::fs::read_to_string(&pid_file)
            .expect("the script started its child")
            .trim()
            .parse()
            .expect("a pid");
        // The killed child is gone (reaped by init, or a zombie at worst): /proc has no entry,
        // or says zombie. SIGKILL was sent; on a loaded machine the child may still be on its
        // way out (state R), so look again for a while before calling it alive.
        let mut state = String::new();
        for _ in 0..200 {
            state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if state.is_empty() || state.split(' ').nth(2) == Some("Z") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the child of the program was not killed: {state}");
    }

    /// A program that leaves a process behind in a session of its own, holding its stdout:
    /// the run still ends (the output is given up), the sink is not held for ever.
    #[test]
    fn a_daemon_that_escapes_the_group_does_not_hold_the_sink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("daemon.pid");
        let program = script(
            dir.path(),
            "escape",
            &format!(
                "setsid sh -c 'echo $$ > {}; exec sleep 1000' &\nwhile [ ! -s {} ]; do sleep 0.01; done\nexit 0",
                pid_file.display(),
                pid_file.display()
            ),
        );
        let outcome =
            run_once(&program, &[], &[], b"{}\n", Duration::from_millis(300)).expect("started");
        assert!(outcome.succeeded(), "{outcome:?}");
        let daemon: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("a pid");
        // Still running when the run was over: it was not waited for.
        let state = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap_or_default();
        let running = !state.is_empty() && state.split(' ').nth(2) != Some("Z");
        // SAFETY: kill(2) of the test's own leftover process.
        unsafe { libc::kill(daemon, libc::SIGKILL) };
        assert!(
            running,
            "the run ended while the escaped daemon still held its output"
        );
    }

    /// A program that writes far more than the cap costs the cap; the rest is counted.
    #[test]
    fn a_program_that_floods_its_output_costs_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 8 MiB on each of stdout and stderr (enough to prove the cap without a slow test).
        let program = script(
            dir.path(),
            "flood",
            "head -c 8388608 /dev/zero; head -c 8388608 /dev/zero >&2",
        );
        let outcome =
            run_once(&program, &[], &[], b"{}\n", Duration::from_secs(60)).expect("started");
        assert!(outcome.succeeded(), "{outcome:?}");
        for captured in [&outcome.stdout, &outcome.stderr] {
            assert_eq!(captured.kept.len(), OUTPUT_CAP);
            assert_eq!(captured.discarded, 8 * 1024 * 1024 - OUTPUT_CAP as u64);
        }
    }

    /// The environment holds PATH and what the caller gave, nothing of secpipe's own.
    #[test]
    fn the_program_gets_a_clean_environment_and_its_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(dir.path(), "env", "env | sort; cat");
        // The test process has HOME, CARGO_* and more: none of it may reach the program.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let outcome = run_once(
            &program,
            &[],
            &[("SECPIPE_RULE", "auth.bruteforce")],
            b"{\"id\":\"01\"}\n",
            Duration::from_secs(60),
        )
        .expect("started");
        let out = String::from_utf8_lossy(&outcome.stdout.kept);
        let env: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with('{') && !l.starts_with("PWD="))
            .collect();
        assert_eq!(
            env,
            [
                format!("PATH={SAFE_PATH}").as_str(),
                "SECPIPE_RULE=auth.bruteforce"
            ],
            "{out}"
        );
        assert!(out.ends_with("{\"id\":\"01\"}\n"), "{out}");
    }

    /// A non-zero exit is retried, and the alert counts as delivered once a run succeeds.
    #[test]
    fn a_failing_run_is_retried_until_one_succeeds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let count = dir.path().join("runs");
        // Fails on its first run, succeeds on the second.
        let program = script(
            dir.path(),
            "flaky",
            &format!(
                "echo run >> {c}\n[ $(wc -l < {c}) -ge 2 ] || {{ echo busy >&2; exit 75; }}",
                c = count.display()
            ),
        );
        let mut config = ExecConfig::with_options(
            program,
            ExecOptions {
                attempts: Some(2),
                ..Default::default()
            },
        )
        .expect("config");
        config.retry.initial = Duration::from_millis(1);
        let mut sink = config
            .remote(&crate::sink::tests::context(
                &crate::shutdown::Shutdown::new(),
                Duration::from_secs(60),
            ))
            .map(|r| r.queued())
            .expect("open");
        use crate::sink::AlertSink;
        sink.write(&[crate::sink::tests::alert(1)]).expect("queued");
        let report = Box::new(sink).close();
        assert_eq!((report.alerts, report.delivered), (1, 1));
        let runs = std::fs::read_to_string(&count).expect("runs");
        assert_eq!(runs.lines().count(), 2);
    }
}
