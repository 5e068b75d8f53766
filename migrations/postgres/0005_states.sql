-- Session states and what a researcher can do about a participant (docs/researcher.md, "Session
-- states"), and between-subject conditions (docs/study.md). Postgres dialect.

-- Kept, shown and paid, but left out of every export of the data unless asked for.
ALTER TABLE sessions ADD COLUMN excluded BOOLEAN NOT NULL DEFAULT FALSE;
-- A researcher's reset: the time limit counts from here instead of the start, so an abandoned
-- session can go on. Nothing is deleted by a reset.
ALTER TABLE sessions ADD COLUMN reset_at TIMESTAMPTZ;
-- The between-subject condition the session was assigned (its name in the experiment file);
-- NULL when the experiment defines none.
ALTER TABLE sessions ADD COLUMN arm TEXT;

-- A researcher's notes on a participant, oldest first; never edited, only added.
CREATE TABLE participant_notes (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    author TEXT NOT NULL,
    note TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX participant_notes_by_session ON participant_notes (session_id);

-- What is left of a withdrawn session: that it existed, and when. No recruiter ID, no data, so that
-- the dashboard can count withdrawals without keeping anything about the person.
CREATE TABLE withdrawals (
    session_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    withdrawn_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX withdrawals_by_experiment ON withdrawals (experiment);
