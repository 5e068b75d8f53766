//! The corpus as the search sees it: every routine of every program as a token sequence, and
//! the rewriting of one library body's uses into it.

use crate::choice::ObservedProgram;

use super::token::{Costs, Tok};

/// One routine of one program.
#[derive(Debug, Clone)]
pub(super) struct Routine {
    /// Index of its program in [`Corpus::programs`].
    pub program: usize,
    /// 0 for main, k for slot k.
    pub slot: usize,
    pub tokens: Vec<Tok>,
}

/// Who wrote a program, for which task.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProgramInfo {
    pub participant: u32,
    pub task: usize,
}

/// One rewritten use of a body.
#[derive(Debug, Clone, Copy)]
pub(super) struct Use {
    pub program: usize,
    /// The body replaced the whole of a subroutine, which now stands for the body.
    pub whole_subroutine: bool,
    /// The token that filled the hole, for a body with one.
    pub filler: Option<Tok>,
}

#[derive(Debug, Clone)]
pub(super) struct Corpus {
    pub programs: Vec<ProgramInfo>,
    /// All routines, program by program, main first.
    pub routines: Vec<Routine>,
    /// The routines of program p are `routines[first[p]..first[p + 1]]`.
    first: Vec<usize>,
}

impl Corpus {
    pub(super) fn new(observed: &[ObservedProgram]) -> Corpus {
        let mut corpus = Corpus {
            programs: Vec::with_capacity(observed.len()),
            routines: Vec::new(),
            first: vec![0],
        };
        for (index, observation) in observed.iter().enumerate() {
            corpus.programs.push(ProgramInfo {
                participant: observation.participant,
                task: observation.task,
            });
            for (slot, routine) in observation.program.routines.iter().enumerate() {
                corpus.routines.push(Routine {
                    program: index,
                    slot,
                    tokens: routine.iter().map(|&i| Tok::from_instr(i)).collect(),
                });
            }
            corpus.first.push(corpus.routines.len());
        }
        corpus
    }

    /// The description length of every routine of every program.
    pub(super) fn description_length(&self, costs: &Costs) -> f64 {
        self.routines.iter().map(|r| costs.routine(&r.tokens)).sum()
    }

    /// The routines whose tokens change when `body` is rewritten: those with a use, and the
    /// other routines of a program that call a subroutine the body replaces whole. Ascending.
    pub(super) fn affected(&self, body: &[Tok]) -> Vec<usize> {
        let mut affected = Vec::new();
        for (r, routine) in self.routines.iter().enumerate() {
            if !uses_of(&routine.tokens, body).is_empty() {
                affected.push(r);
                if let Some(slot) = self.replaced_slot(routine, body) {
                    let program = routine.program;
                    affected.extend((self.first[program]..self.first[program + 1]).filter(|&s| {
                        s != r && self.routines[s].tokens.iter().any(|t| calls(*t, slot))
                    }));
                }
            }
        }
        affected.sort_unstable();
        affected.dedup();
        affected
    }

    /// Rewrites every use of `body` as library body `index`, non-overlapping and left to right
    /// in every routine; a subroutine that is exactly the body becomes the body (its slot's calls
    /// are turned into calls to the library). Returns the uses in routine order.
    pub(super) fn rewrite(&mut self, body: &[Tok], index: usize) -> Vec<Use> {
        let mut all = Vec::new();
        let mut replaced = Vec::new();
        for r in 0..self.routines.len() {
            let starts = uses_of(&self.routines[r].tokens, body);
            if starts.is_empty() {
                continue;
            }
            let program = self.routines[r].program;
            if let Some(slot) = self.replaced_slot(&self.routines[r], body) {
                self.routines[r].tokens.clear();
                replaced.push((program, slot));
                all.push(Use {
                    program,
                    whole_subroutine: true,
                    filler: None,
                });
                continue;
            }
            let hole = body.iter().position(|t| t.is_hole());
            let old = std::mem::take(&mut self.routines[r].tokens);
            let mut tokens = Vec::with_capacity(old.len());
            let mut at = 0;
            for start in starts {
                tokens.extend_from_slice(&old[at..start]);
                let filler = hole.map(|h| old[start + h]);
                tokens.push(match filler {
                    Some(filler) => Tok::applied(index, filler),
                    None => Tok::library(index),
                });
                all.push(Use {
                    program,
                    whole_subroutine: false,
                    filler,
                });
                at = start + body.len();
            }
            tokens.extend_from_slice(&old[at..]);
            self.routines[r].tokens = tokens;
        }
        // After every use is rewritten, so that the uses are those counted before the rewrite.
        for (program, slot) in replaced {
            for s in self.first[program]..self.first[program + 1] {
                for token in &mut self.routines[s].tokens {
                    *token = token.retarget(slot, index);
                }
            }
        }
        all
    }

    /// The slot that `routine` is, when `body` (without a hole) replaces it whole.
    fn replaced_slot(&self, routine: &Routine, body: &[Tok]) -> Option<usize> {
        (routine.slot > 0 && routine.tokens == body).then_some(routine.slot)
    }
}

/// Whether `token` calls slot `slot`, itself or as an applied call's filler.
fn calls(token: Tok, slot: usize) -> bool {
    token.retarget(slot, 0) != token
}

/// Whether `run` matches `body`: equal, except that a hole matches any atom.
pub(super) fn matches(run: &[Tok], body: &[Tok]) -> bool {
    run.len() == body.len()
        && run
            .iter()
            .zip(body)
            .all(|(&t, &b)| t == b || (b.is_hole() && t.is_atom()))
}

/// The starts of the uses of `body` in `tokens`, non-overlapping, left to right.
pub(super) fn uses_of(tokens: &[Tok], body: &[Tok]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut start = 0;
    while start + body.len() <= tokens.len() {
        if matches(&tokens[start..start + body.len()], body) {
            starts.push(start);
            start += body.len();
        } else {
            start += 1;
        }
    }
    starts
}
