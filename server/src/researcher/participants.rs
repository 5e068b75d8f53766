//! The participant table of an experiment at real sizes: every session's row with its state
//! (see [`crate::study::lifecycle`]), counted per state, then filtered, searched, sorted and cut
//! into pages on the server, so that the browser receives one page however large the study.
//!
//! Sessions are read once per request and the work is done in Rust: a study of a few thousand
//! sessions is a few milliseconds of sorting, and the state of a session depends on the clock and
//! on the experiment's `[timing]`, which SQL would have to repeat for each backend.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Phase, SessionStatus};
use crate::experiment::{Experiment, Step};
use crate::researcher::ResearcherError;
use crate::researcher::dashboard::{ago, clock};
use crate::researcher::pseudonym::Pseudonyms;
use crate::store::research::ResearchStore;
use crate::store::{Session, Store};
use crate::study::lifecycle::{self, Progress};

/// Rows per page unless the request asks for another size.
pub const PAGE_SIZE: usize = 50;
/// The largest page a request may ask for.
pub const MAX_PAGE_SIZE: usize = 500;

/// A row of the participant table.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantRow {
    pub pseudonym: String,
    pub session_id: String,
    /// Searched, and shown on the participant's own page; the table shows pseudonyms only.
    #[serde(skip)]
    pub recruiter_id: Option<String>,
    /// `active`, `idle`, `abandoned`, `completed` or `declined`.
    pub state: Progress,
    pub excluded: bool,
    pub preview: bool,
    /// The state with its flags, as shown: `idle`, `completed (excluded)`, `active (preview)`.
    pub status: String,
    /// The between-subject condition, if the experiment has conditions.
    pub condition: Option<String>,
    /// Where the participant is, in words (`Tutorial`, `Main tasks`, ...).
    pub phase: String,
    /// The phase's machine name, for the filter.
    pub phase_key: String,
    /// The current level, in words (`task 3 of 10 (c)`), empty between levels.
    pub task: String,
    /// The main task's index (mdp_idx) when the participant is on one.
    pub mdp_idx: Option<usize>,
    /// RFC 3339, UTC.
    pub started: String,
    /// RFC 3339, UTC.
    pub last_seen: String,
    pub last_seen_ago: String,
    pub elapsed: String,
    pub elapsed_seconds: i64,
    pub evaluations: i64,
    pub notes: i64,
    #[serde(skip)]
    started_at: OffsetDateTime,
    #[serde(skip)]
    last_seen_at: OffsetDateTime,
}

/// What a request asks of the table. Every field is optional in the query string; unknown values
/// are refused with a message rather than ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ParticipantQuery {
    /// A state (`active`, ...), or a flag: `excluded`, `preview`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    /// A main task's mdp_idx.
    #[serde(default)]
    pub task: Option<String>,
    /// Part of a pseudonym, a recruiter ID or a session ID.
    #[serde(default)]
    pub q: Option<String>,
    /// `started` (default), `pseudonym`, `state`, `phase`, `last_seen`, `elapsed`, `evaluations`.
    #[serde(default)]
    pub sort: Option<String>,
    /// `asc` or `desc` (default: newest or largest first for times and counts).
    #[serde(default)]
    pub dir: Option<String>,
    /// Text, not a number, so that the query can be embedded (flattened) in a page's own query.
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub per: Option<String>,
}

/// The sort keys, in the order the table's columns show them.
pub const SORT_KEYS: [&str; 7] = [
    "pseudonym",
    "state",
    "phase",
    "started",
    "last_seen",
    "elapsed",
    "evaluations",
];

/// How many sessions are in each state, and the flags and refusals beside them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StateCounts {
    /// Every state, in [`Progress::ALL`]'s order, with its count (withdrawn included).
    pub states: Vec<(String, usize)>,
    pub excluded: usize,
    pub preview: usize,
    /// Sessions, withdrawn ones not included.
    pub sessions: usize,
    /// Arrivals that got no session.
    pub refused: usize,
}

/// One page of the table, with the counts over the whole experiment.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantPage {
    pub rows: Vec<ParticipantRow>,
    /// Rows matching the filter, over all pages.
    pub matching: usize,
    pub page: usize,
    pub pages: usize,
    pub per: usize,
    pub sort: String,
    pub dir: String,
    pub counts: StateCounts,
}

/// A query checked against the experiment.
struct Filter {
    state: Option<StateFilter>,
    phase: Option<Phase>,
    task: Option<usize>,
    q: Option<String>,
}

enum StateFilter {
    Progress(Progress),
    Excluded,
    Preview,
}

impl ParticipantQuery {
    fn filter(&self) -> Result<Filter, ResearcherError> {
        fn given(value: &Option<String>) -> Option<&str> {
            value.as_deref().filter(|v| !v.trim().is_empty())
        }
        let state = given(&self.state)
            .map(|text| match text {
                "excluded" => Ok(StateFilter::Excluded),
                "preview" => Ok(StateFilter::Preview),
                other => Progress::parse(other)
                    .map(StateFilter::Progress)
                    .ok_or_else(|| {
                        ResearcherError::Invalid(format!("`{other}` is not a state to filter by"))
                    }),
            })
            .transpose()?;
        let phase = given(&self.phase)
            .map(|text| {
                Phase::parse(text).ok_or_else(|| {
                    ResearcherError::Invalid(format!("`{text}` is not a phase to filter by"))
                })
            })
            .transpose()?;
        let task = given(&self.task)
            .map(|text| {
                text.parse::<usize>()
                    .map_err(|_| ResearcherError::Invalid(format!("`{text}` is not a task number")))
            })
            .transpose()?;
        let q = given(&self.q).map(|q| q.trim().to_lowercase());
        Ok(Filter {
            state,
            phase,
            task,
            q,
        })
    }

    fn number(value: &Option<String>, what: &str) -> Result<Option<usize>, ResearcherError> {
        match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| ResearcherError::Invalid(format!("`{text}` is not a {what} number"))),
        }
    }

    fn sort_key(&self) -> Result<&str, ResearcherError> {
        match self.sort.as_deref().filter(|s| !s.is_empty()) {
            None => Ok("started"),
            Some(key) if SORT_KEYS.contains(&key) => Ok(key),
            Some(other) => Err(ResearcherError::Invalid(format!(
                "`{other}` is not a column to sort by: use one of {}",
                SORT_KEYS.join(", ")
            ))),
        }
    }

    fn descending(&self, key: &str) -> Result<bool, ResearcherError> {
        match self.dir.as_deref().filter(|d| !d.is_empty()) {
            None => Ok(!matches!(key, "pseudonym" | "state" | "phase")),
            Some("asc") => Ok(false),
            Some("desc") => Ok(true),
            Some(other) => Err(ResearcherError::Invalid(format!(
                "`{other}` is not a sort direction: use asc or desc"
            ))),
        }
    }
}

impl Filter {
    fn keeps(&self, row: &ParticipantRow) -> bool {
        let state = match &self.state {
            None => true,
            Some(StateFilter::Progress(p)) => row.state == *p,
            Some(StateFilter::Excluded) => row.excluded,
            Some(StateFilter::Preview) => row.preview,
        };
        let phase = self.phase.is_none_or(|p| row.phase_key == p.as_str());
        let task = self.task.is_none_or(|t| row.mdp_idx == Some(t));
        let q = self.q.as_deref().is_none_or(|q| {
            row.pseudonym.to_lowercase().contains(q)
                || row.session_id.to_lowercase().contains(q)
                || row
                    .recruiter_id
                    .as_deref()
                    .is_some_and(|id| id.to_lowercase().contains(q))
        });
        state && phase && task && q
    }
}

fn compare(key: &str, a: &ParticipantRow, b: &ParticipantRow) -> Ordering {
    match key {
        "pseudonym" => a.pseudonym.cmp(&b.pseudonym),
        "state" => a.state.cmp(&b.state),
        "phase" => phase_rank(&a.phase_key).cmp(&phase_rank(&b.phase_key)),
        "last_seen" => a.last_seen_at.cmp(&b.last_seen_at),
        "elapsed" => a.elapsed_seconds.cmp(&b.elapsed_seconds),
        "evaluations" => a.evaluations.cmp(&b.evaluations),
        _ => a.started_at.cmp(&b.started_at),
    }
}

fn phase_rank(key: &str) -> usize {
    Phase::ALL
        .iter()
        .position(|p| p.as_str() == key)
        .unwrap_or(usize::MAX)
}

/// Every session's row, unfiltered, oldest first, and the counts.
pub async fn all_rows(
    store: &dyn Store,
    research: &dyn ResearchStore,
    experiment: &Experiment,
    pseudonyms: &Pseudonyms,
    now: OffsetDateTime,
) -> Result<(Vec<ParticipantRow>, StateCounts), ResearcherError> {
    let slug = experiment.slug.as_str();
    let sessions = store.sessions_of(slug).await?;
    let activity: HashMap<String, i64> = research
        .activity(slug)
        .await?
        .into_iter()
        .map(|a| (a.session_id, a.last_ms))
        .collect();
    let mut evaluations: HashMap<String, i64> = HashMap::new();
    for trial in research.experiment_trials(slug).await? {
        *evaluations.entry(trial.session_id).or_default() += trial.runs;
    }
    let notes: HashMap<String, i64> = research.note_counts(slug).await?.into_iter().collect();
    let rows: Vec<ParticipantRow> = sessions
        .iter()
        .map(|session| {
            let seen = RowFacts {
                last_activity_ms: activity.get(&session.id).copied(),
                evaluations: evaluations.get(&session.id).copied().unwrap_or(0),
                notes: notes.get(&session.id).copied().unwrap_or(0),
            };
            participant_row(experiment, session, pseudonyms, seen, now)
        })
        .collect();
    let mut per_state: BTreeMap<Progress, usize> = BTreeMap::new();
    for row in &rows {
        *per_state.entry(row.state).or_default() += 1;
    }
    per_state.insert(Progress::Withdrawn, research.withdrawals(slug).await?.len());
    let counts = StateCounts {
        states: Progress::ALL
            .iter()
            .map(|p| {
                (
                    p.as_str().to_owned(),
                    per_state.get(p).copied().unwrap_or(0),
                )
            })
            .collect(),
        excluded: rows.iter().filter(|r| r.excluded).count(),
        preview: rows.iter().filter(|r| r.preview).count(),
        sessions: rows.len(),
        refused: store.refused_arrivals(slug).await?.len(),
    };
    Ok((rows, counts))
}

/// One page of the table as `query` asks.
pub async fn participant_page(
    store: &dyn Store,
    research: &dyn ResearchStore,
    experiment: &Experiment,
    pseudonyms: &Pseudonyms,
    query: &ParticipantQuery,
    now: OffsetDateTime,
) -> Result<ParticipantPage, ResearcherError> {
    let filter = query.filter()?;
    let key = query.sort_key()?;
    let descending = query.descending(key)?;
    let (rows, counts) = all_rows(store, research, experiment, pseudonyms, now).await?;
    let mut rows: Vec<ParticipantRow> = rows.into_iter().filter(|r| filter.keeps(r)).collect();
    // A stable sort on the session's start first, so that ties keep a fixed order.
    rows.sort_by(|a, b| {
        let primary = compare(key, a, b);
        let primary = if descending {
            primary.reverse()
        } else {
            primary
        };
        primary.then_with(|| a.started_at.cmp(&b.started_at))
    });
    let per = ParticipantQuery::number(&query.per, "page size")?
        .unwrap_or(PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let matching = rows.len();
    let pages = matching.div_ceil(per).max(1);
    let page = ParticipantQuery::number(&query.page, "page")?
        .unwrap_or(1)
        .clamp(1, pages);
    let rows = rows.into_iter().skip((page - 1) * per).take(per).collect();
    Ok(ParticipantPage {
        rows,
        matching,
        page,
        pages,
        per,
        sort: key.to_owned(),
        dir: if descending { "desc" } else { "asc" }.to_owned(),
        counts,
    })
}

/// What the row needs beyond the session.
pub struct RowFacts {
    /// The latest run or event, in milliseconds since the session's start.
    pub last_activity_ms: Option<i64>,
    pub evaluations: i64,
    pub notes: i64,
}

/// Where a session is, in words: the phase and the level.
pub fn position(experiment: &Experiment, session: &Session) -> (Phase, String, Option<usize>) {
    // A between-subject condition has its own tasks and screens.
    let experiment = experiment.for_arm(session.arm.as_deref());
    let timeline = experiment.timeline(&session.task_order);
    let step = usize::try_from(session.step)
        .ok()
        .and_then(|i| timeline.get(i))
        .copied();
    match step {
        Some(Step::Task { phase, task, index }) => {
            let label = experiment
                .task_entry(phase, task)
                .map_or_else(String::new, |e| e.label.clone());
            let text = match phase {
                Phase::Tasks => format!(
                    "task {} of {} ({label})",
                    index + 1,
                    session.task_order.len()
                ),
                Phase::Practice => format!("practice level {}", index + 1),
                _ => format!("tutorial level {}", index + 1),
            };
            let mdp_idx = (phase == Phase::Tasks).then_some(task);
            (phase, text, mdp_idx)
        }
        Some(other) => (other.phase(), String::new(), None),
        None => (Phase::Complete, String::new(), None),
    }
}

/// A phase in words, as the dashboard shows it.
pub fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Consent => "Consent",
        Phase::Tutorial => "Tutorial",
        Phase::Practice => "Practice",
        Phase::Instructions => "Instructions",
        Phase::Tasks => "Main tasks",
        Phase::Questionnaire => "Questionnaire",
        Phase::Complete => "Finished",
    }
}

/// The latest time anything was recorded for the session.
pub fn last_seen(session: &Session, last_activity_ms: Option<i64>) -> OffsetDateTime {
    let from_activity =
        last_activity_ms.map(|ms| session.created_at + time::Duration::milliseconds(ms));
    from_activity.map_or(session.updated_at, |at| at.max(session.updated_at))
}

pub fn participant_row(
    experiment: &Experiment,
    session: &Session,
    pseudonyms: &Pseudonyms,
    facts: RowFacts,
    now: OffsetDateTime,
) -> ParticipantRow {
    let (phase, task, mdp_idx) = position(experiment, session);
    let last_seen_at = last_seen(session, facts.last_activity_ms);
    let state = lifecycle::progress(session, last_seen_at, &experiment.timing, now);
    let end = session
        .completed_at
        .unwrap_or(if session.status == SessionStatus::Active {
            now
        } else {
            session.updated_at
        });
    let elapsed = end - session.created_at;
    let mut flags = Vec::new();
    if session.excluded {
        flags.push("excluded");
    }
    if session.preview {
        flags.push("preview");
    }
    let status = if flags.is_empty() {
        state.as_str().to_owned()
    } else {
        format!("{} ({})", state.as_str(), flags.join(", "))
    };
    ParticipantRow {
        pseudonym: pseudonyms.of_session(session),
        session_id: session.id.clone(),
        recruiter_id: session.recruiter_id.clone(),
        state,
        excluded: session.excluded,
        preview: session.preview,
        status,
        condition: session.arm.clone(),
        phase: phase_label(phase).to_owned(),
        phase_key: phase.as_str().to_owned(),
        task,
        mdp_idx,
        started: crate::clock::rfc3339(session.created_at),
        last_seen: crate::clock::rfc3339(last_seen_at),
        last_seen_ago: ago(now - last_seen_at),
        elapsed: clock(elapsed),
        elapsed_seconds: elapsed.whole_seconds().max(0),
        evaluations: facts.evaluations,
        notes: facts.notes,
        started_at: session.created_at,
        last_seen_at,
    }
}
