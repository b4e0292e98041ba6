//! Where exported files go.
//!
//! - Plain: `DIR/{class_name}/eventDay={YYYYMMDD}/part-{n:05}.{parquet|json}`.
//! - Amazon Security Lake (`--security-lake source=NAME,region=R,account=ID`):
//!   `DIR/ext/{NAME}_{class_name}/region={R}/accountId={ID}/eventDay={YYYYMMDD}/{NAME}_{class_name}_{YYYYMMDD}_{n:05}.parquet`.
//!   Security Lake takes one OCSF class per custom source, so each class is its own source:
//!   register `NAME_authentication`, `NAME_http_activity`, … (the ones the export wrote).
//!
//! `eventDay` is the UTC day of the event time. Names, regions and account ids are checked
//! before they become path parts: `source=../../etc` is a usage error, never a directory.

use std::path::{Path, PathBuf};

use super::classes::OcsfClass;

/// The Security Lake partition values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityLake {
    pub source: String,
    pub region: String,
    pub account: String,
}

impl SecurityLake {
    /// Parse `source=NAME,region=R,account=ID`.
    ///
    /// ```
    /// use secpipe::ocsf::layout::SecurityLake;
    /// let lake = SecurityLake::parse("source=secpipe,region=eu-west-1,account=123456789012").unwrap();
    /// assert_eq!(lake.region, "eu-west-1");
    /// let err = SecurityLake::parse("source=../x,region=eu-west-1,account=123456789012").unwrap_err();
    /// assert!(err.contains("source"), "{err}");
    /// assert!(SecurityLake::parse("source=s,region=eu-west-1").unwrap_err().contains("account"));
    /// ```
    pub fn parse(spec: &str) -> Result<SecurityLake, String> {
        let (mut source, mut region, mut account) = (None, None, None);
        for part in spec.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: use key=value (source, region, account)"))?;
            let slot = match key.trim() {
                "source" => &mut source,
                "region" => &mut region,
                "account" => &mut account,
                other => {
                    return Err(format!(
                        "{other:?}: unknown key; use source=NAME,region=R,account=ID"
                    ));
                }
            };
            *slot = Some(value.trim().to_owned());
        }
        let need = |v: Option<String>, name: &str| {
            v.ok_or_else(|| format!("{name}= is missing; use source=NAME,region=R,account=ID"))
        };
        let (source, region, account) = (
            need(source, "source")?,
            need(region, "region")?,
            need(account, "account")?,
        );
        // AWS custom source names: letters, digits, `_` and `-`; the class name is appended.
        if source.is_empty()
            || source.len() > 40
            || !source
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "source {source:?}: 1-40 letters, digits, _ or - (a custom source name)"
            ));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "region {region:?}: an AWS region such as us-east-1"
            ));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account {account:?}: a 12-digit AWS account id"));
        }
        Ok(SecurityLake {
            source,
            region,
            account,
        })
    }
}

/// The layout of one export.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub security_lake: Option<SecurityLake>,
}

impl Layout {
    /// The path of part `n` of `class` for the UTC day `day` (`YYYYMMDD`) under `out`.
    ///
    /// ```
    /// use secpipe::ocsf::classes::OcsfClass;
    /// use secpipe::ocsf::layout::{Layout, SecurityLake};
    /// let plain = Layout::default();
    /// assert_eq!(
    ///     plain.file(std::path::Path::new("o"), OcsfClass::Authentication, "20260101", 0, "json"),
    ///     std::path::Path::new("o/authentication/eventDay=20260101/part-00000.json"),
    /// );
    /// let lake = Layout { security_lake: Some(SecurityLake::parse("source=sp,region=us-east-1,account=123456789012").unwrap()) };
    /// assert_eq!(
    ///     lake.file(std::path::Path::new("o"), OcsfClass::HttpActivity, "20260101", 2, "parquet"),
    ///     std::path::Path::new("o/ext/sp_http_activity/region=us-east-1/accountId=123456789012/eventDay=20260101/sp_http_activity_20260101_00002.parquet"),
    /// );
    /// ```
    pub fn file(&self, out: &Path, class: OcsfClass, day: &str, n: u32, ext: &str) -> PathBuf {
        match &self.security_lake {
            None => out
                .join(class.name())
                .join(format!("eventDay={day}"))
                .join(format!("part-{n:05}.{ext}")),
            Some(lake) => {
                let source = format!("{}_{}", lake.source, class.name());
                out.join("ext")
                    .join(&source)
                    .join(format!("region={}", lake.region))
                    .join(format!("accountId={}", lake.account))
                    .join(format!("eventDay={day}"))
                    .join(format!("{source}_{day}_{n:05}.{ext}"))
            }
        }
    }
}

/// The UTC day of `micros` as `YYYYMMDD`.
///
/// ```
/// assert_eq!(secpipe::ocsf::layout::event_day(0), "19700101");
/// assert_eq!(secpipe::ocsf::layout::event_day(1_767_225_599_999_999), "20251231");
/// ```
pub fn event_day(micros: i64) -> String {
    let (y, m, d) = crate::event::civil_from_days(micros.div_euclid(86_400_000_000));
    // A year outside 0..=9999 (a planted timestamp) still gives one path part, digits only.
    format!("{:04}{m:02}{d:02}", y.clamp(0, 9999))
}
