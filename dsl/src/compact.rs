//! The compact form of the published data: `main|p1|p2|p3|p4` with the letters S J W R L and the
//! digits 1-9 for calls (docs/semantics.md §3.1).

use crate::error::ParseError;
use crate::program::{Action, Instr, Limits, Program};

/// Parses the compact form. Missing trailing fields are empty; the result always has
/// `limits.subroutines` slots.
pub fn parse(text: &str, limits: &Limits) -> Result<Program, ParseError> {
    let mut program = Program::empty(limits.subroutines);
    let mut column = 1usize;
    for (routine, field) in text.split('|').enumerate() {
        if routine > limits.subroutines {
            return Err(ParseError::new(
                1,
                column.saturating_sub(1).max(1),
                format!(
                    "too many `|` fields: at most main plus {} subroutines",
                    limits.subroutines
                ),
            ));
        }
        for letter in field.chars() {
            let instr = if let Some(action) = Action::from_letter(letter) {
                Instr::Act(action)
            } else if let Some(digit) = letter.to_digit(10) {
                if digit == 0 || digit as usize > limits.subroutines {
                    return Err(ParseError::new(
                        1,
                        column,
                        format!(
                            "call to subroutine {digit}, but only 1 to {} exist",
                            limits.subroutines
                        ),
                    ));
                }
                Instr::Call(digit as u8)
            } else {
                return Err(ParseError::new(
                    1,
                    column,
                    format!(
                        "unexpected `{}`: expected one of S J W R L, a subroutine number or `|`",
                        letter.escape_debug()
                    ),
                ));
            };
            program.routines[routine].push(instr);
            column += 1;
        }
        if field.chars().count() > limits.max_routine_len {
            return Err(ParseError::new(
                1,
                column - 1,
                format!(
                    "routine {} has {} instructions; the limit is {}",
                    crate::program::routine_name(routine),
                    field.chars().count(),
                    limits.max_routine_len
                ),
            ));
        }
        column += 1; // the `|`
    }
    Ok(program)
}

/// Prints the compact form with every slot's field.
pub fn print(program: &Program) -> String {
    let mut out = String::new();
    for (routine, body) in program.routines.iter().enumerate() {
        if routine > 0 {
            out.push('|');
        }
        out.extend(body.iter().map(|instr| instr.letter()));
    }
    out
}

/// Whether `text` is meant as the compact form: the readable form always has a `{ ... }` block,
/// so text without one is compact (and gets the compact form's error messages).
pub fn looks_compact(text: &str) -> bool {
    !text.contains('{')
}
