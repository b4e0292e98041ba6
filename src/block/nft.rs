//! secpipe's firewall: its own `table inet secpipe`, driven through `nft -f -`.
//!
//! ```text
//! table inet secpipe {
//!   set allow4 { type ipv4_addr; flags interval; auto-merge; }   # [block] allow, checked first
//!   set allow6 { type ipv6_addr; flags interval; auto-merge; }
//!   set ban4   { type ipv4_addr; flags timeout; size 65536; }
//!   set ban6   { type ipv6_addr; flags interval,timeout; size 65536; }   # a /64 bans the prefix
//!   chain input { type filter hook input priority -5; policy accept;
//!     ip saddr @allow4 accept; ip6 saddr @allow6 accept
//!     ip saddr @ban4 counter drop; ip6 saddr @ban6 counter drop }
//!   chain forward { … the same, with `[block] forward = true` (routers, containers) }
//! }
//! ```
//!
//! Only this table is ever named: other tables (the operator's, fail2ban's, Docker's) are not
//! read or touched. Every element carries a kernel timeout, so a secpipe that crashed or was
//! killed never leaves a ban behind for longer than its time. Every change of one tick is one
//! `nft -f -` script, which nft applies as one transaction: all of it or none.
//!
//! The script is built only from [`BlockTarget`]s and [`Net`]s, which print as digits, hex,
//! `.`, `:` and `/`: nothing from a log line can reach it as text.
//!
//! ```
//! use secpipe::block::nft;
//! use secpipe::block::ledger::parse_target;
//! let v6 = parse_target("2001:db8:1::/64").unwrap();
//! assert_eq!(nft::ban_lines(v6, 900), "add element inet secpipe ban6 { 2001:db8:1::/64 }\n\
//!     delete element inet secpipe ban6 { 2001:db8:1::/64 }\n\
//!     add element inet secpipe ban6 { 2001:db8:1::/64 timeout 900s }\n");
//! ```

use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::policy::Net;
use crate::action::BlockTarget;

/// The table's name, the one thing of the kernel's ruleset secpipe owns.
pub const TABLE: &str = "inet secpipe";
/// Elements each ban set holds at most (the kernel refuses more; the breaker keeps far below).
pub const SET_SIZE: u32 = 65_536;

/// The set a target goes in.
fn set_of(target: BlockTarget) -> &'static str {
    match target.network() {
        IpAddr::V4(_) => "ban4",
        IpAddr::V6(_) => "ban6",
    }
}

/// The script that replaces the table whole: declared empty (so deleting it cannot fail when
/// it is not there), deleted, and declared again with `allow` in its allow sets. One
/// transaction: there is no moment without the table's rules once it existed. With `forward`,
/// a second chain on the forward hook drops banned sources on their way to containers and
/// hosts behind a router too.
pub fn table_script(allow: &[Net], forward: bool) -> String {
    let mut s = format!("table {TABLE} {{}}\ndelete table {TABLE}\n");
    let chain = |name: &str| {
        format!(
            "\tchain {name} {{\n\
             \t\ttype filter hook {name} priority -5; policy accept;\n\
             \t\tip saddr @allow4 accept\n\
             \t\tip6 saddr @allow6 accept\n\
             \t\tip saddr @ban4 counter drop\n\
             \t\tip6 saddr @ban6 counter drop\n\
             \t}}\n"
        )
    };
    s.push_str(&format!(
        "table {TABLE} {{\n\
         \tset allow4 {{ type ipv4_addr; flags interval; auto-merge; }}\n\
         \tset allow6 {{ type ipv6_addr; flags interval; auto-merge; }}\n\
         \tset ban4 {{ type ipv4_addr; flags timeout; size {SET_SIZE}; }}\n\
         \tset ban6 {{ type ipv6_addr; flags interval,timeout; size {SET_SIZE}; }}\n"
    ));
    s.push_str(&chain("input"));
    if forward {
        s.push_str(&chain("forward"));
    }
    s.push_str("}\n");
    for net in allow {
        let net = net.masked();
        let set = if net.addr.is_ipv4() {
            "allow4"
        } else {
            "allow6"
        };
        s.push_str(&format!(
            "add element {TABLE} {set} {{ {}/{} }}\n",
            net.addr, net.prefix
        ));
    }
    s
}

/// Ban `target` for `secs` seconds, whether or not it is in the set already: add (a no-op if
/// present), delete, add with the timeout. A plain re-add keeps the old timeout on older
/// kernels; this sets the new one on all.
pub fn ban_lines(target: BlockTarget, secs: u64) -> String {
    let set = set_of(target);
    let secs = secs.max(1);
    format!(
        "add element {TABLE} {set} {{ {target} }}\n\
         delete element {TABLE} {set} {{ {target} }}\n\
         add element {TABLE} {set} {{ {target} timeout {secs}s }}\n"
    )
}

/// Lift `target` whether or not it is still there (an element may just have expired, and a
/// failing delete would fail the whole batch): add with a 1 s timeout, then delete.
pub fn unban_lines(target: BlockTarget) -> String {
    let set = set_of(target);
    format!(
        "add element {TABLE} {set} {{ {target} timeout 1s }}\n\
         delete element {TABLE} {set} {{ {target} }}\n"
    )
}

/// An element of a ban set as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelBan {
    pub target: BlockTarget,
    /// Seconds left before the kernel removes it.
    pub expires: u64,
}

/// How long one `nft` run may take before it is killed and counted as failed: a hung `nft`
/// (a kernel busy with a huge ruleset, a wrapper that waits) must not hold the enforcer, and
/// with it the end of the run, for ever.
pub const NFT_TIMEOUT: Duration = Duration::from_secs(10);

/// How secpipe runs `nft` (a path, so tests can point it elsewhere).
#[derive(Clone, Debug)]
pub struct Nft {
    pub program: String,
    /// Each run is killed past this ([`NFT_TIMEOUT`]).
    pub timeout: Duration,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            program: "nft".into(),
            timeout: NFT_TIMEOUT,
        }
    }
}

impl Nft {
    /// Apply one script as one transaction.
    pub fn apply(&self, script: &str) -> Result<(), String> {
        let out = self.run(&["-f", "-"], Some(script.as_bytes()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} -f - failed ({}): {}",
                self.program,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Run `nft ARGS` with `input` on stdin, killed past [`Nft::timeout`]. Its output is read
    /// on helper threads meanwhile, so a long listing cannot fill the pipe and stall it.
    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<std::process::Output, String> {
        let fail = |e: std::io::Error| format!("{}: {e}", self.program);
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(fail)?;
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            // A failed write shows as nft's own error (it read a cut script) or the timeout.
            let _ = stdin.write_all(input);
        }
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(fail)? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} {}: no answer within {:?}; killed",
                    self.program,
                    args.join(" "),
                    self.timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(std::process::Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }

    /// The elements of both ban sets; `Ok(None)` when the table is not there (flushed, or
    /// `systemctl restart nftables`).
    pub fn list_bans(&self) -> Result<Option<Vec<KernelBan>>, String> {
        let mut all = Vec::new();
        for set in ["ban4", "ban6"] {
            let out = self.run(&["-j", "list", "set", "inet", "secpipe", set], None)?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                if err.contains("No such file or directory") {
                    return Ok(None);
                }
                return Err(format!("{} list set {set}: {}", self.program, err.trim()));
            }
            all.extend(parse_list(&out.stdout)?);
        }
        Ok(Some(all))
    }
}

/// The elements in `nft -j list set` output: `{"elem":{"val":"203.0.113.7","expires":2,…}}`
/// or, in an interval set, `"val":{"prefix":{"addr":"2001:db8:1::","len":64}}`. An element
/// without `expires` (someone added one by hand without a timeout) reads as 0 s left.
pub fn parse_list(json: &[u8]) -> Result<Vec<KernelBan>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("nft -j output: {e}"))?;
    let mut out = Vec::new();
    let items = doc["nftables"].as_array().cloned().unwrap_or_default();
    for item in items {
        let Some(elems) = item["set"]["elem"].as_array() else {
            continue;
        };
        for e in elems {
            let (val, expires) = match e.get("elem") {
                Some(inner) => (&inner["val"], inner["expires"].as_u64().unwrap_or(0)),
                None => (e, 0),
            };
            let target = match val {
                serde_json::Value::String(s) => super::ledger::parse_target(s),
                v => {
                    let addr = v["prefix"]["addr"].as_str().unwrap_or("");
                    let len = v["prefix"]["len"].as_u64().unwrap_or(0);
                    super::ledger::parse_target(&format!("{addr}/{len}"))
                }
            };
            if let Some(target) = target {
                out.push(KernelBan { target, expires });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::ledger::parse_target;

    #[test]
    fn a_v4_ban_is_one_element_with_its_timeout() {
        let t = parse_target("203.0.113.7").expect("target");
        assert_eq!(
            ban_lines(t, 600),
            "add element inet secpipe ban4 { 203.0.113.7 }\n\
             delete element inet secpipe ban4 { 203.0.113.7 }\n\
             add element inet secpipe ban4 { 203.0.113.7 timeout 600s }\n"
        );
        assert_eq!(
            unban_lines(t),
            "add element inet secpipe ban4 { 203.0.113.7 timeout 1s }\n\
             delete element inet secpipe ban4 { 203.0.113.7 }\n"
        );
        // A zero timeout would mean "no timeout" to some tools: never less than 1 s.
        assert!(ban_lines(t, 0).contains("timeout 1s"));
    }

    #[test]
    fn the_table_script_names_only_secpipes_table_and_masks_allow_networks() {
        let allow = [
            Net::of_block(&crate::classify::IpBlock::parse("192.0.2.77/24").expect("cidr")),
            Net::host("2001:db8::5".parse().expect("ip")),
        ];
        let s = table_script(&allow, false);
        assert!(!s.contains("hook forward"));
        assert!(table_script(&[], true).contains(
            "chain forward {\n\t\ttype filter hook forward priority -5; policy accept;\n"
        ));
        assert!(s.starts_with("table inet secpipe {}\ndelete table inet secpipe\n"));
        assert!(
            s.contains("add element inet secpipe allow4 { 192.0.2.0/24 }\n"),
            "{s}"
        );
        assert!(
            s.contains("add element inet secpipe allow6 { 2001:db8::5/128 }\n"),
            "{s}"
        );
        assert!(s.contains("type filter hook input priority -5; policy accept;"));
        for line in s.lines() {
            let names_a_table = line.contains("table ") || line.contains("element ");
            assert!(!names_a_table || line.contains("inet secpipe"), "{line}");
        }
    }

    #[test]
    fn nft_listing_is_read_for_v4_and_v6_prefixes() {
        let json = br#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "ban6", "table": "secpipe", "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8:1::", "len": 64}}, "timeout": 40, "expires": 39}}, {"elem": {"val": "2001:db8::9", "timeout": 5, "expires": 4}}, "2001:db8::7"]}}]}"#;
        let bans = parse_list(json).expect("parses");
        let seen: Vec<(String, u64)> = bans
            .iter()
            .map(|b| (b.target.to_string(), b.expires))
            .collect();
        assert_eq!(
            seen,
            [
                ("2001:db8:1::/64".to_string(), 39),
                ("2001:db8::9".to_string(), 4),
                ("2001:db8::7".to_string(), 0)
            ]
        );
        assert!(parse_list(b"not json").is_err());
    }

    /// A fake `nft` at `dir/nft` running `body`.
    fn fake_nft(dir: &std::path::Path, body: &str, timeout: Duration) -> Nft {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("nft");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("fake nft");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Nft {
            program: path.display().to_string(),
            timeout,
        }
    }

    /// An `nft` that never answers is killed at the timeout and reported: the enforcer (and
    /// the end of the run, which waits for it) is not held for ever.
    #[test]
    fn an_nft_that_hangs_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("dir");
        let nft = fake_nft(dir.path(), "exec sleep 600", Duration::from_millis(200));
        let err = nft.apply("add table inet secpipe\n").expect_err("killed");
        assert!(err.contains("no answer within"), "{err}");
        let err = nft.list_bans().expect_err("killed");
        assert!(err.contains("no answer within"), "{err}");
    }

    /// A listing larger than a pipe's buffer is read while nft writes it (it would stall
    /// with a full pipe otherwise), and a script is given whole on stdin.
    #[test]
    fn a_long_listing_and_a_script_pass_through_the_pipes() {
        let dir = tempfile::tempdir().expect("dir");
        let elems: Vec<String> = (0..20_000)
            .map(|i| {
                format!(
                    r#"{{"elem":{{"val":"198.18.{}.{}","timeout":60,"expires":30}}}}"#,
                    i / 256,
                    i % 256
                )
            })
            .collect();
        let listing = format!(
            r#"{{"nftables":[{{"set":{{"family":"inet","name":"ban4","table":"secpipe","elem":[{}]}}}}]}}"#,
            elems.join(",")
        );
        assert!(listing.len() > 1 << 20);
        std::fs::write(dir.path().join("listing.json"), &listing).expect("listing");
        let body = format!(
            "if [ \"$1\" = -f ]; then cat > {out}; else cat {listing}; fi",
            out = dir.path().join("script.nft").display(),
            listing = dir.path().join("listing.json").display()
        );
        let nft = fake_nft(dir.path(), &body, Duration::from_secs(60));
        let script = "add element inet secpipe ban4 { 203.0.113.7 timeout 900s }\n".repeat(5_000);
        nft.apply(&script).expect("applied");
        let written = std::fs::read_to_string(dir.path().join("script.nft")).expect("script");
        assert_eq!(written, script);
        let bans = nft
            .list_bans()
            .expect("listed")
            .expect("the table is there");
        // Both sets list the same fake output: ban4's 20,000 elements, twice.
        assert_eq!(bans.len(), 40_000);
    }
}
