//! The participant-facing rules of an experiment file: how the board is drawn, who may enter and
//! when an arrival continues an earlier session, and the device check.

use super::Resolver;
use crate::experiment::definition::{DeviceDef, EntryDef};
use crate::experiment::model::{BoardKind, DeviceRules, EntryRules};

/// Prolific's per-submission parameter: a second arrival with the same participant and the same
/// submission is the same person continuing, not a repeat.
const DEFAULT_RESUME_PARAMS: &[&str] = &["SESSION_ID"];

/// Smallest window the device check accepts as a requirement: below it no task page fits.
const SMALLEST_WINDOW: u32 = 200;

impl Resolver<'_> {
    pub(super) fn board(&mut self, board: Option<&str>) -> Option<BoardKind> {
        match board {
            None | Some("isometric") => Some(BoardKind::Isometric),
            Some("flat") => Some(BoardKind::Flat),
            Some(other) => {
                self.problem(
                    "board",
                    format!("`{other}` is not a board view: use `isometric` or `flat`"),
                );
                None
            }
        }
    }

    pub(super) fn entry(&mut self, def: &EntryDef, named_recruiter_params: bool) -> EntryRules {
        let resume_params = def.resume_params.clone().unwrap_or_else(|| {
            DEFAULT_RESUME_PARAMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
        for (i, name) in resume_params.iter().enumerate() {
            if name.trim().is_empty() {
                self.problem(format!("entry.resume_params[{i}]"), "must not be empty");
            }
        }
        EntryRules {
            require_recruiter_id: def.require_recruiter_id.unwrap_or(named_recruiter_params),
            resume: def.resume.unwrap_or(true),
            resume_params,
        }
    }

    pub(super) fn device(&mut self, def: &DeviceDef) -> DeviceRules {
        for (key, value) in [("min_width", def.min_width), ("min_height", def.min_height)] {
            if let Some(pixels) = value
                && !(SMALLEST_WINDOW..=10_000).contains(&pixels)
            {
                self.problem(
                    format!("device.{key}"),
                    format!("{pixels} px is not between {SMALLEST_WINDOW} and 10000"),
                );
            }
        }
        DeviceRules {
            min_width: def.min_width,
            min_height: def.min_height,
            touch: def.touch.unwrap_or(true),
        }
    }
}
