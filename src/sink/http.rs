//! One HTTP POST from a sink's own thread, and what it came to for the retry policy
//! ([`super::retry`]): the client of the webhook and Alertmanager sinks.
//!
//! The receiver is treated as a stranger that may be broken or hostile:
//! - **Time.** A connect gives up after `connect` (default 5 s) and the whole request, answer
//!   included, after `request` (default 10 s): a receiver that never answers, or answers one
//!   byte a minute, costs one attempt, then the policy's backoff.
//! - **Size.** Answer headers are capped at 64 KiB (the client's limit) and only the first
//!   [`ERROR_BODY_CAP`] bytes of an error answer are read, for the message; a success answer's
//!   body is not read at all. An endless body cannot make secpipe buffer anything.
//! - **Redirects are not followed.** Following one would send the alert, its signature and the
//!   configured `Authorization` to whatever host the receiver names (a compromised receiver
//!   could aim secpipe at an internal service). A 3xx is a final "no", reported with where it
//!   pointed, so the operator fixes the URL.
//! - **Nothing from an alert goes into a header** except its id, which is checked to be a plain
//!   token first ([`header_token`]); header names and values from the configuration are checked
//!   for CR, LF and other control characters when the sink opens ([`check_header`]).
//!
//! TLS is rustls with the ring provider (as everywhere in secpipe: no aws-lc) and the Mozilla
//! roots (webpki-roots), or the CAs of a `ca_file` instead.

use std::io::Read;
use std::time::{Duration, SystemTime};

use super::retry::{Attempt, RetryPolicy, parse_retry_after};

/// Bytes of an error answer kept for the message.
pub const ERROR_BODY_CAP: u64 = 1024;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of a whole request, answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP(S) receiver and how requests to it are made.
pub struct HttpClient {
    agent: ureq::Agent,
    url: String,
    /// Sent with every request (configured: `Authorization`, …), already checked.
    headers: Vec<(String, String)>,
}

impl HttpClient {
    /// A client of `url`. `roots`: the CAs to trust instead of the Mozilla roots (a receiver
    /// behind a private CA, [`read_ca_file`]).
    pub fn new(
        url: &str,
        connect: Duration,
        request: Duration,
        headers: Vec<(String, String)>,
        roots: Option<ureq::tls::RootCerts>,
    ) -> HttpClient {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots) = roots {
            tls = tls.root_certs(roots);
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_connect(Some(connect))
            .timeout_global(Some(request))
            // A status is an answer to classify, not an error.
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("secpipe/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        HttpClient {
            agent,
            url: url.to_string(),
            headers,
        }
    }

    /// POST `body` (JSON) with the configured headers and `extra` ones; the answer classified
    /// for `policy`: `Done(status)` for 2xx.
    pub fn post(&self, body: &[u8], extra: &[(&str, &str)], policy: &RetryPolicy) -> Attempt<u16> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            Err(e) => return classify_error(e),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Attempt::Done(status);
        }
        if (300..400).contains(&status) {
            let to = response
                .headers()
                .get("location")
                .map(|v| clean(v.as_bytes(), 200))
                .unwrap_or_default();
            return Attempt::Fail(format!(
                "HTTP {status}: redirected to {to:?}, not followed (give the final URL)"
            ));
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut said = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(ERROR_BODY_CAP)
            .read_to_end(&mut said);
        let error = format!("HTTP {status}: {}", clean(&said, 200));
        if policy.retries_status(status) {
            Attempt::Retry { error, retry_after }
        } else {
            Attempt::Fail(error)
        }
    }
}

/// A request that got no answer: a connection error, a timeout or a broken answer is worth
/// another try; a request secpipe cannot even build is not.
fn classify_error<T>(e: ureq::Error) -> Attempt<T> {
    match e {
        ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::RequireHttpsOnly(_) => Attempt::Fail(e.to_string()),
        other => Attempt::retry(other.to_string()),
    }
}

/// Text from a receiver, for a message: lossy UTF-8, control characters shown as `?`, at most
/// `max` characters. A hostile receiver cannot write escape sequences to the operator's
/// terminal.
pub fn clean(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// An alert id as it may go into a header: a plain token of 1 to 128 letters, digits, `-` and
/// `_` (ids are hex). Anything else, which secpipe never makes, becomes the hex SHA-256 of it,
/// so an id cannot carry CR/LF into the request however it was forged.
///
/// ```
/// use secpipe::sink::http::header_token;
/// assert_eq!(header_token("9f2c01"), "9f2c01");
/// let forged = header_token("x\r\nX-Evil: 1");
/// assert_eq!(forged.len(), 64);
/// assert!(forged.bytes().all(|b| b.is_ascii_hexdigit()));
/// ```
pub fn header_token(id: &str) -> String {
    let plain = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        id.to_string()
    } else {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(id.as_bytes()))
    }
}

/// A configured header: a token name (RFC 9110 §5.6.2) and a value without control characters
/// (tab aside), so no configuration can split the request.
///
/// ```
/// use secpipe::sink::http::check_header;
/// assert!(check_header("Authorization", "Bearer abc").is_ok());
/// assert!(check_header("X-A", "a\r\nX-Evil: 1").is_err());
/// assert!(check_header("X A", "b").is_err());
/// ```
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!("header {name:?}: not a valid header name"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "header {name}: the value holds a control character (CR, LF …)"
        ));
    }
    Ok(())
}

/// The URL without its user and password, for messages.
///
/// ```
/// use secpipe::sink::http::redact_url;
/// assert_eq!(redact_url("https://u:secret@hooks.example/a"), "https://hooks.example/a");
/// assert_eq!(redact_url("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080/x");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Check an `http://` or `https://` URL: it parses and names a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("{}: not a URL ({e})", redact_url(url)))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(format!(
            "{}: give an http:// or https:// URL with a host",
            redact_url(url)
        )),
    }
}

/// The certificates of a PEM file (`ca_file`), to trust instead of the Mozilla roots.
pub fn read_ca_file(path: &std::path::Path) -> Result<ureq::tls::RootCerts, String> {
    use ureq::tls::PemItem;
    let what = || format!("ca_file {}", path.display());
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", what()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", what())),
        }
    }
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", what()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// The connect and whole-request timeouts of a sink's options (`"5s"`, `"10s"` by default).
pub fn timeouts(
    connect: Option<&str>,
    request: Option<&str>,
) -> Result<(Duration, Duration), String> {
    let or = |name: &str, text: Option<&str>, default: Duration| match text {
        Some(text) => super::retry::option_duration(name, text),
        None => Ok(default),
    };
    let connect = or("connect_timeout", connect, DEFAULT_CONNECT_TIMEOUT)?;
    let request = or("timeout", request, DEFAULT_REQUEST_TIMEOUT)?;
    if connect.is_zero() || request.is_zero() {
        return Err("connect_timeout and timeout must be above zero".into());
    }
    Ok((connect, request))
}

/// The headers of a sink's `header_files` option: each value read from its file (a secret
/// such as `Authorization`), checked like a configured header.
pub fn file_headers(
    files: Option<&std::collections::BTreeMap<String, std::path::PathBuf>>,
) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (name, path) in files.into_iter().flatten() {
        let what = format!("header_files.{name}");
        let value = String::from_utf8(read_secret(&what, path)?)
            .map_err(|_| format!("{what} {}: not UTF-8 text", path.display()))?;
        check_header(name, &value)?;
        headers.push((name.clone(), value));
    }
    Ok(headers)
}

/// Read a secret (a signing key, an `Authorization` value) from a file: never from the command
/// line, where `ps` shows it. One trailing newline (as editors write) is not part of it.
pub fn read_secret(what: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(format!("{what} {}: the file is empty", path.display()));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    /// A scripted receiver on loopback: each connection is handed to `answer` with the request
    /// read so far (headers, and the body when it came with them).
    pub(crate) fn receiver(
        answer: impl Fn(TcpStream, String) + Send + Sync + 'static,
    ) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 65536];
                // Read until the end of the headers and the body they announce.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                answer(stream, String::from_utf8_lossy(&request).into_owned());
            }
        });
        (url, handle)
    }

    fn client(url: &str, request: Duration) -> HttpClient {
        HttpClient::new(url, Duration::from_secs(2), request, Vec::new(), None)
    }

    fn reply(mut stream: TcpStream, head: &str) {
        let _ = stream.write_all(head.as_bytes());
    }

    /// A receiver that takes the connection and never answers: the attempt ends at the
    /// request timeout (300 ms here), long before the receiver lets go (a minute), and is
    /// retried.
    #[test]
    fn a_receiver_that_never_answers_costs_one_timeout() {
        let (url, _receiver) = receiver(|stream, _| {
            std::thread::sleep(Duration::from_secs(60));
            drop(stream);
        });
        let outcome =
            client(&url, Duration::from_millis(300)).post(b"{}", &[], &RetryPolicy::default());
        match outcome {
            Attempt::Retry { error, .. } => assert!(error.contains("timeout"), "{error}"),
            other => panic!("a timeout is retried: {other:?}"),
        }
    }

    /// An endless body, one byte at a time, after a 503: only the first bytes are read and
    /// the whole request still ends at its timeout.
    #[test]
    fn an_endless_error_body_is_not_buffered() {
        let (url, _receiver) = receiver(|mut stream, _| {
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let chunk = format!("{:x}\r\n{}\r\n", 4096, "A".repeat(4096));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        });
        let outcome =
            client(&url, Duration::from_secs(5)).post(b"{}", &[], &RetryPolicy::default());
        match outcome {
            Attempt::Retry { error, .. } => {
                assert!(error.starts_with("HTTP 503: AAAA"), "{error}");
                assert!(error.len() < 300, "the message is capped: {}", error.len());
            }
            other => panic!("503 retries: {other:?}"),
        }
    }

    /// A 200 whose body never ends: the alert is delivered (the receiver said so) and the
    /// body is not read.
    #[test]
    fn a_success_with_an_endless_body_is_delivered_without_reading_it() {
        let (url, _receiver) = receiver(|mut stream, _| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n");
            while stream.write_all(&[b'x'; 4096]).is_ok() {}
        });
        let outcome =
            client(&url, Duration::from_secs(5)).post(b"{}", &[], &RetryPolicy::default());
        assert_eq!(outcome, Attempt::Done(200));
    }

    #[test]
    fn a_redirect_to_another_host_is_not_followed() {
        let (elsewhere, _) =
            receiver(|_, request| panic!("the alert reached the redirect target: {request}"));
        let (url, _receiver) = receiver(move |stream, _| {
            reply(
                stream,
                &format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}\r\nContent-Length: 0\r\n\r\n"
                ),
            )
        });
        let outcome =
            client(&url, Duration::from_secs(5)).post(b"{}", &[], &RetryPolicy::default());
        match outcome {
            Attempt::Fail(error) => assert!(error.contains("not followed"), "{error}"),
            other => panic!("a redirect is final: {other:?}"),
        }
    }

    /// Bytes that are not HTTP at all: no answer, so the attempt is retried (the receiver may
    /// be restarting behind a broken proxy), never taken as delivered.
    #[test]
    fn a_garbage_answer_is_retried_not_delivered() {
        let (url, _receiver) = receiver(|stream, _| reply(stream, "\u{1b}[31mhello\0\0\r\n\r\n"));
        let outcome =
            client(&url, Duration::from_secs(5)).post(b"{}", &[], &RetryPolicy::default());
        assert!(matches!(outcome, Attempt::Retry { .. }), "{outcome:?}");
    }

    #[test]
    fn retry_after_and_final_statuses_are_read_from_the_answer() {
        let (url, _receiver) = receiver(|stream, request| {
            let status = if request.contains("final") {
                "400 Bad Request"
            } else {
                "429 Too Many Requests"
            };
            reply(
                stream,
                &format!(
                    "HTTP/1.1 {status}\r\nRetry-After: 7\r\nContent-Length: 8\r\n\r\n\u{1b}[2Jslow"
                ),
            )
        });
        let http = client(&url, Duration::from_secs(5));
        let policy = RetryPolicy::default();
        assert_eq!(
            http.post(b"{}", &[], &policy),
            Attempt::Retry {
                error: "HTTP 429: ?[2Jslow".into(),
                retry_after: Some(Duration::from_secs(7))
            },
            "the receiver's escape sequence is not passed on"
        );
        assert!(matches!(
            http.post(b"\"final\"", &[], &policy),
            Attempt::Fail(_)
        ));
    }

    /// `openssl` makes a CA and a certificate for 127.0.0.1 signed by it, in `dir`.
    fn private_ca(dir: &std::path::Path) {
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write ext");
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let steps = [
            format!("req -x509 {ec} -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem"),
            format!("req {ec} -subj /CN=localhost -keyout key.pem -out leaf.csr"),
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
             -extfile leaf.ext -out cert.pem"
                .to_string(),
        ];
        for args in steps {
            let made = std::process::Command::new("openssl")
                .args(args.split_whitespace())
                .current_dir(dir)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl must be installed");
            assert!(made.success(), "openssl {args:?}");
        }
    }

    /// A receiver behind a private CA: refused with the Mozilla roots (retried, never taken as
    /// delivered), delivered once its CA is given as `ca_file`.
    #[test]
    fn https_to_a_private_ca_needs_its_ca_file() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = tempfile::tempdir().expect("tempdir");
        private_ca(dir.path());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.path().join("cert.pem"))
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .expect("cert");
        let key = PrivateKeyDer::from_pem_file(dir.path().join("key.pem")).expect("key");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}/hook", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = tls.read(&mut buf) {
                    request.extend_from_slice(&buf[..n]);
                    if n == 0 || request.ends_with(b"{}") {
                        break;
                    }
                }
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                let _ = tls.flush();
            }
        });
        let policy = RetryPolicy::default();
        let public_roots = client(&url, Duration::from_secs(5));
        assert!(
            matches!(
                public_roots.post(b"{}", &[], &policy),
                Attempt::Retry { .. }
            ),
            "an unknown CA is not trusted"
        );
        let roots = read_ca_file(&dir.path().join("ca.pem")).expect("ca_file");
        let private = HttpClient::new(
            &url,
            Duration::from_secs(2),
            Duration::from_secs(5),
            Vec::new(),
            Some(roots),
        );
        assert_eq!(private.post(b"{}", &[], &policy), Attempt::Done(200));
        let empty = dir.path().join("leaf.ext");
        assert!(read_ca_file(&empty).is_err_and(|e| e.contains("no PEM certificate")));
    }

    /// Header injection: a value with CR/LF is refused by the client rather than sent, and the
    /// receiver never sees an injected header.
    #[test]
    fn a_header_value_with_crlf_never_reaches_the_wire() {
        let (url, _receiver) = receiver(|stream, request| {
            assert!(!request.contains("X-Evil"), "{request}");
            reply(stream, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        });
        let http = client(&url, Duration::from_secs(5));
        let outcome = http.post(
            b"{}",
            &[("Idempotency-Key", "1\r\nX-Evil: yes")],
            &RetryPolicy::default(),
        );
        assert!(matches!(outcome, Attempt::Fail(_)), "{outcome:?}");
    }
}
