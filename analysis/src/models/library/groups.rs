//! The candidates of a task grouped by the library model's statistic (docs/modelling.md §4.5,
//! "The library model"): (StatKey, L = its number of called leaf bodies, T = the multiset of
//! its leaf bodies that lie in S, the leaf bodies of the observed programs), with counts.
//!
//! A body repeated within one program (possible in a participant's program, never in an
//! enumerated one, whose leaf bodies are distinct candidate substrings) is told apart by its copy
//! number: T holds elements (body, copy), so a multiset of bodies is a set of elements and
//! inclusion-exclusion over sets handles multiplicity exactly.

use std::collections::HashMap;

use dsl::{Program, Task};

use crate::enumerate::{fold_candidate_bytes, key_of_packed, normal_bytes, readable_bytes};
use crate::error::AnalysisError;
use crate::key::{MAX_SLOTS, StatKey};

/// Copies of one body an element id can tell apart (more than the subroutine slots).
pub(super) const COPIES: u32 = 16;

/// The leaf bodies of compact bytes in normal form: called subroutine bodies (every subroutine
/// of the normal form is reached) that are non-empty and contain no call.
pub(super) fn leaf_slices(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| b == b'|')
        .skip(1)
        .filter(|body| !body.is_empty() && !body.iter().any(u8::is_ascii_digit))
}

/// The leaf bodies of `program` in its normal form, in the published letters, in slot order.
/// Empty when the program cannot be put in normal form.
pub fn leaf_bodies(program: &Program) -> Vec<String> {
    normal_bytes(program)
        .map(|bytes| leaf_slices(&bytes).map(readable_bytes).collect())
        .unwrap_or_default()
}

/// S: every leaf body of an observed program, numbered.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct BodyIndex {
    ids: HashMap<Vec<u8>, u32>,
    /// |b| of each body.
    pub(super) lengths: Vec<u32>,
}

impl BodyIndex {
    /// The id of `body`, numbering it if it is new.
    pub(super) fn insert(&mut self, body: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(body) {
            return id;
        }
        let id = self.lengths.len() as u32;
        self.ids.insert(body.to_vec(), id);
        self.lengths.push(body.len() as u32);
        id
    }

    pub(super) fn get(&self, body: &[u8]) -> Option<u32> {
        self.ids.get(body).copied()
    }

    pub(super) fn len(&self) -> usize {
        self.lengths.len()
    }
}

/// T: a sorted set of elements body · [`COPIES`] + copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(super) struct Leaves {
    len: u8,
    items: [u32; MAX_SLOTS],
}

impl Leaves {
    /// The elements of the body ids `bodies` (any order, repeats allowed; at most
    /// [`MAX_SLOTS`] of them).
    pub(super) fn of_bodies(bodies: &mut [u32]) -> Leaves {
        bodies.sort_unstable();
        let mut leaves = Leaves::default();
        for (i, &body) in bodies.iter().enumerate().take(MAX_SLOTS) {
            let copy = bodies[..i].iter().rev().take_while(|&&b| b == body).count() as u32;
            leaves.items[i] = body * COPIES + copy.min(COPIES - 1);
            leaves.len += 1;
        }
        leaves
    }

    pub(super) fn elements(&self) -> &[u32] {
        &self.items[..self.len as usize]
    }
}

/// The body of an element.
pub(super) fn body_of(element: u32) -> u32 {
    element / COPIES
}

/// (L, T, the leaf bodies in S) of compact bytes in normal form.
pub(super) fn statistic(bytes: &[u8], index: &BodyIndex) -> (u8, Leaves) {
    let mut leaves = 0u8;
    let mut bodies = [0u32; MAX_SLOTS];
    let mut found = 0;
    for body in leaf_slices(bytes) {
        leaves += 1;
        if let Some(id) = index.get(body)
            && found < MAX_SLOTS
        {
            bodies[found] = id;
            found += 1;
        }
    }
    (leaves, Leaves::of_bodies(&mut bodies[..found]))
}

/// One group of candidates: those with this key, this L and this T.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Group {
    pub(super) key: StatKey,
    pub(super) leaves: u8,
    pub(super) set: Leaves,
    pub(super) count: f64,
}

/// A task's enumerated candidates grouped by (key, L, T).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct TaskGroups {
    pub(super) groups: Vec<Group>,
    /// Enumerated programs.
    pub(super) programs: u64,
}

type Counts = HashMap<(u64, u8, Leaves), u64>;

impl TaskGroups {
    /// Streams the enumeration of `task` once (in parallel) and groups its programs.
    pub(super) fn enumerate(task: &Task, index: &BodyIndex) -> Result<TaskGroups, AnalysisError> {
        let counts = fold_candidate_bytes(
            task,
            Counts::default,
            |counts, bytes, packed| {
                let (leaves, set) = statistic(bytes, index);
                debug_assert!(
                    set.elements().iter().all(|e| e % COPIES == 0),
                    "an enumerated program never repeats a leaf body"
                );
                *counts.entry((packed, leaves, set)).or_default() += 1;
            },
            |mut a, b| {
                for (group, count) in b {
                    *a.entry(group).or_default() += count;
                }
                a
            },
        )?;
        let programs = counts.values().sum();
        let mut groups: Vec<Group> = counts
            .into_iter()
            .map(|((packed, leaves, set), count)| Group {
                key: key_of_packed(packed),
                leaves,
                set,
                count: count as f64,
            })
            .collect();
        groups.sort_by_key(|g| (g.key, g.leaves, g.set));
        Ok(TaskGroups { groups, programs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_bodies_are_the_called_bodies_without_calls() {
        let bytes = b"12A1|AB|B2C|";
        let leaves: Vec<&[u8]> = leaf_slices(bytes).collect();
        assert_eq!(leaves, vec![b"AB".as_slice()]);
    }

    #[test]
    fn a_repeated_body_gets_a_second_copy_element() {
        let leaves = Leaves::of_bodies(&mut [3, 1, 3]);
        assert_eq!(leaves.elements(), &[COPIES, 3 * COPIES, 3 * COPIES + 1]);
        assert_eq!(body_of(3 * COPIES + 1), 3);
    }

    #[test]
    fn the_statistic_counts_leaf_bodies_outside_s_in_l_only() {
        let mut index = BodyIndex::default();
        let ab = index.insert(b"AB");
        let (l, set) = statistic(b"1A2|AB|CD", &index);
        assert_eq!(l, 2);
        assert_eq!(set.elements(), &[ab * COPIES]);
    }
}
