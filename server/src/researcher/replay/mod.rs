//! The replay's view models: every client event, run and outcome of a participant's trials,
//! with times and the program at each point (the program at skip time included), the events
//! outside the trials, the questionnaire answers, the task's map for the participant app's
//! renderer, and a researcher's own runs.

use serde::Serialize;

use crate::api::{MapView, TraceStepView};
use crate::domain::{Phase, TrialOutcome};
use crate::experiment::Experiment;
use crate::researcher::ResearcherError;
use crate::researcher::dashboard::clock;
use crate::store::{Answer, Store, StoredEvent};
use crate::study::views;

pub mod kinds;
mod timeline;

/// One entry of a trial's history.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Milliseconds since the trial started (events by the client's clock, rows by the server's).
    pub t_ms: i64,
    /// `t_ms` as `m:ss.t`.
    pub time: String,
    /// The client event's kind, or `start`, `run`, `submit`, `skip` for the server's rows
    /// ([`kinds`] lists them all).
    pub kind: String,
    /// `kind` when it is a plain word (for a CSS class), else `other`.
    pub css: String,
    pub label: String,
    /// The participant's program after this entry (compact form).
    pub program: String,
    /// Whether this entry recorded a program (an edit, a run, a page with its draft, the end).
    pub shows_program: bool,
    pub solved: Option<bool>,
    /// ` ✓`, ` ✗` or nothing.
    pub mark: String,
    pub detail: String,
    /// The client event's number (events only).
    pub seq: Option<i64>,
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
    /// The submitted program (stored with the trial).
    pub program: Option<String>,
    /// For a skipped trial, the program the participant had when they skipped (from the events).
    pub program_at_skip: Option<String>,
    /// What [`Self::final_program`] is: the submitted program, the program at skip time, or the
    /// last program of an unfinished trial.
    pub final_label: String,
    pub final_program: Option<String>,
    /// Whether `final_program` has no instruction.
    pub final_empty: bool,
    pub duration: String,
    pub map: Option<MapView>,
    pub timeline: Vec<TimelineEntry>,
}

/// A client event outside every trial (consent, screens, the questionnaire, the end).
#[derive(Debug, Clone, Serialize)]
pub struct SessionEvent {
    pub seq: i64,
    pub step: Option<i64>,
    /// The step's phase (`consent`, `instructions`, ...), empty when unknown.
    pub phase: String,
    /// Time since the session started (client clock), `h:mm:ss`.
    pub time: String,
    pub kind: String,
    pub css: String,
    pub label: String,
    pub detail: String,
}

/// One questionnaire item with the participant's answer.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerView {
    pub item: String,
    /// The experiment's question text (the item's ID for an item it no longer has).
    pub question: String,
    /// Verbatim; `None` when not answered.
    pub answer: Option<String>,
}

/// Everything the replay page shows about one session.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub trials: Vec<ReplayTrial>,
    pub outside: Vec<SessionEvent>,
    pub answers: Vec<AnswerView>,
}

fn empty_program(program: &str) -> bool {
    program.chars().all(|c| c == '|')
}

/// Every trial of a session with its history, the events outside the trials, and the answers.
pub async fn replay(
    store: &dyn Store,
    experiment: &Experiment,
    session_id: &str,
) -> Result<Replay, ResearcherError> {
    let record = store.session_record(session_id).await?;
    if record.session.experiment != experiment.slug.as_str() {
        return Err(ResearcherError::NotFound(format!(
            "session {session_id} is not part of `{}`",
            experiment.slug
        )));
    }
    // A between-subject condition has its own tasks, screens and light.
    let experiment = experiment.for_arm(record.session.arm.as_deref());
    let mut trials = Vec::new();
    for trial in &record.trials {
        let entry = experiment.task_entry(
            trial.phase,
            usize::try_from(trial.task_index).unwrap_or(usize::MAX),
        );
        let events: Vec<&StoredEvent> = record
            .events
            .iter()
            .filter(|e| e.step == Some(trial.step))
            .collect();
        let runs: Vec<_> = record
            .runs
            .iter()
            .filter(|r| r.step == trial.step)
            .collect();
        let history = timeline::history(trial, &events, &runs);
        let (final_label, final_program) = match trial.outcome {
            Some(TrialOutcome::Submitted) => ("Submitted program", trial.program.clone()),
            Some(TrialOutcome::Skipped) => ("Program at skip time", history.at_skip.clone()),
            None => ("Last program (not finished)", history.last.clone()),
        };
        trials.push(ReplayTrial {
            step: trial.step,
            phase: trial.phase.as_str().to_owned(),
            position: trial.position,
            task_index: trial.task_index,
            label: trial.label.clone(),
            outcome: trial.outcome.map(|o| o.as_str().to_owned()),
            program: trial.program.clone(),
            program_at_skip: history.at_skip,
            final_label: final_label.to_owned(),
            final_empty: final_program.as_deref().is_some_and(empty_program),
            final_program,
            duration: trial.ended_ms.map_or(String::new(), |end| {
                clock(time::Duration::milliseconds(
                    end.saturating_sub(trial.started_ms),
                ))
            }),
            map: entry.map(|e| views::map(&e.task)),
            timeline: history.entries,
        });
    }
    let steps = experiment.timeline(&record.session.task_order);
    let outside = record
        .events
        .iter()
        .filter(|e| {
            e.step
                .is_none_or(|s| record.trials.iter().all(|t| t.step != s))
        })
        .map(|event| SessionEvent {
            seq: event.seq,
            step: event.step,
            phase: event
                .step
                .and_then(|s| usize::try_from(s).ok())
                .and_then(|s| steps.get(s))
                .map_or(String::new(), |s| s.phase().as_str().to_owned()),
            time: clock(time::Duration::milliseconds(
                event.client_ms.unwrap_or(event.session_ms),
            )),
            kind: event.kind.clone(),
            css: kinds::css_class(&event.kind),
            label: kinds::event_label(&event.kind),
            detail: kinds::detail(&event.data),
        })
        .collect();
    Ok(Replay {
        trials,
        outside,
        answers: answers(experiment, &record.answers),
    })
}

/// Every item of the experiment's questionnaire in its order with the answer, then any answer
/// to an item the experiment no longer has.
fn answers(experiment: &Experiment, stored: &[Answer]) -> Vec<AnswerView> {
    let answer_to = |item: &str| {
        stored
            .iter()
            .find(|a| a.item == item)
            .map(|a| a.answer.clone())
    };
    let mut views: Vec<AnswerView> = experiment
        .questionnaire
        .iter()
        .map(|item| AnswerView {
            item: item.id.clone(),
            question: item.prompt.clone(),
            answer: answer_to(&item.id),
        })
        .collect();
    for answer in stored {
        if experiment.questionnaire.iter().all(|i| i.id != answer.item) {
            views.push(AnswerView {
                item: answer.item.clone(),
                question: answer.item.clone(),
                answer: Some(answer.answer.clone()),
            });
        }
    }
    views
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
