//! The circuit breaker: at most N new bans per wall-clock minute. A flood of distinct
//! addresses (a botnet, or forged lines naming the whole internet) then stops adding bans
//! instead of filling the firewall, and says so once a minute with `secpipe.block_overflow`.

/// One minute, µs.
pub const MINUTE: i64 = 60_000_000;

/// Counts bans per minute and refuses past the cap.
#[derive(Debug)]
pub struct Breaker {
    max_per_minute: u32,
    /// Start (µs) of the minute being counted.
    minute: i64,
    admitted: u32,
    refused_this_minute: u64,
    /// Refused since the start, for the summary.
    pub refused: u64,
}

/// What the breaker says about one more ban.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over the cap; `first` is true for the first refusal of this minute (raise the alert).
    No {
        first: bool,
        minute: i64,
    },
}

impl Breaker {
    pub fn new(max_per_minute: u32) -> Breaker {
        Breaker {
            max_per_minute,
            minute: i64::MIN,
            admitted: 0,
            refused_this_minute: 0,
            refused: 0,
        }
    }

    /// One more ban at `now` (µs)?
    pub fn admit(&mut self, now: i64) -> Admit {
        let minute = now.div_euclid(MINUTE) * MINUTE;
        if minute != self.minute {
            self.minute = minute;
            self.admitted = 0;
            self.refused_this_minute = 0;
        }
        if self.admitted < self.max_per_minute {
            self.admitted += 1;
            return Admit::Yes;
        }
        self.refused_this_minute += 1;
        self.refused += 1;
        Admit::No {
            first: self.refused_this_minute == 1,
            minute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_within_a_minute_and_reopens_the_next() {
        let mut b = Breaker::new(3);
        let t0 = 5 * MINUTE + 1;
        let said: Vec<Admit> = (0..5).map(|i| b.admit(t0 + i)).collect();
        assert_eq!(&said[..3], &[Admit::Yes, Admit::Yes, Admit::Yes]);
        assert_eq!(
            said[3],
            Admit::No {
                first: true,
                minute: 5 * MINUTE
            }
        );
        assert_eq!(
            said[4],
            Admit::No {
                first: false,
                minute: 5 * MINUTE
            }
        );
        assert_eq!(b.admit(6 * MINUTE), Admit::Yes);
        assert_eq!(b.refused, 2);
    }
}
