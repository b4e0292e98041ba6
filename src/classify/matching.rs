//! Matching a message against an app group's patterns and filling the event from the one that
//! matched; allocation-free per line (per-thread scratch slots and one-pass cache).

use std::cell::RefCell;

use regex_automata::dfa::onepass;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input};

use super::grammar::{Field, is_client_text};
use super::{AMBIGUOUS_ADDRESS, AppGroup, Classifier, PatternId, PatternInfo, ambiguity};
use crate::event::Event;

/// Per-thread matching state, reused across lines so that matching allocates nothing.
pub(super) struct Scratch {
    /// Capture slots of the pattern being tried.
    pub(super) slots: Vec<Option<NonMaxUsize>>,
    /// One one-pass cache, reset for the DFA at hand (a reset only resizes it).
    pub(super) onepass: Option<onepass::Cache>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { slots: Vec::new(), onepass: None })
    };
}

impl Classifier {
    /// Find the pattern of `group` that matches `message` and fill the event from it.
    // Runs on every line; its caller (`match_message`, route.rs) lives in another file since
    // the split, so inlining is asked for rather than left to the compiler's unit boundaries.
    #[inline]
    pub(super) fn match_group(
        &self,
        group: &AppGroup,
        message: &str,
        ev: &mut Event,
    ) -> Option<PatternId> {
        SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            let id = match (&group.by_first_byte, message.as_bytes().first()) {
                (Some(table), Some(&first)) => {
                    let candidates = table.get(usize::from(first))?;
                    self.first_anchored_match(group, candidates, message, scratch)?
                }
                _ => self.group_search(group, message, scratch)?,
            };
            let slots = &scratch.slots;
            let info = self.patterns.get(id)?;
            ev.kind = info.kind;
            ev.attempt = info.attempt;
            ev.reason.clone_from(&info.reason);
            if info.user.is_some() {
                ev.user.clone_from(&info.user);
            }
            let mut address = None;
            for &(slot, field) in &info.captures {
                let (Some(Some(start)), Some(Some(end))) = (slots.get(slot), slots.get(slot + 1))
                else {
                    continue;
                };
                if let Some(text) = message.get(start.get()..end.get()) {
                    field.set_captured(ev, text);
                    if field == Field::SrcIp {
                        address = Some(start.get()..end.get());
                    }
                }
            }
            if let (false, Some(address), Some(_)) = (info.pinned_address, address, ev.src_ip) {
                // A fixed array: this runs on every line that names an address.
                let mut attacker: [std::ops::Range<usize>; 4] = Default::default();
                let mut n = 0;
                for &(slot, field) in &info.captures {
                    if let (true, Some(Some(start)), Some(Some(end))) =
                        (is_client_text(field), slots.get(slot), slots.get(slot + 1))
                        && let Some(r) = attacker.get_mut(n)
                    {
                        *r = start.get()..end.get();
                        n += 1;
                    }
                }
                if ambiguity::is_ambiguous(message, address, attacker.get(..n).unwrap_or(&[])) {
                    ev.src_ip = None;
                    ev.reason = Some(AMBIGUOUS_ADDRESS.into());
                }
            }
            Some(id)
        })
    }

    /// All patterns anchored at the start: try the candidates for the message's first byte in
    /// priority order, each alone. That is exactly the leftmost-first answer of the group
    /// regex (every match starts at 0, so priority decides), and a candidate that does not
    /// match usually fails within a few bytes, so this costs about one capture pass per line
    /// instead of a group scan plus a capture pass.
    pub(super) fn first_anchored_match(
        &self,
        group: &AppGroup,
        candidates: &[usize],
        message: &str,
        scratch: &mut Scratch,
    ) -> Option<PatternId> {
        let input = Input::new(message).anchored(Anchored::Yes);
        candidates.iter().find_map(|&local| {
            let id = *group.ids.get(local)?;
            let info = self.patterns.get(id)?;
            info.resolve(&input, scratch).then_some(id)
        })
    }

    /// General case (some pattern not anchored at the start): one multi-pattern search, then
    /// captures for the pattern that matched, on its span.
    pub(super) fn group_search(
        &self,
        group: &AppGroup,
        message: &str,
        scratch: &mut Scratch,
    ) -> Option<PatternId> {
        let found = group.regex.search(&Input::new(message))?;
        let id = *group.ids.get(found.pattern().as_usize())?;
        let info = self.patterns.get(id)?;
        // Same leftmost-first semantics, so the pattern matches the same span again.
        let span = Input::new(message)
            .range(found.range())
            .anchored(Anchored::Yes);
        info.resolve(&span, scratch);
        Some(id)
    }
}

impl PatternInfo {
    /// Run this pattern alone on an anchored `input`, filling `slots`; true when it matched.
    fn resolve(&self, input: &Input<'_>, scratch: &mut Scratch) -> bool {
        let slots = &mut scratch.slots;
        slots.clear();
        slots.resize(self.slot_len, None);
        match &self.onepass {
            Some(dfa) => {
                let cache = scratch.onepass.get_or_insert_with(|| dfa.create_cache());
                cache.reset(dfa);
                // An anchored one-pass search cannot fail; if it ever did, it counts as no
                // match.
                matches!(dfa.try_search_slots(cache, input, slots), Ok(Some(_)))
            }
            None => {
                let span = input
                    .haystack()
                    .get(input.start()..input.end())
                    .unwrap_or_default();
                self.required.iter().all(|f| f.find(span).is_some())
                    && self.regex.search_slots(input, slots).is_some()
            }
        }
    }
}
