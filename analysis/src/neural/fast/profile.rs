//! Where the fast scorer's time goes: a [`Profile`] of its parts, filled by a [`Timer`] that the
//! engine laps after each part (and that costs nothing when off).

use std::time::{Duration, Instant};

/// Where the engine's time goes (filled by [`crate::neural::fast::FastScorer::profile`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Profile {
    /// Building the tries (sorting the sequences, making the levels).
    pub trie: Duration,
    /// Input embeddings, ancestor lists and path sums.
    pub inputs: Duration,
    /// The dense layers: matrix products with their biases.
    pub matmul: Duration,
    /// Attention over the prefix and the ancestors, and the key/value copies.
    pub attention: Duration,
    /// Layer norms and ReLU.
    pub elementwise: Duration,
    /// The grammar mask and log-softmax of the head's logits.
    pub softmax: Duration,
    /// Trie nodes run.
    pub nodes: usize,
}

impl Profile {
    pub fn total(&self) -> Duration {
        self.trie + self.inputs + self.matmul + self.attention + self.elementwise + self.softmax
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Part {
    Trie,
    Inputs,
    Matmul,
    Attention,
    Elementwise,
    Softmax,
}

/// Adds the time since its last lap to a part of a profile, when there is one.
pub(crate) struct Timer<'a> {
    profile: Option<&'a mut Profile>,
    last: Instant,
}

impl<'a> Timer<'a> {
    pub fn new(profile: Option<&'a mut Profile>) -> Timer<'a> {
        Timer {
            profile,
            last: Instant::now(),
        }
    }

    /// A timer that records nothing.
    pub fn off() -> Timer<'static> {
        Timer::new(None)
    }

    #[inline]
    pub fn lap(&mut self, part: Part) {
        if let Some(profile) = self.profile.as_deref_mut() {
            let now = Instant::now();
            let spent = now - self.last;
            self.last = now;
            *match part {
                Part::Trie => &mut profile.trie,
                Part::Inputs => &mut profile.inputs,
                Part::Matmul => &mut profile.matmul,
                Part::Attention => &mut profile.attention,
                Part::Elementwise => &mut profile.elementwise,
                Part::Softmax => &mut profile.softmax,
            } += spent;
        }
    }

    pub fn count(&mut self, nodes: usize) {
        if let Some(profile) = self.profile.as_deref_mut() {
            profile.nodes += nodes;
        }
    }
}
