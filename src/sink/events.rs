//! The `secpipe events` output: one JSON object per input line (DESIGN section 3).

use std::fmt::Write;

use crate::event::{Event, write_ts};
use crate::sink::json_str;

/// Append one event as a JSON object (no trailing newline).
///
/// ```
/// let ev = secpipe::event::Event { source: "-".into(), line: 1, message: "hi".into(), ..Default::default() };
/// let mut out = String::new();
/// secpipe::sink::events::write_event_json(&mut out, &ev);
/// let v: serde_json::Value = serde_json::from_str(&out).unwrap();
/// assert_eq!(v["message"], "hi");
/// assert_eq!(v["kind"], "other");
/// assert!(v["src_ip"].is_null());
/// ```
pub fn write_event_json(out: &mut String, ev: &Event) {
    let _ = write!(out, "{{\"line\":{},\"source\":", ev.line);
    json_str(out, &ev.source);
    out.push_str(",\"ts\":\"");
    write_ts(out, ev.ts);
    let _ = write!(out, "\",\"ts_inferred\":{}", ev.ts_inferred);
    opt_str(out, "host", ev.host.as_deref());
    opt_str(out, "app", ev.app.as_deref());
    opt_num(out, "pid", ev.pid.map(u64::from));
    out.push_str(",\"kind\":\"");
    out.push_str(ev.kind.as_str());
    out.push('"');
    opt_str(out, "reason", ev.reason.as_deref());
    out.push_str(",\"src_ip\":");
    match ev.src_ip {
        Some(ip) => {
            let _ = write!(out, "\"{ip}\"");
        }
        None => out.push_str("null"),
    }
    opt_str(out, "user", ev.user.as_deref());
    opt_str(out, "actor", ev.actor.as_deref());
    opt_str(out, "namespace", ev.namespace.as_deref());
    opt_num(out, "count", ev.count);
    opt_str(out, "http_method", ev.http_method.as_deref());
    opt_str(out, "http_path", ev.http_path.as_deref());
    opt_num(out, "http_status", ev.http_status.map(u64::from));
    opt_num(out, "bytes", ev.bytes);
    opt_str(out, "forwarded_for", ev.forwarded_for.as_deref());
    opt_str(out, "severity", ev.severity.as_deref());
    out.push_str(",\"message\":");
    json_str(out, &ev.message);
    if let Some(seq) = ev.seq {
        let _ = write!(out, ",\"seq\":{seq}");
    }
    out.push('}');
}

fn opt_str(out: &mut String, name: &str, value: Option<&str>) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    match value {
        Some(v) => json_str(out, v),
        None => out.push_str("null"),
    }
}

fn opt_num(out: &mut String, name: &str, value: Option<u64>) {
    let _ = match value {
        Some(v) => write!(out, ",\"{name}\":{v}"),
        None => write!(out, ",\"{name}\":null"),
    };
}

/// Writes events as JSON lines to stdout, one write and flush per batch: a follower of a live
/// stream sees events as they are parsed, and a batch holds thousands of lines, so the flush is
/// noise. The first error stops it (a closed pipe, `secpipe events | head`, is not an error).
pub struct EventWriter {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    text: String,
    error: Option<std::io::Error>,
}

impl EventWriter {
    pub fn stdout() -> EventWriter {
        EventWriter {
            out: std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
            text: String::with_capacity(1 << 20),
            error: None,
        }
    }

    /// Write a batch's events; false once writing has failed (stop reading).
    pub fn write(&mut self, events: &[Event]) -> bool {
        use std::io::Write as _;
        if self.error.is_some() {
            return false;
        }
        self.text.clear();
        for ev in events {
            write_event_json(&mut self.text, ev);
            self.text.push('\n');
        }
        if let Err(e) = self
            .out
            .write_all(self.text.as_bytes())
            .and_then(|()| self.out.flush())
        {
            self.error = Some(e);
            return false;
        }
        true
    }

    /// Flush; the first error, unless it was a closed pipe.
    pub fn finish(mut self) -> std::io::Result<()> {
        use std::io::Write as _;
        let result = match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    }
}
