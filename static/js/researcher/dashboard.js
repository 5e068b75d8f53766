// The experiment dashboard: refreshes the participant table every few seconds from the server
// (the page itself is rendered by the server; this only keeps the table live).

const REFRESH_MS = 5000;

const table = document.getElementById('participants');
const status = document.getElementById('live-status');

function cell(text, tag = 'td') {
  const node = document.createElement(tag);
  node.textContent = text;
  return node;
}

function row(participant) {
  const tr = document.createElement('tr');
  const id = document.createElement('td');
  const code = document.createElement('code');
  code.textContent = participant.pseudonym;
  id.appendChild(code);
  tr.appendChild(id);
  for (const key of ['status', 'phase', 'task']) tr.appendChild(cell(participant[key]));
  const seen = cell(participant.last_seen_ago);
  seen.title = participant.last_seen;
  tr.appendChild(seen);
  tr.appendChild(cell(participant.elapsed));
  tr.appendChild(cell(String(participant.evaluations)));
  const link = document.createElement('a');
  link.className = 'replay-link';
  link.href = table.dataset.replay + encodeURIComponent(participant.session_id);
  link.textContent = 'replay';
  const last = document.createElement('td');
  last.appendChild(link);
  tr.appendChild(last);
  return tr;
}

async function refresh() {
  try {
    const response = await fetch(table.dataset.url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const participants = await response.json();
    const body = table.querySelector('tbody');
    body.replaceChildren(...participants.map(row));
    status.textContent = `(live, updated ${new Date().toLocaleTimeString()})`;
  } catch (error) {
    status.textContent = `(not updating: ${error.message})`;
  }
}

if (table) setInterval(refresh, REFRESH_MS);
