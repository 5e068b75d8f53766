//! Candidate programs of a task (docs/modelling.md §4.1-4.3): every valid trace up to length L*,
//! each turned into programs by the greedy compression enumeration, renamed by first use.
//!
//! The union over traces is a disjoint union: an enumerated program halts at the goal after
//! executing exactly its source trace (the trace reaches the goal only at its end, and the rewrites
//! preserve the expansion), so two different traces never yield the same program. Duplicates are
//! therefore collapsed per trace, with 128-bit fingerprints, and the unique count of a task is the
//! sum over its traces. This keeps memory to one trace's programs per thread and lets traces run in
//! parallel with nothing to merge but counts and histograms.

mod compress;
mod normal;
mod traces;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;
use serde::Serialize;

use dsl::{Action, Program, Task};

use crate::error::AnalysisError;
use crate::key::StatKey;

pub use compress::{MAX_TRACE, SLOTS};
pub use traces::{TOP_K, candidate_traces};

/// The candidate set of one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enumeration {
    /// Number of candidate traces.
    pub traces: usize,
    /// Number of unique programs after renaming, over all traces.
    pub programs: u64,
    pub min_trace_length: usize,
    pub max_trace_length: usize,
    /// Programs per sufficient-statistic key, sorted by key; S is the program's step cost (its
    /// source trace's length).
    pub histogram: Vec<(StatKey, u64)>,
    /// `found[i]`: whether `queries[i]` is in the enumerated set (compared renamed by first use).
    pub found: Vec<bool>,
}

/// A fast hasher for keys that are already well mixed (fingerprints) or small integers (packed
/// keys): one multiply, no per-call setup.
#[derive(Default, Clone, Copy)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u128(&mut self, value: u128) {
        // Fingerprints are uniformly distributed already.
        self.0 ^= value as u64;
    }
}

type FastSet = HashSet<u128, BuildHasherDefault<MixHasher>>;
type FastMap<V> = HashMap<u64, V, BuildHasherDefault<MixHasher>>;

/// Compresses one trace (internal letters) and calls `visit` once per unique program of that trace
/// with its renamed compact bytes. `seen` is scratch space; afterwards it holds the fingerprints of
/// the trace's programs.
fn unique_programs_of_trace(
    trace: &[u8],
    seen: &mut FastSet,
    visit: &mut dyn FnMut(&[u8], u128),
) -> Result<(), AnalysisError> {
    seen.clear();
    let mut renamed = Vec::with_capacity(compress::CAP);
    compress::compress(trace, &mut |prog| {
        let mut routines: [&[u8]; SLOTS as usize + 1] = [&[]; SLOTS as usize + 1];
        let mut count = 0;
        for body in normal::routines_of(prog.bytes()) {
            routines[count] = body;
            count += 1;
        }
        let ok = normal::rename_by_first_use(&routines[..count], &mut renamed);
        debug_assert!(ok, "enumerated programs always rename");
        let fp = normal::fingerprint(&renamed);
        if seen.insert(fp) {
            visit(&renamed, fp);
        }
    })
}

/// Per-thread accumulator of [`enumerate_task`].
struct Partial {
    programs: u64,
    histogram: FastMap<u64>,
    found: Vec<bool>,
    seen: FastSet,
    error: Option<AnalysisError>,
}

impl Partial {
    fn new(queries: usize) -> Partial {
        Partial {
            programs: 0,
            histogram: FastMap::default(),
            found: vec![false; queries],
            seen: FastSet::default(),
            error: None,
        }
    }

    fn merge(mut self, other: Partial) -> Partial {
        self.programs += other.programs;
        for (key, count) in other.histogram {
            *self.histogram.entry(key).or_default() += count;
        }
        for (mine, theirs) in self.found.iter_mut().zip(other.found) {
            *mine |= theirs;
        }
        self.error = self.error.or(other.error);
        self
    }
}

/// Enumerates the candidate programs of `task` and reports which `queries` are among them.
pub fn enumerate_task(task: &Task, queries: &[Program]) -> Result<Enumeration, AnalysisError> {
    enumerate_task_with_progress(task, queries, &|_, _| {})
}

/// [`enumerate_task`], calling `progress(done, total)` after each trace (from worker threads).
pub fn enumerate_task_with_progress(
    task: &Task,
    queries: &[Program],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Enumeration, AnalysisError> {
    let traces = candidate_traces(task)?;
    let total = traces.len();
    // Queries that cannot be renamed cannot be enumerated programs either.
    let query_prints: Vec<Option<u128>> = queries
        .iter()
        .map(|q| normal::normal_bytes_of_program(q).map(|bytes| normal::fingerprint(&bytes)))
        .collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let result = traces
        .par_iter()
        .fold(
            || Partial::new(queries.len()),
            |mut acc, trace| {
                if acc.error.is_some() {
                    return acc;
                }
                let Partial {
                    programs,
                    histogram,
                    seen,
                    ..
                } = &mut acc;
                let outcome = unique_programs_of_trace(trace, seen, &mut |bytes, _| {
                    *programs += 1;
                    *histogram
                        .entry(normal::packed_key(bytes, trace.len()))
                        .or_default() += 1;
                });
                if let Err(e) = outcome {
                    acc.error = Some(e);
                    return acc;
                }
                for (found, print) in acc.found.iter_mut().zip(&query_prints) {
                    if let Some(print) = print {
                        *found |= acc.seen.contains(print);
                    }
                }
                let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(finished, total);
                acc
            },
        )
        .reduce(|| Partial::new(queries.len()), Partial::merge);
    if let Some(error) = result.error {
        return Err(error);
    }
    let mut histogram: Vec<(StatKey, u64)> = result
        .histogram
        .into_iter()
        .map(|(key, count)| (normal::unpack_key(key), count))
        .collect();
    histogram.sort_unstable();
    Ok(Enumeration {
        traces: total,
        programs: result.programs,
        min_trace_length: traces.first().map_or(0, Vec::len),
        max_trace_length: traces.last().map_or(0, Vec::len),
        histogram,
        found: result.found,
    })
}

/// Folds every candidate program of `task` in parallel, for statistics beyond the key histogram
/// (the library model's grouping, docs/modelling.md §4.5): `fold(acc, bytes, key)` sees each
/// unique program once as its renamed compact bytes (internal letters `A`..`E`, digits for calls,
/// trailing empty slots left out) with its packed key ([`key_of_packed`]); per-thread
/// accumulators start from `init` and are combined with `merge`.
pub(crate) fn fold_candidate_bytes<A: Send>(
    task: &Task,
    init: impl Fn() -> A + Sync + Send,
    fold: impl Fn(&mut A, &[u8], u64) + Sync + Send,
    merge: impl Fn(A, A) -> A + Sync + Send,
) -> Result<A, AnalysisError> {
    let traces = candidate_traces(task)?;
    let result = traces
        .par_iter()
        .fold(
            || (init(), FastSet::default(), None),
            |(mut acc, mut seen, mut error): (A, FastSet, Option<AnalysisError>), trace| {
                if error.is_none() {
                    let s = trace.len();
                    let outcome = unique_programs_of_trace(trace, &mut seen, &mut |bytes, _| {
                        fold(&mut acc, bytes, normal::packed_key(bytes, s));
                    });
                    error = outcome.err();
                }
                (acc, seen, error)
            },
        )
        .map(|(acc, _, error)| (acc, error))
        .reduce(
            || (init(), None),
            |(a, ea), (b, eb)| (merge(a, b), ea.or(eb)),
        );
    match result {
        (_, Some(error)) => Err(error),
        (acc, None) => Ok(acc),
    }
}

/// The [`StatKey`] of a packed key from [`fold_candidate_bytes`].
pub(crate) fn key_of_packed(packed: u64) -> StatKey {
    normal::unpack_key(packed)
}

/// A program's compact bytes in the normal form the enumeration writes (renamed by first use,
/// internal letters, unreached subroutines and trailing empty slots left out); `None` when it
/// cannot be renamed.
pub(crate) fn normal_bytes(program: &Program) -> Option<Vec<u8>> {
    normal::normal_bytes_of_program(program)
}

/// Compact bytes in internal letters, written in the published letters.
pub(crate) fn readable_bytes(bytes: &[u8]) -> String {
    normal::readable_compact(bytes)
}

/// A deterministic stream of a task's candidate programs (see [`candidates`]).
pub struct Candidates {
    traces: Vec<Vec<u8>>,
    next_trace: usize,
    /// Programs of the current trace, in generation order, with their keys.
    buffer: std::vec::IntoIter<(Program, StatKey)>,
    seen: FastSet,
}

impl Iterator for Candidates {
    type Item = (Program, StatKey);

    fn next(&mut self) -> Option<(Program, StatKey)> {
        loop {
            if let Some(item) = self.buffer.next() {
                return Some(item);
            }
            let trace = self.traces.get(self.next_trace)?;
            self.next_trace += 1;
            let mut programs = Vec::new();
            let s = trace.len();
            // Traces were checked when the stream was made, so compression cannot fail here.
            let outcome = unique_programs_of_trace(trace, &mut self.seen, &mut |bytes, _| {
                let key = normal::unpack_key(normal::packed_key(bytes, s));
                programs.push((normal::program_of_bytes(bytes, SLOTS as usize), key));
            });
            debug_assert!(outcome.is_ok());
            self.buffer = programs.into_iter();
        }
    }
}

/// Every candidate program of `task` exactly once, with its key, in a deterministic order: traces
/// by length then lexicographically (internal letters), and within a trace in generation order.
/// Only one trace's programs are held at a time.
pub fn candidates(task: &Task) -> Result<Candidates, AnalysisError> {
    let traces = candidate_traces(task)?;
    if let Some(long) = traces.iter().find(|t| t.len() > MAX_TRACE) {
        return Err(AnalysisError::TraceTooLong {
            task: Some(task.source.clone()),
            length: long.len(),
            limit: MAX_TRACE,
        });
    }
    Ok(Candidates {
        traces,
        next_trace: 0,
        buffer: Vec::new().into_iter(),
        seen: FastSet::default(),
    })
}

/// The unique programs (renamed by first use, in generation order) that the compression
/// enumeration makes from one trace (docs/modelling.md §4.2).
pub fn compress_trace(trace: &[Action]) -> Result<Vec<Program>, AnalysisError> {
    let internal: Vec<u8> = trace.iter().map(|&a| traces::internal_letter(a)).collect();
    let mut programs = Vec::new();
    unique_programs_of_trace(&internal, &mut FastSet::default(), &mut |bytes, _| {
        programs.push(normal::program_of_bytes(bytes, SLOTS as usize));
    })?;
    Ok(programs)
}

/// [`compress_trace`] on a trace written in the internal letters `A`..`E` of
/// docs/semantics.md §3.1, returning compact strings in the same letters with trailing empty slots
/// left out (for example `11A|AB`), the notation of the abstract examples in
/// docs/modelling.md §4.2.
pub fn compress_internal(trace: &str) -> Result<Vec<String>, AnalysisError> {
    let mut programs = Vec::new();
    unique_programs_of_trace(
        trace.as_bytes(),
        &mut FastSet::default(),
        &mut |bytes, _| {
            programs.push(String::from_utf8_lossy(bytes).into_owned());
        },
    )?;
    Ok(programs)
}

/// The normal form used to compare programs with the enumeration: compact form in the published
/// letters, subroutines renamed by first use, unreached subroutines and trailing empty slots left
/// out. `None` if the program calls a slot it does not have or has more than 9 slots.
pub fn normal_form(program: &Program) -> Option<String> {
    normal::normal_bytes_of_program(program).map(|bytes| normal::readable_compact(&bytes))
}

/// The candidate traces of `task` in the published letters (S J W R L).
pub fn readable_traces(task: &Task) -> Result<Vec<String>, AnalysisError> {
    Ok(candidate_traces(task)?
        .iter()
        .map(|t| traces::readable(t))
        .collect())
}
