// The participant API client: JSON requests, the difference between "the server said no" and
// "the server could not be reached", retries with backoff for the latter, and the quiet
// "reconnecting" indicator in the page header.

/** The server answered and refused: retrying the same request will not help. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The server could not be reached, or answered with a passing failure (5xx, timeout). */
export class NetworkError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NetworkError';
  }
}

/** The caller gave up waiting (Stop pressed while a request was being retried). */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

let apiBase = '/api/v1';

export function setApiBase(base) {
  apiBase = base;
}

// Statuses worth retrying: the request may succeed later without any change.
const TRANSIENT = new Set([408, 429, 500, 502, 503, 504]);

/**
 * One request to the participant API; resolves with the parsed JSON body.
 * Throws NetworkError (retry later) or ApiError (refused).
 */
export async function request(method, path, body, { keepalive = false, signal } = {}) {
  let response;
  try {
    response = await fetch(apiBase + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      keepalive,
      signal,
    });
  } catch (error) {
    if (signal && signal.aborted) throw new Cancelled();
    throw new NetworkError(String(error && error.message ? error.message : error));
  }
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (response.ok) {
    connection.up();
    return json;
  }
  if (TRANSIENT.has(response.status)) {
    throw new NetworkError(`server answered ${response.status}`);
  }
  connection.up();
  const detail = json && json.error ? json.error : {};
  if (response.status === 401 && detail.code === 'session_continued_elsewhere') showMoved();
  if (response.status === 409 && detail.code === 'session_abandoned') showAbandoned(detail.message || '');
  throw new ApiError(response.status, detail.code || 'error', detail.message || `error ${response.status}`);
}

/**
 * The participant continued in another browser, which replaced this one's token: everything this
 * page would send is refused from now on, so it says so in place of the study.
 */
export function showMoved() {
  showInstead('moved', 'You continued in another window',
    'You opened this study again in another window or browser, and your session goes on there. Please use that window; you can close this one.');
}

/** The session passed the experiment's time limit: the server refuses it until a researcher resets it. */
export function showAbandoned(message) {
  showInstead('abandoned', 'The time for this study has run out', message);
}

/** Replaces the study with a card that says why it cannot go on (once per page). */
function showInstead(reason, title, message) {
  const app = document.getElementById('app');
  if (!app || app.dataset.ended) return;
  app.dataset.ended = reason;
  if (reason === 'moved') app.dataset.moved = 'true';
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  if (document.fullscreenElement && document.exitFullscreen) document.exitFullscreen().catch(() => {});
  const card = document.createElement('article');
  card.className = `card prose end-page ${reason}`;
  card.setAttribute('role', 'alert');
  const heading = document.createElement('h1');
  heading.textContent = title;
  const text = document.createElement('p');
  text.textContent = message;
  card.append(heading, text);
  // Inline display, not `hidden`: the page's layout CSS would override the attribute.
  for (const child of [...app.children]) {
    if (!child.classList.contains('app-header')) child.style.display = 'none';
  }
  app.appendChild(card);
}

/** Waits `ms`, or rejects with Cancelled when `signal` aborts first. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(new Cancelled());
      return;
    }
    const timer = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Cancelled());
      }, { once: true });
    }
  });
}

/** Backoff between retries: quick at first (a blip), then every few seconds. */
export function backoff(attempt) {
  return Math.min(500 * 2 ** attempt, 4000);
}

/**
 * Repeats a request until the server answers: NetworkError marks the connection down and
 * retries with backoff; an ApiError is passed to the caller. Requests given here must be safe to
 * repeat (the API makes runs, submits, skips and events idempotent).
 */
export async function retrying(method, path, body, { signal } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await request(method, path, body, { signal });
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      connection.down();
      await sleep(backoff(attempt), signal);
    }
  }
}

/** The connection indicator: hidden while requests succeed, "Reconnecting…" after a failure. */
export const connection = {
  isDown: false,
  listeners: [],
  down() {
    if (this.isDown) return;
    this.isDown = true;
    this.render();
  },
  up() {
    if (!this.isDown) return;
    this.isDown = false;
    this.render();
  },
  onChange(listener) {
    this.listeners.push(listener);
  },
  render() {
    const element = document.getElementById('connection');
    if (element) {
      element.hidden = !this.isDown;
      element.dataset.state = this.isDown ? 'reconnecting' : 'online';
    }
    for (const listener of this.listeners) listener(this.isDown);
  },
};
