//! The readable program form, defined by `grammar.pest`.
//!
//! The printer writes one line per routine: `main` first, then every subroutine that is non-empty
//! or called, in slot order. `parse(print(p)) == p`, and printed text prints back unchanged.

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;

use crate::error::ParseError;
use crate::program::{Action, Instr, Limits, Program, routine_name};

#[derive(Parser)]
#[grammar = "grammar.pest"]
struct ReadableParser;

/// Parses the readable form into a program with `limits.subroutines` slots.
pub fn parse(text: &str, limits: &Limits) -> Result<Program, ParseError> {
    let mut pairs = ReadableParser::parse(Rule::program, text).map_err(convert_error)?;
    let program_pair = pairs
        .next()
        .expect("the `program` rule always yields one pair");
    let mut program = Program::empty(limits.subroutines);
    let mut seen = vec![false; limits.subroutines + 1];
    for block in program_pair
        .into_inner()
        .filter(|p| p.as_rule() == Rule::block)
    {
        let mut inner = block.into_inner();
        let name = inner.next().expect("a block starts with its routine name");
        let routine = slot_of(&name, limits, true)?;
        if std::mem::replace(&mut seen[routine], true) {
            return Err(error_at(
                &name,
                format!("{} is defined twice", name.as_str()),
            ));
        }
        for token in inner {
            let instr = match token.as_rule() {
                Rule::action => Instr::Act(action_of(token.as_str())),
                Rule::call => Instr::Call(slot_of(&token, limits, false)? as u8),
                _ => unreachable!("a block holds only actions and calls"),
            };
            if program.routines[routine].len() == limits.max_routine_len {
                return Err(error_at(
                    &token,
                    format!(
                        "{} is longer than the limit of {} instructions",
                        routine_name(routine),
                        limits.max_routine_len
                    ),
                ));
            }
            program.routines[routine].push(instr);
        }
    }
    if !seen[0] {
        let end = text.trim_end();
        let line = end.lines().count().max(1);
        let column = end.lines().last().map_or(0, |l| l.chars().count()) + 1;
        return Err(ParseError::new(
            line,
            column,
            "expected a `main { ... }` block",
        ));
    }
    Ok(program)
}

/// Prints the readable form.
pub fn print(program: &Program) -> String {
    let called: Vec<bool> = (0..program.routines.len())
        .map(|slot| {
            program
                .routines
                .iter()
                .flatten()
                .any(|i| *i == Instr::Call(slot as u8))
        })
        .collect();
    let mut out = String::new();
    for (routine, body) in program.routines.iter().enumerate() {
        if routine > 0 && body.is_empty() && !called[routine] {
            continue;
        }
        out.push_str(&routine_name(routine));
        out.push_str(" {");
        for instr in body {
            out.push(' ');
            match instr {
                Instr::Act(action) => out.push_str(action.word()),
                Instr::Call(slot) => out.push_str(&routine_name(*slot as usize)),
            }
        }
        out.push_str(if body.is_empty() { "}\n" } else { " }\n" });
    }
    out
}

fn action_of(word: &str) -> Action {
    Action::ALL
        .into_iter()
        .find(|a| a.word() == word)
        .expect("the grammar admits only the five action words")
}

/// The routine index a name (`main`, `pK`) or call (`pK`) refers to, checked against the limits.
fn slot_of(
    pair: &Pair<'_, Rule>,
    limits: &Limits,
    main_allowed: bool,
) -> Result<usize, ParseError> {
    let text = pair.as_str();
    if text == "main" && main_allowed {
        return Ok(0);
    }
    match text[1..].parse::<usize>() {
        Ok(slot) if (1..=limits.subroutines).contains(&slot) => Ok(slot),
        _ => Err(error_at(
            pair,
            format!(
                "no subroutine `{text}`: this program may use p1 to p{}",
                limits.subroutines
            ),
        )),
    }
}

fn error_at(pair: &Pair<'_, Rule>, message: String) -> ParseError {
    let (line, column) = pair.line_col();
    ParseError::new(line, column, message)
}

fn describe(rule: &Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of input",
        Rule::program => "a program",
        Rule::block => "a routine block such as `main { ... }`",
        Rule::routine => "a routine name (`main` or `p1`..)",
        Rule::action => "an instruction (walk, jump, left, right, light)",
        Rule::call => "a call such as `p1`",
        Rule::WHITESPACE | Rule::COMMENT | Rule::name_char | Rule::instruction => "white space",
    }
}

fn convert_error(error: pest::error::Error<Rule>) -> ParseError {
    use pest::error::{ErrorVariant, LineColLocation};
    let (line, column) = match error.line_col {
        LineColLocation::Pos(pos) | LineColLocation::Span(pos, _) => pos,
    };
    let message = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
            let mut expected: Vec<&str> = positives.iter().map(describe).collect();
            expected.dedup();
            format!("expected {}", expected.join(" or "))
        }
        ErrorVariant::ParsingError { .. } => "unexpected input".to_owned(),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    ParseError::new(line, column, message)
}
