//! Dataset exports (DESIGN §5): `programs-csv` (the published columns of SPEC §3.2, with
//! canonical programs, plus `order_position`), `trials-csv`, `events-jsonl`, `questionnaire-csv`,
//! `bonus-csv` (the recruiter's bulk-bonus format) and `psych-ds` (a folder).
//!
//! Exports are streamed: participants are read one at a time and each participant's rows are
//! written and handed to the [`Sink`] before the next is read, so memory holds one participant,
//! not the study. Recruiter IDs are replaced by per-experiment pseudonyms ([`Pseudonyms`]);
//! the raw IDs appear only with [`ExportOptions::raw_ids`].
//!
//! `participant_idx` numbers the experiment's completed sessions from 0 in the order they started
//! (imported sessions keep their published numbers); other sessions have it empty. `mdp_idx` is
//! the task's index in the experiment's task list, `order_position` where this participant saw it.

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde::Serialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::domain::{SessionStatus, TrialOutcome};
use crate::experiment::{BonusRule, Experiment};
use crate::researcher::ResearcherError;
use crate::researcher::pseudonym::{Pseudonyms, fresh_key};
use crate::store::research::ResearchStore;
use crate::store::{Session, Store, Trial};

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

/// A column of an export and what it means (the Psych-DS description lists every one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: &'static str,
    pub description: &'static str,
}

const fn column(name: &'static str, description: &'static str) -> Column {
    Column { name, description }
}

/// The recruiter's participant ID, only with `--raw-ids`.
pub const RECRUITER_ID: Column = column(
    "recruiter_id",
    "The recruiter's participant ID (for example PROLIFIC_PID); present only in exports made with the raw-IDs option",
);

pub const PROGRAMS_COLUMNS: &[Column] = &[
    column(
        "participant_idx",
        "Index of the participant among the experiment's completed sessions, from 0, in the order they started",
    ),
    column(
        "mdp_idx",
        "Index of the task in the experiment's task list (for correa2025 the study order, SPEC §2.3)",
    ),
    column(
        "skipped",
        "True if the participant skipped the task, else False",
    ),
    column(
        "elapsed_minutes",
        "Minutes from when the server served the task to submit or skip",
    ),
    column(
        "program_evaluations",
        "Number of times the participant ran a program on this task",
    ),
    column(
        "program",
        "The submitted program in compact form (main|p1|p2|p3|p4); empty if skipped",
    ),
    column(
        "preprocessed_program",
        "The submitted program canonicalised (SPEC §3.3, analysis semantics); empty if skipped",
    ),
    column(
        "programming_exp",
        "Answer to: How much experience do you have with computer programming?",
    ),
    column(
        "programming_game_exp",
        "Answer to: Have you played Lightbot or another similar programming game before?",
    ),
    column(
        "order_position",
        "Position (from 0) at which this participant saw the task",
    ),
    column(
        "participant",
        "Pseudonym of the participant: a keyed hash of the recruiter ID, stable within the experiment",
    ),
];

pub const TRIALS_COLUMNS: &[Column] = &[
    column(
        "participant",
        "Pseudonym of the participant: a keyed hash of the recruiter ID, stable within the experiment",
    ),
    column(
        "participant_idx",
        "Index of the participant among the experiment's completed sessions, from 0, in the order they started",
    ),
    column(
        "session_status",
        "Status of the session: active, declined or completed",
    ),
    column("phase", "Part of the study: tutorial, practice or tasks"),
    column(
        "position",
        "Position (from 0) of the trial within its phase, in the order this participant saw it",
    ),
    column(
        "task_index",
        "Index of the task in its phase's list; for the phase tasks it is the mdp_idx",
    ),
    column("label", "The task's label in the experiment definition"),
    column(
        "started_at",
        "When the server first served the task (UTC, RFC 3339)",
    ),
    column(
        "ended_at",
        "When the trial ended by submit or skip (UTC, RFC 3339); empty if it did not end",
    ),
    column(
        "started_ms",
        "Milliseconds from the session's start to started_at",
    ),
    column(
        "ended_ms",
        "Milliseconds from the session's start to ended_at",
    ),
    column(
        "elapsed_minutes",
        "Minutes from when the server served the task to submit or skip",
    ),
    column(
        "outcome",
        "submitted, skipped, or empty if the trial did not end",
    ),
    column(
        "program",
        "The submitted program in compact form; empty if skipped",
    ),
    column(
        "preprocessed_program",
        "The submitted program canonicalised (SPEC §3.3); empty if skipped or not solving under the analysis semantics",
    ),
    column(
        "instruction_count",
        "Number of instructions in the submitted program over all routines",
    ),
    column(
        "solved",
        "Whether the submitted program solves the task under the analysis semantics (idempotent light)",
    ),
    column(
        "program_evaluations",
        "Number of times the participant ran a program on this task",
    ),
];

pub const QUESTIONNAIRE_COLUMNS: &[Column] = &[
    column(
        "participant",
        "Pseudonym of the participant: a keyed hash of the recruiter ID, stable within the experiment",
    ),
    column(
        "participant_idx",
        "Index of the participant among the experiment's completed sessions, from 0, in the order they started",
    ),
    column(
        "item",
        "The questionnaire item's id in the experiment definition",
    ),
    column("answer", "The answer, verbatim"),
    column("answered_at", "When the answer was stored (UTC, RFC 3339)"),
];

/// Options of an export.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Include recruiter IDs (a `recruiter_id` column). Off unless asked for explicitly.
    pub raw_ids: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub participants: usize,
    pub rows: u64,
}

/// Where exported bytes go: a file (or any writer), or a channel feeding an HTTP response.
pub enum Sink {
    Writer(Box<dyn Write + Send>),
    Channel(tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>),
}

impl Sink {
    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), ResearcherError> {
        if chunk.is_empty() {
            return Ok(());
        }
        match self {
            Sink::Writer(writer) => writer.write_all(&chunk)?,
            Sink::Channel(sender) => sender.send(Ok(Bytes::from(chunk))).await.map_err(|_| {
                ResearcherError::Io(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the download was cancelled",
                ))
            })?,
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ResearcherError> {
        if let Sink::Writer(writer) = self {
            writer.flush()?;
        }
        Ok(())
    }
}

/// A buffer the CSV writer fills and the exporter empties after each participant.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Write for SharedBuf {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One session as exports see it.
#[derive(Debug, Clone)]
pub struct ExportParticipant {
    pub session: Session,
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

    /// The experiment's sessions, oldest first, numbered as the module doc says.
    pub async fn participants(&self) -> Result<Vec<ExportParticipant>, ResearcherError> {
        let slug = self.experiment.slug.as_str();
        let sessions = self.store.sessions_of(slug).await?;
        let imported: std::collections::HashMap<String, i64> =
            self.research.imported(slug).await?.into_iter().collect();
        let mut next = 0usize;
        let mut participants = Vec::with_capacity(sessions.len());
        for session in sessions {
            let participant_idx = (session.status == SessionStatus::Completed).then(|| {
                let idx = match imported.get(&session.id) {
                    Some(&published) if published >= 0 => published as usize,
                    _ => next,
                };
                next = next.max(idx + 1);
                idx
            });
            participants.push(ExportParticipant {
                pseudonym: self.pseudonyms.of_session(&session),
                session,
                participant_idx,
            });
        }
        Ok(participants)
    }

    fn with_recruiter(&self, columns: &[Column]) -> Vec<Column> {
        let mut columns = columns.to_vec();
        if self.options.raw_ids {
            columns.push(RECRUITER_ID);
        }
        columns
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

    async fn programs_csv(&self, sink: &mut Sink) -> Result<ExportSummary, ResearcherError> {
        let buf = SharedBuf::default();
        let mut csv = csv::Writer::from_writer(buf.clone());
        csv.write_record(self.columns(Format::ProgramsCsv).iter().map(|c| c.name))?;
        let mut summary = ExportSummary::default();
        for participant in self.participants().await? {
            let Some(idx) = participant.participant_idx else {
                continue;
            };
            let mut trials: Vec<Trial> = self
                .research
                .session_trials(&participant.session.id)
                .await?
                .into_iter()
                .filter(|t| t.phase == "tasks")
                .collect();
            trials.sort_by_key(|t| t.task_index);
            let answers = self.store.answers(&participant.session.id).await?;
            let answer = |item: &str| {
                answers
                    .iter()
                    .find(|a| a.item == item)
                    .map_or(String::new(), |a| a.answer.clone())
            };
            let (programming_exp, programming_game_exp) =
                (answer("programming_exp"), answer("programming_game_exp"));
            for trial in &trials {
                let facts = self.trial_facts(trial);
                let mut record = vec![
                    idx.to_string(),
                    trial.task_index.to_string(),
                    python_bool(facts.skipped),
                    facts.elapsed_minutes.clone(),
                    trial.runs.to_string(),
                    facts.program.clone(),
                    facts.canonical.clone(),
                    programming_exp.clone(),
                    programming_game_exp.clone(),
                    trial.position.to_string(),
                    participant.pseudonym.clone(),
                ];
                record.extend(self.recruiter_field(&participant));
                csv.write_record(&record)?;
                summary.rows += 1;
            }
            summary.participants += 1;
            csv.flush()?;
            sink.send(buf.take()).await?;
        }
        csv.flush()?;
        sink.send(buf.take()).await?;
        Ok(summary)
    }

    async fn trials_csv(&self, sink: &mut Sink) -> Result<ExportSummary, ResearcherError> {
        let buf = SharedBuf::default();
        let mut csv = csv::Writer::from_writer(buf.clone());
        csv.write_record(self.columns(Format::TrialsCsv).iter().map(|c| c.name))?;
        let mut summary = ExportSummary::default();
        for participant in self.participants().await? {
            let trials = self
                .research
                .session_trials(&participant.session.id)
                .await?;
            for trial in &trials {
                let facts = self.trial_facts(trial);
                let mut record = vec![
                    participant.pseudonym.clone(),
                    participant
                        .participant_idx
                        .map_or(String::new(), |i| i.to_string()),
                    participant.session.status.as_str().to_owned(),
                    trial.phase.to_string(),
                    trial.position.to_string(),
                    trial.task_index.to_string(),
                    trial.label.clone(),
                    rfc3339(trial.started_at),
                    trial.ended_at.map_or(String::new(), rfc3339),
                    trial.started_ms.to_string(),
                    trial.ended_ms.map_or(String::new(), |ms| ms.to_string()),
                    facts.elapsed_minutes.clone(),
                    trial.outcome.map_or("", TrialOutcome::as_str).to_owned(),
                    facts.program.clone(),
                    facts.canonical.clone(),
                    facts
                        .instruction_count
                        .map_or(String::new(), |n| n.to_string()),
                    facts.solved.map_or(String::new(), |s| s.to_string()),
                    trial.runs.to_string(),
                ];
                record.extend(self.recruiter_field(&participant));
                csv.write_record(&record)?;
                summary.rows += 1;
            }
            summary.participants += 1;
            csv.flush()?;
            sink.send(buf.take()).await?;
        }
        csv.flush()?;
        sink.send(buf.take()).await?;
        Ok(summary)
    }

    async fn questionnaire_csv(&self, sink: &mut Sink) -> Result<ExportSummary, ResearcherError> {
        let buf = SharedBuf::default();
        let mut csv = csv::Writer::from_writer(buf.clone());
        csv.write_record(
            self.columns(Format::QuestionnaireCsv)
                .iter()
                .map(|c| c.name),
        )?;
        let mut summary = ExportSummary::default();
        for participant in self.participants().await? {
            let answers = self.store.answers(&participant.session.id).await?;
            for answer in &answers {
                let mut record = vec![
                    participant.pseudonym.clone(),
                    participant
                        .participant_idx
                        .map_or(String::new(), |i| i.to_string()),
                    answer.item.clone(),
                    answer.answer.clone(),
                    rfc3339(answer.answered_at),
                ];
                record.extend(self.recruiter_field(&participant));
                csv.write_record(&record)?;
                summary.rows += 1;
            }
            summary.participants += 1;
            csv.flush()?;
            sink.send(buf.take()).await?;
        }
        csv.flush()?;
        sink.send(buf.take()).await?;
        Ok(summary)
    }

    async fn events_jsonl(&self, sink: &mut Sink) -> Result<ExportSummary, ResearcherError> {
        let mut summary = ExportSummary::default();
        for participant in self.participants().await? {
            let record = self.store.session_record(&participant.session.id).await?;
            let base = json!({
                "participant": participant.pseudonym,
                "participant_idx": participant.participant_idx,
            });
            let mut lines: Vec<(i64, serde_json::Value)> = Vec::new();
            for event in &record.events {
                let mut line = base.clone();
                let fields = json!({
                    "record": "event",
                    "seq": event.seq,
                    "kind": event.kind,
                    "step": event.step,
                    "client_ms": event.client_ms,
                    "session_ms": event.session_ms,
                    "received_at": rfc3339(event.received_at),
                    "data": event.data,
                });
                merge(&mut line, fields);
                lines.push((event.session_ms, line));
            }
            for run in &record.runs {
                let mut line = base.clone();
                merge(
                    &mut line,
                    json!({
                        "record": "run",
                        "seq": run.seq,
                        "step": run.step,
                        "program": run.program,
                        "mode": run.mode,
                        "solved": run.solved,
                        "steps": run.steps,
                        "session_ms": run.session_ms,
                        "received_at": rfc3339(run.created_at),
                    }),
                );
                lines.push((run.session_ms, line));
            }
            lines.sort_by_key(|(ms, _)| *ms);
            let mut chunk = Vec::new();
            for (_, mut line) in lines {
                if let Some(id) = self.recruiter_field(&participant) {
                    merge(&mut line, json!({ "recruiter_id": id }));
                }
                serde_json::to_writer(&mut chunk, &line).map_err(anyhow::Error::from)?;
                chunk.push(b'\n');
                summary.rows += 1;
            }
            summary.participants += 1;
            sink.send(chunk).await?;
        }
        Ok(summary)
    }

    /// The recruiter's bulk-bonus format (Prolific: one `ID,amount` line per participant, no
    /// header). Bonuses are paid to recruiter IDs, so this export needs the raw-IDs option.
    async fn bonus_csv(&self, sink: &mut Sink) -> Result<ExportSummary, ResearcherError> {
        if !self.options.raw_ids {
            return Err(ResearcherError::Invalid(
                "bonus-csv pays recruiter IDs, so it needs the raw-IDs option (`--raw-ids`)".into(),
            ));
        }
        let (per_task, target) = match self.experiment.bonus.rule {
            BonusRule::None => {
                return Err(ResearcherError::Invalid(format!(
                    "experiment `{}` has no bonus rule",
                    self.experiment.slug
                )));
            }
            BonusRule::LengthRelativeToShortest {
                per_task,
                target_mean_total,
            } => (per_task, target_mean_total),
        };
        let mut people: Vec<(String, TaskLengths)> = Vec::new();
        for participant in self.participants().await? {
            if participant.participant_idx.is_none() {
                continue;
            }
            let Some(recruiter_id) = participant.session.recruiter_id.clone() else {
                continue;
            };
            let trials = self
                .research
                .session_trials(&participant.session.id)
                .await?;
            let lengths = trials
                .iter()
                .filter(|t| t.phase == "tasks")
                .map(|t| {
                    (
                        t.task_index.max(0) as usize,
                        self.trial_facts(t).instruction_count,
                    )
                })
                .collect();
            people.push((recruiter_id, lengths));
        }
        let n_tasks = self.experiment.tasks.len();
        let lengths: Vec<Vec<(usize, Option<u32>)>> =
            people.iter().map(|(_, l)| l.clone()).collect();
        let amounts = length_bonuses(&lengths, n_tasks, per_task, target);
        let mut chunk = Vec::new();
        let mut summary = ExportSummary::default();
        for ((recruiter_id, _), amount) in people.iter().zip(amounts) {
            summary.participants += 1;
            if amount < 0.005 {
                continue;
            }
            writeln!(
                chunk,
                "{},{amount:.2}",
                recruiter_id.replace([',', '\n', '\r'], "")
            )?;
            summary.rows += 1;
        }
        sink.send(chunk).await?;
        Ok(summary)
    }

    /// Writes the Psych-DS folder: `dataset_description.json` and one CSV per table under
    /// `data/`, named with Psych-DS keywords.
    pub async fn write_psych_ds(&self, folder: &Path) -> Result<ExportSummary, ResearcherError> {
        let data = folder.join("data");
        std::fs::create_dir_all(&data)?;
        let slug = self.experiment.slug.as_str();
        let mut summary = ExportSummary::default();
        let mut variables: Vec<Column> = Vec::new();
        let mut files = Vec::new();
        for (table, format) in [
            ("programs", Format::ProgramsCsv),
            ("trials", Format::TrialsCsv),
            ("questionnaire", Format::QuestionnaireCsv),
        ] {
            let name = format!("study-{slug}_table-{table}_data.csv");
            let file = std::fs::File::create(data.join(&name))?;
            let mut sink = Sink::Writer(Box::new(io::BufWriter::new(file)));
            let written = self.write(format, &mut sink).await?;
            summary.rows += written.rows;
            summary.participants = summary.participants.max(written.participants);
            for column in self.columns(format) {
                if !variables.iter().any(|v| v.name == column.name) {
                    variables.push(column);
                }
            }
            files.push(format!("data/{name}"));
        }
        let description = json!({
            "@context": "https://schema.org/",
            "@type": "Dataset",
            "name": format!("{}: programs written by participants", self.experiment.title),
            "description": format!(
                "Exported by proglab from experiment `{slug}` (version {}). Files: {}. Participants are identified by pseudonyms (keyed hashes of recruiter IDs).",
                self.experiment.version,
                files.join(", ")
            ),
            "variableMeasured": variables
                .iter()
                .map(|c| json!({ "@type": "PropertyValue", "name": c.name, "description": c.description }))
                .collect::<Vec<_>>(),
        });
        std::fs::write(
            folder.join("dataset_description.json"),
            serde_json::to_string_pretty(&description).map_err(anyhow::Error::from)?,
        )?;
        Ok(summary)
    }

    fn trial_facts(&self, trial: &Trial) -> TrialFacts {
        let skipped = trial.outcome == Some(TrialOutcome::Skipped);
        let elapsed_minutes = match trial.ended_ms {
            Some(end) => ((end - trial.started_ms) as f64 / 60_000.0).to_string(),
            None => String::new(),
        };
        let program = if skipped {
            String::new()
        } else {
            trial.program.clone().unwrap_or_default()
        };
        let task = match trial.phase.as_str() {
            "tasks" => self
                .experiment
                .tasks
                .get(trial.task_index.max(0) as usize)
                .map(|e| &e.task),
            "practice" => self
                .experiment
                .practice
                .get(trial.task_index.max(0) as usize)
                .map(|e| &e.task),
            _ => self
                .experiment
                .tutorial
                .get(trial.task_index.max(0) as usize)
                .and_then(|s| s.level.as_ref())
                .map(|e| &e.task),
        };
        let parsed = (!program.is_empty())
            .then(|| dsl::compact::parse(program.trim(), &self.experiment.limits).ok())
            .flatten();
        let (canonical, solved, instruction_count) = match (&parsed, task) {
            (Some(parsed), Some(task)) => {
                let solved = dsl::run(task, parsed, &dsl::RunOptions::default()).solved;
                let canonical =
                    dsl::canon::canonicalise(task, parsed, &dsl::canon::CanonOptions::default())
                        .map(|p| p.to_compact())
                        .unwrap_or_default();
                (
                    canonical,
                    Some(solved),
                    Some(crate::study::views::instruction_count(parsed)),
                )
            }
            (Some(parsed), None) => (
                String::new(),
                None,
                Some(crate::study::views::instruction_count(parsed)),
            ),
            _ => (String::new(), None, None),
        };
        TrialFacts {
            skipped,
            elapsed_minutes,
            program,
            canonical,
            solved,
            instruction_count,
        }
    }
}

/// A person's submitted lengths: `(task, Some(length))`, `None` for a skipped task.
type TaskLengths = Vec<(usize, Option<u32>)>;

struct TrialFacts {
    skipped: bool,
    elapsed_minutes: String,
    program: String,
    canonical: String,
    solved: Option<bool>,
    instruction_count: Option<u32>,
}

fn python_bool(value: bool) -> String {
    if value { "True" } else { "False" }.to_owned()
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn merge(target: &mut serde_json::Value, fields: serde_json::Value) {
    if let (Some(target), serde_json::Value::Object(fields)) = (target.as_object_mut(), fields) {
        target.extend(fields);
    }
}

/// SPEC §5.1's bonus: per task, `clip(per_task - c * (length - shortest), 0, per_task)` where
/// `shortest` is the shortest submitted program of any participant on that task; skipped tasks
/// get nothing. `c` is the value on the grid 0, 0.001, ..., 1 whose mean total bonus is closest to
/// `target` (the lowest such c on ties); without a target, `c` = 0 (every solution earns the
/// full amount). Each person is a list of `(task, Some(length))` for submitted tasks.
pub fn length_bonuses(
    people: &[Vec<(usize, Option<u32>)>],
    n_tasks: usize,
    per_task: f64,
    target: Option<f64>,
) -> Vec<f64> {
    let mut shortest = vec![u32::MAX; n_tasks];
    for person in people {
        for &(task, length) in person {
            if let (Some(length), Some(slot)) = (length, shortest.get_mut(task)) {
                *slot = (*slot).min(length);
            }
        }
    }
    let totals = |c: f64| -> Vec<f64> {
        people
            .iter()
            .map(|person| {
                person
                    .iter()
                    .filter_map(|&(task, length)| {
                        let length = length?;
                        let best = *shortest.get(task)?;
                        Some((per_task - c * f64::from(length - best)).clamp(0.0, per_task))
                    })
                    .sum()
            })
            .collect()
    };
    let c = match target {
        None => 0.0,
        Some(target) => {
            let mut best = (f64::INFINITY, 0.0);
            for i in 0..=1000 {
                let c = f64::from(i) / 1000.0;
                let amounts = totals(c);
                let mean = amounts.iter().sum::<f64>() / amounts.len().max(1) as f64;
                let gap = (mean - target).abs();
                if gap < best.0 - 1e-12 {
                    best = (gap, c);
                }
            }
            best.1
        }
    };
    totals(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bonuses_pay_the_shortest_in_full_and_scale_to_the_target_mean() {
        // Two tasks; person 0 has the shortest program on both, person 1 is 4 longer on task 0
        // and skipped task 1.
        let people = vec![
            vec![(0, Some(6)), (1, Some(8))],
            vec![(0, Some(10)), (1, None)],
        ];
        let full = length_bonuses(&people, 2, 0.40, None);
        assert_eq!(full, vec![0.80, 0.40]);
        // A mean total of 0.50 needs person 1's task-0 bonus at 0.20: 0.40 - c * 4 = 0.20, c = 0.05.
        let scaled = length_bonuses(&people, 2, 0.40, Some(0.50));
        assert!(
            (scaled[0] - 0.80).abs() < 1e-9 && (scaled[1] - 0.20).abs() < 1e-9,
            "{scaled:?}"
        );
    }

    #[test]
    fn formats_parse_by_name() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.name()).unwrap(), format);
        }
        assert!(Format::parse("xlsx").is_err());
    }
}
