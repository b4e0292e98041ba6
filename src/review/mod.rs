//! `secpipe report`: the daily and weekly security review of an archive, as one page.
//!
//! # What it rests on
//!
//! A review is computed from the archive alone (its `events` and `alerts` tables, bans
//! included, as `secpipe.ban` rows), never from the clock or the live run, so the same archive
//! and period give the same bytes. Before reading anything it runs `verify` over the archive:
//! the verdict and the head come first in every rendering, and a review of an archive that does
//! not verify says so before any number.
//!
//! # How it reads
//!
//! Two passes over the events files whose manifest time range overlaps, reading only the
//! columns a review needs and skipping row groups by their `ts` statistics:
//! 1. the period itself: counts, per-bucket series, and the tallies behind the top lists;
//! 2. the previous period of the same length: its counts, and whether each address, prefix,
//!    user and actor on a top list was seen in it (`new`).
//!
//! The alerts table is small and read once.
//!
//! # Limits
//!
//! Every tally keyed by log text (addresses, users, actors, hosts, rule keys) holds at most a
//! fixed number of distinct keys. At the cap it keeps the most frequent half and counts on;
//! from then on its counts are lower bounds, off by at most the largest count it dropped, and
//! the review says so (`exact: false`, `limits`). Text from logs is cut to
//! [`MAX_TEXT_CHARS`] characters. So a million distinct addresses or host names cost the same
//! memory as a hundred thousand.

pub mod build;
pub mod html;
pub mod markdown;
pub mod model;
pub mod period;
pub mod read;
pub mod svg;
pub mod tally;

pub use build::{ReviewOptions, review};
pub use model::Review;

/// Log text (a user name, a host) longer than this is cut, with `…`, before it is tallied.
pub const MAX_TEXT_CHARS: usize = 200;
/// Rows of each top list.
pub const TOP_N: usize = 20;
/// Hosts shown with a sparkline.
pub const MAX_HOST_ROWS: usize = 30;
/// Response items and bans listed (all are counted).
pub const MAX_ITEMS: usize = 100;
/// Distinct keys counted per rule.
pub const MAX_KEYS_PER_RULE: u64 = 10_000;
