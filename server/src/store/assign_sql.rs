//! Assigning a new session its counterbalancing condition and between-subject condition (arm),
//! inside the transaction that creates it (`create_session` in `store::sql`).
//!
//! The `assignment_counters` table counts sessions per cell, `(experiment, condition)`. Without
//! arms a cell is an order's index (`Assignment::Balanced`). With arms
//! (`Assignment::Conditions`) the cells are arm × order: arm `a`'s order `o` is cell
//! `a * stride + o`, where `stride` is the largest number of orders any arm has (1 when no arm's
//! orders are balanced). The arm comes first: the one whose cells hold the fewest sessions (ties
//! broken by the caller's random draw), then within it its least-used order (lowest index on
//! ties), so arms stay balanced overall and orders within each arm. The counters are read with
//! their rows locked (`FOR UPDATE` on Postgres, SQLite's single writer), so concurrent arrivals on
//! any number of instances see each other's increments.
//!
//! A preview session is assigned as an arrival at that moment would be, but not counted: it is
//! not data, and balance is about the participants.

use crate::store::rows::least_used;
use crate::store::{Assignment, NewSession};

/// What a new session is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assigned {
    /// The counterbalanced order's index (`sessions.condition`), when orders are balanced.
    pub(crate) condition: Option<i64>,
    /// The between-subject condition's name (`sessions.arm`).
    pub(crate) arm: Option<String>,
    pub(crate) task_order: Vec<usize>,
    pub(crate) seed: i64,
}

/// The counter cells an assignment counts, grouped by arm (one group without arms); none when
/// nothing is counted.
pub(crate) fn cells(assignment: &Assignment) -> Vec<Vec<i64>> {
    let numbered = |arm: usize, stride: usize, n: usize| -> Vec<i64> {
        (0..n.max(1)).map(|o| (arm * stride + o) as i64).collect()
    };
    match assignment {
        Assignment::Given { .. } => Vec::new(),
        Assignment::Balanced { orders } => vec![numbered(0, 0, orders.len())],
        Assignment::Conditions { arms, .. } => {
            let stride = arms
                .iter()
                .map(|a| a.orders.len())
                .max()
                .unwrap_or(0)
                .max(1);
            arms.iter()
                .enumerate()
                .map(|(a, arm)| numbered(a, stride, arm.orders.len()))
                .collect()
        }
    }
}

/// The chosen arm and order (indices into `groups`) given the counters' `(cell, assigned)` rows:
/// the arm with the fewest sessions over its cells (among ties the `draw`-th, cyclically), then
/// its least-used order (lowest index on ties). Rows of cells outside `groups` (an earlier
/// definition's) are ignored.
pub(crate) fn choose(groups: &[Vec<i64>], rows: &[(i64, i64)], draw: u64) -> (usize, usize) {
    let count = |cell: i64| {
        rows.iter()
            .find(|(c, _)| *c == cell)
            .map_or(0, |(_, assigned)| *assigned)
    };
    let totals: Vec<i64> = groups
        .iter()
        .map(|cells| cells.iter().map(|&c| count(c)).sum())
        .collect();
    let Some(&fewest) = totals.iter().min() else {
        return (0, 0);
    };
    let tied: Vec<usize> = (0..groups.len()).filter(|&a| totals[a] == fewest).collect();
    let arm = tied[(draw % tied.len() as u64) as usize];
    let within: Vec<(i64, i64)> = groups[arm]
        .iter()
        .enumerate()
        .map(|(o, &cell)| (o as i64, count(cell)))
        .collect();
    (arm, least_used(&within, groups[arm].len()))
}

/// What a session is assigned when the store chose `(arm, order)`, or (no groups) what it
/// brought.
pub(crate) fn assigned(new: &NewSession, chosen: Option<(usize, usize)>) -> Assigned {
    let (arm, order) = chosen.unwrap_or((0, 0));
    let given = Assigned {
        condition: None,
        arm: None,
        task_order: Vec::new(),
        seed: new.seed,
    };
    match &new.assignment {
        Assignment::Given { task_order } => Assigned {
            task_order: task_order.clone(),
            ..given
        },
        Assignment::Balanced { orders } => Assigned {
            condition: Some(order as i64),
            task_order: orders.get(order).cloned().unwrap_or_default(),
            ..given
        },
        Assignment::Conditions { arms, .. } => match arms.get(arm) {
            Some(chosen) => Assigned {
                condition: chosen.balanced.then_some(order as i64),
                arm: Some(chosen.name.clone()),
                task_order: chosen.orders.get(order).cloned().unwrap_or_default(),
                seed: chosen.seed,
            },
            None => given,
        },
    }
}

/// Adds `assign`, the counted choice inside `create_session`'s transaction, to `$store`.
/// Expanded inside [`crate::store::sql::impl_store!`]'s scope; `$lock_suffix` is the backend's
/// row lock for the counters.
macro_rules! impl_assign {
    ($store:ty, $db:ty, $lock_suffix:literal) => {
        impl $store {
            /// Chooses and counts what `new` is assigned, on the transaction's connection.
            async fn assign(
                conn: &mut <$db as sqlx::Database>::Connection,
                new: &NewSession,
            ) -> StoreResult<$crate::store::assign_sql::Assigned> {
                use $crate::store::assign_sql::{assigned, cells, choose};
                let groups = cells(&new.assignment);
                if groups.is_empty() {
                    return Ok(assigned(new, None));
                }
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO assignment_counters (experiment, condition, assigned) ",
                );
                insert.push_values(groups.iter().flatten(), |mut row, cell| {
                    row.push_bind(new.experiment.clone())
                        .push_bind(*cell)
                        .push_bind(0i64);
                });
                insert.push(" ON CONFLICT (experiment, condition) DO NOTHING");
                insert.build().execute(&mut *conn).await?;
                let rows: Vec<(i64, i64)> = sqlx::query_as(concat!(
                    "SELECT condition, assigned FROM assignment_counters WHERE experiment = $1 ORDER BY condition",
                    $lock_suffix
                ))
                .bind(&new.experiment)
                .fetch_all(&mut *conn)
                .await?;
                let draw = match &new.assignment {
                    Assignment::Conditions { draw, .. } => *draw,
                    _ => 0,
                };
                let (arm, order) = choose(&groups, &rows, draw);
                if !new.preview {
                    sqlx::query(
                        "UPDATE assignment_counters SET assigned = assigned + 1 WHERE experiment = $1 AND condition = $2",
                    )
                    .bind(&new.experiment)
                    .bind(groups[arm][order])
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(assigned(new, Some((arm, order))))
            }
        }
    };
}

pub(crate) use impl_assign;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ArmOrders;

    fn arm(name: &str, orders: usize, balanced: bool) -> ArmOrders {
        ArmOrders {
            name: name.into(),
            orders: (0..orders).map(|o| vec![o]).collect(),
            balanced,
            seed: 7,
        }
    }

    #[test]
    fn cells_are_arm_times_order_with_the_largest_order_count_as_stride() {
        let conditions = Assignment::Conditions {
            arms: vec![arm("a", 3, true), arm("b", 1, false), arm("c", 2, true)],
            draw: 0,
        };
        assert_eq!(cells(&conditions), vec![vec![0, 1, 2], vec![3], vec![6, 7]]);
        let balanced = Assignment::Balanced {
            orders: vec![vec![0], vec![1]],
        };
        assert_eq!(cells(&balanced), vec![vec![0, 1]]);
        assert!(cells(&Assignment::Given { task_order: vec![] }).is_empty());
    }

    #[test]
    fn the_least_assigned_arm_comes_first_then_its_least_used_order() {
        let groups = vec![vec![0, 1], vec![2, 3]];
        // Arm 0 has 3 sessions, arm 1 has 2 (all in its order 0): arm 1, order 1.
        let rows = [(0, 2), (1, 1), (2, 2), (3, 0)];
        assert_eq!(choose(&groups, &rows, 0), (1, 1));
        assert_eq!(
            choose(&groups, &rows, 5),
            (1, 1),
            "no tie: the draw is unused"
        );
        // A tie between the arms goes by the draw; within the arm the lowest index.
        assert_eq!(choose(&groups, &[], 0), (0, 0));
        assert_eq!(choose(&groups, &[], 1), (1, 0));
        assert_eq!(choose(&groups, &[], u64::MAX), (1, 0));
        // Rows of cells the groups do not name are ignored.
        assert_eq!(choose(&groups, &[(9, 100), (0, 1)], 0), (1, 0));
        assert_eq!(choose(&[], &[], 3), (0, 0));
    }

    #[test]
    fn a_chosen_arm_records_its_name_order_and_seed() {
        let new = NewSession {
            id: "s".into(),
            experiment: "e".into(),
            experiment_version: "v".into(),
            token_hash: crate::domain::SessionToken::generate().hash(),
            recruiter_id: None,
            unique_recruiter: false,
            params: Default::default(),
            seed: 1,
            assignment: Assignment::Conditions {
                arms: vec![arm("a", 2, true), arm("b", 1, false)],
                draw: 0,
            },
            at: time::OffsetDateTime::UNIX_EPOCH,
            preview: false,
            device: None,
        };
        let chosen = assigned(&new, Some((0, 1)));
        assert_eq!(
            (
                chosen.arm.as_deref(),
                chosen.condition,
                chosen.task_order,
                chosen.seed
            ),
            (Some("a"), Some(1), vec![1], 7)
        );
        let unbalanced = assigned(&new, Some((1, 0)));
        assert_eq!(
            (unbalanced.arm.as_deref(), unbalanced.condition),
            (Some("b"), None)
        );
    }
}
