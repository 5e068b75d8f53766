//! Exports and imports: the published data survives `proglab import` then
//! `proglab export --format programs-csv` with the same check-data and fit figures; shuffled
//! orders export `mdp_idx` as the task's index and `order_position` as the order seen; the
//! Psych-DS folder describes every column; pseudonyms replace recruiter IDs; withdrawal deletes
//! and is audited. Every test runs on SQLite and on Postgres.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use analysis::choice::{ChoiceSets, ObserveOptions, TaskCandidates, observed_programs};
use analysis::fit::{FitOptions, fit};
use analysis::models::Model;
use analysis::models::likelihood::{Features, Weights};
use rstest::rstest;
use server::experiment::{Experiment, ItemKind};
use server::researcher::export::{ExportOptions, Exporter, Format, Sink};
use server::store::Store;
use server::store::research::ResearchStore;

use crate::support::simulate::{Simulated, simulate_participant};
use crate::support::{Backend, TempDir, TestDb, bundled_with};

fn published() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../analysis/data/programs-dev.csv")
}

fn proglab(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(args)
        .output()
        .expect("run proglab-e2e");
    assert!(
        output.status.success(),
        "proglab {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn read(path: &Path) -> analysis::data::ProgramsFile {
    analysis::data::read_programs(std::fs::File::open(path).expect("open"))
        .expect("a programs file")
}

/// Log-likelihoods of two cheap models, fitted on choice sets made of the participants' own
/// canonical programs (no enumeration, so the test stays fast).
fn fit_figures(file: &analysis::data::ProgramsFile) -> Vec<(String, f64, Vec<f64>)> {
    let tasks = dsl::tasks::correa2025();
    let task_refs: Vec<&dsl::Task> = tasks.tasks.iter().map(|t| &t.task).collect();
    let (observed, errors) = observed_programs(&file.rows, &task_refs, &ObserveOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let labels: Vec<String> = tasks.tasks.iter().map(|t| t.label.clone()).collect();
    let sets = ChoiceSets::build(
        &labels,
        &observed,
        |_, queries| {
            Ok(TaskCandidates {
                programs: 0,
                histogram: Vec::new(),
                found: vec![false; queries.len()],
            })
        },
        &|_| {},
    )
    .expect("choice sets");
    let features = Features::new(&sets);
    let weights = Weights::all(&sets);
    let options = FitOptions {
        random_starts: 2,
        ..FitOptions::default()
    };
    ["mdl", "mdl+step"]
        .iter()
        .map(|name| {
            let model = Model::by_name(name).expect("model");
            let fitted = fit(&features, &weights, &model, &options, &|| {}).expect("fit");
            (name.to_string(), fitted.log_likelihood, fitted.params)
        })
        .collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn import_then_export_gives_the_same_check_data_and_fit_figures(#[case] backend: Backend) {
    // Arrange: the published development file imported with the real command line.
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let url = db.url.clone();
    let dir = TempDir::new();
    let source = published();
    let out = dir.path().join("programs.csv");
    proglab(&[
        "import",
        "--experiment",
        "correa2025",
        "--programs",
        source.to_str().unwrap(),
        "--database-url",
        &url,
    ]);

    // Act
    proglab(&[
        "export",
        "--experiment",
        "correa2025",
        "--format",
        "programs-csv",
        "--out",
        out.to_str().unwrap(),
        "--database-url",
        &url,
    ]);

    // Assert: same rows, same check-data report, same fitted log-likelihoods and parameters.
    let (original, exported) = (read(&source), read(&out));
    assert_eq!(original.rows.len(), 1200);
    assert_eq!(exported.rows.len(), original.rows.len());
    assert!(exported.errors.is_empty(), "{:?}", exported.errors);
    let tasks = &dsl::tasks::correa2025().tasks;
    let limits = dsl::Limits::default();
    let a = analysis::check::check(&original, tasks, &limits);
    let b = analysis::check::check(&exported, tasks, &limits);
    let json = |r: &analysis::check::CheckReport| {
        let mut v = serde_json::to_value(r).unwrap();
        // Line numbers are the same too (same row order), but say so explicitly: compare figures.
        v.as_object_mut().unwrap().remove("errors");
        v
    };
    assert_eq!(json(&a), json(&b), "check-data figures differ");
    assert_eq!(a.summary.rows, 1200);
    assert!(a.summary.canonical_matches > 1000, "{:?}", a.summary);
    let (fa, fb) = (fit_figures(&original), fit_figures(&exported));
    for ((name, ll_a, params_a), (_, ll_b, params_b)) in fa.iter().zip(&fb) {
        eprintln!(
            "{name}: log-likelihood {ll_a:.6} (published) vs {ll_b:.6} (round trip); params {params_a:?} vs {params_b:?}"
        );
        assert!((ll_a - ll_b).abs() < 1e-6, "{name}: {ll_a} vs {ll_b}");
        for (x, y) in params_a.iter().zip(params_b) {
            assert!((x - y).abs() < 1e-6, "{name}: {params_a:?} vs {params_b:?}");
        }
    }
    // The published columns come first, in the published order, then order_position.
    let header = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(header.starts_with(
        "participant_idx,mdp_idx,skipped,elapsed_minutes,program_evaluations,program,preprocessed_program,programming_exp,programming_game_exp,order_position"
    ), "{header}");
}

/// Runs `n` participants of `experiment` through its main tasks at the store level: each sees
/// the tasks in its session's order and submits the published program of each task.
async fn simulate(store: &dyn Store, experiment: &Experiment, n: usize) -> Vec<Vec<usize>> {
    let answers = [
        ("programming_exp".to_owned(), "None".to_owned()),
        ("programming_game_exp".to_owned(), "No".to_owned()),
    ];
    let mut orders = Vec::new();
    for index in 0..n {
        let recruiter_id = format!("PID{index:03}");
        let who = Simulated {
            index,
            recruiter_id: &recruiter_id,
            answers: &answers,
        };
        orders.push(simulate_participant(store, experiment, who).await.1);
    }
    orders
}

async fn export_text(exporter: &Exporter, format: Format) -> String {
    let buffer = SharedFile::new();
    exporter
        .write(format, &mut Sink::Writer(Box::new(buffer.clone())))
        .await
        .expect("export");
    buffer.text()
}

/// A writer whose bytes the test can read afterwards.
#[derive(Clone)]
struct SharedFile(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedFile {
    fn new() -> SharedFile {
        SharedFile(Arc::default())
    }
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn open(db: &TestDb) -> (Arc<dyn Store>, Arc<dyn ResearchStore>) {
    let database = server::store::connect(&db.url)
        .await
        .expect("open the database");
    (database.store, database.research)
}

fn shuffled_experiment() -> Arc<Experiment> {
    Arc::new(bundled_with(&[("mode = \"fixed\"", "mode = \"shuffle\"")]))
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn shuffled_orders_export_the_task_index_and_the_position_seen(#[case] backend: Backend) {
    // Arrange
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (store, research) = open(&db).await;
    let experiment = shuffled_experiment();
    let orders = simulate(store.as_ref(), &experiment, 4).await;
    assert!(
        orders.iter().any(|o| *o != (0..10).collect::<Vec<_>>()),
        "some order is shuffled"
    );

    // Act
    let exporter = Exporter::new(
        store,
        research,
        experiment.clone(),
        ExportOptions::default(),
    )
    .await
    .unwrap();
    let text = export_text(&exporter, Format::ProgramsCsv).await;

    // Assert: row by row, mdp_idx names the task whose program was submitted, and order_position
    // is where that participant saw it.
    let solutions = crate::support::solutions();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let participant: usize = record[col("participant_idx")].parse().unwrap();
        let mdp: usize = record[col("mdp_idx")].parse().unwrap();
        let position: usize = record[col("order_position")].parse().unwrap();
        assert_eq!(
            orders[participant][position], mdp,
            "participant {participant}"
        );
        assert_eq!(record[col("program")], solutions.tasks[mdp]);
        assert!(!record[col("preprocessed_program")].is_empty());
        assert!(record[col("participant")].starts_with("p-"));
        rows += 1;
    }
    assert_eq!(rows, 40);
    assert!(!text.contains("PID00"), "no recruiter ID without --raw-ids");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_psych_ds_folder_describes_every_column_it_contains(#[case] backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (store, research) = open(&db).await;
    let experiment = shuffled_experiment();
    simulate(store.as_ref(), &experiment, 2).await;
    let exporter = Exporter::new(
        store,
        research,
        experiment.clone(),
        ExportOptions::default(),
    )
    .await
    .unwrap();
    let dir = TempDir::new();

    exporter.write_psych_ds(dir.path()).await.expect("psych-ds");

    let description: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dataset_description.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(description["@type"], "Dataset");
    let described: Vec<&str> = description["variableMeasured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.ends_with("_data.csv") && name.starts_with("study-"),
            "{name}"
        );
        let mut reader = csv::Reader::from_path(&path).unwrap();
        for column in reader.headers().unwrap() {
            assert!(
                described.contains(&column),
                "{name}: column {column} is not described"
            );
        }
        assert!(reader.records().count() > 0, "{name} has rows");
        files += 1;
    }
    assert_eq!(files, 3);
    assert_levels_from_the_definition(&description, &experiment);
}

/// `programming_exp` lists its options as levels, in the definition's order, and says that
/// "None" is one of them, not a missing value; a text column has no levels.
fn assert_levels_from_the_definition(description: &serde_json::Value, experiment: &Experiment) {
    let variable = |name: &str| {
        description["variableMeasured"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name} is described"))
            .clone()
    };
    let options = experiment
        .questionnaire
        .iter()
        .find_map(|item| match &item.kind {
            ItemKind::Choice { options } if item.id == "programming_exp" => Some(options.clone()),
            _ => None,
        })
        .expect("the bundled experiment asks programming_exp");
    let programming_exp = variable("programming_exp");
    assert_eq!(programming_exp["levels"], serde_json::json!(options));
    assert_eq!(programming_exp["levels"][0], "None");
    assert_eq!(programming_exp["naValue"], "");
    let text = programming_exp["description"].as_str().unwrap();
    assert!(
        text.contains("\"None\" is a level (an answer), not a missing value"),
        "{text}"
    );
    assert_eq!(
        variable("programming_game_exp")["levels"],
        serde_json::json!(["Yes", "No"])
    );
    assert!(variable("answer").get("levels").is_none());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn raw_ids_need_the_flag_and_withdrawal_by_pseudonym_deletes_and_is_audited(
    #[case] backend: Backend,
) {
    // Arrange
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (store, research) = open(&db).await;
    let experiment = shuffled_experiment();
    simulate(store.as_ref(), &experiment, 3).await;
    let exporter = Exporter::new(
        store.clone(),
        research.clone(),
        experiment.clone(),
        ExportOptions::default(),
    )
    .await
    .unwrap();
    let pseudonym = exporter
        .participants()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.session.recruiter_id.as_deref() == Some("PID001"))
        .unwrap()
        .pseudonym;
    let trials = export_text(&exporter, Format::TrialsCsv).await;
    assert!(trials.contains(&pseudonym) && !trials.contains("PID001"));
    let raw = Exporter::new(
        store.clone(),
        research.clone(),
        experiment.clone(),
        ExportOptions {
            raw_ids: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        export_text(&raw, Format::QuestionnaireCsv)
            .await
            .contains("PID001")
    );
    let bonus = export_text(&raw, Format::BonusCsv).await;
    assert_eq!(bonus.lines().count(), 3, "{bonus}");
    assert!(
        bonus
            .lines()
            .all(|l| l.starts_with("PID") && l.ends_with(",4.00")),
        "{bonus}"
    );
    assert!(
        exporter
            .write(
                Format::BonusCsv,
                &mut Sink::Writer(Box::new(std::io::sink()))
            )
            .await
            .is_err()
    );

    // Act
    let withdrawn = server::researcher::withdraw::withdraw(
        store.clone(),
        research.clone(),
        experiment.clone(),
        &pseudonym,
        "tester",
        server::clock::now(),
    )
    .await
    .expect("withdraw");

    // Assert
    assert_eq!(withdrawn.sessions, 1);
    let left = export_text(&exporter, Format::TrialsCsv).await;
    assert!(!left.contains(&pseudonym));
    assert_eq!(
        store
            .sessions_of(experiment.slug.as_str())
            .await
            .unwrap()
            .len(),
        2
    );
    let log = research.audit_log(10).await.unwrap();
    assert!(log.iter().any(|e| e.action == "withdraw"
        && e.detail.contains(&pseudonym)
        && !e.detail.contains("PID001")));
    let again = server::researcher::withdraw::withdraw(
        store,
        research,
        experiment,
        "PID001",
        "tester",
        server::clock::now(),
    )
    .await;
    assert!(again.is_err(), "nothing left to withdraw");
}
