-- The researcher side (issue 6): accounts, sign-in sessions and throttling, per-experiment
-- pseudonym keys, imported participants and the audit log.
-- Never edit this file once applied; add a new numbered migration instead, in both dialects.
-- SQLite dialect: timestamps are RFC 3339 text, integers are 64-bit INTEGER.

-- Researcher accounts. Only an argon2 PHC string is stored, never the password.
CREATE TABLE researchers (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Signed-in researchers. Kept in the database (not in memory) so several server instances share
-- them; the token is stored only as its SHA-256 hash. Each session has its own CSRF token, which
-- every form and state-changing request must echo.
CREATE TABLE researcher_sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES researchers (username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX researcher_sessions_by_expiry ON researcher_sessions (expires_at);

-- Failed sign-ins, one row each, so throttling holds across restarts and server instances.
-- Keyed by the name typed (which may not be an account), never by IP address.
CREATE TABLE sign_in_failures (
    username TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE INDEX sign_in_failures_by_name ON sign_in_failures (username, failed_at);

-- The secret key of each experiment's pseudonyms (HMAC-SHA256 of the recruiter ID). Created on
-- first use; without it the pseudonyms in an export cannot be linked back to recruiter IDs.
CREATE TABLE experiment_keys (
    experiment TEXT PRIMARY KEY,
    pseudonym_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Sessions created by `proglab import` from a published programs.csv: the file's participant
-- index, so an export can say where each participant came from.
CREATE TABLE imported_sessions (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id),
    source TEXT NOT NULL,
    participant_idx INTEGER NOT NULL
);

-- Every export, sign-in (and failed sign-in), withdrawal and account change.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    experiment TEXT,
    detail TEXT NOT NULL
);
