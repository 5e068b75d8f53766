//! Candidate traces of a task (docs/modelling.md §4.1).
//!
//! The search MDP has forced lighting (an unlit light under the robot permits only Light; elsewhere
//! Jump, Walk, Right and Left), drops blocked moves, and drops an action when the last two or three
//! letters of the extended trace form a no-op pattern (SS RL LR LS RS RRR LLL; LL is allowed).
//! Terminal states are never expanded, so every trace ends the first time all lights are lit.
//!
//! The reference implementation runs A* with an exact heuristic and `topk = 1000` keeping ties;
//! because the heuristic is exact, its result is every valid trace of length at most L*, the
//! smallest length with at least 1000 valid traces of length ≤ L*. We compute that set with a
//! depth-first search bounded by g + h ≤ L, which gives identical counts (docs/modelling.md §4.1).

use std::collections::HashMap;
use std::collections::VecDeque;

use dsl::{Action, LightMode, State, Task};

use crate::error::AnalysisError;

/// How many traces the reference A* collects before it stops (ties at the last length included).
pub const TOP_K: usize = 1000;

/// More reachable states than this is a map the enumerator refuses rather than exhausting memory.
const MAX_STATES: usize = 20_000_000;

/// Longest trace length tried when looking for L*; a map needing more is refused.
const MAX_TRACE_LEN: usize = 60;

/// More traces than this within L* is refused: the compression step would run for hours.
const MAX_TRACES: usize = 5_000_000;

/// Internal letters of the reference code (docs/semantics.md §3.1): candidate subroutines are
/// ordered lexicographically on these, so the compression works on them directly.
pub(crate) fn internal_letter(action: Action) -> u8 {
    match action {
        Action::Light => b'A',
        Action::Jump => b'B',
        Action::Walk => b'C',
        Action::Right => b'D',
        Action::Left => b'E',
    }
}

/// The action of an internal letter.
pub(crate) fn action_of_internal(letter: u8) -> Option<Action> {
    Some(match letter {
        b'A' => Action::Light,
        b'B' => Action::Jump,
        b'C' => Action::Walk,
        b'D' => Action::Right,
        b'E' => Action::Left,
        _ => return None,
    })
}

/// The underlying state graph under forced lighting, with exact distances to the goal.
struct Graph {
    /// Successors of each state: (internal letter, next state). Empty for terminal states.
    succ: Vec<Vec<(u8, u32)>>,
    /// Shortest number of actions to any terminal state; `u32::MAX` if none is reachable.
    dist: Vec<u32>,
}

impl Graph {
    /// Forward search from the start for the reachable states, then a backward breadth-first
    /// search from the terminal states for the exact heuristic.
    fn build(task: &Task) -> Result<Graph, AnalysisError> {
        let start = task.start_state();
        let mut index: HashMap<State, u32> = HashMap::new();
        let mut states = vec![start];
        index.insert(start, 0);
        let mut succ: Vec<Vec<(u8, u32)>> = Vec::new();
        let mut next = 0usize;
        while next < states.len() {
            let state = states[next];
            next += 1;
            let mut edges = Vec::new();
            if !task.is_terminal(&state) {
                for &action in available_actions(task, &state) {
                    let Some(after) = state.apply(task, action, LightMode::Idempotent) else {
                        continue;
                    };
                    let id = match index.get(&after) {
                        Some(&id) => id,
                        None => {
                            if states.len() >= MAX_STATES {
                                return Err(AnalysisError::TooManyStates {
                                    task: task.source.clone(),
                                    limit: MAX_STATES,
                                });
                            }
                            let id = states.len() as u32;
                            states.push(after);
                            index.insert(after, id);
                            id
                        }
                    };
                    edges.push((internal_letter(action), id));
                }
            }
            succ.push(edges);
        }

        let mut pred: Vec<Vec<u32>> = vec![Vec::new(); states.len()];
        for (from, edges) in succ.iter().enumerate() {
            for &(_, to) in edges {
                pred[to as usize].push(from as u32);
            }
        }
        let mut dist = vec![u32::MAX; states.len()];
        let mut queue = VecDeque::new();
        for (id, state) in states.iter().enumerate() {
            if task.is_terminal(state) {
                dist[id] = 0;
                queue.push_back(id as u32);
            }
        }
        while let Some(id) = queue.pop_front() {
            let d = dist[id as usize] + 1;
            for &p in &pred[id as usize] {
                if dist[p as usize] == u32::MAX {
                    dist[p as usize] = d;
                    queue.push_back(p);
                }
            }
        }
        Ok(Graph { succ, dist })
    }
}

/// Forced lighting (docs/semantics.md §1.9): on an unlit light only Light; elsewhere the four
/// moves.
fn available_actions(task: &Task, state: &State) -> &'static [Action] {
    let unlit_light = task
        .light_at(state.x as usize, state.y as usize)
        .is_some_and(|light| state.lit & (1u64 << light) == 0);
    if unlit_light {
        &[Action::Light]
    } else {
        &[Action::Jump, Action::Walk, Action::Right, Action::Left]
    }
}

/// Whether appending `letter` to `trace` would end it with a no-op pattern
/// (SS RL LR LS RS RRR LLL, in internal letters AA DE ED EA DA DDD EEE).
fn forms_noop_pattern(trace: &[u8], letter: u8) -> bool {
    let Some(&last) = trace.last() else {
        return false;
    };
    let pair = matches!(
        (last, letter),
        (b'A', b'A') | (b'D', b'E') | (b'E', b'D') | (b'E', b'A') | (b'D', b'A')
    );
    let triple = trace.len() >= 2
        && trace[trace.len() - 2] == last
        && last == letter
        && (letter == b'D' || letter == b'E');
    pair || triple
}

/// Depth-first enumeration of every valid trace of length ≤ `bound`, calling `visit` on each.
/// Returns false (and stops) once `limit` traces have been visited.
fn for_each_trace(graph: &Graph, bound: usize, limit: usize, visit: &mut dyn FnMut(&[u8])) -> bool {
    // An explicit stack keeps deep bounds from using native recursion: (state, depth, next edge).
    let mut trace: Vec<u8> = Vec::with_capacity(bound);
    let mut stack: Vec<(u32, usize)> = vec![(0, 0)];
    let mut seen = 0usize;
    if graph.dist[0] == 0 {
        // The start is already terminal: the empty trace is the only one.
        visit(&[]);
        return true;
    }
    while let Some(top) = stack.last_mut() {
        let (state, edge) = *top;
        let edges = &graph.succ[state as usize];
        if edge == edges.len() {
            stack.pop();
            trace.pop();
            continue;
        }
        top.1 += 1;
        let (letter, to) = edges[edge];
        let g = trace.len() + 1;
        let h = graph.dist[to as usize];
        if h == u32::MAX || g + h as usize > bound || forms_noop_pattern(&trace, letter) {
            continue;
        }
        trace.push(letter);
        if h == 0 {
            visit(&trace);
            seen += 1;
            trace.pop();
            if seen >= limit {
                return false;
            }
        } else {
            stack.push((to, 0));
        }
    }
    true
}

/// Every candidate trace of `task` (docs/modelling.md §4.1) in internal letters, sorted by length
/// and then lexicographically.
pub fn candidate_traces(task: &Task) -> Result<Vec<Vec<u8>>, AnalysisError> {
    let graph = Graph::build(task)?;
    let shortest = graph.dist[0];
    if shortest == u32::MAX {
        return Err(AnalysisError::Unsolvable {
            task: task.source.clone(),
        });
    }
    let mut bound = shortest as usize;
    loop {
        if bound > MAX_TRACE_LEN {
            return Err(AnalysisError::TooFewTraces {
                task: task.source.clone(),
                wanted: TOP_K,
                max_length: MAX_TRACE_LEN,
            });
        }
        let mut traces = Vec::new();
        let complete = for_each_trace(&graph, bound, MAX_TRACES + 1, &mut |t| {
            traces.push(t.to_vec())
        });
        if !complete {
            return Err(AnalysisError::TooManyTraces {
                task: task.source.clone(),
                limit: MAX_TRACES,
                length: bound,
            });
        }
        if traces.len() >= TOP_K || graph.dist[0] == 0 {
            traces.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            return Ok(traces);
        }
        bound += 1;
    }
}

/// The readable letters (S J W R L) of a trace in internal letters.
pub fn readable(trace: &[u8]) -> String {
    trace
        .iter()
        .filter_map(|&c| action_of_internal(c))
        .map(Action::letter)
        .collect()
}
