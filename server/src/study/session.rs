//! Entering a study and seeing where one is: entry, the current step's view, and the checks every
//! other use case starts with.

use std::collections::BTreeMap;

use rand::Rng;

use super::error::StudyError;
use super::storable::require_storable;
use super::{lifecycle, limits, views};
use crate::api::{Current, DeviceReport, Progress, SessionView, SkipView, TrialView};
use crate::clock::{now, rfc3339};
use crate::domain::{Phase, SessionStatus, SessionToken};
use crate::experiment::{Experiment, Order, Step};
use crate::store::{
    ArmOrders, Assignment, NewSession, NewTrial, RefusedArrival, Session, Store, StoreError, Trial,
};

/// A new or resumed session.
pub struct Entered {
    /// A new token: for a new session, and for a session resumed by recruiter ID (whose old
    /// token is then superseded). None when the request's own token resumed it.
    pub token: Option<SessionToken>,
    /// The session existed before this request.
    pub resumed: bool,
    pub session: Session,
}

/// What an arrival brings besides its URL parameters.
#[derive(Debug, Clone, Default)]
pub struct Arrival {
    /// Every URL parameter, verbatim.
    pub params: BTreeMap<String, String>,
    /// What the browser reported for the device check.
    pub device: Option<DeviceReport>,
    /// A signed-in researcher's preview: no recruiter ID needed, flagged, kept out of exports.
    pub preview: bool,
}

/// Entry (docs/api.md, "Entry"): resumes `existing` if it belongs to this experiment and
/// participant; otherwise checks the arrival (recruiter ID, device), resumes the active session
/// of the same recruiter ID when the experiment's resume parameters match, and else creates a
/// session (refusing a recruiter ID that already took part, unless repeats are allowed).
/// Refused arrivals are stored with their reason.
pub async fn enter(
    store: &dyn Store,
    experiment: &Experiment,
    arrival: Arrival,
    existing: Option<Session>,
) -> Result<Entered, StudyError> {
    check_params(&arrival.params)?;
    let recruiter_id = experiment.recruiter_id(&arrival.params).map(str::to_owned);
    if let Some(session) = existing {
        let same_participant = recruiter_id.is_none() || recruiter_id == session.recruiter_id;
        if session.experiment == experiment.slug.as_str() && same_participant {
            lifecycle::require_not_abandoned(&session, &experiment.timing, now())?;
            return Ok(Entered {
                token: None,
                resumed: true,
                session,
            });
        }
    }
    if !arrival.preview
        && let Err(refusal) = admit(experiment, recruiter_id.as_deref(), arrival.device.as_ref())
    {
        return Err(refuse(store, experiment, &arrival, recruiter_id, refusal).await);
    }
    if let Some(id) = recruiter_id.as_deref()
        && experiment.entry.resume
        && !arrival.preview
        && let Some(session) = store
            .latest_session_of(experiment.slug.as_str(), id)
            .await?
        && session.status == SessionStatus::Active
    {
        // A session past its time limit does not resume until a researcher resets it.
        if let Err(refusal) = lifecycle::require_not_abandoned(&session, &experiment.timing, now())
        {
            return Err(refuse(store, experiment, &arrival, recruiter_id, refusal).await);
        }
        let stored = store.params(&session.id).await?;
        if resume_matches(experiment, &stored, &arrival.params) {
            let token = SessionToken::generate();
            let session = store
                .replace_token(&session.id, &token.hash(), now())
                .await?;
            tracing::info!(session = %session.id, "session resumed by recruiter ID");
            return Ok(Entered {
                token: Some(token),
                resumed: true,
                session,
            });
        }
        // Where repeats are allowed, an arrival that does not match starts a session of its own.
        if !experiment.allow_repeats {
            let refusal = StudyError::wrong_state(
                "session_active_elsewhere",
                "you have already started this study in another browser or window; please \
                 continue there. If you cannot, contact the researcher through the site that \
                 sent you here",
            );
            return Err(refuse(store, experiment, &arrival, recruiter_id, refusal).await);
        }
    }
    create(store, experiment, arrival, recruiter_id).await
}

fn check_params(params: &BTreeMap<String, String>) -> Result<(), StudyError> {
    if params.len() > limits::MAX_PARAMS {
        return Err(StudyError::invalid(format!(
            "at most {} entry parameters",
            limits::MAX_PARAMS
        )));
    }
    for (name, value) in params {
        require_storable("an entry parameter", name)?;
        require_storable("an entry parameter", value)?;
        if name.is_empty()
            || name.len() > limits::MAX_PARAM_NAME
            || value.len() > limits::MAX_PARAM_VALUE
        {
            return Err(StudyError::invalid(format!(
                "entry parameter names must be 1-{} bytes and values at most {} bytes",
                limits::MAX_PARAM_NAME,
                limits::MAX_PARAM_VALUE
            )));
        }
    }
    Ok(())
}

/// The experiment's admission rules: a recruiter ID where one is required, and the device check.
fn admit(
    experiment: &Experiment,
    recruiter_id: Option<&str>,
    device: Option<&DeviceReport>,
) -> Result<(), StudyError> {
    if recruiter_id.is_none() && experiment.entry.require_recruiter_id {
        return Err(StudyError::not_admitted(
            "recruiter_id_missing",
            format!(
                "this link is missing your participant ID ({}); please open the study from the \
                 link on the site that sent you here",
                experiment.recruiter_id_params.join(" or ")
            ),
        ));
    }
    if let Some(device) = device
        && let Some(reason) = device.shortfall(&experiment.device)
    {
        return Err(StudyError::not_admitted("device_not_supported", reason));
    }
    Ok(())
}

/// Stores a refused arrival with its reason and returns the refusal; a failure to store it is
/// logged, never put in place of the participant's answer.
async fn refuse(
    store: &dyn Store,
    experiment: &Experiment,
    arrival: &Arrival,
    recruiter_id: Option<String>,
    refusal: StudyError,
) -> StudyError {
    let reason = refusal.code().unwrap_or("refused").to_owned();
    let record = RefusedArrival {
        experiment: experiment.slug.to_string(),
        reason,
        recruiter_id,
        params: arrival.params.clone(),
        device: arrival.device.as_ref().map(DeviceReport::to_json),
        at: now(),
    };
    if let Err(e) = store.refuse_arrival(record).await {
        tracing::error!(error = %e, "a refused arrival could not be stored");
    }
    refusal
}

/// Whether an arrival may continue a session entered with `stored` parameters: every resume
/// parameter the session has matches, or the arrival repeats the session's parameters exactly
/// (an entry retried after its answer was lost).
fn resume_matches(
    experiment: &Experiment,
    stored: &BTreeMap<String, String>,
    arrived: &BTreeMap<String, String>,
) -> bool {
    if stored == arrived {
        return true;
    }
    let mut named = experiment
        .entry
        .resume_params
        .iter()
        .filter_map(|name| stored.get(name).map(|value| (name, value)))
        .peekable();
    named.peek().is_some() && named.all(|(name, value)| arrived.get(name) == Some(value))
}

async fn create(
    store: &dyn Store,
    experiment: &Experiment,
    arrival: Arrival,
    recruiter_id: Option<String>,
) -> Result<Entered, StudyError> {
    let token = SessionToken::generate();
    let drawn: u64 = rand::rng().random();
    let seed = experiment.order.session_seed(drawn);
    let assignment = assignment(experiment, drawn, rand::rng().random());
    let new = NewSession {
        id: uuid::Uuid::new_v4().to_string(),
        experiment: experiment.slug.to_string(),
        experiment_version: experiment.version.clone(),
        token_hash: token.hash(),
        unique_recruiter: !experiment.allow_repeats && !arrival.preview,
        recruiter_id: recruiter_id.clone(),
        // A copy: the arrival is recorded as it came if the store refuses it as a repeat.
        params: arrival.params.clone(),
        seed: seed as i64,
        assignment,
        at: now(),
        preview: arrival.preview,
        device: arrival.device.as_ref().map(DeviceReport::to_json),
    };
    match store.create_session(new).await {
        Ok(session) => {
            tracing::info!(session = %session.id, experiment = %session.experiment, condition = ?session.condition, arm = ?session.arm, preview = session.preview, "session created");
            Ok(Entered {
                token: Some(token),
                resumed: false,
                session,
            })
        }
        Err(StoreError::Conflict(_)) => {
            let refusal = StudyError::wrong_state(
                "already_participated",
                "this participant ID has already taken part in this study (finished or left \
                 it), and each person may take part only once; if you think this is wrong, \
                 contact the researcher through the site that sent you here",
            );
            Err(refuse(store, experiment, &arrival, recruiter_id, refusal).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// How a new session's task order is chosen: drawn here (fixed or shuffled orders, seeded by
/// `drawn`), or by the store for balanced orders and for between-subject conditions, whose arm
/// the store picks (ties among the least-assigned broken by `tie_break`) and then the order
/// within it (docs/study.md §10).
fn assignment(experiment: &Experiment, drawn: u64, tie_break: u64) -> Assignment {
    let orders_of = |experiment: &Experiment| match &experiment.order {
        Order::Balanced { orders } => (orders.clone(), true),
        order => {
            let seed = order.session_seed(drawn);
            (
                vec![order.task_order(experiment.tasks.len(), None, seed)],
                false,
            )
        }
    };
    if experiment.conditions.is_empty() {
        return match orders_of(experiment) {
            (orders, true) => Assignment::Balanced { orders },
            (mut orders, false) => Assignment::Given {
                task_order: orders.pop().unwrap_or_default(),
            },
        };
    }
    let arms = experiment
        .conditions
        .iter()
        .map(|condition| {
            let (orders, balanced) = orders_of(&condition.experiment);
            ArmOrders {
                name: condition.name.clone(),
                orders,
                balanced,
                seed: condition.experiment.order.session_seed(drawn) as i64,
            }
        })
        .collect();
    Assignment::Conditions {
        arms,
        draw: tie_break,
    }
}

/// The experiment a session belongs to, refusing sessions of a definition that changed. The
/// experiment must be the session's condition's ([`Experiment::for_arm`]).
pub fn check_version(experiment: &Experiment, session: &Session) -> Result<(), StudyError> {
    if experiment.version != session.experiment_version {
        return Err(StudyError::wrong_state(
            "experiment_changed",
            format!(
                "this session started under version {} of the experiment, which the server no longer runs (now {})",
                session.experiment_version, experiment.version
            ),
        ));
    }
    if experiment.arm != session.arm {
        return Err(StudyError::Internal(anyhow::anyhow!(
            "session {} of condition {:?} was handled with the settings of condition {:?}",
            session.id,
            session.arm,
            experiment.arm
        )));
    }
    Ok(())
}

pub(super) fn current_step(
    experiment: &Experiment,
    session: &Session,
) -> Result<(Vec<Step>, Step), StudyError> {
    let timeline = experiment.timeline(&session.task_order);
    let step = usize::try_from(session.step)
        .ok()
        .and_then(|i| timeline.get(i).copied())
        .ok_or_else(|| {
            StudyError::Internal(anyhow::anyhow!(
                "session {} is at step {} of {}",
                session.id,
                session.step,
                timeline.len()
            ))
        })?;
    Ok((timeline, step))
}

/// Where the participant is and what the current step shows. Serving a task step starts its
/// trial (once): the skip delay runs from then.
pub async fn view(
    store: &dyn Store,
    experiment: &Experiment,
    session: &Session,
) -> Result<SessionView, StudyError> {
    // Entry and the study page pass the experiment as loaded; the session sees its condition's.
    let experiment = experiment.for_arm(session.arm.as_deref());
    check_version(experiment, session)?;
    let (timeline, step) = current_step(experiment, session)?;
    let current = match session.status {
        SessionStatus::Declined => Current::Declined {
            message: "You declined to take part. Please close this window and return the study on the recruiting site.".into(),
        },
        SessionStatus::Completed => {
            let params = store.params(&session.id).await?;
            Current::Done {
                code: session.completion_code.clone().unwrap_or_else(|| experiment.completion.code.clone()),
                redirect_url: experiment.completion.redirect_for(&params),
                text: experiment.completion.text.as_ref().map(views::text),
            }
        }
        SessionStatus::Active => match step {
            Step::Consent => Current::Consent {
                text: views::text(&experiment.consent.text),
                agree_label: experiment.consent.agree_label.clone(),
                decline_label: experiment.consent.decline_label.clone(),
            },
            Step::Screen { phase, index } => {
                let screen = experiment
                    .screen(phase, index)
                    .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no screen {phase:?}[{index}]")))?;
                Current::Screen {
                    phase: phase.as_str().to_owned(),
                    text: views::text(&screen.text),
                    level: screen.level.as_ref().map(|level| views::map(&level.task)),
                    demo: match (&screen.level, &screen.demo) {
                        (Some(level), Some(program)) => Some(views::demo(experiment, &level.task, program)),
                        _ => None,
                    },
                    palette: screen.palette.as_ref().map(|letters| letters.iter().map(char::to_string).collect()),
                }
            }
            Step::Task { phase, index, task } => {
                let trial = serve(store, experiment, session, phase, index, task).await?;
                Current::Task { phase: phase.as_str().to_owned(), trial: trial_view(experiment, &trial, phase, task)? }
            }
            Step::Questionnaire => Current::Questionnaire { items: experiment.questionnaire.iter().map(views::item).collect() },
            Step::Complete => Current::Complete { text: None },
        },
    };
    let phase = match session.status {
        SessionStatus::Completed => Phase::Complete,
        _ => step.phase(),
    };
    let position = session.step as usize;
    let progress = Progress {
        step: session.step,
        steps: timeline.len() as i64,
        phase: phase.as_str().to_owned(),
        phase_step: timeline[..position.min(timeline.len())]
            .iter()
            .filter(|s| s.phase() == phase)
            .count() as i64,
        phase_steps: timeline.iter().filter(|s| s.phase() == phase).count() as i64,
    };
    Ok(SessionView {
        session_id: session.id.clone(),
        experiment: session.experiment.clone(),
        status: session.status.as_str().to_owned(),
        progress,
        current,
    })
}

pub(super) async fn serve(
    store: &dyn Store,
    experiment: &Experiment,
    session: &Session,
    phase: Phase,
    index: usize,
    task: usize,
) -> Result<Trial, StudyError> {
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let at = now();
    Ok(store
        .serve_trial(NewTrial {
            session_id: session.id.clone(),
            step: session.step,
            phase,
            position: index as i64,
            task_index: task as i64,
            label: entry.label.clone(),
            at,
            ms: session.ms_since_start(at),
        })
        .await?)
}

pub(super) fn trial_view(
    experiment: &Experiment,
    trial: &Trial,
    phase: Phase,
    task: usize,
) -> Result<TrialView, StudyError> {
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let text = match phase {
        Phase::Tutorial => experiment
            .tutorial
            .get(task)
            .map(|screen| views::text(&screen.text)),
        _ => entry.text.as_ref().map(views::text),
    };
    let palette: Vec<String> = match phase {
        Phase::Tutorial => experiment
            .tutorial
            .get(task)
            .and_then(|screen| screen.palette.as_ref())
            .map(|letters| letters.iter().map(char::to_string).collect()),
        _ => None,
    }
    .unwrap_or_else(|| {
        dsl::Action::ALL
            .iter()
            .map(|a| a.letter().to_string())
            .chain((1..=experiment.limits.subroutines).map(|k| k.to_string()))
            .collect()
    });
    let skip = (phase == Phase::Tasks).then(|| {
        let available_at = trial.started_at + experiment.skip_delay;
        SkipView {
            delay_seconds: experiment.skip_delay.as_secs(),
            available_at: rfc3339(available_at),
            available: now() >= available_at,
        }
    });
    Ok(TrialView {
        step: trial.step,
        phase: phase.as_str().to_owned(),
        position: trial.position,
        task_index: trial.task_index,
        label: trial.label.clone(),
        text,
        map: views::map(&entry.task),
        light: views::light_name(experiment.light).to_owned(),
        limits: views::limits(experiment),
        palette,
        started_at: rfc3339(trial.started_at),
        runs: trial.runs,
        skip,
    })
}

pub(super) fn wrong_step(session: &Session, step: i64) -> StudyError {
    StudyError::wrong_state(
        "wrong_step",
        format!(
            "the session is at step {}, not step {step}; GET /api/v1/session shows the current step",
            session.step
        ),
    )
}

/// The one answer every write gets once a session has ended (declined or completed), unless it
/// is a retry of something that already took effect.
pub(super) fn closed(session: &Session) -> StudyError {
    StudyError::wrong_state(
        "session_closed",
        format!("the session is {}", session.status.as_str()),
    )
}

/// The trial of `step`, if the server has served it.
pub(super) async fn served_trial(
    store: &dyn Store,
    session: &Session,
    step: i64,
) -> Result<Option<Trial>, StudyError> {
    match store.trial(&session.id, step).await {
        Ok(trial) => Ok(Some(trial)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn require_active(session: &Session) -> Result<(), StudyError> {
    match session.status {
        SessionStatus::Active => Ok(()),
        _ => Err(closed(session)),
    }
}
