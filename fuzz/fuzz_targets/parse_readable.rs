//! The readable program parser (`dsl/src/grammar.pest`) on arbitrary UTF-8.
//!
//! Properties (docs/semantics.md §3.1, dsl/src/readable.rs):
//! - parsing never panics; an error has a 1-based line and column inside the text (or just past
//!   its end) and a message;
//! - a parsed program passes `Program::check` and has exactly `limits.subroutines` slots;
//! - round trip: `parse(print(p)) == p`, and printed text prints back unchanged;
//! - the compact form of `p` parses back to `p`, and `parse_program` detects the readable form of
//!   printed text.

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
    match readable::parse(text, limits) {
        Ok(program) => {
            assert_eq!(program.routines.len(), limits.subroutines + 1);
            program
                .check(limits)
                .unwrap_or_else(|e| panic!("{text:?} parsed but fails the limits: {e}"));
            let printed = readable::print(&program);
            let again = readable::parse(&printed, limits)
                .unwrap_or_else(|e| panic!("printed form {printed:?} does not parse: {e}"));
            assert_eq!(again, program, "readable round trip of {printed:?}");
            assert_eq!(readable::print(&again), printed, "printed text prints back");
            assert!(!compact::looks_compact(&printed));
            assert_eq!(
                parse_program(&printed, None, limits).as_ref(),
                Ok(&program),
                "form detection of {printed:?}"
            );

            let compact_text = compact::print(&program);
            let from_compact = compact::parse(&compact_text, limits)
                .unwrap_or_else(|e| panic!("compact form {compact_text:?} does not parse: {e}"));
            assert_eq!(from_compact, program, "compact form {compact_text:?}");
        }
        Err(error) => {
            assert!(!error.message.is_empty());
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&error.line),
                "line out of the text {text:?}: {error}"
            );
            let line_chars = text
                .split('\n')
                .nth(error.line - 1)
                .map_or(0, |line| line.chars().count());
            assert!(
                (1..=line_chars + 1).contains(&error.column),
                "column out of line {} of {text:?}: {error}",
                error.line
            );
        }
    }
    assert_eq!(
        parse_program(text, Some(Form::Readable), limits),
        readable::parse(text, limits)
    );
}
