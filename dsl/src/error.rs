//! Error types of the `dsl` crate.

use thiserror::Error;

/// A level file that cannot be used; names the level and, where it can, the cell.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MapError {
    #[error("{file}: invalid JSON: {message}")]
    Json { file: String, message: String },
    #[error("{level}: {message}")]
    Level { level: String, message: String },
    #[error("{level}, cell (x = {x}, y = {y}): {message}")]
    Cell {
        level: String,
        x: usize,
        y: usize,
        message: String,
    },
    #[error("{file} has {count} levels, so there is no level {index}")]
    NoSuchLevel {
        file: String,
        index: usize,
        count: usize,
    },
}

/// A program text that does not parse, with a 1-based position.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// A program that breaks the configured limits.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProgramError {
    #[error("the program has {found} subroutine slots; the limit is {limit}")]
    TooManySubroutines { found: usize, limit: usize },
    #[error("{routine} has {len} instructions; the limit is {limit}")]
    RoutineTooLong {
        routine: String,
        len: usize,
        limit: usize,
    },
    #[error("{routine} calls subroutine {slot}, but only 1 to {limit} exist")]
    NoSuchSubroutine {
        routine: String,
        slot: u8,
        limit: usize,
    },
}

/// A program that does not solve its task where a solving program is required (step classes,
/// canonicalisation).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ExecError {
    #[error("the program does not solve the task")]
    Unsolved,
    #[error("the program needs more than {0} instructions to finish after solving the task")]
    TooLong(usize),
}
