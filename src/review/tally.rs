//! A count per key with a memory cap, for keys that log text chooses (addresses, user names,
//! hosts): an attacker who writes a million distinct names must not make a review use a
//! million entries.
//!
//! Until the cap the counts are exact. At the cap the tally sorts its entries, keeps the
//! heaviest half and remembers the heaviest weight it dropped; keys seen after that start from
//! zero, so every count is a lower bound, short by at most [`Tally::max_error`] (the
//! "lossy counting" bound: a key dropped at weight w had at most w before it came back). A key
//! heavier than `max_error` can never be missing from the top. The order kept and dropped
//! depends only on the counts and the keys, never on hash order, so the same archive gives the
//! same review.
//!
//! ```
//! use secpipe::review::tally::{Tally, Weight};
//! #[derive(Default)]
//! struct Hits(u64);
//! impl Weight for Hits { fn weight(&self) -> u64 { self.0 } }
//!
//! let mut t: Tally<Hits> = Tally::with_cap(4);
//! for key in ["a", "a", "a", "b", "c", "d", "e", "f"] {
//!     t.entry(key).0 += 1;
//! }
//! assert!(!t.is_exact());
//! let top = t.sorted();
//! assert_eq!(top[0].0, "a");
//! assert_eq!(top[0].1.0, 3);
//! assert!(t.max_error() >= 1);
//! ```

use std::cmp::Reverse;

use hashbrown::HashMap;

/// What a tally orders its entries by when it must drop some.
pub trait Weight {
    fn weight(&self) -> u64;
}

/// Counts per key, at most `cap` keys.
pub struct Tally<S> {
    map: HashMap<Box<str>, S, foldhash::fast::RandomState>,
    cap: usize,
    /// Keys dropped at the cap, in all.
    dropped: u64,
    max_error: u64,
}

impl<S: Default + Weight> Tally<S> {
    /// A tally of at most `cap` keys (at least 2).
    pub fn with_cap(cap: usize) -> Tally<S> {
        Tally {
            // Seeded per process: keys are attacker-chosen (no crafted collisions).
            map: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            cap: cap.max(2),
            dropped: 0,
            max_error: 0,
        }
    }

    /// The entry of `key`, made (at zero) if absent; may first drop the lighter half.
    pub fn entry(&mut self, key: &str) -> &mut S {
        // Looked up twice only in the moment at the cap, never on the common path.
        if self.map.len() >= self.cap && !self.map.contains_key(key) {
            self.shed();
        }
        self.map.entry_ref(key).or_default()
    }

    /// The entry of `key` if it is counted.
    pub fn get(&self, key: &str) -> Option<&S> {
        self.map.get(key)
    }

    /// Keep the heaviest half (ties: the smaller key), remember the heaviest dropped.
    fn shed(&mut self) {
        let mut entries: Vec<(Box<str>, S)> = self.map.drain().collect();
        entries.sort_unstable_by(|a, b| {
            (Reverse(a.1.weight()), &a.0).cmp(&(Reverse(b.1.weight()), &b.0))
        });
        let keep = self.cap / 2;
        for (_, dropped) in entries.drain(keep..) {
            self.max_error = self.max_error.max(dropped.weight());
            self.dropped += 1;
        }
        self.map.extend(entries);
    }

    /// False once keys were dropped at the cap.
    pub fn is_exact(&self) -> bool {
        self.dropped == 0
    }

    /// The most any count may be short by.
    pub fn max_error(&self) -> u64 {
        self.max_error
    }

    /// Distinct keys seen: exact while [`Self::is_exact`], else an upper bound (a key dropped
    /// and seen again counts once more each time; every key seen is either held or was
    /// dropped). Once keys were dropped, more than [`Self::cap`] distinct keys were seen.
    pub fn distinct(&self) -> u64 {
        self.map.len() as u64 + self.dropped
    }

    /// The most keys held at once.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// What a review's `limits` say of this tally, named `name`, once it dropped keys; `None`
    /// while it is exact. (`distinct` overcounts by then, a dropped key seen again counting
    /// twice: only "more than the cap" is certain.)
    pub fn limit_note(&self, name: &str) -> Option<String> {
        (!self.is_exact()).then(|| {
            format!(
                "{name}: more than {} distinct values; counts are lower bounds, short by at most {}",
                self.cap, self.max_error
            )
        })
    }

    /// Every entry, heaviest first (ties: the smaller key).
    pub fn sorted(&self) -> Vec<(&str, &S)> {
        let mut v: Vec<_> = self.iter().collect();
        v.sort_unstable_by(|a, b| (Reverse(a.1.weight()), a.0).cmp(&(Reverse(b.1.weight()), b.0)));
        v
    }

    /// Every entry, in no order (for filters that sort themselves).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &S)> {
        self.map.iter().map(|(k, s)| (k.as_ref(), s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug)]
    struct Hits(u64);
    impl Weight for Hits {
        fn weight(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn exact_below_the_cap() {
        let mut t: Tally<Hits> = Tally::with_cap(10);
        for k in ["x", "y", "x", "z", "x", "y"] {
            t.entry(k).0 += 1;
        }
        assert!(t.is_exact());
        assert_eq!(t.distinct(), 3);
        let top: Vec<(String, u64)> = t
            .sorted()
            .iter()
            .map(|(k, s)| (k.to_string(), s.0))
            .collect();
        assert_eq!(top, [("x".into(), 3), ("y".into(), 2), ("z".into(), 1)]);
    }

    /// A flood of one-off keys (a million spoofed names) cannot push out a key that is
    /// really heavy, and memory stays at the cap.
    #[test]
    fn a_flood_of_distinct_keys_keeps_the_heavy_one_and_the_cap() {
        let mut t: Tally<Hits> = Tally::with_cap(1000);
        for i in 0..100_000u32 {
            t.entry(&format!("spoof-{i}")).0 += 1;
            if i % 10 == 0 {
                t.entry("203.0.113.7").0 += 1;
            }
            assert!(t.map.len() <= 1000);
        }
        assert!(!t.is_exact());
        let top = t.sorted();
        assert_eq!(top[0].0, "203.0.113.7");
        // A lower bound, short by at most max_error.
        assert!(top[0].1.0 <= 10_000 && top[0].1.0 + t.max_error() >= 10_000);
        assert_eq!(t.distinct(), 100_001);
    }

    /// What is kept at the cap depends on counts and keys only: two tallies with different
    /// hash seeds end the same.
    #[test]
    fn shedding_does_not_depend_on_hash_order() {
        let run = || {
            let mut t: Tally<Hits> = Tally::with_cap(8);
            for i in 0..200u32 {
                t.entry(&format!("k{}", i % 37)).0 += u64::from(i % 5);
            }
            t.sorted()
                .iter()
                .map(|(k, s)| (k.to_string(), s.0))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    /// Five keys in turn through a tally of four: each shed drops keys that come back, so
    /// `distinct` overcounts (it is an upper bound, not the lower bound the docs once said);
    /// what is known for sure is "more than the cap".
    #[test]
    fn distinct_is_an_upper_bound_once_keys_come_back() {
        let mut t: Tally<Hits> = Tally::with_cap(4);
        for _ in 0..10 {
            for key in ["a", "b", "c", "d", "e"] {
                t.entry(key).0 += 1;
            }
        }
        assert!(!t.is_exact());
        assert!(t.distinct() > 5, "{}", t.distinct());
        assert_eq!(t.cap(), 4);
    }
}
