//! Input names interned to small numbers, so held evidence stores a number, not a pointer.

use std::sync::Arc;

use foldhash::fast::SeedableRandomState;

use super::snapshot::{Names, SnapshotError, invalid};

/// Interned input names, so evidence holds a small number instead of a shared pointer.
///
/// Ids are handed out in processing order, so they are deterministic; the map is only looked
/// into, never iterated. A syslog listener makes one input per connection, so names that no
/// held evidence refers to any more are swept out (see [`Sources::wants_sweep`]); their ids are
/// reused.
pub(crate) struct Sources {
    names: Vec<Option<Arc<str>>>,
    ids: hashbrown::HashMap<Arc<str>, u32, SeedableRandomState>,
    free: Vec<u32>,
    last: Option<(Arc<str>, u32)>,
    /// Names held after the last sweep.
    kept_at_sweep: usize,
}

/// Names interned before the first sweep is considered.
const SWEEP_AFTER: usize = 4096;

impl Sources {
    pub(crate) fn new(hasher: SeedableRandomState) -> Self {
        Sources {
            names: Vec::new(),
            ids: hashbrown::HashMap::with_hasher(hasher),
            free: Vec::new(),
            last: None,
            kept_at_sweep: 0,
        }
    }

    pub(crate) fn intern(&mut self, source: &Arc<str>) -> u32 {
        if let Some((name, id)) = &self.last
            && (Arc::ptr_eq(name, source) || **name == **source)
        {
            return *id;
        }
        let id = match self.ids.get(source) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => {
                        self.names[id as usize] = Some(source.clone());
                        id
                    }
                    None => {
                        self.names.push(Some(source.clone()));
                        (self.names.len() - 1) as u32
                    }
                };
                self.ids.insert(source.clone(), id);
                id
            }
        };
        self.last = Some((source.clone(), id));
        id
    }

    pub(super) fn name(&self, id: u32) -> Arc<str> {
        self.names
            .get(id as usize)
            .and_then(Clone::clone)
            .unwrap_or_else(|| Arc::from("?"))
    }

    /// Names held.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Time to sweep: twice as many names as the last sweep kept (and at least
    /// [`SWEEP_AFTER`]), so sweeping costs O(1) per interned name, amortized.
    pub(crate) fn wants_sweep(&self) -> bool {
        self.ids.len() >= SWEEP_AFTER.max(self.kept_at_sweep.saturating_mul(2))
    }

    /// Forget every name whose id `in_use` does not mark (the most recent name is kept).
    pub(crate) fn sweep(&mut self, in_use: &[bool]) {
        let last = self.last.as_ref().map(|(_, id)| *id);
        for (id, slot) in self.names.iter_mut().enumerate() {
            let id = id as u32;
            if in_use.get(id as usize).copied().unwrap_or(false) || Some(id) == last {
                continue;
            }
            if let Some(name) = slot.take() {
                self.ids.remove(&name);
                self.free.push(id);
            }
        }
        self.kept_at_sweep = self.ids.len();
        if self.ids.len() < self.ids.capacity() / 4 {
            self.ids.shrink_to_fit();
        }
    }

    /// Slots of ids handed out so far (the size of an `in_use` mark).
    pub(crate) fn id_bound(&self) -> usize {
        self.names.len()
    }
}

/// Interned names as a snapshot holds them: by id (evidence refers to ids), the free ids in
/// reuse order, and the id of the name interned last.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SourcesSnap {
    names: Vec<Option<String>>,
    free: Vec<u32>,
    last: Option<u32>,
    kept_at_sweep: usize,
}

impl Sources {
    pub(crate) fn snapshot(&self) -> SourcesSnap {
        SourcesSnap {
            names: self
                .names
                .iter()
                .map(|n| n.as_deref().map(str::to_string))
                .collect(),
            free: self.free.clone(),
            last: self.last.as_ref().map(|(_, id)| *id),
            kept_at_sweep: self.kept_at_sweep,
        }
    }

    /// The names a snapshot holds, indexed with `hasher`. Every empty id must be free exactly
    /// once, and no name may repeat.
    pub(crate) fn restore(
        snap: SourcesSnap,
        hasher: SeedableRandomState,
        shared: &mut Names,
    ) -> Result<Sources, SnapshotError> {
        let mut sources = Sources::new(hasher);
        if snap.names.len() > u32::MAX as usize {
            return Err(invalid("more input names than ids"));
        }
        let mut freed = vec![false; snap.names.len()];
        for &id in &snap.free {
            match (freed.get_mut(id as usize), snap.names.get(id as usize)) {
                (Some(f), Some(None)) if !*f => *f = true,
                _ => return Err(invalid(format!("free input name id {id}"))),
            }
        }
        for (id, name) in snap.names.into_iter().enumerate() {
            let name = match name {
                Some(name) => Some(shared.get(name)),
                None if freed[id] => None,
                None => return Err(invalid(format!("input name id {id} neither used nor free"))),
            };
            if let Some(name) = &name
                && sources.ids.insert(name.clone(), id as u32).is_some()
            {
                return Err(invalid("an input name is stored twice"));
            }
            sources.names.push(name);
        }
        sources.free = snap.free;
        sources.last = match snap.last {
            None => None,
            Some(id) => match sources.names.get(id as usize) {
                Some(Some(name)) => Some((name.clone(), id)),
                _ => return Err(invalid(format!("last input name id {id}"))),
            },
        };
        sources.kept_at_sweep = snap.kept_at_sweep;
        Ok(sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swept_names_give_their_ids_back() {
        let mut sources = Sources::new(super::super::slab::seeded_hasher());
        let a = sources.intern(&Arc::from("a"));
        let b = sources.intern(&Arc::from("b"));
        assert_ne!(a, b);
        // Only `a` is referenced; `b` is the most recent name and is kept all the same.
        let c = sources.intern(&Arc::from("c"));
        let mut in_use = vec![false; sources.id_bound()];
        in_use[a as usize] = true;
        sources.sweep(&in_use);
        assert_eq!(sources.len(), 2, "b swept, a in use, c most recent");
        assert_eq!(&*sources.name(a), "a");
        assert_eq!(&*sources.name(b), "?");
        assert_eq!(sources.intern(&Arc::from("d")), b, "b's id is reused");
        assert_eq!(sources.intern(&Arc::from("c")), c);
    }
}
