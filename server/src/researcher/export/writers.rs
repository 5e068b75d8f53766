//! The table and event-log writers, streaming one participant at a time, and the Psych-DS folder.

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::clock::rfc3339;
use serde_json::json;

use crate::domain::TrialOutcome;
use crate::researcher::ResearcherError;
use crate::researcher::export::columns::variable_measured;
use crate::researcher::export::facts::is_task_trial;
use crate::researcher::export::{
    CONDITION, Column, ExportParticipant, ExportSummary, Exporter, Format, Sink,
};
use crate::store::Trial;

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

/// One participant's records, without the recruiter column; `None` leaves the participant out
/// of the file and of the participant count.
type ParticipantRows = Option<Vec<Vec<String>>>;

impl Exporter {
    /// Streams a CSV table: the header, then each participant's records, handed to the sink
    /// before the next participant is read. `rows` builds one participant's records; the
    /// condition and recruiter columns are added here, so every table has them exactly when the
    /// header does.
    async fn csv_per_participant<Rows>(
        &self,
        format: Format,
        sink: &mut Sink,
        mut rows: impl FnMut(ExportParticipant) -> Rows,
    ) -> Result<ExportSummary, ResearcherError>
    where
        Rows: Future<Output = Result<ParticipantRows, ResearcherError>>,
    {
        let buf = SharedBuf::default();
        let mut csv = csv::Writer::from_writer(buf.clone());
        csv.write_record(self.columns(format).iter().map(|c| c.name))?;
        let mut summary = ExportSummary::default();
        for participant in self.participants().await? {
            let condition = self.condition_field(&participant);
            let excluded = self
                .options
                .include_excluded
                .then(|| python_bool(participant.session.excluded));
            let recruiter = self.recruiter_field(&participant);
            let Some(records) = rows(participant).await? else {
                continue;
            };
            for mut record in records {
                record.extend(condition.clone());
                record.extend(excluded.clone());
                record.extend(recruiter.clone());
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

    /// The published columns, one row per main task of each completed session, by `mdp_idx`.
    pub(super) async fn programs_csv(
        &self,
        sink: &mut Sink,
    ) -> Result<ExportSummary, ResearcherError> {
        self.csv_per_participant(Format::ProgramsCsv, sink, move |participant| async move {
            let Some(idx) = participant.participant_idx else {
                return Ok(None);
            };
            let mut trials: Vec<Trial> = self
                .research
                .session_trials(&participant.session.id)
                .await?
                .into_iter()
                .filter(is_task_trial)
                .collect();
            trials.sort_by_key(|t| t.task_index);
            let experiment = self.experiment_of(&participant.session);
            let answers = self.store.answers(&participant.session.id).await?;
            let answer = |item: &str| {
                answers
                    .iter()
                    .find(|a| a.item == item)
                    .map_or(String::new(), |a| a.answer.clone())
            };
            let (programming_exp, programming_game_exp) =
                (answer("programming_exp"), answer("programming_game_exp"));
            let records = trials
                .iter()
                .map(|trial| {
                    let facts = self.trial_facts(experiment, trial);
                    vec![
                        idx.to_string(),
                        trial.task_index.to_string(),
                        python_bool(facts.skipped),
                        facts.elapsed_minutes,
                        trial.runs.to_string(),
                        facts.program,
                        facts.canonical,
                        programming_exp.clone(),
                        programming_game_exp.clone(),
                        trial.position.to_string(),
                        participant.pseudonym.clone(),
                    ]
                })
                .collect();
            Ok(Some(records))
        })
        .await
    }

    /// Every trial of every session, in the order the store returns them.
    pub(super) async fn trials_csv(
        &self,
        sink: &mut Sink,
    ) -> Result<ExportSummary, ResearcherError> {
        self.csv_per_participant(Format::TrialsCsv, sink, move |participant| async move {
            let trials = self
                .research
                .session_trials(&participant.session.id)
                .await?;
            let experiment = self.experiment_of(&participant.session);
            let records = trials
                .iter()
                .map(|trial| {
                    let facts = self.trial_facts(experiment, trial);
                    vec![
                        participant.pseudonym.clone(),
                        participant_idx_field(&participant),
                        participant.state.as_str().to_owned(),
                        trial.phase.to_string(),
                        trial.position.to_string(),
                        trial.task_index.to_string(),
                        trial.label.clone(),
                        rfc3339(trial.started_at),
                        trial.ended_at.map_or(String::new(), rfc3339),
                        trial.started_ms.to_string(),
                        trial.ended_ms.map_or(String::new(), |ms| ms.to_string()),
                        facts.elapsed_minutes,
                        trial.outcome.map_or("", TrialOutcome::as_str).to_owned(),
                        facts.program,
                        facts.canonical,
                        facts
                            .instruction_count
                            .map_or(String::new(), |n| n.to_string()),
                        facts.solved.map_or(String::new(), |s| s.to_string()),
                        trial.runs.to_string(),
                        python_bool(participant.session.preview),
                    ]
                })
                .collect();
            Ok(Some(records))
        })
        .await
    }

    /// Every stored answer of every session.
    pub(super) async fn questionnaire_csv(
        &self,
        sink: &mut Sink,
    ) -> Result<ExportSummary, ResearcherError> {
        self.csv_per_participant(
            Format::QuestionnaireCsv,
            sink,
            move |participant| async move {
                let answers = self.store.answers(&participant.session.id).await?;
                let records = answers
                    .iter()
                    .map(|answer| {
                        vec![
                            participant.pseudonym.clone(),
                            participant_idx_field(&participant),
                            answer.item.clone(),
                            answer.answer.clone(),
                            rfc3339(answer.answered_at),
                        ]
                    })
                    .collect();
                Ok(Some(records))
            },
        )
        .await
    }

    /// Events and runs of every session as JSON lines, each session's sorted by session time.
    pub(super) async fn events_jsonl(
        &self,
        sink: &mut Sink,
    ) -> Result<ExportSummary, ResearcherError> {
        let mut summary = ExportSummary::default();
        for participant in self.participants().await? {
            let record = self.store.session_record(&participant.session.id).await?;
            let mut base = json!({
                "participant": participant.pseudonym,
                "participant_idx": participant.participant_idx,
            });
            if let Some(condition) = self.condition_field(&participant) {
                merge(&mut base, json!({ "condition": condition }));
            }
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
                .map(|c| self.variable(c))
                .collect::<Vec<_>>(),
        });
        std::fs::write(
            folder.join("dataset_description.json"),
            serde_json::to_string_pretty(&description).map_err(anyhow::Error::from)?,
        )?;
        Ok(summary)
    }
}

impl Exporter {
    /// A column's `variableMeasured` entry; `condition` lists the conditions as its levels, each
    /// with its light semantics as participants saw it.
    fn variable(&self, column: &Column) -> serde_json::Value {
        let mut entry = variable_measured(column, &self.experiment.questionnaire);
        if column.name == CONDITION.name {
            let conditions = &self.experiment.conditions;
            let described: Vec<String> = conditions
                .iter()
                .map(|c| {
                    let n = c.experiment.tasks.len();
                    format!(
                        "\"{}\" ({} light, {n} task{})",
                        c.name,
                        crate::study::views::light_name(c.experiment.light),
                        if n == 1 { "" } else { "s" }
                    )
                })
                .collect();
            entry["description"] = json!(format!(
                "{} Levels: {}. Exported programs are judged under the analysis semantics (idempotent light) whatever the condition.",
                column.description,
                described.join("; ")
            ));
            entry["levels"] = json!(conditions.iter().map(|c| &c.name).collect::<Vec<_>>());
        }
        entry
    }
}

fn python_bool(value: bool) -> String {
    if value { "True" } else { "False" }.to_owned()
}

fn merge(target: &mut serde_json::Value, fields: serde_json::Value) {
    if let (Some(target), serde_json::Value::Object(fields)) = (target.as_object_mut(), fields) {
        target.extend(fields);
    }
}

/// `participant_idx` as a field: empty for sessions that did not complete.
fn participant_idx_field(participant: &ExportParticipant) -> String {
    participant
        .participant_idx
        .map_or(String::new(), |i| i.to_string())
}
