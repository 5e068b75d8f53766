//! The interpreter (docs/semantics.md §1.7): the only implementation of what a program does.
//!
//! Execution uses an explicit frame stack, never native recursion, and a token budget (1000 by
//! default, call tokens included) so that recursive programs always stop.

use serde::{Deserialize, Serialize};

use crate::map::Task;
use crate::program::{Instr, Program};
use crate::state::{LightMode, State};

/// The reference interpreter's token budget.
pub const DEFAULT_BUDGET: u32 = 1000;

/// How to run a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    pub light: LightMode,
    /// Decremented before every token; processing stops once it reaches 0, so at most
    /// `budget - 1` tokens are processed.
    pub budget: u32,
    /// Record a trace entry for every executed token.
    pub trace: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            light: LightMode::Idempotent,
            budget: DEFAULT_BUDGET,
            trace: false,
        }
    }
}

/// What one executed token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// A primitive that changed the state.
    Changed,
    /// A primitive that changed nothing (a blocked move, or Light where nothing lights).
    NoOp,
    /// A call token; the callee's tokens follow at `depth + 1`.
    Call,
}

/// One executed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    /// 0 for main, k for subroutine k.
    pub routine: u8,
    /// Index of the token within its routine.
    pub position: u16,
    /// Call depth: 0 in main.
    pub depth: u16,
    pub instr: Instr,
    pub before: State,
    pub after: State,
    pub effect: Effect,
}

/// The result of running a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Every light was lit when execution ended.
    pub solved: bool,
    /// Primitives executed, no-ops included (the game's "step count").
    pub steps: u32,
    /// Primitives executed that changed the state.
    pub effective_steps: u32,
    /// Tokens processed, call tokens included.
    pub tokens: u32,
    /// Execution stopped because the budget ran out.
    pub budget_exhausted: bool,
    pub final_state: State,
    /// Empty unless `RunOptions::trace` was set.
    pub trace: Vec<TraceStep>,
}

#[derive(Clone, Copy)]
struct Frame {
    routine: usize,
    position: usize,
}

/// Runs `program` on `task` (docs/semantics.md §1.7): the terminal check comes before every token,
/// and the budget is decremented before every token.
pub fn run(task: &Task, program: &Program, options: &RunOptions) -> Outcome {
    let mut state = task.start_state();
    let mut budget = options.budget as i64;
    let mut outcome = Outcome {
        solved: false,
        steps: 0,
        effective_steps: 0,
        tokens: 0,
        budget_exhausted: false,
        final_state: state,
        trace: Vec::new(),
    };
    let mut stack = vec![Frame {
        routine: 0,
        position: 0,
    }];
    'run: loop {
        let depth = stack.len().saturating_sub(1);
        let Some(frame) = stack.last_mut() else { break };
        let Some(&instr) = program.routines[frame.routine].get(frame.position) else {
            stack.pop();
            continue;
        };
        if task.is_terminal(&state) {
            break 'run;
        }
        budget -= 1;
        if budget <= 0 {
            outcome.budget_exhausted = true;
            break 'run;
        }
        let (routine, position) = (frame.routine, frame.position);
        frame.position += 1;
        outcome.tokens += 1;
        let before = state;
        let effect = match instr {
            Instr::Act(action) => {
                outcome.steps += 1;
                match state.apply(task, action, options.light) {
                    Some(next) => {
                        state = next;
                        outcome.effective_steps += 1;
                        Effect::Changed
                    }
                    None => Effect::NoOp,
                }
            }
            Instr::Call(slot) => {
                // A call to a slot the program lacks does nothing, like a call to an empty one;
                // `Program::check` rejects such programs before they get here.
                if (slot as usize) < program.routines.len() {
                    stack.push(Frame {
                        routine: slot as usize,
                        position: 0,
                    });
                }
                Effect::Call
            }
        };
        if options.trace {
            outcome.trace.push(TraceStep {
                routine: routine as u8,
                position: position as u16,
                depth: depth as u16,
                instr,
                before,
                after: state,
                effect,
            });
        }
    }
    outcome.solved = task.is_terminal(&state);
    outcome.final_state = state;
    outcome
}
