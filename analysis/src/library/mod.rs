//! A corpus library by compression (docs/modelling.md §4.10): the subroutine bodies that,
//! shared by every program of the corpus, shorten its description the most, found greedily as the
//! compression step of Stitch and DreamCoder finds abstractions of lambda terms.
//!
//! # What is minimised
//!
//! The description length of the corpus is measured with the token costs of the
//! grammar-induction prior ([`crate::models::gi`], docs/modelling.md §4.5), in nats:
//!
//! - a primitive costs c_prim = −ln((1 − p_call)/5), a call (to one of the program's slots or to
//!   a library body) c_call = −ln p_call;
//! - a non-empty routine of L tokens pays, besides its tokens, (L − 1)·(−ln(1 − p_end)) +
//!   (−ln p_end); an empty routine costs nothing;
//! - the corpus costs the sum over every routine of every program, plus the library: each body
//!   once, priced as a routine of its own tokens (a hole priced as a primitive).
//!
//! The restaurant terms of the prior are left out: this is a code length for token sequences,
//! not the prior of a program. With no library the corpus costs Σ over routines of the above.
//!
//! A use of a body inside a routine replaces its run of tokens by one call token, so it saves
//! the run's token costs less c_call, plus −ln(1 − p_end) for every token the routine became
//! shorter. A use that is a whole subroutine (a slot whose body is exactly the body, no hole)
//! removes the subroutine instead: the slot now stands for the library body and its calls call
//! the body, at the same cost, so the use saves the routine's entire cost. Introducing a body
//! pays when its uses save more than the body costs in the library; a body used once never pays.
//!
//! # Holes
//!
//! A body may have one hole `?` at an inner position (never first or last: a hole there is
//! always beaten by the shorter body without it), which each use fills with one token (a
//! primitive or a call). The use is written as the call followed by its filler, so it keeps the
//! filler's cost and one more token of routine length: a use saves the body's other tokens less
//! c_call, plus −ln(1 − p_end) for every token beyond two. So a hole costs c_prim once in the
//! library and −ln(1 − p_end) per use, and the search keeps a hole body only where that costs
//! less than the fixed bodies it replaces: when its uses are spread over fillers none of which
//! pays alone, or pays as much.
//!
//! # The search
//!
//! Candidates are the runs of two or more tokens inside any routine (a subroutine body is one),
//! and with holes the runs of three or more with one inner token replaced by `?`. Each round
//! counts every candidate's uses as a rewrite would make them (non-overlapping, left to right,
//! within each routine), picks the candidate that saves the most (ties: the candidate seen first
//! in corpus order), rewrites every use in every routine of every program, and repeats until no
//! candidate saves anything. Later bodies may call earlier ones; uses inside the library are
//! neither counted nor rewritten. Tokens of a body that call a slot mean the using program's
//! slot, as they do in the program.
//!
//! Counts live in one hash map from candidate to uses and are updated per routine: before a
//! routine is rewritten its contribution is subtracted and afterwards the new one added, so a
//! round costs only the routines it changed; routines alike are counted once, weighted.

mod compress;
mod corpus;
mod plots;
mod report;
mod token;

use std::collections::BTreeSet;

use thiserror::Error;

use crate::choice::ObservedProgram;
use crate::models::gi::GiParams;

pub use plots::write_plots;
pub use report::{DescriptionLength, Library, LibraryBody, TaskCorpus, TaskUse};

/// The settings of the search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LibraryConfig {
    /// The probability that a token is a call; token costs as in the grammar-induction prior.
    pub p_call: f64,
    /// The probability that a routine ends after each token.
    pub p_end: f64,
    /// Whether bodies with one hole are candidates.
    pub holes: bool,
}

impl Default for LibraryConfig {
    /// The grammar-induction prior's reference values (`GiParams::default()`), holes on.
    fn default() -> LibraryConfig {
        let params = GiParams::default();
        LibraryConfig {
            p_call: params.p_call,
            p_end: params.p_end,
            holes: true,
        }
    }
}

/// Settings the search cannot use.
#[derive(Debug, Error, PartialEq)]
pub enum LibraryError {
    /// A probability outside (0, 1): some token would cost nothing or be impossible.
    #[error("{name} must lie strictly between 0 and 1, not {value}")]
    Probability { name: &'static str, value: f64 },
}

/// Finds the library of `observed` (each program as observed; canonical programs in the fit's
/// reading) and reports it with `labels` naming tasks (index = `mdp_idx`).
pub fn build_library(
    observed: &[ObservedProgram],
    labels: &[String],
    config: &LibraryConfig,
) -> Result<Library, LibraryError> {
    for (name, value) in [("p_call", config.p_call), ("p_end", config.p_end)] {
        if !(value > 0.0 && value < 1.0) {
            return Err(LibraryError::Probability { name, value });
        }
    }
    let costs = token::Costs::new(config.p_call, config.p_end);
    let mut corpus = corpus::Corpus::new(observed);
    let before = corpus.description_length(&costs);
    let found = compress::search(&mut corpus, &costs, config.holes);
    let library: f64 = found.iter().map(|f| costs.routine(&f.body)).sum();
    let tasks = report::task_corpus(&corpus.programs, labels);
    let library_bodies: Vec<Vec<token::Tok>> = found.iter().map(|f| f.body.clone()).collect();
    let bodies = found
        .iter()
        .enumerate()
        .map(|(i, f)| report::body_report(i + 1, f, &library_bodies, &corpus.programs, &tasks))
        .collect();
    let participants: BTreeSet<u32> = corpus.programs.iter().map(|p| p.participant).collect();
    Ok(Library {
        p_call: config.p_call,
        p_end: config.p_end,
        holes: config.holes,
        n_programs: corpus.programs.len(),
        n_participants: participants.len(),
        tasks,
        description_length: DescriptionLength {
            before,
            after: corpus.description_length(&costs) + library,
            library,
        },
        bodies,
    })
}
