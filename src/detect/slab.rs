//! A compact keyed store: per-key states in a slab, found through a seeded hash index, and kept
//! in least-recently-touched order so the oldest keys can be expired or evicted in O(1).
//!
//! Keys are attacker-controlled (source IPs, user names), so the index hashes them with a
//! randomly seeded hasher. Nothing here ever iterates the hash index: every order that can reach
//! the output (eviction, expiry) comes from the intrusive touch list, which follows processing
//! order and is therefore deterministic.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::SeedableRandomState;
use hashbrown::HashTable;

use super::snapshot::{SnapshotError, invalid};

/// "No slot" in the intrusive list.
const NIL: u32 = u32::MAX;

struct Slot<K, V> {
    /// `None` while the slot sits on the free list.
    entry: Option<(K, V)>,
    prev: u32,
    next: u32,
}

/// The seeded hasher shared by all keyed stores of a detector.
pub(crate) fn seeded_hasher() -> SeedableRandomState {
    // A failing OS random source must not stop detection; foldhash's own global seed is random
    // too, so the per-store seed only adds to it.
    let seed = getrandom::u64().unwrap_or(0x5ec9_1e5e_ed00_0001);
    SeedableRandomState::with_seed(seed, foldhash::SharedSeed::global_random())
}

/// Keyed states with a touch-ordered list (oldest first).
pub(crate) struct KeyedSlab<K, V> {
    index: HashTable<u32>,
    slots: Vec<Slot<K, V>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    len: usize,
    hasher: SeedableRandomState,
}

impl<K: Hash + Eq, V> KeyedSlab<K, V> {
    pub(crate) fn new(hasher: SeedableRandomState) -> Self {
        KeyedSlab {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            hasher,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The hash of a lookup value; it must hash exactly as the stored key it stands for.
    pub(crate) fn hash_of<Q: Hash + ?Sized>(&self, lookup: &Q) -> u64 {
        self.hasher.hash_one(lookup)
    }

    /// The slot of the key with `hash` for which `is_key` holds.
    pub(crate) fn find_by(&self, hash: u64, is_key: impl Fn(&K) -> bool) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&id| {
                slots[id as usize]
                    .entry
                    .as_ref()
                    .is_some_and(|(k, _)| is_key(k))
            })
            .copied()
    }

    /// The slot of `key`, if present.
    #[cfg(test)]
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        self.find_by(self.hash(key), |k| k == key)
    }

    /// Insert a key that is not present; returns its slot. The new key is the newest.
    pub(crate) fn insert(&mut self, key: K, value: V) -> u32 {
        let hash = self.hash(&key);
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize].entry = Some((key, value));
                id
            }
            None => {
                let id = self.slots.len() as u32;
                self.slots.push(Slot {
                    entry: Some((key, value)),
                    prev: NIL,
                    next: NIL,
                });
                id
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, id, |&other| {
            slots[other as usize]
                .entry
                .as_ref()
                .map_or(0, |(k, _)| hasher.hash_one(k))
        });
        self.link_tail(id);
        self.len += 1;
        id
    }

    /// Remove the key in `id` and return its value.
    pub(crate) fn remove(&mut self, id: u32) -> Option<(K, V)> {
        let (key, value) = self.slots.get_mut(id as usize)?.entry.take()?;
        let hash = self.hash(&key);
        if let Ok(found) = self.index.find_entry(hash, |&other| other == id) {
            found.remove();
        }
        self.unlink(id);
        self.free.push(id);
        self.len -= 1;
        // A flood that has passed should give its memory back, not keep a huge empty slab.
        if self.len == 0 {
            self.slots = Vec::new();
            self.free = Vec::new();
            self.index = HashTable::new();
        }
        Some((key, value))
    }

    /// Visit every entry, in no particular order: for bookkeeping that reaches no output.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for (key, value) in self.slots.iter().filter_map(|slot| slot.entry.as_ref()) {
            f(key, value);
        }
    }

    /// Visit every entry mutably, in no particular order.
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(&K, &mut V)) {
        for (key, value) in self.slots.iter_mut().filter_map(|slot| slot.entry.as_mut()) {
            f(key, value);
        }
    }

    /// Mark `id` as the most recently touched key.
    pub(crate) fn touch(&mut self, id: u32) {
        if self.tail != id {
            self.unlink(id);
            self.link_tail(id);
        }
    }

    /// The least recently touched key.
    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    pub(crate) fn get(&self, id: u32) -> Option<(&K, &V)> {
        self.slots
            .get(id as usize)?
            .entry
            .as_ref()
            .map(|(k, v)| (k, v))
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<(&K, &mut V)> {
        self.slots
            .get_mut(id as usize)?
            .entry
            .as_mut()
            .map(|(k, v)| (&*k, v))
    }

    fn link_tail(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        slot.prev = self.tail;
        slot.next = NIL;
        if self.tail != NIL {
            self.slots[self.tail as usize].next = id;
        } else {
            self.head = id;
        }
        self.tail = id;
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next) = {
            let slot = &self.slots[id as usize];
            (slot.prev, slot.next)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        let slot = &mut self.slots[id as usize];
        slot.prev = NIL;
        slot.next = NIL;
    }
}

/// A keyed store as a snapshot holds it (see `detect::snapshot`): live entries with their
/// slot, least recently touched first, and the free slots in the order they are reused. No
/// hash index: it is rebuilt with the restoring process's seed.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SlabSnap<K, V> {
    entries: Vec<(u32, K, V)>,
    free: Vec<u32>,
}

impl<K: Hash + Eq, V> KeyedSlab<K, V> {
    /// The store as a snapshot holds it, each key and value written by `key` and `value`.
    pub(crate) fn snapshot<KS, VS>(
        &self,
        mut key: impl FnMut(&K) -> KS,
        mut value: impl FnMut(&V) -> VS,
    ) -> SlabSnap<KS, VS> {
        let mut entries = Vec::with_capacity(self.len);
        let mut id = self.head;
        while id != NIL {
            let Some(slot) = self.slots.get(id as usize) else {
                break;
            };
            if let Some((k, v)) = &slot.entry {
                entries.push((id, key(k), value(v)));
            }
            id = slot.next;
        }
        SlabSnap {
            entries,
            free: self.free.clone(),
        }
    }

    /// The store a snapshot holds, in the same slots and touch order, indexed with `hasher`.
    /// Every slot must be either live or free, exactly once, and no key may repeat.
    pub(crate) fn restore<KS, VS>(
        snap: SlabSnap<KS, VS>,
        hasher: SeedableRandomState,
        mut key: impl FnMut(KS) -> Result<K, SnapshotError>,
        mut value: impl FnMut(VS) -> Result<V, SnapshotError>,
    ) -> Result<Self, SnapshotError> {
        let mut slab = KeyedSlab::new(hasher);
        // Both lists come from the snapshot's own bytes: this allocation is paid for by them.
        let bound = snap.entries.len() + snap.free.len();
        if bound > NIL as usize {
            return Err(invalid("more slots than a store can number"));
        }
        let mut taken = vec![false; bound];
        let mut take = |id: u32| -> Result<(), SnapshotError> {
            match taken.get_mut(id as usize) {
                Some(t) if !*t => {
                    *t = true;
                    Ok(())
                }
                _ => Err(invalid(format!("slot {id} out of range or repeated"))),
            }
        };
        for &id in &snap.free {
            take(id)?;
        }
        for (id, _, _) in &snap.entries {
            take(*id)?;
        }
        slab.slots = (0..bound)
            .map(|_| Slot {
                entry: None,
                prev: NIL,
                next: NIL,
            })
            .collect();
        slab.free = snap.free;
        for (id, k, v) in snap.entries {
            let k = key(k)?;
            let hash = slab.hash(&k);
            if slab.find_by(hash, |other| *other == k).is_some() {
                return Err(invalid("a key is stored twice"));
            }
            slab.slots[id as usize].entry = Some((k, value(v)?));
            let (slots, hasher) = (&slab.slots, &slab.hasher);
            slab.index.insert_unique(hash, id, |&other| {
                slots[other as usize]
                    .entry
                    .as_ref()
                    .map_or(0, |(k, _)| hasher.hash_one(k))
            });
            slab.link_tail(id);
            slab.len += 1;
        }
        if slab.len == 0 {
            // As `remove` leaves an emptied store: no slots at all.
            slab.slots = Vec::new();
            slab.free = Vec::new();
        }
        Ok(slab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_order_expiry_and_reuse() {
        let mut slab: KeyedSlab<u32, &str> = KeyedSlab::new(seeded_hasher());
        let a = slab.insert(1, "a");
        let b = slab.insert(2, "b");
        let c = slab.insert(3, "c");
        assert_eq!(slab.oldest(), Some(a));
        slab.touch(a);
        assert_eq!(slab.oldest(), Some(b));
        assert_eq!(slab.remove(b), Some((2, "b")));
        assert_eq!(slab.find(&2), None);
        assert_eq!(slab.oldest(), Some(c));
        let d = slab.insert(4, "d");
        assert_eq!(d, b, "freed slots are reused");
        assert_eq!(slab.find(&4), Some(d));
        assert_eq!(slab.find(&1), Some(a));
        assert_eq!(slab.len(), 3);
    }

    #[test]
    fn a_restored_store_keeps_slots_order_and_free_list() {
        let mut slab: KeyedSlab<u32, u32> = KeyedSlab::new(seeded_hasher());
        for k in 0..6 {
            slab.insert(k, k * 10);
        }
        slab.touch(1);
        let freed = slab.find(&3).unwrap();
        slab.remove(freed);
        let snap = slab.snapshot(|k| *k, |v| *v);
        let mut back: KeyedSlab<u32, u32> =
            KeyedSlab::restore(snap, seeded_hasher(), Ok, Ok).unwrap();
        assert_eq!(back.len(), 5);
        for k in [0, 1, 2, 4, 5] {
            assert_eq!(back.find(&k), slab.find(&k), "key {k} keeps its slot");
        }
        let order = |s: &mut KeyedSlab<u32, u32>| {
            let mut keys = Vec::new();
            while let Some(id) = s.oldest() {
                keys.push(s.remove(id).unwrap().0);
            }
            keys
        };
        assert_eq!(back.insert(9, 90), freed, "the freed slot is reused first");
        slab.insert(9, 90);
        assert_eq!(order(&mut back), order(&mut slab));
    }

    #[test]
    fn a_hostile_store_is_refused() {
        let snap = |entries: Vec<(u32, u32, u32)>, free: Vec<u32>| SlabSnap { entries, free };
        let restore = |s| KeyedSlab::<u32, u32>::restore(s, seeded_hasher(), Ok, Ok).is_err();
        assert!(restore(snap(vec![(5, 1, 1)], vec![])), "slot out of range");
        assert!(
            restore(snap(vec![(0, 1, 1), (0, 2, 2)], vec![])),
            "slot twice"
        );
        assert!(restore(snap(vec![(0, 1, 1)], vec![0])), "live and free");
        assert!(
            restore(snap(vec![(0, 1, 1), (1, 1, 2)], vec![])),
            "key twice"
        );
        assert!(!restore(snap(vec![(1, 1, 1)], vec![0])));
    }
}
