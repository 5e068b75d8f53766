-- Arrivals: preview sessions, what the device check measured, resumed sessions' old tokens, and
-- arrivals that were refused (docs/api.md, "Entry"). Postgres dialect.

-- A session a signed-in researcher opened to try the study: marked, shown as such, and left out
-- of every export unless asked for.
ALTER TABLE sessions ADD COLUMN preview BOOLEAN NOT NULL DEFAULT FALSE;
-- What the front door's device check measured (window size, touch), as JSON; NULL when the client
-- reported nothing.
ALTER TABLE sessions ADD COLUMN device JSONB;

-- The hash of every token a resume replaced, so that the browser holding it is told that the
-- participant continued elsewhere instead of "session not found". Hashes only, as sessions.
CREATE TABLE superseded_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    superseded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX superseded_tokens_by_session ON superseded_tokens (session_id);

-- Arrivals that got no session (no recruiter ID, a device below the requirements, a second
-- browser without the matching submission), kept with their reason and time so that the
-- researcher side can count them. Parameters are kept verbatim, as session_params are.
CREATE TABLE refused_arrivals (
    id BIGSERIAL PRIMARY KEY,
    experiment TEXT NOT NULL,
    reason TEXT NOT NULL,
    recruiter_id TEXT,
    params JSONB NOT NULL,
    device JSONB,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX refused_arrivals_by_experiment ON refused_arrivals (experiment, at);
