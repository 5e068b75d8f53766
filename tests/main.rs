//! End-to-end tests.

// Helpers: a fresh database per test on either backend, a server on a free port, a participant
// client with one method per endpoint, and the published solutions.
mod support;

// The participant API over HTTP on both backends: the whole bundled study, retries, reloads,
// repeats, skips, refused submits, tokens, body limits.
mod participant_flow;

// Entry: a retried entry resumes, a second browser continues the session, refused arrivals
// (no recruiter ID, the device check, a repeat) get no session and are counted.
mod entry;

// A session's writes follow its state: events only between consent and the end, one answer on an
// ended session, simultaneous retries, token lifetime, input no database can store, limits.
mod session_states;

// The store test suite: every `Store` method on SQLite and Postgres.
mod store;

// The participant app in headless Chromium: the whole study clicked through, and a server cut-off
// mid-task (skipped with a notice when Chromium is not installed).
mod browser;

// The real `proglab serve` process: SIGKILL mid-session and restart lose nothing acknowledged;
// SIGTERM shuts down cleanly.
mod restart;

// Faults around the real `proglab serve`: SIGKILL and a Postgres restart under load, a full disk,
// connections cut mid-request and mid-response; the database holds every acknowledged write once.
mod faults;

// The deployment of docs/deploy.md, for real: Caddy in front of two instances on one Postgres
// under load with a rolling restart, migrations run once, metrics, the systemd unit, backups.
mod deploy;

// The API documents cannot drift: docs/api.md's curl exchanges run against a live server, the
// OpenAPI document lists exactly the served routes; and the HTML front door.
mod api_docs;

// The researcher side over HTTP: the route table behind sign-in, throttling, CSRF, expiry, the
// dashboard, the replay and downloads.
mod researcher;

// The researcher side at real sizes: session states from the clock and the researcher's actions,
// the table's filters, sort and pages, live updates across instances, errors as pages.
mod dashboard;

// Exports and imports: the published data round trip, shuffled orders, Psych-DS, pseudonyms and
// withdrawal.
mod export;

// The loading code of docs/researcher.md (docs/snippets/) run with pandas and R on every export:
// the answer "None" and awkward strings survive exactly; the page quotes the snippets verbatim.
mod loaders;

// Studies of the lab's own design: `proglab experiment check` names every problem of a broken
// study (file, line, level), and `proglab experiment new` writes a study that passes it.
mod experiment_cli;

// The researcher's replay of a participant: the program at skip time, every event kind with its
// label, the events outside the tasks and the questionnaire answers, escaped.
mod replay;

// Between-subject conditions: concurrent arrivals balanced over conditions and then orders, each
// participant shown and judged by their condition, the exports' `condition` column.
mod conditions;

// `proglab fit` on held-out data: participant folds and leave-one-task-out on two tasks of the
// development data, with the choice-set rule and paired differences in the table and the JSON.
mod fit_cli;

// `proglab library` on the development data: the library by compression as JSON and as a table,
// and its heat maps.
mod library_cli;
