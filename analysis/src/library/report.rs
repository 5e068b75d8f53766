//! The library as reported: each body in the order found, with its uses by program, participant
//! and task.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::compress::Found;
use super::corpus::ProgramInfo;
use super::token::{Tok, expand, text};

/// The library found in a corpus, and what it saved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Library {
    /// The token-cost parameters the description length was measured with.
    pub p_call: f64,
    pub p_end: f64,
    /// Whether bodies with one hole were candidates.
    pub holes: bool,
    pub n_programs: usize,
    pub n_participants: usize,
    /// The tasks with programs, in task order.
    pub tasks: Vec<TaskCorpus>,
    pub description_length: DescriptionLength,
    /// The bodies in the order the search found them; body N is written `[N]` inside later ones.
    pub bodies: Vec<LibraryBody>,
}

/// Description lengths in nats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DescriptionLength {
    /// The corpus as written, without a library.
    pub before: f64,
    /// The rewritten corpus plus the library.
    pub after: f64,
    /// Of `after`, the library's bodies.
    pub library: f64,
}

/// How many programs and participants a task has in the corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskCorpus {
    pub mdp_idx: usize,
    pub task: String,
    pub programs: usize,
    pub participants: usize,
}

/// One library body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryBody {
    /// 1-based position in the order found (its name `[rank]`).
    pub rank: usize,
    /// The body in the compact form, `?` for the hole, `[N]` for a call to body N and `[N:x]`
    /// for a call to body N with its hole filled by x.
    pub body: String,
    /// The body with every library call replaced by the called body, down to primitives and
    /// slot calls (`?` stays for the hole).
    pub expanded: String,
    /// Whether the body has a hole.
    pub hole: bool,
    /// Its uses in the programs' routines (uses inside later bodies are not counted).
    pub uses: usize,
    /// Of `uses`, those that replaced a whole subroutine.
    pub whole_subroutine_uses: usize,
    /// The description length its introduction saved, in nats.
    pub saved: f64,
    /// Distinct programs and participants with a use.
    pub programs: usize,
    pub participants: usize,
    /// One entry per task of [`Library::tasks`], in the same order.
    pub per_task: Vec<TaskUse>,
    /// For a body with a hole: how often each filler filled it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fillers: BTreeMap<String, usize>,
}

/// A body's use in one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskUse {
    pub mdp_idx: usize,
    pub task: String,
    pub uses: usize,
    pub programs: usize,
    pub participants: usize,
    /// `participants` over the task's participants.
    pub participant_share: f64,
}

/// The tasks of `programs` that have any, labelled from `labels` (index = `mdp_idx`).
pub(super) fn task_corpus(programs: &[ProgramInfo], labels: &[String]) -> Vec<TaskCorpus> {
    let mut by_task: BTreeMap<usize, (usize, BTreeSet<u32>)> = BTreeMap::new();
    for program in programs {
        let (count, participants) = by_task.entry(program.task).or_default();
        *count += 1;
        participants.insert(program.participant);
    }
    by_task
        .into_iter()
        .map(|(task, (count, participants))| TaskCorpus {
            mdp_idx: task,
            task: label(labels, task),
            programs: count,
            participants: participants.len(),
        })
        .collect()
}

/// The report of one found body.
pub(super) fn body_report(
    rank: usize,
    found: &Found,
    library: &[Vec<Tok>],
    programs: &[ProgramInfo],
    tasks: &[TaskCorpus],
) -> LibraryBody {
    let mut per_task: BTreeMap<usize, (usize, BTreeSet<usize>, BTreeSet<u32>)> = BTreeMap::new();
    let mut fillers = BTreeMap::new();
    for used in &found.uses {
        let info = programs[used.program];
        let (uses, with, participants) = per_task.entry(info.task).or_default();
        *uses += 1;
        with.insert(used.program);
        participants.insert(info.participant);
        if let Some(filler) = used.filler {
            *fillers.entry(text(&[filler])).or_insert(0) += 1;
        }
    }
    let all_programs: BTreeSet<usize> = found.uses.iter().map(|u| u.program).collect();
    let all_participants: BTreeSet<u32> = all_programs
        .iter()
        .map(|&p| programs[p].participant)
        .collect();
    LibraryBody {
        rank,
        body: text(&found.body),
        expanded: {
            let mut tokens = Vec::new();
            expand(&found.body, library, &mut tokens);
            text(&tokens)
        },
        hole: found.body.iter().any(|t| t.is_hole()),
        uses: found.uses.len(),
        whole_subroutine_uses: found.uses.iter().filter(|u| u.whole_subroutine).count(),
        saved: found.saved,
        programs: all_programs.len(),
        participants: all_participants.len(),
        per_task: tasks
            .iter()
            .map(|task| {
                let (uses, with, participants) = per_task.remove(&task.mdp_idx).unwrap_or_default();
                TaskUse {
                    mdp_idx: task.mdp_idx,
                    task: task.task.clone(),
                    uses,
                    programs: with.len(),
                    participants: participants.len(),
                    participant_share: participants.len() as f64 / task.participants.max(1) as f64,
                }
            })
            .collect(),
        fillers,
    }
}

fn label(labels: &[String], task: usize) -> String {
    labels
        .get(task)
        .cloned()
        .unwrap_or_else(|| task.to_string())
}
