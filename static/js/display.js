// How the study uses the participant's screen: full screen during the main tasks, as in the
// reference study, and the level kept in view on narrow screens.
//
// Every step is a page of its own, a browser leaves full screen whenever the page changes, and it
// enters full screen only from a click or a key press. So each main-task page asks for full screen
// at the participant's first click or key press on it, unless they have left full screen before
// (Esc, or the browser's own control): that is their choice, recorded, and never overridden; they
// go on as before. A page that goes on leaves full screen itself, and the last task leaves it
// before the questionnaire. Every change is recorded as a `fullscreen` event, `{state: 'entered'}`
// or `{state: 'left', reason}` (`participant`, `next_page` or `end_of_tasks`); a browser that
// refuses or cannot go full screen is recorded as `refused` or `unavailable`.

import { sessionPrefix, storage } from './events.js';

/** Why the page itself is leaving full screen, while it does. */
let leaving = null;

function declinedKey(pageState) {
  return `${sessionPrefix(pageState.session.session_id)}fullscreen:declined`;
}

/** On a main-task page: ask for full screen at the first click or key press, and record changes. */
export function fullscreenDuringTasks(pageState, log) {
  const root = document.documentElement;
  if (!document.fullscreenEnabled || !root.requestFullscreen) {
    log.record('fullscreen', { state: 'unavailable' });
    return;
  }
  document.addEventListener('fullscreenchange', () => {
    if (document.fullscreenElement) {
      log.record('fullscreen', { state: 'entered' });
      return;
    }
    log.record('fullscreen', { state: 'left', reason: leaving || 'participant' });
    if (!leaving) storage.set(declinedKey(pageState), '1');
  });
  if (document.fullscreenElement || storage.get(declinedKey(pageState))) return;
  const events = ['click', 'keydown', 'pointerup'];
  const ask = (event) => {
    if (event.type === 'keydown' && event.key === 'Escape') return;
    for (const type of events) document.removeEventListener(type, ask, true);
    if (document.fullscreenElement || storage.get(declinedKey(pageState))) return;
    root.requestFullscreen().catch(() => log.record('fullscreen', { state: 'refused' }));
  };
  for (const type of events) document.addEventListener(type, ask, true);
}

/** Before the page goes on: leave full screen (recorded), so the next page starts as it should. */
export async function leaveFullscreen(pageState) {
  if (!document.fullscreenElement || !document.exitFullscreen) return;
  const { progress } = pageState.session;
  const last = progress.phase === 'tasks' && progress.phase_step >= progress.phase_steps - 1;
  leaving = last ? 'end_of_tasks' : 'next_page';
  try {
    await document.exitFullscreen();
    // The change event comes with the next frame; let it be recorded before the page goes.
    await new Promise((resolve) => { requestAnimationFrame(() => setTimeout(resolve, 0)); });
  } catch {
    // Already left.
  }
}

/** On narrow screens (one column), scrolls `element` into view, so a run is seen as it happens. */
export function keepInView(element) {
  if (!element || !window.matchMedia || !window.matchMedia('(max-width: 760px)').matches) return;
  element.scrollIntoView({ block: 'nearest' });
}
