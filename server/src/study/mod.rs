//! What a participant can do, step by step: the use cases behind the participant API.
//!
//! Every function takes the store and the session's experiment, checks that the request fits the
//! session's current step, writes through the store (one transaction per state change), and
//! answers with where the participant is now. Nothing is kept in memory between requests: the
//! session's step index in the database is the whole of "where the participant is".
//!
//! Retries are safe: repeating a request that already took effect (same run number, same submit,
//! a continue for a step already passed) answers as before and stores nothing new.

mod error;
mod events;
pub mod lifecycle;
mod programs;
mod progress;
mod session;
mod storable;
pub mod views;

pub use error::StudyError;
pub use events::events;
pub use programs::{run, submit};
pub use progress::{complete, consent, continue_step, questionnaire, skip};
pub use session::{Arrival, Entered, check_version, enter, view};

/// Limits on what a client may send, beyond the request body limit.
pub mod limits {
    pub const MAX_PARAMS: usize = 64;
    pub const MAX_PARAM_NAME: usize = 128;
    pub const MAX_PARAM_VALUE: usize = 2048;
    pub const MAX_PROGRAM_CHARS: usize = 20_000;
    /// The run modes the browser app sends: the Run button, quick run and single steps.
    pub const RUN_MODES: [&str; 3] = ["run", "quick_run", "step"];
    pub const MAX_EVENTS_PER_BATCH: usize = 1000;
    pub const MAX_EVENT_TYPE_CHARS: usize = 64;
    /// Largest event `data`, in bytes of its JSON text; a larger event is refused on its own.
    pub const MAX_EVENT_DATA_BYTES: usize = 64 * 1024;
    pub const MAX_ANSWER_CHARS: usize = 10_000;
    /// Largest `seq` or `run` number accepted.
    pub const MAX_SEQ: i64 = 10_000_000;
}
