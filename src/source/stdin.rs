//! Standard input that a shutdown can interrupt.
//!
//! A thread blocked in `read(0)` cannot be woken portably: closing or replacing the descriptor
//! does not interrupt a read already waiting on it. So a small *pump* thread does the blocking
//! reads and passes the chunks through a channel, and the reader side waits on that channel
//! with a timeout, checking the shutdown flag in between. On SIGTERM the reader reports end of
//! input, the pipeline flushes what it has, and the pump, still blocked, simply ends with the
//! process. That is what makes `kill -TERM` work on `journalctl -f | secpipe` even when
//! journalctl does not get the signal too.
//!
//! ```
//! use std::io::Read;
//! let shutdown = secpipe::shutdown::Shutdown::new();
//! shutdown.trigger();
//! // With shutdown triggered and nothing pumped yet, reading ends at once.
//! let mut stdin = secpipe::source::stdin::InterruptibleStdin::new(shutdown, None);
//! let mut buf = [0u8; 16];
//! assert_eq!(stdin.read(&mut buf).unwrap(), 0);
//! ```

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError, bounded};

use super::files::READ_BUFFER;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// How often a waiting reader looks at the shutdown flag.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Stdin, read by a pump thread; see the module docs.
pub struct InterruptibleStdin {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    shutdown: Shutdown,
    /// End of input or shutdown seen.
    done: bool,
    /// A read error to report once the bytes before it are returned.
    pending_error: Option<io::Error>,
}

impl InterruptibleStdin {
    /// Start the pump. `metrics` (if any) counts the bytes read as input `-`.
    pub fn new(shutdown: Shutdown, metrics: Option<Arc<Metrics>>) -> InterruptibleStdin {
        // Two chunks in flight: enough to overlap reading and framing, small enough that
        // backpressure still reaches the writer through the pipe.
        let (tx, rx) = bounded(2);
        let pump = move || {
            let mut stdin = io::stdin().lock();
            // One read buffer, and a copy of just the bytes read: a pipe returns 64 KiB at a
            // time, and a fresh zeroed 1 MiB per read would cost more than the copy.
            let mut buf = vec![0u8; READ_BUFFER];
            loop {
                match stdin.read(&mut buf) {
                    Ok(n) => {
                        let chunk = buf[..n].to_vec();
                        if let Some(m) = &metrics {
                            m.input_bytes_read("-", n as u64);
                        }
                        // An empty chunk is end of input, sent on so the reader sees it.
                        if tx.send(Ok(chunk)).is_err() || n == 0 {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        };
        // If the thread cannot start, the reader sees a closed channel: an empty input.
        let _ = std::thread::Builder::new()
            .name("stdin-pump".into())
            .spawn(pump);
        InterruptibleStdin {
            chunks: rx,
            current: Vec::new(),
            pos: 0,
            shutdown,
            done: false,
            pending_error: None,
        }
    }

    /// The next chunk: `Ok(None)` at end of input or on shutdown.
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match self.chunks.recv_timeout(CHECK_EVERY) {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(None),
                Ok(Ok(chunk)) => return Ok(Some(chunk)),
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) if self.shutdown.is_triggered() => {
                    // What the pump already read is input too: hand it on, then stop.
                    return match self.chunks.try_recv() {
                        Ok(Ok(chunk)) if !chunk.is_empty() => Ok(Some(chunk)),
                        Ok(Err(e)) => Err(e),
                        Ok(Ok(_)) | Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                            Ok(None)
                        }
                    };
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Read for InterruptibleStdin {
    /// Fills `buf` from the chunks already pumped and waits only when there are none: a short
    /// read then means "the writer has nothing more right now", which is when the batch reader
    /// hands a partial batch on.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            if self.pos < self.current.len() {
                let n = (buf.len() - filled).min(self.current.len() - self.pos);
                buf[filled..filled + n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                filled += n;
                if filled == buf.len() {
                    return Ok(filled);
                }
            }
            if let Some(e) = self.pending_error.take() {
                return if filled > 0 {
                    self.pending_error = Some(e);
                    Ok(filled)
                } else {
                    Err(e)
                };
            }
            if self.done {
                return Ok(filled);
            }
            let next = if filled > 0 {
                // Something to return already: take only what is there, never wait.
                match self.chunks.try_recv() {
                    Ok(chunk) => Some(chunk),
                    Err(_) => return Ok(filled),
                }
            } else {
                self.next_chunk().transpose()
            };
            match next {
                Some(Ok(chunk)) if !chunk.is_empty() => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => self.pending_error = Some(e),
                Some(Ok(_)) | None => self.done = true,
            }
        }
    }
}
