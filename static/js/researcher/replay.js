// The replay: a participant's trials, each trial's history (every event, run and outcome, with
// times and the program at each point, rendered by the server in a <template> per trial), and
// the animated execution of any version. Execution happens on the server (the one interpreter);
// the board, the read-only program view and the player are the participant app's own modules,
// imported, not copied.

import { fromCompact } from '../compact.js';
import { Editor } from '../editor.js';
import { play } from '../player.js';
import { makeBoard } from '../view.js';
import { Cancelled } from '../api.js';

const root = document.getElementById('replay');
const data = JSON.parse(root.dataset.replay);
const $ = (id) => document.getElementById(id);
const statusLine = $('replay-status');
const timeline = $('timeline');
const tryError = $('try-error');
const tryProgram = $('try-program');

let board = null;
let editor = null;
let current = null; // { map, program }
let selected = null; // { phase, task }: what Play runs the shown program on
// The animation in progress; a newer one replaces it.
let controller = null;

function stop() {
  if (controller) controller.abort();
  controller = null;
  root.dataset.playing = 'false';
}

/** Shows `program` on `map` at the level's start, without running it. */
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

/** The server's message in an error response (plain text, or the API's JSON error). */
function message(text, status) {
  try {
    const json = JSON.parse(text);
    if (json && json.error && json.error.message) return json.error.message;
  } catch (_) {
    // Plain text.
  }
  return text || `HTTP ${status}`;
}

async function runOnServer(phase, task, program) {
  const response = await fetch(data.run_url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': data.csrf },
    body: JSON.stringify({ phase, task, program }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(message(text, response.status));
  return JSON.parse(text);
}

/** Animates a run's trace from the level's start. */
async function animate(result) {
  stop();
  const mine = new AbortController();
  controller = mine;
  root.dataset.playing = 'true';
  try {
    board.reset();
    statusLine.textContent = `Playing ${result.program} (${result.instruction_count} instructions)…`;
    await play(board, editor, result.trace, { signal: mine.signal });
    editor.highlight(null);
    statusLine.textContent = `${result.program}: ${result.solved ? 'solved' : 'not solved'} in ${result.steps} steps.`;
    root.dataset.played = String(Number(root.dataset.played || 0) + 1);
    root.dataset.lastSolved = String(result.solved);
  } finally {
    // A newer animation owns the flag once this one was replaced.
    if (controller === mine) {
      controller = null;
      root.dataset.playing = 'false';
    }
  }
}

/** Runs the shown program on the server and animates its trace. */
async function playCurrent() {
  if (!current || !selected) return;
  const shown = current;
  try {
    const result = await runOnServer(selected.phase, selected.task, shown.program);
    // Another trial or program was chosen meanwhile.
    if (current !== shown) return;
    await animate(result);
  } catch (error) {
    if (!(error instanceof Cancelled)) statusLine.textContent = `Cannot run: ${error.message}`;
  }
}

function selectTrialButton(index) {
  for (const button of document.querySelectorAll('.trial-button')) {
    button.classList.toggle('selected', Number(button.dataset.index) === index);
  }
}

function chooseTrial(index) {
  const trial = data.trials[index];
  selectTrialButton(index);
  clearTryError();
  const template = $(`history-${index}`);
  timeline.replaceChildren(template ? template.content.cloneNode(true) : '');
  root.dataset.trial = String(index);
  if (!trial.map) {
    stop();
    selected = null;
    statusLine.textContent = 'This trial has no level to show.';
    return;
  }
  selected = { phase: trial.phase, task: trial.task_index };
  root.dataset.shown = `${trial.phase}/${trial.task_index}`;
  const title = `${trial.phase} ${trial.position + 1}: ${trial.label}`;
  const buttons = [...timeline.querySelectorAll('.timeline-entry')];
  const choose = (i) => {
    const entry = trial.timeline[i];
    for (const b of buttons) b.classList.toggle('selected', Number(b.dataset.index) === i);
    // The outcome of a skipped trial shows the program the participant had when they skipped.
    const what = entry.kind === 'skip' && entry.seq === null ? 'program at skip time' : entry.label;
    show(trial.map, entry.program, `${title} · ${what} (${entry.time})`);
  };
  for (const button of buttons) {
    button.addEventListener('click', () => choose(Number(button.dataset.index)));
  }
  // Start on the outcome (the submitted program, or the program at skip time), else the last
  // entry that recorded a program.
  let start = trial.timeline.findIndex((e) => e.kind === 'submit' && e.seq === null);
  if (start < 0) start = trial.timeline.findIndex((e) => e.kind === 'skip' && e.seq === null);
  if (start < 0) {
    const last = [...trial.timeline].reverse().find((e) => e.shows_program);
    start = last ? trial.timeline.indexOf(last) : trial.timeline.length - 1;
  }
  if (start >= 0) choose(start);
}

for (const button of document.querySelectorAll('.trial-button')) {
  button.addEventListener('click', () => chooseTrial(Number(button.dataset.index)));
}
$('play').addEventListener('click', () => { playCurrent(); });
$('stop').addEventListener('click', stop);

// ---- Run any program: a clean stage for the chosen task, errors next to the input ----

function clearTryError() {
  tryError.hidden = true;
  tryError.textContent = '';
  tryProgram.removeAttribute('aria-invalid');
}

function showTryError(text) {
  tryError.textContent = text;
  tryError.hidden = false;
  tryProgram.setAttribute('aria-invalid', 'true');
}

/** Forgets the participant's trial: no history, no selection, the task's level at its start. */
function cleanStage(task) {
  stop();
  selectTrialButton(-1);
  delete root.dataset.trial;
  timeline.replaceChildren();
  const note = document.createElement('p');
  note.className = 'muted';
  note.textContent = 'Your own program: no participant history applies.';
  timeline.appendChild(note);
  const level = data.tasks.find((t) => t.index === task);
  selected = level ? { phase: 'tasks', task } : null;
  root.dataset.shown = `tasks/${task}`;
  if (level) show(level.map, '', `Your program on task ${task}: ${level.label}`);
  statusLine.textContent = '';
}

$('try-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const task = Number($('try-task').value);
  const program = tryProgram.value.trim();
  clearTryError();
  cleanStage(task);
  if (!program) {
    showTryError('Type a program first.');
    return;
  }
  let result;
  try {
    result = await runOnServer('tasks', task, program);
  } catch (error) {
    showTryError(`Cannot run: ${error.message}`);
    return;
  }
  // The server parsed either form; show its compact form and play its trace.
  show(result.map, result.program, `Your program on task ${task}`);
  try {
    await animate(result);
  } catch (error) {
    if (!(error instanceof Cancelled)) showTryError(`Cannot play: ${error.message}`);
  }
});
tryProgram.addEventListener('input', clearTryError);

// Open the first main task that has a level, so the page is never empty.
const first = data.trials.findIndex((t) => t.phase === 'tasks' && t.map);
if (first >= 0) chooseTrial(first);
root.dataset.ready = 'true';
