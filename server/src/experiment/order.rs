//! Task order modes (docs/design.md §4): the order every session sees, a seeded shuffle, or
//! balanced counterbalancing over a set of orders. Assigning a balanced condition needs the
//! database (the least-used condition, chosen in a transaction); this module only says what each
//! mode means.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// How the main tasks are ordered for each session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Everyone sees the tasks in file order.
    Fixed,
    /// A shuffle seeded by the session's seed; `seed` forces one seed (one order) for everyone.
    Shuffle { seed: Option<u64> },
    /// Each session is assigned the least-used of these orders (task indices).
    Balanced { orders: Vec<Vec<usize>> },
}

/// Largest session seed: seeds stay below 2^53 so that JavaScript reads them exactly.
pub const SEED_MASK: u64 = (1 << 53) - 1;

impl Order {
    pub fn mode_name(&self) -> &'static str {
        match self {
            Order::Fixed => "fixed",
            Order::Shuffle { .. } => "shuffle",
            Order::Balanced { .. } => "balanced",
        }
    }

    /// Number of counterbalancing conditions, for balanced orders.
    pub fn n_conditions(&self) -> Option<usize> {
        match self {
            Order::Balanced { orders } => Some(orders.len()),
            _ => None,
        }
    }

    /// The seed a new session records: the experiment's fixed shuffle seed if it has one.
    pub fn session_seed(&self, drawn: u64) -> u64 {
        match self {
            Order::Shuffle { seed: Some(seed) } => *seed & SEED_MASK,
            _ => drawn & SEED_MASK,
        }
    }

    /// The task order of a session with this condition and seed. A balanced order needs the
    /// condition; without one it falls back to file order.
    pub fn task_order(&self, n_tasks: usize, condition: Option<usize>, seed: u64) -> Vec<usize> {
        match self {
            Order::Fixed => (0..n_tasks).collect(),
            Order::Shuffle { .. } => shuffled(n_tasks, seed),
            Order::Balanced { orders } => match condition.and_then(|c| orders.get(c)) {
                Some(order) => order.clone(),
                None => (0..n_tasks).collect(),
            },
        }
    }
}

/// `0..n` shuffled by a ChaCha8 generator seeded with `seed`: the same seed always gives the same
/// order, so the order can be recomputed from the recorded seed.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// A balanced Latin square (Williams design) over `n` tasks: every task appears once in every
/// position across the rows, and every task immediately follows every other equally often. For
/// odd `n` the mirrored rows are added, giving `2n` orders.
pub fn balanced_latin_square(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    // First row 0, 1, n-1, 2, n-2, ...; the other rows add a constant modulo n.
    let mut first = Vec::with_capacity(n);
    let (mut low, mut high) = (0usize, n);
    for i in 0..n {
        if i % 2 == 0 {
            first.push(low);
            low += 1;
        } else {
            high -= 1;
            first.push(high);
        }
    }
    let mut rows: Vec<Vec<usize>> = (0..n)
        .map(|r| first.iter().map(|&t| (t + r) % n).collect())
        .collect();
    if n % 2 == 1 {
        let mirrored: Vec<Vec<usize>> = rows
            .iter()
            .map(|row| row.iter().rev().copied().collect())
            .collect();
        rows.extend(mirrored);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adjacency_counts(rows: &[Vec<usize>], n: usize) -> Vec<Vec<usize>> {
        let mut counts = vec![vec![0; n]; n];
        for row in rows {
            for pair in row.windows(2) {
                counts[pair[0]][pair[1]] += 1;
            }
        }
        counts
    }

    #[test]
    fn balanced_square_for_ten_tasks_is_latin_and_carryover_balanced() {
        let rows = balanced_latin_square(10);
        assert_eq!(rows.len(), 10);
        for position in 0..10 {
            let mut seen: Vec<usize> = rows.iter().map(|row| row[position]).collect();
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>(), "position {position}");
        }
        let counts = adjacency_counts(&rows, 10);
        for (a, row) in counts.iter().enumerate() {
            for (b, &count) in row.iter().enumerate() {
                assert_eq!(count, usize::from(a != b), "{a} -> {b}");
            }
        }
    }

    #[test]
    fn balanced_square_for_odd_n_uses_mirrored_rows() {
        let rows = balanced_latin_square(5);
        assert_eq!(rows.len(), 10);
        let counts = adjacency_counts(&rows, 5);
        for (a, row) in counts.iter().enumerate() {
            for (b, &count) in row.iter().enumerate() {
                assert_eq!(count, if a == b { 0 } else { 2 }, "{a} -> {b}");
            }
        }
    }

    #[test]
    fn shuffles_are_permutations_fixed_by_the_seed() {
        let a = shuffled(10, 7);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(a, shuffled(10, 7));
        assert!(
            (0..20).any(|seed| shuffled(10, seed) != a),
            "every seed gave the same order"
        );
    }

    #[test]
    fn a_fixed_shuffle_seed_overrides_the_drawn_one() {
        assert_eq!(Order::Shuffle { seed: Some(5) }.session_seed(99), 5);
        assert_eq!(Order::Shuffle { seed: None }.session_seed(99), 99);
        assert!(Order::Fixed.session_seed(u64::MAX) <= SEED_MASK);
    }
}
