//! The normal form of enumerated programs: subroutines renamed by first use (docs/semantics.md §3.3
//! pass 8), written as compact bytes, plus its fingerprint and sufficient-statistic key.
//!
//! Compact bytes here are main, then `|` and one body per kept slot (trailing empty slots are not
//! written), with internal letters `A`..`E` and call digits `1`..`9`.

use dsl::{Instr, Program};

use super::traces::{action_of_internal, internal_letter};
use crate::key::{MAX_SLOTS, StatKey};

/// Renames the subroutines of `routines` (main first, then slots 1..) by first use and writes the
/// result to `out` (cleared first).
///
/// Depth-first walk from main: the first subroutine called becomes 1, the next new one 2, and so
/// on; subroutines never reached are dropped (docs/semantics.md §3.3 pass 8). Like
/// `dsl::canon::rename_by_first_use`, the walk goes on past a recursive call without entering it
/// where the reference stops; the two agree wherever the reference succeeds, and in particular on
/// every enumerated program, whose only recursive call is the last token of main's callee chain.
/// Returns false when a routine calls a slot that does not exist.
pub(crate) fn rename_by_first_use(routines: &[&[u8]], out: &mut Vec<u8>) -> bool {
    out.clear();
    let slots = routines.len().saturating_sub(1).min(MAX_SLOTS);
    // new_name[k] = new number of old slot k (0: not reached).
    let mut new_name = [0u8; MAX_SLOTS + 1];
    let mut order = [0u8; MAX_SLOTS];
    let mut named = 0usize;
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    while let Some(top) = stack.last_mut() {
        let (routine, pos) = *top;
        let body = routines[routine];
        if pos == body.len() {
            stack.pop();
            continue;
        }
        top.1 += 1;
        let token = body[pos];
        if !token.is_ascii_digit() {
            continue;
        }
        let callee = (token - b'0') as usize;
        if callee == 0 || callee > slots {
            return false;
        }
        // A routine on the call path is already named, so recursive calls are not entered.
        if new_name[callee] == 0 {
            order[named] = callee as u8;
            named += 1;
            new_name[callee] = named as u8;
            stack.push((callee, 0));
        }
    }
    let write = |body: &[u8], out: &mut Vec<u8>| -> bool {
        for &token in body {
            if token.is_ascii_digit() {
                let renamed = new_name.get((token - b'0') as usize).copied().unwrap_or(0);
                if renamed == 0 {
                    return false;
                }
                out.push(b'0' + renamed);
            } else {
                out.push(token);
            }
        }
        true
    };
    if !write(routines[0], out) {
        return false;
    }
    for &old in &order[..named] {
        out.push(b'|');
        if !write(routines[old as usize], out) {
            return false;
        }
    }
    true
}

/// Splits compact bytes into routines.
pub(crate) fn routines_of(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'|')
}

/// A 128-bit fingerprint of compact bytes. Duplicates are collapsed by fingerprint; two different
/// programs collide with probability about 2^-128 per pair.
pub(crate) fn fingerprint(bytes: &[u8]) -> u128 {
    const K0: u64 = 0x9E37_79B9_7F4A_7C15;
    const K1: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const K2: u64 = 0x1656_67B1_9E37_79F9;
    // Two independent lanes of multiply-fold mixing over 8-byte words.
    let fold = |a: u64, b: u64| {
        let product = (a as u128).wrapping_mul(b as u128);
        (product as u64) ^ ((product >> 64) as u64)
    };
    let mut h0 = K0 ^ bytes.len() as u64;
    let mut h1 = K1.wrapping_add(bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        h0 = fold(h0 ^ w, K1);
        h1 = fold(h1 ^ w.rotate_left(29), K2);
    }
    h0 = fold(h0 ^ (h1 >> 17), K2);
    h1 = fold(h1 ^ (h0 >> 23), K0);
    (u128::from(h0) << 64) | u128::from(h1)
}

/// The sufficient statistics (P, n, sorted call counts, R) of compact bytes and step cost `s`,
/// packed into a `u64` for fast histogramming: P, n, S and the four largest call counts take a
/// byte each, R a byte. Every value is below 256 because programs are at most 160 bytes.
pub(crate) fn packed_key(bytes: &[u8], s: usize) -> u64 {
    let (mut p, mut n, mut r) = (0u64, 0u64, 0u64);
    let mut calls = [0u8; 10];
    for body in routines_of(bytes) {
        r += u64::from(!body.is_empty());
        for &b in body {
            if b.is_ascii_digit() {
                n += 1;
                calls[(b - b'0') as usize] += 1;
            } else {
                p += 1;
            }
        }
    }
    calls.sort_unstable_by(|a, b| b.cmp(a));
    let mut key = p | (n << 8) | ((s as u64 & 0xFF) << 16) | (r << 24);
    for (i, &c) in calls[..4].iter().enumerate() {
        key |= u64::from(c) << (32 + 8 * i);
    }
    key
}

/// The [`StatKey`] of a packed key.
pub(crate) fn unpack_key(key: u64) -> StatKey {
    let byte = |i: u32| ((key >> (8 * i)) & 0xFF) as u16;
    let mut calls = [0u16; MAX_SLOTS];
    for (i, slot) in calls.iter_mut().take(4).enumerate() {
        *slot = byte(4 + i as u32);
    }
    StatKey {
        p: byte(0),
        n: byte(1),
        calls,
        r: byte(3) as u8,
        s: byte(2),
    }
}

/// The compact bytes of a program: main and every slot (empty ones included), renamed by first
/// use. `None` when renaming fails or the program cannot be written in compact bytes.
pub(crate) fn normal_bytes_of_program(program: &Program) -> Option<Vec<u8>> {
    if program.routines.is_empty() || program.n_subroutines() > MAX_SLOTS {
        return None;
    }
    let raw: Vec<Vec<u8>> = program
        .routines
        .iter()
        .map(|body| {
            body.iter()
                .map(|instr| match *instr {
                    Instr::Act(action) => internal_letter(action),
                    Instr::Call(slot) => b'0' + slot.min(9),
                })
                .collect()
        })
        .collect();
    let slices: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
    let mut out = Vec::new();
    rename_by_first_use(&slices, &mut out).then_some(out)
}

/// The program of compact bytes, with `slots` subroutine slots (at least as many as it uses).
pub(crate) fn program_of_bytes(bytes: &[u8], slots: usize) -> Program {
    let mut routines: Vec<Vec<Instr>> = routines_of(bytes)
        .map(|body| {
            body.iter()
                .filter_map(|&b| {
                    if b.is_ascii_digit() {
                        Some(Instr::Call(b - b'0'))
                    } else {
                        action_of_internal(b).map(Instr::Act)
                    }
                })
                .collect()
        })
        .collect();
    if routines.len() < slots + 1 {
        routines.resize(slots + 1, Vec::new());
    }
    Program { routines }
}

/// Compact bytes in the published letters (S J W R L and digits), trailing empty slots left out.
pub(crate) fn readable_compact(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match action_of_internal(b) {
            Some(action) => action.letter(),
            None => char::from(b),
        })
        .collect()
}
