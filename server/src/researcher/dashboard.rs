//! View models of the dashboard: experiments, the live participant table and the per-task
//! summaries with their small charts (the replay's are in `replay.rs`).

use std::sync::Arc;

use serde::Serialize;

use crate::domain::{Phase, TrialOutcome};
use crate::experiment::Experiment;
use crate::researcher::ResearcherError;
use crate::store::research::ResearchStore;
use crate::store::{Store, Trial};

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

/// Everything the experiment page shows beside the participant table.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentDashboard {
    pub tasks: Vec<TaskSummary>,
    /// Arrivals that got no session, counted by reason (the API's error code), most first.
    pub refused: Vec<(String, usize)>,
    /// The latest arrivals refused as repeats, newest first: the recruiter IDs a researcher may
    /// unlock.
    pub repeats: Vec<RefusedRepeat>,
}

/// An arrival refused because its recruiter ID had taken part.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedRepeat {
    pub recruiter_id: String,
    /// RFC 3339, UTC.
    pub at: String,
}

/// How many refused repeats the dashboard lists.
const REPEATS_SHOWN: usize = 20;

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

/// The per-task summaries and the refused arrivals of one experiment.
pub async fn experiment_dashboard(
    store: &dyn Store,
    research: &dyn ResearchStore,
    experiment: &Experiment,
) -> Result<ExperimentDashboard, ResearcherError> {
    let slug = experiment.slug.as_str();
    let trials = research.experiment_trials(slug).await?;
    let mut refused: Vec<(String, usize)> = Vec::new();
    let mut repeats = Vec::new();
    let mut arrivals = store.refused_arrivals(slug).await?;
    arrivals.sort_by_key(|a| std::cmp::Reverse(a.at));
    for arrival in arrivals {
        match refused
            .iter_mut()
            .find(|(reason, _)| *reason == arrival.reason)
        {
            Some((_, count)) => *count += 1,
            None => refused.push((arrival.reason.clone(), 1)),
        }
        if arrival.reason == "already_participated"
            && repeats.len() < REPEATS_SHOWN
            && let Some(recruiter_id) = arrival.recruiter_id
        {
            repeats.push(RefusedRepeat {
                recruiter_id,
                at: crate::clock::rfc3339(arrival.at),
            });
        }
    }
    refused.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(ExperimentDashboard {
        refused,
        repeats,
        tasks: task_summaries(experiment, &trials),
    })
}

pub(crate) fn clock(span: time::Duration) -> String {
    let total = span.whole_seconds().max(0);
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

pub(crate) fn ago(span: time::Duration) -> String {
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
