//! What makes an experiment file unusable: every problem found, each with its key.

use std::fmt;

/// An experiment file that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExperimentError {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// One problem: the key (`tasks[2].level`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl ExperimentError {
    /// An error about the file as a whole (it cannot be read, or is not TOML), with no key.
    pub(super) fn whole_file(file: &str, message: String) -> ExperimentError {
        ExperimentError {
            file: file.to_owned(),
            problems: vec![Problem {
                key: String::new(),
                message,
            }],
        }
    }
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if problem.key.is_empty() {
                write!(f, "{}: {}", self.file, problem.message)?;
            } else {
                write!(f, "{}: {}: {}", self.file, problem.key, problem.message)?;
            }
        }
        Ok(())
    }
}
