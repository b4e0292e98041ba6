//! OCSF (Open Cybersecurity Schema Framework) **1.3.0**, the highest version Amazon Security
//! Lake accepts for custom sources: an export *view* of alerts and archived events. The
//! archive's own schema, row hashes and chain do not change; an exported event row names the
//! archive row it came from (`metadata.uid` = `seq`, `unmapped` holds the archive id and the
//! row's leaf hash) so it can be traced back to a verified row.
//!
//! - Alerts: [`detection_finding`] (class 2004), written by `--alert-format ocsf`.
//! - Events (`secpipe export`): one file per class mapping, [`authentication`] (3002),
//!   [`http_activity`] (4002), [`api_activity`] (6003), [`datastore_activity`] (6005); which
//!   kind goes where is [`classes::class_of`]. Kinds OCSF 1.3.0 has no class for (`log.error`,
//!   `other`, `unparsed`) are counted and named, never silently dropped.
//! - [`columns`]: the curated columns of a class as flat paths (`src_endpoint.ip`), turned into
//!   nested JSON objects or nested Parquet structs from the same row.
//! - [`json_text`]: JSON lines with attacker text kept as escaped string values.

pub mod api_activity;
pub mod authentication;
pub mod classes;
pub mod columns;
pub mod datastore_activity;
pub mod detection_finding;
pub mod export;
pub mod http_activity;
pub mod json_text;
pub mod layout;
pub mod parquet_out;
pub mod writers;

use serde_json::{Value, json};

use crate::alert::{Alert, Severity};

/// The OCSF schema version every object names in `metadata.version`.
pub const OCSF_VERSION: &str = "1.3.0";
/// `metadata.product.name` and `vendor_name`.
pub const PRODUCT: &str = "secpipe";

/// OCSF `severity_id`: LOW 2, MEDIUM 3, HIGH 4, CRITICAL 5.
pub fn severity_id(severity: Severity) -> i64 {
    match severity {
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// The OCSF caption of [`severity_id`].
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

/// The `metadata` object: schema version, product, and the record's own id.
pub fn metadata(uid: Option<String>) -> Value {
    let mut m = json!({
        "version": OCSF_VERSION,
        "product": {
            "name": PRODUCT,
            "vendor_name": PRODUCT,
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    if let Some(uid) = uid {
        m["uid"] = Value::String(uid);
    }
    m
}

/// Append `alert` to `out` as one OCSF Detection Finding JSON line, without the newline.
pub fn write_alert(alert: &Alert, out: &mut String) {
    out.push_str(&json_text::to_line(&detection_finding::finding(alert)));
}
