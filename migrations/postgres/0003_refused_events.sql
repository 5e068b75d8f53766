-- Client events the server refused one by one (a value the database cannot hold, such as U+0000
-- in a string, or an event over the size limit), so that completion's `events_through` check
-- counts them as accounted for and a participant is never held back by an event that can never
-- be stored. Only the number and the reason are kept, never the refused content.
CREATE TABLE refused_events (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    seq BIGINT NOT NULL,
    reason TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, seq)
);
