//! Task maps in the game's JSON level format (docs/semantics.md §1.1-1.2).
//!
//! A level file is a JSON list of levels. Heights may be stored as JSON strings, and the file's outer
//! index is the y axis reversed: `map[i][j]` is the cell at `x = j, y = H - 1 - i`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::MapError;
use crate::state::{Direction, State};

/// Most lights a map may have: the lit set is a 64-bit mask.
pub const MAX_LIGHTS: usize = 64;

/// One grid task: heights, light tiles, and the robot's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Where the level came from, for messages (for example `maps.json[8]`).
    pub source: String,
    pub width: usize,
    pub height: usize,
    /// Heights indexed by `y * width + x` in game coordinates.
    pub heights: Vec<u8>,
    /// Light number of each cell (`y * width + x`), if it is a light tile.
    pub lights: Vec<Option<u8>>,
    pub n_lights: usize,
    pub start_x: usize,
    pub start_y: usize,
    pub start_direction: Direction,
}

impl Task {
    /// Parses level `index` of a level file.
    pub fn from_level_file(json: &str, file_name: &str, index: usize) -> Result<Task, MapError> {
        let levels = parse_level_file(json, file_name)?;
        let count = levels.len();
        levels
            .into_iter()
            .nth(index)
            .ok_or_else(|| MapError::NoSuchLevel {
                file: file_name.to_owned(),
                index,
                count,
            })
    }

    pub fn in_bounds(&self, x: i64, y: i64) -> bool {
        x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height
    }

    pub fn cell(&self, x: usize, y: usize) -> usize {
        y * self.width + x
    }

    pub fn height_at(&self, x: usize, y: usize) -> u8 {
        self.heights[self.cell(x, y)]
    }

    pub fn light_at(&self, x: usize, y: usize) -> Option<u8> {
        self.lights[self.cell(x, y)]
    }

    /// The lit-set mask with every light on.
    pub fn all_lit(&self) -> u64 {
        if self.n_lights == MAX_LIGHTS {
            u64::MAX
        } else {
            (1u64 << self.n_lights) - 1
        }
    }

    pub fn start_state(&self) -> State {
        State {
            x: self.start_x as u8,
            y: self.start_y as u8,
            direction: self.start_direction,
            lit: 0,
        }
    }

    pub fn is_terminal(&self, state: &State) -> bool {
        state.lit == self.all_lit()
    }

    /// Rows from the top (y = H-1) down, each cell as height plus `*` (light), `>` (start) or `.`,
    /// the notation of docs/semantics.md §2.4.
    pub fn to_ascii(&self) -> String {
        let mut out = String::new();
        for y in (0..self.height).rev() {
            out.push_str(&format!("y{y}"));
            for x in 0..self.width {
                let marker = if self.light_at(x, y).is_some() {
                    '*'
                } else if (x, y) == (self.start_x, self.start_y) {
                    '>'
                } else {
                    '.'
                };
                out.push_str(&format!(" {}{}", self.height_at(x, y), marker));
            }
            out.push('\n');
        }
        out
    }
}

/// Parses every level of a level file.
pub fn parse_level_file(json: &str, file_name: &str) -> Result<Vec<Task>, MapError> {
    let value: Value = serde_json::from_str(json).map_err(|e| MapError::Json {
        file: file_name.to_owned(),
        message: e.to_string(),
    })?;
    let levels = value.as_array().ok_or_else(|| MapError::Level {
        level: file_name.to_owned(),
        message: "a level file must be a JSON list of levels".to_owned(),
    })?;
    levels
        .iter()
        .enumerate()
        .map(|(index, level)| parse_level(level, &format!("{file_name}[{index}]")))
        .collect()
}

fn parse_level(level: &Value, name: &str) -> Result<Task, MapError> {
    let err = |message: String| MapError::Level {
        level: name.to_owned(),
        message,
    };
    let cell_err = |x: usize, y: usize, message: String| MapError::Cell {
        level: name.to_owned(),
        x,
        y,
        message,
    };
    let object = level
        .as_object()
        .ok_or_else(|| err("a level must be a JSON object".into()))?;
    let field = |key: &str| {
        object
            .get(key)
            .ok_or_else(|| err(format!("missing field `{key}`")))
    };

    let rows = field("map")?
        .as_array()
        .ok_or_else(|| err("`map` must be a list of rows".into()))?;
    let height = rows.len();
    if height == 0 {
        return Err(err("`map` has no rows".into()));
    }
    let width = rows[0].as_array().map_or(0, Vec::len);
    if width == 0 {
        return Err(err("`map` row 0 has no cells".into()));
    }
    if width > u8::MAX as usize || height > u8::MAX as usize {
        return Err(err(format!(
            "a {width}x{height} grid is larger than 255x255"
        )));
    }
    let mut heights = vec![0u8; width * height];
    let mut lights = vec![None; width * height];
    let mut n_lights = 0usize;
    for (i, row) in rows.iter().enumerate() {
        let y = height - 1 - i;
        let cells = row
            .as_array()
            .ok_or_else(|| err(format!("`map` row {i} is not a list")))?;
        if cells.len() != width {
            return Err(err(format!(
                "ragged grid: row {i} (y = {y}) has {} cells, row 0 has {width}",
                cells.len()
            )));
        }
        for (x, cell) in cells.iter().enumerate() {
            let h = cell
                .get("h")
                .ok_or_else(|| cell_err(x, y, "missing height `h`".into()))?;
            let h = match h {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            }
            .filter(|h| (1..=u8::MAX as u64).contains(h))
            .ok_or_else(|| cell_err(x, y, format!("height {h} is not an integer from 1 to 255")))?;
            heights[y * width + x] = h as u8;
            match cell.get("t").and_then(Value::as_str) {
                Some("b") => {}
                Some("l") => {
                    if n_lights == MAX_LIGHTS {
                        return Err(cell_err(x, y, format!("more than {MAX_LIGHTS} lights")));
                    }
                    lights[y * width + x] = Some(n_lights as u8);
                    n_lights += 1;
                }
                Some(other) => {
                    return Err(cell_err(
                        x,
                        y,
                        format!("unknown tile type `{other}` (expected `b` or `l`)"),
                    ));
                }
                None => return Err(cell_err(x, y, "missing tile type `t`".into())),
            }
        }
    }
    if n_lights == 0 {
        return Err(err(
            "the level has no light tiles, so no program can solve it".into(),
        ));
    }

    let direction = field("direction")?
        .as_u64()
        .and_then(|d| u8::try_from(d).ok())
        .and_then(Direction::from_index)
        .ok_or_else(|| err("`direction` must be an integer from 0 to 3".into()))?;
    let position = field("position")?;
    let coordinate = |key: &str| {
        position
            .get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| err(format!("`position.{key}` must be an integer")))
    };
    let (start_x, start_y) = (coordinate("x")?, coordinate("y")?);
    if start_x < 0 || start_y < 0 || start_x as usize >= width || start_y as usize >= height {
        return Err(err(format!(
            "start position ({start_x}, {start_y}) is off the {width}x{height} grid"
        )));
    }
    Ok(Task {
        source: name.to_owned(),
        width,
        height,
        heights,
        lights,
        n_lights,
        start_x: start_x as usize,
        start_y: start_y as usize,
        start_direction: direction,
    })
}
