//! Golden tests of the candidate enumeration: the unit examples of docs/modelling.md §4.2 and the
//! candidate set sizes of docs/modelling.md §4.3 for every task of the reference study.

use std::collections::{HashMap, HashSet};

use analysis::StatKey;
use analysis::enumerate::{
    Enumeration, candidate_traces, candidates, compress_internal, compress_trace, enumerate_task,
    normal_form, readable_traces,
};
use dsl::{Action, Instr, Limits, Program, RunOptions};

fn task(label: &str) -> &'static dsl::Task {
    &dsl::tasks::lookup(&format!("correa2025/{label}"))
        .expect("bundled task")
        .task
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

fn actions(readable: &str) -> Vec<Action> {
    readable
        .chars()
        .map(|c| Action::from_letter(c).expect("a primitive letter"))
        .collect()
}

fn parse(compact: &str) -> Program {
    dsl::compact::parse(compact, &Limits::default()).expect("valid compact program")
}

#[test]
fn ababa_gives_exactly_the_six_programs_of_the_spec() {
    let programs = compress_internal("ABABA").unwrap();
    let expected = ["ABABA", "11A|AB", "A11|BA", "A1|BA1", "1|AB1", "111|AB"];
    assert_eq!(
        sorted(programs),
        sorted(expected.iter().map(|s| s.to_string()).collect())
    );
}

#[test]
fn abcabcab_gives_seventeen_programs() {
    let programs = compress_internal("ABCABCAB").unwrap();
    assert_eq!(programs.len(), 17, "{programs:?}");
    let unique: HashSet<_> = programs.iter().collect();
    assert_eq!(unique.len(), 17);
    // The flat trace and the two-fold repetition of ABC are among them.
    assert!(programs.contains(&"ABCABCAB".to_string()));
    assert!(programs.contains(&"11AB|ABC".to_string()));
}

#[test]
fn running_example_gives_the_seven_programs_of_the_spec() {
    let programs = compress_trace(&actions("WWWSLJLWWWSRJRWWWS")).unwrap();
    let got: Vec<String> = programs.iter().map(Program::to_compact).collect();
    let expected = [
        "1LJL1RJR1|WWWS|||",
        "1SLJL1SRJR1S|WWW|||",
        "W1LJLW1RJRW1|WWS|||",
        "WW1LJLWW1RJRWW1|WS|||",
        "1WSLJL1WSRJR1WS|WW|||",
        "12LJL12RJR12|WW|WS||",
        "WWWSLJLWWWSRJRWWWS||||",
    ];
    assert_eq!(
        sorted(got),
        sorted(expected.iter().map(|s| s.to_string()).collect())
    );
}

#[test]
fn every_compressed_program_executes_its_trace_on_the_task() {
    // The running example on task c: each program solves the map in exactly 18 effective steps.
    let task = task("c");
    for program in compress_trace(&actions("WWWSLJLWWWSRJRWWWS")).unwrap() {
        let outcome = dsl::run(task, &program, &RunOptions::default());
        assert!(outcome.solved, "{program}");
        assert_eq!(outcome.steps, 18, "{program}");
        assert_eq!(outcome.effective_steps, 18, "{program}");
    }
}

#[test]
fn bad_traces_are_errors_not_panics() {
    assert!(compress_internal("ABXAB").is_err());
    assert!(compress_internal(&"AB".repeat(40)).is_err());
    assert_eq!(compress_internal("").unwrap(), vec![String::new()]);
    assert_eq!(compress_internal("A").unwrap(), vec!["A".to_string()]);
}

/// docs/modelling.md §4.3: (label, traces, shortest, longest, programs).
const GOLDEN: [(&str, usize, usize, usize, u64); 10] = [
    ("a", 1124, 12, 20, 39_650),
    ("b", 2243, 21, 29, 6_742_493),
    ("c", 1502, 13, 21, 50_140),
    ("d", 2273, 22, 27, 1_221_589),
    ("e", 2111, 17, 23, 169_793),
    ("f", 1173, 25, 29, 1_540_267),
    ("g", 1720, 25, 31, 3_378_096),
    ("h", 1710, 19, 26, 1_314_242),
    ("i", 1809, 16, 24, 193_022),
    ("j", 1664, 13, 23, 109_323),
];

#[test]
fn trace_counts_and_lengths_match_the_spec_on_every_task() {
    for (label, traces, shortest, longest, _) in GOLDEN {
        let found = candidate_traces(task(label)).unwrap();
        assert_eq!(found.len(), traces, "task {label}");
        assert_eq!(found.first().unwrap().len(), shortest, "task {label}");
        assert_eq!(found.last().unwrap().len(), longest, "task {label}");
        // Fewer than 1000 traces are strictly shorter than the longest (L* is the smallest bound).
        assert!(
            found.iter().filter(|t| t.len() < longest).count() < 1000,
            "task {label}"
        );
    }
}

#[test]
fn traces_are_valid_unique_and_free_of_noop_patterns() {
    let task = task("c");
    let traces = readable_traces(task).unwrap();
    let unique: HashSet<_> = traces.iter().collect();
    assert_eq!(unique.len(), traces.len());
    for trace in &traces {
        for pattern in ["SS", "RL", "LR", "LS", "RS", "RRR", "LLL"] {
            assert!(!trace.contains(pattern), "{trace} contains {pattern}");
        }
        let program = parse(trace);
        let outcome = dsl::run(task, &program, &RunOptions::default());
        assert!(outcome.solved, "{trace}");
        assert_eq!(
            outcome.effective_steps as usize,
            trace.len(),
            "{trace} has a blocked move"
        );
    }
}

fn check_golden(label: &str, enumeration: &Enumeration) {
    let (_, traces, shortest, longest, programs) = GOLDEN
        .iter()
        .copied()
        .find(|g| g.0 == label)
        .expect("golden row");
    assert_eq!(enumeration.traces, traces, "task {label}");
    assert_eq!(enumeration.min_trace_length, shortest, "task {label}");
    assert_eq!(enumeration.max_trace_length, longest, "task {label}");
    assert_eq!(enumeration.programs, programs, "task {label}");
    let total: u64 = enumeration.histogram.iter().map(|(_, n)| n).sum();
    assert_eq!(total, programs, "task {label}: histogram total");
    assert!(
        enumeration.histogram.windows(2).all(|w| w[0].0 < w[1].0),
        "task {label}: sorted keys"
    );
}

/// The distinct canonical (preprocessed) programs of the dev data per task, each with the number
/// of participants who wrote it.
fn dev_programs() -> Vec<Vec<(Program, usize)>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");
    let file = std::fs::File::open(path).expect("dev data");
    let data = analysis::data::read_programs(file).expect("readable dev data");
    assert!(data.errors.is_empty(), "{:?}", data.errors);
    let mut per_task: Vec<Vec<(String, usize)>> = vec![Vec::new(); 10];
    for (_, row) in data.rows.into_iter().filter(|(_, row)| !row.skipped) {
        let programs = &mut per_task[row.mdp_idx];
        match programs
            .iter_mut()
            .find(|(text, _)| *text == row.preprocessed_program)
        {
            Some((_, count)) => *count += 1,
            None => programs.push((row.preprocessed_program, 1)),
        }
    }
    per_task
        .iter()
        .map(|texts| texts.iter().map(|(text, n)| (parse(text), *n)).collect())
        .collect()
}

#[test]
fn program_counts_match_the_spec_on_every_task() {
    let dev = dev_programs();
    let (mut found, mut observed) = (0usize, 0usize);
    for (index, (label, ..)) in GOLDEN.iter().enumerate() {
        let task = task(label);
        let queries: Vec<Program> = dev[index].iter().map(|(p, _)| p.clone()).collect();
        let enumeration = enumerate_task(task, &queries).unwrap();
        check_golden(label, &enumeration);
        // Every participant program reported as enumerated solves the task without no-ops in a
        // candidate trace's length range, and its key is in the histogram.
        for ((program, count), &hit) in dev[index].iter().zip(&enumeration.found) {
            observed += count;
            if !hit {
                continue;
            }
            found += count;
            let classes = dsl::step_classes(task, program).unwrap();
            assert_eq!(classes.step_noop, 0, "task {label}: {program}");
            let s = classes.cost() as usize;
            assert!((enumeration.min_trace_length..=enumeration.max_trace_length).contains(&s));
            let key = StatKey::new(program, s as u32);
            assert!(
                enumeration.histogram.iter().any(|(k, _)| *k == key),
                "task {label}: {program}"
            );
        }
    }
    // docs/modelling.md §4.3: the enumeration covers about four in five of the canonical programs
    // people wrote.
    let coverage = found as f64 / observed as f64;
    assert!(
        (0.7..0.9).contains(&coverage),
        "coverage {coverage} ({found} of {observed})"
    );
}

#[test]
fn streaming_candidates_agree_with_the_enumeration_and_run_correctly() {
    let task = task("c");
    let enumeration = enumerate_task(task, &[]).unwrap();
    let mut seen = HashSet::new();
    let mut histogram: HashMap<StatKey, u64> = HashMap::new();
    for (index, (program, key)) in candidates(task).unwrap().enumerate() {
        let compact = program.to_compact();
        assert!(seen.insert(compact.clone()), "{compact} yielded twice");
        *histogram.entry(key).or_default() += 1;
        // A sample is executed: solved, no no-ops, step cost = S of the key.
        if index % 97 == 0 {
            let s = dsl::metrics::step_cost(task, &program).unwrap();
            assert_eq!(s, u32::from(key.s), "{compact}");
            assert_eq!(StatKey::new(&program, s), key, "{compact}");
            let classes = dsl::step_classes(task, &program).unwrap();
            assert_eq!(classes.step_noop, 0, "{compact}");
        }
    }
    assert_eq!(seen.len() as u64, enumeration.programs);
    let mut histogram: Vec<_> = histogram.into_iter().collect();
    histogram.sort_unstable();
    assert_eq!(histogram, enumeration.histogram);

    // The order is deterministic.
    let first: Vec<String> = candidates(task)
        .unwrap()
        .take(500)
        .map(|(p, _)| p.to_compact())
        .collect();
    let again: Vec<String> = candidates(task)
        .unwrap()
        .take(500)
        .map(|(p, _)| p.to_compact())
        .collect();
    assert_eq!(first, again);
}

#[test]
fn traces_never_share_programs() {
    // The per-trace deduplication relies on the union over traces being disjoint; check it with
    // a global set on two tasks.
    for label in ["a", "j"] {
        let task = task(label);
        let mut all = HashSet::new();
        let mut yielded = 0u64;
        for (program, _) in candidates(task).unwrap() {
            yielded += 1;
            all.insert(program);
        }
        assert_eq!(all.len() as u64, yielded, "task {label}");
    }
}

#[test]
fn queries_are_found_in_normal_form() {
    let task = task("c");
    let queries = [
        parse("1LJL1RJR1|WWWS|||"),
        // The same program with its subroutines in other slots: found after renaming.
        parse("34LJL34RJR34|||WW|WS"),
        parse("21LJL21RJR21|WS|WW||"),
        // Solves the task but is not enumerated (a no-op turn pair is never in a trace).
        parse("RL1LJL1RJR1|WWWS|||"),
        // A call to an empty subroutine.
        parse("1LJL1RJR12|WWWS|||"),
    ];
    let enumeration = enumerate_task(task, &queries).unwrap();
    assert_eq!(enumeration.found, vec![true, true, true, false, false]);
    assert_eq!(
        normal_form(&queries[1]).as_deref(),
        Some("12LJL12RJR12|WW|WS")
    );
}

#[test]
fn renaming_agrees_with_the_dsl_canonicaliser() {
    // Enumerated programs are fixed points of dsl's pass 8, and renaming a program with its slots
    // permuted gives back the same program, in both implementations.
    let task = task("c");
    let permutations: [[u8; 4]; 4] = [[2, 1, 3, 4], [4, 3, 2, 1], [3, 1, 4, 2], [2, 4, 1, 3]];
    let mut checked = 0;
    let mut recursive = 0;
    for (index, (program, _)) in candidates(task).unwrap().enumerate() {
        // A sample, plus every tail-recursive program (slot 1 ends by calling itself).
        let is_recursive = program.routines[1].last() == Some(&Instr::Call(1));
        if index % 13 != 0 && !is_recursive {
            continue;
        }
        checked += 1;
        recursive += usize::from(is_recursive);
        assert_eq!(dsl::canon::rename_by_first_use(&program), program);
        let normal = normal_form(&program).unwrap();
        let permutation = permutations[index % permutations.len()];
        let mut permuted = Program::empty(4);
        for (old, body) in program.routines.iter().enumerate() {
            let new = if old == 0 {
                0
            } else {
                permutation[old - 1] as usize
            };
            permuted.routines[new] = body
                .iter()
                .map(|instr| match *instr {
                    Instr::Call(k) => Instr::Call(permutation[k as usize - 1]),
                    other => other,
                })
                .collect();
        }
        assert_eq!(
            dsl::canon::rename_by_first_use(&permuted),
            program,
            "{permuted}"
        );
        assert_eq!(
            normal_form(&permuted).as_deref(),
            Some(normal.as_str()),
            "{permuted}"
        );
    }
    assert!(
        checked > 1000 && recursive > 10,
        "{checked} checked, {recursive} recursive"
    );
}
