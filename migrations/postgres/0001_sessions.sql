-- The participant-facing schema: sessions and everything recorded during them (DESIGN §3).
-- Never edit this file once applied; add a new numbered migration instead, in both dialects.

-- One row per entry into an experiment. The session token is stored only as its SHA-256 hash, so a
-- copy of the database does not hand out live sessions. No IP addresses are stored anywhere.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    -- Hash of the experiment definition the session ran under; a changed definition is refused.
    experiment_version TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- The recruiter's participant ID (for example PROLIFIC_PID), also among session_params.
    recruiter_id TEXT,
    -- Counterbalancing condition (balanced order only) and the session's random seed.
    condition BIGINT,
    seed BIGINT NOT NULL,
    -- JSON list of task indices in the order this participant sees them.
    task_order TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'declined', 'completed')),
    -- Index into the session's timeline; the server's only record of "where the participant is".
    step BIGINT NOT NULL DEFAULT 0,
    consent BOOLEAN,
    consent_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    completion_code TEXT
);
CREATE INDEX sessions_by_experiment ON sessions (experiment, created_at);

-- Every entry URL parameter, verbatim (Prolific, MTurk, SONA or any other).
CREATE TABLE session_params (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (session_id, name)
);

-- One row per recruiter ID that took part in an experiment that refuses repeats; the primary key
-- is what refuses a second entry, even when two arrive at once.
CREATE TABLE participations (
    experiment TEXT NOT NULL,
    recruiter_id TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    PRIMARY KEY (experiment, recruiter_id)
);

-- How many sessions each counterbalancing condition got; locked while a new session is assigned
-- so that concurrent arrivals stay balanced across server instances.
CREATE TABLE assignment_counters (
    experiment TEXT NOT NULL,
    condition BIGINT NOT NULL,
    assigned BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, condition)
);

-- One row per task served (tutorial level, practice or main task). started_at is when the server
-- first served it: the skip delay is measured from there.
CREATE TABLE trials (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    step BIGINT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('tutorial', 'practice', 'tasks')),
    position BIGINT NOT NULL,
    task_index BIGINT NOT NULL,
    label TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    started_ms BIGINT NOT NULL,
    ended_at TIMESTAMPTZ,
    ended_ms BIGINT,
    outcome TEXT CHECK (outcome IN ('submitted', 'skipped')),
    program TEXT,
    runs BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, step)
);

-- Every program the server executed for a participant; (session, seq) makes retries no-ops.
CREATE TABLE runs (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    seq BIGINT NOT NULL,
    step BIGINT NOT NULL,
    program TEXT NOT NULL,
    mode TEXT NOT NULL,
    solved BOOLEAN NOT NULL,
    steps BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    session_ms BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq),
    FOREIGN KEY (session_id, step) REFERENCES trials (session_id, step)
);

-- Client events (edits, clicks, ...), numbered by the client; stored once per (session, seq).
CREATE TABLE events (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    step BIGINT,
    client_ms BIGINT,
    data JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    session_ms BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- Questionnaire answers, verbatim.
CREATE TABLE answers (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    item TEXT NOT NULL,
    answer TEXT NOT NULL,
    answered_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, item)
);
