//! The compact and readable program forms: round trips, errors and limits.

use dsl::{Action, Form, Instr, Limits, Program, compact, parse_program, readable};
use proptest::prelude::*;

fn instr() -> impl Strategy<Value = Instr> {
    prop_oneof![
        4 => prop::sample::select(Action::ALL.to_vec()).prop_map(Instr::Act),
        1 => (1u8..=4).prop_map(Instr::Call),
    ]
}

/// Any program with 4 slots, calls to empty subroutines included.
fn any_program() -> impl Strategy<Value = Program> {
    prop::collection::vec(prop::collection::vec(instr(), 0..12), 5)
        .prop_map(|routines| Program { routines })
}

proptest! {
    #[test]
    fn compact_parse_inverts_print(p in any_program()) {
        let text = compact::print(&p);
        prop_assert_eq!(compact::parse(&text, &Limits::default()).unwrap(), p);
    }

    #[test]
    fn readable_parse_inverts_print(p in any_program()) {
        let text = readable::print(&p);
        prop_assert_eq!(readable::parse(&text, &Limits::default()).unwrap(), p.clone());
        // Printed text prints back unchanged.
        prop_assert_eq!(readable::print(&readable::parse(&text, &Limits::default()).unwrap()), text);
    }

    #[test]
    fn both_forms_agree(p in any_program()) {
        let from_readable = parse_program(&readable::print(&p), None, &Limits::default()).unwrap();
        let from_compact = parse_program(&compact::print(&p), None, &Limits::default()).unwrap();
        prop_assert_eq!(from_readable, from_compact);
    }
}

#[test]
fn short_compact_forms_are_padded_with_empty_subroutines() {
    let p = compact::parse("1LJL1RJR1|WWWS", &Limits::default()).unwrap();
    assert_eq!(compact::print(&p), "1LJL1RJR1|WWWS|||");
}

#[test]
fn readable_form_accepts_comments_free_white_space_and_any_block_order() {
    let text = "# the running example\n  p1 {walk,walk walk\n light}\nmain {\n p1 left jump left # go up\n p1 right jump right p1 }\n";
    let p = readable::parse(text, &Limits::default()).unwrap();
    assert_eq!(compact::print(&p), "1LJL1RJR1|WWWS|||");
    assert_eq!(
        readable::print(&p),
        "main { p1 left jump left p1 right jump right p1 }\np1 { walk walk walk light }\n"
    );
}

#[test]
fn readable_form_writes_called_empty_subroutines() {
    let p = compact::parse("2WWWS|||", &Limits::default()).unwrap();
    assert_eq!(
        readable::print(&p),
        "main { p2 walk walk walk light }\np2 {}\n"
    );
}

fn readable_error(text: &str, limits: &Limits) -> String {
    readable::parse(text, limits).unwrap_err().to_string()
}

#[test]
fn readable_parse_errors_give_line_column_and_what_was_expected() {
    let limits = Limits::default();
    assert_eq!(
        readable_error("main {\n  walk hop\n}", &limits),
        "2:8: expected an instruction (walk, jump, left, right, light) or a call such as `p1`"
    );
    assert_eq!(
        readable_error("main { walk", &limits),
        "1:12: expected an instruction (walk, jump, left, right, light) or a call such as `p1`"
    );
    assert_eq!(
        readable_error("p1 { walk }", &limits),
        "1:12: expected a `main { ... }` block"
    );
    assert_eq!(
        readable_error("main {}\nmain {}", &limits),
        "2:1: main is defined twice"
    );
}

#[test]
fn calls_beyond_the_configured_subroutines_are_errors() {
    let two = Limits {
        subroutines: 2,
        ..Limits::default()
    };
    assert_eq!(
        readable_error("main { p3 }", &two),
        "1:8: no subroutine `p3`: this program may use p1 to p2"
    );
    assert_eq!(
        readable_error("main {}\np5 { walk }", &two),
        "2:1: no subroutine `p5`: this program may use p1 to p2"
    );
    assert_eq!(
        compact::parse("W3||", &two).unwrap_err().to_string(),
        "1:2: call to subroutine 3, but only 1 to 2 exist"
    );
    assert_eq!(
        compact::parse("W|W|W|W", &two).unwrap_err().to_string(),
        "1:6: too many `|` fields: at most main plus 2 subroutines"
    );
    assert!(compact::parse("W0", &Limits::default()).is_err());
    assert_eq!(
        compact::parse("WX", &Limits::default())
            .unwrap_err()
            .to_string(),
        "1:2: unexpected `X`: expected one of S J W R L, a subroutine number or `|`"
    );
}

#[test]
fn over_long_routines_are_errors() {
    let short = Limits {
        max_routine_len: 3,
        ..Limits::default()
    };
    assert!(
        compact::parse("WWWW", &short)
            .unwrap_err()
            .to_string()
            .contains("limit is 3")
    );
    assert!(
        readable_error("main { walk walk walk walk }", &short)
            .contains("longer than the limit of 3")
    );
    let long = Program {
        routines: vec![
            vec![Instr::Act(Action::Walk); 4],
            vec![],
            vec![],
            vec![],
            vec![],
        ],
    };
    assert!(long.check(&short).is_err());
    assert!(long.check(&Limits::default()).is_ok());
}

#[test]
fn the_form_is_detected_or_forced() {
    let limits = Limits::default();
    assert!(parse_program("main { walk }", None, &limits).is_ok());
    assert!(parse_program("W|||", None, &limits).is_ok());
    assert!(parse_program("W|||", Some(Form::Readable), &limits).is_err());
}
