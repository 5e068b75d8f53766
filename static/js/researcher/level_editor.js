// The level editor: a grid the researcher draws on (size, heights, light tiles, the robot's start
// and heading), the level drawn with the participant app's own board (view.js: the isometric
// world or the flat grid), a live check on the server (`proglab experiment check`'s, debounced),
// and saving the level file to the server's levels folder or downloading it.
//
// The level is kept in game coordinates: heights[y][x], y = 0 the bottom row. A level file lists
// the rows from the top (the largest y) down, and numbers the lights in that order, which the
// board's `lights` list follows too.

import { makeBoard } from '../view.js';

const root = document.getElementById('level-editor');
const data = JSON.parse(root.dataset.editor);
const $ = (id) => document.getElementById(id);
const MAX_SIDE = data.max_side || 16;
const MAX_HEIGHT = 8;
const ARROWS = ['↓', '→', '↑', '←'];

const level = {
  width: 4,
  height: 1,
  heights: [[1, 1, 1, 1]],
  lights: new Set(['3,0']),
  start: { x: 0, y: 0 },
  direction: 1,
};

const key = (x, y) => `${x},${y}`;
const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

/** The level as one level object of the game's JSON format. */
function levelObject() {
  const map = [];
  for (let y = level.height - 1; y >= 0; y -= 1) {
    const row = [];
    for (let x = 0; x < level.width; x += 1) {
      row.push({ h: level.heights[y][x], t: level.lights.has(key(x, y)) ? 'l' : 'b' });
    }
    map.push(row);
  }
  return { direction: level.direction, position: { x: level.start.x, y: level.start.y }, map };
}

/** A level file of this one level, one map row per line (as the server writes it). */
function fileText() {
  const object = levelObject();
  const rows = object.map.map((row) => `  [${row.map((c) => `{"h": ${c.h}, "t": "${c.t}"}`).join(', ')}]`);
  return `[\n{"direction": ${object.direction}, "position": {"x": ${object.position.x}, "y": ${object.position.y}}, "map": [\n${rows.join(',\n')}\n]}\n]\n`;
}

/** The level as the participant API's MapView, for the board. */
function mapView() {
  const lights = [];
  for (let y = level.height - 1; y >= 0; y -= 1) {
    for (let x = 0; x < level.width; x += 1) {
      if (level.lights.has(key(x, y))) lights.push({ x, y });
    }
  }
  return {
    width: level.width,
    height: level.height,
    heights: level.heights.map((row) => row.slice()),
    lights,
    start: { x: level.start.x, y: level.start.y, direction: level.direction, lit: [] },
  };
}

/** Takes a level object of a level file (heights may be strings). */
function load(object) {
  const rows = object.map;
  const height = rows.length;
  const width = rows[0].length;
  level.width = width;
  level.height = height;
  level.heights = [];
  level.lights = new Set();
  for (let y = 0; y < height; y += 1) {
    const row = rows[height - 1 - y];
    level.heights.push(row.map((cell) => clamp(Number(cell.h) || 1, 1, 255)));
    row.forEach((cell, x) => { if (cell.t === 'l') level.lights.add(key(x, y)); });
  }
  level.start = { x: clamp(object.position.x, 0, width - 1), y: clamp(object.position.y, 0, height - 1) };
  level.direction = clamp(Number(object.direction) || 0, 0, 3);
  $('le-width').value = String(width);
  $('le-height').value = String(height);
  $('le-direction').value = String(level.direction);
}

/** A new size: cells that stay keep their height and light; new cells are height 1. */
function resize(width, height) {
  const heights = [];
  for (let y = 0; y < height; y += 1) {
    const row = [];
    for (let x = 0; x < width; x += 1) row.push(level.heights[y]?.[x] ?? 1);
    heights.push(row);
  }
  level.heights = heights;
  level.lights = new Set([...level.lights].filter((k) => {
    const [x, y] = k.split(',').map(Number);
    return x < width && y < height;
  }));
  level.width = width;
  level.height = height;
  level.start = { x: Math.min(level.start.x, width - 1), y: Math.min(level.start.y, height - 1) };
}

function tool() {
  return document.querySelector('input[name="le-tool"]:checked')?.value || 'raise';
}

function applyTool(x, y) {
  switch (tool()) {
    case 'raise': level.heights[y][x] = Math.min(MAX_HEIGHT, level.heights[y][x] + 1); break;
    case 'lower': level.heights[y][x] = Math.max(1, level.heights[y][x] - 1); break;
    case 'light':
      if (level.lights.has(key(x, y))) level.lights.delete(key(x, y));
      else level.lights.add(key(x, y));
      break;
    case 'start': level.start = { x, y }; break;
    default: break;
  }
  changed();
}

function renderGrid() {
  const grid = $('le-grid');
  grid.textContent = '';
  for (let y = level.height - 1; y >= 0; y -= 1) {
    const tr = document.createElement('tr');
    const label = document.createElement('th');
    label.scope = 'row';
    label.textContent = `y${y}`;
    tr.appendChild(label);
    for (let x = 0; x < level.width; x += 1) {
      const td = document.createElement('td');
      const button = document.createElement('button');
      button.type = 'button';
      button.id = `le-cell-${x}-${y}`;
      button.className = 'le-cell';
      button.dataset.x = String(x);
      button.dataset.y = String(y);
      const h = level.heights[y][x];
      const light = level.lights.has(key(x, y));
      const robot = level.start.x === x && level.start.y === y;
      button.dataset.h = String(h);
      button.classList.toggle('le-light', light);
      button.classList.toggle('le-robot', robot);
      button.style.setProperty('--le-shade', String(Math.min(h, MAX_HEIGHT) / MAX_HEIGHT));
      button.textContent = `${h}${light ? ' ●' : ''}${robot ? ` ${ARROWS[level.direction]}` : ''}`;
      button.setAttribute('aria-label', `x ${x}, y ${y}: height ${h}${light ? ', light tile' : ''}${robot ? ', the robot' : ''}`);
      button.addEventListener('click', () => applyTool(x, y));
      td.appendChild(button);
      tr.appendChild(td);
    }
    grid.appendChild(tr);
  }
}

function renderBoard() {
  if (level.lights.size === 0) {
    $('le-board').textContent = 'Put at least one light tile on the level.';
    return;
  }
  makeBoard($('le-board'), mapView(), { kind: $('le-view').value });
}

// ---- the live check ----

let timer = null;
let sequence = 0;

function scheduleCheck() {
  root.dataset.check = 'pending';
  $('le-check-status').textContent = 'Checking…';
  clearTimeout(timer);
  timer = setTimeout(check, 400);
}

async function post(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': data.csrf },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(text || `HTTP ${response.status}`);
  return JSON.parse(text);
}

async function check() {
  sequence += 1;
  const mine = sequence;
  try {
    const answer = await post(data.check_url, { level: levelObject(), light: $('le-light').value });
    if (mine !== sequence) return; // A newer check is on its way.
    showReport(answer);
  } catch (error) {
    if (mine !== sequence) return;
    root.dataset.check = 'error';
    $('le-check-status').textContent = `The check failed: ${error.message}`;
  }
}

function figure(list, term, value, id) {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = value;
  if (id) dd.id = id;
  list.append(dt, dd);
}

function showReport(answer) {
  const list = $('le-report');
  list.textContent = '';
  const report = answer.report;
  root.dataset.solvable = String(Boolean(report && report.solvable));
  root.dataset.steps = report && report.optimal_steps != null ? String(report.optimal_steps) : '';
  root.dataset.check = 'done';
  const status = $('le-check-status');
  status.classList.toggle('le-bad', !answer.ok);
  if (!report) {
    status.textContent = answer.error;
    return;
  }
  status.textContent = answer.ok ? 'The level can be solved.' : (answer.error || 'Not known whether the level can be solved.');
  const enumeration = report.enumeration;
  figure(list, 'Solvable', report.solvable === null ? 'unknown (too many states)' : report.solvable ? 'yes' : 'no', 'le-solvable');
  figure(list, 'Fewest steps', report.optimal_steps == null ? '–' : `${report.optimal_steps} (${report.solution})`, 'le-steps');
  figure(list, 'Reachable states', `${report.reachable_states}${report.states_complete ? '' : '+'}`, 'le-states');
  const stopped = { time_limit: '+ (stopped at the time limit)', candidate_limit: '+ (stopped at the candidate limit)' };
  let candidates = `${enumeration.candidates}${stopped[enumeration.status] || ''}`;
  if (enumeration.status === 'failed') candidates = `not enumerated: ${enumeration.message}`;
  if (enumeration.status === 'skipped') candidates = report.solvable === false ? '–' : `not enumerated: ${enumeration.message}`;
  figure(list, 'Candidate programs', candidates, 'le-candidates');
  figure(list, 'Enumeration time', `${enumeration.seconds.toFixed(2)} s (limits ${answer.time_limit_seconds} s, ${answer.candidate_limit} candidates)`);
  figure(list, 'Size', `${report.width} × ${report.height}, ${report.lights} light${report.lights === 1 ? '' : 's'}`);
}

// ---- saving, downloading, opening ----

async function save(event) {
  event.preventDefault();
  const status = $('le-save-status');
  const name = $('le-name').value.trim();
  if (!/^[a-z0-9_-]{1,64}$/.test(name)) {
    status.textContent = 'The file name may use a-z, 0-9, _ and - only.';
    return;
  }
  status.textContent = 'Saving…';
  try {
    const saved = await post(data.save_url, { name, level: levelObject(), overwrite: $('le-overwrite').checked });
    status.textContent = `Saved ${saved.path}${saved.replaced ? ' (replaced)' : ''}. In an experiment file next to the folder: map = "${saved.map}", level = 0.`;
    root.dataset.saved = saved.name;
    const select = $('le-open-file');
    if (![...select.options].some((o) => o.value === saved.name)) {
      select.add(new Option(`${saved.name}.json`, saved.name));
    }
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
  }
}

function download() {
  const name = $('le-name').value.trim() || 'level';
  const blob = new Blob([fileText()], { type: 'application/json' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = `${name}.json`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function openFile(name, index) {
  const status = $('le-save-status');
  try {
    const response = await fetch(`${data.files_url}${encodeURIComponent(name)}`, { credentials: 'same-origin' });
    const text = await response.text();
    if (!response.ok) throw new Error(text || `HTTP ${response.status}`);
    const levels = JSON.parse(text);
    if (!levels[index]) throw new Error(`${name}.json has ${levels.length} level(s), so no level ${index}`);
    load(levels[index]);
    $('le-name').value = name;
    status.textContent = `Opened ${name}.json, level ${index}.`;
    changed();
  } catch (error) {
    status.textContent = `Cannot open ${name}.json: ${error.message}`;
  }
}

function changed() {
  renderGrid();
  renderBoard();
  $('le-json').textContent = fileText();
  scheduleCheck();
}

function sizeInput(id) {
  const value = Number($(id).value);
  return Number.isInteger(value) ? clamp(value, 1, MAX_SIDE) : null;
}

for (const id of ['le-width', 'le-height']) {
  $(id).addEventListener('change', () => {
    const width = sizeInput('le-width');
    const height = sizeInput('le-height');
    if (width === null || height === null) return;
    resize(width, height);
    changed();
  });
}
$('le-direction').addEventListener('change', () => { level.direction = Number($('le-direction').value); changed(); });
$('le-light').addEventListener('change', scheduleCheck);
$('le-view').addEventListener('change', renderBoard);
$('le-save-form').addEventListener('submit', save);
$('le-download').addEventListener('click', download);
$('le-open-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('le-open-file').value;
  if (name) openFile(name, Number($('le-open-level').value) || 0);
});

changed();
if (data.open) openFile(data.open.file, data.open.level);
root.dataset.ready = 'true';
