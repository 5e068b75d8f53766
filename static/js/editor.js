// The program editor: an instruction palette, a Main list and one list per process.
//
// A program is a list of routines (0 = Main, k = process Pk), each a list of compact-form letters
// (see docs/semantics.md): W walk, J jump, L left, R right, S light, and a digit for a call.
// Instructions are added by clicking a palette item (into the selected list) or by dragging it
// into any list; instructions in a list are reordered by dragging, removed with ✕, by dragging
// them out, or with Delete. Everything works from the keyboard: Tab to an instruction, Delete
// removes it, Alt+Left/Right moves it. Drag and drop uses pointer events, so it works with a
// mouse, a pen or a finger.
//
// The editor only edits; it reports each change through `onEdit` and knows nothing of runs.

import { toCompact } from './compact.js';

const PRIMITIVES = [
  { letter: 'W', name: 'Walk', glyph: '↑' },
  { letter: 'J', name: 'Jump', glyph: '⤴' },
  { letter: 'L', name: 'Left', glyph: '↺' },
  { letter: 'R', name: 'Right', glyph: '↻' },
  { letter: 'S', name: 'Light', glyph: '✦' },
];

const DRAG_THRESHOLD = 6;

export function routineName(index) {
  return index === 0 ? 'Main' : `P${index}`;
}

export function instructionInfo(letter) {
  const primitive = PRIMITIVES.find((p) => p.letter === letter);
  if (primitive) return { ...primitive, kind: primitive.name.toLowerCase() };
  return { letter, name: `P${letter}`, glyph: '', kind: 'call', long: `Process ${letter}` };
}

function html(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'className') node.className = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) node.appendChild(child);
  return node;
}

/** A chip showing one instruction (in the palette or in a list). */
function chip(letter) {
  const info = instructionInfo(letter);
  const node = html('span', { className: `chip chip-${info.kind}`, 'data-letter': letter });
  if (info.glyph) node.appendChild(html('span', { className: 'chip-glyph', 'aria-hidden': 'true', text: info.glyph }));
  node.appendChild(html('span', { className: 'chip-name', text: info.name }));
  return node;
}

/**
 * The instructions taught so far (compact letters, in palette order), shown beside a tutorial
 * screen's level as the palette looks, but not usable.
 */
export function showLegend(element, letters) {
  element.textContent = '';
  element.appendChild(html('h2', { className: 'palette-title', id: 'palette-title', text: 'Instructions so far' }));
  const items = html('ul', { className: 'palette-items legend', 'aria-labelledby': 'palette-title' });
  for (const letter of letters) {
    const item = html('li', { className: 'palette-item', 'data-letter': letter });
    item.appendChild(chip(letter));
    items.appendChild(item);
  }
  element.appendChild(items);
}

export class Editor {
  /**
   * @param {object} options
   * @param {HTMLElement|null} options.palette container for the palette (none when read-only)
   * @param {HTMLElement} options.routines container for the lists
   * @param {number} options.subroutines how many process lists to show
   * @param {number} options.maxLength longest list allowed
   * @param {boolean} options.readOnly a demonstration: no editing at all
   * @param {string[]|null} options.letters the instructions the palette offers (compact letters,
   *   in palette order); null for every primitive and a call of each process list
   * @param {(edit: object) => void} options.onEdit called after every change
   */
  constructor({ palette = null, routines, subroutines, maxLength = 200, readOnly = false, letters = null, onEdit = () => {} }) {
    this.paletteElement = palette;
    this.letters = letters;
    this.routinesElement = routines;
    this.count = subroutines + 1;
    this.maxLength = maxLength;
    this.readOnly = readOnly;
    this.onEdit = onEdit;
    this.routines = Array.from({ length: this.count }, () => []);
    this.selected = 0;
    this.locked = false;
    this.drag = null;
    this.suppressClick = false;
    this.build();
  }

  // ---- model ----

  program() {
    return toCompact(this.routines);
  }

  instructionCount() {
    return this.routines.reduce((sum, routine) => sum + routine.length, 0);
  }

  isEmpty() {
    return this.instructionCount() === 0;
  }

  /** Replaces the whole program (restoring a draft, showing a demonstration); no edit event. */
  load(routines) {
    this.routines = Array.from({ length: this.count }, (_, i) => [...(routines[i] || [])]);
    this.renderLists();
  }

  apply(edit) {
    const list = this.routines[edit.routine];
    switch (edit.op) {
      case 'add':
        if (list.length >= this.maxLength) return false;
        list.splice(edit.index, 0, edit.instr);
        break;
      case 'remove':
        list.splice(edit.index, 1);
        break;
      case 'move': {
        const [letter] = list.splice(edit.index, 1);
        const target = this.routines[edit.toRoutine];
        if (edit.toRoutine !== edit.routine && target.length >= this.maxLength) {
          list.splice(edit.index, 0, letter);
          return false;
        }
        target.splice(edit.toIndex, 0, letter);
        break;
      }
      case 'clear':
        if (list.length === 0) return false;
        list.length = 0;
        break;
      default:
        return false;
    }
    return true;
  }

  edit(edit, focus = null) {
    if (this.locked || this.readOnly) return;
    if (!this.apply(edit)) {
      if (edit.op === 'add' || edit.op === 'move') {
        this.announce(`${routineName(edit.toRoutine ?? edit.routine)} is full (at most ${this.maxLength} instructions).`);
      }
      return;
    }
    this.renderLists();
    if (focus) this.focusToken(focus.routine, focus.index);
    this.onEdit({ ...edit, program: this.program() });
  }

  // ---- building the DOM ----

  build() {
    if (this.paletteElement && !this.readOnly) this.buildPalette();
    this.routinesElement.textContent = '';
    this.routinesElement.classList.toggle('read-only', this.readOnly);
    this.lists = [];
    for (let r = 0; r < this.count; r += 1) {
      const headingId = `routine-${r}-name`;
      const section = html('section', { className: 'routine', 'data-routine': r, 'aria-labelledby': headingId });
      const head = html('div', { className: 'routine-head' });
      if (this.readOnly) {
        head.appendChild(html('h3', { id: headingId, className: 'routine-name', text: routineName(r) }));
      } else {
        const select = html('button', {
          type: 'button', id: headingId, className: 'routine-name routine-select',
          'aria-pressed': String(r === this.selected),
          title: `Add instructions to ${routineName(r)}`,
          text: routineName(r),
        });
        select.addEventListener('click', () => this.select(r));
        head.appendChild(select);
        const clear = html('button', {
          type: 'button', className: 'routine-clear button link small',
          'aria-label': `Clear ${routineName(r)}`, text: 'Clear',
        });
        clear.addEventListener('click', () => this.edit({ op: 'clear', routine: r }));
        head.appendChild(clear);
      }
      section.appendChild(head);
      const list = html('ol', { className: 'tokens', 'aria-labelledby': headingId, 'data-routine': r });
      section.appendChild(list);
      if (!this.readOnly) {
        // Clicking the empty part of a list selects it as the palette's target.
        section.addEventListener('click', (event) => {
          if (event.target === section || event.target === list || event.target === head) this.select(r);
        });
      }
      this.routinesElement.appendChild(section);
      this.lists.push({ section, list });
    }
    this.live = html('p', { className: 'visually-hidden', 'aria-live': 'polite' });
    this.routinesElement.appendChild(this.live);
    this.renderLists();
  }

  buildPalette() {
    const palette = this.paletteElement;
    palette.textContent = '';
    palette.appendChild(html('h2', { className: 'palette-title', id: 'palette-title', text: 'Instructions' }));
    const items = html('div', { className: 'palette-items', role: 'group', 'aria-labelledby': 'palette-title' });
    const letters = this.paletteLetters();
    this.paletteButtons = [];
    for (const letter of letters) {
      const button = html('button', { type: 'button', className: 'palette-item', 'data-letter': letter });
      button.appendChild(chip(letter));
      button.addEventListener('click', () => {
        if (this.suppressClick) return;
        const list = this.routines[this.selected];
        this.edit({ op: 'add', routine: this.selected, index: list.length, instr: letter });
      });
      button.addEventListener('pointerdown', (event) => this.pointerDown(event, { source: 'palette', letter, element: button }));
      items.appendChild(button);
      this.paletteButtons.push(button);
    }
    palette.appendChild(items);
    this.hint = html('p', { className: 'palette-hint muted' });
    palette.appendChild(this.hint);
    this.updatePaletteLabels();
  }

  /** The palette's instructions: the ones given, or every primitive and each process list. */
  paletteLetters() {
    if (this.letters) return [...this.letters];
    const letters = PRIMITIVES.map((p) => p.letter);
    for (let k = 1; k < this.count; k += 1) letters.push(String(k));
    return letters;
  }

  updatePaletteLabels() {
    if (!this.paletteButtons) return;
    const target = routineName(this.selected);
    for (const button of this.paletteButtons) {
      const info = instructionInfo(button.dataset.letter);
      button.setAttribute('aria-label', `${info.long || info.name}: add to ${target}`);
    }
    this.hint.textContent = '';
    // Phones and tablets are tapped, not clicked.
    const coarse = window.matchMedia && window.matchMedia('(pointer: coarse)').matches;
    this.hint.append(`${coarse ? 'Tap' : 'Click'} to add to `);
    this.hint.appendChild(html('strong', { text: target }));
    this.hint.append(', or drag into any list.');
  }

  select(routine) {
    if (this.readOnly) return;
    this.selected = routine;
    this.lists.forEach(({ section }, r) => {
      section.classList.toggle('selected', r === routine);
      section.querySelector('.routine-select').setAttribute('aria-pressed', String(r === routine));
    });
    this.updatePaletteLabels();
  }

  renderLists() {
    this.lists.forEach(({ section, list }, r) => {
      list.textContent = '';
      const routine = this.routines[r];
      routine.forEach((letter, i) => list.appendChild(this.token(r, i, letter, routine.length)));
      section.classList.toggle('empty', routine.length === 0);
      section.classList.toggle('selected', !this.readOnly && r === this.selected);
      if (!this.readOnly) {
        list.appendChild(html('li', { className: 'token-slot', 'aria-hidden': 'true' }));
        section.querySelector('.routine-clear').disabled = this.locked || routine.length === 0;
      }
    });
  }

  token(r, i, letter, length) {
    const info = instructionInfo(letter);
    const label = `${info.long || info.name}, ${i + 1} of ${length} in ${routineName(r)}`;
    const item = html('li', { className: 'token', 'data-routine': r, 'data-index': i, 'data-letter': letter });
    item.appendChild(chip(letter));
    if (this.readOnly) {
      item.setAttribute('aria-label', label);
      return item;
    }
    item.tabIndex = this.locked ? -1 : 0;
    item.setAttribute('aria-label', `${label}. Delete removes it, Alt+arrow keys move it.`);
    const remove = html('button', {
      type: 'button', className: 'token-remove', tabindex: '-1',
      'aria-label': `Remove ${label}`, text: '✕',
    });
    remove.disabled = this.locked;
    remove.addEventListener('click', (event) => {
      event.stopPropagation();
      this.edit({ op: 'remove', routine: r, index: i, instr: letter });
    });
    item.appendChild(remove);
    item.addEventListener('keydown', (event) => this.tokenKey(event, r, i, letter));
    item.addEventListener('pointerdown', (event) => {
      if (event.target.closest('.token-remove')) return;
      this.pointerDown(event, { source: 'token', letter, routine: r, index: i, element: item });
    });
    return item;
  }

  tokenKey(event, r, i, letter) {
    if (this.locked) return;
    const list = this.routines[r];
    if (event.key === 'Delete' || event.key === 'Backspace') {
      event.preventDefault();
      this.edit({ op: 'remove', routine: r, index: i, instr: letter }, { routine: r, index: Math.min(i, list.length - 2) });
    } else if (event.altKey && (event.key === 'ArrowLeft' || event.key === 'ArrowUp') && i > 0) {
      event.preventDefault();
      this.edit({ op: 'move', routine: r, index: i, toRoutine: r, toIndex: i - 1, instr: letter }, { routine: r, index: i - 1 });
    } else if (event.altKey && (event.key === 'ArrowRight' || event.key === 'ArrowDown') && i < list.length - 1) {
      event.preventDefault();
      this.edit({ op: 'move', routine: r, index: i, toRoutine: r, toIndex: i + 1, instr: letter }, { routine: r, index: i + 1 });
    } else if (!event.altKey && (event.key === 'ArrowLeft' || event.key === 'ArrowRight')) {
      event.preventDefault();
      this.focusToken(r, i + (event.key === 'ArrowLeft' ? -1 : 1));
    }
  }

  focusToken(r, i) {
    const tokens = this.lists[r].list.querySelectorAll('.token');
    if (tokens.length === 0) {
      this.lists[r].section.querySelector('.routine-select')?.focus();
      return;
    }
    tokens[Math.max(0, Math.min(i, tokens.length - 1))].focus();
  }

  announce(message) {
    this.live.textContent = message;
  }

  // ---- locking and highlighting during runs ----

  setLocked(locked) {
    this.locked = locked;
    this.routinesElement.classList.toggle('locked', locked);
    if (this.paletteButtons) for (const button of this.paletteButtons) button.disabled = locked;
    this.renderLists();
  }

  /** Marks the instruction being executed (null clears the marks). */
  highlight(routine, position) {
    for (const element of this.routinesElement.querySelectorAll('.executing, .current')) {
      element.classList.remove('executing', 'current');
    }
    if (routine === null || routine === undefined || !this.lists[routine]) return;
    const { section, list } = this.lists[routine];
    section.classList.add('executing');
    const token = list.querySelectorAll('.token')[position];
    if (token) {
      token.classList.add('current');
      // In the one-column layout of narrow screens the lists are below the level: scrolling to
      // the instruction would scroll the robot out of sight, so the level stays in view instead.
      const narrow = window.matchMedia && window.matchMedia('(max-width: 760px)').matches;
      if (!narrow) token.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    }
  }

  // ---- drag and drop ----

  pointerDown(event, source) {
    if (this.locked || this.readOnly || event.button > 0) return;
    this.drag = { ...source, startX: event.clientX, startY: event.clientY, active: false, pointerId: event.pointerId };
    const move = (e) => this.pointerMove(e);
    const up = (e) => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      window.removeEventListener('pointercancel', cancel);
      this.pointerUp(e);
    };
    const cancel = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      window.removeEventListener('pointercancel', cancel);
      this.endDrag();
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    window.addEventListener('pointercancel', cancel);
  }

  pointerMove(event) {
    const drag = this.drag;
    if (!drag) return;
    if (!drag.active) {
      if (Math.hypot(event.clientX - drag.startX, event.clientY - drag.startY) < DRAG_THRESHOLD) return;
      drag.active = true;
      drag.ghost = chip(drag.letter);
      drag.ghost.classList.add('drag-ghost');
      document.body.appendChild(drag.ghost);
      document.body.classList.add('dragging');
      drag.element.classList.add('drag-source');
      drag.marker = html('li', { className: 'drop-marker', 'aria-hidden': 'true' });
    }
    event.preventDefault();
    drag.ghost.style.left = `${event.clientX}px`;
    drag.ghost.style.top = `${event.clientY}px`;
    const target = this.dropTarget(event.clientX, event.clientY);
    drag.target = target;
    drag.marker.remove();
    this.routinesElement.querySelectorAll('.drop-into').forEach((e) => e.classList.remove('drop-into'));
    if (target) {
      const { list, section } = this.lists[target.routine];
      section.classList.add('drop-into');
      const tokens = [...list.querySelectorAll('.token')];
      const before = tokens[target.domIndex] || list.querySelector('.token-slot');
      list.insertBefore(drag.marker, before);
    }
  }

  /** The list and position under the pointer, or null outside every list. */
  dropTarget(x, y) {
    const under = document.elementFromPoint(x, y);
    const section = under && under.closest('.routine');
    if (!section || !this.routinesElement.contains(section)) return null;
    const routine = Number(section.dataset.routine);
    const tokens = [...this.lists[routine].list.querySelectorAll('.token')];
    let domIndex = tokens.length;
    for (let i = 0; i < tokens.length; i += 1) {
      const rect = tokens[i].getBoundingClientRect();
      if (y < rect.top || (y <= rect.bottom && x < rect.left + rect.width / 2)) {
        domIndex = i;
        break;
      }
    }
    return { routine, domIndex };
  }

  pointerUp(event) {
    const drag = this.drag;
    if (!drag || !drag.active) {
      this.drag = null;
      return;
    }
    this.pointerMove(event);
    const target = drag.target;
    this.endDrag();
    // The click that follows a drag is not an "add".
    this.suppressClick = true;
    setTimeout(() => {
      this.suppressClick = false;
    }, 0);
    if (drag.source === 'palette') {
      if (target) {
        this.edit({ op: 'add', routine: target.routine, index: target.domIndex, instr: drag.letter });
        this.select(target.routine);
      }
      return;
    }
    if (!target) {
      this.edit({ op: 'remove', routine: drag.routine, index: drag.index, instr: drag.letter });
      return;
    }
    let toIndex = target.domIndex;
    // The source token is still in the list while the position is computed.
    if (target.routine === drag.routine && toIndex > drag.index) toIndex -= 1;
    if (target.routine === drag.routine && toIndex === drag.index) return;
    this.edit({
      op: 'move', routine: drag.routine, index: drag.index,
      toRoutine: target.routine, toIndex, instr: drag.letter,
    });
  }

  endDrag() {
    const drag = this.drag;
    this.drag = null;
    if (!drag || !drag.active) return;
    drag.ghost.remove();
    drag.marker.remove();
    drag.element.classList.remove('drag-source');
    document.body.classList.remove('dragging');
    this.routinesElement.querySelectorAll('.drop-into').forEach((e) => e.classList.remove('drop-into'));
  }
}
