//! The compact program parser on arbitrary UTF-8.
//!
//! Properties (docs/semantics.md §3.1, dsl/README.md):
//! - parsing never panics; an error has a 1-based position on line 1 inside the text (or just
//!   past its end) and a message;
//! - a parsed program passes `Program::check` and has exactly `limits.subroutines` slots;
//! - round trip: `parse(print(p)) == p`, and printed text prints back unchanged;
//! - both forms agree: the readable form of `p` parses back to `p`, and `parse_program` detects
//!   the compact form of printed text.

#![no_main]

use dsl::{Form, Limits, compact, parse_program, readable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for limits in [
        Limits::default(),
        Limits {
            subroutines: 9,
            max_routine_len: 1000,
        },
        Limits {
            subroutines: 1,
            max_routine_len: 3,
        },
    ] {
        check(text, &limits);
    }
});

fn check(text: &str, limits: &Limits) {
    match compact::parse(text, limits) {
        Ok(program) => {
            assert_eq!(program.routines.len(), limits.subroutines + 1);
            program
                .check(limits)
                .unwrap_or_else(|e| panic!("{text:?} parsed but fails the limits: {e}"));
            let printed = compact::print(&program);
            let again = compact::parse(&printed, limits)
                .unwrap_or_else(|e| panic!("printed form {printed:?} does not parse: {e}"));
            assert_eq!(again, program, "compact round trip of {printed:?}");
            assert_eq!(compact::print(&again), printed, "printed text prints back");
            assert!(compact::looks_compact(&printed));
            assert_eq!(
                parse_program(&printed, None, limits).as_ref(),
                Ok(&program),
                "form detection of {printed:?}"
            );

            let readable_text = readable::print(&program);
            let from_readable = readable::parse(&readable_text, limits)
                .unwrap_or_else(|e| panic!("readable form {readable_text:?} does not parse: {e}"));
            assert_eq!(from_readable, program, "readable form {readable_text:?}");
        }
        Err(error) => {
            assert!(!error.message.is_empty());
            assert_eq!(error.line, 1, "{error}");
            assert!(
                (1..=text.chars().count() + 1).contains(&error.column),
                "column out of the text {text:?}: {error}"
            );
        }
    }
    // The entry point that picks the form must agree with the form's own parser.
    let detected = parse_program(text, None, limits);
    if compact::looks_compact(text) {
        assert_eq!(detected, compact::parse(text.trim(), limits));
    } else {
        assert_eq!(detected, readable::parse(text, limits));
    }
    assert_eq!(
        parse_program(text, Some(Form::Compact), limits),
        compact::parse(text.trim(), limits)
    );
}
