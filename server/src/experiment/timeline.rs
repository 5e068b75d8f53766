//! A session's timeline: the steps a participant goes through, and what each step names.

use std::collections::BTreeMap;

use crate::domain::Phase;
use crate::experiment::{Experiment, Screen, TaskEntry};

/// One step of a session's timeline: what the participant is asked to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Consent,
    /// `index` into `tutorial` or `instructions`.
    Screen {
        phase: Phase,
        index: usize,
    },
    /// A level to solve. `index` is the position within the phase; `task` indexes the phase's
    /// list (`tutorial`, `practice` or `tasks`); for main tasks it is the `mdp_idx`.
    Task {
        phase: Phase,
        index: usize,
        task: usize,
    },
    Questionnaire,
    Complete,
}

impl Step {
    pub fn phase(&self) -> Phase {
        match *self {
            Step::Consent => Phase::Consent,
            Step::Screen { phase, .. } | Step::Task { phase, .. } => phase,
            Step::Questionnaire => Phase::Questionnaire,
            Step::Complete => Phase::Complete,
        }
    }
}

impl Experiment {
    /// Every step of a session whose main tasks come in `task_order`, in order. A session's
    /// progress is an index into this list.
    pub fn timeline(&self, task_order: &[usize]) -> Vec<Step> {
        let mut steps = vec![Step::Consent];
        // Tutorial screens and levels share one list, so a level's position within the phase is
        // its index in that list.
        for (index, screen) in self.tutorial.iter().enumerate() {
            steps.push(if screen.solve {
                Step::Task {
                    phase: Phase::Tutorial,
                    index,
                    task: index,
                }
            } else {
                Step::Screen {
                    phase: Phase::Tutorial,
                    index,
                }
            });
        }
        steps.extend((0..self.practice.len()).map(|i| Step::Task {
            phase: Phase::Practice,
            index: i,
            task: i,
        }));
        steps.extend((0..self.instructions.len()).map(|index| Step::Screen {
            phase: Phase::Instructions,
            index,
        }));
        steps.extend(
            task_order
                .iter()
                .enumerate()
                .map(|(index, &task)| Step::Task {
                    phase: Phase::Tasks,
                    index,
                    task,
                }),
        );
        if !self.questionnaire.is_empty() {
            steps.push(Step::Questionnaire);
        }
        steps.push(Step::Complete);
        steps
    }

    /// The task a `Step::Task` names.
    pub fn task_entry(&self, phase: Phase, task: usize) -> Option<&TaskEntry> {
        match phase {
            Phase::Tutorial => self.tutorial.get(task)?.level.as_ref(),
            Phase::Practice => self.practice.get(task),
            Phase::Tasks => self.tasks.get(task),
            _ => None,
        }
    }

    /// The screen a `Step::Screen` names.
    pub fn screen(&self, phase: Phase, index: usize) -> Option<&Screen> {
        match phase {
            Phase::Tutorial => self.tutorial.get(index),
            Phase::Instructions => self.instructions.get(index),
            _ => None,
        }
    }

    /// The recruiter's participant ID among the entry parameters: the first of
    /// `recruiter_id_params` that is present and not empty.
    pub fn recruiter_id<'a>(&self, params: &'a BTreeMap<String, String>) -> Option<&'a str> {
        self.recruiter_id_params
            .iter()
            .filter_map(|name| params.get(name))
            .map(|value| value.trim())
            .find(|value| !value.is_empty())
    }
}
