//! Who wrote what, and when: the personal caches and the population library of the library
//! model (docs/modelling.md §4.5, "The library model").
//!
//! The order is explicit. A participant's [`History`] lists their usable programs by the
//! position at which they saw each task, and [`History::cache_before`] takes only strictly
//! earlier positions, so a score of task t never depends on what the participant wrote later.
//! The [`Population`] library counts the leaf bodies of the participants a model is fitted on,
//! and remembers each participant's own counts so that their share can be left out of their own
//! predictions.

use std::collections::{BTreeMap, HashMap};

/// The leaf bodies of a participant's earlier programs: what they can reuse.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cache {
    /// Occurrences of each body (by index into the body index S).
    counts: BTreeMap<u32, u32>,
    total: u32,
}

impl Cache {
    /// Whether the participant has written no leaf body yet (then w_o' = 0).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// f_own(b): the share of body `body` among the cache's leaf bodies (0 for an empty cache).
    pub fn share(&self, body: u32) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        f64::from(self.counts.get(&body).copied().unwrap_or(0)) / f64::from(self.total)
    }

    /// The bodies in the cache with their shares.
    pub fn shares(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.counts
            .iter()
            .map(|(&body, &count)| (body, f64::from(count) / f64::from(self.total)))
    }

    fn add(&mut self, bodies: &[u32]) {
        for &body in bodies {
            *self.counts.entry(body).or_default() += 1;
            self.total += 1;
        }
    }
}

/// One usable program of a participant, where they saw its task.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    position: usize,
    task: usize,
    /// The program's leaf bodies in S, one per occurrence.
    bodies: Vec<u32>,
}

/// A participant's usable programs in the order they saw the tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    entries: Vec<Entry>,
}

impl History {
    /// Records the program the participant wrote for `task`, seen at `position`, with its leaf
    /// bodies (indices into S).
    pub fn push(&mut self, position: usize, task: usize, bodies: Vec<u32>) {
        self.entries.push(Entry {
            position,
            task,
            bodies,
        });
        self.entries.sort_by_key(|e| (e.position, e.task));
    }

    /// The position at which the participant saw `task`, if they wrote a usable program for it.
    pub fn position_of(&self, task: usize) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.task == task)
            .map(|e| e.position)
    }

    /// The cache for a task seen at `position`: the leaf bodies of the programs written at
    /// strictly earlier positions on tasks that `admitted` accepts (a held-out task's programs
    /// are kept out of a training fit). Skipped or unusable trials were never pushed, so they
    /// add nothing.
    pub fn cache_before(&self, position: usize, admitted: &dyn Fn(usize) -> bool) -> Cache {
        let mut cache = Cache::default();
        for entry in self
            .entries
            .iter()
            .take_while(|e| e.position < position)
            .filter(|e| admitted(e.task))
        {
            cache.add(&entry.bodies);
        }
        cache
    }
}

/// The population library of one fit: the leaf bodies of every program of the participants the
/// model is fitted on (in leave-one-task-out fits, of the training tasks only).
///
/// Each contributor (a participant with at least one leaf body there) weighs equally: f_pop is
/// the mean over contributors of each one's own shares, so participant i's leave-one-out library
/// f_pop^(−i)(b) = (Σ_j f_j(b) − f_i(b)) / (|J| − [i ∈ J]) depends on nobody's programs but the
/// others'. (Pooled counts would divide by N − N_i, a per-participant rescaling of every body.)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Population {
    /// Each participant's body counts and total.
    own: HashMap<u32, (HashMap<u32, f64>, f64)>,
}

impl Population {
    /// Adds one program of `participant` with its leaf bodies.
    pub fn add(&mut self, participant: u32, bodies: &[u32]) {
        let (counts, total) = self.own.entry(participant).or_default();
        for &body in bodies {
            *counts.entry(body).or_default() += 1.0;
            *total += 1.0;
        }
    }

    /// |J|: participants with at least one leaf body in the library.
    pub fn contributors(&self) -> usize {
        self.own.values().filter(|(_, total)| *total > 0.0).count()
    }

    /// Whether `participant` is one of the contributors.
    pub fn is_contributor(&self, participant: u32) -> bool {
        self.own
            .get(&participant)
            .is_some_and(|(_, total)| *total > 0.0)
    }

    /// f_i(b): the share of `body` among `participant`'s own leaf bodies in the library.
    pub fn own_share(&self, participant: u32, body: u32) -> f64 {
        match self.own.get(&participant) {
            Some((counts, total)) if *total > 0.0 => {
                counts.get(&body).copied().unwrap_or(0.0) / total
            }
            _ => 0.0,
        }
    }

    /// Σ_j f_j(b) over the contributors.
    pub fn summed_share(&self, body: u32) -> f64 {
        self.own
            .values()
            .filter(|(_, total)| *total > 0.0)
            .map(|(counts, total)| counts.get(&body).copied().unwrap_or(0.0) / total)
            .sum()
    }

    /// f_pop^(−i)(b): the library share of `body` that `participant`'s predictions use, their
    /// own programs left out (0 when nobody else contributes).
    pub fn share_excluding(&self, participant: u32, body: u32) -> f64 {
        let own = self.is_contributor(participant);
        let others = self.contributors() - usize::from(own);
        if others == 0 {
            return 0.0;
        }
        (self.summed_share(body) - self.own_share(participant, body)) / others as f64
    }

    /// The bodies `participant` contributed to the library.
    pub fn own_bodies(&self, participant: u32) -> impl Iterator<Item = u32> + '_ {
        self.own
            .get(&participant)
            .into_iter()
            .flat_map(|(counts, _)| counts.keys().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_holds_only_strictly_earlier_positions() {
        let mut history = History::default();
        history.push(2, 7, vec![5]);
        history.push(0, 3, vec![1, 1]);
        history.push(1, 4, vec![]);
        assert!(history.cache_before(0, &|_| true).is_empty());
        let cache = history.cache_before(2, &|_| true);
        assert_eq!(cache.share(1), 1.0);
        assert_eq!(cache.share(5), 0.0);
        let cache = history.cache_before(3, &|_| true);
        assert!((cache.share(1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((cache.share(5) - 1.0 / 3.0).abs() < 1e-12);
        // A held-out task's program stays out.
        let cache = history.cache_before(3, &|task| task != 3);
        assert_eq!(cache.share(1), 0.0);
        assert_eq!(cache.share(5), 1.0);
    }

    #[test]
    fn the_population_leaves_out_a_participants_own_share() {
        let mut population = Population::default();
        population.add(1, &[10, 11]);
        population.add(2, &[10]);
        population.add(4, &[]);
        assert_eq!(population.contributors(), 2);
        assert!((population.summed_share(10) - 1.5).abs() < 1e-12);
        // Participant 1 sees only participant 2's library, participant 3 (outside) the mean.
        assert!((population.share_excluding(1, 10) - 1.0).abs() < 1e-12);
        assert_eq!(population.share_excluding(1, 11), 0.0);
        assert!((population.share_excluding(3, 10) - 0.75).abs() < 1e-12);
        assert!((population.share_excluding(2, 11) - 0.5).abs() < 1e-12);
        assert_eq!(population.own_share(3, 10), 0.0);
        let mut own: Vec<u32> = population.own_bodies(1).collect();
        own.sort_unstable();
        assert_eq!(own, vec![10, 11]);
    }
}
