//! Sufficient statistics of a program (docs/modelling.md §4.4): every score depends on a program
//! only through (P, n, the multiset of c_k, R, S), so candidate sets are histograms over this key.

use serde::{Deserialize, Serialize};

use dsl::{Metrics, Program};

/// Most subroutine slots a key can describe.
pub const MAX_SLOTS: usize = 9;

/// The sufficient-statistic key of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatKey {
    /// P: primitive tokens.
    pub p: u16,
    /// n: call tokens.
    pub n: u16,
    /// c_k of the called subroutines, sorted in decreasing order, zero-padded.
    pub calls: [u16; MAX_SLOTS],
    /// R: non-empty routines (main plus non-empty subroutines).
    pub r: u8,
    /// S: step cost (docs/semantics.md §1.8).
    pub s: u16,
}

impl StatKey {
    /// The key of `program` with step cost `s`.
    pub fn new(program: &Program, s: u32) -> StatKey {
        let metrics = Metrics::of(program);
        let mut calls = [0u16; MAX_SLOTS];
        for (slot, &count) in calls.iter_mut().zip(&metrics.calls) {
            *slot = count.min(u16::MAX as u32) as u16;
        }
        calls.sort_unstable_by(|a, b| b.cmp(a));
        StatKey {
            p: metrics.p.min(u16::MAX as u32) as u16,
            n: metrics.n.min(u16::MAX as u32) as u16,
            calls,
            r: metrics.r.min(u8::MAX as u32) as u8,
            s: s.min(u16::MAX as u32) as u16,
        }
    }

    /// T = P + n.
    pub fn t(&self) -> u32 {
        self.p as u32 + self.n as u32
    }

    /// K: subroutines that are called.
    pub fn k(&self) -> u32 {
        self.calls.iter().filter(|&&c| c > 0).count() as u32
    }

    /// The non-zero call counts.
    pub fn call_counts(&self) -> impl Iterator<Item = u32> + '_ {
        self.calls.iter().take_while(|&&c| c > 0).map(|&c| c as u32)
    }
}
