// Plays a trace from the server (one entry per executed token: routine, position, depth, the
// instruction, its effect and the state after it) on a board, highlighting the executing routine
// and instruction in the editor.

import { sleep } from './api.js';

// Milliseconds per executed token. Calls only move the highlight, so they go faster.
export const PACE = { primitive: 380, call: 160 };
const FULL_PACE_STEPS = 60;

// The part of a token's time its animation takes, so each one ends before the next begins.
const ANIMATION_SHARE = 0.8;

/** Shows one trace entry, its animation taking at most `duration` ms (the board's own default when absent). */
export function showEntry(board, editor, entry, duration) {
  const options = { animate: true, effect: entry.effect, instr: entry.instr };
  if (duration !== undefined) options.duration = duration;
  board.show(entry.state, options);
  if (editor) editor.highlight(entry.routine, entry.position);
}

/**
 * Plays `trace` from entry `from`; resolves with the index after the last entry shown. Rejects
 * with Cancelled when `signal` aborts.
 */
export async function play(board, editor, trace, { from = 0, signal, pace = PACE } = {}) {
  let index = from;
  for (; index < trace.length; index += 1) {
    const entry = trace[index];
    // Long runs (a loop that never lights everything goes on for 1000 tokens) speed up after a
    // while, so watching one to its end does not take minutes.
    const speed = index < FULL_PACE_STEPS ? 1 : 0.4;
    const wait = (entry.effect === 'call' ? pace.call : pace.primitive) * speed;
    showEntry(board, editor, entry, wait * ANIMATION_SHARE);
    await sleep(wait, signal);
  }
  return index;
}
