//! Turns tasks, states, traces and experiment text into the API's view types.

use dsl::{Effect, Outcome, Program, State, Task};

use crate::api::{
    DemoView, ItemView, LimitsView, MapView, Position, StateView, TextView, TraceStepView,
};
use crate::experiment::{Experiment, Item, ItemKind, Text};

pub fn text(text: &Text) -> TextView {
    TextView {
        markdown: text.markdown.clone(),
        html: text.html.clone(),
    }
}

pub fn limits(experiment: &Experiment) -> LimitsView {
    LimitsView {
        subroutines: experiment.limits.subroutines,
        max_routine_length: experiment.limits.max_routine_len,
    }
}

pub fn light_name(light: dsl::LightMode) -> &'static str {
    match light {
        dsl::LightMode::Toggle => "toggle",
        dsl::LightMode::Idempotent => "idempotent",
    }
}

pub fn map(task: &Task) -> MapView {
    let heights = (0..task.height)
        .map(|y| (0..task.width).map(|x| task.height_at(x, y)).collect())
        .collect();
    let mut lights = vec![Position { x: 0, y: 0 }; task.n_lights];
    for y in 0..task.height {
        for x in 0..task.width {
            if let Some(light) = task.light_at(x, y) {
                lights[light as usize] = Position {
                    x: x as u8,
                    y: y as u8,
                };
            }
        }
    }
    MapView {
        width: task.width,
        height: task.height,
        heights,
        lights,
        start: state(&task.start_state()),
    }
}

pub fn state(state: &State) -> StateView {
    let lit = (0..64u8)
        .filter(|bit| state.lit & (1u64 << bit) != 0)
        .collect();
    StateView {
        x: state.x,
        y: state.y,
        direction: state.direction.index(),
        lit,
    }
}

pub fn trace(outcome: &Outcome) -> Vec<TraceStepView> {
    outcome
        .trace
        .iter()
        .map(|step| TraceStepView {
            routine: step.routine,
            position: step.position,
            depth: step.depth,
            instr: step.instr.letter().to_string(),
            effect: match step.effect {
                Effect::Changed => "changed",
                Effect::NoOp => "no_op",
                Effect::Call => "call",
            }
            .to_owned(),
            state: state(&step.after),
        })
        .collect()
}

pub fn demo(experiment: &Experiment, task: &Task, program: &Program) -> DemoView {
    let outcome = execute(experiment, task, program);
    DemoView {
        program: program.to_compact(),
        instruction_count: program.instruction_count(),
        solved: outcome.solved,
        trace: trace(&outcome),
    }
}

/// Runs a program the way participants' programs are judged: the experiment's light mode, the
/// reference budget, with a trace.
pub fn execute(experiment: &Experiment, task: &Task, program: &Program) -> Outcome {
    dsl::run(
        task,
        program,
        &dsl::RunOptions {
            light: experiment.light,
            trace: true,
            ..Default::default()
        },
    )
}

pub fn item(item: &Item) -> ItemView {
    let (kind, options) = match &item.kind {
        ItemKind::Choice { options } => ("choice", options.clone()),
        ItemKind::Text => ("text", Vec::new()),
    };
    ItemView {
        id: item.id.clone(),
        prompt: item.prompt.clone(),
        kind: kind.to_owned(),
        options,
        required: item.required,
    }
}
