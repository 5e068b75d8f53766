//! A session's state as the researcher sees it, and the one rule the participant side enforces
//! from it: an abandoned session accepts nothing until a researcher resets it.
//!
//! The stored status says only active, declined or completed; idle and abandoned depend on the
//! clock (the experiment's `[timing]`), so they are derived here, on every read, from what is
//! stored, and never written. Withdrawn sessions have no session row left (their data is deleted);
//! they are counted from the withdrawal records beside the others. Excluded and preview are flags
//! on top of any state (docs/researcher.md, "Session states").

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::SessionStatus;
use crate::experiment::Timing;
use crate::store::Session;
use crate::study::StudyError;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Taking part, with something recorded within the idle threshold.
    Active,
    /// Taking part, but nothing recorded for the experiment's `idle_after_seconds`.
    Idle,
    /// Past the experiment's time limit without finishing; closed until reset.
    Abandoned,
    Completed,
    Declined,
    /// Withdrawn: the data is deleted, only the record that it existed remains.
    Withdrawn,
}

impl Progress {
    pub const ALL: [Progress; 6] = [
        Progress::Active,
        Progress::Idle,
        Progress::Abandoned,
        Progress::Completed,
        Progress::Declined,
        Progress::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Progress::Active => "active",
            Progress::Idle => "idle",
            Progress::Abandoned => "abandoned",
            Progress::Completed => "completed",
            Progress::Declined => "declined",
            Progress::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<Progress> {
        Progress::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// When the session's time limit runs from: its start, or the researcher's latest reset.
pub fn clock_start(session: &Session) -> OffsetDateTime {
    session
        .reset_at
        .map_or(session.created_at, |reset| reset.max(session.created_at))
}

/// Whether an unfinished session is past the experiment's time limit.
pub fn is_abandoned(session: &Session, timing: &Timing, now: OffsetDateTime) -> bool {
    session.status == SessionStatus::Active
        && timing
            .time_limit
            .is_some_and(|limit| now - clock_start(session) > limit)
}

/// The session's state at `now`, given the time of the last thing recorded for it (a run, an
/// event or a change of step; the session's start or reset when there is nothing later).
pub fn progress(
    session: &Session,
    last_activity: OffsetDateTime,
    timing: &Timing,
    now: OffsetDateTime,
) -> Progress {
    match session.status {
        SessionStatus::Completed => Progress::Completed,
        SessionStatus::Declined => Progress::Declined,
        SessionStatus::Active if is_abandoned(session, timing, now) => Progress::Abandoned,
        SessionStatus::Active => {
            let last = last_activity.max(clock_start(session));
            if now - last > timing.idle_after {
                Progress::Idle
            } else {
                Progress::Active
            }
        }
    }
}

/// The participant side's rule: an abandoned session is refused every request (reads included,
/// so that the page can say why) until a researcher resets it.
pub fn require_not_abandoned(
    session: &Session,
    timing: &Timing,
    now: OffsetDateTime,
) -> Result<(), StudyError> {
    if is_abandoned(session, timing, now) {
        return Err(StudyError::wrong_state(
            "session_abandoned",
            "the time allowed for this study has passed, so this session is closed; if you think \
             this is a mistake, please contact the researcher",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    fn session(status: SessionStatus, reset_at: Option<OffsetDateTime>) -> Session {
        Session {
            id: "s".into(),
            experiment: "e".into(),
            experiment_version: "v".into(),
            recruiter_id: None,
            condition: None,
            seed: 0,
            task_order: vec![],
            status,
            step: 0,
            consent: None,
            consent_at: None,
            created_at: datetime!(2026-01-01 10:00 UTC),
            updated_at: datetime!(2026-01-01 10:00 UTC),
            completed_at: None,
            completion_code: None,
            preview: false,
            excluded: false,
            reset_at,
            arm: None,
        }
    }

    const TIMING: Timing = Timing {
        idle_after: Duration::from_secs(60),
        time_limit: Some(Duration::from_secs(600)),
    };

    #[test]
    fn active_turns_idle_then_abandoned_and_a_reset_restarts_the_clock() {
        let s = session(SessionStatus::Active, None);
        let last = datetime!(2026-01-01 10:00:30 UTC);
        let at = |t| progress(&s, last, &TIMING, t);
        assert_eq!(at(datetime!(2026-01-01 10:01:00 UTC)), Progress::Active);
        assert_eq!(at(datetime!(2026-01-01 10:01:31 UTC)), Progress::Idle);
        assert_eq!(at(datetime!(2026-01-01 10:10:01 UTC)), Progress::Abandoned);
        assert!(require_not_abandoned(&s, &TIMING, datetime!(2026-01-01 10:10:01 UTC)).is_err());

        let reset = session(SessionStatus::Active, Some(datetime!(2026-01-01 11:00 UTC)));
        let now = datetime!(2026-01-01 11:00:10 UTC);
        assert_eq!(progress(&reset, last, &TIMING, now), Progress::Active);
        assert!(require_not_abandoned(&reset, &TIMING, now).is_ok());
    }

    #[test]
    fn ended_sessions_keep_their_state_whatever_the_clock() {
        let late = datetime!(2027-01-01 0:00 UTC);
        for (status, expected) in [
            (SessionStatus::Completed, Progress::Completed),
            (SessionStatus::Declined, Progress::Declined),
        ] {
            let s = session(status, None);
            assert_eq!(progress(&s, s.created_at, &TIMING, late), expected);
            assert!(require_not_abandoned(&s, &TIMING, late).is_ok());
        }
    }

    #[test]
    fn without_a_time_limit_nothing_is_abandoned() {
        let s = session(SessionStatus::Active, None);
        let timing = Timing {
            time_limit: None,
            ..TIMING
        };
        let late = datetime!(2027-01-01 0:00 UTC);
        assert_eq!(progress(&s, s.created_at, &timing, late), Progress::Idle);
    }

    #[test]
    fn every_state_parses_back() {
        for p in Progress::ALL {
            assert_eq!(Progress::parse(p.as_str()), Some(p));
        }
    }
}
