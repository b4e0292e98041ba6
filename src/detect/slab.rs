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
}
