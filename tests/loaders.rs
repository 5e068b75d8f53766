//! The loading code of docs/researcher.md ("Load it in pandas / R") reads every export exactly.
//! The code lives in `docs/snippets/load.py` and `docs/snippets/load.R`; the page quotes both
//! files verbatim (checked here), and these tests run the files themselves, so the page cannot
//! drift from what was tested.
//!
//! Four participants answer every option of each choice item ("None" included) and, in the
//! text items, strings that trip readers: "NA", "null", commas, quotes, newlines, unicode, an
//! empty answer, numbers with leading zeros. Every CSV export is written by `proglab export`
//! (and the published `programs-dev.csv` is read too); a small driver loads each file with the
//! documented functions and prints every cell with its type, and each cell must be what the file
//! holds: an empty cell missing, any other cell the same text (or the same number or boolean).
//!
//! pandas comes from `python3` (or `PROGLAB_PYTHON`), R from `Rscript` (or `PROGLAB_RSCRIPT`);
//! `scripts/install-loaders.sh` installs both. Without them a test prints a notice and passes,
//! unless `PROGLAB_REQUIRE_LOADERS=1` (CI), which makes it fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rstest::rstest;
use server::experiment::{Experiment, ItemKind};
use server::store::{NewEvent, Store};

use crate::support::simulate::{Simulated, simulate_participant};
use crate::support::{Backend, TempDir, TestDb, proglab};

/// Answers that a careless reader changes: spellings of "missing", delimiters and quotes,
/// line breaks, non-ASCII text, the empty answer, and text that looks like a number or a boolean.
/// Twenty, one per text item of the four participants.
const AWKWARD: [&str; 20] = [
    "None",
    "NA",
    "null",
    "N/A",
    "NaN",
    "a, b, and c",
    "she said \"hi\", then left",
    "first line\nsecond line",
    "crlf\r\nline",
    "ünïcødé — 日本語 🤖",
    "",
    "  padded  ",
    "007",
    "1e3",
    "True",
    "#not a comment",
    "'single quotes'",
    "tab\there",
    "=1+1",
    "\\N",
];

/// Recruiter IDs that look missing or numeric (the raw-ID exports and bonus-csv carry them).
const RECRUITER_IDS: [&str; 4] = ["None", "NA", "0042", "5f1e0c2ab3d4e5f607182930"];

/// The columns both snippets read as text whatever their values look like.
const TEXT_COLUMNS: [&str; 10] = [
    "participant",
    "recruiter_id",
    "condition",
    "label",
    "program",
    "preprocessed_program",
    "programming_exp",
    "programming_game_exp",
    "item",
    "answer",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loader {
    Pandas,
    R,
}

impl Loader {
    fn program(self) -> String {
        let (variable, default) = match self {
            Loader::Pandas => ("PROGLAB_PYTHON", "python3"),
            Loader::R => ("PROGLAB_RSCRIPT", "Rscript"),
        };
        std::env::var(variable).unwrap_or_else(|_| default.to_owned())
    }

    fn snippet(self) -> PathBuf {
        workspace_root().join(match self {
            Loader::Pandas => "docs/snippets/load.py",
            Loader::R => "docs/snippets/load.R",
        })
    }

    /// The driver: loads each `KIND IN OUT` triple of its arguments with the snippet's
    /// functions and writes OUT (see [`parse_table`]).
    fn driver(self) -> (&'static str, &'static str) {
        match self {
            Loader::Pandas => ("driver.py", PANDAS_DRIVER),
            Loader::R => ("driver.R", R_DRIVER),
        }
    }

    fn installed(self) -> bool {
        let check: &[&str] = match self {
            Loader::Pandas => &["-c", "import pandas"],
            Loader::R => &["--version"],
        };
        Command::new(self.program())
            .args(check)
            .output()
            .is_ok_and(|output| output.status.success())
    }
}

const PANDAS_DRIVER: &str = r#"
import json, math, runpy, sys
import numpy as np
import pandas as pd

loader = runpy.run_path(sys.argv[1])

def hexed(text):
    return text.encode("utf-8").hex()

def cell(value):
    if isinstance(value, str):
        return "chr:" + hexed(value)
    if pd.isna(value):
        return "na:"
    if isinstance(value, (bool, np.bool_)):
        return "lgl:true" if value else "lgl:false"
    return "num:" + repr(float(value))

def missing_as_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value

args = sys.argv[2:]
for kind, path, out in zip(args[0::3], args[1::3], args[2::3]):
    with open(out, "w", encoding="utf-8") as sink:
        if kind == "events":
            for record in loader["read_events"](path).to_dict(orient="records"):
                clean = {key: missing_as_none(value) for key, value in record.items()}
                sink.write(json.dumps(clean) + "\n")
            continue
        frame = loader["read_bonus" if kind == "bonus" else "read_export"](path)
        sink.write("\t".join(hexed(str(c)) for c in frame.columns) + "\n")
        for row in frame.itertuples(index=False, name=None):
            sink.write("\t".join(cell(value) for value in row) + "\n")
"#;

const R_DRIVER: &str = r#"
args <- commandArgs(trailingOnly = TRUE)
source(args[[1]])
hexed <- function(text) paste(as.character(charToRaw(enc2utf8(text))), collapse = "")
cell <- function(value) {
  if (is.na(value)) return("na:")
  if (is.character(value)) return(paste0("chr:", hexed(value)))
  if (is.logical(value)) return(if (value) "lgl:true" else "lgl:false")
  paste0("num:", sprintf("%.17g", as.numeric(value)))
}
for (i in seq(2, length(args), by = 3)) {
  kind <- args[[i]]
  frame <- if (kind == "bonus") read_bonus(args[[i + 1]]) else read_export(args[[i + 1]])
  rows <- vapply(seq_len(nrow(frame)), function(row) {
    paste(vapply(frame, function(column) cell(column[[row]]), ""), collapse = "\t")
  }, "")
  header <- paste(vapply(names(frame), hexed, ""), collapse = "\t")
  writeLines(c(header, rows), args[[i + 2]], useBytes = TRUE)
}
"#;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .to_path_buf()
}

fn loaders_required() -> bool {
    std::env::var("PROGLAB_REQUIRE_LOADERS").is_ok_and(|v| v == "1")
}

/// Whether `loader` can run; a notice (or, when required, a failure) when it cannot.
fn loader_or_skip(loader: Loader, test: &str) -> bool {
    if loader.installed() {
        return true;
    }
    assert!(
        !loaders_required(),
        "{test}: {loader:?} is missing ({}) and PROGLAB_REQUIRE_LOADERS=1; run scripts/install-loaders.sh",
        loader.program()
    );
    eprintln!(
        "notice: {test} skipped: no {loader:?} ({}; run scripts/install-loaders.sh, or set \
         PROGLAB_REQUIRE_LOADERS=1 to make this a failure)",
        loader.program()
    );
    false
}

/// What a loader made of one cell.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Missing,
    Text(String),
    Logical(bool),
    Number(f64),
}

/// How a file is read: which documented function, and whether it has a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Table,
    Bonus,
    Events,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Bonus => "bonus",
            Kind::Events => "events",
        }
    }
}

/// One exported file to load.
struct Export {
    name: String,
    kind: Kind,
    path: PathBuf,
}

fn bundled() -> Experiment {
    server::experiment::bundled()
        .expect("bundled experiments")
        .into_iter()
        .find(|e| e.slug.as_str() == "correa2025")
        .expect("correa2025 is bundled")
}

/// Participant `index`'s answers: option `index` (wrapping) of each choice item, and the next
/// five awkward strings for the text items, so that four participants give every value once.
fn answers_of(experiment: &Experiment, index: usize) -> Vec<(String, String)> {
    let mut text = AWKWARD.iter().cycle().skip(index * 5);
    experiment
        .questionnaire
        .iter()
        .map(|item| {
            let answer = match &item.kind {
                ItemKind::Choice { options } => options[index % options.len()].clone(),
                ItemKind::Text => text.next().map_or(String::new(), |s| s.to_string()),
            };
            (item.id.clone(), answer)
        })
        .collect()
}

/// Four completed participants with the answers above and one event each; returns every answer
/// given (the values the questionnaire export must carry).
async fn seed(db: &TestDb, experiment: &Experiment) -> BTreeSet<String> {
    let store = server::store::connect(&db.url)
        .await
        .expect("open the database")
        .store;
    let mut given = BTreeSet::new();
    for (index, recruiter_id) in RECRUITER_IDS.iter().enumerate() {
        let answers = answers_of(experiment, index);
        given.extend(answers.iter().map(|(_, answer)| answer.clone()));
        let who = Simulated {
            index,
            recruiter_id,
            answers: &answers,
        };
        let (session, _) = simulate_participant(store.as_ref(), experiment, who).await;
        record_event(store.as_ref(), &session.id, AWKWARD[index]).await;
    }
    given
}

/// An edit event whose data holds an awkward string and a JSON null.
async fn record_event(store: &dyn Store, session_id: &str, text: &str) {
    let event = NewEvent {
        seq: 1,
        kind: "edit".into(),
        step: Some(1),
        client_ms: Some(10),
        data: serde_json::json!({ "program": "None", "note": text, "nothing": null }),
    };
    store
        .store_events(session_id, &[event], server::clock::now(), 10)
        .await
        .expect("store an event");
}

/// Writes every export with `proglab export` (raw IDs, so the awkward recruiter IDs are in them;
/// the Psych-DS folder as published, with pseudonyms) and lists the files, the published
/// `programs-dev.csv` included.
fn export_all(url: &str, dir: &Path) -> Vec<Export> {
    let mut exports = Vec::new();
    for (format, kind) in [
        ("programs-csv", Kind::Table),
        ("trials-csv", Kind::Table),
        ("questionnaire-csv", Kind::Table),
        ("bonus-csv", Kind::Bonus),
        ("events-jsonl", Kind::Events),
    ] {
        let path = dir.join(format);
        let out = path.to_str().expect("a UTF-8 path");
        let args = [
            "export",
            "--format",
            format,
            "--raw-ids",
            "--out",
            out,
            "--database-url",
            url,
        ];
        proglab(&args, None).expect("proglab export");
        exports.push(Export {
            name: format.to_owned(),
            kind,
            path,
        });
    }
    let folder = dir.join("psych-ds");
    let out = folder.to_str().expect("a UTF-8 path");
    let args = [
        "export",
        "--format",
        "psych-ds",
        "--out",
        out,
        "--database-url",
        url,
    ];
    proglab(&args, None).expect("proglab export psych-ds");
    for table in ["programs", "trials", "questionnaire"] {
        exports.push(Export {
            name: format!("psych-ds {table}"),
            kind: Kind::Table,
            path: folder.join(format!("data/study-correa2025_table-{table}_data.csv")),
        });
    }
    exports.push(Export {
        name: "published programs-dev.csv".into(),
        kind: Kind::Table,
        path: workspace_root().join("analysis/data/programs-dev.csv"),
    });
    exports
}

/// Runs the loader's driver on every file at once (one interpreter start) and returns the path
/// of each file's output.
fn run_loader(loader: Loader, exports: &[&Export], dir: &Path) -> Vec<PathBuf> {
    let (name, code) = loader.driver();
    let driver = dir.join(name);
    std::fs::write(&driver, code).expect("write the driver");
    let mut command = Command::new(loader.program());
    command.arg(&driver).arg(loader.snippet());
    let mut outputs = Vec::new();
    for (i, export) in exports.iter().enumerate() {
        let out = dir.join(format!("{name}-{i}.out"));
        command.arg(export.kind.name()).arg(&export.path).arg(&out);
        outputs.push(out);
    }
    let output = command.output().expect("run the loader");
    assert!(
        output.status.success(),
        "{loader:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    outputs
}

fn unhex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    String::from_utf8(bytes).expect("UTF-8")
}

fn parse_cell(text: &str) -> Cell {
    let (kind, value) = text.split_once(':').expect("KIND:VALUE");
    match kind {
        "na" => Cell::Missing,
        "chr" => Cell::Text(unhex(value)),
        "lgl" => Cell::Logical(value == "true"),
        "num" => Cell::Number(value.parse().expect("a number")),
        other => panic!("unknown cell kind {other}"),
    }
}

/// A driver's output: the header (hex-encoded UTF-8 names), then one line per row of
/// `KIND:VALUE` cells (`chr:` hex-encoded text, `num:`, `lgl:`, `na:`), separated by tabs.
fn parse_table(output: &str) -> (Vec<String>, Vec<Vec<Cell>>) {
    let mut lines = output.lines();
    let header = lines.next().expect("a header line");
    let columns = header.split('\t').map(unhex).collect();
    let rows = lines
        .map(|line| line.split('\t').map(parse_cell).collect())
        .collect();
    (columns, rows)
}

/// The file's own header and cells, as the csv crate reads them.
fn written_table(export: &Export) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(export.kind != Kind::Bonus)
        .from_path(&export.path)
        .expect("open the export");
    let columns = match export.kind {
        Kind::Bonus => vec!["recruiter_id".to_owned(), "amount".to_owned()],
        _ => reader
            .headers()
            .expect("a header")
            .iter()
            .map(str::to_owned)
            .collect(),
    };
    let rows = reader
        .records()
        .map(|record| {
            record
                .expect("a record")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    (columns, rows)
}

/// What the loader can give back for a written cell: R's `read.csv` ends lines at CR LF even
/// inside quotes, so a CR LF in an answer comes back as LF (docs/researcher.md says so; the
/// study's page sends LF only). Every other value must come back as written.
fn as_read_by(loader: Loader, written: &str) -> String {
    match loader {
        Loader::R => written.replace("\r\n", "\n"),
        Loader::Pandas => written.to_owned(),
    }
}

/// Whether `read` is what the file holds: missing for an empty cell, else the same text, or
/// (outside the text columns) the same number or boolean.
fn same(written: &str, read: &Cell, text_column: bool) -> bool {
    match read {
        Cell::Missing => written.is_empty(),
        Cell::Text(text) => text == written,
        Cell::Logical(value) => {
            !text_column && written.eq_ignore_ascii_case(if *value { "true" } else { "false" })
        }
        Cell::Number(value) => {
            !text_column
                && written
                    .parse::<f64>()
                    .is_ok_and(|w| (w - value).abs() <= 1e-9 * w.abs().max(1.0))
        }
    }
}

/// Every cell of a table export as the loader read it, against the file; returns the text the
/// loader read in each column, for the checks on particular values.
fn compare_table(
    loader: Loader,
    export: &Export,
    output: &Path,
) -> Vec<(String, BTreeSet<String>)> {
    let (columns, rows) = written_table(export);
    let text = std::fs::read_to_string(output).expect("the loader's output");
    let (read_columns, read_rows) = parse_table(&text);
    let what = format!("{loader:?} reading {}", export.name);
    assert_eq!(read_columns, columns, "{what}: columns");
    assert_eq!(read_rows.len(), rows.len(), "{what}: rows");
    let mut wrong = Vec::new();
    let mut texts: Vec<(String, BTreeSet<String>)> = columns
        .iter()
        .map(|c| (c.clone(), BTreeSet::new()))
        .collect();
    for (r, (row, read_row)) in rows.iter().zip(&read_rows).enumerate() {
        for (c, (written, read)) in row.iter().zip(read_row).enumerate() {
            let text_column = TEXT_COLUMNS.contains(&columns[c].as_str());
            if !same(&as_read_by(loader, written), read, text_column) {
                wrong.push(format!(
                    "row {r} {}: {written:?} read as {read:?}",
                    columns[c]
                ));
            }
            if let Cell::Text(value) = read {
                texts[c].1.insert(value.clone());
            }
        }
    }
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
    texts
}

/// The event log as pandas read it: every key of every line has its value (numbers as numbers).
fn compare_events(export: &Export, output: &Path) {
    let lines = |path: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    };
    let (written, read) = (lines(&export.path), lines(output));
    assert_eq!(read.len(), written.len(), "events: lines");
    assert_eq!(
        written.len(),
        RECRUITER_IDS.len(),
        "one event per participant"
    );
    for (line, loaded) in written.iter().zip(&read) {
        for (key, value) in line.as_object().expect("an object") {
            let got = &loaded[key];
            let same = match (value.as_f64(), got.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                _ => value == got,
            };
            assert!(same, "events: {key}: {value} read as {got}");
        }
    }
}

fn column<'a>(texts: &'a [(String, BTreeSet<String>)], name: &str) -> &'a BTreeSet<String> {
    &texts
        .iter()
        .find(|(c, _)| c == name)
        .unwrap_or_else(|| panic!("a column {name}"))
        .1
}

/// The values the test is about came through as text, so the cell comparison was not vacuous:
/// every option and answer in the questionnaire export, "None" in programs-csv, the recruiter
/// IDs in bonus-csv.
fn assert_values_came_through(
    loader: Loader,
    export: &Export,
    texts: &[(String, BTreeSet<String>)],
    given: &BTreeSet<String>,
) {
    let expected: BTreeSet<String> = match export.name.as_str() {
        "questionnaire-csv" | "psych-ds questionnaire" => {
            given.iter().filter(|a| !a.is_empty()).cloned().collect()
        }
        "programs-csv" | "psych-ds programs" | "published programs-dev.csv" => {
            BTreeSet::from(["None".to_owned()])
        }
        "bonus-csv" => RECRUITER_IDS.iter().map(|s| s.to_string()).collect(),
        _ => return,
    };
    let name = match export.name.as_str() {
        "questionnaire-csv" | "psych-ds questionnaire" => "answer",
        "bonus-csv" => "recruiter_id",
        _ => "programming_exp",
    };
    let expected: BTreeSet<String> = expected.iter().map(|v| as_read_by(loader, v)).collect();
    let missing: Vec<&String> = expected.difference(column(texts, name)).collect();
    assert!(
        missing.is_empty(),
        "{}: {name} lost {missing:?}",
        export.name
    );
}

async fn reads_every_export_exactly(loader: Loader, backend: Backend, test: &str) {
    if !loader_or_skip(loader, test) {
        return;
    }
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let experiment = bundled();
    let given = seed(&db, &experiment).await;
    let dir = TempDir::new();
    let exports = export_all(&db.url, dir.path());
    let readable: Vec<&Export> = exports
        .iter()
        .filter(|e| e.kind != Kind::Events || loader == Loader::Pandas)
        .collect();

    let outputs = run_loader(loader, &readable, dir.path());

    for (export, output) in readable.iter().zip(&outputs) {
        if export.kind == Kind::Events {
            compare_events(export, output);
            continue;
        }
        let texts = compare_table(loader, export, output);
        assert_values_came_through(loader, export, &texts, &given);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn pandas_reads_every_export_exactly(#[case] backend: Backend) {
    reads_every_export_exactly(Loader::Pandas, backend, "pandas_reads_every_export_exactly").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn r_reads_every_export_exactly(#[case] backend: Backend) {
    reads_every_export_exactly(Loader::R, backend, "r_reads_every_export_exactly").await;
}

/// The page shows exactly the code the tests above run.
#[test]
fn the_researcher_guide_quotes_the_snippets_verbatim() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/researcher.md"))
        .expect("docs/researcher.md");
    for (loader, fence) in [(Loader::Pandas, "python"), (Loader::R, "r")] {
        let snippet = std::fs::read_to_string(loader.snippet()).expect("the snippet");
        assert!(
            guide.contains(&format!("```{fence}\n{snippet}```\n")),
            "docs/researcher.md must quote {} verbatim in a ```{fence} block",
            loader.snippet().display()
        );
    }
}
