//! Step classes (docs/semantics.md §1.8) and the bounded walk without halting that they and
//! canonicalisation use.

use serde::{Deserialize, Serialize};

use crate::error::ExecError;
use crate::interp::{RunOptions, run};
use crate::map::Task;
use crate::program::{Instr, Program};
use crate::state::{LightMode, State};

/// Most tokens the walk past the terminal state may process before it is called runaway.
/// Solving programs finish after the goal in far fewer (recursion is cut at the goal).
pub const WALK_CAP: usize = 100_000;

/// The four classes of executed primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StepClasses {
    pub step: u32,
    pub step_noop: u32,
    pub step_post: u32,
    pub step_post_noop: u32,
}

impl StepClasses {
    /// The models' step cost S = step + step_noop.
    pub fn cost(&self) -> u32 {
        self.step + self.step_noop
    }
}

/// What the walk does with a recursive call made once the state is terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TerminalRecursion {
    /// Skip the call and go on (the step counter).
    Skip,
    /// Stop the whole walk (canonicalisation's liveness simulation).
    StopAll,
}

/// One token visited by the walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Visit {
    pub routine: usize,
    pub position: usize,
    pub instr: Instr,
    /// The state was terminal before the token ran.
    pub post_terminal: bool,
    /// For primitives: the state changed. Always true for calls.
    pub effective: bool,
}

/// Walks a program that solves `task` without the step limit and without halting at the goal.
/// Fails with `Unsolved` for any program that does not solve the task (checked first with the
/// bounded interpreter), so the walk never runs unbounded.
pub(crate) fn walk_unhalted(
    task: &Task,
    program: &Program,
    policy: TerminalRecursion,
    visit: impl FnMut(Visit),
) -> Result<(), ExecError> {
    if !run(task, program, &RunOptions::default()).solved {
        return Err(ExecError::Unsolved);
    }
    walk_capped(task, program, policy, visit)
}

/// The walk of [`walk_unhalted`] without its first check that the program solves the task
/// within the interpreter's budget. Canonicalisation uses it on a program that pass 1 rewrote
/// from a checked one: the same primitives in the same order, but with more call tokens, so it
/// may need more than the budget although it reaches the goal. Still capped at [`WALK_CAP`].
pub(crate) fn walk_capped(
    task: &Task,
    program: &Program,
    policy: TerminalRecursion,
    mut visit: impl FnMut(Visit),
) -> Result<(), ExecError> {
    let mut state: State = task.start_state();
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    let mut tokens = 0usize;
    while let Some(frame) = stack.last_mut() {
        let (routine, position) = *frame;
        let Some(&instr) = program.routines[routine].get(position) else {
            stack.pop();
            continue;
        };
        frame.1 += 1;
        tokens += 1;
        if tokens > WALK_CAP {
            return Err(ExecError::TooLong(WALK_CAP));
        }
        let post_terminal = task.is_terminal(&state);
        match instr {
            Instr::Act(action) => {
                let next = state.apply(task, action, LightMode::Idempotent);
                visit(Visit {
                    routine,
                    position,
                    instr,
                    post_terminal,
                    effective: next.is_some(),
                });
                if let Some(next) = next {
                    state = next;
                }
            }
            Instr::Call(slot) => {
                let slot = slot as usize;
                let recursive = stack.iter().any(|&(r, _)| r == slot);
                if recursive && post_terminal {
                    match policy {
                        TerminalRecursion::Skip => continue,
                        TerminalRecursion::StopAll => return Ok(()),
                    }
                }
                visit(Visit {
                    routine,
                    position,
                    instr,
                    post_terminal,
                    effective: true,
                });
                if slot < program.routines.len() {
                    stack.push((slot, 0));
                }
            }
        }
    }
    Ok(())
}

/// Classifies every executed primitive of a program that solves `task` (docs/semantics.md §1.8).
pub fn step_classes(task: &Task, program: &Program) -> Result<StepClasses, ExecError> {
    let mut classes = StepClasses::default();
    walk_unhalted(task, program, TerminalRecursion::Skip, |visit| {
        if let Instr::Act(_) = visit.instr {
            let counter = match (visit.post_terminal, visit.effective) {
                (false, true) => &mut classes.step,
                (false, false) => &mut classes.step_noop,
                (true, true) => &mut classes.step_post,
                (true, false) => &mut classes.step_post_noop,
            };
            *counter += 1;
        }
    })?;
    Ok(classes)
}
