//! The participant table's page parts (filters, sort links, pages), its JSON, the live updates
//! (server-sent events), and one participant's page with the actions a researcher can take.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Form, Json};
use futures_util::Stream;
use serde::Deserialize;

use super::{SignedIn, experiment_of, exporter, redirect};
use crate::clock;
use crate::domain::Phase;
use crate::experiment::Experiment;
use crate::researcher::export::ExportOptions;
use crate::researcher::participants::{
    self, ParticipantPage, ParticipantQuery, ParticipantRow, RowFacts, SORT_KEYS,
};
use crate::researcher::{ResearcherError, actions};
use crate::state::AppState;
use crate::store::research::Note;

/// How often the live stream reads the database's change stamp.
const LIVE_POLL: Duration = Duration::from_secs(1);

/// The table's controls, as the experiment page draws them.
pub struct TableView {
    pub page: ParticipantPage,
    pub state: String,
    pub phase: String,
    pub task: String,
    pub q: String,
    /// `(key, label, href, arrow)` per sortable column.
    pub sort_links: Vec<(String, String, String, String)>,
    /// `(state, count, href, selected)` for the counts bar.
    pub state_links: Vec<(String, usize, String, bool)>,
    pub phases: Vec<(String, String)>,
    /// `(mdp_idx, label)` of the main tasks.
    pub tasks: Vec<(String, String)>,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    /// The query string of the current view, for the live refresh and the JSON.
    pub query_string: String,
}

fn encode(pairs: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if !value.is_empty() {
            query.append_pair(key, value);
        }
    }
    query.finish()
}

impl TableView {
    fn new(
        slug: &str,
        experiment: &Experiment,
        query: &ParticipantQuery,
        page: ParticipantPage,
    ) -> TableView {
        let given = |v: &Option<String>| v.clone().unwrap_or_default();
        let (state, phase, task, q) = (
            given(&query.state),
            given(&query.phase),
            given(&query.task),
            given(&query.q),
        );
        let base = format!("/researcher/experiments/{slug}");
        let href = |state: &str, sort: &str, dir: &str, page_no: usize| {
            let mut pairs = vec![
                ("state", state.to_owned()),
                ("phase", phase.clone()),
                ("task", task.clone()),
                ("q", q.clone()),
                ("sort", sort.to_owned()),
                ("dir", dir.to_owned()),
            ];
            if page_no > 1 {
                pairs.push(("page", page_no.to_string()));
            }
            format!("{base}?{}#participants-section", encode(&pairs))
        };
        let labels = [
            "Participant",
            "State",
            "Phase",
            "Started",
            "Last seen",
            "Elapsed",
            "Evaluations",
        ];
        let sort_links = SORT_KEYS
            .iter()
            .zip(labels)
            .map(|(key, label)| {
                let current = page.sort == *key;
                let dir = if current && page.dir == "desc" {
                    "asc"
                } else if current {
                    "desc"
                } else {
                    ""
                };
                let arrow = match (current, page.dir.as_str()) {
                    (true, "desc") => "▼",
                    (true, _) => "▲",
                    _ => "",
                };
                (
                    key.to_string(),
                    label.to_owned(),
                    href(&state, key, dir, 1),
                    arrow.to_owned(),
                )
            })
            .collect();
        let mut state_links: Vec<(String, usize, String, bool)> = page
            .counts
            .states
            .iter()
            .map(|(name, count)| {
                (
                    name.clone(),
                    *count,
                    href(name, &page.sort, &page.dir, 1),
                    state == *name,
                )
            })
            .collect();
        for (name, count) in [
            ("excluded", page.counts.excluded),
            ("preview", page.counts.preview),
        ] {
            state_links.push((
                name.to_owned(),
                count,
                href(name, &page.sort, &page.dir, 1),
                state == name,
            ));
        }
        let prev_href = (page.page > 1).then(|| href(&state, &page.sort, &page.dir, page.page - 1));
        let next_href =
            (page.page < page.pages).then(|| href(&state, &page.sort, &page.dir, page.page + 1));
        let query_string = encode(&[
            ("state", state.clone()),
            ("phase", phase.clone()),
            ("task", task.clone()),
            ("q", q.clone()),
            ("sort", page.sort.clone()),
            ("dir", page.dir.clone()),
            ("page", page.page.to_string()),
        ]);
        TableView {
            phases: Phase::ALL
                .iter()
                .map(|p| {
                    (
                        p.as_str().to_owned(),
                        participants::phase_label(*p).to_owned(),
                    )
                })
                .collect(),
            tasks: experiment
                .tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (i.to_string(), t.label.clone()))
                .collect(),
            page,
            state,
            phase,
            task,
            q,
            sort_links,
            state_links,
            prev_href,
            next_href,
            query_string,
        }
    }
}

/// The table as the experiment page shows it.
pub(super) async fn table_view(
    state: &AppState,
    experiment: &Arc<Experiment>,
    query: &ParticipantQuery,
) -> Result<TableView, ResearcherError> {
    let page = page_of(state, experiment, query).await?;
    Ok(TableView::new(
        experiment.slug.as_str(),
        experiment,
        query,
        page,
    ))
}

async fn page_of(
    state: &AppState,
    experiment: &Arc<Experiment>,
    query: &ParticipantQuery,
) -> Result<ParticipantPage, ResearcherError> {
    let exporter = exporter(state, experiment, ExportOptions::default()).await?;
    participants::participant_page(
        state.store.as_ref(),
        state.research.as_ref(),
        experiment,
        exporter.pseudonyms(),
        query,
        clock::now(),
    )
    .await
}

/// One page of the table as JSON (what the live refresh reads).
pub(super) async fn participants_json(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<ParticipantQuery>,
) -> Result<Json<ParticipantPage>, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    Ok(Json(page_of(&state, &experiment, &query).await?))
}

/// Server-sent events: `change` whenever the experiment's data changes in the database (whichever
/// instance served the participant), checked every second, and a comment every 15 s to keep
/// proxies from closing the stream. The page then fetches its view of the table again.
pub(super) async fn live(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let research = state.research.clone();
    let slug = experiment.slug.to_string();
    let stream = futures_util::stream::unfold(
        (research, slug, None::<String>, true),
        |(research, slug, last, first)| async move {
            loop {
                if !first || last.is_some() {
                    tokio::time::sleep(LIVE_POLL).await;
                }
                let stamp = match research.change_stamp(&slug).await {
                    Ok(stamp) => stamp,
                    Err(e) => {
                        // A failing database: say so to the page, which falls back to polling.
                        tracing::warn!(error = %e, "live updates cannot read the database");
                        let event = Event::default().event("unavailable").data("database");
                        return Some((Ok(event), (research, slug, last, false)));
                    }
                };
                if last.as_deref() != Some(stamp.as_str()) {
                    let event = Event::default().event("change").data(stamp.clone());
                    return Some((Ok(event), (research, slug, Some(stamp), false)));
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Template, WebTemplate)]
#[template(path = "researcher/participant.html")]
pub struct ParticipantPageView {
    pub username: String,
    pub csrf: String,
    pub slug: String,
    pub title: String,
    pub row: ParticipantRow,
    pub notes: Vec<NoteView>,
    pub params: Vec<(String, String)>,
    pub time_limit: String,
    pub notice: Option<String>,
    /// Whether the session is unfinished, so that a reset applies (and an unlock does not: an
    /// unfinished session is resumed, not refused).
    pub can_reset: bool,
}

pub struct NoteView {
    pub at: String,
    pub note: Note,
}

#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    pub done: Option<String>,
}

/// The notices an action's redirect may name; anything else shows nothing.
fn notice_text(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "excluded" => "Excluded: left out of data exports unless asked for (still in bonus-csv).",
        "included" => "Included again.",
        "reset" => {
            "Reset: the time limit counts from now, and the participant can go on where they were."
        }
        "note" => "Note added.",
        "unlocked" => {
            "Unlocked: this recruiter ID can enter again as a new session; the earlier session is kept."
        }
        _ => return None,
    };
    Some(text.to_owned())
}

pub(super) async fn participant_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path((slug, session_id)): Path<(String, String)>,
    Query(notice): Query<NoticeQuery>,
) -> Result<ParticipantPageView, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let session = actions::session_of(state.store.as_ref(), &experiment, &session_id).await?;
    let exporter = exporter(&state, &experiment, ExportOptions::default()).await?;
    let research = state.research.as_ref();
    let last_ms = research
        .activity(&slug)
        .await?
        .into_iter()
        .find(|a| a.session_id == session.id)
        .map(|a| a.last_ms);
    let notes = research.notes(&session.id).await?;
    let evaluations = research
        .session_trials(&session.id)
        .await?
        .iter()
        .map(|t| t.runs)
        .sum();
    let facts = RowFacts {
        last_activity_ms: last_ms,
        evaluations,
        notes: notes.len() as i64,
    };
    let row = participants::participant_row(
        &experiment,
        &session,
        exporter.pseudonyms(),
        facts,
        clock::now(),
    );
    let params = state.store.params(&session.id).await?.into_iter().collect();
    Ok(ParticipantPageView {
        username: who.username,
        csrf: who.csrf_token,
        title: experiment.title.clone(),
        can_reset: session.status == crate::domain::SessionStatus::Active,
        time_limit: experiment
            .timing
            .time_limit
            .map_or_else(|| "none".to_owned(), |l| duration_words(l.as_secs())),
        slug,
        row,
        notes: notes
            .into_iter()
            .map(|note| NoteView {
                at: clock::rfc3339(note.at),
                note,
            })
            .collect(),
        params,
        notice: notice_text(notice.done.as_deref()),
    })
}

/// A limit in words: whole minutes as minutes, anything else in seconds.
fn duration_words(seconds: u64) -> String {
    if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

fn back_to(slug: &str, session_id: &str, done: &str) -> Response {
    let session = form_urlencoded::byte_serialize(session_id.as_bytes()).collect::<String>();
    redirect(&format!(
        "/researcher/experiments/{slug}/participants/{session}?done={done}"
    ))
}

#[derive(Debug, Deserialize)]
pub struct ExcludeForm {
    /// `true` to exclude, `false` to include again.
    pub excluded: String,
}

pub(super) async fn exclude(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path((slug, session_id)): Path<(String, String)>,
    Form(form): Form<ExcludeForm>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    let excluded = match form.excluded.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ResearcherError::Invalid(format!(
                "`{other}` is neither true nor false"
            )));
        }
    };
    actions::set_excluded(
        state.store.as_ref(),
        state.research.as_ref(),
        &experiment,
        &session_id,
        excluded,
        &who.username,
        clock::now(),
    )
    .await?;
    Ok(back_to(
        &slug,
        &session_id,
        if excluded { "excluded" } else { "included" },
    ))
}

pub(super) async fn reset(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path((slug, session_id)): Path<(String, String)>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    actions::reset(
        state.store.as_ref(),
        state.research.as_ref(),
        &experiment,
        &session_id,
        &who.username,
        clock::now(),
    )
    .await?;
    Ok(back_to(&slug, &session_id, "reset"))
}

#[derive(Debug, Deserialize)]
pub struct NoteForm {
    pub note: String,
}

pub(super) async fn note(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path((slug, session_id)): Path<(String, String)>,
    Form(form): Form<NoteForm>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    actions::note(
        state.store.as_ref(),
        state.research.as_ref(),
        &experiment,
        &session_id,
        &form.note,
        &who.username,
        clock::now(),
    )
    .await?;
    Ok(back_to(&slug, &session_id, "note"))
}

#[derive(Debug, Deserialize)]
pub struct UnlockForm {
    pub recruiter_id: String,
}

/// Unlocks a recruiter ID; back to the dashboard with what was done.
pub(super) async fn unlock(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(form): Form<UnlockForm>,
) -> Result<Response, ResearcherError> {
    let experiment = experiment_of(&state, &slug)?;
    actions::unlock(
        state.research.as_ref(),
        &experiment,
        &form.recruiter_id,
        &who.username,
        clock::now(),
    )
    .await?;
    Ok(redirect(&format!(
        "/researcher/experiments/{slug}?done=unlocked"
    )))
}

/// The notice of the experiment page after a redirect.
pub(super) fn dashboard_notice(done: Option<&str>) -> Option<String> {
    notice_text(done)
}
