//! systemd service notification (`sd_notify`): telling the service manager that secpipe is
//! ready, reloading, stopping, how it is doing, and that it is still alive.
//!
//! When systemd starts a `Type=notify` unit it passes `NOTIFY_SOCKET`, a unix datagram socket
//! (a path, or an abstract name written `@name`), and with `WatchdogSec=` also `WATCHDOG_USEC`
//! (and `WATCHDOG_PID`). Each message is one datagram of `KEY=value` lines. Without
//! `NOTIFY_SOCKET` every call here does nothing, so secpipe behaves the same outside systemd.
//!
//! When each message is sent, and why there:
//! - `READY=1` once every source is started: listeners are bound (in the build, before the
//!   run) and followed files open, and with `--block` the ban table is in place. A client that
//!   connects once systemd says the service is up is then accepted.
//! - `RELOADING=1` (with `MONOTONIC_USEC`, as `Type=notify-reload` wants) then `READY=1`
//!   around a `SIGHUP` reload, whether it applied or failed (a failed reload leaves the old
//!   rules running: the service is still ready).
//! - `STOPPING=1` once a stop signal is seen.
//! - `STATUS=` with counts, at most every [`STATUS_EVERY`].
//! - `WATCHDOG=1` every half `WATCHDOG_USEC`, sent by the ordered stage after it took a batch
//!   or an idle tick: a stage that is stuck (a blocked sink, a wedged archive) stops the pings
//!   and systemd restarts the service, which is the point of a watchdog. A thread that only
//!   pinged on a timer would keep a wedged pipeline alive for ever.
//!
//! Sending never blocks (datagrams, non-blocking socket) and a failure is ignored: the service
//! manager going away must not stop the pipeline.
//!
//! ```
//! let notifier = secpipe::notify::Notifier::from_values(None, None, None);
//! assert!(!notifier.enabled());
//! notifier.send("READY=1"); // nothing to send to: a no-op
//! ```

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// How often `STATUS=` is refreshed.
pub const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Where notifications go (nowhere when secpipe was not started by systemd).
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this process.
    watchdog_every: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets.
    pub fn from_env() -> Notifier {
        let var = |name: &str| std::env::var(name).ok();
        Notifier::from_values(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
        )
    }

    /// From the values of `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`. A socket name
    /// that is neither an absolute path nor `@abstract` is ignored, as `sd_notify` does.
    ///
    /// ```
    /// use secpipe::notify::Notifier;
    /// let n = Notifier::from_values(Some("/run/nothing-here"), Some("20000000"), None);
    /// assert!(n.enabled());
    /// assert_eq!(n.watchdog_every(), Some(std::time::Duration::from_secs(10)));
    /// // WATCHDOG_PID names another process (a shell that started us): not ours to ping.
    /// let n = Notifier::from_values(Some("/run/x"), Some("20000000"), Some("1"));
    /// assert_eq!(n.watchdog_every(), None);
    /// assert!(!Notifier::from_values(Some("relative/path"), None, None).enabled());
    /// ```
    pub fn from_values(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
    ) -> Notifier {
        let socket = socket.and_then(|name| {
            let addr = socket_addr(name)?;
            let sock = UnixDatagram::unbound().ok()?;
            sock.set_nonblocking(true).ok()?;
            Some((sock, addr))
        });
        let ours = watchdog_pid.is_none_or(|pid| pid.trim() == std::process::id().to_string());
        let watchdog_every = watchdog_usec
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && ours && socket.is_some())
            .map(|usec| Duration::from_micros(usec / 2));
        Notifier {
            socket,
            watchdog_every,
        }
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog_every
    }

    /// Send one notification (`KEY=value` lines); failures are ignored (see the module doc).
    pub fn send(&self, message: &str) {
        if let Some((sock, addr)) = &self.socket {
            let _ = sock.send_to_addr(message.as_bytes(), addr);
        }
    }

    pub fn ready(&self) {
        self.send("READY=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// `RELOADING=1` with the monotonic time systemd uses to match it to its own `SIGHUP`.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }
}

/// A path socket, or an abstract one (`@name`: a leading NUL in the kernel's terms).
fn socket_addr(name: &str) -> Option<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(abstract_name.as_bytes()).ok();
    }
    if name.starts_with('/') {
        return SocketAddr::from_pathname(name).ok();
    }
    None
}

/// `CLOCK_MONOTONIC` in µs, the clock `MONOTONIC_USEC` is read in.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1_000)
}

/// The ordered stage's side of notification: watchdog pings and status lines, each when due,
/// and `STOPPING=1` once.
pub struct Heartbeat {
    notifier: std::sync::Arc<Notifier>,
    last_ping: Option<Instant>,
    last_status: Option<Instant>,
    stopping_sent: bool,
}

impl Heartbeat {
    pub fn new(notifier: std::sync::Arc<Notifier>) -> Heartbeat {
        Heartbeat {
            notifier,
            last_ping: None,
            last_status: None,
            stopping_sent: false,
        }
    }

    /// The ordered stage took a batch or an idle tick: ping the watchdog and refresh the
    /// status when due. `status` is only called when a status line is due.
    pub fn progress(&mut self, status: impl FnOnce() -> String) {
        if !self.notifier.enabled() {
            return;
        }
        let now = Instant::now();
        if let Some(every) = self.notifier.watchdog_every
            && self
                .last_ping
                .is_none_or(|t| now.duration_since(t) >= every)
        {
            self.notifier.send("WATCHDOG=1");
            self.last_ping = Some(now);
        }
        if self
            .last_status
            .is_none_or(|t| now.duration_since(t) >= STATUS_EVERY)
        {
            self.notifier.send(&format!("STATUS={}", status()));
            self.last_status = Some(now);
        }
    }

    /// A stop was asked for: say so once.
    pub fn stopping(&mut self) {
        if !self.stopping_sent {
            self.notifier.stopping();
            self.stopping_sent = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        match sock.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => panic!("no datagram: {e}"),
        }
    }

    #[test]
    fn notifications_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("secpipe-notify-test-{}", std::process::id());
        let addr = match SocketAddr::from_abstract_name(name.as_bytes()) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let listener = match UnixDatagram::bind_addr(&addr) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let notifier = Notifier::from_values(Some(&format!("@{name}")), None, None);
        notifier.ready();
        assert_eq!(receive(&listener), "READY=1");
        notifier.reloading();
        let reloading = receive(&listener);
        assert!(
            reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{reloading}"
        );
        let usec: u64 = reloading
            .rsplit('=')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(usec > 0, "{reloading}");
    }

    #[test]
    fn the_heartbeat_pings_the_watchdog_only_when_told_of_progress() {
        let dir = std::env::temp_dir().join(format!("secpipe-hb-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = match UnixDatagram::bind(&path) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let _ = listener.set_nonblocking(true);
        let notifier = Notifier::from_values(path.to_str(), Some("2"), None);
        let mut heartbeat = Heartbeat::new(std::sync::Arc::new(notifier));
        // No progress reported: nothing is sent, however long we wait.
        std::thread::sleep(Duration::from_millis(5));
        let mut buf = [0u8; 64];
        assert!(listener.recv(&mut buf).is_err());
        heartbeat.progress(|| "1 event".into());
        let _ = listener.set_nonblocking(false);
        assert_eq!(receive(&listener), "WATCHDOG=1");
        assert_eq!(receive(&listener), "STATUS=1 event");
        heartbeat.stopping();
        heartbeat.stopping();
        assert_eq!(receive(&listener), "STOPPING=1");
        let _ = listener.set_nonblocking(true);
        assert!(listener.recv(&mut buf).is_err(), "STOPPING=1 is sent once");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
