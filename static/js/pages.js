// The pages around the tasks: consent, tutorial and instruction screens (with their animated
// examples), the questionnaire and the completion page. Each answers through the participant
// API and then reloads the study address, which shows the next step.

import { ApiError, Cancelled, retrying, sleep } from './api.js';
import { fromCompact } from './compact.js';
import { Editor, showLegend } from './editor.js';
import { loadNextStep, showPageError } from './events.js';
import { play } from './player.js';
import { makeBoard } from './view.js';

/** Runs `action`; a refusal is shown to the participant, and `button` is enabled again. */
async function answer(button, log, action) {
  button.disabled = true;
  showPageError('');
  try {
    await action();
    return true;
  } catch (error) {
    if (error instanceof Cancelled) return false;
    showPageError(error instanceof ApiError ? error.message : String(error));
    button.disabled = false;
    return false;
  }
}

export function startConsent(pageState, log) {
  log.record('page', { page: 'consent' });
  for (const [id, agree] of [['agree', true], ['decline', false]]) {
    const button = document.getElementById(id);
    button.addEventListener('click', () => answer(button, log, async () => {
      log.record('consent', { agree });
      await retrying('POST', '/session/consent', { agree });
      // Events wait for consent: stored once it is given, never after a refusal.
      if (agree) log.release();
      else log.discard();
      await loadNextStep(pageState, log);
    }));
  }
}

export function startDeclined(pageState, log) {
  log.record('page', { page: 'declined' });
}

export function startScreen(pageState, log) {
  const current = pageState.session.current;
  const step = pageState.session.progress.step;
  log.record('page', { page: 'screen', phase: current.phase });
  if (current.level) {
    const board = makeBoard(document.getElementById('board'), current.level, { kind: pageState.board, log });
    if (current.demo) {
      const demo = current.demo;
      // Only Main and the processes up to the last one the example uses.
      const parts = demo.program.split('|');
      let count = parts.length;
      while (count > 1 && parts[count - 1] === '') count -= 1;
      const editor = new Editor({
        routines: document.getElementById('demo-program'),
        subroutines: count - 1,
        readOnly: true,
      });
      const routines = fromCompact(parts.slice(0, count).join('|'), count) || [[]];
      editor.load(routines);
      // The Instruction Count is introduced with the instructions, not in the tutorial.
      if (current.phase === 'instructions') {
        document.getElementById('demo-count').textContent = `Instruction Count: ${demo.instruction_count}`;
      }
      // The example starts only when the participant presses Play, and can be played again; Stop
      // halts it where it is.
      let controller = null;
      let plays = 0;
      const app = document.getElementById('app');
      const playButton = document.getElementById('demo-play');
      const stopButton = document.getElementById('demo-stop');
      const setDemo = (state) => {
        app.dataset.demo = state;
        app.dataset.demoPlays = String(plays);
        stopButton.disabled = state !== 'playing';
        playButton.textContent = plays === 0 ? '▶ Play' : '▶ Play again';
      };
      const playDemo = async () => {
        if (controller) controller.abort();
        controller = new AbortController();
        board.reset();
        editor.highlight(null);
        setDemo('playing');
        try {
          await sleep(300, controller.signal);
          await play(board, editor, demo.trace, { signal: controller.signal });
          editor.highlight(null);
          setDemo('done');
        } catch (error) {
          if (!(error instanceof Cancelled)) throw error;
        }
      };
      playButton.addEventListener('click', () => {
        plays += 1;
        log.record('demo_play', { play: plays });
        playDemo();
      });
      stopButton.addEventListener('click', () => {
        if (controller) controller.abort();
        editor.highlight(null);
        log.record('demo_stop', { play: plays });
        setDemo('stopped');
      });
      setDemo('ready');
    }
    if (current.palette) showLegend(document.getElementById('palette'), current.palette);
  }
  const button = document.getElementById('continue');
  button.addEventListener('click', () => answer(button, log, async () => {
    log.record('continue', { step });
    await retrying('POST', `/session/steps/${step}/continue`);
    await loadNextStep(pageState, log);
  }));
}

export function startQuestionnaire(pageState, log) {
  log.record('page', { page: 'questionnaire' });
  const form = document.getElementById('questionnaire');
  const submit = document.getElementById('questionnaire-submit');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const answers = {};
    let firstMissing = null;
    for (const item of form.querySelectorAll('.item')) {
      const id = item.dataset.item;
      const checked = item.querySelector('input[type=radio]:checked');
      const textarea = item.querySelector('textarea');
      const value = checked ? checked.value : textarea ? textarea.value.trim() : '';
      const missing = item.dataset.required === 'true' && value === '';
      item.querySelector('.item-error').hidden = !missing;
      item.classList.toggle('invalid', missing);
      if (missing && !firstMissing) firstMissing = item;
      if (value !== '') answers[id] = value;
    }
    if (firstMissing) {
      (firstMissing.querySelector('input, textarea') || firstMissing).focus();
      return;
    }
    answer(submit, log, async () => {
      log.record('questionnaire', { items: Object.keys(answers) });
      await retrying('POST', '/session/questionnaire', { answers });
      await loadNextStep(pageState, log);
    });
  });
}

export function startDone(pageState, log) {
  const current = pageState.session.current;
  if (current.kind === 'complete') {
    // Completion is refused while any event is missing on the server, so send them all first.
    log.record('page', { page: 'complete' });
    (async () => {
      for (;;) {
        await log.flush();
        if (log.pending().length === 0) break;
        await sleep(1000);
      }
      try {
        await retrying('POST', '/session/complete', { events_through: log.lastSeq });
      } catch (error) {
        if (error instanceof ApiError && error.code === 'events_missing') {
          await sleep(1000);
          window.location.reload();
          return;
        }
        showPageError(error.message);
        return;
      }
      window.location.replace(pageState.study_url);
    })();
    return;
  }
  const note = document.getElementById('redirect-note');
  if (!note) return;
  const target = note.dataset.redirect;
  const seconds = document.getElementById('redirect-seconds');
  let left = 10;
  const tick = () => {
    left -= 1;
    seconds.textContent = String(Math.max(left, 0));
    if (left <= 0) window.location.assign(target);
    else setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

/**
 * The front door (`/e/{experiment}?PROLIFIC_PID=...`): enters the study with every URL parameter
 * (or resumes the session this browser has) and goes to the study page.
 */
export async function startEntry(root) {
  const slug = root.dataset.experiment;
  const api = root.dataset.api || '/api/v1';
  const params = Object.fromEntries(new URLSearchParams(window.location.search));
  // What the experiment's device check looks at; the server decides, and stores what it saw.
  const device = () => ({
    width: window.innerWidth,
    height: window.innerHeight,
    touch: window.matchMedia('(pointer: coarse)').matches && !window.matchMedia('(any-pointer: fine)').matches,
  });
  const status = root.querySelector('.loading') || root.appendChild(document.createElement('p'));
  status.setAttribute('role', 'status');
  const start = document.createElement('button');
  start.type = 'button';
  start.className = 'button primary';
  start.textContent = 'Start';
  start.addEventListener('click', async () => {
    start.disabled = true;
    status.textContent = 'Starting…';
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await fetch(`${api}/experiments/${encodeURIComponent(slug)}/sessions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ params, device: device() }),
          credentials: 'same-origin',
        });
      } catch {
        status.textContent = 'Cannot reach the server. Trying again…';
        await sleep(Math.min(1000 * 2 ** attempt, 5000));
        continue;
      }
      if (response.ok) {
        window.location.replace(`/e/${encodeURIComponent(slug)}/study`);
        return;
      }
      let message = `The study could not start (error ${response.status}).`;
      let code = null;
      try {
        const body = await response.json();
        if (body && body.error && body.error.message) message = body.error.message;
        if (body && body.error) code = body.error.code;
      } catch {
        // Keep the generic message.
      }
      if (response.status >= 500) {
        status.textContent = 'The server has a problem. Trying again…';
        await sleep(Math.min(1000 * 2 ** attempt, 5000));
        continue;
      }
      status.textContent = '';
      const alert = document.createElement('p');
      alert.className = 'page-error';
      alert.setAttribute('role', 'alert');
      alert.textContent = message.charAt(0).toUpperCase() + message.slice(1) + '.';
      root.dataset.refused = code || 'error';
      root.appendChild(alert);
      start.remove();
      return;
    }
  });
  status.textContent = '';
  root.appendChild(start);
  start.focus();
}
