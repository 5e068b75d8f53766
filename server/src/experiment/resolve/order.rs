//! Validation of the task order: the mode, and for balanced designs the orders as task labels.

use crate::experiment::TaskEntry;
use crate::experiment::definition::OrderDef;
use crate::experiment::order::{self, Order};
use crate::experiment::resolve::Resolver;

impl Resolver<'_> {
    pub(super) fn order(&mut self, def: &OrderDef, tasks: &[TaskEntry]) -> Option<Order> {
        let mode = def.mode.as_deref().unwrap_or("fixed");
        if def.seed.is_some() && mode != "shuffle" {
            self.problem(
                "order.seed",
                format!("a seed only applies to `mode = \"shuffle\"`, not `{mode}`"),
            );
        }
        if def.orders.is_some() && mode != "balanced" {
            self.problem(
                "order.orders",
                format!("orders only apply to `mode = \"balanced\"`, not `{mode}`"),
            );
        }
        match mode {
            "fixed" => Some(Order::Fixed),
            "shuffle" => Some(Order::Shuffle { seed: def.seed }),
            "balanced" => {
                let Some(orders) = &def.orders else {
                    return Some(Order::Balanced {
                        orders: order::balanced_latin_square(tasks.len()),
                    });
                };
                if orders.is_empty() {
                    self.problem("order.orders", "needs at least one order");
                    return None;
                }
                let mut resolved = Vec::new();
                for (i, labels) in orders.iter().enumerate() {
                    let mut indices = Vec::new();
                    for label in labels {
                        match tasks.iter().position(|t| &t.label == label) {
                            Some(index) => indices.push(index),
                            None => self.problem(
                                format!("order.orders[{i}]"),
                                format!("no task labelled `{label}`"),
                            ),
                        }
                    }
                    let mut sorted = indices.clone();
                    sorted.sort_unstable();
                    if sorted != (0..tasks.len()).collect::<Vec<_>>() {
                        self.problem(
                            format!("order.orders[{i}]"),
                            format!(
                                "must list each of the {} task labels exactly once",
                                tasks.len()
                            ),
                        );
                    }
                    resolved.push(indices);
                }
                Some(Order::Balanced { orders: resolved })
            }
            other => {
                self.problem(
                    "order.mode",
                    format!("`{other}` is not an order mode: use `fixed`, `shuffle` or `balanced`"),
                );
                None
            }
        }
    }
}
