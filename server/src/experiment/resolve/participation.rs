//! The participant-facing rules of an experiment file: how the board is drawn, who may enter and
//! when an arrival continues an earlier session, the device check, and when a session is idle or
//! abandoned.

use std::time::Duration;

use super::Resolver;
use crate::experiment::definition::{DeviceDef, EntryDef, TimingDef};
use crate::experiment::model::{BoardKind, DeviceRules, EntryRules, Timing};

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

    pub(super) fn timing(&mut self, def: &TimingDef) -> Timing {
        let defaults = Timing::default();
        let idle_after = def
            .idle_after_seconds
            .map_or(defaults.idle_after, Duration::from_secs);
        if idle_after.is_zero() {
            self.problem("timing.idle_after_seconds", "must be at least 1 second");
        }
        let time_limit = def.time_limit_seconds.map(Duration::from_secs);
        if let Some(limit) = time_limit {
            if limit.is_zero() {
                self.problem("timing.time_limit_seconds", "must be at least 1 second");
            } else if limit <= idle_after {
                self.problem(
                    "timing.time_limit_seconds",
                    format!(
                        "{} s is not longer than idle_after_seconds ({} s): a session would be \
                         abandoned before it could be idle",
                        limit.as_secs(),
                        idle_after.as_secs()
                    ),
                );
            }
        }
        Timing {
            idle_after,
            time_limit,
        }
    }
}
