//! Dataset exports (docs/design.md §5): `programs-csv` (the published columns of
//! docs/semantics.md §3.2, with canonical programs, plus `order_position`), `trials-csv`,
//! `events-jsonl`, `questionnaire-csv`, `bonus-csv` (the recruiter's bulk-bonus format) and
//! `psych-ds` (a folder).
//!
//! Exports are streamed: participants are read one at a time and each participant's rows are
//! written and handed to the [`Sink`] before the next is read, so memory holds one participant,
//! not the study. Recruiter IDs are replaced by per-experiment pseudonyms ([`Pseudonyms`]);
//! the raw IDs appear only with [`ExportOptions::raw_ids`].
//!
//! `participant_idx` numbers the experiment's completed sessions from 0 in the order they started
//! (imported sessions keep their published numbers); other sessions have it empty. `mdp_idx` is
//! the task's index in the experiment's task list, `order_position` where this participant saw it.
//! Where the experiment defines between-subject conditions, every table ends with `condition`
//! (the session's `arm`; before `recruiter_id`), events carry it too, `mdp_idx` indexes the
//! condition's task list, and each trial is judged on its condition's task.
//!
//! The tables' columns live in `columns`, what a trial's row derives from it in `facts`, the
//! writers in `writers` (the three tables share one streaming loop, `csv_per_participant`), and
//! `bonus-csv` with its rule in `bonus`.

mod bonus;
mod columns;
mod facts;
mod sink;
mod writers;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::domain::SessionStatus;
use crate::experiment::Experiment;
use crate::researcher::ResearcherError;
use crate::researcher::participants::last_seen;
use crate::researcher::pseudonym::{Pseudonyms, fresh_key};
use crate::store::research::ResearchStore;
use crate::store::{Session, Store};
use crate::study::lifecycle::{self, Progress};

pub use crate::researcher::export::bonus::length_bonuses;
pub use crate::researcher::export::columns::{
    CONDITION, Column, EXCLUDED, PROGRAMS_COLUMNS, QUESTIONNAIRE_COLUMNS, RECRUITER_ID,
    TRIALS_COLUMNS,
};
pub use crate::researcher::export::sink::Sink;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    ProgramsCsv,
    TrialsCsv,
    EventsJsonl,
    QuestionnaireCsv,
    BonusCsv,
    PsychDs,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::ProgramsCsv,
        Format::TrialsCsv,
        Format::EventsJsonl,
        Format::QuestionnaireCsv,
        Format::BonusCsv,
        Format::PsychDs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::ProgramsCsv => "programs-csv",
            Format::TrialsCsv => "trials-csv",
            Format::EventsJsonl => "events-jsonl",
            Format::QuestionnaireCsv => "questionnaire-csv",
            Format::BonusCsv => "bonus-csv",
            Format::PsychDs => "psych-ds",
        }
    }

    pub fn parse(text: &str) -> Result<Format, ResearcherError> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                ResearcherError::Invalid(format!(
                    "`{text}` is not an export format: use one of {}",
                    known.join(", ")
                ))
            })
    }

    /// The file name a download gets.
    pub fn file_name(self, slug: &str) -> String {
        match self {
            Format::ProgramsCsv => format!("{slug}-programs.csv"),
            Format::TrialsCsv => format!("{slug}-trials.csv"),
            Format::EventsJsonl => format!("{slug}-events.jsonl"),
            Format::QuestionnaireCsv => format!("{slug}-questionnaire.csv"),
            Format::BonusCsv => format!("{slug}-bonus.csv"),
            Format::PsychDs => format!("{slug}-psych-ds"),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::EventsJsonl => "application/x-ndjson",
            Format::PsychDs => "application/x-tar",
            _ => "text/csv; charset=utf-8",
        }
    }
}
/// Options of an export.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Include recruiter IDs (a `recruiter_id` column). Off unless asked for explicitly.
    pub raw_ids: bool,
    /// Include researchers' preview sessions. Off unless asked for: they are not data.
    pub include_preview: bool,
    /// Include participants a researcher excluded (with an `excluded` column in every table).
    /// Off unless asked for; `bonus-csv` pays excluded participants whatever this says.
    pub include_excluded: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub participants: usize,
    pub rows: u64,
}

/// One session as exports see it.
#[derive(Debug, Clone)]
pub struct ExportParticipant {
    pub session: Session,
    /// The session's state when the export was written.
    pub state: Progress,
    pub participant_idx: Option<usize>,
    pub pseudonym: String,
}

/// Writes the exports of one experiment.
pub struct Exporter {
    store: Arc<dyn Store>,
    research: Arc<dyn ResearchStore>,
    experiment: Arc<Experiment>,
    pseudonyms: Pseudonyms,
    options: ExportOptions,
}

impl Exporter {
    /// Loads (creating on first use) the experiment's pseudonym key.
    pub async fn new(
        store: Arc<dyn Store>,
        research: Arc<dyn ResearchStore>,
        experiment: Arc<Experiment>,
        options: ExportOptions,
    ) -> Result<Exporter, ResearcherError> {
        let key = research
            .pseudonym_key(experiment.slug.as_str(), &fresh_key(), crate::clock::now())
            .await?;
        Ok(Exporter {
            store,
            research,
            experiment,
            pseudonyms: Pseudonyms::new(&key),
            options,
        })
    }

    pub fn pseudonyms(&self) -> &Pseudonyms {
        &self.pseudonyms
    }

    /// The experiment's sessions, oldest first, numbered as the module doc says; excluded
    /// participants only with [`ExportOptions::include_excluded`].
    pub async fn participants(&self) -> Result<Vec<ExportParticipant>, ResearcherError> {
        self.participants_with(self.options.include_excluded).await
    }

    /// The sessions as [`Exporter::participants`] numbers them, excluded ones included when
    /// `excluded` says so. `participant_idx` counts excluded participants too, so that excluding
    /// one never renumbers the others.
    pub(super) async fn participants_with(
        &self,
        excluded: bool,
    ) -> Result<Vec<ExportParticipant>, ResearcherError> {
        let slug = self.experiment.slug.as_str();
        let sessions = self.store.sessions_of(slug).await?;
        let imported: HashMap<String, i64> =
            self.research.imported(slug).await?.into_iter().collect();
        let activity: HashMap<String, i64> = self
            .research
            .activity(slug)
            .await?
            .into_iter()
            .map(|a| (a.session_id, a.last_ms))
            .collect();
        let now = crate::clock::now();
        let mut next = 0usize;
        let mut participants = Vec::with_capacity(sessions.len());
        for session in sessions {
            if session.preview && !self.options.include_preview {
                continue;
            }
            let participant_idx = (session.status == SessionStatus::Completed).then(|| {
                let idx = match imported.get(&session.id) {
                    Some(&published) if published >= 0 => published as usize,
                    _ => next,
                };
                next = next.max(idx + 1);
                idx
            });
            if session.excluded && !excluded {
                continue;
            }
            let last_seen = last_seen(&session, activity.get(&session.id).copied());
            participants.push(ExportParticipant {
                state: lifecycle::progress(&session, last_seen, &self.experiment.timing, now),
                pseudonym: self.pseudonyms.of_session(&session),
                session,
                participant_idx,
            });
        }
        Ok(participants)
    }

    /// Why `format` would have no rows, in words, or None when it has some. Checked before a
    /// download starts, so that the researcher reads why instead of receiving an empty file.
    pub async fn empty_export(&self, format: Format) -> Result<Option<String>, ResearcherError> {
        let people = match format {
            Format::BonusCsv => self.participants_with(true).await?,
            _ => self.participants().await?,
        };
        let empty = match format {
            // Both hold completed sessions only.
            Format::ProgramsCsv | Format::BonusCsv => {
                people.iter().all(|p| p.participant_idx.is_none())
            }
            _ => people.is_empty(),
        };
        Ok(empty.then(|| self.empty_reason(format)))
    }

    /// What an empty export of `format` means.
    pub fn empty_reason(&self, format: Format) -> String {
        let filters = match (self.options.include_excluded, self.options.include_preview) {
            (false, false) => " (excluded participants and previews are left out)",
            (false, true) => " (excluded participants are left out)",
            (true, false) => " (previews are left out)",
            (true, true) => "",
        };
        match format {
            Format::ProgramsCsv | Format::BonusCsv => format!(
                "no participant of `{}` has completed the study yet{filters}",
                self.experiment.slug
            ),
            _ => format!(
                "no participant of `{}` to export{filters}",
                self.experiment.slug
            ),
        }
    }

    /// A table's columns, then `condition` where the experiment defines between-subject
    /// conditions, then `recruiter_id` with the raw-IDs option.
    fn with_recruiter(&self, columns: &[Column]) -> Vec<Column> {
        let mut columns = columns.to_vec();
        if !self.experiment.conditions.is_empty() {
            columns.push(CONDITION);
        }
        if self.options.include_excluded {
            columns.push(EXCLUDED);
        }
        if self.options.raw_ids {
            columns.push(RECRUITER_ID);
        }
        columns
    }

    /// The session's between-subject condition, where the experiment defines conditions.
    fn condition_field(&self, participant: &ExportParticipant) -> Option<String> {
        (!self.experiment.conditions.is_empty())
            .then(|| participant.session.arm.clone().unwrap_or_default())
    }

    fn recruiter_field(&self, participant: &ExportParticipant) -> Option<String> {
        self.options
            .raw_ids
            .then(|| participant.session.recruiter_id.clone().unwrap_or_default())
    }

    /// The columns a format's file has (empty for the formats that are not tables).
    pub fn columns(&self, format: Format) -> Vec<Column> {
        match format {
            Format::ProgramsCsv => self.with_recruiter(PROGRAMS_COLUMNS),
            Format::TrialsCsv => self.with_recruiter(TRIALS_COLUMNS),
            Format::QuestionnaireCsv => self.with_recruiter(QUESTIONNAIRE_COLUMNS),
            _ => Vec::new(),
        }
    }

    /// Writes one export (every format but `psych-ds`, which is a folder: [`Exporter::write_psych_ds`]).
    pub async fn write(
        &self,
        format: Format,
        sink: &mut Sink,
    ) -> Result<ExportSummary, ResearcherError> {
        let summary = match format {
            Format::ProgramsCsv => self.programs_csv(sink).await?,
            Format::TrialsCsv => self.trials_csv(sink).await?,
            Format::EventsJsonl => self.events_jsonl(sink).await?,
            Format::QuestionnaireCsv => self.questionnaire_csv(sink).await?,
            Format::BonusCsv => self.bonus_csv(sink).await?,
            Format::PsychDs => {
                return Err(ResearcherError::Invalid(
                    "psych-ds is a folder: write it with `proglab export --format psych-ds --out FOLDER`".into(),
                ));
            }
        };
        sink.finish()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.name()).unwrap(), format);
        }
        assert!(Format::parse("xlsx").is_err());
    }
}
