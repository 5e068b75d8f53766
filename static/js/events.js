// The event log: every edit, run and click the participant makes becomes a numbered event
// (`seq`, one numbering per session). Events wait in localStorage until the server acknowledges
// them, so a reload, a closed tab or a server that is down loses nothing: whatever is pending is
// sent again, from this page or the next one, until the server has stored it. The server stores
// each (session, seq) once, so sending an event twice is harmless.
//
// The server stores events only while the participant takes part (docs/api.md, Events): on the
// consent page events wait here, held, and go out once the participant agrees; declining
// discards them, and an ended session records none. An event the server refuses on its own
// (`refused` in its answer) can never be stored and is dropped from the queue.

import { ApiError, NetworkError, backoff, connection, request } from './api.js';

const BATCH = 500;
const PERIOD_MS = 5000;

/** localStorage that quietly falls back to memory (storage disabled, quota exceeded). */
export const storage = {
  memory: new Map(),
  get(key) {
    try {
      const value = window.localStorage.getItem(key);
      if (value !== null) return value;
    } catch {
      // Storage disabled: use memory only.
    }
    return this.memory.has(key) ? this.memory.get(key) : null;
  },
  set(key, value) {
    this.memory.set(key, value);
    try {
      window.localStorage.setItem(key, value);
    } catch {
      // Kept in memory; it is still sent while the page stays open.
    }
  },
  remove(key) {
    this.memory.delete(key);
    try {
      window.localStorage.removeItem(key);
    } catch {
      // Nothing to do.
    }
  },
  getJson(key, fallback) {
    const text = this.get(key);
    if (text === null) return fallback;
    try {
      return JSON.parse(text);
    } catch {
      return fallback;
    }
  },
  setJson(key, value) {
    this.set(key, JSON.stringify(value));
  },
  /**
   * Takes the next number of a counter kept under `key`, never below `floor` + 1. Event and run
   * numbers must not repeat: the stored value covers other tabs of the same session, and `floor`
   * (what the server already holds) covers a browser whose storage was cleared.
   */
  nextNumber(key, floor = 0) {
    const stored = Number(this.get(key)) || 0;
    const next = Math.max(stored, floor) + 1;
    this.set(key, String(next));
    return next;
  },
};

/** Where a session's keys in `storage` start, so that two sessions in one browser never mix. */
export function sessionPrefix(sessionId) {
  return `proglab:${sessionId}:`;
}

export class EventLog {
  /**
   * @param {object} pageState the page's `data-state`: session, last_event_seq, session_ms
   */
  constructor(pageState) {
    this.sessionId = pageState.session.session_id;
    this.step = pageState.session.progress.step;
    this.prefix = sessionPrefix(this.sessionId);
    // The session clock: the server's milliseconds since the session started, carried on by
    // this page's monotonic clock, so `t` is right even while the server is unreachable.
    this.sessionMsAtLoad = pageState.session_ms;
    this.loadedAt = performance.now();
    const storedSeq = Number(storage.get(this.prefix + 'seq')) || 0;
    this.lastSeq = Math.max(storedSeq, pageState.last_event_seq || 0);
    storage.set(this.prefix + 'seq', String(this.lastSeq));
    this.inFlight = null;
    this.attempt = 0;
    this.timer = null;
    this.rejected = 0;
    // Held until consent is given; nothing is recorded once the session has ended.
    this.held = pageState.session.current.kind === 'consent';
    this.closed = pageState.session.status !== 'active';
    setInterval(() => {
      if (this.pending().length > 0) this.flush();
    }, PERIOD_MS);
    window.addEventListener('online', () => this.flush());
    // A last try when the page goes away; what does not arrive stays stored for the next page.
    window.addEventListener('pagehide', () => this.flushOnExit());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.flushOnExit();
    });
  }

  /** Milliseconds since the session started. */
  now() {
    return Math.round(this.sessionMsAtLoad + performance.now() - this.loadedAt);
  }

  pending() {
    return storage.getJson(this.prefix + 'events', []);
  }

  /** Records an event and schedules sending it; returns its number. */
  record(type, data = {}) {
    if (this.closed) return null;
    // The stored counter is re-read: another tab of the same session may have used numbers.
    const seq = storage.nextNumber(this.prefix + 'seq', this.lastSeq);
    this.lastSeq = seq;
    const event = { seq, type, step: this.step, t: this.now(), data };
    const queue = this.pending();
    queue.push(event);
    storage.setJson(this.prefix + 'events', queue);
    this.schedule(50);
    return seq;
  }

  schedule(ms) {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, ms);
  }

  /**
   * Sends pending events until none is left or the server cannot be reached. Resolves with true
   * when everything recorded so far is acknowledged.
   */
  flush() {
    if (this.inFlight) return this.inFlight;
    this.inFlight = this.sendAll().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** Consent was given: what waited may now be stored. */
  release() {
    this.held = false;
  }

  /** Consent was declined: nothing recorded may be stored, and nothing more is recorded. */
  discard() {
    storage.setJson(this.prefix + 'events', []);
    this.closed = true;
  }

  async sendAll() {
    for (;;) {
      if (this.held) return false;
      const queue = this.pending();
      if (queue.length === 0) {
        this.attempt = 0;
        return true;
      }
      const batch = queue.slice(0, BATCH);
      try {
        const answer = await request('POST', '/session/events', { events: batch });
        this.acknowledge(answered(answer));
        this.attempt = 0;
      } catch (error) {
        if (error instanceof NetworkError) {
          connection.down();
          this.schedule(backoff(this.attempt));
          this.attempt += 1;
          return false;
        }
        if (error instanceof ApiError && error.status === 401) {
          // The session is gone on the server, or went on in another browser (the page already
          // says so): nothing sent now can ever be stored.
          if (error.code !== 'session_continued_elsewhere') {
            showPageError('Your session could not be found on the server. Please reopen the study link.');
          }
          return false;
        }
        if (error instanceof ApiError && error.code === 'consent_required') {
          // Sent before consent (another tab): keep them until the participant agrees.
          this.held = true;
          return false;
        }
        if (error instanceof ApiError && error.code === 'session_closed') {
          // The session has ended: nothing can be stored any more.
          this.closed = true;
          this.acknowledge(new Set(queue.map((event) => event.seq)));
          return true;
        }
        // Refused as malformed: it can never be stored, and it must not hold back the rest.
        console.error('events refused by the server', error, batch);
        this.rejected += batch.length;
        this.acknowledge(new Set(batch.map((event) => event.seq)));
      }
    }
  }

  acknowledge(seqs) {
    const left = this.pending().filter((event) => !seqs.has(event.seq));
    storage.setJson(this.prefix + 'events', left);
  }

  /** Waits at most `ms` for everything to be acknowledged. */
  async settle(ms = 2000) {
    const timeout = new Promise((resolve) => setTimeout(() => resolve(false), ms));
    return Promise.race([this.flush(), timeout]);
  }

  flushOnExit() {
    const queue = this.pending();
    if (queue.length === 0 || this.held) return;
    request('POST', '/session/events', { events: queue.slice(0, BATCH) }, { keepalive: true })
      .then((answer) => this.acknowledge(answered(answer)))
      .catch(() => {});
  }
}

/** The numbers an events answer settles: stored, and refused on their own (never storable). */
function answered(answer) {
  const seqs = new Set(answer.stored);
  for (const refused of answer.refused || []) {
    console.error('event refused by the server', refused);
    seqs.add(refused.seq);
  }
  return seqs;
}

/**
 * Goes on to the next step once the server has accepted an answer: the study address always
 * shows the session's current step. Pending events get up to 2 s to arrive first; whatever is
 * still unsent is sent by the next page.
 */
export async function loadNextStep(pageState, log) {
  await log.settle(2000);
  window.location.replace(pageState.study_url);
}

/** Shows a message that needs the participant's attention (not for passing network trouble). */
export function showPageError(message) {
  const element = document.getElementById('page-error');
  if (!element) return;
  element.textContent = message;
  element.hidden = !message;
}
