// The level, drawn as a 2D grid in SVG: each block shaded by its height with the height written
// on it, light tiles as pads that are dark when off and bright (with rays) when on, and the robot
// as a disc with an arrow for its heading. Game coordinates have y = 0 at the bottom (see
// docs/semantics.md), so row y is drawn at screen row (height - 1 - y).
//
// The board only shows states it is given (from the server's trace); it never computes moves.

const SVG = 'http://www.w3.org/2000/svg';
const CELL = 60;

// Heading (0 = SE, 1 = NE, 2 = NW, 3 = SW; see docs/semantics.md) as a screen angle: NE is +x
// (right), NW is +y (up), SW is left, SE is down.
const ANGLE = [90, 0, -90, 180];
const HEADING_WORD = ['down', 'right', 'up', 'left'];

// Height shades, light to dark; heights above the table use the darkest.
const SHADES = ['#f1f4f8', '#cbd7e4', '#a3b8cf', '#7c98b8', '#5e7ea2', '#47688c', '#355575', '#25425e'];

function shade(height) {
  return SHADES[Math.min(Math.max(height, 1), SHADES.length) - 1];
}

function element(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

export class Board {
  /**
   * @param {HTMLElement} container where the SVG goes
   * @param {object} map the API's MapView
   */
  constructor(container, map) {
    this.container = container;
    this.map = map;
    this.lightIndex = new Map(map.lights.map((p, i) => [`${p.x},${p.y}`, i]));
    this.angle = ANGLE[map.start.direction];
    this.build();
    this.show(map.start, { animate: false });
  }

  build() {
    const { width, height } = this.map;
    this.container.textContent = '';
    const svg = element('svg', {
      viewBox: `-4 -4 ${width * CELL + 8} ${height * CELL + 8}`,
      role: 'img',
      class: 'board-svg',
      'aria-labelledby': 'board-title',
    });
    this.title = element('title', { id: 'board-title' }, svg);
    const cells = element('g', { class: 'cells' }, svg);
    this.pads = new Map();
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const h = this.map.heights[y][x];
        const left = x * CELL;
        const top = (height - 1 - y) * CELL;
        const cell = element('g', { class: 'cell', 'data-x': x, 'data-y': y, 'data-h': h }, cells);
        // A darker lip on the lower right gives each block some depth, thicker for higher blocks.
        const lip = Math.min(2 + h, 10);
        element('rect', { x: left + 1, y: top + 1, width: CELL - 2, height: CELL - 2, rx: 4, fill: '#2d3e50', opacity: 0.35 }, cell);
        element('rect', { x: left + 1, y: top + 1, width: CELL - 2 - lip / 2, height: CELL - 2 - lip / 2, rx: 4, fill: shade(h), stroke: '#6b7f94', 'stroke-width': 1 }, cell);
        const light = this.lightIndex.get(`${x},${y}`);
        if (light !== undefined) {
          const pad = element('g', { class: 'pad', 'data-light': light }, cell);
          // The pad sits a little right of and below the centre, clear of the height label.
          const cx = left + CELL / 2 + 4 - lip / 4;
          const cy = top + CELL / 2 + 8 - lip / 4;
          element('rect', { class: 'pad-base', x: cx - 17, y: cy - 17, width: 34, height: 34, rx: 7 }, pad);
          const rays = element('g', { class: 'pad-rays' }, pad);
          for (let k = 0; k < 8; k += 1) {
            const a = (Math.PI / 4) * k;
            element('line', {
              x1: cx + Math.cos(a) * 9, y1: cy + Math.sin(a) * 9,
              x2: cx + Math.cos(a) * 14, y2: cy + Math.sin(a) * 14,
            }, rays);
          }
          element('circle', { class: 'pad-bulb', cx, cy, r: 6 }, pad);
          this.pads.set(light, pad);
        }
        const label = element('text', {
          x: left + 5, y: top + 15, class: `height-label${h >= 5 ? ' on-dark' : ''}`,
        }, cell);
        label.textContent = String(h);
      }
    }
    this.robot = element('g', { class: 'robot' }, svg);
    element('circle', { class: 'robot-body', cx: 0, cy: 0, r: 15 }, this.robot);
    element('path', { class: 'robot-arrow', d: 'M 11 0 L -5 -9 L -2 0 L -5 9 Z' }, this.robot);
    this.container.appendChild(svg);
    this.svg = svg;
  }

  /**
   * Shows a state (the API's StateView); `effect` `no_op` makes the robot shake. `duration` (ms)
   * shortens the move so it keeps up with the player's pace.
   */
  show(state, { animate = true, effect = null, duration = null } = {}) {
    const { height } = this.map;
    const lit = new Set(state.lit);
    for (const [light, pad] of this.pads) pad.classList.toggle('lit', lit.has(light));
    // Turn the short way round, so a Left never looks like three Rights.
    const target = ANGLE[state.direction];
    let delta = (((target - this.angle) % 360) + 540) % 360 - 180;
    if (delta === -180 && this.lastTurn === 'left') delta = 180;
    this.angle += delta;
    const cx = state.x * CELL + CELL / 2 - 2;
    const cy = (height - 1 - state.y) * CELL + CELL / 2 - 2;
    this.robot.classList.toggle('animate', animate);
    const move = duration === null ? '' : `${Math.round(Math.min(duration, 260))}ms`;
    this.robot.style.transitionDuration = move;
    this.robot.querySelector('.robot-body').style.animationDuration = duration === null ? '' : `${Math.round(Math.min(duration, 300))}ms`;
    this.robot.style.transform = `translate(${cx}px, ${cy}px) rotate(${this.angle}deg)`;
    this.robot.classList.remove('bump');
    if (effect === 'no_op' && animate) {
      // Restart the animation: reading a layout property flushes the removal.
      void this.robot.getBoundingClientRect();
      this.robot.classList.add('bump');
    }
    if (animate && this.frozen !== undefined && this.frozen !== null) this.hold();
    this.state = state;
    const h = this.map.heights[state.y][state.x];
    const all = this.map.lights.length;
    this.title.textContent = `The level: ${this.map.width} by ${this.map.height} blocks. `
      + `Robot at column ${state.x + 1}, row ${state.y + 1} from the bottom, on a block of height ${h}, facing ${HEADING_WORD[state.direction]}. `
      + `${lit.size} of ${all} lights on.`;
    // Plain attributes for tests and researchers' tools.
    this.container.dataset.robot = `${state.x},${state.y},${state.direction}`;
    this.container.dataset.lit = [...lit].sort((a, b) => a - b).join(',');
    this.container.dataset.allLit = String(lit.size === all);
  }

  /**
   * For tests and screenshots: hold every animation at fraction `fraction` of its duration
   * (null lets them run again).
   */
  freezeAt(fraction) {
    this.frozen = fraction;
    if (fraction === null) {
      for (const a of this.robot.getAnimations({ subtree: true })) a.play();
    } else {
      this.hold();
    }
  }

  hold() {
    for (const a of this.robot.getAnimations({ subtree: true })) {
      a.pause();
      a.currentTime = this.frozen * Number(a.effect.getTiming().duration);
    }
  }

  /** True while the robot moves. */
  get animating() {
    return this.robot.getAnimations({ subtree: true }).some((a) => a.playState === 'running');
  }

  reset() {
    this.angle = ANGLE[this.map.start.direction];
    this.show(this.map.start, { animate: false });
  }

  isSolved(state = this.state) {
    return state.lit.length === this.map.lights.length;
  }
}
