//! Error type of the `analysis` crate: one variant per kind of failure, so that callers can tell
//! bad input (an unknown model, too few participants for the folds) from a broken file or an
//! internal inconsistency without reading messages.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnalysisError {
    /// A file or folder could not be opened, read, created or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV layer could not read a programs file's header.
    #[error("cannot read programs file: {0}")]
    Csv(#[from] csv::Error),
    /// A programs file lacks a column the analysis needs.
    #[error("cannot read programs file: missing column `{0}`")]
    MissingColumn(&'static str),
    /// A programs file has no row that could be used as an observation.
    #[error("{} has no usable non-skipped rows", path.display())]
    NoUsableRows { path: PathBuf },
    /// A model name that is not one of [`crate::models::MODELS`].
    #[error("invalid model specification: unknown model `{name}`; known: {known}")]
    UnknownModel { name: String, known: String },
    /// A model list that names no model.
    #[error("invalid model specification: no models named")]
    NoModels,
    /// A fit or comparison over a data set with no choices.
    #[error("there are no observations to fit")]
    NoObservations,
    /// Every start of a fit ended at a log-likelihood of −∞ or NaN.
    #[error("model {model}: no start gave a finite likelihood")]
    NoFiniteStart { model: &'static str },
    /// Cross-validation with fewer than two folds.
    #[error("cross-validation needs at least 2 folds, not {folds}")]
    TooFewFolds { folds: usize },
    /// More folds than participants.
    #[error("{folds} folds need at least {folds} participants; there are {participants}")]
    TooFewParticipants { folds: usize, participants: usize },
    /// An observation's task index lies beyond the experiment's task list.
    #[error("an observation names task {task}, beyond the list of {tasks} tasks")]
    UnknownTask { task: usize, tasks: usize },
    /// Task and label lists of different lengths.
    #[error("{tasks} tasks but {labels} labels")]
    LabelCount { tasks: usize, labels: usize },
    /// The library model's candidate groups do not add up to the task's choice set.
    #[error(
        "{task}: the library model grouped {grouped} candidates, the choice set has {choice_set}"
    )]
    LibraryGroups {
        task: String,
        grouped: u64,
        choice_set: u64,
    },
    /// A held-out evaluation of the library model without its data.
    #[error("{model} needs the library data (leaf bodies and grouped candidates) to be held out")]
    NoLibraryData { model: String },
    /// A task whose state space is too large for the trace search.
    #[error("{task}: more than {limit} reachable states; too large to enumerate")]
    TooManyStates { task: String, limit: usize },
    /// A task that no action sequence solves.
    #[error("{task}: no sequence of actions lights every light")]
    Unsolvable { task: String },
    /// A task with too few short traces to enumerate its candidates.
    #[error("{task}: fewer than {wanted} traces of length up to {max_length}")]
    TooFewTraces {
        task: String,
        wanted: usize,
        max_length: usize,
    },
    /// A task with too many traces of some length to enumerate.
    #[error("{task}: more than {limit} traces of length up to {length}")]
    TooManyTraces {
        task: String,
        limit: usize,
        length: usize,
    },
    /// A trace longer than the program compressor handles; `task` names its task when known.
    #[error("{}a trace of {length} actions is longer than the enumerator's limit of {limit}", task.as_ref().map(|t| format!("{t}: ")).unwrap_or_default())]
    TraceTooLong {
        task: Option<String>,
        length: usize,
        limit: usize,
    },
    /// A trace given to the compressor in letters other than its internal alphabet.
    #[error("trace letter `{}` is not one of the internal letters A-E", letter.escape_debug())]
    TraceLetter { letter: char },
    /// An enumeration answered a different number of membership queries than it was asked.
    #[error("task {task}: the enumeration answered {answered} queries for {asked} programs")]
    QueryCount {
        task: String,
        answered: usize,
        asked: usize,
    },
    /// An observation that points at no program of its task's distinct programs.
    #[error("task {task}: observation names program {program}")]
    UnknownProgram { task: String, program: usize },
    /// A participant program that is neither enumerated nor among the observations.
    #[error("task {task}: `{program}` is not an observation")]
    NotAnObservation { task: String, program: String },
    /// An observed program without a place in its task's choice set.
    #[error("task {task}: `{program}` has no place in U_t")]
    NotInChoiceSet { task: String, program: String },
    /// The keyed choice set and the program list of a task disagree about its size.
    #[error("task {task}: the keyed choice set has {keyed} programs, the program list {listed}")]
    ChoiceSetSize {
        task: String,
        keyed: u64,
        listed: usize,
    },
    /// The figures' bundled font could not be registered with the plotting library.
    #[error("the bundled font does not load")]
    Font,
    /// The plotting library failed to draw or save a figure.
    #[error("cannot draw {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    /// A failure of the neural baselines, inside an analysis that also runs symbolic models.
    #[cfg(feature = "neural")]
    #[error(transparent)]
    Neural(Box<crate::neural::NeuralError>),
}

impl AnalysisError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> AnalysisError {
        AnalysisError::Io {
            path: path.into(),
            source,
        }
    }
}
