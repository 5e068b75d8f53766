//! Participants run through a study at the store level, without HTTP: fast enough to fill a
//! database with completed sessions for the export and loader tests on both backends.

use server::domain::{Phase, TrialOutcome};
use server::experiment::{Experiment, Step};
use server::store::{Assignment, FinishTrial, NewSession, NewTrial, Session, Store};

/// One simulated participant: who they are to the recruiter and what they answer.
pub struct Simulated<'a> {
    /// Sets the seed (and so the task order under shuffled orders) and the start time.
    pub index: usize,
    pub recruiter_id: &'a str,
    pub answers: &'a [(String, String)],
}

/// Runs one participant of `experiment` through its timeline: consent, every main task served
/// and solved with the published program of that task, the questionnaire with the given answers,
/// and completion. Returns the session and the order in which the participant saw the tasks.
pub async fn simulate_participant(
    store: &dyn Store,
    experiment: &Experiment,
    who: Simulated<'_>,
) -> (Session, Vec<usize>) {
    let solutions = super::solutions();
    let seed = 1000 + who.index as u64;
    let task_order = experiment
        .order
        .task_order(experiment.tasks.len(), None, seed);
    // `participant_idx` numbers sessions in the order they started, so each simulated
    // participant starts a second after the one before: sessions created within the same
    // millisecond would otherwise be ordered by their random IDs.
    let at = server::clock::now() + time::Duration::seconds(who.index as i64);
    let session = store
        .create_session(NewSession {
            id: uuid::Uuid::new_v4().to_string(),
            experiment: experiment.slug.to_string(),
            experiment_version: experiment.version.clone(),
            token_hash: server::domain::SessionToken::generate().hash(),
            recruiter_id: Some(who.recruiter_id.to_owned()),
            unique_recruiter: true,
            params: [("PROLIFIC_PID".to_owned(), who.recruiter_id.to_owned())].into(),
            seed: seed as i64,
            assignment: Assignment::Given {
                task_order: task_order.clone(),
            },
            at,
            preview: false,
            device: None,
        })
        .await
        .expect("session");
    store
        .record_consent(&session.id, true, at)
        .await
        .expect("consent");
    let timeline = experiment.timeline(&task_order);
    for (step, entry) in timeline.iter().enumerate().skip(1) {
        let step = step as i64;
        match *entry {
            Step::Task {
                phase: Phase::Tasks,
                index,
                task,
            } => {
                let label = experiment.tasks[task].label.clone();
                let program = solutions.tasks[task].clone();
                solve_task(store, &session.id, step, (index, task), label, program, at).await;
            }
            Step::Questionnaire => {
                store
                    .save_answers(&session.id, step, who.answers, at)
                    .await
                    .expect("answers");
            }
            Step::Complete => {
                let completed = store
                    .complete_session(&session.id, step, "CODE", at)
                    .await
                    .expect("complete");
                return (completed, task_order);
            }
            _ => {
                store.advance(&session.id, step, at).await.expect("advance");
            }
        }
    }
    panic!("the timeline of {} has no completion step", experiment.slug);
}

/// Serves the main task at `step` (`position` in the participant's order, `task` in the task
/// list) and submits `program` half a second later.
async fn solve_task(
    store: &dyn Store,
    session_id: &str,
    step: i64,
    (position, task): (usize, usize),
    label: String,
    program: String,
    at: time::OffsetDateTime,
) {
    store
        .serve_trial(NewTrial {
            session_id: session_id.to_owned(),
            step,
            phase: Phase::Tasks,
            position: position as i64,
            task_index: task as i64,
            label,
            at,
            ms: 1000 * step,
        })
        .await
        .expect("serve");
    store
        .finish_trial(FinishTrial {
            session_id: session_id.to_owned(),
            step,
            outcome: TrialOutcome::Submitted,
            program: Some(program),
            at,
            ms: 1000 * step + 500,
        })
        .await
        .expect("finish");
}
