//! The `[block]` section of `secpipe.toml` and the `--block*` flags, resolved into
//! [`BlockSettings`]. Flags override the file; a key the section does not know is an error that
//! names its line and column.
//!
//! ```
//! use secpipe::block::config::BlockOptions;
//! let text = "[block]\nallow = [\"192.0.2.0/24\"]\nmax_per_minit = 5\n";
//! let err = BlockOptions::from_config("secpipe.toml", text).unwrap_err();
//! assert!(err.message.starts_with("secpipe.toml:3:1:"), "{}", err.message);
//! assert_eq!(err.help.as_deref(), Some("did you mean `max_per_minute`?"));
//! let ok = BlockOptions::from_config("secpipe.toml", "[block]\nblock_private = true\n").unwrap();
//! assert!(ok.block_private);
//! ```

use std::ops::Range;

use serde::Deserialize;

use crate::classify::IpBlock;

/// `--block off|simulate|enforce`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlockMode {
    /// No decisions at all (the default).
    #[default]
    Off,
    /// Decide, record (ledger in memory, audit records with the alerts) and report; never
    /// touch the firewall. The way to roll out, as CrowdSec's simulation mode.
    Simulate,
    /// Decide, record, and apply in `table inet secpipe`.
    Enforce,
}

impl BlockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockMode::Off => "off",
            BlockMode::Simulate => "simulate",
            BlockMode::Enforce => "enforce",
        }
    }
}

/// The `[block]` section as written. Every field has a default, so `[block]` may be empty.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlockOptions {
    /// `off`, `simulate` or `enforce`, as `--block` (which overrides it); read and checked by
    /// [`crate::flags::config`], which knows whether the flag was given.
    pub mode: Option<String>,
    /// Networks never blocked (CIDRs or addresses); also put first in the firewall as `accept`.
    pub allow: Vec<String>,
    /// Block private and ULA ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) too.
    pub block_private: bool,
    /// Let events that came in over UDP syslog (whose sender address is forgeable) cause bans.
    pub trust_udp: bool,
    /// Circuit breaker: at most this many new bans per minute; past it, `secpipe.block_overflow`.
    pub max_per_minute: u32,
    /// Escalation cap: no ban is longer than this.
    pub max_time: String,
    /// Repeat offenders get the rule's time × 2^n (n = earlier bans within `lookback`).
    pub escalation: bool,
    /// How far back an earlier ban of the same address counts for escalation.
    pub lookback: String,
    /// Length of a ban whose rule's block action names no time.
    pub default_time: String,
    /// How often the firewall is compared with the ledger and repaired.
    pub reconcile: String,
    /// Drop banned sources on the forward hook too (a router, or containers behind this host).
    pub forward: bool,
    /// Bans the ledger keeps (live and recent, for escalation), at most 65,536 (what a kernel
    /// set holds); past it the oldest ended ban is forgotten, and when all are live new bans
    /// are refused and counted.
    pub max_bans: usize,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            mode: None,
            allow: Vec::new(),
            block_private: false,
            trust_udp: false,
            max_per_minute: 60,
            max_time: "24h".into(),
            escalation: true,
            lookback: "1d".into(),
            default_time: "15m".into(),
            reconcile: "30s".into(),
            forward: false,
            max_bans: 65_536,
        }
    }
}

/// The field names of [`BlockOptions`], for "did you mean".
const FIELDS: [&str; 12] = [
    "mode",
    "allow",
    "block_private",
    "trust_udp",
    "max_per_minute",
    "max_time",
    "escalation",
    "lookback",
    "default_time",
    "reconcile",
    "forward",
    "max_bans",
];

/// A `[block]` section that does not load: `path:line:column: message`, and a hint.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockConfigError {
    pub message: String,
    pub help: Option<String>,
    pub span: Option<Range<usize>>,
}

/// The config file as this module reads it: only `[block]`; the rest belongs to the rules
/// loader, which checks it.
#[derive(Deserialize, Default)]
struct FileWithBlock {
    #[serde(default)]
    block: Option<BlockOptions>,
}

impl BlockOptions {
    /// The `[block]` section of a config file (`path` names it in errors); defaults when absent.
    pub fn from_config(path: &str, text: &str) -> Result<BlockOptions, BlockConfigError> {
        match toml::from_str::<FileWithBlock>(text) {
            Ok(file) => Ok(file.block.unwrap_or_default()),
            Err(e) => {
                let span = e.span();
                let (line, column) = span
                    .clone()
                    .map(|s| crate::text::line_col(text, s.start))
                    .unwrap_or((0, 0));
                let help = unknown_field(e.message()).and_then(closest_field);
                Err(BlockConfigError {
                    message: format!("{path}:{line}:{column}: [block]: {}", e.message().trim()),
                    help: help.map(|f| format!("did you mean `{f}`?")),
                    span,
                })
            }
        }
    }

    /// Durations and networks checked and resolved.
    pub fn resolve(&self, mode: BlockMode) -> Result<BlockSettings, String> {
        let duration = |name: &str, text: &str| -> Result<i64, String> {
            match crate::duration::parse(text) {
                Ok(us) if us > 0 => Ok(us),
                Ok(_) => Err(format!("[block] {name} = \"{text}\": must be more than 0")),
                Err(why) => Err(format!(
                    "[block] {name} = \"{text}\": not a duration ({why})"
                )),
            }
        };
        let mut allow = Vec::with_capacity(self.allow.len());
        for text in &self.allow {
            allow.push(IpBlock::parse(text).map_err(|e| format!("[block] allow {text}: {e}"))?);
        }
        if self.max_per_minute == 0 {
            return Err("[block] max_per_minute must be at least 1".into());
        }
        // Every live ban is a kernel element: more than a set holds would fail in nft.
        let most = super::nft::SET_SIZE as usize;
        if self.max_bans == 0 || self.max_bans > most {
            return Err(format!(
                "[block] max_bans must be 1 to {most} (what a kernel set holds)"
            ));
        }
        Ok(BlockSettings {
            mode,
            allow,
            block_private: self.block_private,
            trust_udp: self.trust_udp,
            max_per_minute: self.max_per_minute,
            max_time: duration("max_time", &self.max_time)?,
            escalation: self.escalation,
            lookback: duration("lookback", &self.lookback)?,
            default_time: duration("default_time", &self.default_time)?,
            reconcile: duration("reconcile", &self.reconcile)?,
            forward: self.forward,
            max_bans: self.max_bans,
        })
    }
}

/// `unknown field `max_per_minit`, expected one of …` → `max_per_minit`.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn closest_field(word: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (crate::text::edit_distance(word, f), *f))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, f)| f)
}

/// What a run's blocking is made of, checked: durations in µs.
#[derive(Clone, Debug)]
pub struct BlockSettings {
    pub mode: BlockMode,
    pub allow: Vec<IpBlock>,
    pub block_private: bool,
    pub trust_udp: bool,
    pub max_per_minute: u32,
    pub max_time: i64,
    pub escalation: bool,
    pub lookback: i64,
    pub default_time: i64,
    pub reconcile: i64,
    pub forward: bool,
    pub max_bans: usize,
}

impl BlockSettings {
    /// The defaults of a `[block]` section, in `mode` (for tests and simple runs).
    pub fn defaults(mode: BlockMode) -> BlockSettings {
        match BlockOptions::default().resolve(mode) {
            Ok(s) => s,
            // The defaults above are valid durations: this arm is unreachable, kept total.
            Err(_) => BlockSettings {
                mode,
                allow: Vec::new(),
                block_private: false,
                trust_udp: false,
                max_per_minute: 60,
                max_time: 86_400_000_000,
                escalation: true,
                lookback: 86_400_000_000,
                default_time: 900_000_000,
                reconcile: 30_000_000,
                forward: false,
                max_bans: 65_536,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_section_is_the_defaults_and_other_sections_are_left_to_the_rules_loader() {
        let text = "[rules.\"auth.bruteforce\"]\nthreshold = 3\n";
        assert_eq!(
            BlockOptions::from_config("c.toml", text).expect("loads"),
            BlockOptions::default()
        );
    }

    #[test]
    fn a_bad_allow_entry_or_zero_cap_is_refused_by_name() {
        let mut opts = BlockOptions {
            allow: vec!["10.0.0.0/33".into()],
            ..BlockOptions::default()
        };
        let err = opts.resolve(BlockMode::Enforce).expect_err("bad cidr");
        assert!(err.contains("allow 10.0.0.0/33"), "{err}");
        opts.allow.clear();
        opts.max_per_minute = 0;
        assert!(opts.resolve(BlockMode::Enforce).is_err());
        opts.max_per_minute = 1;
        opts.max_bans = 65_537;
        assert!(
            opts.resolve(BlockMode::Enforce)
                .expect_err("big")
                .contains("max_bans")
        );
        opts.max_bans = 10;
        opts.max_time = "0s".into();
        assert!(
            opts.resolve(BlockMode::Enforce)
                .expect_err("zero")
                .contains("max_time")
        );
    }
}
