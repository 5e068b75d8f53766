//! Turning one trace into programs: the greedy compression enumeration of docs/modelling.md §4.2.
//!
//! Programs are compact byte strings: main, then `|` and the body of each used subroutine slot, in
//! slot order. Primitives are the internal letters `A`..`E` (docs/semantics.md §3.1), because
//! candidate subroutines are ordered lexicographically on those letters; calls are the digits
//! `1`..`4`. Slots are always filled in order and never emptied, so the used slots are 1..=`slots`,
//! and a pattern of letters can never match across a `|` or a call digit.
//!
//! The backtracking of the reference ("first skip the candidate, then use it if the rewrite
//! succeeds") is run in an equivalent flattened form: a node yields its own program (the leaf where
//! every remaining candidate is skipped) and then recurses once per remaining candidate whose
//! rewrite succeeds. Two facts keep this fast:
//! - a candidate with fewer than two non-overlapping sites in a program can never be applied in
//!   any descendant (rewriting never creates sites: a replaced site contributes at most the one
//!   copy in the new body), so each node carries the list of still-applicable candidates;
//! - once every subroutine slot is used, a node is a leaf.

use crate::error::AnalysisError;

/// Subroutine slots of the reference task.
pub const SLOTS: u8 = 4;

/// Bytes of a compact program buffer. Every program of a trace of length n, extended or not, has
/// at most 2n - 2 tokens plus 4 separators (an accepted rewrite never adds tokens), and the
/// buffer also holds a new body during a rewrite.
pub(crate) const CAP: usize = 160;

/// Longest trace the compression accepts: every program it builds must fit a fixed 160-byte buffer.
pub const MAX_TRACE: usize = 64;

/// A program in compact bytes (see the module docs).
#[derive(Clone, Copy)]
pub(crate) struct Prog {
    buf: [u8; CAP],
    len: u8,
    main_len: u8,
    slots: u8,
}

impl Prog {
    /// The program whose main is `trace` and which has no subroutines.
    fn flat(trace: &[u8]) -> Prog {
        let mut prog = Prog {
            buf: [0; CAP],
            len: trace.len() as u8,
            main_len: trace.len() as u8,
            slots: 0,
        };
        prog.buf[..trace.len()].copy_from_slice(trace);
        prog
    }

    /// The whole compact form (main and the used bodies, separated by `|`).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    fn main(&self) -> &[u8] {
        &self.buf[..self.main_len as usize]
    }

    fn main_ends_with_call(&self) -> bool {
        self.main().last().is_some_and(u8::is_ascii_digit)
    }

    fn push(&mut self, byte: u8) {
        self.buf[self.len as usize] = byte;
        self.len += 1;
    }

    /// Appends `hay` with every greedy non-overlapping occurrence of `pat` replaced by `digit`;
    /// returns the number of replacements (Python's `str.replace`).
    fn push_replaced(&mut self, hay: &[u8], pat: &[u8], digit: u8) -> usize {
        let m = pat.len();
        let mut count = 0;
        let mut i = 0;
        while i < hay.len() {
            if i + m <= hay.len() && hay[i] == pat[0] && hay[i..i + m] == *pat {
                self.push(digit);
                count += 1;
                i += m;
            } else {
                self.push(hay[i]);
                i += 1;
            }
        }
        count
    }
}

/// The rewrite step `with_new_sr` (docs/modelling.md §4.2 step 2): replaces `pat` by a call to the
/// first free slot everywhere and gives that slot the body `pat`, or returns `None` when there is
/// no free slot or fewer than two sites were rewritten. In suffix mode (only used when main ends
/// with `pat`) the right-most occurrence in main is replaced first.
fn with_new_sr(p: &Prog, pat: &[u8], suffix: bool) -> Option<Prog> {
    if p.slots >= SLOTS || pat.len() < 2 {
        return None;
    }
    let digit = b'1' + p.slots;
    let mut out = Prog {
        buf: [0; CAP],
        len: 0,
        main_len: 0,
        slots: p.slots + 1,
    };
    let main = p.main();
    let mut count = if suffix {
        let head = &main[..main.len() - pat.len()];
        let count = out.push_replaced(head, pat, digit);
        out.push(digit);
        count + 1
    } else {
        out.push_replaced(main, pat, digit)
    };
    out.main_len = out.len;
    count += out.push_replaced(&p.bytes()[p.main_len as usize..], pat, digit);
    if count < 2 {
        return None;
    }
    out.push(b'|');
    for &byte in pat {
        out.push(byte);
    }
    Some(out)
}

/// Whether `hay` holds at least two non-overlapping occurrences of `pat` (greedy from the left,
/// which finds the most, since all occurrences have the same length).
fn has_two_sites(hay: &[u8], pat: &[u8]) -> bool {
    let m = pat.len();
    if hay.len() < 2 * m {
        return false;
    }
    let (first, second) = (pat[0], pat[1]);
    let mut found = false;
    let mut i = 0;
    let last = hay.len() - m;
    while i <= last {
        if hay[i] == first && hay[i + 1] == second && hay[i..i + m] == *pat {
            if found {
                return true;
            }
            found = true;
            i += m;
        } else {
            i += 1;
        }
    }
    false
}

/// Greedy non-overlapping occurrence count of `pat` in `hay` (docs/modelling.md §4.2 step 1).
fn count_occurrences(hay: &[u8], pat: &[u8]) -> usize {
    let m = pat.len();
    let mut count = 0;
    let mut i = 0;
    while i + m <= hay.len() {
        if hay[i..i + m] == *pat {
            count += 1;
            i += m;
        } else {
            i += 1;
        }
    }
    count
}

/// Candidate subroutines of a trace (docs/modelling.md §4.2 step 1): substrings of length 2..len-1
/// with at least two non-overlapping occurrences, longest first, then lexicographically.
pub(crate) fn candidate_subroutines(trace: &[u8]) -> Vec<&[u8]> {
    let n = trace.len();
    let mut candidates: Vec<&[u8]> = Vec::new();
    // Two non-overlapping occurrences need 2L ≤ n.
    for len in 2..=(n / 2).min(n.saturating_sub(1)) {
        let first = candidates.len();
        for start in 0..=n - len {
            let sub = &trace[start..start + len];
            if candidates[first..].contains(&sub) {
                continue;
            }
            if count_occurrences(trace, sub) >= 2 {
                candidates.push(sub);
            }
        }
    }
    candidates.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    candidates
}

/// The shared state of one backtracking run.
struct Search<'a, 'e> {
    candidates: &'a [&'a [u8]],
    /// Extension length e of an extended trace, or 0 for a plain trace (docs/modelling.md §4.2
    /// step 5).
    extension: usize,
    emit: &'e mut dyn FnMut(&Prog),
}

impl Search<'_, '_> {
    /// The candidates (by index) that can still be applied to `p`.
    fn applicable(&self, p: &Prog, from: impl Iterator<Item = u16>, out: &mut Vec<u16>) {
        out.clear();
        out.extend(from.filter(|&k| has_two_sites(p.bytes(), self.candidates[k as usize])));
    }

    /// The backtracking `recur` (docs/modelling.md §4.2 step 3) from `p`, with `alive` the
    /// applicable candidates not yet decided, in order; `scratch` holds the candidate lists of
    /// deeper levels.
    fn recur(&mut self, p: &Prog, alive: &[u16], scratch: &mut [Vec<u16>]) {
        let ends_with_call = p.main_ends_with_call();
        let extended = self.extension > 0;
        if !extended || ends_with_call {
            (self.emit)(p);
        }
        if p.slots >= SLOTS {
            return;
        }
        let Some((child_alive, deeper)) = scratch.split_first_mut() else {
            return;
        };
        for (pos, &j) in alive.iter().enumerate() {
            let pat = self.candidates[j as usize];
            // Pruning of extended traces: nothing shorter than the extension can make main end
            // with a call that runs, and candidates come longest first.
            if extended && !ends_with_call && pat.len() <= self.extension {
                break;
            }
            let suffix = extended && p.main().ends_with(pat);
            let Some(q) = with_new_sr(p, pat, suffix) else {
                continue;
            };
            if q.slots < SLOTS {
                self.applicable(&q, alive[pos + 1..].iter().copied(), child_alive);
            } else {
                child_alive.clear();
            }
            self.recur(&q, child_alive, deeper);
        }
    }

    /// Runs the backtracking from the start of the candidate list on `root`.
    fn run(&mut self, root: &Prog, scratch: &mut [Vec<u16>]) {
        let Some((alive, deeper)) = scratch.split_first_mut() else {
            return;
        };
        self.applicable(root, 0..self.candidates.len() as u16, alive);
        self.recur(root, alive, deeper);
    }
}

/// The tail-recursive program of docs/modelling.md §4.2 step 4: `s` stripped r ≥ 2 times from the
/// end of `trace`, main = rest + `1`, P1 = `s` + `1`.
fn tail_recursion(trace: &[u8], s: &[u8]) -> Option<Prog> {
    let mut end = trace.len();
    let mut stripped = 0;
    while end >= s.len() && trace[..end].ends_with(s) {
        end -= s.len();
        stripped += 1;
    }
    if stripped < 2 {
        return None;
    }
    let mut prog = Prog::flat(&trace[..end]);
    prog.push(b'1');
    prog.main_len = prog.len;
    prog.push(b'|');
    for &byte in s {
        prog.push(byte);
    }
    prog.push(b'1');
    prog.slots = 1;
    Some(prog)
}

/// Every program the compression enumeration generates from `trace` (internal letters), before
/// renaming, duplicates included; `emit` is called once per generated program.
pub(crate) fn compress(trace: &[u8], emit: &mut dyn FnMut(&Prog)) -> Result<(), AnalysisError> {
    if trace.len() > MAX_TRACE {
        return Err(AnalysisError::TraceTooLong {
            task: None,
            length: trace.len(),
            limit: MAX_TRACE,
        });
    }
    if let Some(bad) = trace.iter().find(|c| !(b'A'..=b'E').contains(*c)) {
        return Err(AnalysisError::TraceLetter {
            letter: char::from(*bad),
        });
    }
    let candidates = candidate_subroutines(trace);
    let mut scratch: Vec<Vec<u16>> = vec![Vec::with_capacity(candidates.len()); SLOTS as usize + 1];
    let mut plain = Search {
        candidates: &candidates,
        extension: 0,
        emit,
    };

    // Step 6: plain compression (the flat trace is its all-skip leaf).
    plain.run(&Prog::flat(trace), &mut scratch);
    // Step 4: tail recursion.
    for s in candidates.iter().filter(|s| trace.ends_with(s)) {
        if let Some(prog) = tail_recursion(trace, s) {
            plain.run(&prog, &mut scratch);
        }
    }
    // Step 5: extended traces, whose last call runs past the goal.
    let mut extended: Vec<u8> = Vec::with_capacity(2 * trace.len());
    let mut done_rests: Vec<&[u8]> = Vec::new();
    for s in &candidates {
        for split in 1..s.len() {
            let (prefix, rest) = s.split_at(split);
            if !trace.ends_with(prefix) {
                continue;
            }
            extended.clear();
            extended.extend_from_slice(trace);
            extended.extend_from_slice(rest);
            // Different candidates can extend the trace the same way; the backtracking on an
            // extended trace depends only on that trace, so it runs once.
            if !done_rests.contains(&rest) {
                done_rests.push(rest);
                let mut search = Search {
                    candidates: &candidates,
                    extension: rest.len(),
                    emit: &mut *plain.emit,
                };
                search.run(&Prog::flat(&extended), &mut scratch);
            }
            if let Some(prog) = tail_recursion(&extended, s) {
                plain.run(&prog, &mut scratch);
            }
        }
    }
    Ok(())
}
