//! Canonicalisation (`dsl::canon`, docs/semantics.md §3.3) of a parsed program on a bundled task.
//!
//! Input: byte 0 picks the task (`a`..`j` are the `correa2025` tasks, `p` the practice level, any
//! other byte a task by its value modulo 11); byte 1 picks the passes (a space: all of them, the
//! default; any other byte: its low seven bits switch passes 1, 2, 4, 5, 6, 7 and 8); the rest is
//! a program in either text form. So the seed `c 1LJL1RJR1|WWWS|||` is the paper's running
//! example on task c.
//!
//! Properties, only those the docs promise:
//! - never a panic;
//! - `ExecError::Unsolved` exactly when the program does not solve the task (whatever passes are
//!   on); a solving program is canonicalised or refused only as `ExecError::TooLong`;
//! - the canonical program has as many slots as the input and solves the task under the
//!   idempotent meaning of Light (docs/semantics.md §1.5: canonicalisation preserves behaviour
//!   under that meaning only; nothing is promised under `LightMode::Toggle`). It is run with a
//!   budget far above the interpreter's 1000 tokens: pass 1 may add call tokens
//!   (docs/semantics.md §3.3), so only the goal, not the token count, is preserved;
//! - canonicalisation is deterministic, and canonicalising the canonical program succeeds too
//!   (it solves the task). It is *not* asserted to be idempotent: docs/semantics.md §3.3 lists
//!   programs of the published data that change when canonicalised again;
//! - with pass 7 on, no routine of the result contains a rewritable no-op sequence (the rules are
//!   applied until a round changes nothing);
//! - with pass 8 on, the result is already numbered by first use (renaming it is the identity);
//! - the compact form of the result round-trips.

#![no_main]

use dsl::canon::{CanonOptions, canonicalise, rename_by_first_use};
use dsl::tasks::correa2025;
use dsl::{
    Action, ExecError, Instr, Limits, Program, RunOptions, Task, compact, parse_program, run,
    step_classes,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [task_byte, options_byte, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let task = pick_task(*task_byte);
    let options = pick_options(*options_byte);
    let Ok(program) = parse_program(text, None, &Limits::default()) else {
        return;
    };

    let solved = run(task, &program, &RunOptions::default()).solved;
    let result = canonicalise(task, &program, &options);
    let canonical = match result {
        Err(ExecError::Unsolved) => {
            assert!(
                !solved,
                "a solving program was refused as unsolved: {program}"
            );
            return;
        }
        Err(ExecError::TooLong(_)) => {
            assert!(
                solved,
                "an unsolved program was not refused as unsolved: {program}"
            );
            return;
        }
        Ok(canonical) => canonical,
    };
    assert!(solved, "an unsolved program was canonicalised: {program}");
    assert_eq!(canonical.routines.len(), program.routines.len());
    // Pass 1 can add call tokens, which count against the interpreter's budget, so the canonical
    // form is run without that limit mattering: the extra calls at most multiply the tokens by the
    // depth of the call chains pass 1 builds (at most the number of slots).
    let outcome = run(
        task,
        &canonical,
        &RunOptions {
            budget: 1_000_000,
            ..RunOptions::default()
        },
    );
    assert!(
        outcome.solved,
        "{program} solves {} but its canonical form {canonical} does not ({outcome:?})",
        task.source
    );
    // Step classes are defined for the canonical form whenever it solves the task within the
    // interpreter's budget (docs/semantics.md §1.8).
    if run(task, &canonical, &RunOptions::default()).solved {
        assert!(!matches!(
            step_classes(task, &canonical),
            Err(ExecError::Unsolved)
        ));
    }

    assert_eq!(
        canonicalise(task, &program, &options).as_ref(),
        Ok(&canonical),
        "canonicalisation is deterministic"
    );
    // A canonical form may need more tokens than the budget (docs/semantics.md §3.3): only one
    // that solves the task within it is a program that solves the task, never refused.
    if run(task, &canonical, &RunOptions::default()).solved {
        assert!(
            !matches!(
                canonicalise(task, &canonical, &options),
                Err(ExecError::Unsolved)
            ),
            "the canonical form {canonical} of {program} is refused as unsolved"
        );
    }

    if options.rewrite_noops {
        for routine in &canonical.routines {
            assert_no_rewritable_sequence(routine, &canonical);
        }
    }
    if options.rename {
        assert_eq!(
            rename_by_first_use(&canonical),
            canonical,
            "the result of pass 8 is numbered by first use"
        );
    }

    let printed = compact::print(&canonical);
    let wide = Limits {
        subroutines: canonical.n_subroutines(),
        max_routine_len: usize::MAX,
    };
    assert_eq!(compact::parse(&printed, &wide).as_ref(), Ok(&canonical));
});

fn pick_task(byte: u8) -> &'static Task {
    let set = correa2025();
    let all: Vec<&'static Task> = set
        .tasks
        .iter()
        .chain(&set.practice)
        .map(|named| &named.task)
        .collect();
    let index = match byte {
        b'a'..=b'j' => (byte - b'a') as usize,
        b'p' => 10,
        _ => byte as usize % all.len(),
    };
    all[index]
}

fn pick_options(byte: u8) -> CanonOptions {
    if byte == b' ' {
        return CanonOptions::default();
    }
    let bit = |i: u8| byte & (1 << i) != 0;
    CanonOptions {
        maximise_reuse: bit(0),
        drop_dead: bit(1),
        remove_unused: bit(2),
        inline_single_use: bit(3),
        inline_length_one: bit(4),
        rewrite_noops: bit(5),
        rename: bit(6),
    }
}

/// The patterns of pass 7 (docs/semantics.md §3.3).
fn assert_no_rewritable_sequence(routine: &[Instr], program: &Program) {
    use Action::{Left, Light, Right};
    let patterns: [&[Action]; 7] = [
        &[Light, Light],
        &[Right, Left],
        &[Left, Right],
        &[Left, Light],
        &[Right, Light],
        &[Right, Right, Right],
        &[Left, Left, Left],
    ];
    for pattern in patterns {
        let pattern: Vec<Instr> = pattern.iter().map(|&a| Instr::Act(a)).collect();
        assert!(
            !routine.windows(pattern.len()).any(|w| w == pattern),
            "{program} still contains {pattern:?} after pass 7"
        );
    }
}
