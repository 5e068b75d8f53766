//! Canonicalisation (docs/semantics.md §3.3): the reference study's eight ordered preprocessing
//! passes.
//!
//! Each pass is a small function over [`Program`] values, run in the documented order
//! (docs/semantics.md §3.3) by [`canonicalise`]. The passes reproduce the reference quirks on
//! purpose, because the `preprocessed_program` column of the published data is the golden output:
//! maximising reuse is a single pass rather than a fixed point, reference counting stops scanning
//! a body at a recursive call, and the counts of pass 3 are not recomputed before inlining.
//!
//! Every walk here is bounded: the call-graph walks visit each routine at most once and use an
//! explicit stack, and the only execution (pass 2) is the walk of [`crate::steps`], capped at
//! [`crate::steps::WALK_CAP`] tokens, run only after [`canonicalise`] has checked that the program
//! solves the task.

use crate::error::ExecError;
use crate::interp::{RunOptions, run};
use crate::map::Task;
use crate::program::{Action, Instr, Program};
use crate::steps::{TerminalRecursion, walk_capped};

/// Which passes [`canonicalise`] runs; all are on by default. Pass 3 (counting references) only
/// feeds passes 4 and 5 and has no switch of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanonOptions {
    /// Pass 1: replace every copy of a subroutine's body by a call to it.
    pub maximise_reuse: bool,
    /// Pass 2: drop instructions that never do anything before the goal.
    pub drop_dead: bool,
    /// Pass 4: clear subroutines nothing calls.
    pub remove_unused: bool,
    /// Pass 5: inline subroutines called once.
    pub inline_single_use: bool,
    /// Pass 6: inline subroutines of one token.
    pub inline_length_one: bool,
    /// Pass 7: rewrite no-op sequences such as `RL` or `LS`.
    pub rewrite_noops: bool,
    /// Pass 8: renumber subroutines in order of first use.
    pub rename: bool,
}

impl Default for CanonOptions {
    fn default() -> CanonOptions {
        CanonOptions {
            maximise_reuse: true,
            drop_dead: true,
            remove_unused: true,
            inline_single_use: true,
            inline_length_one: true,
            rewrite_noops: true,
            rename: true,
        }
    }
}

/// Canonicalises a program that solves `task` (docs/semantics.md §3.3). The result has as many
/// slots as the input. A program that does not solve the task fails with [`ExecError::Unsolved`],
/// whatever passes are switched on.
pub fn canonicalise(
    task: &Task,
    program: &Program,
    options: &CanonOptions,
) -> Result<Program, ExecError> {
    // The only check that the program solves the task, so that the answer does not depend on the
    // options: the later passes keep what the program does.
    if !run(task, program, &RunOptions::default()).solved {
        return Err(ExecError::Unsolved);
    }
    let mut program = program.clone();
    if options.maximise_reuse {
        program = maximise_reuse(&program);
    }
    if options.drop_dead {
        program = drop_dead(task, &program)?;
    }
    let counts = count_references(&program);
    if options.remove_unused {
        program = remove_unused(&program, &counts);
    }
    if options.inline_single_use {
        program = inline_single_use(&program, &counts);
    }
    if options.inline_length_one {
        program = inline_length_one(&program);
    }
    if options.rewrite_noops {
        for routine in &mut program.routines {
            *routine = rewrite_noops(routine);
        }
    }
    if options.rename {
        program = rename_by_first_use(&program);
    }
    Ok(program)
}

/// Pass 8: renumbers subroutines in the order a depth-first walk from main first calls them, and
/// drops the subroutines the walk never reaches. The result has as many slots as the input.
///
/// The reference walk stops at the first recursion it meets, and fails if a call it has not
/// reached is left in a kept body. This walk instead goes on past recursive calls (without
/// entering them). Wherever the reference succeeds the two name the same subroutines in the same
/// order, since every reachable subroutine was then named before the first recursion; where the
/// reference would fail, this one still gives a program that does the same thing.
/// Calls to slots the program lacks are kept as they are.
pub fn rename_by_first_use(program: &Program) -> Program {
    let slots = program.routines.len();
    if slots == 0 {
        return program.clone();
    }
    let mut new_slot: Vec<Option<u8>> = vec![None; slots];
    let mut next = 1u8;
    // Each stack entry is (routine, next position); a routine enters the stack only when it is
    // first named, so the stack is at most `slots` deep.
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    while let Some(frame) = stack.last_mut() {
        let (routine, position) = *frame;
        let Some(&instr) = program.routines[routine].get(position) else {
            stack.pop();
            continue;
        };
        frame.1 += 1;
        if let Some(callee) = subroutine(instr, slots) {
            // A subroutine on the stack is already named, so recursive calls are not entered.
            if new_slot[callee].is_none() {
                new_slot[callee] = Some(next);
                next = next.saturating_add(1);
                stack.push((callee, 0));
            }
        }
    }
    let mut renamed = Program::empty(slots - 1);
    renamed.routines[0] = rename_calls(&program.routines[0], &new_slot);
    for (old, target) in new_slot.iter().enumerate() {
        if let Some(target) = *target {
            renamed.routines[target as usize] = rename_calls(&program.routines[old], &new_slot);
        }
    }
    renamed
}

/// Pass 7 on one routine: applies the no-op rewrite rules of docs/semantics.md §3.3, in order and
/// each as a global replacement, until a round changes nothing. `LL` is deliberately not rewritten
/// to `RR`.
pub fn rewrite_noops(routine: &[Instr]) -> Vec<Instr> {
    use Action::{Left, Light, Right};
    let rules: [(&[Action], &[Action]); 7] = [
        (&[Light, Light], &[Light]),
        (&[Right, Left], &[]),
        (&[Left, Right], &[]),
        (&[Left, Light], &[Light, Left]),
        (&[Right, Light], &[Light, Right]),
        (&[Right, Right, Right], &[Left]),
        (&[Left, Left, Left], &[Right]),
    ];
    let rules: Vec<(Vec<Instr>, Vec<Instr>)> = rules
        .iter()
        .map(|(pattern, replacement)| (acts(pattern), acts(replacement)))
        .collect();
    let mut current = routine.to_vec();
    // Every rule except the two swaps shortens the routine, and the swaps only move lights to the
    // left, so this terminates.
    loop {
        let mut next = current.clone();
        for (pattern, replacement) in &rules {
            next = replace_all(&next, pattern, replacement);
        }
        if next == current {
            return current;
        }
        current = next;
    }
}

/// Pass 1: for each subroutine in children-first order, replaces every copy of its (current,
/// non-empty) body in main and in the other subroutines by a call to it. One pass only, so the
/// result need not be a fixed point.
fn maximise_reuse(program: &Program) -> Program {
    let mut program = program.clone();
    for slot in children_first_order(&program) {
        let body = program.routines[slot].clone();
        if body.is_empty() {
            continue;
        }
        let call = [Instr::Call(slot as u8)];
        for routine in 0..program.routines.len() {
            if routine != slot {
                program.routines[routine] = replace_all(&program.routines[routine], &body, &call);
            }
        }
    }
    program
}

/// The order of pass 1: a depth-first walk from main appends each subroutine after the
/// subroutines it calls; a recursive call appends its target on the spot. Non-empty subroutines
/// the walk never reaches are then walked in slot order. Each subroutine appears once, at its
/// first placement (the published data gives the same results if a recursive target is placed
/// again when its walk ends, so this choice is not pinned down by it).
fn children_first_order(program: &Program) -> Vec<usize> {
    let slots = program.routines.len();
    let mut order: Vec<usize> = Vec::new();
    let mut visited = vec![false; slots];
    let place = |order: &mut Vec<usize>, slot: usize| {
        if slot != 0 && !order.contains(&slot) {
            order.push(slot);
        }
    };
    let roots = std::iter::once(0).chain(1..slots);
    for root in roots {
        if visited[root] || (root != 0 && program.routines[root].is_empty()) {
            continue;
        }
        visited[root] = true;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(frame) = stack.last_mut() {
            let (routine, position) = *frame;
            let Some(&instr) = program.routines[routine].get(position) else {
                stack.pop();
                place(&mut order, routine);
                continue;
            };
            frame.1 += 1;
            if let Some(callee) = subroutine(instr, slots) {
                if stack.iter().any(|&(r, _)| r == callee) {
                    place(&mut order, callee);
                } else if !visited[callee] {
                    visited[callee] = true;
                    stack.push((callee, 0));
                }
            }
        }
    }
    order
}

/// Pass 2: keeps only the instruction positions that are live in a walk without step limit
/// (docs/semantics.md §3.3): a primitive that changes the state at least once before the goal, or a
/// call token executed at least once before the goal (even a call to an empty subroutine). The walk
/// stops altogether at a recursive call made once the goal is reached.
fn drop_dead(task: &Task, program: &Program) -> Result<Program, ExecError> {
    let mut live: Vec<Vec<bool>> = program
        .routines
        .iter()
        .map(|body| vec![false; body.len()])
        .collect();
    // `canonicalise` has checked that the program it was given solves the task; pass 1 keeps what
    // the program does but may add call tokens, so the budget of that check is not applied again
    // here (it would refuse a solving program as unsolved). The walk is capped all the same.
    walk_capped(task, program, TerminalRecursion::StopAll, |visit| {
        if !visit.post_terminal && visit.effective {
            live[visit.routine][visit.position] = true;
        }
    })?;
    let routines = program
        .routines
        .iter()
        .zip(&live)
        .map(|(body, live)| {
            body.iter()
                .zip(live)
                .filter(|&(_, &keep)| keep)
                .map(|(&instr, _)| instr)
                .collect()
        })
        .collect();
    Ok(Program { routines })
}

/// Pass 3: how many call tokens name each slot (index = slot; index 0 stays 0), counted over the
/// bodies a depth-first walk from main visits, each at most once. A call to a routine on the
/// current call stack is counted and ends the scan of the body it is in (a reference quirk).
fn count_references(program: &Program) -> Vec<u32> {
    let slots = program.routines.len();
    let mut counts = vec![0u32; slots];
    let mut visited = vec![false; slots];
    visited[0] = true;
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    while let Some(frame) = stack.last_mut() {
        let (routine, position) = *frame;
        let Some(&instr) = program.routines[routine].get(position) else {
            stack.pop();
            continue;
        };
        frame.1 += 1;
        let Some(callee) = subroutine(instr, slots) else {
            continue;
        };
        counts[callee] += 1;
        if stack.iter().any(|&(r, _)| r == callee) {
            stack.pop();
        } else if !visited[callee] {
            visited[callee] = true;
            stack.push((callee, 0));
        }
    }
    counts
}

/// Pass 4: clears every subroutine with no references.
fn remove_unused(program: &Program, counts: &[u32]) -> Program {
    let mut program = program.clone();
    for (body, &count) in program.routines.iter_mut().zip(counts).skip(1) {
        if count == 0 {
            body.clear();
        }
    }
    program
}

/// Pass 5: in slot order, inlines every subroutine whose pass-3 count is exactly 1 (the counts
/// are deliberately not updated as bodies change) and clears it.
fn inline_single_use(program: &Program, counts: &[u32]) -> Program {
    let mut program = program.clone();
    let single_use = counts
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(_, &count)| count == 1);
    for (slot, _) in single_use {
        inline(&mut program, slot);
    }
    program
}

/// Pass 6: in slot order, inlines every subroutine whose body is one token and clears it.
fn inline_length_one(program: &Program) -> Program {
    let mut program = program.clone();
    for slot in 1..program.routines.len() {
        if program.routines[slot].len() == 1 {
            inline(&mut program, slot);
        }
    }
    program
}

/// Replaces every call to `slot` by its body and clears the slot. A subroutine that calls itself
/// is left alone: the reference asserts that this never happens, and inlining it would change
/// what the program does.
fn inline(program: &mut Program, slot: usize) {
    let call = Instr::Call(slot as u8);
    let body = std::mem::take(&mut program.routines[slot]);
    if body.contains(&call) {
        program.routines[slot] = body;
        return;
    }
    for routine in &mut program.routines {
        if routine.contains(&call) {
            *routine = replace_all(routine, &[call], &body);
        }
    }
}

/// The subroutine slot a token calls, if it is a call to a slot the program has.
fn subroutine(instr: Instr, slots: usize) -> Option<usize> {
    match instr {
        Instr::Call(slot) if slot != 0 && (slot as usize) < slots => Some(slot as usize),
        _ => None,
    }
}

/// A body with its calls renamed by `new_slot`; calls without a new name are kept.
fn rename_calls(body: &[Instr], new_slot: &[Option<u8>]) -> Vec<Instr> {
    body.iter()
        .map(|&instr| match instr {
            Instr::Call(slot) => match new_slot.get(slot as usize).copied().flatten() {
                Some(target) => Instr::Call(target),
                None => instr,
            },
            Instr::Act(_) => instr,
        })
        .collect()
}

fn acts(actions: &[Action]) -> Vec<Instr> {
    actions.iter().map(|&action| Instr::Act(action)).collect()
}

/// Replaces the non-overlapping copies of `pattern` in `haystack`, scanning left to right (the
/// semantics of Python's `str.replace`). `pattern` must not be empty.
fn replace_all(haystack: &[Instr], pattern: &[Instr], replacement: &[Instr]) -> Vec<Instr> {
    debug_assert!(!pattern.is_empty());
    let mut out = Vec::with_capacity(haystack.len());
    let mut index = 0;
    while index < haystack.len() {
        if haystack[index..].starts_with(pattern) {
            out.extend_from_slice(replacement);
            index += pattern.len();
        } else {
            out.push(haystack[index]);
            index += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::parse;
    use crate::program::Limits;

    fn program(text: &str) -> Program {
        parse(text, &Limits::default()).expect("test program parses")
    }

    #[test]
    fn children_come_before_the_subroutines_that_call_them() {
        assert_eq!(children_first_order(&program("1|23|W|J|")), vec![2, 3, 1]);
        assert_eq!(
            children_first_order(&program("123|JRWS|WLJS|JLWWLJS|")),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn a_recursive_call_places_its_target_on_the_spot() {
        assert_eq!(children_first_order(&program("1|2|1W||")), vec![1, 2]);
        assert_eq!(children_first_order(&program("1|W12|J||")), vec![1, 2]);
    }

    #[test]
    fn unreached_non_empty_subroutines_are_walked_in_slot_order() {
        assert_eq!(children_first_order(&program("W|||W|3")), vec![3, 4]);
        assert_eq!(children_first_order(&program("1|||4|S")), vec![1, 4, 3]);
    }

    #[test]
    fn replacement_is_left_to_right_and_non_overlapping() {
        let text = program("SSS").routines[0].clone();
        let pattern = program("SS").routines[0].clone();
        let got = replace_all(&text, &pattern, &[Instr::Call(1)]);
        assert_eq!(got, vec![Instr::Call(1), Instr::Act(Action::Light)]);
    }

    #[test]
    fn a_body_after_a_recursive_call_is_not_counted() {
        assert_eq!(
            count_references(&program("12|W12|S||W")),
            vec![0, 2, 1, 0, 0]
        );
    }
}
