//! `proglab import`: loads a published `programs.csv` (docs/semantics.md §3.2) into an experiment
//! as completed sessions with their main-task trials and the two questionnaire answers, so the
//! dashboard, replay and exports work on published data.
//!
//! The file does not say in which order participants saw the tasks; the published study used one
//! fixed order, so each imported participant gets the experiment's task list order
//! (`order_position` = `mdp_idx`). Times are rebuilt from `elapsed_minutes`: trials follow one
//! another from a day before the import. Imported sessions have no recruiter ID; their pseudonyms are
//! keyed hashes of their session IDs.

use std::collections::BTreeMap;
use std::path::Path;

use time::{Duration, OffsetDateTime};

use crate::domain::{Phase, SessionToken, TrialOutcome};
use crate::experiment::{Experiment, Step};
use crate::researcher::{ResearcherError, audit};
use crate::store::Trial;
use crate::store::research::{ImportedSession, ResearchStore};

/// What an import stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub participants: usize,
    pub trials: usize,
}

/// Reads `path` and stores its participants in `experiment`. The whole file is refused (nothing
/// stored) if any row is malformed or names a task the experiment lacks.
pub async fn import_programs(
    research: &dyn ResearchStore,
    experiment: &Experiment,
    path: &Path,
    actor: &str,
    now: OffsetDateTime,
) -> Result<ImportSummary, ResearcherError> {
    let file = std::fs::File::open(path)
        .map_err(|e| ResearcherError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let parsed = analysis::data::read_programs(file)
        .map_err(|e| ResearcherError::Invalid(format!("{}: {e}", path.display())))?;
    let mut problems: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| format!("line {}: {}", e.line, e.message))
        .collect();
    let mut people: BTreeMap<u32, BTreeMap<usize, analysis::data::ProgramRow>> = BTreeMap::new();
    for (line, row) in &parsed.rows {
        if row.mdp_idx >= experiment.tasks.len() {
            problems.push(format!(
                "line {line}: mdp_idx {} is not a task of `{}` (it has {})",
                row.mdp_idx,
                experiment.slug,
                experiment.tasks.len()
            ));
            continue;
        }
        if people
            .entry(row.participant_idx)
            .or_default()
            .insert(row.mdp_idx, row.clone())
            .is_some()
        {
            problems.push(format!(
                "line {line}: participant {} has a second row for mdp_idx {}",
                row.participant_idx, row.mdp_idx
            ));
        }
    }
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(20).map(String::as_str).collect();
        return Err(ResearcherError::Invalid(format!(
            "{} has {} problem(s); nothing was imported:\n{}",
            path.display(),
            problems.len(),
            shown.join("\n")
        )));
    }
    let task_order: Vec<usize> = (0..experiment.tasks.len()).collect();
    let timeline = experiment.timeline(&task_order);
    let step_of = |task: usize| {
        timeline.iter().position(
            |step| matches!(step, Step::Task { phase: Phase::Tasks, task: t, .. } if *t == task),
        )
    };
    let final_step = timeline
        .iter()
        .position(|s| *s == Step::Complete)
        .unwrap_or(timeline.len()) as i64;
    let source = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut sessions = Vec::with_capacity(people.len());
    let mut n_trials = 0;
    for (participant_idx, rows) in &people {
        // A day before the import (so every rebuilt time is in the past) and a millisecond
        // apart, so the sessions' start order is the file's participant order.
        let created_at =
            now - Duration::days(1) + Duration::milliseconds(i64::from(*participant_idx));
        let mut clock_ms: i64 = 0;
        let mut trials = Vec::new();
        let mut answers: BTreeMap<String, String> = BTreeMap::new();
        for (&mdp_idx, row) in rows {
            let elapsed_ms = row
                .elapsed_minutes
                .filter(|m| m.is_finite() && *m >= 0.0)
                .map_or(0, |m| (m * 60_000.0).round() as i64);
            let started_ms = clock_ms;
            let ended_ms = started_ms + elapsed_ms;
            clock_ms = ended_ms;
            let step = step_of(mdp_idx).ok_or_else(|| {
                ResearcherError::Invalid(format!(
                    "task {mdp_idx} is not in the experiment's timeline"
                ))
            })? as i64;
            trials.push(Trial {
                session_id: String::new(),
                step,
                phase: Phase::Tasks,
                position: mdp_idx as i64,
                task_index: mdp_idx as i64,
                label: experiment.tasks[mdp_idx].label.clone(),
                started_at: created_at + Duration::milliseconds(started_ms),
                started_ms,
                ended_at: Some(created_at + Duration::milliseconds(ended_ms)),
                ended_ms: Some(ended_ms),
                outcome: Some(if row.skipped {
                    TrialOutcome::Skipped
                } else {
                    TrialOutcome::Submitted
                }),
                program: (!row.skipped).then(|| row.program.trim().to_owned()),
                runs: i64::from(row.program_evaluations.unwrap_or(0)),
            });
            for (item, answer) in [
                ("programming_exp", &row.programming_exp),
                ("programming_game_exp", &row.programming_game_exp),
            ] {
                if !answer.trim().is_empty() {
                    answers
                        .entry(item.to_owned())
                        .or_insert_with(|| answer.clone());
                }
            }
        }
        n_trials += trials.len();
        let params = BTreeMap::from([
            ("import_source".to_owned(), source.clone()),
            ("participant_idx".to_owned(), participant_idx.to_string()),
        ]);
        sessions.push(ImportedSession {
            session_id: uuid::Uuid::new_v4().to_string(),
            experiment: experiment.slug.to_string(),
            experiment_version: experiment.version.clone(),
            token_hash: SessionToken::generate().hash().0,
            seed: 0,
            task_order: task_order.clone(),
            created_at,
            completed_at: created_at + Duration::milliseconds(clock_ms),
            step: final_step,
            params,
            trials,
            answers: answers.into_iter().collect(),
            source: source.clone(),
            participant_idx: i64::from(*participant_idx),
        });
    }
    research.import_sessions(&sessions).await?;
    let summary = ImportSummary {
        participants: sessions.len(),
        trials: n_trials,
    };
    audit(
        research,
        actor,
        "import",
        Some(experiment.slug.as_str()),
        format!(
            "{source}: {} participants, {} trials",
            summary.participants, summary.trials
        ),
        now,
    )
    .await?;
    Ok(summary)
}
