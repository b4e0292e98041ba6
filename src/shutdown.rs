//! Graceful shutdown: one stop signal that every stage can see, and the signal handlers that
//! raise it.
//!
//! The order matters more than the speed. When SIGINT or SIGTERM arrives, only the *sources*
//! stop: they finish the batch in hand, stop reading, and drop their channel senders. Nothing
//! else is told to stop. The parse stage ends when its input channel is empty and closed, the
//! ordered stage when its own input is, and then it flushes the detector, seals the archive and
//! saves checkpoints. Stopping every thread at once instead would throw away the batches in the
//! channels, whose lines were already read and, with `--state`, would never be read again.
//!
//! Threads ask [`Shutdown::is_triggered`] between reads; async tasks `select!` on
//! [`Shutdown::triggered`], so a listener blocked in `accept` or `recv` wakes at once instead of
//! at its next packet.
//!
//! ```
//! use secpipe::shutdown::Shutdown;
//! let shutdown = Shutdown::new();
//! let seen_by_a_reader = shutdown.clone();
//! assert!(!seen_by_a_reader.is_triggered());
//! shutdown.trigger();
//! assert!(seen_by_a_reader.is_triggered());
//! ```

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Shared stop flag: set by SIGINT/SIGTERM (or by a stage that failed); every source checks it
/// and winds down, and the rest of the pipeline drains what is in flight.
#[derive(Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Ask everything to stop reading. Idempotent.
    pub fn trigger(&self) {
        self.0.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once [`Shutdown::trigger`] has been called (at once if it already was).
    ///
    /// ```
    /// let shutdown = secpipe::shutdown::Shutdown::new();
    /// shutdown.trigger();
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(shutdown.triggered());
    /// ```
    pub async fn triggered(&self) {
        self.0.cancelled().await
    }

    /// Sleep up to `pause` in a thread, waking early when shutdown is triggered. Returns true
    /// when shutdown was triggered. For polling loops such as `--follow`.
    ///
    /// ```
    /// let shutdown = secpipe::shutdown::Shutdown::new();
    /// shutdown.trigger();
    /// assert!(shutdown.sleep(std::time::Duration::from_secs(60)));
    /// ```
    pub fn sleep(&self, pause: Duration) -> bool {
        // A short step bounds how long a stop request waits for a sleeping poller without a
        // wake-up channel per thread.
        const STEP: Duration = Duration::from_millis(25);
        let mut left = pause;
        while !left.is_zero() {
            if self.is_triggered() {
                return true;
            }
            let step = left.min(STEP);
            std::thread::sleep(step);
            left -= step;
        }
        self.is_triggered()
    }
}

/// The runtime for everything that waits on sockets or signals: syslog listeners, the metrics
/// endpoint, signal handlers. Two workers are plenty: they only move bytes into batches, and the
/// parse and ordered stages keep their own threads.
pub fn io_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("secpipe-io")
        .enable_all()
        .build()
}

/// Turn the first SIGINT or SIGTERM into [`Shutdown::trigger`], and a second one into an
/// immediate exit (status 130), the escape hatch when draining takes too long for the operator.
///
/// Must be called before any input is read: until tokio registers the handler, SIGTERM keeps
/// its default action and would kill the process without flushing anything.
pub fn spawn_signal_handler(
    runtime: &tokio::runtime::Handle,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Registering happens here, synchronously, so that a signal arriving right after this call
    // returns is already caught; only the waiting happens in the task.
    let _guard = runtime.enter();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    runtime.spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        crate::report::note(&format!(
            "{name}: stopping input, draining the pipeline (again to quit now)"
        ));
        shutdown.trigger();
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        crate::report::note("second signal: exiting without draining");
        std::process::exit(130);
    });
    Ok(())
}
