//! The level editor: a page where a researcher draws a level (size, heights, lights, the robot's
//! start and heading), sees it as participants will, checks it live with the library behind
//! `proglab experiment check` (`experiment::check`), and saves it as a level file in the
//! server's levels folder (`--levels-dir`). Every save is in the audit log.

use std::path::Path;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path as UrlPath, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::SignedIn;
use crate::experiment::check::{self, CheckLimits, LevelReport};
use crate::researcher::{ResearcherError, audit};
use crate::state::AppState;

/// The editor checks while the researcher draws, so it stops the enumeration much sooner than
/// the command line does.
const EDITOR_LIMITS: CheckLimits = CheckLimits {
    time: std::time::Duration::from_secs(5),
    candidates: 200_000,
};

/// One check at a time: a check may use a core for seconds.
static CHECKS: Semaphore = Semaphore::const_new(1);

/// The largest grid the editor accepts (the game's levels are at most 8 by 8).
const MAX_SIDE: usize = 16;

#[derive(Template, WebTemplate)]
#[template(path = "researcher/level_editor.html")]
pub struct LevelEditorPage {
    pub username: String,
    pub csrf: String,
    pub levels_dir: String,
    pub files: Vec<String>,
    /// What the script needs, as JSON; askama escapes it for the attribute.
    pub data_json: String,
}

#[derive(Debug, Deserialize)]
pub struct EditorQuery {
    /// A level file of the levels folder to open, without `.json`.
    pub file: Option<String>,
    /// The level of that file to open (default 0).
    pub level: Option<usize>,
}

pub(super) async fn editor_page(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Query(query): Query<EditorQuery>,
) -> Result<LevelEditorPage, ResearcherError> {
    let dir = state.config.levels_dir.clone();
    let files = tokio::task::spawn_blocking(move || level_files(&dir))
        .await
        .map_err(|e| ResearcherError::Other(e.into()))?;
    let open = query.file.filter(|name| valid_name(name));
    let data = serde_json::json!({
        "csrf": who.csrf_token,
        "check_url": "/researcher/levels/check",
        "save_url": "/researcher/levels/save",
        "files_url": "/researcher/levels/files/",
        "open": open.map(|file| serde_json::json!({ "file": file, "level": query.level.unwrap_or(0) })),
        "max_side": MAX_SIDE,
    });
    Ok(LevelEditorPage {
        username: who.username,
        csrf: who.csrf_token,
        levels_dir: state.config.levels_dir.display().to_string(),
        files,
        data_json: data.to_string(),
    })
}

/// The level files of `dir` by name (without `.json`), sorted; none if the folder is missing.
fn level_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json")?;
            valid_name(stem).then(|| stem.to_owned())
        })
        .collect();
    names.sort();
    names
}

/// Level file names: 1 to 64 of `a-z`, `0-9`, `_` and `-`, so never a path.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A level as the editor sends it: one level object of the game's JSON format.
fn parse_level(level: &Value, name: &str) -> Result<dsl::Task, ResearcherError> {
    let file = serde_json::to_string(&[level])
        .map_err(|e| ResearcherError::Invalid(format!("the level is not JSON: {e}")))?;
    let task = dsl::map::parse_level_file(&file, name)
        .map_err(|e| ResearcherError::Invalid(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| ResearcherError::Invalid("no level was sent".into()))?;
    if task.width > MAX_SIDE || task.height > MAX_SIDE {
        return Err(ResearcherError::Invalid(format!(
            "a {}x{} level is larger than the editor's {MAX_SIDE}x{MAX_SIDE}",
            task.width, task.height
        )));
    }
    Ok(task)
}

fn light_mode(name: Option<&str>) -> Result<dsl::LightMode, ResearcherError> {
    match name.unwrap_or("toggle") {
        "toggle" => Ok(dsl::LightMode::Toggle),
        "idempotent" => Ok(dsl::LightMode::Idempotent),
        other => Err(ResearcherError::Invalid(format!(
            "`{other}` is not a light mode: use `toggle` or `idempotent`"
        ))),
    }
}

#[derive(Debug, Deserialize)]
pub struct CheckRequest {
    pub level: Value,
    /// `toggle` (default) or `idempotent`: the experiment's light mode.
    #[serde(default)]
    pub light: Option<String>,
}

/// The check's answer: the report, or why the level is not a level.
#[derive(Debug, Serialize)]
pub struct CheckResponse {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<LevelReport>,
    pub time_limit_seconds: f64,
    pub candidate_limit: u64,
}

/// `POST /researcher/levels/check`: the check of `proglab experiment check` on one level. A level
/// that does not parse is answered with `ok: false` and the reason (naming the cell), so the page
/// can show it while the researcher draws.
pub(super) async fn check_level(
    Json(request): Json<CheckRequest>,
) -> Result<Json<CheckResponse>, ResearcherError> {
    let light = light_mode(request.light.as_deref())?;
    let mut response = CheckResponse {
        ok: false,
        error: None,
        report: None,
        time_limit_seconds: EDITOR_LIMITS.time.as_secs_f64(),
        candidate_limit: EDITOR_LIMITS.candidates,
    };
    let task = match parse_level(&request.level, "the level") {
        Ok(task) => task,
        Err(e) => {
            response.error = Some(e.to_string());
            return Ok(Json(response));
        }
    };
    let _permit = CHECKS
        .acquire()
        .await
        .map_err(|e| ResearcherError::Other(e.into()))?;
    let report =
        tokio::task::spawn_blocking(move || check::check_level(&task, light, &EDITOR_LIMITS))
            .await
            .map_err(|e| ResearcherError::Other(e.into()))?;
    response.ok = report.solvable == Some(true);
    if report.solvable == Some(false) {
        response.error =
            Some("the level cannot be solved: no sequence of actions lights every light".into());
    }
    response.report = Some(report);
    Ok(Json(response))
}

#[derive(Debug, Deserialize)]
pub struct SaveRequest {
    /// The file name without `.json`: `[a-z0-9_-]+`.
    pub name: String,
    pub level: Value,
    /// Replace a file of that name.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Serialize)]
pub struct SaveResponse {
    pub name: String,
    /// Where the file was written, as the server sees it.
    pub path: String,
    /// What an experiment file next to the levels folder writes: `map = "levels/NAME.json"`.
    pub map: String,
    pub replaced: bool,
}

/// `POST /researcher/levels/save`: writes the level as `NAME.json` (a level file of one level) in
/// the levels folder, and records the save in the audit log.
pub(super) async fn save_level(
    State(state): State<AppState>,
    Extension(who): Extension<SignedIn>,
    Json(request): Json<SaveRequest>,
) -> Result<Json<SaveResponse>, ResearcherError> {
    if !valid_name(&request.name) {
        return Err(ResearcherError::Invalid(format!(
            "`{}` is not a level file name: use 1 to 64 of a-z, 0-9, `_` and `-`",
            request.name.escape_debug()
        )));
    }
    let task = parse_level(&request.level, &format!("{}.json[0]", request.name))?;
    let text = level_file_text(&task);
    let dir = state.config.levels_dir.clone();
    let path = dir.join(format!("{}.json", request.name));
    let overwrite = request.overwrite;
    let target = path.clone();
    let replaced =
        tokio::task::spawn_blocking(move || write_level_file(&dir, &target, &text, overwrite))
            .await
            .map_err(|e| ResearcherError::Other(e.into()))??;
    let dir_name = state
        .config
        .levels_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "levels".into());
    audit(
        state.research.as_ref(),
        &who.username,
        "level_save",
        None,
        format!(
            "{} ({}x{}, {} light{}{})",
            path.display(),
            task.width,
            task.height,
            task.n_lights,
            if task.n_lights == 1 { "" } else { "s" },
            if replaced { ", replaced" } else { "" }
        ),
        crate::clock::now(),
    )
    .await?;
    Ok(Json(SaveResponse {
        map: format!("{dir_name}/{}.json", request.name),
        name: request.name,
        path: path.display().to_string(),
        replaced,
    }))
}

/// Writes `text` to `path` (in `dir`, created if missing): a new file unless `overwrite`, and
/// then through a temporary file renamed over the old one. Returns whether a file was replaced.
fn write_level_file(
    dir: &Path,
    path: &Path,
    text: &str,
    overwrite: bool,
) -> Result<bool, ResearcherError> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let exists = path.exists();
    if exists && !overwrite {
        return Err(ResearcherError::Invalid(format!(
            "{} exists already: choose another name, or tick “Replace an existing file”",
            path.display()
        )));
    }
    let temporary = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    let result = if overwrite {
        std::fs::rename(&temporary, path)
    } else {
        // A hard link fails if the name was taken meanwhile, so nothing is overwritten.
        std::fs::hard_link(&temporary, path).and_then(|()| std::fs::remove_file(&temporary))
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(e.into());
    }
    Ok(exists)
}

/// A level file of one level in the game's JSON format, one row of the map per line (the top row,
/// the largest y, first).
pub fn level_file_text(task: &dsl::Task) -> String {
    let rows: Vec<String> = (0..task.height)
        .rev()
        .map(|y| {
            let cells: Vec<String> = (0..task.width)
                .map(|x| {
                    let tile = if task.light_at(x, y).is_some() {
                        "l"
                    } else {
                        "b"
                    };
                    format!("{{\"h\": {}, \"t\": \"{tile}\"}}", task.height_at(x, y))
                })
                .collect();
            format!("  [{}]", cells.join(", "))
        })
        .collect();
    format!(
        "[\n{{\"direction\": {}, \"position\": {{\"x\": {}, \"y\": {}}}, \"map\": [\n{}\n]}}\n]\n",
        task.start_direction.index(),
        task.start_x,
        task.start_y,
        rows.join(",\n")
    )
}

/// `GET /researcher/levels/files/{name}`: a level file of the levels folder, for the editor to
/// open (a JSON list of levels).
pub(super) async fn level_file(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ResearcherError> {
    let name = name.strip_suffix(".json").unwrap_or(&name).to_owned();
    if !valid_name(&name) {
        return Err(ResearcherError::NotFound(format!(
            "no level file `{}`",
            name.escape_debug()
        )));
    }
    let path = state.config.levels_dir.join(format!("{name}.json"));
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
        .await
        .map_err(|e| ResearcherError::Other(e.into()))?
        .map_err(|_| ResearcherError::NotFound(format!("no level file `{name}.json`")))?;
    let file = format!("{name}.json");
    // Only level files the game can read are opened.
    dsl::map::parse_level_file(&text, &file)
        .map_err(|e| ResearcherError::Invalid(e.to_string()))?;
    let value = serde_json::from_str(&text).map_err(|e| ResearcherError::Invalid(e.to_string()))?;
    Ok(Json(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_file_names() {
        for good in ["a", "level-1", "my_level", "x9"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "A",
            "../x",
            "a/b",
            "a.json",
            "a b",
            ".x",
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_written_level_reads_back_the_same() {
        let json = r#"[{"direction":2,"position":{"x":1,"y":0},"map":[[{"h":"2","t":"l"},{"h":1,"t":"b"}],[{"h":1,"t":"b"},{"h":3,"t":"l"}]]}]"#;
        let task = dsl::Task::from_level_file(json, "x.json", 0).unwrap();
        let again = dsl::Task::from_level_file(&level_file_text(&task), "x.json", 0).unwrap();
        assert_eq!(task, again);
    }
}
