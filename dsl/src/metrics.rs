//! Program metrics in the notation of docs/modelling.md §4.5.

use serde::{Deserialize, Serialize};

use crate::error::ExecError;
use crate::map::Task;
use crate::program::{Instr, Program};
use crate::steps::step_classes;

/// Structural metrics of a program; `s` needs a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// T: tokens over all routines.
    pub t: u32,
    /// P: primitive tokens.
    pub p: u32,
    /// n: call tokens.
    pub n: u32,
    /// c_k: calls to subroutine k, for k = 1..slots (index 0 is subroutine 1).
    pub calls: Vec<u32>,
    /// K: subroutines with c_k > 0.
    pub k: u32,
    /// R: non-empty routines (main plus non-empty subroutines).
    pub r: u32,
}

impl Metrics {
    pub fn of(program: &Program) -> Metrics {
        let mut calls = vec![0u32; program.n_subroutines()];
        let (mut t, mut p, mut n) = (0, 0, 0);
        for instr in program.routines.iter().flatten() {
            t += 1;
            match *instr {
                Instr::Act(_) => p += 1,
                Instr::Call(slot) => {
                    n += 1;
                    if let Some(count) = calls.get_mut(slot as usize - 1) {
                        *count += 1;
                    }
                }
            }
        }
        let k = calls.iter().filter(|&&c| c > 0).count() as u32;
        let r = program
            .routines
            .iter()
            .filter(|body| !body.is_empty())
            .count() as u32;
        Metrics {
            t,
            p,
            n,
            calls,
            k,
            r,
        }
    }

    /// Main calls at least one subroutine.
    pub fn uses_subroutine(program: &Program) -> bool {
        program
            .main()
            .iter()
            .any(|instr| matches!(instr, Instr::Call(_)))
    }
}

/// S: the step cost of a program that solves `task` (docs/semantics.md §1.8).
pub fn step_cost(task: &Task, program: &Program) -> Result<u32, ExecError> {
    Ok(step_classes(task, program)?.cost())
}
