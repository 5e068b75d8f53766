//! Validation of the questionnaire: unique ids, prompts, and each item's kind and options.

use std::collections::HashSet;

use crate::experiment::definition::ItemDef;
use crate::experiment::resolve::{Resolver, valid_label};
use crate::experiment::{Item, ItemKind};

impl Resolver<'_> {
    pub(super) fn questionnaire(&mut self, defs: &[ItemDef]) -> Vec<Item> {
        let mut items = Vec::new();
        let mut ids = HashSet::new();
        for (i, def) in defs.iter().enumerate() {
            let key = format!("questionnaire[{i}]");
            if !valid_label(&def.id) {
                self.problem(
                    format!("{key}.id"),
                    format!("`{}` must be 1-64 letters, digits, `-` or `_`", def.id),
                );
            }
            if !ids.insert(def.id.clone()) {
                self.problem(
                    format!("{key}.id"),
                    format!("the id `{}` is used twice", def.id),
                );
            }
            if def.prompt.trim().is_empty() {
                self.problem(format!("{key}.prompt"), "must not be empty");
            }
            let kind = match def.kind.as_str() {
                "choice" => {
                    if def.options.len() < 2 {
                        self.problem(
                            format!("{key}.options"),
                            "a choice needs at least two options",
                        );
                    }
                    let unique: HashSet<&String> = def.options.iter().collect();
                    if unique.len() != def.options.len() {
                        self.problem(format!("{key}.options"), "options must differ");
                    }
                    ItemKind::Choice {
                        options: def.options.clone(),
                    }
                }
                "text" => {
                    if !def.options.is_empty() {
                        self.problem(format!("{key}.options"), "a text item has no options");
                    }
                    ItemKind::Text
                }
                other => {
                    self.problem(
                        format!("{key}.kind"),
                        format!("`{other}` is not an item kind: use `choice` or `text`"),
                    );
                    continue;
                }
            };
            items.push(Item {
                id: def.id.clone(),
                prompt: def.prompt.trim().to_owned(),
                kind,
                required: def.required,
            });
        }
        items
    }
}
