// The task page: the level, the editor, Run / Step / Quick Run / Stop / Reset, the instruction
// counter, Skip (after the experiment's delay, with confirmation) and the success dialog.
//
// Every run is executed by the server (POST .../runs) and the page animates the returned trace.
// Every edit and every run is recorded as a numbered event. The draft program is kept in
// localStorage, so a reload shows the program as it was.

import { ApiError, Cancelled, connection, retrying } from './api.js';
import { fromCompact } from './compact.js';
import { Editor, routineName } from './editor.js';
import { loadNextStep, sessionPrefix, showPageError, storage } from './events.js';
import { fullscreenDuringTasks, keepInView, leaveFullscreen } from './display.js';
import { play, showEntry } from './player.js';
import { makeBoard } from './view.js';

const $ = (id) => document.getElementById(id);

/**
 * A refusal that means the step was already passed (in another tab, or by a request whose answer
 * was lost): the participant's answer is in, so the page goes on as if it had succeeded.
 */
function alreadyPassed(error) {
  return error instanceof ApiError && error.code === 'wrong_step';
}

/**
 * One task page. `status` is what the controls follow:
 * idle (board at the start), waiting (for the server), running (animating), stepping (part of a
 * trace shown), finished (a run ended; the board shows where it ended).
 */
export class TaskPage {
  constructor(pageState, log) {
    this.pageState = pageState;
    this.log = log;
    const trial = pageState.session.current.trial;
    this.trial = trial;
    this.step = trial.step;
    const prefix = sessionPrefix(pageState.session.session_id);
    // One draft per step, so going back to a task is never confused with another one.
    this.draftKey = `${prefix}draft:${this.step}`;
    // The last program that solved this step, kept until it is submitted or replaced by another
    // solving run, so that trying to improve a solution never loses it.
    this.solutionKey = `${prefix}solution:${this.step}`;
    this.runKey = `${prefix}run`;
    // The instructions the server offers for this step: a tutorial level only those taught so far,
    // with one list per process offered; practice and the main tasks every one.
    this.letters = Array.isArray(trial.palette) ? trial.palette : null;
    this.subroutines = this.letters
      ? this.letters.filter((letter) => /^[1-9]$/.test(letter)).length
      : trial.limits.subroutines;

    this.buttons = {
      run: $('run'), step: $('step'), quick: $('quick-run'), stop: $('stop'), reset: $('reset'),
    };
    this.statusLine = $('run-status');
    this.counter = $('instruction-count');
    this.board = makeBoard($('board'), trial.map, { kind: pageState.board, log });

    this.status = 'idle';
    // Aborts the request or animation in progress (Stop, Reset, Skip).
    this.controller = null;
    // The server's answer to the latest run, and how far Step has got through its trace.
    this.result = null;
    this.stepIndex = 0;

    this.editor = new Editor({
      palette: $('palette'),
      routines: $('routines'),
      subroutines: this.subroutines,
      letters: this.letters,
      maxLength: trial.limits.max_routine_length,
      onEdit: (edit) => this.edited(edit),
    });
    const restored = this.restoreDraft();
    this.log.record('page', {
      page: 'task', phase: trial.phase, label: trial.label, task_index: trial.task_index,
      restored, program: this.editor.program(),
    });

    this.bindRunControls();
    this.bindSuccessDialog();
    this.bindSolution();
    this.bindSkip();
    this.bindHelp();

    this.editor.select(0);
    this.updateControls();
  }

  /** What tests and researchers' tools find on `window.proglab`. */
  handle() {
    return { editor: this.editor, board: this.board, routineName };
  }

  // ---- the program ----

  /** Loads the draft kept for this step; true if there was one. */
  restoreDraft() {
    const draft = fromCompact(storage.get(this.draftKey), this.subroutines + 1);
    if (draft) this.editor.load(draft);
    return Boolean(draft);
  }

  /** After every edit: keep the draft, record the edit, and let the board follow the program. */
  edited(edit) {
    storage.set(this.draftKey, edit.program);
    this.log.record('edit', {
      op: edit.op,
      routine: edit.routine,
      index: edit.index,
      to_routine: edit.toRoutine,
      to_index: edit.toIndex,
      instr: edit.instr,
      program: edit.program,
    });
    // A finished run's end position belongs to the old program; it would mislead now.
    if (this.status === 'finished') this.clearRun();
    this.updateControls();
  }

  // ---- status and controls ----

  say(message) {
    this.statusLine.textContent = message;
  }

  setStatus(next) {
    this.status = next;
    // The highlight must match the program that is running, so it cannot change meanwhile.
    this.editor.setLocked(next === 'waiting' || next === 'running' || next === 'stepping');
    this.updateControls();
  }

  /** Enables the buttons that make sense now, and shows the count and the status to tests. */
  updateControls() {
    const { buttons, status } = this;
    const empty = this.editor.isEmpty();
    const ready = status === 'idle' || status === 'finished';
    buttons.run.disabled = !ready || empty;
    buttons.quick.disabled = !ready || empty;
    buttons.step.disabled = !(ready || status === 'stepping') || empty;
    buttons.stop.disabled = !(status === 'waiting' || status === 'running' || status === 'stepping');
    buttons.reset.disabled = !(status === 'finished' || status === 'stepping');
    if (this.counter) this.counter.textContent = String(this.editor.instructionCount());
    $('app').dataset.status = status;
  }

  bindRunControls() {
    const { buttons } = this;
    if (this.trial.phase === 'tutorial') buttons.quick.hidden = true;
    connection.onChange((down) => {
      if (this.status === 'waiting') this.say(down ? 'Waiting for the server… the program runs as soon as it is back.' : 'Running…');
    });
    buttons.run.addEventListener('click', () => this.run());
    buttons.quick.addEventListener('click', () => this.quickRun());
    buttons.step.addEventListener('click', () => this.stepOnce());
    buttons.stop.addEventListener('click', () => this.stop());
    buttons.reset.addEventListener('click', () => this.reset());
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !buttons.run.disabled) {
        event.preventDefault();
        this.run();
      }
    });
  }

  // ---- runs ----

  /**
   * The next run number. The server treats a repeated number as the same run, so numbers must
   * never be reused, not even after a reload or with storage cleared.
   */
  nextRunNumber() {
    return storage.nextNumber(this.runKey, this.pageState.last_run || 0);
  }

  /** Puts the robot back at the start and forgets the last run; the status becomes idle. */
  clearRun() {
    this.board.reset();
    this.editor.highlight(null);
    this.result = null;
    this.stepIndex = 0;
    this.say('');
    this.status = 'idle';
  }

  /** Sends the program to the server; resolves with its RunResponse, or null if abandoned. */
  async requestRun(mode) {
    const program = this.editor.program();
    const run = this.nextRunNumber();
    this.log.record('run', { run, mode, program });
    this.clearRun();
    this.controller = new AbortController();
    this.setStatus('waiting');
    this.say('Running…');
    keepInView($('board'));
    try {
      const answer = await retrying('POST', `/session/steps/${this.step}/runs`, { run, program, mode }, { signal: this.controller.signal });
      this.say('');
      return answer;
    } catch (error) {
      if (!(error instanceof Cancelled)) {
        this.say(error instanceof ApiError ? `The program could not be run: ${error.message}` : String(error));
      }
      this.setStatus('idle');
      return null;
    }
  }

  /** The run has been shown to its end: say how it went, and offer to go on if it solved. */
  finishRun() {
    this.editor.highlight(null);
    this.setStatus('finished');
    const { result } = this;
    const lit = this.board.state.lit.length;
    const all = this.trial.map.lights.length;
    if (result && result.solved) {
      this.say('All the lights are on!');
      this.keepSolution(result.program);
      this.openSuccess();
    } else if (result && result.budget_exhausted) {
      this.say(`The program ran for 1000 instructions without switching on every light, so it was stopped. ${lit} of ${all} lights are on.`);
    } else {
      this.say(`Not all the lights are on: ${lit} of ${all}. Press Reset, or change the program and run it again.`);
    }
  }

  /** Run: the whole trace, animated. */
  async run() {
    this.result = await this.requestRun('run');
    if (!this.result) return;
    this.setStatus('running');
    try {
      await play(this.board, this.editor, this.result.trace, { signal: this.controller.signal });
      this.finishRun();
    } catch (error) {
      // Stop and Reset abort the animation and set the status themselves.
      if (!(error instanceof Cancelled)) throw error;
    }
  }

  /** Quick Run: straight to the final state, no animation. */
  async quickRun() {
    this.result = await this.requestRun('quick_run');
    if (!this.result) return;
    this.board.show(this.result.final_state, { animate: false });
    this.finishRun();
  }

  /**
   * Step: the first press runs the program on the server, and each press shows one more entry
   * of its trace. Only that first press is a run; the later ones are recorded as steps.
   */
  async stepOnce() {
    if (this.status !== 'stepping') {
      this.result = await this.requestRun('step');
      if (!this.result) return;
      this.stepIndex = 0;
      if (this.result.trace.length === 0) {
        this.finishRun();
        return;
      }
      this.setStatus('stepping');
    } else {
      this.log.record('step', { index: this.stepIndex });
    }
    showEntry(this.board, this.editor, this.result.trace[this.stepIndex]);
    this.stepIndex += 1;
    if (this.stepIndex >= this.result.trace.length) this.finishRun();
  }

  stop() {
    this.log.record('stop', { status: this.status });
    if (this.controller) this.controller.abort();
    // Nothing has been shown yet, so there is nothing to reset.
    if (this.status === 'waiting') {
      this.setStatus('idle');
      this.say('');
      return;
    }
    // The robot stays where it was, so the participant can see how far the program got.
    this.editor.highlight(null);
    this.setStatus('finished');
    this.say('Stopped. Press Reset to put the robot back at the start.');
  }

  reset() {
    this.log.record('reset', {});
    if (this.controller) this.controller.abort();
    this.clearRun();
    this.setStatus('idle');
  }

  // ---- leaving the task: submit or skip ----

  /** The step is done: the draft is no longer needed, and the study address shows what follows. */
  async leaveTask() {
    await leaveFullscreen(this.pageState, this.log);
    storage.remove(this.draftKey);
    storage.remove(this.solutionKey);
    await loadNextStep(this.pageState, this.log);
  }

  /** Posts the answer that ends the task and leaves; false (after a message) if it was refused. */
  async submitAndLeave(kind, path, body) {
    try {
      await retrying('POST', path, body);
    } catch (error) {
      if (!alreadyPassed(error)) {
        showPageError(`${kind} did not work: ${error.message}`);
        return false;
      }
    }
    await this.leaveTask();
    return true;
  }

  bindSuccessDialog() {
    this.success = $('success-dialog');
    this.submitButton = $('success-submit');
    // Outside the main tasks the participant just moves on, so the button says so.
    if (this.trial.phase !== 'tasks') this.submitButton.textContent = 'Continue';
    $('success-back').addEventListener('click', () => {
      this.log.record('success_back', {});
      this.success.close();
    });
    this.success.addEventListener('cancel', () => this.log.record('success_back', { key: 'escape' }));
    this.submitButton.addEventListener('click', () => this.submit());
  }

  openSuccess() {
    const count = this.editor.instructionCount();
    $('success-text').textContent = this.trial.phase === 'tasks'
      ? `All the lights are on. Your program has ${count} instruction${count === 1 ? '' : 's'}. Submit it, or go back and try to make it shorter.`
      : 'All the lights are on. Continue, or go back and try something else.';
    this.log.record('success', { run: this.result ? this.result.run : null, program: this.editor.program() });
    this.success.showModal();
    this.submitButton.focus();
  }

  async submit(button = this.submitButton, { via = 'dialog' } = {}) {
    button.disabled = true;
    // The run that solved it, in the compact form the server answered with (the same program).
    const solved = this.result && this.result.solved ? this.result.program : null;
    const program = via === 'kept' ? this.solution : solved || this.solution || this.editor.program();
    this.log.record('submit', { program, via });
    const left = await this.submitAndLeave('Submitting', `/session/steps/${this.step}/submit`, { program });
    if (!left) button.disabled = false;
  }

  // ---- the kept solution: Submit stays available after "Go back" ----

  bindSolution() {
    this.solutionBar = $('solution-bar');
    this.solutionButton = $('submit-solution');
    this.solutionNote = $('solution-note');
    this.solution = storage.get(this.solutionKey) || null;
    if (!this.solutionButton) return;
    if (this.trial.phase !== 'tasks') this.solutionButton.textContent = 'Continue';
    this.solutionButton.addEventListener('click', () => this.submit(this.solutionButton, { via: 'kept' }));
    this.showSolution();
  }

  keepSolution(program) {
    this.solution = program;
    storage.set(this.solutionKey, program);
    this.showSolution();
  }

  /** Shows the Submit bar while a solving program is kept, and says which program it sends. */
  showSolution() {
    if (!this.solutionBar) return;
    this.solutionBar.hidden = !this.solution;
    if (!this.solution) return;
    const count = this.solution.replace(/\|/g, '').length;
    const what = this.trial.phase === 'tasks' ? 'Submits' : 'Continues with';
    this.solutionNote.textContent = `${what} your last solving program (${count} instruction${count === 1 ? '' : 's'}).`;
    $('app').dataset.solution = this.solution;
  }

  bindSkip() {
    this.skipButton = $('skip');
    const { skip } = this.trial;
    if (!this.skipButton || !skip) return;
    this.skipDialog = $('skip-dialog');
    // The delay is counted from the server's clock (the page's own may be off), then waited out
    // on this page's clock.
    const loadedAt = performance.now();
    const wait = skip.available
      ? 0
      : Math.max(0, Date.parse(skip.available_at) - Date.parse(this.pageState.server_now));
    this.skipCountdown(wait - (performance.now() - loadedAt));
    this.skipButton.addEventListener('click', () => {
      this.log.record('skip_open', {});
      this.skipDialog.showModal();
      // Cancel first: skipping cannot be undone.
      $('skip-cancel').focus();
    });
    $('skip-cancel').addEventListener('click', () => {
      this.log.record('skip_cancel', {});
      this.skipDialog.close();
    });
    this.skipDialog.addEventListener('cancel', () => this.log.record('skip_cancel', { key: 'escape' }));
    $('skip-confirm').addEventListener('click', () => this.skip());
  }

  enableSkip() {
    this.skipButton.disabled = false;
    this.skipButton.dataset.available = 'true';
  }

  /** Keeps Skip disabled for `ms` more milliseconds, showing the time left ("Skip available in 2:41"). */
  skipCountdown(ms) {
    const until = performance.now() + Math.max(0, ms);
    const label = $('skip-countdown');
    clearInterval(this.skipTimer);
    const tick = () => {
      const left = Math.ceil((until - performance.now()) / 1000);
      if (left <= 0 || !this.skipButton.isConnected) {
        clearInterval(this.skipTimer);
        if (label) label.textContent = '';
        this.enableSkip();
        return;
      }
      this.skipButton.disabled = true;
      this.skipButton.dataset.available = 'false';
      if (label) label.textContent = `Skip available in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    };
    tick();
    if (performance.now() < until) this.skipTimer = setInterval(tick, 250);
  }

  async skip() {
    const confirm = $('skip-confirm');
    confirm.disabled = true;
    this.log.record('skip', { program: this.editor.program() });
    if (this.controller) this.controller.abort();
    try {
      await retrying('POST', `/session/steps/${this.step}/skip`);
    } catch (error) {
      confirm.disabled = false;
      this.skipDialog.close();
      if (error instanceof ApiError && error.code === 'skip_not_available') {
        // The server's clock decides; try again when it says.
        const seconds = Number((error.message.match(/(\d+) s to go/) || [])[1]) || 5;
        this.skipCountdown(seconds * 1000);
        showPageError(`Skipping is possible in ${seconds} seconds.`);
        return;
      }
      if (!alreadyPassed(error)) {
        showPageError(`Skipping did not work: ${error.message}`);
        return;
      }
    }
    await this.leaveTask();
  }

  bindHelp() {
    const help = $('help-dialog');
    $('help').addEventListener('click', () => {
      this.log.record('help', {});
      help.showModal();
    });
    $('help-close').addEventListener('click', () => help.close());
  }
}

export function startTask(pageState, log) {
  const page = new TaskPage(pageState, log);
  if (page.trial.phase === 'tasks') fullscreenDuringTasks(pageState, log);
  return page.handle();
}
