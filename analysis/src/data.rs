//! Reading `programs.csv`-format files (docs/semantics.md §3.2).

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::AnalysisError;

/// One row of a `programs.csv`-format file, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramRow {
    pub participant_idx: u32,
    pub mdp_idx: usize,
    #[serde(deserialize_with = "python_bool", serialize_with = "python_bool_out")]
    pub skipped: bool,
    pub elapsed_minutes: Option<f64>,
    pub program_evaluations: Option<u32>,
    #[serde(default)]
    pub program: String,
    #[serde(default)]
    pub preprocessed_program: String,
    #[serde(default)]
    pub programming_exp: String,
    #[serde(default)]
    pub programming_game_exp: String,
    /// Where this participant saw the task (0 = first). proglab's exports write it; the published
    /// file has no such column, and there everyone saw the tasks in `mdp_idx` order, so an absent
    /// value means `mdp_idx` ([`ProgramRow::position`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_position: Option<usize>,
}

impl ProgramRow {
    /// The position at which the participant saw this task: `order_position`, or `mdp_idx` when
    /// the file has no such column (the published data, where everyone saw the same order).
    pub fn position(&self) -> usize {
        self.order_position.unwrap_or(self.mdp_idx)
    }
}

/// A row that could not be read, with its line number in the file (header = line 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// The readable rows of a file plus the rows that could not be read.
#[derive(Debug, Clone, Default)]
pub struct ProgramsFile {
    /// Each row with its line number.
    pub rows: Vec<(u64, ProgramRow)>,
    pub errors: Vec<RowError>,
}

/// Reads a `programs.csv`-format file. Malformed rows are collected, not fatal; only an unreadable
/// file or header is an error.
pub fn read_programs(reader: impl Read) -> Result<ProgramsFile, AnalysisError> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv.headers()?.clone();
    for required in ["participant_idx", "mdp_idx", "skipped", "program"] {
        if !headers.iter().any(|h| h == required) {
            return Err(AnalysisError::MissingColumn(required));
        }
    }
    let mut file = ProgramsFile::default();
    for record in csv.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                file.errors.push(RowError {
                    line,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        match record.deserialize::<ProgramRow>(Some(&headers)) {
            Ok(row) => file.rows.push((line, row)),
            Err(e) => file.errors.push(RowError {
                line,
                message: e.to_string(),
            }),
        }
    }
    Ok(file)
}

fn python_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.trim() {
        "True" | "true" | "1" => Ok(true),
        "False" | "false" | "0" | "" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "`{other}` is not True or False"
        ))),
    }
}

fn python_bool_out<S: serde::Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if *value { "True" } else { "False" })
}
