// The compact text form of a program, as the server reads and writes it (docs/semantics.md):
// the routines separated by `|`, Main first and then P1, P2, ..., each routine a string of
// letters, W walk, J jump, L left, R right, S light, and a digit k for a call of process Pk.
//
// Pure functions with no DOM, so the editor, the pages and the researcher's replay all parse
// drafts, demonstrations and stored versions the same way (and a plain node script can test them).

/** Compact form (`main|p1|p2|p3|p4`) of a list of routines, each a list of letters. */
export function toCompact(routines) {
  return routines.map((routine) => routine.join('')).join('|');
}

/**
 * Routines from compact form, padded or cut to `count` routines; null if it does not fit.
 *
 * Missing trailing routines are empty, and extra ones are dropped only while they are empty, so
 * a program that uses more processes than the page shows is refused rather than silently
 * shortened. A call must name one of the `count - 1` processes shown.
 */
export function fromCompact(text, count) {
  if (typeof text !== 'string') return null;
  const parts = text.split('|');
  if (parts.length > count && parts.slice(count).some((part) => part !== '')) return null;
  const routines = [];
  for (let i = 0; i < count; i += 1) {
    const letters = [...(parts[i] || '')];
    if (!letters.every((letter) => /^[WJLRS]$/.test(letter) || (Number(letter) >= 1 && Number(letter) < count))) {
      return null;
    }
    routines.push(letters);
  }
  return routines;
}
