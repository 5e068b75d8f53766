//! The program AST: a main routine plus numbered subroutine slots (docs/design.md §2).

use serde::{Deserialize, Serialize};

use crate::error::ProgramError;

/// A primitive action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Walk,
    Jump,
    Left,
    Right,
    Light,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Walk,
        Action::Jump,
        Action::Left,
        Action::Right,
        Action::Light,
    ];

    /// The letter of the published data (docs/semantics.md §3.1).
    pub fn letter(self) -> char {
        match self {
            Action::Light => 'S',
            Action::Jump => 'J',
            Action::Walk => 'W',
            Action::Right => 'R',
            Action::Left => 'L',
        }
    }

    pub fn from_letter(letter: char) -> Option<Action> {
        Some(match letter {
            'S' => Action::Light,
            'J' => Action::Jump,
            'W' => Action::Walk,
            'R' => Action::Right,
            'L' => Action::Left,
            _ => return None,
        })
    }

    /// The word used by the readable form.
    pub fn word(self) -> &'static str {
        match self {
            Action::Walk => "walk",
            Action::Jump => "jump",
            Action::Left => "left",
            Action::Right => "right",
            Action::Light => "light",
        }
    }
}

/// One token of a routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Instr {
    Act(Action),
    /// A call to subroutine slot `k` (1-based).
    Call(u8),
}

impl Instr {
    /// The compact-form character of this token.
    pub fn letter(self) -> char {
        match self {
            Instr::Act(action) => action.letter(),
            Instr::Call(slot) => char::from(b'0' + slot),
        }
    }
}

/// Limits on program shape; an experiment may configure them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Number of subroutine slots (the reference task has 4). At most 9.
    pub subroutines: usize,
    /// Longest allowed routine, in tokens.
    pub max_routine_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        // The reference editor had no length limit (docs/semantics.md §2.5); 200 tokens per routine
        // is far beyond any program in the data and keeps hostile input small.
        Limits {
            subroutines: 4,
            max_routine_len: 200,
        }
    }
}

/// A program: `routines[0]` is main, `routines[k]` is subroutine slot k.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Program {
    pub routines: Vec<Vec<Instr>>,
}

impl Program {
    /// An empty program with `subroutines` empty slots.
    pub fn empty(subroutines: usize) -> Program {
        Program {
            routines: vec![Vec::new(); subroutines + 1],
        }
    }

    pub fn main(&self) -> &[Instr] {
        &self.routines[0]
    }

    pub fn n_subroutines(&self) -> usize {
        self.routines.len() - 1
    }

    /// Instruction Count, the figure participants see: tokens over all routines, calls included
    /// (the metric T of `docs/modelling.md` §4.5).
    pub fn instruction_count(&self) -> u32 {
        self.routines
            .iter()
            .map(|routine| routine.len() as u32)
            .sum()
    }

    /// Checks the program against `limits`: slot count, routine lengths and call targets.
    pub fn check(&self, limits: &Limits) -> Result<(), ProgramError> {
        if self.routines.is_empty() || self.n_subroutines() > limits.subroutines {
            return Err(ProgramError::TooManySubroutines {
                found: self.routines.len().saturating_sub(1),
                limit: limits.subroutines,
            });
        }
        for (routine, body) in self.routines.iter().enumerate() {
            if body.len() > limits.max_routine_len {
                return Err(ProgramError::RoutineTooLong {
                    routine: routine_name(routine),
                    len: body.len(),
                    limit: limits.max_routine_len,
                });
            }
            for instr in body {
                if let Instr::Call(slot) = *instr
                    && (slot == 0 || slot as usize > limits.subroutines)
                {
                    return Err(ProgramError::NoSuchSubroutine {
                        routine: routine_name(routine),
                        slot,
                        limit: limits.subroutines,
                    });
                }
            }
        }
        Ok(())
    }

    /// Pads the program to `subroutines` slots (dropping none).
    pub fn with_slots(mut self, subroutines: usize) -> Program {
        if self.routines.len() < subroutines + 1 {
            self.routines.resize(subroutines + 1, Vec::new());
        }
        self
    }

    /// The compact form, for example `1LJL1RJR1|WWWS|||`.
    pub fn to_compact(&self) -> String {
        crate::compact::print(self)
    }
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_compact())
    }
}

/// `main` or `p1`..`p9`, as used in messages and the readable form.
pub fn routine_name(routine: usize) -> String {
    if routine == 0 {
        "main".to_owned()
    } else {
        format!("p{routine}")
    }
}
