//! The greedy search: count every candidate body's uses in one hash map, pick the body that
//! saves the most description length, rewrite it, and update the counts of the routines that
//! changed.
//!
//! The counts are exact after every round: a routine's contribution to every candidate is
//! subtracted before it is rewritten and added back afterwards, and a candidate's uses inside a
//! routine are counted as the rewrite makes them (non-overlapping, left to right). A max-heap
//! keyed by gain finds the best candidate; entries whose candidate changed since they were pushed
//! are skipped when they surface.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::corpus::{Corpus, Use};
use super::token::{Costs, MAX_BODIES, Tok};

/// A body chosen by the search, with what it saved when it was chosen.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub body: Vec<Tok>,
    pub saved: f64,
    pub uses: Vec<Use>,
}

/// Gains at or below this are not worth a body (rounding, not compression).
const MIN_GAIN: f64 = 1e-9;

/// Runs the search on `corpus` (rewritten in place) and returns the bodies in the order found.
pub(super) fn search(corpus: &mut Corpus, costs: &Costs, holes: bool) -> Vec<Found> {
    let mut counts = Counts::default();
    let mut scratch = Vec::new();
    let all: Vec<usize> = (0..corpus.routines.len()).collect();
    counts.add_routines(corpus, &all, 1, holes, &mut scratch);
    let mut heap = BinaryHeap::new();
    counts.push_dirty(costs, &mut heap);
    let mut found = Vec::new();
    while found.len() < MAX_BODIES {
        let Some(best) = pop_best(&mut heap, &counts, costs) else {
            break;
        };
        counts.entries[best].chosen = true;
        let body = counts.entries[best].key.to_vec();
        let saved = counts.gain(best, costs);
        let counted = counts.entries[best].uses + counts.entries[best].whole;
        let affected = corpus.affected(&body);
        counts.add_routines(corpus, &affected, -1, holes, &mut scratch);
        let uses = corpus.rewrite(&body, found.len());
        debug_assert_eq!(
            uses.len() as i64,
            counted,
            "the rewrite makes the uses the counts saw"
        );
        counts.add_routines(corpus, &affected, 1, holes, &mut scratch);
        counts.push_dirty(costs, &mut heap);
        found.push(Found { body, saved, uses });
    }
    found
}

/// The candidate with the highest current gain, if any gains more than [`MIN_GAIN`].
fn pop_best(heap: &mut BinaryHeap<Ranked>, counts: &Counts, costs: &Costs) -> Option<usize> {
    while let Some(top) = heap.pop() {
        let entry = &counts.entries[top.id];
        if !entry.chosen && counts.gain(top.id, costs).to_bits() == top.gain.to_bits() {
            return Some(top.id);
        }
    }
    None
}

/// A heap entry: higher gain first, then the candidate seen first.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    gain: f64,
    id: usize,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Ranked) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Ranked) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Ranked) -> Ordering {
        self.gain
            .total_cmp(&other.gain)
            .then_with(|| other.id.cmp(&self.id))
    }
}

/// One candidate body and its uses in the current corpus.
#[derive(Debug)]
struct Entry {
    key: Box<[Tok]>,
    /// Uses inside routines (or covering main, or with a hole).
    uses: i64,
    /// Uses that are a whole subroutine (bodies without a hole only).
    whole: i64,
    /// The routine pass that last counted this candidate, and where its last use there ended.
    stamp: u64,
    next_free: usize,
    chosen: bool,
    dirty: bool,
}

#[derive(Debug, Default)]
struct Counts {
    ids: HashMap<Box<[Tok]>, usize, BuildHasherDefault<MixHasher>>,
    entries: Vec<Entry>,
    stamp: u64,
    /// Candidates whose counts changed since the heap last saw them.
    dirty: Vec<usize>,
}

impl Counts {
    /// Adds (`sign` 1) or removes (`sign` −1) the uses in the routines `which` of `corpus`.
    /// Routines alike (the same tokens, both main or both subroutines) are counted once with
    /// their number as weight; many participants write the same routine. Groups keep the order
    /// of their first routine, so candidates are first seen in corpus order.
    fn add_routines(
        &mut self,
        corpus: &Corpus,
        which: &[usize],
        sign: i64,
        holes: bool,
        scratch: &mut Vec<Tok>,
    ) {
        let mut group_of: HashMap<(&[Tok], bool), usize, BuildHasherDefault<MixHasher>> =
            HashMap::default();
        let mut groups: Vec<(&[Tok], bool, i64)> = Vec::new();
        for &r in which {
            let routine = &corpus.routines[r];
            let key = (routine.tokens.as_slice(), routine.slot > 0);
            match group_of.get(&key) {
                Some(&g) => groups[g].2 += 1,
                None => {
                    group_of.insert(key, groups.len());
                    groups.push((key.0, key.1, 1));
                }
            }
        }
        for (tokens, subroutine, weight) in groups {
            self.add(tokens, subroutine, sign * weight, holes, scratch);
        }
    }

    /// Adds `sign` times one routine's uses of every candidate: each run of two or more tokens,
    /// and with `holes` each run of three or more with one inner atom replaced by the hole.
    fn add(
        &mut self,
        tokens: &[Tok],
        subroutine: bool,
        sign: i64,
        holes: bool,
        scratch: &mut Vec<Tok>,
    ) {
        self.stamp += 1;
        let n = tokens.len();
        for start in 0..n {
            for end in start + 2..=n {
                let run = &tokens[start..end];
                let whole = subroutine && start == 0 && end == n;
                self.count(run, start, end, whole, sign);
                if holes && run.len() >= 3 {
                    for hole in 1..run.len() - 1 {
                        if !run[hole].is_atom() {
                            continue;
                        }
                        scratch.clear();
                        scratch.extend_from_slice(run);
                        scratch[hole] = Tok::HOLE;
                        self.count(scratch, start, end, false, sign);
                    }
                }
            }
        }
    }

    fn count(&mut self, key: &[Tok], start: usize, end: usize, whole: bool, sign: i64) {
        let id = match self.ids.get(key) {
            Some(&id) => id,
            None => {
                let id = self.entries.len();
                self.entries.push(Entry {
                    key: key.into(),
                    uses: 0,
                    whole: 0,
                    stamp: 0,
                    next_free: 0,
                    chosen: false,
                    dirty: false,
                });
                self.ids.insert(key.into(), id);
                id
            }
        };
        let entry = &mut self.entries[id];
        if entry.stamp != self.stamp {
            entry.stamp = self.stamp;
            entry.next_free = 0;
        }
        if start < entry.next_free {
            return;
        }
        entry.next_free = end;
        if whole {
            entry.whole += sign;
        } else {
            entry.uses += sign;
        }
        if !entry.dirty {
            entry.dirty = true;
            self.dirty.push(id);
        }
    }

    /// The description length that introducing candidate `id` would save now: its uses' savings
    /// less the body's own cost in the library.
    fn gain(&self, id: usize, costs: &Costs) -> f64 {
        let entry = &self.entries[id];
        let key = &entry.key;
        let whole = if entry.whole > 0 {
            entry.whole as f64 * costs.routine(key)
        } else {
            0.0
        };
        entry.uses as f64 * costs.per_use(key) + whole - costs.routine(key)
    }

    /// Puts the candidates whose counts changed back on the heap, those that would pay.
    fn push_dirty(&mut self, costs: &Costs, heap: &mut BinaryHeap<Ranked>) {
        for id in std::mem::take(&mut self.dirty) {
            self.entries[id].dirty = false;
            let entry = &self.entries[id];
            // A body used once never pays: the library holds it and the use still calls it.
            if entry.chosen || entry.uses + entry.whole < 2 {
                continue;
            }
            let gain = self.gain(id, costs);
            if gain > MIN_GAIN {
                heap.push(Ranked { gain, id });
            }
        }
    }
}

/// A fast multiplicative hasher for token slices (keys are not attacker-chosen in a way that
/// matters: a slow search on crafted input is the worst case).
#[derive(Debug, Default, Clone, Copy)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
