//! Tokens of the rewritten corpus, packed into a `u32` so that candidate bodies hash and compare
//! as plain integer slices, and their description-length costs.
//!
//! Besides the program's own tokens (the five primitives and calls to the program's slots), a
//! rewritten routine holds calls to library bodies and, for a body with a hole, an applied call
//! that carries its filler; a candidate body may also hold the hole itself.

use dsl::{Action, Instr};

/// One token of a routine or of a library body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Tok(u32);

/// Calls to the program's own slots: `CALL + k` for slot k (at most 255, so below `LIB`).
const CALL: u32 = 0x10;
/// Calls to library body j (0-based): `LIB + j`.
const LIB: u32 = 0x200;
/// Everything at or above this is not a single atom.
const ATOM_END: u32 = 0x800;
const HOLE: u32 = 0x800;
/// An applied call: this bit, the body's index shifted by `APPLIED_SHIFT`, and the filler atom.
const APPLIED: u32 = 0x8000_0000;
const APPLIED_SHIFT: u32 = 12;

/// The most library bodies the packing can name.
pub(super) const MAX_BODIES: usize = (ATOM_END - LIB) as usize;

impl Tok {
    /// The hole of a body with one varying position.
    pub(super) const HOLE: Tok = Tok(HOLE);

    pub(super) fn from_instr(instr: Instr) -> Tok {
        match instr {
            Instr::Act(action) => Tok(Action::ALL
                .iter()
                .position(|&a| a == action)
                .map_or(0, |i| i as u32)),
            Instr::Call(slot) => Tok(CALL + u32::from(slot)),
        }
    }

    /// A call to library body `index` (0-based; below [`MAX_BODIES`]).
    pub(super) fn library(index: usize) -> Tok {
        Tok(LIB + index as u32)
    }

    /// A call to library body `index` whose hole is filled by the atom `filler`.
    pub(super) fn applied(index: usize, filler: Tok) -> Tok {
        Tok(APPLIED | ((index as u32) << APPLIED_SHIFT) | filler.0)
    }

    /// A single token that can fill a hole: a primitive or a call.
    pub(super) fn is_atom(self) -> bool {
        self.0 < ATOM_END
    }

    pub(super) fn is_hole(self) -> bool {
        self.0 == HOLE
    }

    /// The slot this token calls, if it is a call to one of the program's own slots.
    pub(super) fn local_slot(self) -> Option<usize> {
        (CALL..LIB)
            .contains(&self.0)
            .then(|| (self.0 - CALL) as usize)
    }

    /// The same token with calls to slot `slot` turned into calls to library body `index`, in
    /// an applied call's filler too.
    pub(super) fn retarget(self, slot: usize, index: usize) -> Tok {
        if self.local_slot() == Some(slot) {
            Tok::library(index)
        } else if self.0 & APPLIED != 0 {
            let filler = Tok(self.0 & (ATOM_END - 1));
            if filler.local_slot() == Some(slot) {
                Tok::applied(self.applied_body(), Tok::library(index))
            } else {
                self
            }
        } else {
            self
        }
    }

    /// The library body this token calls, with the filler of its hole for an applied call.
    fn library_call(self) -> Option<(usize, Option<Tok>)> {
        if self.0 & APPLIED != 0 {
            Some((self.applied_body(), Some(Tok(self.0 & (ATOM_END - 1)))))
        } else if (LIB..ATOM_END).contains(&self.0) {
            Some(((self.0 - LIB) as usize, None))
        } else {
            None
        }
    }

    fn applied_body(self) -> usize {
        ((self.0 & !APPLIED) >> APPLIED_SHIFT) as usize
    }

    /// How many tokens this stands for in its routine's length: an applied call is the call plus
    /// its filler.
    pub(super) fn units(self) -> usize {
        if self.0 & APPLIED != 0 { 2 } else { 1 }
    }

    /// The cost of this token in nats.
    pub(super) fn cost(self, costs: &Costs) -> f64 {
        if self.0 & APPLIED != 0 {
            costs.call + Tok(self.0 & (ATOM_END - 1)).cost(costs)
        } else if self.0 < CALL || self.0 == HOLE {
            costs.primitive
        } else {
            costs.call
        }
    }

    /// The compact-form text: primitives as letters, slot calls as digits, library calls as
    /// `[N]` (1-based), applied calls as `[N:x]`, the hole as `?`.
    pub(super) fn write(self, out: &mut String) {
        if self.0 & APPLIED != 0 {
            out.push_str(&format!("[{}:", self.applied_body() + 1));
            Tok(self.0 & (ATOM_END - 1)).write(out);
            out.push(']');
        } else if self.0 < CALL {
            out.push(Action::ALL[self.0 as usize].letter());
        } else if self.0 < LIB {
            out.push_str(&(self.0 - CALL).to_string());
        } else if self.0 < ATOM_END {
            out.push_str(&format!("[{}]", self.0 - LIB + 1));
        } else {
            out.push('?');
        }
    }
}

/// The text of a token sequence (see [`Tok::write`]).
pub(super) fn text(tokens: &[Tok]) -> String {
    let mut out = String::new();
    for token in tokens {
        token.write(&mut out);
    }
    out
}

/// `tokens` with every call to a library body replaced by that body's tokens (its hole by the
/// call's filler), down to primitives, slot calls and holes. `bodies` are the library so far; a
/// body only calls earlier ones, and a call to a body not yet in `bodies` is kept as it is.
pub(super) fn expand(tokens: &[Tok], bodies: &[Vec<Tok>], out: &mut Vec<Tok>) {
    for &token in tokens {
        match token.library_call() {
            Some((index, filler)) if index < bodies.len() => {
                // Body `index` calls only bodies before it, so the recursion ends.
                for &inner in &bodies[index] {
                    match filler {
                        // The filler belongs to the caller, which may call later bodies.
                        Some(filler) if inner.is_hole() => expand(&[filler], bodies, out),
                        _ => expand(&[inner], &bodies[..index], out),
                    }
                }
            }
            _ => out.push(token),
        }
    }
}

/// The grammar-induction prior's costs (docs/modelling.md §4.5) in nats, as positive numbers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Costs {
    /// −ln((1 − p_call)/5), a primitive (and a hole in a body).
    pub primitive: f64,
    /// −ln p_call, a call to a slot or a library body.
    pub call: f64,
    /// −ln(1 − p_end), paid by every token of a routine but its last.
    pub go_on: f64,
    /// −ln p_end, paid once by every non-empty routine.
    pub end: f64,
}

impl Costs {
    pub(super) fn new(p_call: f64, p_end: f64) -> Costs {
        Costs {
            primitive: -((1.0 - p_call) / crate::models::gi::N_PRIMITIVES).ln(),
            call: -p_call.ln(),
            go_on: -(1.0 - p_end).ln(),
            end: -p_end.ln(),
        }
    }

    /// The description length of a routine (or a library body) holding `tokens`: its tokens'
    /// costs plus the ending terms; an empty routine costs nothing.
    pub(super) fn routine(&self, tokens: &[Tok]) -> f64 {
        let units: usize = tokens.iter().map(|t| t.units()).sum();
        if units == 0 {
            return 0.0;
        }
        tokens.iter().map(|t| t.cost(self)).sum::<f64>()
            + (units - 1) as f64 * self.go_on
            + self.end
    }

    /// What one use of `body` saves where it replaces a run inside a routine: the run's tokens
    /// and length become one call (with its filler, when the body has a hole).
    pub(super) fn per_use(&self, body: &[Tok]) -> f64 {
        let units: usize = body.iter().map(|t| t.units()).sum();
        let fixed: f64 = body
            .iter()
            .filter(|t| !t.is_hole())
            .map(|t| t.cost(self))
            .sum();
        let kept = if body.iter().any(|t| t.is_hole()) {
            2
        } else {
            1
        };
        fixed - self.call + (units - kept) as f64 * self.go_on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_print_in_the_compact_form_with_library_calls_in_brackets() {
        let w = Tok::from_instr(Instr::Act(Action::Walk));
        let call = Tok::from_instr(Instr::Call(2));
        let body = [
            w,
            Tok::HOLE,
            call,
            Tok::library(0),
            Tok::applied(11, Tok::library(3)),
        ];
        assert_eq!(text(&body), "W?2[1][12:[4]]");
        assert_eq!(call.retarget(2, 5), Tok::library(5));
        assert_eq!(
            Tok::applied(1, call).retarget(2, 5),
            Tok::applied(1, Tok::library(5))
        );
        assert!(!Tok::applied(1, w).is_atom());
    }

    #[test]
    fn expansion_replaces_library_calls_by_their_bodies_down_to_primitives() {
        let [w, j, l, s] = [Action::Walk, Action::Jump, Action::Left, Action::Light]
            .map(|a| Tok::from_instr(Instr::Act(a)));
        let bodies = vec![
            vec![j, s],
            vec![w, Tok::HOLE, l],
            vec![Tok::library(0), Tok::applied(1, Tok::library(0))],
        ];
        let mut out = Vec::new();
        expand(&[Tok::library(2), w], &bodies, &mut out);
        assert_eq!(text(&out), "JSWJSLW");
    }

    #[test]
    fn a_routine_costs_its_tokens_and_its_ending_terms() {
        let costs = Costs::new(0.5, 0.1);
        let w = Tok::from_instr(Instr::Act(Action::Walk));
        let one = Tok::from_instr(Instr::Call(1));
        // WWWS: 4 × ln 10 + 3 × −ln 0.9 + ln 10 (docs/modelling.md §4.5's worked reference).
        let expected = 5.0 * 10f64.ln() - 3.0 * 0.9f64.ln();
        assert!((costs.routine(&[w, w, w, w]) - expected).abs() < 1e-12);
        let applied = costs.routine(&[Tok::applied(0, one)]);
        assert!((applied - (2.0 * 2f64.ln() - 0.9f64.ln() + 10f64.ln())).abs() < 1e-12);
    }
}
