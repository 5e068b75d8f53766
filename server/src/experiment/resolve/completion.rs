//! Validation of the end of a session: the completion code and redirect URL, and the bonus rule.

use crate::experiment::definition::{BonusDef, CompletionDef};
use crate::experiment::model::{RedirectSegment, redirect_segments};
use crate::experiment::resolve::{Resolver, valid_label};
use crate::experiment::{Bonus, BonusRule, Completion};

impl Resolver<'_> {
    pub(super) fn completion(&mut self, def: &CompletionDef) -> Option<Completion> {
        let code_ok = valid_label(&def.code);
        if !code_ok {
            self.problem(
                "completion.code",
                "must be 1-64 letters, digits, `-` or `_`",
            );
        }
        if let Some(url) = &def.redirect_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                self.problem(
                    "completion.redirect_url",
                    format!("`{url}` must start with https:// or http://"),
                );
            }
            if redirect_segments(url).any(|segment| segment == RedirectSegment::StrayBracket) {
                self.problem(
                    "completion.redirect_url",
                    "a `[` must start a placeholder such as `[PROLIFIC_PID]`",
                );
            }
        }
        let text = def
            .text
            .as_ref()
            .and_then(|t| self.text("completion.text", t));
        code_ok.then(|| Completion {
            code: def.code.clone(),
            redirect_url: def.redirect_url.clone(),
            text,
        })
    }

    pub(super) fn bonus(&mut self, def: &BonusDef) -> Option<Bonus> {
        let currency = def.currency.clone().unwrap_or_else(|| "USD".into());
        let rule = match def.rule.as_deref().unwrap_or("none") {
            "none" => BonusRule::None,
            "length_relative_to_shortest" => {
                let Some(per_task) = def.per_task else {
                    self.problem(
                        "bonus.per_task",
                        "the rule `length_relative_to_shortest` needs `per_task`",
                    );
                    return None;
                };
                if !(per_task.is_finite() && per_task >= 0.0) {
                    self.problem("bonus.per_task", "must be a non-negative amount");
                }
                if let Some(target) = def.target_mean_total
                    && !(target.is_finite() && target >= 0.0)
                {
                    self.problem("bonus.target_mean_total", "must be a non-negative amount");
                }
                BonusRule::LengthRelativeToShortest {
                    per_task,
                    target_mean_total: def.target_mean_total,
                }
            }
            other => {
                self.problem(
                    "bonus.rule",
                    format!(
                        "`{other}` is not a bonus rule: use `none` or `length_relative_to_shortest`"
                    ),
                );
                return None;
            }
        };
        Some(Bonus { rule, currency })
    }
}
