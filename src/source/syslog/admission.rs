//! Which TCP/TLS connections may stay open: the cap over all listeners, the cap per client
//! address, and evicting a quiet connection when a new one needs its slot.
//!
//! Without eviction, whoever opens the most connections first holds every slot: 1,024 idle
//! sockets (or unfinished TLS handshakes, or one byte a minute) locked real senders out for
//! the whole idle timeout (issue 10.6). Now, at the cap, the connection that has delivered no
//! complete message for longest is closed to make room, if it has been quiet for at least
//! `evict_quiet_after`; a connection that keeps delivering messages is never evicted. The per
//! address cap keeps one host from taking every slot in the first place (a spoofed source
//! cannot complete a TCP handshake, so the address of a connection is real).
//!
//! Every refusal and eviction is counted by the caller.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// Every slot is taken by connections that are delivering messages.
    Full,
    /// This client address already holds its share.
    AddressFull,
}

impl Refused {
    /// The `dropped` reason it is counted under.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Refused::Full => "connection_limit",
            Refused::AddressFull => "address_limit",
        }
    }
}

/// One open connection, as the table and the connection's task both see it.
pub(super) struct Slot {
    id: u64,
    address: IpAddr,
    /// When the connection last completed a message (or was accepted), ms since `epoch`.
    progress_ms: AtomicU64,
    evicted: AtomicBool,
    /// Wakes the connection's task when it is evicted.
    evict: Notify,
}

/// The admission table shared by all listeners of a run.
pub(super) struct Admission {
    max_connections: usize,
    max_per_address: usize,
    evict_quiet_after: Duration,
    epoch: tokio::time::Instant,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Slot>>,
    per_address: HashMap<IpAddr, usize>,
    /// Connections told to close that have not closed yet.
    evicting: usize,
}

/// A connection's place in the table; dropping it frees the place.
pub(super) struct Ticket {
    admission: Arc<Admission>,
    slot: Arc<Slot>,
}

impl Admission {
    pub(super) fn new(
        max_connections: usize,
        max_per_address: usize,
        evict_quiet_after: Duration,
    ) -> Admission {
        Admission {
            max_connections: max_connections.max(1),
            max_per_address: max_per_address.max(1),
            evict_quiet_after,
            epoch: tokio::time::Instant::now(),
            table: Mutex::new(Table::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Admit a connection from `address`, evicting the quietest connection if every slot is
    /// taken. `Ok(evicted)` says whether one was evicted for it.
    pub(super) fn admit(self: &Arc<Admission>, address: IpAddr) -> Result<(Ticket, bool), Refused> {
        let now = self.now_ms();
        // A poisoned lock means a panic elsewhere while holding it; the table is still
        // consistent (every update is a single step), so go on with it.
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.per_address.get(&address).copied().unwrap_or(0) >= self.max_per_address {
            return Err(Refused::AddressFull);
        }
        let mut evicted = false;
        if table.open.len() - table.evicting >= self.max_connections {
            let quiet_ms = u64::try_from(self.evict_quiet_after.as_millis()).unwrap_or(u64::MAX);
            let victim = table
                .open
                .values()
                .filter(|s| !s.evicted.load(Ordering::Relaxed))
                .min_by_key(|s| s.progress_ms.load(Ordering::Relaxed))
                .filter(|s| now.saturating_sub(s.progress_ms.load(Ordering::Relaxed)) >= quiet_ms)
                .cloned();
            let Some(victim) = victim else {
                return Err(Refused::Full);
            };
            victim.evicted.store(true, Ordering::Relaxed);
            // notify_one stores a permit, so the task sees it even if it is not waiting yet.
            victim.evict.notify_one();
            table.evicting += 1;
            evicted = true;
        }
        let id = table.next_id;
        table.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            address,
            progress_ms: AtomicU64::new(now),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        table.open.insert(id, slot.clone());
        *table.per_address.entry(address).or_insert(0) += 1;
        Ok((
            Ticket {
                admission: self.clone(),
                slot,
            },
            evicted,
        ))
    }
}

impl Ticket {
    /// The connection completed a message: it is not quiet.
    pub(super) fn progress(&self) {
        self.slot
            .progress_ms
            .store(self.admission.now_ms(), Ordering::Relaxed);
    }

    /// Resolves when this connection is evicted to make room for another.
    pub(super) async fn evicted(&self) {
        self.slot.evict.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self
            .admission
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if table.open.remove(&self.slot.id).is_some() && self.slot.evicted.load(Ordering::Relaxed) {
            table.evicting -= 1;
        }
        if let Some(n) = table.per_address.get_mut(&self.slot.address) {
            *n -= 1;
            if *n == 0 {
                table.per_address.remove(&self.slot.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test]
    async fn a_quiet_connection_makes_room_and_a_busy_one_does_not() {
        let quiet_after = Duration::from_secs(2);
        let admission = Arc::new(Admission::new(2, 10, quiet_after));
        let (quiet, _) = admission.admit(ip(1)).expect("first");
        let (busy, _) = admission.admit(ip(2)).expect("second");
        // Nobody has been quiet long enough yet: the newcomer is refused.
        assert_eq!(admission.admit(ip(3)).err(), Some(Refused::Full));
        tokio::time::sleep(quiet_after + Duration::from_millis(200)).await;
        busy.progress();
        let (_third, evicted) = admission.admit(ip(3)).expect("room made");
        assert!(evicted);
        // The quiet one was told; it is evicted, the busy one is not.
        tokio::time::timeout(Duration::from_secs(1), quiet.evicted())
            .await
            .expect("the quiet connection is evicted");
        assert!(!busy.slot.evicted.load(Ordering::Relaxed));
        // Until the evicted one has closed, nobody else is quiet enough: refused.
        assert_eq!(admission.admit(ip(4)).err(), Some(Refused::Full));
        drop(quiet);
        assert_eq!(admission.admit(ip(4)).err(), Some(Refused::Full));
    }

    #[tokio::test]
    async fn one_address_cannot_take_every_slot() {
        let admission = Arc::new(Admission::new(100, 2, Duration::from_secs(5)));
        let a = admission.admit(ip(1)).expect("one");
        let _b = admission.admit(ip(1)).expect("two");
        assert_eq!(admission.admit(ip(1)).err(), Some(Refused::AddressFull));
        assert!(
            admission.admit(ip(2)).is_ok(),
            "another address still gets in"
        );
        drop(a);
        assert!(
            admission.admit(ip(1)).is_ok(),
            "a closed connection frees its share"
        );
    }
}
