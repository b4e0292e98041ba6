//! Quick release-mode throughput check of the parse stage:
//! `cargo run --release --example parse_throughput [FILE] [REPEAT]`.
//! Defaults to the loghub OpenSSH sample repeated to about 1,000,000 lines.

use std::time::Instant;

use secpipe::parse::{Format, Parser};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/work/shared/corpus/loghub/OpenSSH_2k.log".into());
    let repeat: usize = args.next().map_or(Ok(500), |n| n.parse())?;
    let data = std::fs::read(&path)?;
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let tz = jiff::tz::TimeZone::get("Europe/Berlin")?;
    let received = jiff::Timestamp::now().as_microsecond();
    let mut parsed = 0usize;
    let mut without_ts = 0usize;
    let mut message_bytes = 0usize;
    let start = Instant::now();
    for _ in 0..repeat {
        // One parser per input, as in the pipeline.
        let mut parser = Parser::new(tz.clone(), None);
        for line in &lines {
            let record = parser.parse(line, received);
            parsed += usize::from(record.format != Format::Unparsed);
            without_ts += usize::from(record.ts.is_none());
            message_bytes += record.message.len();
        }
    }
    let elapsed = start.elapsed();
    let total = lines.len() * repeat;
    println!(
        "{total} lines, {parsed} parsed, {without_ts} without ts, {:.1} ns/line, {:.2} M lines/s (checksum {message_bytes})",
        elapsed.as_nanos() as f64 / total as f64,
        total as f64 / elapsed.as_secs_f64() / 1e6,
    );
    Ok(())
}
