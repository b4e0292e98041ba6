//! Which OCSF class an archived event becomes, and what every class writes alike: the base
//! event attributes, `metadata` with provenance, the endpoints, and `unmapped`.
//!
//! | kind | class |
//! |---|---|
//! | `auth.failure`, `auth.success` | Authentication 3002 ([`super::authentication`]) |
//! | `http.request`, `injection.attempt` | HTTP Activity 4002 ([`super::http_activity`]) |
//! | `apikey.revoke_attempt` | API Activity 6003 ([`super::api_activity`]) |
//! | `data.read`, `data.delete`, `data.search`, `data.namespace_violation` | Datastore Activity 6005 ([`super::datastore_activity`]) |
//! | `log.error`, `other`, `unparsed` | none in OCSF 1.3.0: counted and named by `export` |
//!
//! Provenance: `metadata.uid` is the archive `seq`, `metadata.original_time` the event time
//! as archived, and `unmapped` holds `secpipe.archive_id` and `secpipe.row_leaf` (the row's
//! leaf hash, hex, [`crate::archive::canonical`]), so an exported row can be checked against
//! the archive's verified rows.

use std::collections::BTreeMap;

use super::columns::{Cell, ClassColumns};
use super::{OCSF_VERSION, PRODUCT};

/// One archived events row, borrowed from the batch it was read in, with its provenance.
#[derive(Clone, Copy, Debug)]
pub struct ArchivedEvent<'a> {
    pub seq: i64,
    pub line: i64,
    pub source: &'a str,
    /// µs UTC.
    pub ts: i64,
    pub ts_inferred: bool,
    pub host: Option<&'a str>,
    pub app: Option<&'a str>,
    pub pid: Option<i64>,
    pub kind: &'a str,
    pub reason: Option<&'a str>,
    pub src_ip: Option<&'a str>,
    pub user: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub count: Option<i64>,
    pub http_method: Option<&'a str>,
    pub http_path: Option<&'a str>,
    pub http_status: Option<i64>,
    pub bytes: Option<i64>,
    pub severity: Option<&'a str>,
    pub message: &'a str,
    pub raw: &'a [u8],
    /// µs UTC.
    pub received: i64,
    /// The archive id, hex.
    pub archive_id: &'a str,
    /// The row's leaf hash, hex.
    pub row_leaf: &'a str,
}

/// The OCSF classes `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OcsfClass {
    Authentication,
    HttpActivity,
    ApiActivity,
    DatastoreActivity,
}

impl OcsfClass {
    pub const ALL: [OcsfClass; 4] = [
        OcsfClass::Authentication,
        OcsfClass::HttpActivity,
        OcsfClass::ApiActivity,
        OcsfClass::DatastoreActivity,
    ];

    /// `class_uid`.
    pub fn uid(self) -> i64 {
        match self {
            OcsfClass::Authentication => 3002,
            OcsfClass::HttpActivity => 4002,
            OcsfClass::ApiActivity => 6003,
            OcsfClass::DatastoreActivity => 6005,
        }
    }

    /// `class_name`, the OCSF caption.
    pub fn caption(self) -> &'static str {
        match self {
            OcsfClass::Authentication => "Authentication",
            OcsfClass::HttpActivity => "HTTP Activity",
            OcsfClass::ApiActivity => "API Activity",
            OcsfClass::DatastoreActivity => "Datastore Activity",
        }
    }

    /// The OCSF name, used in directory and file names.
    pub fn name(self) -> &'static str {
        match self {
            OcsfClass::Authentication => "authentication",
            OcsfClass::HttpActivity => "http_activity",
            OcsfClass::ApiActivity => "api_activity",
            OcsfClass::DatastoreActivity => "datastore_activity",
        }
    }

    fn category(self) -> (i64, &'static str) {
        match self {
            OcsfClass::Authentication => (3, "Identity & Access Management"),
            OcsfClass::HttpActivity => (4, "Network Activity"),
            OcsfClass::ApiActivity | OcsfClass::DatastoreActivity => (6, "Application Activity"),
        }
    }

    /// The curated columns.
    pub fn columns(self) -> &'static ClassColumns {
        match self {
            OcsfClass::Authentication => &super::authentication::COLUMNS,
            OcsfClass::HttpActivity => &super::http_activity::COLUMNS,
            OcsfClass::ApiActivity => &super::api_activity::COLUMNS,
            OcsfClass::DatastoreActivity => &super::datastore_activity::COLUMNS,
        }
    }

    /// `event` as a row of [`Self::columns`].
    pub fn row(self, event: &ArchivedEvent) -> Vec<Cell> {
        match self {
            OcsfClass::Authentication => super::authentication::row(event),
            OcsfClass::HttpActivity => super::http_activity::row(event),
            OcsfClass::ApiActivity => super::api_activity::row(event),
            OcsfClass::DatastoreActivity => super::datastore_activity::row(event),
        }
    }
}

/// The class an event of `kind` becomes; `None` for kinds OCSF 1.3.0 has no class for.
///
/// ```
/// use secpipe::event::Kind;
/// use secpipe::ocsf::classes::{class_of, OcsfClass};
/// assert_eq!(class_of("auth.failure"), Some(OcsfClass::Authentication));
/// assert_eq!(class_of("unparsed"), None);
/// // Every kind is decided here: a new kind must be placed (or named as unmapped).
/// for kind in Kind::ALL {
///     let unmapped = matches!(kind, Kind::LogError | Kind::Other | Kind::Unparsed);
///     assert_eq!(class_of(kind.as_str()).is_none(), unmapped, "{}", kind.as_str());
/// }
/// ```
pub fn class_of(kind: &str) -> Option<OcsfClass> {
    Some(match kind {
        "auth.failure" | "auth.success" => OcsfClass::Authentication,
        "http.request" | "injection.attempt" => OcsfClass::HttpActivity,
        "apikey.revoke_attempt" => OcsfClass::ApiActivity,
        "data.read" | "data.delete" | "data.search" | "data.namespace_violation" => {
            OcsfClass::DatastoreActivity
        }
        _ => return None,
    })
}

/// The columns every class starts with, in this order, then the class's own, then
/// `unmapped` ([`unmapped`]). A macro because the class tables are statics.
macro_rules! class_columns {
    ($($extra:expr),* $(,)?) => {{
        use $crate::ocsf::columns::{col, Kind::*};
        [
            col("activity_id", Int),
            col("activity_name", Text),
            col("category_uid", Int),
            col("category_name", Text),
            col("class_uid", Int),
            col("class_name", Text),
            col("type_uid", Long),
            col("type_name", Text),
            col("severity_id", Int),
            col("severity", Text),
            col("time", Long),
            col("status_id", Int),
            col("status", Text),
            col("status_detail", Text),
            col("count", Int),
            col("message", Text),
            col("raw_data", Text),
            col("metadata.uid", Text),
            col("metadata.version", Text),
            col("metadata.original_time", Text),
            col("metadata.logged_time", Long),
            col("metadata.log_name", Text),
            col("metadata.product.name", Text),
            col("metadata.product.vendor_name", Text),
            col("metadata.product.version", Text),
            col("src_endpoint.ip", Text),
            col("dst_endpoint.hostname", Text),
            $($extra,)*
            col("unmapped", Map),
        ]
    }};
}
pub(crate) use class_columns;

/// What a class decides about one event for the common columns.
pub struct Activity {
    pub id: i64,
    pub name: &'static str,
    /// `status_id` and its caption (1 Success, 2 Failure, 0 Unknown); `None` writes neither.
    pub status: Option<(i64, &'static str)>,
}

/// The common columns (the first ones of every class table) for `event`, in order.
pub fn common_cells(class: OcsfClass, activity: &Activity, event: &ArchivedEvent) -> Vec<Cell> {
    let (category_uid, category_name) = class.category();
    let (severity_id, severity) = severity_of(event.severity);
    let text = |s: &str| Cell::Text(s.to_owned());
    let mut original_time = String::with_capacity(27);
    crate::event::write_ts(&mut original_time, event.ts);
    let (status_id, status) = match activity.status {
        Some((id, name)) => (Cell::Int(id), text(name)),
        None => (Cell::Null, Cell::Null),
    };
    vec![
        Cell::Int(activity.id),
        text(activity.name),
        Cell::Int(category_uid),
        text(category_name),
        Cell::Int(class.uid()),
        text(class.caption()),
        Cell::Int(class.uid() * 100 + activity.id),
        Cell::Text(format!("{}: {}", class.caption(), activity.name)),
        Cell::Int(severity_id),
        text(severity),
        Cell::Int(event.ts.div_euclid(1000)),
        status_id,
        status,
        Cell::text(event.reason),
        Cell::int(event.count),
        text(event.message),
        Cell::Text(String::from_utf8_lossy(event.raw).into_owned()),
        Cell::Text(event.seq.to_string()),
        text(OCSF_VERSION),
        Cell::Text(original_time),
        Cell::Int(event.received.div_euclid(1000)),
        text(event.source),
        text(PRODUCT),
        text(PRODUCT),
        text(env!("CARGO_PKG_VERSION")),
        Cell::text(event.src_ip),
        Cell::text(event.host),
    ]
}

/// `unmapped`: provenance and the secpipe fields with no OCSF home, plus `extra` from the
/// class (fields it could not place).
pub fn unmapped(event: &ArchivedEvent, extra: &[(&str, Option<String>)]) -> Cell {
    let mut m = BTreeMap::new();
    m.insert("secpipe.archive_id".to_owned(), event.archive_id.to_owned());
    m.insert("secpipe.row_leaf".to_owned(), event.row_leaf.to_owned());
    m.insert("secpipe.kind".to_owned(), event.kind.to_owned());
    m.insert("secpipe.line".to_owned(), event.line.to_string());
    if event.ts_inferred {
        m.insert("secpipe.ts_inferred".to_owned(), "true".to_owned());
    }
    let optional = [
        ("secpipe.app", event.app.map(str::to_owned)),
        ("secpipe.pid", event.pid.map(|p| p.to_string())),
        ("secpipe.severity", event.severity.map(str::to_owned)),
    ];
    for (k, v) in optional.into_iter().chain(
        extra
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect::<Vec<_>>(),
    ) {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    }
    Cell::Map(m.into_iter().collect())
}

/// OCSF `severity_id` and caption from the log's own level (syslog names or common level
/// words); 0 Unknown when the line had none, 99 Other for a word OCSF does not know.
pub fn severity_of(level: Option<&str>) -> (i64, &'static str) {
    let Some(level) = level else {
        return (0, "Unknown");
    };
    match level.to_ascii_lowercase().as_str() {
        "debug" | "trace" | "info" | "informational" => (1, "Informational"),
        "notice" => (2, "Low"),
        "warning" | "warn" => (3, "Medium"),
        "err" | "error" => (4, "High"),
        "crit" | "critical" | "alert" => (5, "Critical"),
        "emerg" | "emergency" | "fatal" | "panic" => (6, "Fatal"),
        _ => (99, "Other"),
    }
}
