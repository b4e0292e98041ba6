//! Issue 15, attack: log lines choose the keys a review tallies. Hundreds of thousands of
//! distinct source addresses (more than a tally holds) must leave the review's memory bounded,
//! the real attacker on top, and the review saying its counts are lower bounds.

mod common;
mod report_support;

use std::io::Write;

use common::wait_peak_rss_kib;

#[test]
fn a_flood_of_distinct_addresses_keeps_the_review_small_and_says_it_is_approximate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("flood.log");
    let day = 1_767_225_600; // 2026-01-01T00:00:00Z
    let stamp = |secs: i64| {
        jiff::Timestamp::from_second(secs)
            .expect("time")
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    {
        let mut log = std::io::BufWriter::new(std::fs::File::create(&input).expect("create"));
        for i in 0..250_000u32 {
            let [_, b, c, d] = i.to_be_bytes();
            let at = stamp(day + i64::from(i / 5));
            writeln!(
                log,
                "{at} web1 sshd[1]: Failed password for u{i} from 10.{b}.{c}.{d} port 22 ssh2"
            )
            .expect("write");
            if i % 50 == 0 {
                writeln!(
                    log,
                    "{at} web1 sshd[2]: Failed password for root from 203.0.113.7 port 22 ssh2"
                )
                .expect("write");
            }
        }
    }
    let arch = report_support::archive_file(dir.path(), &input, &["--alerts", "/dev/null"]);

    let json = dir.path().join("review.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .arg("report")
        .arg(&arch)
        .args(["--from", "2026-01-01", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("report");
    let (code, peak_kib) = wait_peak_rss_kib(child);
    assert_eq!(code, 0);
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB");
    eprintln!("report over 255k rows, 250k distinct addresses: peak RSS {peak_kib} KiB");

    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("read")).expect("JSON");
    assert_eq!(r["counts"]["lines"]["now"], 255_000);
    let sources = &r["sources"];
    assert_eq!(
        sources["exact"], false,
        "250,000 addresses are over the cap"
    );
    let max_error = sources["max_error"].as_u64().expect("max_error");
    let top = &sources["rows"][0];
    assert_eq!(top["address"], "203.0.113.7");
    let counted = top["events"].as_u64().expect("events");
    assert!(
        counted <= 5_000 && counted + max_error >= 5_000,
        "{top} ± {max_error}"
    );
    // The users were distinct too (u0 … u249999).
    assert_eq!(r["users"]["exact"], false);
    assert_eq!(r["users"]["rows"][0]["user"], "root");
    let limits = r["limits"].as_array().expect("limits");
    assert!(
        limits.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.starts_with("source addresses"))),
        "{limits:?}"
    );
}
