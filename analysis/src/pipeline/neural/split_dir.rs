//! Finished splits of a neural held-out evaluation, kept as files so that the evaluation can stop
//! and resume (docs/modelling.md §4.8.4).
//!
//! On a CPU every split trains a network and scores all 14.8 million candidates, about five
//! minutes on the two-core development machine, so the full table (15 splits, 3 seeds) takes
//! hours. A [`SplitDir`] writes each finished split's outcome to
//! `DIR/{kind}-seed{seed}-split{fold}.json`, beside a key that names everything the outcome
//! depends on: the file format, the split (kind, index and who or what is held out), the
//! network's settings with its seed, the models, the device, the folds' settings and a SHA-256
//! digest of the data (the task maps, every observation and every choice set's extent). A rerun
//! with the same key loads the file instead of evaluating the split; a file with another key is
//! an error that names what differs, never silently replaced or mixed in.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use dsl::tasks::NamedTask;

use crate::neural::NeuralError;
use crate::neural::choice::ProgramChoiceSets;
use crate::neural::cv::{SplitOutcome, SplitRule, SplitStore};

/// Version of the files' content. Raise it whenever a change to training, scoring or the choice
/// rule's fit would change an outcome, so that older files are refused rather than mixed in.
pub const FORMAT: u32 = 1;

/// The two kinds of split of a held-out evaluation. The name is both the files' prefix and the
/// key's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// Participant folds.
    Participants,
    /// One held-out task at a time.
    Tasks,
}

impl SplitKind {
    pub fn name(self) -> &'static str {
        match self {
            SplitKind::Participants => "participants",
            SplitKind::Tasks => "tasks",
        }
    }
}

/// A directory of finished splits of one kind and one network seed.
#[derive(Debug, Clone)]
pub struct SplitDir {
    dir: PathBuf,
    kind: SplitKind,
    seed: u64,
    /// What the outcomes depend on beyond the split itself.
    context: Value,
}

/// A file's content.
#[derive(Serialize, Deserialize)]
struct Kept {
    key: Value,
    outcome: SplitOutcome,
}

impl SplitDir {
    /// Splits of `kind` for the network seeded `seed`, in `dir`; `context` is everything else the
    /// outcomes depend on ([`context`]).
    pub fn new(dir: &Path, kind: SplitKind, seed: u64, context: Value) -> SplitDir {
        SplitDir {
            dir: dir.to_owned(),
            kind,
            seed,
            context,
        }
    }

    /// The file of split `fold`.
    pub fn path(&self, fold: usize) -> PathBuf {
        self.dir.join(format!(
            "{}-seed{}-split{fold}.json",
            self.kind.name(),
            self.seed
        ))
    }

    fn key(&self, fold: usize, rule: &SplitRule) -> Value {
        json!({
            "format": FORMAT,
            "kind": self.kind,
            "seed": self.seed,
            "split": fold,
            "rule": rule,
            "context": self.context,
        })
    }
}

impl SplitStore for SplitDir {
    fn load(&self, fold: usize, rule: &SplitRule) -> Result<Option<SplitOutcome>, NeuralError> {
        let path = self.path(fold);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        let kept: Kept = serde_json::from_str(&text).map_err(|e| {
            NeuralError::Invalid(format!(
                "{} is not a kept split ({e}); move it away to evaluate the split again",
                path.display()
            ))
        })?;
        let key = self.key(fold, rule);
        if kept.key != key {
            return Err(NeuralError::Invalid(format!(
                "{} was made by another evaluation (its {} differs); use another directory or move the file away",
                path.display(),
                difference(&kept.key, &key)
            )));
        }
        Ok(Some(kept.outcome))
    }

    fn save(
        &self,
        fold: usize,
        rule: &SplitRule,
        outcome: &SplitOutcome,
    ) -> Result<(), NeuralError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let path = self.path(fold);
        let kept = Kept {
            key: self.key(fold, rule),
            outcome: outcome.clone(),
        };
        let text = serde_json::to_string_pretty(&kept)
            .map_err(|e| NeuralError::Invalid(format!("cannot write a kept split: {e}")))?;
        // Written beside and renamed, so that a stopped run never leaves half a file.
        let partial = path.with_extension("json.partial");
        fs::write(&partial, text + "\n").map_err(|e| io_error(&partial, e))?;
        fs::rename(&partial, &path).map_err(|e| io_error(&path, e))
    }
}

/// Everything a split's outcome depends on beyond the split, the kind and the seed: `settings`
/// (the network's, the models', the device's and the folds') and `data`, the [`data_digest`].
pub fn context(data: &str, settings: Value) -> Value {
    json!({ "data": data, "settings": settings })
}

/// SHA-256 over the task maps, every observation (participant, task, program) and each choice
/// set's extent (enumerated programs and the listed ones). It is the same for every seed and
/// kind of split of a run, so a run computes it once.
pub fn data_digest(tasks: &[NamedTask], sets: &ProgramChoiceSets) -> String {
    let mut hash = Sha256::new();
    for task in tasks {
        hash.update(serde_json::to_vec(task).unwrap_or_default());
    }
    for (programs, set) in sets.tasks.iter().zip(&sets.choice_sets.tasks) {
        hash.update(format!("\n{} {} ", programs.label, programs.enumerated));
        for listed in &programs.listed {
            hash.update(listed.to_compact());
            hash.update(";");
        }
        for observation in &set.observations {
            hash.update(format!(
                "{}={};",
                observation.participant, observation.program
            ));
        }
    }
    format!("{:x}", hash.finalize())
}

/// The first field (as a dotted path) where two keys differ.
fn difference(kept: &Value, wanted: &Value) -> String {
    match (kept, wanted) {
        (Value::Object(a), Value::Object(b)) => {
            for (name, value) in b {
                match a.get(name) {
                    Some(other) if other == value => {}
                    Some(other) => {
                        let inner = difference(other, value);
                        return if inner.is_empty() {
                            name.clone()
                        } else {
                            format!("{name}.{inner}")
                        };
                    }
                    None => return name.clone(),
                }
            }
            a.keys()
                .find(|name| !b.contains_key(*name))
                .cloned()
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> NeuralError {
    NeuralError::Io {
        path: path.to_owned(),
        source,
    }
}
