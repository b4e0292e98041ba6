//! Routing a record: which path it takes by envelope format (grammars, access-log fields,
//! application-event mapping, injection check), and which app group's grammars see a message.

use std::borrow::Cow;

use super::{Classifier, PatternId, app_event, http};
use crate::event::{Attempt, Event, Kind};
use crate::parse::{Format, Record};

impl Classifier {
    /// Fill `ev.kind`, `reason`, `src_ip`, `user`, `actor`, `namespace`, `count`, `http_*`,
    /// `bytes`, `attempt` from `rec`. `ev` already carries source, line, ts, host, app, pid,
    /// severity, message and raw. Returns the grammar pattern that matched, if any.
    ///
    /// ```
    /// use secpipe::classify::Classifier;
    /// use secpipe::event::{Attempt, Event, Kind};
    /// use secpipe::parse::{Format, Record};
    ///
    /// let c = Classifier::builtin().unwrap();
    /// let rec = Record {
    ///     format: Format::Rfc3164,
    ///     ts: None,
    ///     host: None,
    ///     app: Some("sshd".into()),
    ///     pid: Some(7),
    ///     severity: None,
    ///     message: "message repeated 3 times: [ Failed password for root from 198.51.100.4 port 22 ssh2]".into(),
    ///     fields: Vec::new(),
    /// };
    /// let mut ev = Event::default();
    /// c.classify(&rec, &mut ev);
    /// assert_eq!((ev.kind, ev.attempt, ev.count), (Kind::AuthFailure, Attempt::Repeat, Some(3)));
    /// ```
    pub fn classify(&self, rec: &Record<'_>, ev: &mut Event) -> Option<PatternId> {
        // The injection check reads the request fields (user agent, referer) where there are
        // any, so each route runs it with its own.
        let matched = match rec.format {
            Format::Unparsed => {
                ev.kind = Kind::Unparsed;
                return None;
            }
            Format::AccessLog => {
                http::fill_http_fields(&rec.fields, &self.proxies, ev);
                self.injection.apply(ev, &rec.fields);
                None
            }
            Format::JsonApp | Format::Logfmt => {
                if app_event::apply_app_fields(&rec.fields, &self.proxies, ev) {
                    self.injection.apply(ev, &rec.fields);
                    None
                } else {
                    let matched = self.match_message(rec.app.as_deref(), &rec.message, ev);
                    self.injection.apply(ev, &[]);
                    matched
                }
            }
            Format::Rfc3164 | Format::Rfc5424 | Format::JournalJson | Format::ApacheError => {
                let matched = self.match_message(rec.app.as_deref(), &rec.message, ev);
                let mut checked = false;
                if matched.is_none() && rec.format == Format::Rfc5424 && !rec.fields.is_empty() {
                    let fields = sd_param_names(&rec.fields);
                    app_event::apply_app_fields(&fields, &self.proxies, ev);
                    self.injection.apply(ev, &fields);
                    checked = true;
                } else if matched.is_none() || ev.kind == Kind::HttpRequest {
                    // An access log through syslog: the access-log parser reads what a grammar
                    // cannot (a user name with spaces, a vhost, forwarded lists, agent and
                    // referer), so it has the last word on a line it understands.
                    if let Some(fields) = http::embedded_access_log_fields(&rec.message) {
                        http::fill_http_fields(&fields, &self.proxies, ev);
                        self.injection.apply(ev, &fields);
                        checked = true;
                    }
                }
                if !checked {
                    self.injection.apply(ev, &[]);
                }
                matched
            }
        };
        if ev.kind == Kind::Other
            && rec
                .severity
                .as_deref()
                .is_some_and(app_event::is_error_level)
        {
            ev.kind = Kind::LogError;
        }
        matched
    }

    /// Run the grammars of `app` on `message`, unwrapping syslog's `message repeated`.
    pub(super) fn match_message(
        &self,
        app: Option<&str>,
        message: &str,
        ev: &mut Event,
    ) -> Option<PatternId> {
        let group = match app {
            Some(app) => self
                .by_app
                .get(base_app_name(app))
                .copied()
                .or(self.any_app)?,
            None => self.any_app?,
        };
        let group = self.groups.get(group)?;
        match split_repeated(message) {
            Some((times, inner)) => {
                let id = self.match_group(group, inner, ev)?;
                ev.count = Some(times);
                if ev.attempt != Attempt::None {
                    ev.attempt = Attempt::Repeat;
                }
                Some(id)
            }
            None => self.match_group(group, message, ev),
        }
    }
}

/// `sshd(pam_unix)` and `sshd[123]` are sshd.
pub(super) fn base_app_name(app: &str) -> &str {
    app.find(['(', '['])
        .map_or(app, |i| &app[..i])
        .trim_end_matches(':')
}

/// `message repeated 5 times: [ Failed password …]` → (5, `Failed password …`).
pub(super) fn split_repeated(message: &str) -> Option<(u64, &str)> {
    let rest = message.strip_prefix("message repeated ")?;
    let (times, rest) = rest.split_once(" times: [")?;
    let times = times.parse().ok()?;
    let inner = rest.trim_end();
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    Some((times, inner.trim()))
}

/// RFC 5424 SD params as plain param names (`auth@32473.event` → `event`), so the
/// application-event mapping reads them like JSON members.
fn sd_param_names<'f>(
    fields: &'f [(Cow<'_, str>, Cow<'_, str>)],
) -> Vec<(Cow<'f, str>, Cow<'f, str>)> {
    fields
        .iter()
        .map(|(k, v)| {
            let name = k.rsplit_once('.').map_or(k.as_ref(), |(_, n)| n);
            (Cow::Borrowed(name), Cow::Borrowed(v.as_ref()))
        })
        .collect()
}
