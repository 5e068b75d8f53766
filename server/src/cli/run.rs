//! `proglab run`: execute one program on one task.

use anyhow::Context;
use serde::Serialize;

use dsl::interp::{Effect, Outcome, TraceStep};
use dsl::program::routine_name;
use dsl::{Form, LightMode, Limits, Metrics, RunOptions};

/// Arguments of `proglab run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  proglab run --task correa2025/c --program '1LJL1RJR1|WWWS|||'\n  \
proglab run --task correa2025/c --trace --program 'main { p1 left jump left p1 right jump right p1 } p1 { walk walk walk light }'"
)]
pub struct RunArgs {
    /// The task, as `SET/LABEL` (for example `correa2025/c`).
    #[arg(long)]
    pub task: String,
    /// The program, in the compact form (`1LJL1RJR1|WWWS|||`) or the readable form.
    #[arg(long)]
    pub program: String,
    /// The program's form; detected when left out.
    #[arg(long, value_enum)]
    pub form: Option<FormArg>,
    /// What Light does: `idempotent` (analysis semantics) or `toggle` (the game's).
    #[arg(long, value_enum, default_value = "idempotent")]
    pub light: LightArg,
    /// Number of subroutine slots.
    #[arg(long, default_value_t = 4)]
    pub subroutines: usize,
    /// Print every executed instruction.
    #[arg(long)]
    pub trace: bool,
    /// Print one JSON object to stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormArg {
    Compact,
    Readable,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LightArg {
    Idempotent,
    Toggle,
}

#[derive(Serialize)]
struct Report<'a> {
    task: &'a str,
    program: String,
    solved: bool,
    /// Primitives executed, no-ops included.
    steps: u32,
    /// T: every token of every routine.
    length: u32,
    /// S (docs/semantics.md §1.8), for programs that solve the task.
    step_cost: Option<u32>,
    budget_exhausted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a [TraceStep]>,
}

pub fn main(args: RunArgs) -> anyhow::Result<()> {
    let named = dsl::tasks::lookup(&args.task)
        .with_context(|| format!("unknown task `{}` (try `correa2025/c`)", args.task))?;
    let limits = Limits {
        subroutines: args.subroutines,
        ..Limits::default()
    };
    let form = args.form.map(|f| match f {
        FormArg::Compact => Form::Compact,
        FormArg::Readable => Form::Readable,
    });
    let program = dsl::parse_program(&args.program, form, &limits)
        .map_err(|e| anyhow::anyhow!("cannot parse the program: {e}"))?;
    let light = match args.light {
        LightArg::Idempotent => LightMode::Idempotent,
        LightArg::Toggle => LightMode::Toggle,
    };
    let options = RunOptions {
        light,
        trace: args.trace,
        ..RunOptions::default()
    };
    let outcome = dsl::run(&named.task, &program, &options);
    let report = Report {
        task: &args.task,
        program: program.to_compact(),
        solved: outcome.solved,
        steps: outcome.steps,
        length: Metrics::of(&program).t,
        step_cost: dsl::metrics::step_cost(&named.task, &program).ok(),
        budget_exhausted: outcome.budget_exhausted,
        trace: args.trace.then_some(outcome.trace.as_slice()),
    };
    if args.json {
        super::print_json(&report)
    } else {
        super::print_stdout(&format_report(&report, &outcome))
    }
}

fn format_report(report: &Report<'_>, outcome: &Outcome) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if report.trace.is_some() {
        let _ = writeln!(
            out,
            "{:>4}  {:<10} {:>3}  {:<6} {:>10}  {:>10}  effect",
            "#", "routine", "pos", "instr", "before", "after"
        );
        for (index, step) in outcome.trace.iter().enumerate() {
            let indent = "  ".repeat(step.depth as usize);
            let instr = match step.instr {
                dsl::Instr::Act(action) => action.word().to_owned(),
                dsl::Instr::Call(slot) => format!("call p{slot}"),
            };
            let effect = match step.effect {
                Effect::Changed => "changed",
                Effect::NoOp => "no-op",
                Effect::Call => "call",
            };
            let _ = writeln!(
                out,
                "{:>4}  {:<10} {:>3}  {:<10} {:>10}  {:>10}  {effect}",
                index + 1,
                format!("{indent}{}", routine_name(step.routine as usize)),
                step.position,
                instr,
                describe(&step.before),
                describe(&step.after),
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "task:     {}", report.task);
    let _ = writeln!(out, "program:  {}", report.program);
    let _ = writeln!(
        out,
        "solved:   {}",
        if report.solved { "yes" } else { "no" }
    );
    let _ = writeln!(out, "steps:    {}", report.steps);
    let _ = writeln!(out, "length:   {}", report.length);
    if let Some(cost) = report.step_cost {
        let _ = writeln!(out, "step cost (S): {cost}");
    }
    if report.budget_exhausted {
        let _ = writeln!(out, "stopped: the 1000-token budget ran out");
    }
    out
}

fn describe(state: &dsl::State) -> String {
    format!(
        "({},{}) {:?} {}",
        state.x,
        state.y,
        state.direction,
        state.lit.count_ones()
    )
}
