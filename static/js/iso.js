// The level as the reference study showed it: an isometric world of stacked blocks, seen from
// one of four camera positions a quarter turn apart. Drawn in SVG with no libraries; the same
// interface as the flat `Board` (board.js), so the player, the task page, the screens and the
// researcher replay use either.
//
// Coordinates. Game cells are (x, y) with y = 0 at the bottom row (docs/semantics.md §1.2); the
// camera rotation r (0..3) turns the world a quarter turn clockwise per step, giving rotated grid
// coordinates (p, q). A point (p, q, z) is drawn at screen
//   sx = (p - q) * TILE_W / 2,   sy = -(p + q) * TILE_H / 2 - z * BLOCK_H
// so at rotation 0, +x (NE) goes up and right and +y (NW) up and left, as the headings' names say.
// Nearer cells have a smaller p + q. The static world is built once per rotation as one group per
// diagonal row (equal p + q), back to front; each cell's column is drawn bottom block first. Only
// the robot (its own group, moved between row groups so it is drawn after the cell it stands on
// and before the cells in front of it) and the light pads change while a trace plays.
//
// The board only shows states it is given (from the server's trace); it never computes moves.

const SVG = 'http://www.w3.org/2000/svg';
const TILE_W = 64;
const TILE_H = 32;
const BLOCK_H = 20;
// Room above the highest block for the robot.
const ROBOT_ROOM = 58;
const MARGIN = 8;

// A primitive's animation when the caller does not say how long it may take (ms).
const DEFAULT_DURATION = 300;

// Heading (0 = SE, 1 = NE, 2 = NW, 3 = SW) as an angle in the game's (x, y) plane, in degrees:
// NE is +x (0°), NW is +y (90°).
const HEADING_ANGLE = [270, 0, 90, 180];
const HEADING_WORD = ['south-east', 'north-east', 'north-west', 'south-west'];

// Top faces by height, light to dark; heights above the table use the darkest.
const TOPS = ['#eef2f7', '#d3dde9', '#b7c7da', '#9bb1cb', '#7f9bbb', '#6585a9', '#4e6f94', '#3a5a7d'];

function topColour(height) {
  return TOPS[Math.min(Math.max(height, 1), TOPS.length) - 1];
}

/** `hex` darkened by `amount` (0..1). */
function darken(hex, amount) {
  const n = parseInt(hex.slice(1), 16);
  const f = 1 - amount;
  const r = Math.round(((n >> 16) & 255) * f);
  const g = Math.round(((n >> 8) & 255) * f);
  const b = Math.round((n & 255) * f);
  return `rgb(${r},${g},${b})`;
}

function element(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

const round = (v) => Math.round(v * 100) / 100;
const points = (list) => list.map(([x, y]) => `${round(x)},${round(y)}`).join(' ');
const lerp = (a, b, t) => a + (b - a) * t;
const ease = (t) => (t < 0.5 ? 2 * t * t : 1 - ((-2 * t + 2) ** 2) / 2);

/** Screen position of rotated grid point (p, q) at height z. */
function screen(p, q, z) {
  return [(p - q) * (TILE_W / 2), -(p + q) * (TILE_H / 2) - z * BLOCK_H];
}

export class IsoBoard {
  /**
   * @param {HTMLElement} container where the SVG goes
   * @param {object} map the API's MapView
   * @param {{rotation?: number}} options the camera's first position
   */
  constructor(container, map, { rotation = 0 } = {}) {
    this.container = container;
    this.map = map;
    this.kind = 'isometric';
    this.lightIndex = new Map(map.lights.map((p, i) => [`${p.x},${p.y}`, i]));
    this.rotation = ((rotation % 4) + 4) % 4;
    this.segment = null;
    this.frozen = null;
    this.lit = new Set();
    this.frame = this.frame.bind(this);
    this.size = this.viewSize();
    this.buildSvg();
    this.pose = this.poseOf(map.start);
    this.buildWorld();
    this.show(map.start, { animate: false });
  }

  // ---- geometry ----

  /** Rotated grid coordinates of game point (x, y) (fractions allowed) under `rotation`. */
  rotate2(x, y, rotation = this.rotation) {
    const { width: w, height: h } = this.map;
    switch (rotation) {
      case 1: return [y, w - 1 - x];
      case 2: return [w - 1 - x, h - 1 - y];
      case 3: return [h - 1 - y, x];
      default: return [x, y];
    }
  }

  /** The rotated grid's size under `rotation`. */
  rotatedSize(rotation = this.rotation) {
    const { width, height } = this.map;
    return rotation % 2 === 0 ? [width, height] : [height, width];
  }

  /** Draw row of a cell: 0 is the farthest diagonal, larger is nearer. */
  rowOf(x, y, rotation = this.rotation) {
    const [p, q] = this.rotate2(x, y, rotation);
    const [wr, hr] = this.rotatedSize(rotation);
    return (wr - 1 - p) + (hr - 1 - q);
  }

  /** The bounds of the drawing under `rotation`. */
  bounds(rotation) {
    let minX = Infinity; let maxX = -Infinity; let minY = Infinity; let maxY = -Infinity;
    const { width, height, heights } = this.map;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const [p, q] = this.rotate2(x, y, rotation);
        const top = heights[y][x];
        for (const [dp, dq] of [[0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [-0.5, -0.5]]) {
          const [sx, sy0] = screen(p + dp, q + dq, 0);
          const [, sy1] = screen(p + dp, q + dq, top);
          minX = Math.min(minX, sx); maxX = Math.max(maxX, sx);
          minY = Math.min(minY, sy1 - ROBOT_ROOM); maxY = Math.max(maxY, sy0);
        }
      }
    }
    return { minX, maxX, minY, maxY };
  }

  /** The viewBox size: the largest over the four rotations, so turning never rescales. */
  viewSize() {
    let w = 0; let h = 0;
    for (let r = 0; r < 4; r += 1) {
      const b = this.bounds(r);
      w = Math.max(w, b.maxX - b.minX);
      h = Math.max(h, b.maxY - b.minY);
    }
    return { w: w + 2 * MARGIN, h: h + 2 * MARGIN };
  }

  // ---- building ----

  buildSvg() {
    this.container.textContent = '';
    this.container.dataset.view = 'isometric';
    const svg = element('svg', {
      role: 'img',
      class: 'board-svg iso-svg',
      'aria-labelledby': 'board-title',
      preserveAspectRatio: 'xMidYMid meet',
    });
    this.title = element('title', { id: 'board-title' }, svg);
    this.world = element('g', { class: 'iso-world' }, svg);
    this.robot = this.buildRobot();
    this.container.appendChild(svg);
    this.svg = svg;
  }

  /** The static world for the current rotation: one group per diagonal row, back to front. */
  buildWorld() {
    const { width, height, heights } = this.map;
    const b = this.bounds(this.rotation);
    const cx = (b.minX + b.maxX) / 2;
    const cy = (b.minY + b.maxY) / 2;
    const { w, h } = this.size;
    this.svg.setAttribute('viewBox', `${round(cx - w / 2)} ${round(cy - h / 2)} ${round(w)} ${round(h)}`);
    this.svg.dataset.rotation = String(this.rotation);
    this.world.textContent = '';
    const [wr, hr] = this.rotatedSize();
    this.rows = [];
    for (let k = 0; k <= wr + hr - 2; k += 1) {
      this.rows.push(element('g', { class: 'iso-row', 'data-row': k }, this.world));
    }
    // Cells in draw order: by row, and within a row from left to right (they never overlap).
    const cells = [];
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const [p, q] = this.rotate2(x, y);
        cells.push({ x, y, p, q, row: this.rowOf(x, y) });
      }
    }
    cells.sort((a, b2) => a.row - b2.row || (a.p - a.q) - (b2.p - b2.q));
    this.pads = new Map();
    this.flashes = new Map();
    cells.forEach((cell, order) => {
      const h = heights[cell.y][cell.x];
      const group = element('g', {
        class: 'iso-cell', 'data-x': cell.x, 'data-y': cell.y, 'data-h': h, 'data-order': order,
      }, this.rows[cell.row]);
      this.drawColumn(group, cell.p, cell.q, h);
      const light = this.lightIndex.get(`${cell.x},${cell.y}`);
      if (light !== undefined) this.drawPad(group, cell.p, cell.q, h, light);
    });
    for (const [light, pad] of this.pads) pad.classList.toggle('lit', this.lit.has(light));
    this.robotRow = null;
  }

  /** A column of `h` unit blocks, bottom first: two visible side faces each, then the top. */
  drawColumn(group, p, q, h) {
    const top = topColour(h);
    const left = darken(top, 0.22);
    const right = darken(top, 0.4);
    const corner = (dp, dq, z) => screen(p + dp, q + dq, z);
    for (let z = 0; z < h; z += 1) {
      const block = element('g', { class: 'iso-block', 'data-level': z }, group);
      // The left face runs from the left corner to the front corner, the right face from the
      // front corner to the right corner.
      element('polygon', {
        class: 'iso-face-left',
        points: points([corner(-0.5, 0.5, z + 1), corner(-0.5, -0.5, z + 1), corner(-0.5, -0.5, z), corner(-0.5, 0.5, z)]),
        fill: left,
      }, block);
      element('polygon', {
        class: 'iso-face-right',
        points: points([corner(-0.5, -0.5, z + 1), corner(0.5, -0.5, z + 1), corner(0.5, -0.5, z), corner(-0.5, -0.5, z)]),
        fill: right,
      }, block);
    }
    element('polygon', {
      class: 'iso-top',
      points: points([corner(0.5, 0.5, h), corner(0.5, -0.5, h), corner(-0.5, -0.5, h), corner(-0.5, 0.5, h)]),
      fill: top,
    }, group);
  }

  /** A light tile's pad on the top face: larger than the robot's footprint, so it shows. */
  drawPad(group, p, q, h, light) {
    const pad = element('g', { class: 'pad iso-pad', 'data-light': light }, group);
    const diamond = (s) => points([
      screen(p + s, q + s, h), screen(p + s, q - s, h), screen(p - s, q - s, h), screen(p - s, q + s, h),
    ]);
    element('polygon', { class: 'pad-base', points: diamond(0.4) }, pad);
    element('polygon', { class: 'pad-bulb', points: diamond(0.14) }, pad);
    // The flash when Light is pressed: a ring that grows from the pad's edge and fades (see
    // `render`).
    const flash = element('polygon', { class: 'iso-flash', points: diamond(0.4), opacity: 0 }, pad);
    this.pads.set(light, pad);
    this.flashes.set(light, { node: flash, diamond });
  }

  buildRobot() {
    const robot = element('g', { class: 'iso-robot' });
    // The ring on the floor is an outline only, so a pad under the robot stays visible.
    const r = 0.3 * Math.SQRT2;
    element('ellipse', { class: 'iso-robot-ring', cx: 0, cy: 0, rx: round(r * TILE_W / 2), ry: round(r * TILE_H / 2) }, robot);
    this.arrow = element('polygon', { class: 'iso-robot-arrow' }, robot);
    const body = element('g', { class: 'iso-robot-body' }, robot);
    element('rect', { class: 'iso-robot-torso', x: -13, y: -32, width: 26, height: 30, rx: 11 }, body);
    element('ellipse', { class: 'iso-robot-head', cx: 0, cy: -31, rx: 12.5, ry: 6 }, body);
    this.eyes = [0, 1].map(() => element('ellipse', { class: 'iso-robot-eye', cx: 0, cy: -20, rx: 3.5, ry: 4.5 }, body));
    // An antenna that leans the way the robot faces, so the heading shows from behind too.
    this.antenna = element('line', { class: 'iso-robot-antenna', x1: 0, y1: -36 }, body);
    this.antennaTip = element('circle', { class: 'iso-robot-antenna-tip', r: 3 }, body);
    return robot;
  }

  // ---- poses and drawing the robot ----

  poseOf(state) {
    return {
      x: state.x,
      y: state.y,
      z: this.map.heights[state.y][state.x],
      angle: HEADING_ANGLE[state.direction],
      shift: 0,
    };
  }

  /** Puts the robot's group after row `row` (and before the rows in front of it). */
  slot(row) {
    if (this.robotRow === row && this.robot.parentNode === this.world) return;
    this.world.insertBefore(this.robot, this.rows[row + 1] || null);
    this.robotRow = row;
  }

  /** Draws the robot at `pose` (fractional position, height and angle allowed). */
  place(pose) {
    const heading = ((pose.angle - 90 * this.rotation) * Math.PI) / 180;
    // The heading in the rotated grid, and on the screen.
    const dp = Math.cos(heading);
    const dq = Math.sin(heading);
    const gx = pose.x + (pose.shift || 0) * Math.cos((pose.angle * Math.PI) / 180);
    const gy = pose.y + (pose.shift || 0) * Math.sin((pose.angle * Math.PI) / 180);
    const [p, q] = this.rotate2(gx, gy);
    const [sx, sy] = screen(p, q, pose.z);
    this.robot.setAttribute('transform', `translate(${round(sx)} ${round(sy)})`);
    // The arrow on the floor: from the ring's edge to beyond it, in the heading's direction.
    const at = (along, across) => screen(dp * along - dq * across, dq * along + dp * across, 0);
    this.arrow.setAttribute('points', points([at(0.7, 0), at(0.32, 0.26), at(0.4, 0), at(0.32, -0.26)]));
    const [ax, ay] = at(0.3, 0);
    this.antenna.setAttribute('x2', round(ax));
    this.antenna.setAttribute('y2', round(-47 + ay));
    this.antennaTip.setAttribute('cx', round(ax));
    this.antennaTip.setAttribute('cy', round(-47 + ay));
    // The face: eyes on the side of the body that faces the heading, hidden when it faces away.
    // Seen from the camera, azimuth 0 faces the viewer and +90° is screen right.
    const gamma = heading - (5 * Math.PI) / 4;
    [-0.45, 0.45].forEach((offset, i) => {
      const a = gamma + offset;
      const eye = this.eyes[i];
      const facing = Math.cos(a);
      eye.setAttribute('cx', round(12 * Math.sin(a)));
      eye.setAttribute('rx', round(Math.max(0.2, 3.5 * facing)));
      eye.setAttribute('visibility', facing > 0.08 ? 'visible' : 'hidden');
    });
  }

  // ---- showing states ----

  /**
   * Shows a state (the API's StateView). With `animate`, the change from the shown state is
   * animated: a walk slides, a jump follows an arc, a turn turns, Light flashes the pad, and
   * `effect` `no_op` (a move that failed) makes the robot bump forward and back; a Light that
   * does nothing (`instr` `S`) makes it hop on the spot. `duration` (ms) is how long it may take;
   * the player passes its pace so the animation keeps up.
   */
  show(state, { animate = true, effect = null, instr = null, duration = DEFAULT_DURATION } = {}) {
    this.finish();
    const from = this.pose;
    const to = this.poseOf(state);
    // Turn the short way round.
    let delta = ((((to.angle - from.angle) % 360) + 540) % 360) - 180;
    if (delta === -180) delta = 180;
    to.angle = from.angle + delta;
    const lit = new Set(state.lit);
    const toggled = [...new Set([...lit, ...this.lit])].filter((l) => lit.has(l) !== this.lit.has(l));
    const moved = from.x !== to.x || from.y !== to.y;
    let kind = null;
    if (moved) kind = from.z === to.z ? 'walk' : 'jump';
    else if (delta !== 0) kind = 'turn';
    else if (effect === 'no_op') kind = instr === 'S' ? 'dud' : 'bump';
    else if (toggled.length > 0) kind = 'light';
    this.lit = lit;
    for (const [light, pad] of this.pads) pad.classList.toggle('lit', lit.has(light));
    this.pose = to;
    this.state = state;
    if (animate && kind && duration > 0) {
      this.segment = { from, to, kind, toggled, start: performance.now(), duration };
      const rowFrom = this.rowOf(from.x, from.y);
      const rowTo = this.rowOf(to.x, to.y);
      this.slot(Math.max(rowFrom, rowTo));
      this.container.dataset.animating = kind;
      this.robot.classList.toggle('iso-bumping', kind === 'bump');
      if (this.frozen !== null) this.render(this.frozen);
      else requestAnimationFrame(this.frame);
    } else {
      this.slot(this.rowOf(to.x, to.y));
      this.place(to);
    }
    this.describe(state);
  }

  /** Ends the animation in progress at once, at its final pose. */
  finish() {
    if (!this.segment) return;
    const { to } = this.segment;
    for (const flash of this.flashes.values()) flash.node.setAttribute('opacity', 0);
    this.segment = null;
    this.slot(this.rowOf(to.x, to.y));
    this.place(to);
    delete this.container.dataset.animating;
    this.robot.classList.remove('iso-bumping');
  }

  frame(now) {
    const seg = this.segment;
    if (!seg || this.frozen !== null) return;
    const t = Math.min(1, (now - seg.start) / seg.duration);
    if (t >= 1) {
      this.finish();
      return;
    }
    this.render(t);
    requestAnimationFrame(this.frame);
  }

  /** Draws the animation in progress at fraction `t` of its duration. */
  render(t) {
    const { from, to, kind, toggled } = this.segment;
    const e = ease(t);
    const pose = { x: to.x, y: to.y, z: to.z, angle: to.angle, shift: 0 };
    if (kind === 'walk' || kind === 'jump') {
      pose.x = lerp(from.x, to.x, e);
      pose.y = lerp(from.y, to.y, e);
      if (kind === 'jump') {
        // A parabola between the two top faces, peaking above the higher one.
        const lift = 0.55 + Math.max(0, to.z - from.z) * 0.5;
        pose.z = lerp(from.z, to.z, t) + 4 * lift * t * (1 - t);
        pose.x = lerp(from.x, to.x, t);
        pose.y = lerp(from.y, to.y, t);
      }
    } else if (kind === 'turn') {
      pose.angle = lerp(from.angle, to.angle, e);
    } else if (kind === 'bump') {
      // Forward a little, into the obstacle, and back, with a small shake.
      pose.shift = 0.16 * Math.sin(Math.PI * t) + 0.03 * Math.sin(6 * Math.PI * t) * (1 - t);
    } else if (kind === 'dud') {
      pose.z = to.z + 0.18 * Math.sin(Math.PI * t);
    } else if (kind === 'light') {
      for (const light of toggled) {
        const flash = this.flashes.get(light);
        if (flash) {
          flash.node.setAttribute('points', flash.diamond(0.36 + 0.2 * t));
          flash.node.setAttribute('opacity', round(Math.sin(Math.PI * Math.min(1, t * 1.2))));
        }
      }
    }
    this.place(pose);
  }

  /**
   * For tests and screenshots: draw every animation at fraction `fraction` of its duration and
   * hold it there (null lets animations run again).
   */
  freezeAt(fraction) {
    this.frozen = fraction;
    if (fraction === null) this.finish();
    else if (this.segment) this.render(fraction);
  }

  /** True while an animation is in progress. */
  get animating() {
    return this.segment !== null;
  }

  /** Turns the camera a quarter turn: +1 clockwise (right), -1 counter-clockwise (left). */
  rotate(delta) {
    const segment = this.segment;
    this.rotation = (((this.rotation + delta) % 4) + 4) % 4;
    this.buildWorld();
    if (segment) {
      this.slot(Math.max(this.rowOf(segment.from.x, segment.from.y), this.rowOf(segment.to.x, segment.to.y)));
      if (this.frozen !== null) this.render(this.frozen);
    } else {
      this.slot(this.rowOf(this.pose.x, this.pose.y));
      this.place(this.pose);
    }
    this.describe(this.state);
    return this.rotation;
  }

  describe(state) {
    const h = this.map.heights[state.y][state.x];
    const all = this.map.lights.length;
    const lit = this.lit.size;
    this.title.textContent = `The level, seen from above at an angle: ${this.map.width} by ${this.map.height} blocks. `
      + `Robot at column ${state.x + 1}, row ${state.y + 1} from the bottom, on a block of height ${h}, facing ${HEADING_WORD[state.direction]}. `
      + `${lit} of ${all} lights on.`;
    // Plain attributes for tests and researchers' tools.
    this.container.dataset.robot = `${state.x},${state.y},${state.direction}`;
    this.container.dataset.lit = [...this.lit].sort((a, b) => a - b).join(',');
    this.container.dataset.allLit = String(lit === all);
    this.container.dataset.rotation = String(this.rotation);
  }

  reset() {
    this.finish();
    this.lit = new Set();
    this.pose = this.poseOf(this.map.start);
    this.show(this.map.start, { animate: false });
  }

  isSolved(state = this.state) {
    return state.lit.length === this.map.lights.length;
  }

  /**
   * What is drawn, read back from the drawing, for tests: the cells in draw order with their
   * height and the screen centre of their top face, and the robot with its place in the order,
   * its screen position and the screen direction of its heading arrow.
   */
  scene() {
    const svgBox = this.svg.getBoundingClientRect();
    // SVG units to CSS pixels, as drawn (the picture is fitted into the element's box).
    const scale = this.world.getScreenCTM().a;
    const centre = (node) => {
      const r = node.getBoundingClientRect();
      return [r.x + r.width / 2 - svgBox.x, r.y + r.height / 2 - svgBox.y];
    };
    const blocks = [];
    let robot = null;
    const drawn = this.world.querySelectorAll('.iso-cell, .iso-robot');
    drawn.forEach((node, order) => {
      if (node === this.robot) {
        const ring = centre(this.robot.querySelector('.iso-robot-ring'));
        const tipLocal = this.arrow.points.getItem(0);
        robot = {
          x: this.state.x,
          y: this.state.y,
          direction: this.state.direction,
          order,
          screen: ring,
          heading: [tipLocal.x, tipLocal.y],
          moving: this.segment !== null,
        };
        return;
      }
      blocks.push({
        x: Number(node.dataset.x),
        y: Number(node.dataset.y),
        h: Number(node.dataset.h),
        levels: node.querySelectorAll('.iso-block').length,
        order,
        top: centre(node.querySelector('.iso-top')),
      });
    });
    return {
      rotation: this.rotation,
      unit: { halfWidth: (TILE_W / 2) * scale, halfHeight: (TILE_H / 2) * scale, block: BLOCK_H * scale },
      blocks,
      robot,
    };
  }
}
