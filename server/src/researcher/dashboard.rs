//! View models of the dashboard (experiments, the live participant table, per-task summaries
//! with their small charts) and of the replay (every program version and run of a trial, with
//! times, and the task's map for the participant app's renderer).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::api::{MapView, TraceStepView};
use crate::domain::{Phase, TrialOutcome};
use crate::experiment::{Experiment, Step};
use crate::researcher::ResearcherError;
use crate::researcher::pseudonym::Pseudonyms;
use crate::store::research::ResearchStore;
use crate::store::{Session, Store, Trial};
use crate::study::views;

/// One experiment on the dashboard's front page.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentCard {
    pub slug: String,
    pub title: String,
    pub sessions: usize,
    pub active: usize,
    pub completed: usize,
    pub declined: usize,
}

/// A row of the live participant table.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantRow {
    pub pseudonym: String,
    pub session_id: String,
    pub status: String,
    pub phase: String,
    pub task: String,
    /// RFC 3339, UTC.
    pub last_seen: String,
    pub last_seen_ago: String,
    pub elapsed: String,
    pub evaluations: i64,
}

/// Figures of one main task over every participant, with the bar widths of its chart.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSummary {
    pub mdp_idx: usize,
    pub label: String,
    pub submitted: usize,
    pub skipped: usize,
    pub solved: usize,
    pub mean_length: String,
    pub mean_steps: String,
    pub share_subroutines: String,
    /// Chart: widths (in a 160-unit bar) of solved, unsolved-submitted and skipped trials.
    pub bar_solved: u32,
    pub bar_unsolved: u32,
    pub bar_skipped: u32,
    /// Chart: width (in a 160-unit bar) of the mean length, relative to the longest task mean.
    pub bar_length: u32,
}

/// Everything the experiment page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentDashboard {
    pub participants: Vec<ParticipantRow>,
    pub tasks: Vec<TaskSummary>,
    /// Arrivals that got no session, counted by reason (the API's error code), most first.
    pub refused: Vec<(String, usize)>,
}

pub const BAR: f64 = 160.0;

pub async fn experiment_cards(
    store: &dyn Store,
    experiments: impl Iterator<Item = &Arc<Experiment>>,
) -> Result<Vec<ExperimentCard>, ResearcherError> {
    let mut cards = Vec::new();
    for experiment in experiments {
        let sessions = store.sessions_of(experiment.slug.as_str()).await?;
        let count = |status: &str| {
            sessions
                .iter()
                .filter(|s| s.status.as_str() == status)
                .count()
        };
        cards.push(ExperimentCard {
            slug: experiment.slug.to_string(),
            title: experiment.title.clone(),
            sessions: sessions.len(),
            active: count("active"),
            completed: count("completed"),
            declined: count("declined"),
        });
    }
    Ok(cards)
}

/// The live table and the per-task summaries of one experiment.
pub async fn experiment_dashboard(
    store: &dyn Store,
    research: &dyn ResearchStore,
    experiment: &Experiment,
    pseudonyms: &Pseudonyms,
    now: OffsetDateTime,
) -> Result<ExperimentDashboard, ResearcherError> {
    let slug = experiment.slug.as_str();
    let sessions = store.sessions_of(slug).await?;
    let trials = research.experiment_trials(slug).await?;
    let activity: HashMap<String, i64> = research
        .activity(slug)
        .await?
        .into_iter()
        .map(|a| (a.session_id, a.last_ms))
        .collect();
    let mut evaluations: HashMap<&str, i64> = HashMap::new();
    for trial in &trials {
        *evaluations.entry(trial.session_id.as_str()).or_default() += trial.runs;
    }
    let participants = sessions
        .iter()
        .map(|session| {
            participant_row(
                experiment,
                session,
                pseudonyms,
                activity.get(&session.id).copied(),
                evaluations.get(session.id.as_str()).copied().unwrap_or(0),
                now,
            )
        })
        .collect();
    let mut refused: Vec<(String, usize)> = Vec::new();
    for arrival in store.refused_arrivals(slug).await? {
        match refused
            .iter_mut()
            .find(|(reason, _)| *reason == arrival.reason)
        {
            Some((_, count)) => *count += 1,
            None => refused.push((arrival.reason, 1)),
        }
    }
    refused.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(ExperimentDashboard {
        refused,
        participants,
        tasks: task_summaries(experiment, &trials),
    })
}

fn participant_row(
    experiment: &Experiment,
    session: &Session,
    pseudonyms: &Pseudonyms,
    last_activity_ms: Option<i64>,
    evaluations: i64,
    now: OffsetDateTime,
) -> ParticipantRow {
    let timeline = experiment.timeline(&session.task_order);
    let step = usize::try_from(session.step)
        .ok()
        .and_then(|i| timeline.get(i))
        .copied();
    let (phase, task) = match step {
        Some(Step::Task { phase, task, index }) => (
            phase.as_str().to_owned(),
            experiment
                .task_entry(phase, task)
                .map_or(String::new(), |e| {
                    format!("{} ({} of phase)", e.label, index + 1)
                }),
        ),
        Some(other) => (other.phase().as_str().to_owned(), String::new()),
        None => (Phase::Complete.as_str().to_owned(), String::new()),
    };
    let from_activity =
        last_activity_ms.map(|ms| session.created_at + time::Duration::milliseconds(ms));
    let last_seen = from_activity.map_or(session.updated_at, |at| at.max(session.updated_at));
    let end = session
        .completed_at
        .unwrap_or(if session.status.as_str() == "active" {
            now
        } else {
            session.updated_at
        });
    ParticipantRow {
        pseudonym: pseudonyms.of_session(session),
        session_id: session.id.clone(),
        status: if session.preview {
            format!("{} (preview)", session.status.as_str())
        } else {
            session.status.as_str().to_owned()
        },
        phase,
        task,
        last_seen: crate::clock::rfc3339(last_seen),
        last_seen_ago: ago(now - last_seen),
        elapsed: clock(end - session.created_at),
        evaluations,
    }
}

fn clock(span: time::Duration) -> String {
    let total = span.whole_seconds().max(0);
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn ago(span: time::Duration) -> String {
    let s = span.whole_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}

/// Per-task figures over the main-task trials, under the analysis semantics.
pub fn task_summaries(experiment: &Experiment, trials: &[Trial]) -> Vec<TaskSummary> {
    struct Acc {
        submitted: usize,
        skipped: usize,
        solved: usize,
        lengths: Vec<f64>,
        steps: Vec<f64>,
        subroutines: usize,
    }
    let mut accs: Vec<Acc> = experiment
        .tasks
        .iter()
        .map(|_| Acc {
            submitted: 0,
            skipped: 0,
            solved: 0,
            lengths: Vec::new(),
            steps: Vec::new(),
            subroutines: 0,
        })
        .collect();
    for trial in trials.iter().filter(|t| t.phase == Phase::Tasks) {
        let Some(index) = usize::try_from(trial.task_index).ok() else {
            continue;
        };
        let (Some(acc), Some(entry)) = (accs.get_mut(index), experiment.tasks.get(index)) else {
            continue;
        };
        match trial.outcome {
            Some(TrialOutcome::Skipped) => acc.skipped += 1,
            Some(TrialOutcome::Submitted) => {
                acc.submitted += 1;
                let Some(program) = trial
                    .program
                    .as_deref()
                    .and_then(|p| dsl::compact::parse(p.trim(), &experiment.limits).ok())
                else {
                    continue;
                };
                acc.lengths.push(f64::from(program.instruction_count()));
                if program.routines[0]
                    .iter()
                    .any(|i| matches!(i, dsl::Instr::Call(_)))
                {
                    acc.subroutines += 1;
                }
                let outcome = dsl::run(&entry.task, &program, &dsl::RunOptions::default());
                if outcome.solved {
                    acc.solved += 1;
                    acc.steps.push(f64::from(outcome.steps));
                }
            }
            None => {}
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let longest = accs
        .iter()
        .filter_map(|a| mean(&a.lengths))
        .fold(0.0f64, f64::max)
        .max(1.0);
    accs.iter()
        .enumerate()
        .map(|(index, acc)| {
            let ended = (acc.submitted + acc.skipped).max(1) as f64;
            let width = |n: usize| (BAR * n as f64 / ended).round() as u32;
            TaskSummary {
                mdp_idx: index,
                label: experiment.tasks[index].label.clone(),
                submitted: acc.submitted,
                skipped: acc.skipped,
                solved: acc.solved,
                mean_length: mean(&acc.lengths).map_or("–".into(), |m| format!("{m:.1}")),
                mean_steps: mean(&acc.steps).map_or("–".into(), |m| format!("{m:.1}")),
                share_subroutines: if acc.submitted == 0 {
                    "–".into()
                } else {
                    format!(
                        "{:.0}%",
                        100.0 * acc.subroutines as f64 / acc.submitted as f64
                    )
                },
                bar_solved: width(acc.solved),
                bar_unsolved: width(acc.submitted - acc.solved),
                bar_skipped: width(acc.skipped),
                bar_length: mean(&acc.lengths).map_or(0, |m| (BAR * m / longest).round() as u32),
            }
        })
        .collect()
}

/// One entry of a trial's history.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Milliseconds since the trial started (server clock).
    pub t_ms: i64,
    /// `start`, `edit`, `run`, `submit` or `skip`.
    pub kind: String,
    /// The program after this entry (compact form).
    pub program: String,
    pub solved: Option<bool>,
    pub detail: String,
}

/// One trial of a participant, for the replay.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayTrial {
    pub step: i64,
    pub phase: String,
    pub position: i64,
    pub task_index: i64,
    pub label: String,
    pub outcome: Option<String>,
    pub program: Option<String>,
    pub duration: String,
    pub map: Option<MapView>,
    pub timeline: Vec<TimelineEntry>,
}

/// Every trial of a session with its history.
pub async fn replay(
    store: &dyn Store,
    experiment: &Experiment,
    session_id: &str,
) -> Result<Vec<ReplayTrial>, ResearcherError> {
    let record = store.session_record(session_id).await?;
    if record.session.experiment != experiment.slug.as_str() {
        return Err(ResearcherError::NotFound(format!(
            "session {session_id} is not part of `{}`",
            experiment.slug
        )));
    }
    let mut trials = Vec::new();
    for trial in &record.trials {
        let entry = experiment.task_entry(
            trial.phase,
            usize::try_from(trial.task_index).unwrap_or(usize::MAX),
        );
        let mut timeline = vec![TimelineEntry {
            t_ms: 0,
            kind: "start".into(),
            program: String::new(),
            solved: None,
            detail: "the task was served".into(),
        }];
        for event in record
            .events
            .iter()
            .filter(|e| e.step == Some(trial.step) && e.kind == "edit")
        {
            let program = event
                .data
                .get("program")
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_owned();
            let op = event
                .data
                .get("op")
                .and_then(|p| p.as_str())
                .unwrap_or("edit");
            let t_ms = event.client_ms.unwrap_or(event.session_ms) - trial.started_ms;
            timeline.push(TimelineEntry {
                t_ms,
                kind: "edit".into(),
                program,
                solved: None,
                detail: op.to_owned(),
            });
        }
        for run in record.runs.iter().filter(|r| r.step == trial.step) {
            timeline.push(TimelineEntry {
                t_ms: run.session_ms - trial.started_ms,
                kind: "run".into(),
                program: run.program.clone(),
                solved: Some(run.solved),
                detail: format!("run {} ({}), {} steps", run.seq, run.mode, run.steps),
            });
        }
        if let (Some(outcome), Some(ended_ms)) = (trial.outcome, trial.ended_ms) {
            timeline.push(TimelineEntry {
                t_ms: ended_ms - trial.started_ms,
                kind: match outcome {
                    TrialOutcome::Submitted => "submit",
                    TrialOutcome::Skipped => "skip",
                }
                .to_owned(),
                program: trial.program.clone().unwrap_or_default(),
                solved: None,
                detail: format!("{} after {} runs", outcome.as_str(), trial.runs),
            });
        }
        timeline.sort_by_key(|e| e.t_ms);
        trials.push(ReplayTrial {
            step: trial.step,
            phase: trial.phase.as_str().to_owned(),
            position: trial.position,
            task_index: trial.task_index,
            label: trial.label.clone(),
            outcome: trial.outcome.map(|o| o.as_str().to_owned()),
            program: trial.program.clone(),
            duration: trial.ended_ms.map_or(String::new(), |end| {
                clock(time::Duration::milliseconds(end - trial.started_ms))
            }),
            map: entry.map(|e| views::map(&e.task)),
            timeline,
        });
    }
    Ok(trials)
}

/// The result of running a program for a researcher.
#[derive(Debug, Clone, Serialize)]
pub struct ResearcherRun {
    pub program: String,
    pub solved: bool,
    pub steps: u32,
    pub instruction_count: u32,
    pub map: MapView,
    pub trace: Vec<TraceStepView>,
}

/// Runs `program` (compact or readable form) on a task of the experiment, the way the
/// participants' programs ran (the experiment's light setting).
pub fn run_program(
    experiment: &Experiment,
    phase: &str,
    task_index: usize,
    program: &str,
) -> Result<ResearcherRun, ResearcherError> {
    let phase = Phase::parse(phase)
        .ok_or_else(|| ResearcherError::Invalid(format!("`{phase}` is not a phase")))?;
    let entry = experiment.task_entry(phase, task_index).ok_or_else(|| {
        ResearcherError::NotFound(format!("no task {task_index} in phase {}", phase.as_str()))
    })?;
    let parsed = dsl::parse_program(program, None, &experiment.limits)
        .map_err(|e| ResearcherError::Invalid(format!("the program does not parse: {e}")))?;
    let outcome = views::execute(experiment, &entry.task, &parsed);
    Ok(ResearcherRun {
        program: parsed.to_compact(),
        solved: outcome.solved,
        steps: outcome.steps,
        instruction_count: parsed.instruction_count(),
        map: views::map(&entry.task),
        trace: views::trace(&outcome),
    })
}
