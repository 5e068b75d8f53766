// The task page: the level, the editor, Run / Step / Quick Run / Stop / Reset, the instruction
// counter, Skip (after the experiment's delay, with confirmation) and the success dialog.
//
// Every run is executed by the server (POST .../runs) and the page animates the returned trace.
// Every edit and every run is recorded as a numbered event. The draft program is kept in
// localStorage, so a reload shows the program as it was.

import { ApiError, Cancelled, connection, retrying } from './api.js';
import { Board } from './board.js';
import { Editor, fromCompact, routineName } from './editor.js';
import { showPageError, storage } from './events.js';
import { play, showEntry } from './player.js';

export function startTask(pageState, log) {
  const session = pageState.session;
  const trial = session.current.trial;
  const step = trial.step;
  const prefix = `proglab:${session.session_id}:`;
  const draftKey = `${prefix}draft:${step}`;
  const runKey = `${prefix}run`;
  // The tutorial introduces one process; practice and the main tasks offer all of them.
  const subroutines = trial.phase === 'tutorial' ? Math.min(1, trial.limits.subroutines) : trial.limits.subroutines;
  const quickRunOffered = trial.phase !== 'tutorial';

  const $ = (id) => document.getElementById(id);
  const buttons = {
    run: $('run'), step: $('step'), quick: $('quick-run'), stop: $('stop'), reset: $('reset'),
  };
  const statusLine = $('run-status');
  const counter = $('instruction-count');
  const board = new Board($('board'), trial.map);

  // status: idle (board at the start), waiting (for the server), running (animating),
  // stepping (part of a trace shown), finished (a run ended; the board shows where).
  let status = 'idle';
  let controller = null;
  let result = null;
  let stepIndex = 0;

  const editor = new Editor({
    palette: $('palette'),
    routines: $('routines'),
    subroutines,
    maxLength: trial.limits.max_routine_length,
    onEdit: (edit) => {
      storage.set(draftKey, edit.program);
      log.record('edit', {
        op: edit.op,
        routine: edit.routine,
        index: edit.index,
        to_routine: edit.toRoutine,
        to_index: edit.toIndex,
        instr: edit.instr,
        program: edit.program,
      });
      if (status === 'finished') resetBoard();
      update();
    },
  });

  const draft = fromCompact(storage.get(draftKey), subroutines + 1);
  if (draft) editor.load(draft);
  log.record('page', {
    page: 'task', phase: trial.phase, label: trial.label, task_index: trial.task_index,
    restored: Boolean(draft), program: editor.program(),
  });

  if (!quickRunOffered) buttons.quick.hidden = true;

  function say(message) {
    statusLine.textContent = message;
  }

  function setStatus(next) {
    status = next;
    editor.setLocked(status === 'waiting' || status === 'running' || status === 'stepping');
    update();
  }

  function update() {
    const empty = editor.isEmpty();
    const ready = status === 'idle' || status === 'finished';
    buttons.run.disabled = !ready || empty;
    buttons.quick.disabled = !ready || empty;
    buttons.step.disabled = !(ready || status === 'stepping') || empty;
    buttons.stop.disabled = !(status === 'waiting' || status === 'running' || status === 'stepping');
    buttons.reset.disabled = !(status === 'finished' || status === 'stepping');
    if (counter) counter.textContent = String(editor.instructionCount());
    document.getElementById('app').dataset.status = status;
  }

  function nextRun() {
    const stored = Number(storage.get(runKey)) || 0;
    const run = Math.max(stored, pageState.last_run || 0) + 1;
    storage.set(runKey, String(run));
    return run;
  }

  function resetBoard() {
    board.reset();
    editor.highlight(null);
    result = null;
    stepIndex = 0;
    say('');
    status = 'idle';
  }

  /** Sends the program to the server; resolves with its RunResponse, or null if abandoned. */
  async function execute(mode) {
    const program = editor.program();
    const run = nextRun();
    log.record('run', { run, mode, program });
    resetBoard();
    controller = new AbortController();
    setStatus('waiting');
    say('Running…');
    try {
      const answer = await retrying('POST', `/session/steps/${step}/runs`, { run, program, mode }, { signal: controller.signal });
      say('');
      return answer;
    } catch (error) {
      if (!(error instanceof Cancelled)) {
        say(error instanceof ApiError ? `The program could not be run: ${error.message}` : String(error));
      }
      setStatus('idle');
      return null;
    }
  }

  function finish() {
    editor.highlight(null);
    setStatus('finished');
    const lit = board.state.lit.length;
    const all = trial.map.lights.length;
    if (result && result.solved) {
      say('All the lights are on!');
      openSuccess();
    } else if (result && result.budget_exhausted) {
      say(`The program ran for 1000 instructions without switching on every light, so it was stopped. ${lit} of ${all} lights are on.`);
    } else {
      say(`Not all the lights are on: ${lit} of ${all}. Press Reset, or change the program and run it again.`);
    }
  }

  async function run() {
    result = await execute('run');
    if (!result) return;
    setStatus('running');
    try {
      await play(board, editor, result.trace, { signal: controller.signal });
      finish();
    } catch (error) {
      if (!(error instanceof Cancelled)) throw error;
    }
  }

  async function quickRun() {
    result = await execute('quick_run');
    if (!result) return;
    board.show(result.final_state, { animate: false });
    finish();
  }

  async function stepOnce() {
    if (status !== 'stepping') {
      result = await execute('step');
      if (!result) return;
      stepIndex = 0;
      if (result.trace.length === 0) {
        finish();
        return;
      }
      setStatus('stepping');
    } else {
      log.record('step', { index: stepIndex });
    }
    showEntry(board, editor, result.trace[stepIndex]);
    stepIndex += 1;
    if (stepIndex >= result.trace.length) finish();
  }

  function stop() {
    log.record('stop', { status });
    if (controller) controller.abort();
    if (status === 'waiting') {
      setStatus('idle');
      say('');
      return;
    }
    editor.highlight(null);
    setStatus('finished');
    say('Stopped. Press Reset to put the robot back at the start.');
  }

  function reset() {
    log.record('reset', {});
    if (controller) controller.abort();
    resetBoard();
    setStatus('idle');
  }

  connection.onChange((down) => {
    if (status === 'waiting') say(down ? 'Waiting for the server… the program runs as soon as it is back.' : 'Running…');
  });

  buttons.run.addEventListener('click', () => run());
  buttons.quick.addEventListener('click', () => quickRun());
  buttons.step.addEventListener('click', () => stepOnce());
  buttons.stop.addEventListener('click', () => stop());
  buttons.reset.addEventListener('click', () => reset());
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !buttons.run.disabled) {
      event.preventDefault();
      run();
    }
  });

  // ---- leaving the task: submit or skip ----

  async function leave(kind, path, body) {
    try {
      await retrying('POST', path, body);
    } catch (error) {
      // A retry after the step was already passed (another tab, a lost answer) is fine.
      if (!(error instanceof ApiError) || error.code !== 'wrong_step') {
        showPageError(`${kind} did not work: ${error.message}`);
        return false;
      }
    }
    storage.remove(draftKey);
    await log.settle(2000);
    window.location.replace(pageState.study_url);
    return true;
  }

  const success = $('success-dialog');
  const submitButton = $('success-submit');
  if (trial.phase !== 'tasks') submitButton.textContent = 'Continue';
  function openSuccess() {
    const count = editor.instructionCount();
    $('success-text').textContent = trial.phase === 'tasks'
      ? `All the lights are on. Your program has ${count} instruction${count === 1 ? '' : 's'}. Submit it, or go back and try to make it shorter.`
      : 'All the lights are on. Continue, or go back and try something else.';
    log.record('success', { run: result ? result.run : null, program: editor.program() });
    success.showModal();
    submitButton.focus();
  }
  $('success-back').addEventListener('click', () => {
    log.record('success_back', {});
    success.close();
  });
  success.addEventListener('cancel', () => log.record('success_back', { key: 'escape' }));
  submitButton.addEventListener('click', async () => {
    submitButton.disabled = true;
    const program = result ? result.program : editor.program();
    log.record('submit', { program });
    const left = await leave('Submitting', `/session/steps/${step}/submit`, { program });
    if (!left) submitButton.disabled = false;
  });

  const skipButton = $('skip');
  if (skipButton && trial.skip) {
    const skipDialog = $('skip-dialog');
    const loadedAt = performance.now();
    const wait = trial.skip.available
      ? 0
      : Math.max(0, Date.parse(trial.skip.available_at) - Date.parse(pageState.server_now));
    const enable = () => {
      skipButton.disabled = false;
      skipButton.dataset.available = 'true';
    };
    if (wait === 0) enable();
    else setTimeout(enable, wait - (performance.now() - loadedAt));
    skipButton.addEventListener('click', () => {
      log.record('skip_open', {});
      skipDialog.showModal();
      $('skip-cancel').focus();
    });
    $('skip-cancel').addEventListener('click', () => {
      log.record('skip_cancel', {});
      skipDialog.close();
    });
    skipDialog.addEventListener('cancel', () => log.record('skip_cancel', { key: 'escape' }));
    $('skip-confirm').addEventListener('click', async () => {
      const confirm = $('skip-confirm');
      confirm.disabled = true;
      log.record('skip', { program: editor.program() });
      if (controller) controller.abort();
      try {
        await retrying('POST', `/session/steps/${step}/skip`);
      } catch (error) {
        confirm.disabled = false;
        skipDialog.close();
        if (error instanceof ApiError && error.code === 'skip_not_available') {
          // The server's clock decides; try again when it says.
          skipButton.disabled = true;
          const seconds = Number((error.message.match(/(\d+) s to go/) || [])[1]) || 5;
          setTimeout(enable, seconds * 1000);
          showPageError(`Skipping is possible in ${seconds} seconds.`);
          return;
        }
        if (!(error instanceof ApiError) || error.code !== 'wrong_step') {
          showPageError(`Skipping did not work: ${error.message}`);
          return;
        }
      }
      storage.remove(draftKey);
      await log.settle(2000);
      window.location.replace(pageState.study_url);
    });
  }

  const help = $('help-dialog');
  $('help').addEventListener('click', () => {
    log.record('help', {});
    help.showModal();
  });
  $('help-close').addEventListener('click', () => help.close());

  editor.select(0);
  update();
  return { editor, board, routineName };
}
