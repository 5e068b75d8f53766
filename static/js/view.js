// Which board a page draws: the isometric world (iso.js, the reference study's view, with camera
// rotation) or the flat grid (board.js). The experiment file chooses (`board = "isometric"` or
// `"flat"`, in the page state as `board`); participants cannot switch, so the stimulus stays
// the same for everyone in an experiment.
//
// The isometric view gets two camera buttons next to the board and the keys [ and ] (ignored
// while typing, and with Ctrl, Alt or Meta held, so the editor's shortcuts keep working). Each
// turn is recorded as a `camera` event when the page has an event log.

import { Board } from './board.js';
import { IsoBoard } from './iso.js';

// The board shown in each container, for the key handler (registered once per container).
const current = new WeakMap();

function cameraButton(id, label, glyph, key) {
  const button = document.createElement('button');
  button.type = 'button';
  button.id = id;
  button.className = 'button camera-button';
  button.setAttribute('aria-label', label);
  button.setAttribute('aria-keyshortcuts', key);
  button.title = `${label} (${key})`;
  button.textContent = glyph;
  return button;
}

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

/**
 * Draws `map` in `container` as `kind` says (`isometric`, the default, or `flat`); returns the
 * board (`show`, `reset`, `isSolved`, `state`). `log` (optional) records camera turns.
 */
export function makeBoard(container, map, { kind = 'isometric', log = null } = {}) {
  if (kind === 'flat') {
    const board = new Board(container, map);
    container.dataset.view = 'flat';
    current.set(container, { board, turn: null });
    return board;
  }
  // A new board in the same container (the replay switches levels) keeps the camera where it was.
  const before = current.get(container);
  const rotation = before && before.board instanceof IsoBoard ? before.board.rotation : 0;
  const board = new IsoBoard(container, map, { rotation });
  const turn = (delta, via) => {
    const rotation = board.rotate(delta);
    if (log) log.record('camera', { rotation, delta, via });
  };
  const controls = document.createElement('div');
  controls.className = 'camera-controls';
  controls.setAttribute('role', 'group');
  controls.setAttribute('aria-label', 'Camera');
  const left = cameraButton('camera-left', 'Rotate the view left', '⟲', '[');
  const right = cameraButton('camera-right', 'Rotate the view right', '⟳', ']');
  left.addEventListener('click', () => turn(-1, 'button'));
  right.addEventListener('click', () => turn(1, 'button'));
  controls.append(left, right);
  container.appendChild(controls);
  if (!before) {
    document.addEventListener('keydown', (event) => {
      if (event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) return;
      if (event.key !== '[' && event.key !== ']') return;
      const shown = current.get(container);
      if (!shown || !shown.turn || !container.isConnected) return;
      // Not while a dialog is open over the board.
      if (document.querySelector('dialog[open]')) return;
      event.preventDefault();
      shown.turn(event.key === '[' ? -1 : 1, 'key');
    });
  }
  current.set(container, { board, turn });
  return board;
}
