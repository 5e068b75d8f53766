// The experiment dashboard's live participant table. The page is rendered by the server with the
// table's filters, sort and page; this keeps that view current. The server pushes a `change`
// event (server-sent events) whenever the experiment's data changes in the database, whichever
// server instance recorded it; the page then fetches its own view of the table again. Where the
// stream cannot be held (a proxy that buffers, a dropped connection), it polls instead.

const POLL_MS = 5000;

const table = document.getElementById('participants');
const status = document.getElementById('live-status');

function cell(text) {
  const node = document.createElement('td');
  node.textContent = text;
  return node;
}

function link(href, text, className, code = false) {
  const a = document.createElement('a');
  a.href = href;
  a.className = className;
  if (code) {
    const c = document.createElement('code');
    c.textContent = text;
    a.appendChild(c);
  } else {
    a.textContent = text;
  }
  return a;
}

function row(p) {
  const tr = document.createElement('tr');
  tr.dataset.session = p.session_id;
  const who = document.createElement('td');
  who.appendChild(link(table.dataset.participant + encodeURIComponent(p.session_id), p.pseudonym, 'participant-link', true));
  tr.appendChild(who);
  const state = cell(p.status);
  state.className = `r-state r-state-${p.state}`;
  tr.appendChild(state);
  tr.appendChild(cell(p.phase));
  const started = cell(p.started);
  started.title = p.started;
  tr.appendChild(started);
  const seen = cell(p.last_seen_ago);
  seen.title = p.last_seen;
  tr.appendChild(seen);
  tr.appendChild(cell(p.elapsed));
  tr.appendChild(cell(String(p.evaluations)));
  tr.appendChild(cell(p.task));
  tr.appendChild(cell(String(p.notes)));
  const replay = document.createElement('td');
  replay.appendChild(link(table.dataset.replay + encodeURIComponent(p.session_id), 'replay', 'replay-link'));
  tr.appendChild(replay);
  return tr;
}

function showCounts(page) {
  const counts = document.getElementById('state-counts');
  if (!counts) return;
  const byState = new Map(page.counts.states);
  byState.set('excluded', page.counts.excluded);
  byState.set('preview', page.counts.preview);
  byState.set('refused', page.counts.refused);
  byState.set('', page.counts.sessions);
  for (const node of counts.querySelectorAll('[data-state]')) {
    const value = byState.get(node.dataset.state);
    const b = node.querySelector('b');
    if (b && value !== undefined) b.textContent = String(value);
  }
  const summary = document.getElementById('table-summary');
  if (summary) summary.textContent = `${page.matching} matching · page ${page.page} of ${page.pages}`;
}

async function refresh() {
  const query = table.dataset.query ? `?${table.dataset.query}` : '';
  const response = await fetch(table.dataset.url + query, {
    credentials: 'same-origin',
    headers: { accept: 'application/json' },
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const page = await response.json();
  table.querySelector('tbody').replaceChildren(...page.rows.map(row));
  showCounts(page);
  table.dataset.updated = String(Date.now());
}

function stamp(mode) {
  status.textContent = `(live${mode}, updated ${new Date().toLocaleTimeString()})`;
}

async function refreshAndSay(mode) {
  try {
    await refresh();
    stamp(mode);
  } catch (error) {
    status.textContent = `(not updating: ${error.message})`;
  }
}

let polling = null;
function poll() {
  if (polling) return;
  status.dataset.mode = 'polling';
  polling = setInterval(() => refreshAndSay(', polling'), POLL_MS);
}

function listen() {
  if (!window.EventSource) {
    poll();
    return;
  }
  const source = new EventSource(table.dataset.live, { withCredentials: true });
  let first = true;
  source.addEventListener('change', () => {
    status.dataset.mode = 'pushed';
    // The first event only reports the current state, which the page already shows.
    if (first) {
      first = false;
      stamp('');
      return;
    }
    refreshAndSay('');
  });
  source.addEventListener('unavailable', () => poll());
  source.onerror = () => {
    // EventSource reconnects by itself; when it has given up, poll instead.
    if (source.readyState === EventSource.CLOSED) poll();
  };
}

if (table && status) listen();
