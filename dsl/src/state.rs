//! The robot's state and the effect of one primitive action (docs/semantics.md §1.3-1.5).

use serde::{Deserialize, Serialize};

use crate::map::Task;
use crate::program::Action;

/// Heading, numbered as in the level files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// 0: (0, -1).
    SE,
    /// 1: (+1, 0).
    NE,
    /// 2: (0, +1).
    NW,
    /// 3: (-1, 0).
    SW,
}

impl Direction {
    pub const ALL: [Direction; 4] = [Direction::SE, Direction::NE, Direction::NW, Direction::SW];

    pub fn from_index(index: u8) -> Option<Direction> {
        Direction::ALL.get(index as usize).copied()
    }

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn delta(self) -> (i64, i64) {
        match self {
            Direction::SE => (0, -1),
            Direction::NE => (1, 0),
            Direction::NW => (0, 1),
            Direction::SW => (-1, 0),
        }
    }

    /// Counter-clockwise turn.
    pub fn left(self) -> Direction {
        Direction::ALL[(self.index() as usize + 1) % 4]
    }

    /// Clockwise turn.
    pub fn right(self) -> Direction {
        Direction::ALL[(self.index() as usize + 3) % 4]
    }
}

/// Position, heading and the set of lit lights (bit i = light i).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct State {
    pub x: u8,
    pub y: u8,
    pub direction: Direction,
    pub lit: u64,
}

/// What Light does on a light tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LightMode {
    /// Analysis semantics: an unlit light switches on, anything else is a no-op.
    #[default]
    Idempotent,
    /// The game's semantics: Light toggles a light tile.
    Toggle,
}

impl State {
    /// The state after `action`, or `None` when the action is a no-op (a blocked move, or Light
    /// that changes nothing).
    pub fn apply(&self, task: &Task, action: Action, mode: LightMode) -> Option<State> {
        match action {
            Action::Left => Some(State {
                direction: self.direction.left(),
                ..*self
            }),
            Action::Right => Some(State {
                direction: self.direction.right(),
                ..*self
            }),
            Action::Walk | Action::Jump => {
                let (dx, dy) = self.direction.delta();
                let (nx, ny) = (self.x as i64 + dx, self.y as i64 + dy);
                if !task.in_bounds(nx, ny) {
                    return None;
                }
                let here = task.height_at(self.x as usize, self.y as usize);
                let there = task.height_at(nx as usize, ny as usize);
                let allowed = match action {
                    Action::Walk => there == here,
                    // `checked_add`: a level may have cells of height 255 (docs/semantics.md
                    // §1.1), and nothing is one higher than those.
                    _ => here.checked_add(1) == Some(there) || there < here,
                };
                allowed.then_some(State {
                    x: nx as u8,
                    y: ny as u8,
                    ..*self
                })
            }
            Action::Light => {
                let light = task.light_at(self.x as usize, self.y as usize)?;
                let bit = 1u64 << light;
                match mode {
                    LightMode::Idempotent if self.lit & bit != 0 => None,
                    LightMode::Idempotent => Some(State {
                        lit: self.lit | bit,
                        ..*self
                    }),
                    LightMode::Toggle => Some(State {
                        lit: self.lit ^ bit,
                        ..*self
                    }),
                }
            }
        }
    }
}
