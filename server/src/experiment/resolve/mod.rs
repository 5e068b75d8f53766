//! Turning an experiment file as written into an [`Experiment`]: every key is checked, every
//! referenced file read once, and every problem collected rather than stopping at the first.
//! The sections live in their own files: task lists and screens ([`tasks`]), the task order
//! ([`order`]), the questionnaire ([`questionnaire`]), the session's end ([`completion`]) and
//! between-subject conditions ([`conditions`]).

mod completion;
mod conditions;
mod order;
mod participation;
mod questionnaire;
mod tasks;

use std::collections::BTreeMap;
use std::time::Duration;

use dsl::Limits;
use sha2::{Digest, Sha256};

use crate::domain::ExperimentSlug;
use crate::experiment::definition::{Definition, TextSource};
use crate::experiment::{Consent, Experiment, ExperimentError, Files, Problem, Text};

/// Parses and validates an experiment definition.
pub fn parse(text: &str, file: &str, files: &dyn Files) -> Result<Experiment, ExperimentError> {
    let definition: Definition = toml::from_str(text).map_err(|e| {
        ExperimentError::whole_file(file, e.to_string().trim_end().replace('\n', "\n    "))
    })?;
    let mut resolver = Resolver {
        files,
        problems: Vec::new(),
        used_files: BTreeMap::new(),
    };
    let experiment = resolver.resolve(definition, text, file);
    match experiment {
        Some(experiment) if resolver.problems.is_empty() => Ok(experiment),
        _ => Err(ExperimentError {
            file: file.to_owned(),
            problems: resolver.problems,
        }),
    }
}

/// The state of resolving one file: where referenced files come from and what was found wrong.
struct Resolver<'a> {
    files: &'a dyn Files,
    problems: Vec<Problem>,
    /// Every referenced file's text, by name; part of the version hash.
    used_files: BTreeMap<String, String>,
}

impl Resolver<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn resolve(&mut self, def: Definition, source_text: &str, file: &str) -> Option<Experiment> {
        let slug = ExperimentSlug::parse(&def.slug)
            .map_err(|e| self.problem("slug", e))
            .ok();
        if def.title.trim().is_empty() {
            self.problem("title", "must not be empty");
        }
        let light = self.light("light", &def.light);
        if def.skip_delay_seconds > 86_400 {
            self.problem(
                "skip_delay_seconds",
                format!("{} s is more than a day", def.skip_delay_seconds),
            );
        }
        if def.subroutines > 9 {
            self.problem(
                "subroutines",
                format!("{} subroutines; at most 9 are possible", def.subroutines),
            );
        }
        if !(1..=1000).contains(&def.max_routine_length) {
            self.problem(
                "max_routine_length",
                format!("{} is not between 1 and 1000", def.max_routine_length),
            );
        }
        let limits = Limits {
            subroutines: def.subroutines.min(9),
            max_routine_len: def.max_routine_length,
        };
        let named_recruiter_params = def.recruiter_id_params.is_some();
        let recruiter_id_params = def
            .recruiter_id_params
            .clone()
            .unwrap_or_else(crate::experiment::definition::default_recruiter_id_params);
        for (i, name) in recruiter_id_params.iter().enumerate() {
            if name.trim().is_empty() {
                self.problem(format!("recruiter_id_params[{i}]"), "must not be empty");
            }
        }
        let board = self.board(def.board.as_deref());
        let entry = self.entry(&def.entry, named_recruiter_params);
        let device = self.device(&def.device);
        let timing = self.timing(&def.timing);

        let description = def
            .description
            .as_ref()
            .and_then(|t| self.text("description", t));
        let consent_text = self.text("consent.text", &def.consent.text);
        let tutorial = self.screens(
            "tutorial",
            &def.tutorial,
            &limits,
            light.unwrap_or_default(),
        );
        let practice = self.task_list("practice", &def.practice);
        let instructions = self.screens(
            "instructions",
            &def.instructions,
            &limits,
            light.unwrap_or_default(),
        );
        if def.tasks.is_empty() {
            self.problem("tasks", "an experiment needs at least one task");
        }
        let tasks = self.task_list("tasks", &def.tasks);
        let before_order = self.problems.len();
        let order = self.order(&def.order, &tasks);
        let order_ok = order.is_some() && self.problems.len() == before_order;
        let questionnaire = self.questionnaire(&def.questionnaire);
        let completion = self.completion(&def.completion);
        let bonus = self.bonus(&def.bonus);
        let conditions = self.conditions(
            &def.conditions,
            &conditions::TopLevel {
                light: light.unwrap_or_default(),
                limits: &limits,
                tutorial: &tutorial,
                instructions: &instructions,
                tasks: &tasks,
                order: &def.order,
                order_ok,
            },
        );

        let mut hasher = Sha256::new();
        hasher.update(source_text.as_bytes());
        for (name, text) in &self.used_files {
            hasher.update([0]);
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
        }
        let version = hex::encode(&hasher.finalize()[..8]);

        let experiment = Experiment {
            slug: slug?,
            title: def.title.trim().to_owned(),
            description,
            source: file.to_owned(),
            version,
            light: light?,
            skip_delay: Duration::from_secs(def.skip_delay_seconds),
            limits,
            allow_repeats: def.allow_repeats,
            recruiter_id_params,
            board: board?,
            entry,
            device,
            timing,
            consent: Consent {
                text: consent_text?,
                agree_label: def.consent.agree_label,
                decline_label: def.consent.decline_label,
            },
            tutorial,
            practice,
            instructions,
            tasks,
            order: order?,
            questionnaire,
            completion: completion?,
            bonus: bonus?,
            arm: None,
            conditions: Vec::new(),
        };
        Some(conditions::with_conditions(experiment, conditions))
    }

    fn text(&mut self, key: &str, source: &TextSource) -> Option<Text> {
        let markdown = match source {
            TextSource::Inline(text) => text.clone(),
            TextSource::File { file } => match self.read_file(file) {
                Ok(text) => text,
                Err(message) => {
                    self.problem(format!("{key}.file"), message);
                    return None;
                }
            },
        };
        if markdown.trim().is_empty() {
            self.problem(key, "the text is empty");
            return None;
        }
        Some(Text::from_markdown(&markdown))
    }

    fn read_file(&mut self, name: &str) -> Result<String, String> {
        if let Some(text) = self.used_files.get(name) {
            return Ok(text.clone());
        }
        let text = self.files.read(name)?;
        self.used_files.insert(name.to_owned(), text.clone());
        Ok(text)
    }
}

/// Labels and ids: 1-64 letters, digits, `-` or `_`.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
