// The replay: a participant's trials, each trial's history (every program version and run, with
// times), and the animated execution of any version. Execution happens on the server (the one
// interpreter); the board, the read-only program view and the player are the participant app's
// own modules, imported, not copied.

import { fromCompact } from '../compact.js';
import { Editor } from '../editor.js';
import { play } from '../player.js';
import { makeBoard } from '../view.js';
import { Cancelled } from '../api.js';

const root = document.getElementById('replay');
const data = JSON.parse(root.dataset.replay);
const $ = (id) => document.getElementById(id);
const statusLine = $('replay-status');

let board = null;
let editor = null;
let current = null; // { trial, program, map }
let controller = null;

function seconds(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function stop() {
  if (controller) controller.abort();
  controller = null;
}

/** Shows `program` on `map` without running it. */
function show(map, program, title) {
  stop();
  $('trial-title').textContent = title;
  // The experiment's view; the replay records nothing, so camera turns are not logged.
  board = makeBoard($('board'), map, { kind: data.board });
  editor = new Editor({ routines: $('routines'), subroutines: data.subroutines, readOnly: true });
  editor.load(fromCompact(program, data.subroutines + 1) || []);
  current = { map, program };
  statusLine.textContent = program ? `Program ${program}` : 'Empty program';
}

async function runOnServer(phase, task, program) {
  const response = await fetch(data.run_url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': data.csrf },
    body: JSON.stringify({ phase, task, program }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(text || `HTTP ${response.status}`);
  return JSON.parse(text);
}

/** Runs the shown program on the server and animates its trace. */
async function playCurrent(phase, task) {
  if (!current) return;
  stop();
  controller = new AbortController();
  const { signal } = controller;
  root.dataset.playing = 'true';
  try {
    const result = await runOnServer(phase, task, current.program);
    board.reset();
    statusLine.textContent = `Playing ${result.program} (${result.instruction_count} instructions)…`;
    await play(board, editor, result.trace, { signal });
    editor.highlight(null);
    statusLine.textContent = `${result.program}: ${result.solved ? 'solved' : 'not solved'} in ${result.steps} steps.`;
    root.dataset.played = String(Number(root.dataset.played || 0) + 1);
    root.dataset.lastSolved = String(result.solved);
  } catch (error) {
    if (!(error instanceof Cancelled)) statusLine.textContent = `Cannot run: ${error.message}`;
  } finally {
    root.dataset.playing = 'false';
  }
}

let selected = null; // { phase, task }

function chooseTrial(index) {
  const trial = data.trials[index];
  for (const button of document.querySelectorAll('.trial-button')) {
    button.classList.toggle('selected', Number(button.dataset.index) === index);
  }
  const list = $('timeline');
  list.textContent = '';
  if (!trial.map) {
    statusLine.textContent = 'This trial has no level to show.';
    return;
  }
  selected = { phase: trial.phase, task: trial.task_index };
  const title = `${trial.phase} ${trial.position + 1}: ${trial.label}`;
  trial.timeline.forEach((entry, i) => {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = `button link timeline-entry kind-${entry.kind}`;
    button.dataset.index = String(i);
    const solved = entry.solved === null || entry.solved === undefined ? '' : entry.solved ? ' ✓' : ' ✗';
    button.textContent = `${seconds(entry.t_ms)} ${entry.kind}${solved} ${entry.program || '(empty)'}`;
    button.title = entry.detail;
    button.addEventListener('click', () => {
      for (const b of list.querySelectorAll('.timeline-entry')) b.classList.remove('selected');
      button.classList.add('selected');
      show(trial.map, entry.program, `${title} · ${entry.kind} at ${seconds(entry.t_ms)}`);
    });
    item.appendChild(button);
    list.appendChild(item);
  });
  // Start on the final program (the submitted one), or the last version.
  const last = [...trial.timeline].reverse().find((e) => e.program) || trial.timeline[trial.timeline.length - 1];
  show(trial.map, last ? last.program : '', `${title} · ${last ? last.kind : ''}`);
  const buttons = list.querySelectorAll('.timeline-entry');
  const lastIndex = trial.timeline.indexOf(last);
  if (buttons[lastIndex]) buttons[lastIndex].classList.add('selected');
}

for (const button of document.querySelectorAll('.trial-button')) {
  button.addEventListener('click', () => chooseTrial(Number(button.dataset.index)));
}
$('play').addEventListener('click', () => { if (selected) playCurrent(selected.phase, selected.task); });
$('stop').addEventListener('click', stop);

$('try-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const task = Number($('try-task').value);
  const program = $('try-program').value.trim();
  try {
    // Ask the server first: it parses either form and answers with the level's map.
    const result = await runOnServer('tasks', task, program);
    selected = { phase: 'tasks', task };
    show(result.map, result.program, `Your program on task ${task}`);
    await playCurrent('tasks', task);
  } catch (error) {
    statusLine.textContent = `Cannot run: ${error.message}`;
  }
});

// Open the first main task that has a level, so the page is never empty.
const first = data.trials.findIndex((t) => t.phase === 'tasks' && t.map);
if (first >= 0) chooseTrial(first);
root.dataset.ready = 'true';
