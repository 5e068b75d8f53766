//! Experiment definitions (docs/design.md §4): a TOML file read and validated at start-up into an
//! [`Experiment`], and the bundled `correa2025` study.
//!
//! Validation collects every problem it finds, each naming the file, the key and what is wrong,
//! so a researcher fixes a broken file in one pass.

pub mod check;
pub mod definition;
mod error;
mod files;
mod model;
pub mod order;
mod resolve;
mod timeline;

use std::path::Path;

pub use crate::experiment::error::{ExperimentError, Problem};
pub use crate::experiment::files::{DiskFiles, EmbeddedFiles, Files};
pub use crate::experiment::model::{
    BoardKind, Bonus, BonusRule, Completion, Condition, Consent, DeviceRules, EntryRules,
    Experiment, Item, ItemKind, Screen, TaskEntry, Text, Timing,
};
pub use crate::experiment::order::Order;
pub use crate::experiment::resolve::parse;
pub use crate::experiment::timeline::Step;

/// The bundled experiments: (file name, TOML text).
pub const BUNDLED: &[(&str, &str)] = &[(
    "correa2025.toml",
    include_str!("../../experiments/correa2025.toml"),
)];

/// Files the bundled experiments refer to, embedded in the binary.
const BUNDLED_FILES: &[(&str, &str)] = &[(
    "tutorial-levels.json",
    include_str!("../../experiments/tutorial-levels.json"),
)];

/// The bundled experiments.
pub fn bundled() -> Result<Vec<Experiment>, ExperimentError> {
    BUNDLED
        .iter()
        .map(|(name, text)| {
            parse(
                text,
                &format!("bundled:{name}"),
                &EmbeddedFiles(BUNDLED_FILES),
            )
        })
        .collect()
}

/// Reads and validates an experiment file; referenced files are read relative to its folder.
pub fn load_file(path: &Path) -> Result<Experiment, ExperimentError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ExperimentError::whole_file(&file, format!("cannot read the file: {e}")))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &file, &DiskFiles { dir })
}

#[cfg(test)]
mod tests;
