//! The library model's choice sets and observations in the form its likelihood evaluates
//! quickly (docs/modelling.md §4.5, "The library model"): per task, the candidate groups by
//! (key, L, T) arranged into cells, the distinct T, and the subsets A of each observation's
//! bodies D_i that occur in some T, with the T containing each A.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::key::StatKey;
use crate::models::gi::ln_factorial_sizes;

use super::cache::{Cache, Population};
use super::groups::{Group, Leaves, body_of};

/// The per-key quantities of the grammar-induction part of a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct KeyFeatures {
    pub(super) p: f64,
    pub(super) n: f64,
    pub(super) s: f64,
    pub(super) k: usize,
    pub(super) n_calls: usize,
    pub(super) ln_factorial_sizes: f64,
    /// Index of the key's (T − R, R) routine-length group.
    pub(super) length: usize,
}

/// Candidates sharing a T, a routine-length group and an L.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cell {
    pub(super) set: usize,
    pub(super) length: usize,
    pub(super) leaves: usize,
}

/// One body of an observation's D_i, or of its chosen program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ObservationBody {
    pub(super) body: u32,
    /// f_own(b) in the participant's cache before this task.
    pub(super) own_share: f64,
    /// f_i(b): the participant's own share in the population library, left out of their
    /// predictions.
    pub(super) own_library: f64,
}

/// One observation (i, t) with what its score and normaliser need.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ObservationModel {
    pub(super) participant: u32,
    /// Which shared terms the observation uses: 2k + v, with k = 1 for a contributor to the
    /// population library (whose own share is left out) and v = 1 for a non-empty cache
    /// (w_o' = w_o, else 0).
    pub(super) variant: usize,
    pub(super) key: KeyFeatures,
    pub(super) leaves: f64,
    /// D_i and the chosen program's bodies.
    pub(super) bodies: Vec<ObservationBody>,
    /// Positions in `bodies` of the chosen program's leaf bodies in S, one per occurrence.
    pub(super) chosen: Vec<usize>,
    /// The occurring subsets A of D_i: (subset index, positions in `bodies` of A's elements).
    pub(super) terms: Vec<(usize, Vec<usize>)>,
}

/// One task of a fit.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct TaskModel {
    pub(super) keys: Vec<KeyFeatures>,
    /// The statistics of each key of `keys`.
    pub(super) stat_keys: Vec<StatKey>,
    /// (T − R, R) of each routine-length group.
    pub(super) lengths: Vec<(f64, f64)>,
    pub(super) cells: Vec<Cell>,
    /// (key, cell, count) of every group.
    pub(super) entries: Vec<(usize, usize, f64)>,
    /// The distinct T, as elements.
    pub(super) sets: Vec<Vec<u32>>,
    /// For each needed subset A (index 0 is the empty set): the T that contain it.
    pub(super) subsets: Vec<Vec<usize>>,
    pub(super) observations: Vec<ObservationModel>,
    /// Which variants (see [`ObservationModel::variant`]) some observation uses.
    pub(super) variants: [bool; 4],
}

/// A chosen program, as the likelihood sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chosen<'a> {
    pub(super) participant: u32,
    pub(super) key: StatKey,
    pub(super) leaves: u8,
    pub(super) bodies: &'a [u32],
    pub(super) cache: Cache,
}

impl TaskModel {
    /// The task's model from its candidate groups and its observations, with the population
    /// library of the fit.
    pub(super) fn new(groups: &[Group], chosen: &[Chosen<'_>], population: &Population) -> Self {
        let mut task = TaskModel::default();
        let mut key_index: HashMap<StatKey, usize> = HashMap::new();
        let mut length_index: HashMap<(u32, u8), usize> = HashMap::new();
        let mut set_index: HashMap<Leaves, usize> = HashMap::new();
        let mut cell_index: HashMap<(usize, usize, usize), usize> = HashMap::new();
        let mut key_of = |task: &mut TaskModel, key: StatKey| -> usize {
            *key_index.entry(key).or_insert_with(|| {
                let length = *length_index
                    .entry((key.t() - u32::from(key.r), key.r))
                    .or_insert_with(|| {
                        task.lengths
                            .push((f64::from(key.t() - u32::from(key.r)), f64::from(key.r)));
                        task.lengths.len() - 1
                    });
                task.keys.push(key_features(&key, length));
                task.stat_keys.push(key);
                task.keys.len() - 1
            })
        };
        for group in groups {
            let key = key_of(&mut task, group.key);
            let set = *set_index.entry(group.set).or_insert_with(|| {
                task.sets.push(group.set.elements().to_vec());
                task.sets.len() - 1
            });
            let cell_key = (set, task.keys[key].length, usize::from(group.leaves));
            let cell = *cell_index.entry(cell_key).or_insert_with(|| {
                task.cells.push(Cell {
                    set,
                    length: cell_key.1,
                    leaves: cell_key.2,
                });
                task.cells.len() - 1
            });
            task.entries.push((key, cell, group.count));
        }
        // Subset 0 is the empty set, contained in every T.
        let mut subset_index: HashMap<Vec<u32>, usize> = HashMap::new();
        subset_index.insert(Vec::new(), 0);
        let mut needed_elements: HashSet<u32> = HashSet::new();
        for c in chosen {
            let observation = observation_model(&mut task, &mut key_of, c, population);
            let (observation, elements) = observation;
            let d: Vec<u32> = elements;
            let mut occurring: BTreeSet<Vec<u32>> = BTreeSet::new();
            for set in &task.sets {
                let inside: Vec<u32> = set.iter().copied().filter(|e| d.contains(e)).collect();
                for_each_subset(&inside, &mut |subset| {
                    occurring.insert(subset.to_vec());
                });
            }
            occurring.insert(Vec::new());
            let mut observation = observation;
            for subset in occurring {
                needed_elements.extend(subset.iter().copied());
                let positions = subset
                    .iter()
                    .filter_map(|&e| observation.bodies.iter().position(|b| b.body == body_of(e)))
                    .collect();
                let next = subset_index.len();
                let index = *subset_index.entry(subset).or_insert(next);
                observation.terms.push((index, positions));
            }
            task.variants[observation.variant] = true;
            task.observations.push(observation);
        }
        task.subsets = vec![Vec::new(); subset_index.len()];
        for (s, set) in task.sets.iter().enumerate() {
            let inside: Vec<u32> = set
                .iter()
                .copied()
                .filter(|e| needed_elements.contains(e))
                .collect();
            for_each_subset(&inside, &mut |subset| {
                if let Some(&index) = subset_index.get(subset) {
                    task.subsets[index].push(s);
                }
            });
        }
        task
    }
}

/// The observation's model and its D_i as elements of this task's T.
fn observation_model(
    task: &mut TaskModel,
    key_of: &mut impl FnMut(&mut TaskModel, StatKey) -> usize,
    chosen: &Chosen<'_>,
    population: &Population,
) -> (ObservationModel, Vec<u32>) {
    let key_index = key_of(task, chosen.key);
    let key = task.keys[key_index];
    let mut bodies: Vec<ObservationBody> = Vec::new();
    let position_of = |bodies: &mut Vec<ObservationBody>, body: u32| -> usize {
        if let Some(p) = bodies.iter().position(|b| b.body == body) {
            return p;
        }
        bodies.push(ObservationBody {
            body,
            own_share: chosen.cache.share(body),
            own_library: population.own_share(chosen.participant, body),
        });
        bodies.len() - 1
    };
    for (body, _) in chosen.cache.shares() {
        position_of(&mut bodies, body);
    }
    for body in population.own_bodies(chosen.participant) {
        position_of(&mut bodies, body);
    }
    let chosen_positions: Vec<usize> = chosen
        .bodies
        .iter()
        .map(|&b| position_of(&mut bodies, b))
        .collect();
    let d_bodies: HashSet<u32> = bodies
        .iter()
        .filter(|b| b.own_share > 0.0 || b.own_library > 0.0)
        .map(|b| b.body)
        .collect();
    let mut elements: Vec<u32> = task
        .sets
        .iter()
        .flatten()
        .copied()
        .filter(|&e| d_bodies.contains(&body_of(e)))
        .collect();
    elements.sort_unstable();
    elements.dedup();
    let model = ObservationModel {
        participant: chosen.participant,
        variant: 2 * usize::from(population.is_contributor(chosen.participant))
            + usize::from(!chosen.cache.is_empty()),
        key,
        leaves: f64::from(chosen.leaves),
        bodies,
        chosen: chosen_positions,
        terms: Vec::new(),
    };
    (model, elements)
}

fn key_features(key: &StatKey, length: usize) -> KeyFeatures {
    KeyFeatures {
        p: f64::from(key.p),
        n: f64::from(key.n),
        s: f64::from(key.s),
        k: key.k() as usize,
        n_calls: key.n as usize,
        ln_factorial_sizes: ln_factorial_sizes(key),
        length,
    }
}

/// Calls `visit` with every subset of the sorted `items` (the empty one included), each sorted.
fn for_each_subset(items: &[u32], visit: &mut dyn FnMut(&[u32])) {
    let mut subset = Vec::with_capacity(items.len());
    for mask in 0u32..(1 << items.len().min(16)) {
        subset.clear();
        subset.extend(
            items
                .iter()
                .enumerate()
                .filter(|&(i, _)| mask & (1 << i) != 0)
                .map(|(_, &e)| e),
        );
        visit(&subset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subset_is_visited_once_in_order() {
        let mut seen = Vec::new();
        for_each_subset(&[1, 4, 9], &mut |s| seen.push(s.to_vec()));
        assert_eq!(seen.len(), 8);
        assert!(seen.contains(&vec![1, 9]));
        assert!(seen.contains(&vec![]));
        assert!(seen.iter().all(|s| s.windows(2).all(|w| w[0] < w[1])));
    }
}
