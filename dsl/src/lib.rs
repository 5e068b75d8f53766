#![doc = include_str!("../README.md")]

pub mod canon;
pub mod compact;
pub mod error;
pub mod interp;
pub mod map;
pub mod metrics;
pub mod program;
pub mod readable;
pub mod state;
pub mod steps;
pub mod tasks;

pub use error::{ExecError, MapError, ParseError, ProgramError};
pub use interp::{Effect, Outcome, RunOptions, TraceStep, run};
pub use map::Task;
pub use metrics::Metrics;
pub use program::{Action, Instr, Limits, Program};
pub use state::{Direction, LightMode, State};
pub use steps::{StepClasses, step_classes};

/// Which text form a program is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Compact,
    Readable,
}

/// Parses a program in either form, detecting which unless `form` is given, and checks it
/// against `limits`.
pub fn parse_program(
    text: &str,
    form: Option<Form>,
    limits: &Limits,
) -> Result<Program, ParseError> {
    let form = form.unwrap_or(if compact::looks_compact(text) {
        Form::Compact
    } else {
        Form::Readable
    });
    match form {
        Form::Compact => compact::parse(text.trim(), limits),
        Form::Readable => readable::parse(text, limits),
    }
}
