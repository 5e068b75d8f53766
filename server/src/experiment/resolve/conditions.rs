//! Validation of between-subject conditions (`[[conditions]]`, docs/study.md §10): well-formed
//! unique names, at least two, and each override resolved by the same code as the top-level key
//! it replaces, its problems named under `conditions[i]`. Each condition becomes an
//! [`Experiment`] of its own, the top level with the overrides in place.

use std::collections::HashSet;
use std::sync::Arc;

use dsl::{LightMode, Limits};

use super::Resolver;
use crate::experiment::definition::{ConditionDef, OrderDef};
use crate::experiment::model::Condition;
use crate::experiment::{Experiment, Order, Screen, TaskEntry};

/// A condition as resolved: its name and what it puts in place of the top level's settings.
pub(super) struct ConditionParts {
    name: String,
    light: Option<LightMode>,
    tasks: Option<Vec<TaskEntry>>,
    instructions: Option<Vec<Screen>>,
    order: Option<Order>,
}

/// What the conditions are resolved against: the top level's resolved settings.
pub(super) struct TopLevel<'a> {
    pub(super) light: LightMode,
    pub(super) limits: &'a Limits,
    pub(super) tutorial: &'a [Screen],
    pub(super) instructions: &'a [Screen],
    pub(super) tasks: &'a [TaskEntry],
    pub(super) order: &'a OrderDef,
    /// Whether the top-level `[order]` resolved without problems; if not, it is not resolved
    /// again for a condition's tasks (its problems are reported once).
    pub(super) order_ok: bool,
}

/// Condition names: 1-64 lowercase letters, digits, `-` or `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Resolver<'_> {
    /// `toggle` or `idempotent`.
    pub(super) fn light(&mut self, key: &str, text: &str) -> Option<LightMode> {
        match text {
            "toggle" => Some(LightMode::Toggle),
            "idempotent" => Some(LightMode::Idempotent),
            other => {
                self.problem(
                    key,
                    format!("`{other}` is not a light mode: use `toggle` or `idempotent`"),
                );
                None
            }
        }
    }

    /// Resolves every condition; problems are collected as everywhere else.
    pub(super) fn conditions(
        &mut self,
        defs: &[ConditionDef],
        top: &TopLevel<'_>,
    ) -> Vec<ConditionParts> {
        if defs.len() == 1 {
            self.problem(
                "conditions",
                "one condition is no comparison: define at least two, or none",
            );
        }
        let mut names = HashSet::new();
        let mut parts = Vec::new();
        for (i, def) in defs.iter().enumerate() {
            let key = format!("conditions[{i}]");
            if !valid_name(&def.name) {
                self.problem(
                    format!("{key}.name"),
                    format!(
                        "`{}` must be 1-64 lowercase letters, digits, `-` or `_`",
                        def.name
                    ),
                );
            } else if !names.insert(def.name.as_str()) {
                self.problem(
                    format!("{key}.name"),
                    format!("the name `{}` is used by an earlier condition", def.name),
                );
            }
            parts.push(self.condition(&key, def, top));
        }
        parts
    }

    fn condition(&mut self, key: &str, def: &ConditionDef, top: &TopLevel<'_>) -> ConditionParts {
        let light = def
            .light
            .as_deref()
            .and_then(|text| self.light(&format!("{key}.light"), text));
        let effective_light = light.unwrap_or(top.light);
        let tasks = def.tasks.as_ref().map(|defs| {
            if defs.is_empty() {
                self.problem(
                    format!("{key}.tasks"),
                    "a condition needs at least one task",
                );
            }
            self.task_list(&format!("{key}.tasks"), defs)
        });
        let instructions = def.instructions.as_ref().map(|defs| {
            self.screens(
                &format!("{key}.instructions"),
                defs,
                top.limits,
                effective_light,
            )
        });
        if light.is_some_and(|light| light != top.light) {
            // The screens the condition keeps were checked under the top-level light.
            self.demos_still_solve(key, "tutorial", top.tutorial, effective_light);
            if instructions.is_none() {
                self.demos_still_solve(key, "instructions", top.instructions, effective_light);
            }
        }
        let order = match (&def.order, &tasks) {
            (Some(order), tasks) => {
                let tasks = tasks.as_deref().unwrap_or(top.tasks);
                self.under(key, |resolver| resolver.order(order, tasks))
            }
            (None, Some(tasks)) if top.order_ok => self.top_order_for(key, top.order, tasks),
            (None, _) => None,
        };
        ConditionParts {
            name: def.name.clone(),
            light,
            tasks,
            instructions,
            order,
        }
    }

    /// Runs `resolve` and names the problems it finds under `prefix`.
    fn under<T>(&mut self, prefix: &str, resolve: impl FnOnce(&mut Self) -> T) -> T {
        let start = self.problems.len();
        let resolved = resolve(self);
        for problem in &mut self.problems[start..] {
            problem.key = if problem.key.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", problem.key)
            };
        }
        resolved
    }

    /// The top-level `[order]` resolved for a condition's own tasks: its problems are the
    /// condition's tasks' (for example a balanced order naming a label the condition lacks).
    fn top_order_for(&mut self, key: &str, def: &OrderDef, tasks: &[TaskEntry]) -> Option<Order> {
        let start = self.problems.len();
        let order = self.order(def, tasks);
        for problem in &mut self.problems[start..] {
            problem.message = format!(
                "the top-level `{}` does not fit this condition's tasks ({}); give the condition \
                 its own `order`",
                problem.key, problem.message
            );
            problem.key = format!("{key}.tasks");
        }
        order
    }

    /// Reports the screens to solve whose demonstration no longer solves the level under the
    /// condition's light.
    fn demos_still_solve(&mut self, key: &str, list: &str, screens: &[Screen], light: LightMode) {
        for (index, screen) in screens.iter().enumerate() {
            let (true, Some(level), Some(demo)) = (screen.solve, &screen.level, &screen.demo)
            else {
                continue;
            };
            let options = dsl::RunOptions {
                light,
                ..Default::default()
            };
            if !dsl::run(&level.task, demo, &options).solved {
                self.problem(
                    format!("{key}.light"),
                    format!(
                        "the demonstration of `{list}[{index}]` does not solve its level, which \
                         the participant must solve, under {} light",
                        light_name(light)
                    ),
                );
            }
        }
    }
}

fn light_name(light: LightMode) -> &'static str {
    match light {
        LightMode::Toggle => "toggle",
        LightMode::Idempotent => "idempotent",
    }
}

/// The experiment with its conditions: each the top level with the condition's overrides.
pub(super) fn with_conditions(
    mut experiment: Experiment,
    parts: Vec<ConditionParts>,
) -> Experiment {
    experiment.conditions = parts
        .into_iter()
        .map(|part| {
            let mut arm = experiment.clone();
            arm.arm = Some(part.name.clone());
            arm.light = part.light.unwrap_or(arm.light);
            if let Some(tasks) = part.tasks {
                arm.tasks = tasks;
            }
            if let Some(instructions) = part.instructions {
                arm.instructions = instructions;
            }
            if let Some(order) = part.order {
                arm.order = order;
            }
            Condition {
                name: part.name,
                experiment: Arc::new(arm),
            }
        })
        .collect();
    experiment
}
