//! Raw, read-only S3 requests that the `object_store` crate does not make: the versions of
//! every object under a prefix (ListObjectVersions), the Object Lock of one version (HEAD with
//! `versionId`), and the bucket's Object Lock configuration and versioning status. `verify`
//! uses them to say how well the storage protects the sealed objects (`verify/storage.rs`), and
//! the bucket store lists through them (object_store fails a whole page on one key it cannot
//! name).
//!
//! ## Configuration
//! The way AWS tools find it, as the bucket store reads it (`object::s3_builder`:
//! `AmazonS3Builder::from_env`, then an AWS profile): `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` and
//! `AWS_ALLOW_HTTP`; its credential provider (keys, session token, web identity, instance
//! metadata) signs each request through [`AwsAuthorizer`] (SigV4). A custom endpoint is
//! addressed path-style (`ENDPOINT/BUCKET/KEY`), as S3-compatible stores expect, unless
//! `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`; AWS itself is `https://s3.REGION.amazonaws.com`.
//!
//! ## Limits: the listing is attacker-controlled
//! Whoever can write to the bucket chooses the keys, how many versions there are, and (with a
//! hostile endpoint) the XML itself. So every response body is read up to
//! [`MAX_RESPONSE_BYTES`], every XML field up to [`MAX_FIELD_BYTES`], and the listing stops
//! after [`InspectLimits::max_pages`] pages, or when the server hands back the marker it was
//! given (a listing that never ends): the caller is told the listing is incomplete and
//! counts what it saw, never more. Versions are handed to a visitor one at a time and not
//! kept here, so a bucket with millions of versions costs one page of memory. Keys are
//! requested URL-encoded (`encoding-type=url`), so a key with control characters survives the
//! XML and reaches the caller as the bytes it is (escaping it for a terminal is the
//! caller's job).
//!
//! ## Threads
//! The functions are async; [`blocking`] runs one on a current-thread tokio runtime of its
//! own, on the calling thread (verify's callers are plain threads, never inside a runtime).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store::aws::{AmazonS3ConfigKey, AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use quick_xml::events::Event;

/// The largest response body read; a ListObjectVersions page of 1000 versions with the
/// longest keys S3 allows (1024 bytes, URL-encoded up to 3 times that) is under 5 MiB.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// The longest XML text field kept (a URL-encoded 1024-byte key is at most 3072 bytes).
pub const MAX_FIELD_BYTES: usize = 4096;

/// What the inspection could not do.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}")]
    Config(String),
    #[error("{what}: {why}")]
    Request { what: String, why: String },
    #[error("{what}: HTTP {status}: {code}")]
    Status {
        what: String,
        status: u16,
        code: String,
    },
    #[error("{what}: the response is not the XML S3 sends: {why}")]
    Xml { what: String, why: String },
}

/// `s3://bucket/prefix`, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without a leading or trailing `/`; empty for the whole bucket.
    pub prefix: String,
}

impl S3Location {
    /// Parse `s3://bucket[/prefix]`.
    ///
    /// ```
    /// use secpipe::archive::store::s3_inspect::S3Location;
    /// let at = S3Location::parse("s3://evidence/host-1/").unwrap();
    /// assert_eq!((at.bucket.as_str(), at.prefix.as_str()), ("evidence", "host-1"));
    /// assert_eq!(at.key("audit/checkpoints/00000001.note"), "host-1/audit/checkpoints/00000001.note");
    /// assert!(S3Location::parse("gs://x/y").is_err());
    /// assert!(S3Location::parse("s3:///y").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<S3Location, InspectError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| InspectError::Config(format!("{url:?} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(InspectError::Config(format!("{url:?} names no bucket")));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    /// The bucket key of archive object `name`.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The prefix that every key of the archive starts with (`prefix/`, or empty).
    pub fn key_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// One entry of ListObjectVersions: a version of a key, or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The key as stored (URL-decoded; may hold any bytes S3 allows, shown lossily as UTF-8).
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub last_modified: String,
    /// 0 for a delete marker.
    pub size: u64,
    /// Empty for a delete marker. For a single PUT, the MD5 of the bytes, quoted.
    pub etag: String,
}

impl ObjectVersion {
    fn empty() -> ObjectVersion {
        ObjectVersion {
            key: String::new(),
            version_id: String::new(),
            is_latest: false,
            delete_marker: false,
            last_modified: String::new(),
            size: 0,
            etag: String::new(),
        }
    }
}

/// How far a listing may go.
#[derive(Clone, Copy, Debug)]
pub struct InspectLimits {
    /// Pages of up to 1000 versions each.
    pub max_pages: u64,
}

impl Default for InspectLimits {
    /// 10,000 pages: ten million versions.
    fn default() -> InspectLimits {
        InspectLimits { max_pages: 10_000 }
    }
}

/// How a listing ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListingSummary {
    pub pages: u64,
    pub entries: u64,
    /// `None` when every version was listed; else why the listing stopped early.
    pub incomplete: Option<String>,
}

/// The Object Lock of one object version, from HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ObjectLock {
    /// `COMPLIANCE` or `GOVERNANCE`; `None`: unlocked.
    pub mode: Option<String>,
    pub retain_until: Option<String>,
    /// `ON` or `OFF` when the server says.
    pub legal_hold: Option<String>,
}

/// The bucket's protection: versioning and Object Lock configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BucketProtection {
    /// `Enabled`, `Suspended`, or `Off` (never enabled).
    pub versioning: String,
    pub object_lock: bool,
    /// The default retention: mode, and its period (`30 days`, `7 years`).
    pub default_mode: Option<String>,
    pub default_period: Option<String>,
}

/// A signed-request client for one bucket.
pub struct S3Inspector {
    http: reqwest::Client,
    /// `ENDPOINT/BUCKET` (path-style) or `https://BUCKET.s3.REGION.amazonaws.com`, no `/` at the end.
    bucket_url: String,
    region: String,
    credential: Arc<AwsCredential>,
    location: S3Location,
}

/// Run `future` to completion on a current-thread runtime of its own, on this thread.
pub fn blocking<T>(
    future: impl std::future::Future<Output = Result<T, InspectError>>,
) -> Result<T, InspectError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InspectError::Config(format!("cannot start a tokio runtime: {e}")))?;
    runtime.block_on(future)
}

impl S3Inspector {
    /// A client for `location`, configured from the environment (see the module doc).
    pub async fn from_env(location: &S3Location) -> Result<S3Inspector, InspectError> {
        // reqwest is built with `rustls-no-provider`: ring must be the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = |e: object_store::Error| InspectError::Config(e.to_string());
        // The configuration the archive store uses (environment, then an AWS profile).
        let builder = super::object::s3_builder(&location.bucket)
            .map_err(|e| InspectError::Config(e.to_string()))?;
        let value = |key| builder.get_config_value(&key);
        let region = value(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let endpoint =
            value(AmazonS3ConfigKey::S3Endpoint).or_else(|| value(AmazonS3ConfigKey::Endpoint));
        let truthy = |v: Option<String>| v.is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let virtual_hosted = truthy(value(AmazonS3ConfigKey::VirtualHostedStyleRequest));
        let allow_http = truthy(value(AmazonS3ConfigKey::Client(
            object_store::ClientConfigKey::AllowHttp,
        )));
        let bucket = &location.bucket;
        let bucket_url = match (endpoint, virtual_hosted) {
            (Some(endpoint), true) => endpoint.trim_end_matches('/').to_owned(),
            (Some(endpoint), false) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        if bucket_url.starts_with("http://") && !allow_http {
            return Err(InspectError::Config(format!(
                "{bucket_url} is plain HTTP; set AWS_ALLOW_HTTP=true to allow it"
            )));
        }
        let store = builder.build().map_err(config)?;
        let credential = store.credentials().get_credential().await.map_err(config)?;
        S3Inspector::new(location, bucket_url, region, credential)
    }

    /// A client for `location` at `bucket_url` (`ENDPOINT/BUCKET` path-style), signing for
    /// `region` with `credential`.
    pub fn new(
        location: &S3Location,
        bucket_url: String,
        region: String,
        credential: Arc<AwsCredential>,
    ) -> Result<S3Inspector, InspectError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| InspectError::Config(format!("HTTP client: {e}")))?;
        Ok(S3Inspector {
            http,
            bucket_url,
            region,
            credential,
            location: location.clone(),
        })
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// Send a signed `method` request for `key` (or the bucket) with `query` pairs; the status,
    /// headers and the body up to [`MAX_RESPONSE_BYTES`] (`range`: only those bytes).
    async fn send(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        range: Option<(u64, u64)>,
        what: &str,
    ) -> Result<(u16, reqwest::header::HeaderMap, Bytes), InspectError> {
        let failed = |why: String| InspectError::Request {
            what: what.to_owned(),
            why,
        };
        let mut url = self.bucket_url.clone();
        url.push('/');
        if let Some(key) = key {
            url.push_str(&encode(key, true));
        }
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(name, false));
            if !value.is_empty() {
                url.push('=');
                url.push_str(&encode(value, false));
            }
        }
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.method_mut() = method.clone();
        *request.uri_mut() = url
            .parse()
            .map_err(|e| failed(format!("bad URL {url}: {e}")))?;
        if let Some((start, end)) = range {
            let value = reqwest::header::HeaderValue::from_str(&format!("bytes={start}-{end}"))
                .map_err(|e| failed(e.to_string()))?;
            request.headers_mut().insert(reqwest::header::RANGE, value);
        }
        AwsAuthorizer::new(&self.credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| failed(format!("signing: {e}")))?;
        let (parts, _) = request.into_parts();
        let target = reqwest::Url::parse(&url).map_err(|e| failed(e.to_string()))?;
        let mut outgoing = reqwest::Request::new(method, target);
        *outgoing.headers_mut() = parts.headers;
        let mut response = self
            .http
            .execute(outgoing)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(failed(format!(
                    "the response is longer than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body.freeze()))
    }

    /// `send`, and an error unless the status is 2xx.
    async fn send_ok(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), InspectError> {
        let (status, headers, body) = self.send(method, key, query, None, what).await?;
        if !(200..300).contains(&status) {
            return Err(InspectError::Status {
                what: what.to_owned(),
                status,
                code: error_code(&body),
            });
        }
        Ok((headers, body))
    }

    /// Every version and delete marker of every key under the archive's prefix, handed to
    /// `visit` one at a time in the order S3 lists them (by key, newest version first).
    pub async fn list_versions(
        &self,
        limits: InspectLimits,
        visit: impl FnMut(ObjectVersion),
    ) -> Result<ListingSummary, InspectError> {
        self.list_versions_under("", limits, visit).await
    }

    /// [`Self::list_versions`] of the keys of archive objects whose names start with `under`.
    pub async fn list_versions_under(
        &self,
        under: &str,
        limits: InspectLimits,
        mut visit: impl FnMut(ObjectVersion),
    ) -> Result<ListingSummary, InspectError> {
        let prefix = format!("{}{under}", self.location.key_prefix());
        let mut summary = ListingSummary::default();
        let mut markers = (String::new(), String::new());
        loop {
            if summary.pages >= limits.max_pages {
                summary.incomplete = Some(format!(
                    "the listing was cut after {} pages ({} versions)",
                    summary.pages, summary.entries
                ));
                return Ok(summary);
            }
            let mut query = vec![("versions", ""), ("encoding-type", "url")];
            if !prefix.is_empty() {
                query.push(("prefix", prefix.as_str()));
            }
            if !markers.0.is_empty() {
                query.push(("key-marker", markers.0.as_str()));
            }
            if !markers.1.is_empty() {
                query.push(("version-id-marker", markers.1.as_str()));
            }
            let what = format!("ListObjectVersions {}", self.location);
            let (_, body) = self
                .send_ok(reqwest::Method::GET, None, &query, &what)
                .await?;
            summary.pages += 1;
            let page = parse_versions_page(&body).map_err(|why| InspectError::Xml {
                what: what.clone(),
                why,
            })?;
            summary.entries += page.entries.len() as u64;
            page.entries.into_iter().for_each(&mut visit);
            if !page.truncated {
                return Ok(summary);
            }
            let next = (page.next_key_marker, page.next_version_marker);
            // A server that sends no marker, or the one it was given, would list forever.
            if next.0.is_empty() || next == markers {
                summary.incomplete = Some(format!(
                    "the server said the listing goes on but gave no new marker after page {}",
                    summary.pages
                ));
                return Ok(summary);
            }
            markers = next;
        }
    }

    /// The Object Lock of version `version_id` of archive object `name` (HEAD).
    pub async fn object_lock(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<ObjectLock, InspectError> {
        let key = self.location.key(name);
        let what = format!("HEAD {key} version {version_id}");
        let (headers, _) = self
            .send_ok(
                reqwest::Method::HEAD,
                Some(&key),
                &[("versionId", version_id)],
                &what,
            )
            .await?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(ObjectLock {
            mode: header("x-amz-object-lock-mode"),
            retain_until: header("x-amz-object-lock-retain-until-date"),
            legal_hold: header("x-amz-object-lock-legal-hold"),
        })
    }

    /// The bucket's versioning status and Object Lock configuration.
    pub async fn bucket_protection(&self) -> Result<BucketProtection, InspectError> {
        let bucket = &self.location.bucket;
        let what = format!("GetBucketVersioning {bucket}");
        let (_, body) = self
            .send_ok(reqwest::Method::GET, None, &[("versioning", "")], &what)
            .await?;
        let fields =
            xml_fields(&body, &["Status"]).map_err(|why| InspectError::Xml { what, why })?;
        let versioning = fields[0].clone().unwrap_or_else(|| "Off".into());
        let what = format!("GetObjectLockConfiguration {bucket}");
        let (status, _, body) = self
            .send(
                reqwest::Method::GET,
                None,
                &[("object-lock", "")],
                None,
                &what,
            )
            .await?;
        let mut protection = BucketProtection {
            versioning,
            ..BucketProtection::default()
        };
        // A bucket without Object Lock answers 404 ObjectLockConfigurationNotFoundError.
        if status == 404 {
            return Ok(protection);
        }
        if !(200..300).contains(&status) {
            return Err(InspectError::Status {
                what,
                status,
                code: error_code(&body),
            });
        }
        let fields = xml_fields(&body, &["ObjectLockEnabled", "Mode", "Days", "Years"])
            .map_err(|why| InspectError::Xml { what, why })?;
        protection.object_lock = fields[0].as_deref() == Some("Enabled");
        protection.default_mode = fields[1].clone();
        // moto writes both, one of them 0; S3 writes only the one set.
        let nonzero = |v: &Option<String>| v.clone().filter(|v| v != "0" && !v.is_empty());
        protection.default_period = match (nonzero(&fields[2]), nonzero(&fields[3])) {
            (Some(days), _) => Some(format!("{days} days")),
            (None, Some(years)) => Some(format!("{years} years")),
            (None, None) => None,
        };
        Ok(protection)
    }

    /// The whole current version of archive object `name`, or `None` when it is not there
    /// (404); at most [`MAX_RESPONSE_BYTES`].
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>, InspectError> {
        self.get_range(name, None).await
    }

    /// Bytes `start..=end` of archive object `name` (all of it without a range).
    pub async fn get_range(
        &self,
        name: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Option<Bytes>, InspectError> {
        let key = self.location.key(name);
        let what = format!("GET {key}");
        let (status, _, body) = self
            .send(reqwest::Method::GET, Some(&key), &[], range, &what)
            .await?;
        match status {
            // A server that ignores Range answers 200 with the whole object: its bytes are
            // not at the offset asked for.
            200 if range.is_some() => Err(InspectError::Request {
                what,
                why: "the server ignored the Range header".into(),
            }),
            200..=299 => Ok(Some(body)),
            404 => Ok(None),
            _ => Err(InspectError::Status {
                what,
                status,
                code: error_code(&body),
            }),
        }
    }

    /// The length of the current version of archive object `name`; `None` when it is not there.
    pub async fn size(&self, name: &str) -> Result<Option<u64>, InspectError> {
        let key = self.location.key(name);
        let what = format!("HEAD {key}");
        let (status, headers, _) = self
            .send(reqwest::Method::HEAD, Some(&key), &[], None, &what)
            .await?;
        match status {
            200..=299 => Ok(headers
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            404 => Ok(None),
            _ => Err(InspectError::Status {
                what,
                status,
                code: String::new(),
            }),
        }
    }
}

/// Percent-encode `text` for a URL: everything but RFC 3986's unreserved characters (and `/`
/// in a path). SigV4 signs the path as sent, so this must be the encoding S3 canonicalizes to.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Undo URL encoding (`encoding-type=url`: `%XX`, and `+` for a space); invalid escapes stay
/// as they are; bytes that are not UTF-8 become U+FFFD.
fn decode_url(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `<Code>` of an S3 error body, or a note that there was none.
fn error_code(body: &[u8]) -> String {
    match xml_fields(body, &["Code"]) {
        Ok(fields) => fields[0]
            .clone()
            .unwrap_or_else(|| "(no error code)".into()),
        Err(_) => "(no error code)".into(),
    }
}

/// One parsed ListObjectVersions page.
#[derive(Debug, Default)]
struct VersionsPage {
    entries: Vec<ObjectVersion>,
    truncated: bool,
    next_key_marker: String,
    next_version_marker: String,
}

/// The deepest element nesting S3's answers use is 3; a deeper document is not S3's.
const MAX_DEPTH: usize = 8;

/// Walk `xml`, calling `on(path, Some(text))` for the text of each element (path = the names
/// of the open elements) and `on(path, None)` when one closes; text is unescaped and at most
/// [`MAX_FIELD_BYTES`].
fn walk_xml(xml: &[u8], mut on: impl FnMut(&[String], Option<String>)) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => {
                if path.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                path.push(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::End(_) => {
                if !text.is_empty() {
                    on(&path, Some(std::mem::take(&mut text)));
                }
                on(&path, None);
                path.pop();
            }
            Event::Text(t) => push_text(&mut text, t.decode().map_err(|e| e.to_string())?)?,
            Event::CData(t) => push_text(&mut text, t.decode().map_err(|e| e.to_string())?)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_owned()
                    }
                };
                push_text(&mut text, Cow::Owned(resolved))?;
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

fn push_text(text: &mut String, more: Cow<'_, str>) -> Result<(), String> {
    if text.len() + more.len() > MAX_FIELD_BYTES {
        return Err(format!("a field longer than {MAX_FIELD_BYTES} bytes"));
    }
    text.push_str(&more);
    Ok(())
}

/// The text of the first element named each of `names` (at any depth).
fn xml_fields(xml: &[u8], names: &[&str]) -> Result<Vec<Option<String>>, String> {
    let mut found = vec![None; names.len()];
    walk_xml(xml, |path, text| {
        if let (Some(text), Some(last)) = (text, path.last())
            && let Some(i) = names.iter().position(|n| n == last)
            && found[i].is_none()
        {
            found[i] = Some(text);
        }
    })?;
    Ok(found)
}

/// Parse a `ListVersionsResult` page (keys URL-encoded: `encoding-type=url`).
fn parse_versions_page(xml: &[u8]) -> Result<VersionsPage, String> {
    let mut page = VersionsPage::default();
    let mut current = ObjectVersion::empty();
    let mut root_seen = false;
    let mut url_encoded = false;
    let mut bad_number = None;
    walk_xml(xml, |path, text| match (path, text) {
        ([root, field], Some(text)) if root == "ListVersionsResult" => match field.as_str() {
            "IsTruncated" => page.truncated = text == "true",
            "EncodingType" => url_encoded = text == "url",
            "NextKeyMarker" => page.next_key_marker = text,
            "NextVersionIdMarker" => page.next_version_marker = text,
            _ => {}
        },
        ([_, entry, field], Some(text)) if entry == "Version" || entry == "DeleteMarker" => {
            match field.as_str() {
                "Key" => current.key = text,
                "VersionId" => current.version_id = text,
                "IsLatest" => current.is_latest = text == "true",
                "LastModified" => current.last_modified = text,
                "ETag" => current.etag = text,
                "Size" => match text.parse() {
                    Ok(size) => current.size = size,
                    Err(_) => bad_number = Some(text),
                },
                _ => {}
            }
        }
        ([root], None) => root_seen |= root == "ListVersionsResult",
        ([_, entry], None) if entry == "Version" || entry == "DeleteMarker" => {
            let mut done = std::mem::replace(&mut current, ObjectVersion::empty());
            done.delete_marker = entry == "DeleteMarker";
            page.entries.push(done);
        }
        _ => {}
    })?;
    if let Some(text) = bad_number {
        return Err(format!("a Size that is not a number: {text:?}"));
    }
    if !root_seen {
        return Err("no ListVersionsResult element".into());
    }
    // S3 encodes the keys as asked and says so; a server that ignores `encoding-type`
    // (moto 5.2.1) sends them raw, and decoding those would turn a key `a%41` into `aA`.
    if url_encoded {
        page.next_key_marker = decode_url(&page.next_key_marker);
        for entry in &mut page.entries {
            entry.key = decode_url(&entry.key);
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Prefix>p/</Prefix><EncodingType>url</EncodingType><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>
<NextKeyMarker>p/b%20c</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>
<IsTruncated>true</IsTruncated>
<DeleteMarker><Key>p/a</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest>
<LastModified>2026-11-28T01:00:02.000Z</LastModified></DeleteMarker>
<Version><Key>p/a</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest>
<LastModified>2026-11-28T01:00:01.000Z</LastModified><ETag>&quot;e2&quot;</ETag><Size>20</Size></Version>
<Version><Key>p/%1B%5B31mred%0A</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest>
<LastModified>2026-11-28T01:00:00.000Z</LastModified><ETag>"e1"</ETag><Size>5</Size></Version>
</ListVersionsResult>"#;

    #[test]
    fn a_page_parses_into_versions_and_delete_markers_in_listing_order() {
        let page = parse_versions_page(PAGE.as_bytes()).expect("parses");
        assert!(page.truncated);
        assert_eq!(page.next_key_marker, "p/b c");
        assert_eq!(page.next_version_marker, "v9");
        let got: Vec<_> = page
            .entries
            .iter()
            .map(|v| {
                (
                    v.key.as_str(),
                    v.version_id.as_str(),
                    v.delete_marker,
                    v.is_latest,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("p/a", "v3", true, true),
                ("p/a", "v2", false, false),
                ("p/\x1b[31mred\n", "v1", false, true)
            ]
        );
        assert_eq!(page.entries[1].etag, "\"e2\"");
        assert_eq!(page.entries[1].size, 20);
    }

    #[test]
    fn keys_are_decoded_only_when_the_server_says_it_encoded_them() {
        let raw = "<ListVersionsResult><Version><Key>p/a%41\u{1b}</Key></Version>\
            </ListVersionsResult>";
        let page = parse_versions_page(raw.as_bytes()).expect("parses");
        assert_eq!(page.entries[0].key, "p/a%41\u{1b}");
        let encoded = raw.replace("<Version>", "<EncodingType>url</EncodingType><Version>");
        let page = parse_versions_page(encoded.as_bytes()).expect("parses");
        assert_eq!(page.entries[0].key, "p/aA\u{1b}");
    }

    #[test]
    fn hostile_xml_is_refused_not_trusted() {
        let long_key = format!(
            "<ListVersionsResult><Version><Key>{}</Key></Version></ListVersionsResult>",
            "k".repeat(MAX_FIELD_BYTES + 1)
        );
        let deep = format!("<ListVersionsResult>{}", "<a>".repeat(MAX_DEPTH + 1));
        let bad_size = "<ListVersionsResult><Version><Size>99999999999999999999999</Size></Version></ListVersionsResult>";
        for (xml, expect) in [
            (long_key.as_str(), "longer than"),
            (deep.as_str(), "deeper"),
            (bad_size, "not a number"),
            (
                "<Error><Code>AccessDenied</Code></Error>",
                "no ListVersionsResult",
            ),
            (
                "<ListVersionsResult><Key>&xxe;</Key></ListVersionsResult>",
                "unknown entity",
            ),
        ] {
            let err = parse_versions_page(xml.as_bytes()).expect_err(expect);
            assert!(err.contains(expect), "{expect}: {err}");
        }
    }

    /// A hostile S3 endpoint on loopback: answers every request with `page(n)` (n = the
    /// 0-based request number), and counts the requests.
    fn hostile_server(
        page: impl Fn(u64) -> String + Send + 'static,
    ) -> (String, Arc<std::sync::atomic::AtomicU64>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/bucket", listener.local_addr().expect("addr"));
        let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = Arc::clone(&served);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => {
                            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let body = page(n);
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            );
                            if stream.write_all(head.as_bytes()).is_err()
                                || stream.write_all(body.as_bytes()).is_err()
                            {
                                break;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
        });
        (url, served)
    }

    fn inspector_at(url: String) -> S3Inspector {
        let credential = Arc::new(AwsCredential {
            key_id: "k".into(),
            secret_key: "s".into(),
            token: None,
        });
        let location = S3Location::parse("s3://bucket/p").expect("location");
        S3Inspector::new(&location, url, "us-east-1".into(), credential).expect("client")
    }

    fn truncated_page(marker: &str) -> String {
        format!(
            "<ListVersionsResult><IsTruncated>true</IsTruncated>\
             <NextKeyMarker>{marker}</NextKeyMarker><NextVersionIdMarker>v</NextVersionIdMarker>\
             <Version><Key>p/k</Key><VersionId>{marker}</VersionId></Version></ListVersionsResult>"
        )
    }

    #[test]
    fn a_listing_that_never_ends_stops_at_the_page_cap_and_says_so() {
        // Every page says "more", with a fresh marker each time.
        let (url, served) = hostile_server(|n| truncated_page(&format!("m{n}")));
        let inspector = inspector_at(url);
        let mut seen = 0u64;
        let summary =
            blocking(inspector.list_versions(InspectLimits { max_pages: 25 }, |_| seen += 1))
                .expect("a cut listing is not an error");
        assert_eq!(summary.pages, 25);
        assert_eq!(seen, 25);
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 25);
        let why = summary.incomplete.expect("incomplete");
        assert!(why.contains("cut after 25 pages"), "{why}");
    }

    #[test]
    fn a_listing_whose_marker_does_not_advance_stops_at_once() {
        // Every page says "more" and hands back the same marker.
        let (url, served) = hostile_server(|_| truncated_page("same"));
        let inspector = inspector_at(url);
        let summary = blocking(inspector.list_versions(InspectLimits::default(), |_| {}))
            .expect("a stuck listing is not an error");
        // The first page moves the marker from nothing to `same`; the second gives `same` again.
        assert_eq!(summary.pages, 2);
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(
            summary
                .incomplete
                .expect("incomplete")
                .contains("no new marker")
        );
    }

    #[test]
    fn an_endless_response_body_is_cut_at_the_size_cap() {
        let (url, _) = hostile_server(|_| {
            format!(
                "<ListVersionsResult>{}</ListVersionsResult>",
                "<Version><Key>p/k</Key></Version>".repeat(MAX_RESPONSE_BYTES / 30)
            )
        });
        let inspector = inspector_at(url);
        let err = blocking(inspector.list_versions(InspectLimits::default(), |_| {}))
            .expect_err("a body past the cap is refused");
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn url_encoding_round_trips_every_byte_and_keeps_bad_escapes() {
        let key = "p/a b+c%/\u{1b}\u{7f}é~";
        assert_eq!(decode_url(&encode(key, false)), key);
        assert_eq!(encode(key, true).matches('/').count(), 2);
        assert_eq!(decode_url("100%"), "100%");
        assert_eq!(decode_url("%zz%4"), "%zz%4");
    }

    #[test]
    fn bucket_answers_give_their_fields_and_error_codes() {
        let lock = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
            <DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days><Years>0</Years></DefaultRetention>\
            </Rule></ObjectLockConfiguration>";
        let fields = xml_fields(
            lock.as_bytes(),
            &["ObjectLockEnabled", "Mode", "Days", "Nope"],
        )
        .expect("parses");
        assert_eq!(
            fields,
            [
                Some("Enabled".to_owned()),
                Some("COMPLIANCE".to_owned()),
                Some("1".to_owned()),
                None
            ]
        );
        assert_eq!(
            error_code(b"<Error><Code>NoSuchBucket</Code></Error>"),
            "NoSuchBucket"
        );
        assert_eq!(error_code(b"<html>"), "(no error code)");
    }
}
