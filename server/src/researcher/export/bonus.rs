//! The bonus export and its rule: pay for short programs relative to the shortest on each task.

use std::io::Write;

use crate::experiment::BonusRule;
use crate::researcher::ResearcherError;
use crate::researcher::export::facts::is_task_trial;
use crate::researcher::export::{ExportSummary, Exporter, Sink};
use crate::store::Session;

impl Exporter {
    /// The recruiter's bulk-bonus format (Prolific: one `ID,amount` line per participant, no
    /// header). Bonuses are paid to recruiter IDs, so this export needs the raw-IDs option.
    pub(super) async fn bonus_csv(
        &self,
        sink: &mut Sink,
    ) -> Result<ExportSummary, ResearcherError> {
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
        // Excluded participants who completed are paid like everyone else.
        for participant in self.participants_with(true).await? {
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
            let experiment = self.experiment_of(&participant.session);
            let first = self.first_task_slot(&participant.session);
            let lengths = trials
                .iter()
                .filter(|t| is_task_trial(t))
                .map(|t| {
                    (
                        first + t.task_index.max(0) as usize,
                        self.trial_facts(experiment, t).instruction_count,
                    )
                })
                .collect();
            people.push((recruiter_id, lengths));
        }
        let n_tasks = self.task_slots();
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

    /// Where a session's tasks start among the tasks the bonus compares: each between-subject
    /// condition's task list in turn, then the top level's (sessions without a known condition),
    /// so that the shortest program is taken per condition and task.
    fn first_task_slot(&self, session: &Session) -> usize {
        let conditions = &self.experiment.conditions;
        let position = conditions
            .iter()
            .position(|c| Some(c.name.as_str()) == session.arm.as_deref())
            .unwrap_or(conditions.len());
        conditions[..position]
            .iter()
            .map(|c| c.experiment.tasks.len())
            .sum()
    }

    /// How many tasks the bonus compares: every condition's and the top level's.
    fn task_slots(&self) -> usize {
        let conditions = &self.experiment.conditions;
        conditions
            .iter()
            .map(|c| c.experiment.tasks.len())
            .sum::<usize>()
            + self.experiment.tasks.len()
    }
}

/// A person's submitted lengths: `(task, Some(length))`, `None` for a skipped task.
type TaskLengths = Vec<(usize, Option<u32>)>;

/// The bonus of docs/study.md §5.1: per task,
/// `clip(per_task - c * (length - shortest), 0, per_task)` where `shortest` is the shortest
/// submitted program of any participant on that task; skipped tasks get nothing. `c` is the value
/// on the grid 0, 0.001, ..., 1 whose mean total bonus is closest to `target` (the lowest such c on
/// ties); without a target, `c` = 0 (every solution earns the full amount). Each person is a list
/// of `(task, Some(length))` for submitted tasks.
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
}
