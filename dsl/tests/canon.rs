//! Canonicalisation (docs/semantics.md §3.3) against the published `preprocessed_program` column,
//! the documented examples and quirks, the pass switches, and programs that do not solve their
//! task.

use std::time::{Duration, Instant};

use dsl::canon::{CanonOptions, canonicalise, rename_by_first_use, rewrite_noops};
use dsl::tasks::{correa2025, lookup};
use dsl::{ExecError, Instr, Limits, Program, RunOptions, Task, compact, run};

fn program(text: &str) -> Program {
    compact::parse(text, &Limits::default()).expect("test program parses")
}

fn task(label: &str) -> &'static Task {
    &lookup(&format!("correa2025/{label}"))
        .expect("bundled task")
        .task
}

/// The compact form of `text` canonicalised on task `label` with `options`.
fn canon_with(label: &str, text: &str, options: &CanonOptions) -> String {
    canonicalise(task(label), &program(text), options)
        .unwrap_or_else(|e| panic!("{text} on task {label}: {e}"))
        .to_compact()
}

fn canon(label: &str, text: &str) -> String {
    canon_with(label, text, &CanonOptions::default())
}

/// A routine written with the compact letters.
fn routine(text: &str) -> Vec<Instr> {
    program(text).routines[0].clone()
}

fn letters(routine: &[Instr]) -> String {
    routine.iter().map(|instr| instr.letter()).collect()
}

/// One non-skipped row of the development data.
struct Row {
    participant: String,
    mdp_idx: usize,
    program: String,
    preprocessed: String,
}

fn dev_rows() -> Vec<Row> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../analysis/data/programs-dev.csv"
    );
    let mut reader = csv::Reader::from_path(path).expect("programs-dev.csv opens");
    let headers = reader.headers().expect("header row").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("programs-dev.csv lacks column {name}"))
    };
    let (participant, mdp, skipped, raw, pre) = (
        column("participant_idx"),
        column("mdp_idx"),
        column("skipped"),
        column("program"),
        column("preprocessed_program"),
    );
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.expect("csv row");
        if &record[skipped] == "True" {
            continue;
        }
        rows.push(Row {
            participant: record[participant].to_owned(),
            mdp_idx: record[mdp].parse().expect("mdp_idx is a number"),
            program: record[raw].to_owned(),
            preprocessed: record[pre].to_owned(),
        });
    }
    rows
}

#[test]
fn every_preprocessed_program_of_the_dev_data_is_reproduced() {
    let rows = dev_rows();
    let mut mismatches = Vec::new();
    for row in &rows {
        let task = &correa2025().tasks[row.mdp_idx].task;
        let got = canonicalise(task, &program(&row.program), &CanonOptions::default())
            .map(|p| p.to_compact())
            .unwrap_or_else(|e| format!("error: {e}"));
        if got != row.preprocessed {
            mismatches.push(format!(
                "participant {} task {}: {} -> {} (expected {})",
                row.participant, row.mdp_idx, row.program, got, row.preprocessed
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} rows match; mismatches:\n{}",
        rows.len() - mismatches.len(),
        rows.len(),
        mismatches.join("\n")
    );
    assert_eq!(rows.len(), 1162, "non-skipped rows of programs-dev.csv");
}

#[test]
fn canonical_programs_of_the_dev_data_still_solve_their_task() {
    for row in dev_rows() {
        let task = &correa2025().tasks[row.mdp_idx].task;
        let canonical =
            canonicalise(task, &program(&row.program), &CanonOptions::default()).expect("solves");
        assert!(
            run(task, &canonical, &RunOptions::default()).solved,
            "participant {} task {}: {canonical} does not solve",
            row.participant,
            row.mdp_idx
        );
    }
}

// The examples of docs/semantics.md §3.3, each on the task its row of the data belongs to.

#[test]
fn a_single_use_subroutine_is_inlined_and_ll_is_kept() {
    assert_eq!(canon("a", "1|JRWSLJRWSLLWJS|||"), "JRWSLJRWSLLWJS||||");
}

#[test]
fn the_running_example_keeps_its_shared_subroutine_and_inlines_the_others() {
    assert_eq!(canon("c", "12131|WWWS|LJL|RJR|"), "1LJL1RJR1|WWWS|||");
}

#[test]
fn a_length_one_subroutine_is_inlined() {
    assert_eq!(canon("b", "113131R111R1R1|WS||L|"), "11L1L1R111R1R1|WS|||");
}

#[test]
fn reuse_then_inlining_then_renaming_combine() {
    assert_eq!(canon("a", "123|JRWS|WLJS|JLWWLJS|"), "JRWS1JLW1|WLJS|||");
}

#[test]
fn every_copy_of_a_subroutine_body_becomes_a_call() {
    assert_eq!(canon("h", "L1223R13|JSJS|R1|RJS|"), "L122323|JSJS|R1|RJS|");
}

#[test]
fn a_light_moves_before_a_turn() {
    assert_eq!(canon("j", "11JS|JJRSWLJ|||"), "11JS|JJSRWLJ|||");
}

#[test]
fn a_subroutine_never_called_is_dropped() {
    assert_eq!(canon("j", "JJSRWLJJSRWLJJS||2||"), "JJSRWLJJSRWLJJS||||");
}

#[test]
fn a_blocked_walk_is_dropped() {
    assert_eq!(
        canon("e", "JWWRWSJWWRJWSJRWJS||||"),
        "JWRWSJWWRJWSJRWJS||||"
    );
}

#[test]
fn subroutines_are_renumbered_by_first_use() {
    assert_eq!(
        canon("g", "11RJS3R2R3L2L3|JSJ|JJS|WS|"),
        "11RJS2R3R2L3L2|JSJ|WS|JJS|"
    );
}

// The quirks of docs/semantics.md §3.3.

#[test]
fn maximising_reuse_is_a_single_pass() {
    // A fixed point would also turn the `JS` left in P1 into a call to P2, and then `LJ` ... into
    // `L2` in main; the reference stops after one pass (participant 72, task i).
    assert_eq!(canon("i", "W1WJL21WR2|LJS|JS||"), "W1WJL21WR2|L2|JS||");
}

#[test]
fn a_canonical_program_is_not_always_a_fixed_point() {
    let once = canon("b", "1122RWW344|WS|LWS|SWS|RWS");
    assert_eq!(once, "1122RWWS133|WS|L1|R1|", "participant 40, task b");
    assert_eq!(canon("b", &once), "1122RW1133|WS|L1|R1|");
}

#[test]
fn calls_to_an_empty_subroutine_are_kept() {
    let text = "JSJJS1JWRWRJSLWSLLWLJ1JSLWSRJJSRWS||||";
    assert_eq!(canon("g", text), text, "participant 68, task g");
}

#[test]
fn reference_counting_stops_scanning_a_body_at_a_recursive_call() {
    // With dead code kept, the `2` after the recursive call is never counted, so P2 counts as
    // unused and is cleared; counted, it would be inlined as `SS` and rewritten to `S`.
    let options = CanonOptions {
        drop_dead: false,
        rename: false,
        ..CanonOptions::default()
    };
    assert_eq!(
        canon_with("j", "1|JJSRWL12|SS||", &options),
        "1|JJSRWL12|||"
    );
}

#[test]
fn chained_single_use_subroutines_are_all_inlined() {
    // P3 is called once from P1 and P1 once from main. Inlining P1 first copies its call to P3
    // into main, and P3 is then inlined there.
    assert_eq!(canon("a", "1|JRW3||SLJRWSLLWJS|"), "JRWSLJRWSLLWJS||||");
}

#[test]
fn the_result_keeps_the_input_number_of_slots() {
    let limits = Limits {
        subroutines: 6,
        ..Limits::default()
    };
    let six = compact::parse("1|JRWSLJRWSLLWJS|||||", &limits).expect("parses");
    let canonical = canonicalise(task("a"), &six, &CanonOptions::default()).expect("solves");
    assert_eq!(canonical.to_compact(), "JRWSLJRWSLLWJS||||||");
    let limits = Limits {
        subroutines: 2,
        ..Limits::default()
    };
    let two = compact::parse("12131|WWWS|LJL", &limits);
    assert!(two.is_err(), "a call to slot 3 does not fit two slots");
    let two = compact::parse("1LJL1RJR1|WWWS|", &limits).expect("parses");
    assert_eq!(
        canonicalise(task("c"), &two, &CanonOptions::default())
            .expect("solves")
            .to_compact(),
        "1LJL1RJR1|WWWS|"
    );
}

// Each switch turns its pass off.

#[test]
fn with_no_pass_switched_on_a_solving_program_is_unchanged() {
    let off = CanonOptions {
        maximise_reuse: false,
        drop_dead: false,
        remove_unused: false,
        inline_single_use: false,
        inline_length_one: false,
        rewrite_noops: false,
        rename: false,
    };
    for text in ["123|JRWS|WLJS|JLWWLJS|", "1|JRWSLJRWSLLWJS|||"] {
        assert_eq!(canon_with("a", text, &off), text);
    }
}

#[test]
fn switching_off_maximise_reuse_keeps_the_copies() {
    let options = CanonOptions {
        maximise_reuse: false,
        ..CanonOptions::default()
    };
    assert_eq!(
        canon_with("h", "L1223R13|JSJS|R1|RJS|", &options),
        "L1223R13|JSJS|R1|RJS|"
    );
}

#[test]
fn switching_off_drop_dead_keeps_the_blocked_walk() {
    let options = CanonOptions {
        drop_dead: false,
        ..CanonOptions::default()
    };
    assert_eq!(
        canon_with("e", "JWWRWSJWWRJWSJRWJS||||", &options),
        "JWWRWSJWWRJWSJRWJS||||"
    );
}

#[test]
fn switching_off_remove_unused_keeps_a_subroutine_nothing_calls() {
    // Dead-code removal and renaming would also drop P2, so they are off on both sides.
    let base = CanonOptions {
        drop_dead: false,
        rename: false,
        ..CanonOptions::default()
    };
    let off = CanonOptions {
        remove_unused: false,
        ..base
    };
    assert_eq!(
        canon_with("j", "JJSRWLJJSRWLJJS||2W||", &base),
        "JJSRWLJJSRWLJJS||||"
    );
    assert_eq!(
        canon_with("j", "JJSRWLJJSRWLJJS||2W||", &off),
        "JJSRWLJJSRWLJJS||2W||"
    );
}

#[test]
fn switching_off_inline_single_use_keeps_the_subroutine() {
    let options = CanonOptions {
        inline_single_use: false,
        ..CanonOptions::default()
    };
    assert_eq!(
        canon_with("a", "1|JRWSLJRWSLLWJS|||", &options),
        "1|JRWSLJRWSLLWJS|||"
    );
}

#[test]
fn switching_off_inline_length_one_keeps_the_one_token_subroutine() {
    let options = CanonOptions {
        inline_length_one: false,
        ..CanonOptions::default()
    };
    assert_eq!(
        canon_with("b", "113131R111R1R1|WS||L|", &options),
        "112121R111R1R1|WS|L||"
    );
}

#[test]
fn switching_off_rewrite_noops_keeps_the_turn_before_the_light() {
    let options = CanonOptions {
        rewrite_noops: false,
        ..CanonOptions::default()
    };
    assert_eq!(
        canon_with("j", "11JS|JJRSWLJ|||", &options),
        "11JS|JJRSWLJ|||"
    );
}

#[test]
fn switching_off_rename_keeps_the_slot_numbers() {
    let options = CanonOptions {
        rename: false,
        ..CanonOptions::default()
    };
    assert_eq!(
        canon_with("g", "11RJS3R2R3L2L3|JSJ|JJS|WS|", &options),
        "11RJS3R2R3L2L3|JSJ|JJS|WS|"
    );
}

// Passes 7 and 8 on their own.

#[test]
fn no_op_rewrites_apply_until_nothing_changes() {
    for (before, after) in [
        ("SS", "S"),
        ("SSS", "S"),
        ("WRLJ", "WJ"),
        ("WLRJ", "WJ"),
        ("LS", "SL"),
        ("RRS", "SRR"),
        ("RRR", "L"),
        ("LLL", "R"),
        ("LL", "LL"),
        ("RR", "RR"),
        ("LLLL", ""),
        ("RLSLR", "S"),
        ("L1S", "L1S"),
        ("LSSR", "S"),
    ] {
        assert_eq!(letters(&rewrite_noops(&routine(before))), after, "{before}");
    }
}

#[test]
fn renaming_follows_the_first_call_and_drops_unreached_subroutines() {
    let renamed = rename_by_first_use(&program("3J2|S|W3|L|JJ"));
    assert_eq!(renamed.to_compact(), "1J2|L|W1||");
}

#[test]
fn renaming_renames_calls_inside_recursive_bodies() {
    assert_eq!(
        rename_by_first_use(&program("2|W|JS2||")).to_compact(),
        "1|JS1|||"
    );
}

#[test]
fn renaming_names_a_call_found_after_a_recursive_call() {
    // The reference walk stops at the recursion and would fail on the `3`; this one names it.
    assert_eq!(
        rename_by_first_use(&program("2|W|J23|S|")).to_compact(),
        "1|J12|S||"
    );
}

// Programs that do not solve the task.

#[test]
fn programs_that_do_not_solve_the_task_fail_promptly() {
    let every_pass = CanonOptions::default();
    let no_pass = CanonOptions {
        maximise_reuse: false,
        drop_dead: false,
        remove_unused: false,
        inline_single_use: false,
        inline_length_one: false,
        rewrite_noops: false,
        rename: false,
    };
    for text in ["1|1", "1|11", "1|W1", "JJJ||||", ""] {
        for options in [&every_pass, &no_pass] {
            let start = Instant::now();
            let result = canonicalise(task("c"), &program(text), options);
            assert_eq!(result, Err(ExecError::Unsolved), "{text}");
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{text} took {:?}",
                start.elapsed()
            );
        }
    }
}
