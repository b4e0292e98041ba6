//! The ledger of acknowledgements waiting for their batches to be done with
//! ([`crate::frame::ack`]).
//!
//! Without an archive a batch is done once its events are with the sinks. With one, its
//! acknowledgement waits until the archive holds its rows durably (sealed, in the manifest
//! chain): acknowledged any earlier, a position would survive a SIGKILL that the unsealed rows
//! before it do not, and the restart would resume after lines the archive then discards. Held
//! back, the restart reads them again and archives them once.

use std::collections::VecDeque;

use crate::frame::Ack;
use crate::frame::ack::PositionKeeper;

/// Acknowledgements in batch order, and where the acknowledged positions are kept.
pub struct AckLedger {
    /// Each waiting acknowledgement with the archive row its batch ended before.
    held: VecDeque<(u64, Ack)>,
    keepers: Vec<Box<dyn PositionKeeper>>,
}

impl AckLedger {
    pub fn new(keepers: Vec<Box<dyn PositionKeeper>>) -> AckLedger {
        AckLedger {
            held: VecDeque::new(),
            keepers,
        }
    }

    /// A batch's events are with the sinks. `archived_before`: when archiving, the row number
    /// after the batch's last row (the acknowledgement waits for it to be durable); `None`
    /// acknowledges now.
    pub fn done(&mut self, ack: Option<Ack>, archived_before: Option<u64>) {
        match (ack, archived_before) {
            (Some(ack), Some(end)) => self.held.push_back((end, ack)),
            (Some(ack), None) => ack.acknowledge(),
            (None, _) => {}
        }
    }

    /// Acknowledge the batches whose rows are all below `durable_seq`, then save positions if
    /// a save is due.
    pub fn release(&mut self, durable_seq: u64) {
        while self
            .held
            .front()
            .is_some_and(|(end, _)| *end <= durable_seq)
        {
            if let Some((_, ack)) = self.held.pop_front() {
                ack.acknowledge();
            }
        }
        self.save_if_due();
    }

    /// Save acknowledged positions if a save is due (after each batch, and on idle).
    pub fn save_if_due(&mut self) {
        for keeper in &mut self.keepers {
            keeper.save_if_due();
        }
    }

    /// The run is over. `all_durable`: everything the archive took is sealed (or there is no
    /// archive), so every held acknowledgement may go; otherwise they are dropped, and a
    /// restart reads their lines again. Then the positions are saved for good.
    pub fn finish(mut self, all_durable: bool) -> Result<(), String> {
        if all_durable {
            self.release(u64::MAX);
        }
        let mut first_error = None;
        for keeper in &mut self.keepers {
            if let Err(e) = keeper.save() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::ack::Acknowledge;
    use std::sync::{Arc, Mutex};

    struct Record(Arc<Mutex<Vec<u64>>>, u64);

    impl Acknowledge for Record {
        fn acknowledge(self: Box<Self>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(self.1);
            }
        }
    }

    #[test]
    fn held_acknowledgements_wait_for_their_rows_to_be_durable_and_keep_their_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let ack = |n| Some(Ack::new(Record(seen.clone(), n)));
        let mut ledger = AckLedger::new(Vec::new());
        ledger.done(ack(1), Some(100));
        ledger.done(ack(2), Some(200));
        ledger.done(ack(3), Some(300));
        ledger.release(199);
        assert_eq!(*seen.lock().expect("lock"), vec![1]);
        ledger.release(300);
        assert_eq!(*seen.lock().expect("lock"), vec![1, 2, 3]);
        ledger.done(ack(4), None);
        assert_eq!(*seen.lock().expect("lock"), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_run_that_failed_to_seal_acknowledges_nothing_more() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut ledger = AckLedger::new(Vec::new());
        ledger.done(Some(Ack::new(Record(seen.clone(), 1))), Some(10));
        ledger.finish(false).expect("no keepers to fail");
        assert!(seen.lock().expect("lock").is_empty());
    }
}
