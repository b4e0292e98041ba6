//! `secpipe report --json` against DuckDB: the same numbers from plain SQL over the archive's
//! Parquet files (`events/*/*.parquet`, `alerts/*/*.parquet`, hive-partitioned), for a period
//! and the one before it. The corpus is `benches/report_corpus.py`'s (sshd, nginx, JSON app
//! events, brute-force bursts, a host that goes silent, late and undated lines), and its
//! ground truth is checked against DuckDB first, so a number that is wrong in both the
//! archive and the report cannot pass.
//!
//! Needs `pip install duckdb` (tests/run-all.sh installs it); fails, does not skip, without it.

mod archive_support;
mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// The review's numbers by the natural query, as the model's doc comments define them.
/// argv: archive, from, to, previous_from (µs since the epoch), lateness (µs).
const QUERIES: &str = r#"
import sys, json, duckdb, ipaddress
root, lo, hi, prev, lateness = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
con = duckdb.connect()
# Views cannot take parameters: the paths are quoted as SQL strings.
def files(table):
    return "'" + (root + "/" + table + "/*/*.parquet").replace("'", "''") + "'"
# Every event row, with the highest event time archived before it (in seq order). Undated rows
# carry their receive time and do not move it: secpipe run does not count them either.
con.execute("""
CREATE VIEW ev AS SELECT *, epoch_us(ts) AS us,
  max(CASE WHEN NOT ts_inferred THEN epoch_us(ts) END)
    OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS highest_before
FROM read_parquet(""" + files("events") + """, hive_partitioning = true)""")
# An alert counts when it was decided: its last_seen, or a silence's window_end (the end of
# the quiet window, after the host's last line), whichever is later.
con.execute("CREATE VIEW al AS SELECT *, epoch_us(greatest(last_seen, window_end)) AS us FROM read_parquet("
            + files("alerts") + ", hive_partitioning = true)")

def one(sql, *args):
    return con.execute(sql, list(args)).fetchone()[0]

def rows(sql, *args):
    return con.execute(sql, list(args)).fetchall()

def counts(a, b):
    w = "us >= ? AND us < ?"
    return {
        "lines": one(f"SELECT count(*) FROM ev WHERE {w}", a, b),
        "unparsed": one(f"SELECT count(*) FROM ev WHERE {w} AND kind = 'unparsed'", a, b),
        "ts_inferred": one(f"SELECT count(*) FROM ev WHERE {w} AND ts_inferred", a, b),
        "late": one(f"SELECT count(*) FROM ev WHERE {w} AND us < highest_before - ?", a, b, lateness),
        "kinds": dict(rows(f"SELECT kind, count(*) FROM ev WHERE {w} GROUP BY kind", a, b)),
        # Alerts by when they were decided; bans and unbans are responses, not alerts.
        "alerts": dict(rows(f"""SELECT severity, count(*) FROM al WHERE {w}
            AND rule NOT IN ('secpipe.ban', 'secpipe.unban') GROUP BY severity""", a, b)),
        "rules": dict(rows(f"""SELECT rule, count(*) FROM al WHERE {w}
            AND rule NOT IN ('secpipe.ban', 'secpipe.unban') GROUP BY rule""", a, b)),
    }

out = {"now": counts(lo, hi), "previous": counts(prev, lo)}
W = "us >= ? AND us < ?"
out["sources"] = [list(r) for r in rows(f"""
    SELECT src_ip, count(*) AS n, count(*) FILTER (WHERE kind = 'auth.failure'),
      src_ip NOT IN (SELECT src_ip FROM ev WHERE {W} AND src_ip IS NOT NULL)
    FROM ev WHERE {W} AND src_ip IS NOT NULL GROUP BY src_ip ORDER BY n DESC, src_ip LIMIT 5""", prev, lo, lo, hi)]
out["sources_distinct"] = one(f"SELECT count(DISTINCT src_ip) FROM ev WHERE {W}", lo, hi)
# /24 and /64 prefixes: Python's ipaddress, over DuckDB's per-address counts.
prefixes = {}
for ip, n, failures in rows(f"""SELECT src_ip, count(*), count(*) FILTER (WHERE kind = 'auth.failure')
        FROM ev WHERE {W} AND src_ip IS NOT NULL GROUP BY src_ip""", lo, hi):
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(f"{ip}/{24 if addr.version == 4 else 64}", strict=False)
    p = prefixes.setdefault(str(net), [0, 0])
    p[0] += n
    p[1] += failures
out["prefixes"] = [[k, v[0], v[1]] for k, v in sorted(prefixes.items(), key=lambda kv: (-kv[1][0], kv[0]))[:5]]
out["users"] = [list(r) for r in rows(f"""
    SELECT "user", count(*) FILTER (WHERE kind = 'auth.failure') AS f, count(*) FILTER (WHERE kind = 'auth.success') AS s
    FROM ev WHERE {W} AND "user" IS NOT NULL AND kind IN ('auth.failure', 'auth.success')
    GROUP BY "user" ORDER BY f DESC, s DESC, "user" LIMIT 5""", lo, hi)]
out["actors"] = [list(r) for r in rows(f"""
    SELECT actor, count(*) AS n, sum(coalesce("count", 1)) FROM ev WHERE {W} AND actor IS NOT NULL
    GROUP BY actor ORDER BY n DESC, actor LIMIT 5""", lo, hi)]
out["hosts"] = [list(r) for r in rows(f"""
    SELECT host, count(*) AS n, count(*) FILTER (WHERE kind = 'log.error'),
      strftime(make_timestamp(max(us)), '%Y-%m-%dT%H:%M:%SZ')
    FROM ev WHERE {W} AND host IS NOT NULL GROUP BY host ORDER BY n DESC, host LIMIT 10""", lo, hi)]
out["hosts_distinct"] = one(f"SELECT count(DISTINCT host) FROM ev WHERE {W}", lo, hi)
# Silent: seen in the period or the one before, last event a day or more before the end.
out["silent"] = sorted(r[0] for r in rows(f"""
    SELECT host FROM ev WHERE {W} AND host IS NOT NULL GROUP BY host HAVING max(us) < ?""", prev, hi, hi - 86_400_000_000))
# Whole archive, for the corpus's ground truth.
out["all"] = {
    "lines": one("SELECT count(*) FROM ev"),
    "kinds": dict(rows("SELECT kind, count(*) FROM ev GROUP BY kind")),
    "hosts": dict(rows("SELECT host, count(*) FROM ev WHERE host IS NOT NULL GROUP BY host")),
    "days": dict(rows("SELECT date::VARCHAR, count(*) FROM ev WHERE NOT ts_inferred GROUP BY date")),
    "late": one("SELECT count(*) FROM ev WHERE us < highest_before - ?", lateness),
}
print(json.dumps(out, default=str))
"#;

const DAY_US: i64 = 86_400_000_000;
/// 2026-01-08T00:00:00Z, the corpus's end.
const END_US: i64 = 1_767_830_400_000_000;
const LATENESS_US: i64 = 10_000_000;

/// An archive of the report corpus: (its directory, the corpus's ground truth).
fn archive(dir: &Path) -> Value {
    let corpus = dir.join("corpus.log");
    let truth = dir.join("truth.json");
    let made = Command::new("python3")
        .arg(root().join("benches/report_corpus.py"))
        .args([
            "--lines",
            "20000",
            "--days",
            "3",
            "--seed",
            "7",
            "--untimed",
            "25",
        ])
        .arg("--out")
        .arg(&corpus)
        .arg("--truth")
        .arg(&truth)
        .output()
        .expect("python3");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    run_ok(&[
        "--tz",
        "UTC",
        "--archive",
        dir.join("archive").to_str().unwrap(),
        "--alerts",
        dir.join("alerts.jsonl").to_str().unwrap(),
        corpus.to_str().unwrap(),
    ]);
    serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap()
}

fn report(dir: &Path, from: &str, to: &str) -> Value {
    let out = dir.join(format!("report-{from}-{to}.json"));
    run_ok(&[
        "report",
        dir.join("archive").to_str().unwrap(),
        "--from",
        from,
        "--to",
        to,
        "--json",
        out.to_str().unwrap(),
    ]);
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

fn duckdb(dir: &Path, from_us: i64, to_us: i64) -> Value {
    let args = [
        dir.join("archive").to_str().unwrap().to_string(),
        from_us.to_string(),
        to_us.to_string(),
        (from_us - (to_us - from_us)).to_string(),
        LATENESS_US.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    serde_json::from_str(&archive_support::python(QUERIES, &args))
        .expect("the DuckDB script prints JSON")
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// `{name: count}` of a DuckDB group-by, 0 when absent.
fn group(v: &Value, key: &str) -> u64 {
    v.get(key).map(n).unwrap_or(0)
}

/// Every number of `review` against `db`, the DuckDB answer for the same period.
fn assert_same_numbers(review: &Value, db: &Value) {
    let c = &review["counts"];
    for (field, name) in [
        ("lines", "lines"),
        ("unparsed", "unparsed"),
        ("ts_inferred", "ts_inferred"),
        ("late", "late"),
    ] {
        for side in ["now", "previous"] {
            assert_eq!(
                n(&c[field][side]),
                n(&db[side][name]),
                "counts.{field}.{side}"
            );
        }
    }
    // Events by kind: every kind either side has, both periods.
    let kinds = c["kinds"].as_array().unwrap();
    for side in ["now", "previous"] {
        let from_db = db[side]["kinds"].as_object().unwrap();
        let listed: u64 = kinds.iter().map(|k| n(&k["count"][side])).sum();
        assert_eq!(listed, n(&db[side]["lines"]), "kinds.{side} sum to lines");
        for (kind, count) in from_db {
            let row = kinds.iter().find(|k| k["kind"] == kind.as_str());
            let got = row.map(|k| n(&k["count"][side])).unwrap_or(0);
            assert_eq!(got, n(count), "kinds[{kind}].{side}");
        }
    }
    let a = &review["alerts"];
    for side in ["now", "previous"] {
        let db_alerts = &db[side]["alerts"];
        let mut total = 0;
        for (field, severity) in [
            ("critical", "CRITICAL"),
            ("high", "HIGH"),
            ("medium", "MEDIUM"),
            ("low", "LOW"),
        ] {
            assert_eq!(
                n(&a[field][side]),
                group(db_alerts, severity),
                "alerts.{field}.{side}"
            );
            total += group(db_alerts, severity);
        }
        assert_eq!(n(&a["total"][side]), total, "alerts.total.{side}");
        let rules = review["rules"].as_array().unwrap();
        for (rule, count) in db[side]["rules"].as_object().unwrap() {
            let row = rules.iter().find(|r| r["rule"] == rule.as_str());
            let got = row.map(|r| n(&r["alerts"][side])).unwrap_or(0);
            assert_eq!(got, n(count), "rules[{rule}].alerts.{side}");
        }
        let fired: u64 = rules.iter().map(|r| n(&r["alerts"][side])).sum();
        assert_eq!(fired, total, "rules.*.alerts.{side} sum to the alerts");
    }

    let top = |list: &str, cols: &[&str]| -> Vec<Vec<Value>> {
        review[list]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .take(5)
            .map(|r| cols.iter().map(|c| r[*c].clone()).collect())
            .collect()
    };
    let db_top = |list: &str| -> Vec<Vec<Value>> {
        db[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect()
    };
    assert_eq!(
        top("sources", &["address", "events", "failures", "new"]),
        db_top("sources"),
        "top 5 sources: address, events, failures, new"
    );
    assert_eq!(
        n(&review["sources"]["distinct"]),
        n(&db["sources_distinct"]),
        "sources.distinct"
    );
    assert_eq!(
        top("prefixes", &["prefix", "events", "failures"]),
        db_top("prefixes"),
        "top 5 prefixes"
    );
    assert_eq!(
        top("users", &["user", "failures", "successes"]),
        db_top("users"),
        "top 5 users"
    );
    assert_eq!(
        top("actors", &["actor", "events", "records"]),
        db_top("actors"),
        "top 5 actors"
    );
    let hosts: Vec<Vec<Value>> = review["hosts"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .take(10)
        .map(|r| {
            vec![
                r["host"].clone(),
                r["lines"].clone(),
                r["errors"].clone(),
                r["last_event"].clone(),
            ]
        })
        .collect();
    assert_eq!(hosts, db_top("hosts"), "busiest hosts");
    for row in review["hosts"]["rows"].as_array().unwrap() {
        let spark: u64 = row["sparkline"].as_array().unwrap().iter().map(n).sum();
        assert_eq!(spark, n(&row["lines"]), "sparkline of {}", row["host"]);
    }
    assert_eq!(
        n(&review["hosts"]["distinct"]),
        n(&db["hosts_distinct"]),
        "hosts.distinct"
    );
    let mut silent: Vec<&str> = review["hosts"]["silent"]
        .as_array()
        .unwrap()
        .iter()
        // A host a silence alert names is listed even if it logged again.
        .filter(|h| n(&h["silence_alerts"]) == 0)
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    silent.sort_unstable();
    let db_silent: Vec<&str> = db["silent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    for host in &db_silent {
        assert!(
            review["hosts"]["silent"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["host"] == *host),
            "{host} is silent by DuckDB, not in the review: {}",
            review["hosts"]["silent"]
        );
    }
    assert!(
        silent.iter().all(|h| db_silent.contains(h)),
        "silent without a silence alert, by the review but not by DuckDB: {silent:?} vs {db_silent:?}"
    );
    let timeline: u64 = review["timeline"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(n)
        .sum();
    assert_eq!(timeline, n(&db["now"]["lines"]), "timeline.lines sum");
}

#[test]
fn report_numbers_match_duckdb_over_the_same_archive() {
    let dir = tempfile::tempdir().unwrap();
    let truth = archive(dir.path());

    // The archive holds the corpus: DuckDB agrees with the generator's own counts.
    let whole = duckdb(dir.path(), END_US - DAY_US, END_US);
    let all = &whole["all"];
    assert_eq!(n(&all["lines"]), n(&truth["lines"]), "archived lines");
    assert_eq!(all["kinds"], truth["kinds"], "archived kinds");
    assert_eq!(all["hosts"], truth["hosts"], "archived hosts");
    assert_eq!(all["days"], truth["days"], "archived days");
    assert_eq!(n(&all["late"]), n(&truth["late"]), "late lines");
    assert!(n(&truth["late"]) > 0 && n(&truth["untimed"]) > 0);

    // The last day, compared with the day before (brute force on both, the host silent
    // since 36 h before the end).
    let review = report(dir.path(), "2026-01-07", "2026-01-08");
    assert_eq!(review["archive"]["verdict"], "intact");
    assert_eq!(review["period"]["previous_from"], "2026-01-06T00:00:00Z");
    assert!(
        n(&review["alerts"]["high"]["now"]) > 0,
        "the corpus's attacks alert"
    );
    assert!(n(&review["alerts"]["high"]["previous"]) > 0);
    assert!(n(&review["counts"]["late"]["previous"]) > 0);
    assert!(
        review["hosts"]["silent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["host"] == truth["silent_host"]),
        "the host that stopped logging is named silent: {}",
        review["hosts"]["silent"]
    );
    assert_same_numbers(&review, &whole);

    // Two days, compared with the two before (half of which the corpus does not cover).
    let review = report(dir.path(), "2026-01-06", "2026-01-08");
    assert_same_numbers(&review, &duckdb(dir.path(), END_US - 2 * DAY_US, END_US));
}

#[test]
fn undated_lines_are_counted_where_secpipe_placed_them() {
    // Lines without a timestamp carry the time secpipe received them: a period up to two
    // days from now holds them, the corpus's days do not.
    let dir = tempfile::tempdir().unwrap();
    let truth = archive(dir.path());
    let now_us = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    let to_us = (now_us / DAY_US + 2) * DAY_US;
    let from_us = END_US - 3 * DAY_US;
    let to = date_of(to_us);
    let review = report(dir.path(), "2026-01-05", &to);
    let db = duckdb(dir.path(), from_us, to_us);
    assert_eq!(
        n(&review["counts"]["ts_inferred"]["now"]),
        n(&truth["untimed"])
    );
    assert_eq!(
        n(&review["counts"]["unparsed"]["now"]),
        n(&truth["kinds"]["unparsed"])
    );
    assert_same_numbers(&review, &db);
}

/// `YYYY-MM-DD` of a time in µs UTC.
fn date_of(us: i64) -> String {
    let (y, m, d) = secpipe::event::civil_from_days(us.div_euclid(DAY_US));
    format!("{y:04}-{m:02}-{d:02}")
}
