//! Stdin and files named on the command line (plain, gzip or zstd, detected by content), read
//! once to their end, one after the other, on one thread ([`BatchInputs`]).
//!
//! A reader reads big buffers (1 MiB), frames them into lines and hands on [`LineBatch`]es;
//! nothing is read a line at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::ProgressBar;

use super::{Liveness, ReadReport, Source, SourceContext, SourceHandle, stdin};
use crate::frame::{LineBatch, LineFramer};

/// Read size. Large reads keep syscalls rare.
pub const READ_BUFFER: usize = 1024 * 1024;

/// One batch input named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    Stdin,
    File(PathBuf),
}

impl InputSpec {
    /// `-` is stdin; anything else is a path.
    ///
    /// ```
    /// use secpipe::source::files::InputSpec;
    /// assert_eq!(InputSpec::from_arg("-"), InputSpec::Stdin);
    /// assert_eq!(InputSpec::from_arg("auth.log").name(), "auth.log");
    /// ```
    pub fn from_arg(arg: &str) -> InputSpec {
        if arg == "-" {
            InputSpec::Stdin
        } else {
            InputSpec::File(PathBuf::from(arg))
        }
    }

    /// The `source` name events carry.
    pub fn name(&self) -> String {
        match self {
            InputSpec::Stdin => "-".to_string(),
            InputSpec::File(p) => p.display().to_string(),
        }
    }
}

/// Counts of what framing did to an input.
#[derive(Clone, Debug, Default)]
pub struct FrameCounts {
    pub bytes: u64,
    pub lines: u64,
    pub truncated_lines: u64,
    pub dropped_bytes: u64,
}

impl FrameCounts {
    pub fn add(&mut self, other: &FrameCounts) {
        self.bytes += other.bytes;
        self.lines += other.lines;
        self.truncated_lines += other.truncated_lines;
        self.dropped_bytes += other.dropped_bytes;
    }
}

/// Open an input, transparently decompressing gzip and zstd (detected by magic bytes, not by
/// extension, so a rotated `auth.log.1` that is really gzip still reads). `progress` advances
/// by the bytes read from the file itself (compressed bytes for a compressed file).
pub fn open(spec: &InputSpec, progress: &ProgressBar) -> io::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = match spec {
        InputSpec::Stdin => Box::new(io::stdin()),
        InputSpec::File(path) => Box::new(progress.wrap_read(File::open(path)?)),
    };
    decompress(raw)
}

/// A progress bar on stderr over the total size of `inputs`, only when stderr is a terminal and
/// every input is a file (stdin has no size); otherwise a hidden bar that costs nothing.
pub fn progress_bar(inputs: &[InputSpec]) -> ProgressBar {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() || inputs.contains(&InputSpec::Stdin) {
        return ProgressBar::hidden();
    }
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match i {
            InputSpec::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            InputSpec::Stdin => None,
        })
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Wrap `inner` in a decoder when it starts with a gzip or zstd magic number.
pub fn decompress(inner: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut buffered = BufReader::with_capacity(READ_BUFFER, inner);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(
            buffered,
        )?))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Read `reader` to its end, framing lines into batches for `deliver`. Returns what was read.
/// `deliver` returns false when the pipeline is shutting down; reading stops then.
pub fn read_batches(
    source: Arc<str>,
    reader: impl Read,
    max_line: usize,
    now: impl Fn() -> i64,
    deliver: impl FnMut(LineBatch) -> bool,
) -> io::Result<FrameCounts> {
    read_batches_with(source, reader, max_line, now, false, deliver)
}

/// [`read_batches`], and with `flush_on_short_read` a partial batch is also handed on whenever
/// a read returns less than asked for: on a pipe (`journalctl -f | secpipe`) that means the
/// writer has nothing more right now, and waiting for a full batch would hold an alert back
/// until thousands more lines arrive. Not for files: decompressors return short reads all the
/// time, and batches would shrink for nothing.
pub fn read_batches_with(
    source: Arc<str>,
    mut reader: impl Read,
    max_line: usize,
    now: impl Fn() -> i64,
    flush_on_short_read: bool,
    mut deliver: impl FnMut(LineBatch) -> bool,
) -> io::Result<FrameCounts> {
    let mut framer = LineFramer::new(max_line);
    let mut buf = vec![0u8; READ_BUFFER];
    let mut counts = FrameCounts::default();
    let mut batch = LineBatch::new(source.clone(), 1, now());
    let mut open = true;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        counts.bytes += n as u64;
        let mut full = Vec::new();
        framer.push(&buf[..n], |line, truncated| {
            if batch.is_empty() {
                // Received when its first line arrived, not when the previous batch left.
                batch.received = now();
            }
            batch.push(line, truncated);
            if batch.is_full() {
                let next = LineBatch::new(source.clone(), batch.next_line(), now());
                full.push(std::mem::replace(&mut batch, next));
            }
        });
        if flush_on_short_read && n < buf.len() && !batch.is_empty() {
            let next = LineBatch::new(source.clone(), batch.next_line(), now());
            full.push(std::mem::replace(&mut batch, next));
        }
        for b in full {
            counts.lines += b.len() as u64;
            if !deliver(b) {
                open = false;
            }
        }
        if !open {
            break;
        }
    }
    framer.finish(|line, truncated| batch.push(line, truncated));
    counts.lines += batch.len() as u64;
    if !batch.is_empty() && open {
        deliver(batch);
    }
    counts.truncated_lines = framer.truncated_lines;
    counts.dropped_bytes = framer.dropped_bytes;
    Ok(counts)
}

/// Stdin and files, read one after the other (so line numbers and year inference follow each
/// file's own order). Stdin is read so that a shutdown interrupts it
/// ([`stdin::InterruptibleStdin`]) and handed on as it arrives.
pub struct BatchInputs {
    inputs: Vec<InputSpec>,
}

impl BatchInputs {
    pub fn new(inputs: Vec<InputSpec>) -> BatchInputs {
        BatchInputs { inputs }
    }
}

impl Source for BatchInputs {
    /// Files end; stdin may be a live pipe (`journalctl -f | secpipe`).
    fn liveness(&self) -> Liveness {
        if self.inputs.contains(&InputSpec::Stdin) {
            Liveness::MaybeLive
        } else {
            Liveness::Ends
        }
    }

    fn start(self: Box<Self>, ctx: &SourceContext) -> Result<SourceHandle, String> {
        let inputs = self.inputs;
        let ctx = ctx.clone();
        let progress = progress_bar(&inputs);
        let reader = move || {
            let mut report = ReadReport::default();
            for spec in inputs {
                if ctx.shutdown.is_triggered() {
                    break;
                }
                report.inputs += 1;
                let name: Arc<str> = spec.name().into();
                let is_stdin = spec == InputSpec::Stdin;
                let opened = if is_stdin {
                    decompress(Box::new(stdin::InterruptibleStdin::new(
                        ctx.shutdown.clone(),
                        Some(ctx.metrics.clone()),
                    )))
                } else {
                    open(&spec, &progress)
                };
                let result = opened.and_then(|reader| {
                    read_batches_with(
                        name.clone(),
                        reader,
                        ctx.max_line,
                        crate::event::now_micros,
                        is_stdin,
                        |b| ctx.tx.send(b).is_ok() && !ctx.shutdown.is_triggered(),
                    )
                });
                match result {
                    Ok(c) => report.frames.add(&c),
                    Err(e) => report.errors.push(format!("{name}: {e}")),
                }
            }
            progress.finish_and_clear();
            report
        };
        SourceHandle::spawn("read", reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let reader = decompress(Box::new(io::Cursor::new(data.to_vec()))).expect("decompress");
        read_batches(
            "-".into(),
            reader,
            1024,
            || 0,
            |b| {
                out.extend(b.lines().map(|(n, l, _)| (n, l.to_vec())));
                true
            },
        )
        .expect("read");
        out
    }

    #[test]
    fn numbers_lines_across_batches() {
        let text: String = (1..=10_000).map(|i| format!("line {i}\n")).collect();
        let lines = collect(text.as_bytes());
        assert_eq!(lines.len(), 10_000);
        assert_eq!(lines[9_999], (10_000, b"line 10000".to_vec()));
    }

    #[test]
    fn reads_gzip_and_zstd_by_content() {
        let plain = b"a\nb\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let zst = zstd::encode_all(&plain[..], 1).expect("zstd");
        for data in [plain.to_vec(), gz, zst] {
            let lines: Vec<_> = collect(&data).into_iter().map(|(_, l)| l).collect();
            assert_eq!(lines, vec![b"a".to_vec(), b"b".to_vec()]);
        }
    }
}
