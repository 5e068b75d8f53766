//! Programs as token sequences, the grammar mask that makes the model a distribution over
//! exactly those sequences, and tasks as per-cell feature grids.
//!
//! A program with `slots` subroutine slots is written `BOS main [SEP p1 [SEP p2 ...]] EOS`, with
//! trailing empty routines left out. Every program has exactly one such sequence, and the grammar
//! mask allows exactly the sequences of programs (at most `slots` separators, no separator right
//! before EOS, calls only to existing slots, at most `max_tokens` tokens between BOS and EOS), so
//! the model's probabilities over programs sum to one.

use dsl::{Action, Instr, Program, Task};

use crate::neural::NeuralError;

/// Padding (never predicted; targets at padded positions are ignored).
pub const PAD: u32 = 0;
/// Start of sequence (input only).
pub const BOS: u32 = 1;
/// End of sequence.
pub const EOS: u32 = 2;
/// Routine separator.
pub const SEP: u32 = 3;
/// First primitive token; primitives follow in `Action::ALL` order.
pub const FIRST_ACTION: u32 = 4;
/// First call token (call to slot 1).
pub const FIRST_CALL: u32 = FIRST_ACTION + Action::ALL.len() as u32;

/// The token vocabulary for programs with a given number of subroutine slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Vocab {
    /// Subroutine slots (1..=9).
    pub slots: usize,
    /// Most tokens between BOS and EOS (instructions plus separators).
    pub max_tokens: usize,
}

impl Vocab {
    pub fn new(slots: usize, max_tokens: usize) -> Result<Vocab, NeuralError> {
        if !(1..=9).contains(&slots) {
            return Err(NeuralError::Invalid(format!(
                "{slots} subroutine slots: the vocabulary supports 1 to 9"
            )));
        }
        if max_tokens < 2 {
            return Err(NeuralError::Invalid(format!(
                "max_tokens must be at least 2, not {max_tokens}"
            )));
        }
        Ok(Vocab { slots, max_tokens })
    }

    /// Number of token ids.
    pub fn size(&self) -> usize {
        FIRST_CALL as usize + self.slots
    }

    /// Longest input sequence (BOS plus content), which is also the number of target positions.
    pub fn max_len(&self) -> usize {
        self.max_tokens + 1
    }

    /// The token of one instruction.
    pub fn instr_token(&self, instr: Instr) -> Result<u32, NeuralError> {
        match instr {
            Instr::Act(action) => {
                let index = Action::ALL.iter().position(|&a| a == action).unwrap_or(0);
                Ok(FIRST_ACTION + index as u32)
            }
            Instr::Call(slot) if slot >= 1 && (slot as usize) <= self.slots => {
                Ok(FIRST_CALL + slot as u32 - 1)
            }
            Instr::Call(slot) => Err(NeuralError::Invalid(format!(
                "a call to slot {slot} is outside the model's {} slots",
                self.slots
            ))),
        }
    }

    /// `BOS ... EOS` of `program`.
    pub fn encode(&self, program: &Program) -> Result<Vec<u32>, NeuralError> {
        if program.routines.len() > self.slots + 1 {
            return Err(NeuralError::Invalid(format!(
                "`{}` has {} subroutine slots; the model has {}",
                program.to_compact(),
                program.routines.len() - 1,
                self.slots
            )));
        }
        let used = program
            .routines
            .iter()
            .rposition(|r| !r.is_empty())
            .map_or(1, |last| last + 1);
        let mut tokens = vec![BOS];
        for (index, routine) in program.routines[..used].iter().enumerate() {
            if index > 0 {
                tokens.push(SEP);
            }
            for &instr in routine {
                tokens.push(self.instr_token(instr)?);
            }
        }
        if tokens.len() - 1 > self.max_tokens {
            return Err(NeuralError::Invalid(format!(
                "`{}` has {} tokens; the model allows at most {}",
                program.to_compact(),
                tokens.len() - 1,
                self.max_tokens
            )));
        }
        tokens.push(EOS);
        Ok(tokens)
    }

    /// The program of a `BOS ... EOS` sequence, with `slots` slots.
    pub fn decode(&self, tokens: &[u32]) -> Result<Program, NeuralError> {
        let bad = || NeuralError::Invalid(format!("{tokens:?} is not a program sequence"));
        let inner = tokens
            .strip_prefix(&[BOS])
            .and_then(|t| t.strip_suffix(&[EOS]))
            .ok_or_else(bad)?;
        let mut program = Program::empty(self.slots);
        let mut routine = 0;
        for &token in inner {
            match token {
                SEP => {
                    routine += 1;
                    if routine > self.slots {
                        return Err(bad());
                    }
                }
                t if (FIRST_ACTION..FIRST_CALL).contains(&t) => {
                    program.routines[routine]
                        .push(Instr::Act(Action::ALL[(t - FIRST_ACTION) as usize]));
                }
                t if t >= FIRST_CALL && ((t - FIRST_CALL) as usize) < self.slots => {
                    program.routines[routine].push(Instr::Call((t - FIRST_CALL + 1) as u8));
                }
                _ => return Err(bad()),
            }
        }
        Ok(program)
    }

    /// Writes into `allowed` (length `size()`) which tokens may follow the sequence `prefix`
    /// (starting with BOS): the grammar of program sequences.
    pub fn allowed_after(&self, prefix: &[u32], allowed: &mut [bool]) {
        let emitted = prefix.len().saturating_sub(1);
        let separators = prefix.iter().filter(|&&t| t == SEP).count();
        let last = prefix.last().copied().unwrap_or(BOS);
        self.allowed_in_state(emitted, separators, last, allowed);
    }

    /// [`Vocab::allowed_after`] from the state of a prefix alone: `emitted` tokens after BOS,
    /// `separators` of them SEP, the last one `last` (BOS for the bare BOS).
    pub fn allowed_in_state(
        &self,
        emitted: usize,
        separators: usize,
        last: u32,
        allowed: &mut [bool],
    ) {
        allowed.iter_mut().for_each(|a| *a = false);
        if last == EOS {
            return;
        }
        // A separator is followed by a non-empty routine (trailing empty routines are not
        // written), so it needs room for one more token.
        allowed[EOS as usize] = last != SEP;
        if emitted < self.max_tokens {
            for token in FIRST_ACTION..self.size() as u32 {
                allowed[token as usize] = true;
            }
        }
        allowed[SEP as usize] = separators < self.slots && emitted + 2 <= self.max_tokens;
    }

    /// The additive grammar mask of a batch: `(batch, len, vocab)` values, 0 where the target
    /// token at that position is allowed and `MASKED` where not, for inputs `inputs[b]` (each
    /// starting with BOS, padded with PAD to `len`).
    pub fn mask(&self, inputs: &[Vec<u32>], len: usize) -> Vec<f32> {
        let v = self.size();
        let mut out = vec![0f32; inputs.len() * len * v];
        let mut allowed = vec![false; v];
        for (b, input) in inputs.iter().enumerate() {
            let real = input.iter().take_while(|&&t| t != PAD).count();
            for pos in 0..len {
                let row = &mut out[(b * len + pos) * v..(b * len + pos + 1) * v];
                if pos < real {
                    self.allowed_after(&input[..=pos], &mut allowed);
                    for (value, &ok) in row.iter_mut().zip(&allowed) {
                        if !ok {
                            *value = MASKED;
                        }
                    }
                }
            }
        }
        out
    }
}

/// The additive logit of a forbidden token: large enough that its probability is exactly zero in
/// f32, finite so that gradients stay finite.
pub const MASKED: f32 = -1e9;

/// Features of one map cell (see [`task_features`]).
pub const CELL_FEATURES: usize = 8;

/// The task as a grid of per-cell features, in the robot's frame at the start so that maps that
/// differ by a rotation look alike: `(cells, CELL_FEATURES)` row-major, one row per cell:
/// height / 4, height relative to the start cell / 4, light tile, start cell, cells ahead of the
/// start / 8, cells to the left / 8, |ahead| + |left| distance / 8, number of lights / 8.
pub fn task_features(task: &Task) -> Vec<f32> {
    let mut out = Vec::with_capacity(task.width * task.height * CELL_FEATURES);
    let start_height = f32::from(task.height_at(task.start_x, task.start_y));
    let (fx, fy) = task.start_direction.delta();
    // Left of heading (fx, fy) is (-fy, fx) (docs/semantics.md §1.3: a left turn is
    // counter-clockwise).
    let (lx, ly) = (-fy, fx);
    for y in 0..task.height {
        for x in 0..task.width {
            let dx = x as i64 - task.start_x as i64;
            let dy = y as i64 - task.start_y as i64;
            let ahead = (dx * fx + dy * fy) as f32;
            let left = (dx * lx + dy * ly) as f32;
            let h = f32::from(task.height_at(x, y));
            out.extend_from_slice(&[
                h / 4.0,
                (h - start_height) / 4.0,
                f32::from(u8::from(task.light_at(x, y).is_some())),
                f32::from(u8::from(dx == 0 && dy == 0)),
                ahead / 8.0,
                left / 8.0,
                (ahead.abs() + left.abs()) / 8.0,
                task.n_lights as f32 / 8.0,
            ]);
        }
    }
    out
}
