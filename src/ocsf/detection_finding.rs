//! An alert as an OCSF 1.3.0 Detection Finding (class 2004, activity 1 Create), for
//! `--alert-format ocsf`. Every value an attacker could have written (the key, the summary,
//! evidence lines) goes in as a JSON string value through serde, never into a key or a number,
//! so a user name like `","class_uid":1` stays a name.
//!
//! Where each alert field goes:
//!
//! | secpipe | OCSF |
//! |---|---|
//! | `id` | `finding_info.uid`, `metadata.uid` |
//! | `rule` | `finding_info.title`, `finding_info.types[0]` |
//! | `summary` | `finding_info.desc`, `message` |
//! | `severity` | `severity_id` (LOW 2, MEDIUM 3, HIGH 4, CRITICAL 5), `severity` |
//! | `first_seen`, `last_seen` | `finding_info.first_seen_time` / `last_seen_time`, `start_time` / `end_time`; `time` = `last_seen` (ms) |
//! | `count` | `count` |
//! | key `src_ip` (an address) | `src_endpoint.ip`, an IP Address observable and evidence |
//! | key `user` / `actor` | `user.name`, a User Name observable and evidence |
//! | key `host` | `device.hostname`, a Hostname observable |
//! | evidence lines | `evidences[].data` (source, line, ts, raw, seq) |
//! | the rest (priority, respond_within, threshold, window, action, unverified, a key that is no address such as an IPv6 /64) | `unmapped` (strings) |
//!
//! `is_alert: true` is written too: OCSF adds the attribute in 1.4; 1.3.0 readers ignore it.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::{metadata, severity_id, severity_name};
use crate::action::Action;
use crate::alert::Alert;

/// OCSF class uid of Detection Finding.
pub const CLASS_UID: i64 = 2004;
/// Activity 1, Create: secpipe raises each alert once.
const ACTIVITY_CREATE: i64 = 1;

/// `alert` as an OCSF Detection Finding object.
///
/// ```
/// use secpipe::alert::{Alert, Severity};
/// let alert = Alert {
///     id: "00ff".into(), rule: "auth.bruteforce".into(), severity: Severity::High,
///     priority: "P1".into(), respond_within: "1h".into(),
///     key_field: "src_ip".into(), key_value: "203.0.113.7".into(),
///     count: 5, threshold: 5, window_start: 0, window_end: 0,
///     first_seen: 1_000_000, last_seen: 2_000_000,
///     summary: "5 failures".into(), evidence: vec![], action: vec![], unverified: false,
/// };
/// let v = secpipe::ocsf::detection_finding::finding(&alert);
/// assert_eq!(v["class_uid"], 2004);
/// assert_eq!(v["type_uid"], 200401);
/// assert_eq!(v["severity_id"], 4);
/// assert_eq!(v["time"], 2000);
/// assert_eq!(v["src_endpoint"]["ip"], "203.0.113.7");
/// assert_eq!(v["finding_info"]["uid"], "00ff");
/// ```
pub fn finding(alert: &Alert) -> Value {
    let ms = |micros: i64| micros.div_euclid(1000);
    let mut unmapped = Map::new();
    let mut put = |k: &str, v: String| {
        unmapped.insert(format!("secpipe.{k}"), Value::String(v));
    };
    put("priority", alert.priority.clone());
    put("respond_within", alert.respond_within.clone());
    put("threshold", alert.threshold.to_string());
    put("key_field", alert.key_field.clone());
    put("key_value", alert.key_value.clone());
    put("window_start", ts_text(alert.window_start));
    put("window_end", ts_text(alert.window_end));
    for (name, value) in Action::pairs(&alert.action) {
        put(&format!("action.{name}"), value.to_string());
    }
    if alert.unverified {
        put("unverified", "true".into());
    }

    let mut v = json!({
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id(alert.severity),
        "severity": severity_name(alert.severity),
        "status_id": 1,
        "status": "New",
        "time": ms(alert.last_seen),
        "start_time": ms(alert.first_seen),
        "end_time": ms(alert.last_seen),
        "count": alert.count,
        "message": alert.summary,
        "is_alert": true,
        "metadata": metadata(Some(alert.id.clone())),
        "finding_info": {
            "uid": alert.id,
            "title": alert.rule,
            "desc": alert.summary,
            "types": [alert.rule],
            "first_seen_time": ms(alert.first_seen),
            "last_seen_time": ms(alert.last_seen),
        },
    });
    let (observable, evidence) = key_objects(alert, &mut v);
    let mut evidences: Vec<Value> = evidence.into_iter().collect();
    for ev in &alert.evidence {
        let mut data = Map::new();
        data.insert("source".into(), Value::String(ev.source.to_string()));
        data.insert("line".into(), ev.line.into());
        data.insert("ts".into(), Value::String(ts_text(ev.ts)));
        data.insert(
            "raw".into(),
            Value::String(String::from_utf8_lossy(&ev.raw).into_owned()),
        );
        data.insert("seq".into(), ev.seq.map_or(Value::Null, Value::from));
        evidences.push(json!({ "data": data }));
    }
    if !evidences.is_empty() {
        v["evidences"] = Value::Array(evidences);
    }
    v["observables"] = Value::Array(vec![observable]);
    v["unmapped"] = Value::Object(unmapped);
    v
}

/// The alert's key as an observable and, when OCSF has a place for it, the object it fills
/// (set on `v`) and an evidence artifact naming it. A `src_ip` that is not one address (an
/// IPv6 /64 prefix) is no `ip`: it stays an observable of type Other.
fn key_objects(alert: &Alert, v: &mut Value) -> (Value, Option<Value>) {
    let value = alert.key_value.as_str();
    let observable = |type_id: i64, type_name: &str| json!({"name": alert.key_field, "type_id": type_id, "type": type_name, "value": value});
    match alert.key_field.as_str() {
        "src_ip" | "ip" if value.parse::<IpAddr>().is_ok() => {
            v["src_endpoint"] = json!({ "ip": value });
            (
                observable(2, "IP Address"),
                Some(json!({ "src_endpoint": { "ip": value } })),
            )
        }
        "user" | "actor" => {
            v["user"] = json!({ "name": value });
            (
                observable(4, "User Name"),
                Some(json!({ "user": { "name": value } })),
            )
        }
        "host" => {
            v["device"] = json!({ "hostname": value, "type_id": 0 });
            (observable(1, "Hostname"), None)
        }
        _ => (observable(99, "Other"), None),
    }
}

fn ts_text(micros: i64) -> String {
    let mut s = String::with_capacity(27);
    crate::event::write_ts(&mut s, micros);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Evidence, Severity};
    use std::sync::Arc;

    fn alert(key_field: &str, key_value: &str) -> Alert {
        Alert {
            id: "abc".into(),
            rule: "auth.bruteforce".into(),
            severity: Severity::Critical,
            priority: "P0".into(),
            respond_within: "15m".into(),
            key_field: key_field.into(),
            key_value: key_value.into(),
            count: 7,
            threshold: 5,
            window_start: 0,
            window_end: 60_000_000,
            first_seen: 1_500,
            last_seen: 2_500_999,
            summary: "s".into(),
            evidence: vec![Evidence {
                source: Arc::from("auth.log"),
                line: 3,
                ts: 1,
                raw: b"Failed \xff".to_vec().into(),
                seq: Some(9),
            }],
            action: vec![],
            unverified: true,
        }
    }

    #[test]
    fn severity_time_and_provenance_are_mapped() {
        let v = finding(&alert("src_ip", "2001:db8::1"));
        assert_eq!(v["severity_id"], 5);
        assert_eq!(v["severity"], "Critical");
        assert_eq!(v["time"], 2500);
        assert_eq!(v["finding_info"]["first_seen_time"], 1);
        assert_eq!(v["metadata"]["version"], "1.3.0");
        assert_eq!(v["metadata"]["product"]["vendor_name"], "secpipe");
        assert_eq!(v["src_endpoint"]["ip"], "2001:db8::1");
        assert_eq!(v["observables"][0]["type_id"], 2);
        assert_eq!(v["evidences"][1]["data"]["seq"], 9);
        assert_eq!(v["evidences"][1]["data"]["raw"], "Failed \u{fffd}");
        assert_eq!(v["unmapped"]["secpipe.unverified"], "true");
        assert_eq!(v["unmapped"]["secpipe.threshold"], "5");
    }

    #[test]
    fn a_prefix_or_a_forged_address_is_never_an_ip() {
        for key in ["2001:db8::/64", "1.2.3.4\",\"x", "203.0.113.7 "] {
            let v = finding(&alert("src_ip", key));
            assert!(v.get("src_endpoint").is_none(), "{key}");
            assert_eq!(v["observables"][0]["type_id"], 99);
            assert_eq!(v["observables"][0]["value"], key);
        }
    }

    #[test]
    fn a_user_key_is_a_user_name() {
        let v = finding(&alert("user", "root\"},\"class_uid\":1,{"));
        assert_eq!(v["user"]["name"], "root\"},\"class_uid\":1,{");
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["observables"][0]["type_id"], 4);
    }
}
