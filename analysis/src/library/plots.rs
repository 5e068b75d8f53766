//! The library's figures (SVG and PNG, as `crate::plots` draws them): heat maps of each top
//! body's uses across tasks and of the share of each task's participants who use it.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::AnalysisError;
use crate::plots::{FONT_NAME, register};

use super::report::Library;

/// A grid of values: rows top to bottom, columns left to right.
struct HeatMap<'a> {
    title: &'a str,
    rows: Vec<String>,
    columns: Vec<String>,
    values: Vec<Vec<f64>>,
    /// The text written in a cell.
    cell: fn(f64) -> String,
}

/// Writes `library-uses` (uses of each of the first `top` bodies per task) and
/// `library-participants` (the share of each task's participants using it) as SVG and PNG into
/// `dir` (created if needed) and returns their paths; nothing is drawn for an empty library.
pub fn write_plots(
    dir: &Path,
    library: &Library,
    top: usize,
) -> Result<Vec<PathBuf>, AnalysisError> {
    let bodies = &library.bodies[..top.min(library.bodies.len())];
    if bodies.is_empty() {
        return Ok(Vec::new());
    }
    register()?;
    std::fs::create_dir_all(dir).map_err(|e| AnalysisError::io(dir, e))?;
    let rows: Vec<String> = bodies
        .iter()
        .map(|b| format!("[{}] {}", b.rank, b.body))
        .collect();
    let columns: Vec<String> = library.tasks.iter().map(|t| t.task.clone()).collect();
    let uses = HeatMap {
        title: "Uses of each library body by task",
        rows: rows.clone(),
        columns: columns.clone(),
        values: bodies
            .iter()
            .map(|b| b.per_task.iter().map(|t| t.uses as f64).collect())
            .collect(),
        cell: |v| format!("{v:.0}"),
    };
    let shares = HeatMap {
        title: "Share of each task's participants using each body",
        rows,
        columns,
        values: bodies
            .iter()
            .map(|b| b.per_task.iter().map(|t| t.participant_share).collect())
            .collect(),
        cell: |v| format!("{:.0}%", 100.0 * v),
    };
    let mut written = write_both(dir, "library-uses", &uses)?;
    written.extend(write_both(dir, "library-participants", &shares)?);
    Ok(written)
}

fn write_both(dir: &Path, stem: &str, map: &HeatMap<'_>) -> Result<Vec<PathBuf>, AnalysisError> {
    let label_width = map
        .rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0) as u32;
    let size = (
        (label_width * 9 + 120 + 64 * map.columns.len() as u32).clamp(480, 2400),
        (150 + 34 * map.rows.len() as u32).clamp(240, 2400),
    );
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    let fail = |path: &Path, message: String| AnalysisError::Draw {
        path: path.to_owned(),
        message,
    };
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw(&root, map, label_width).map_err(|e| fail(&svg, e))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw(&root, map, label_width).map_err(|e| fail(&png, e))?;
        root.present().map_err(|e| fail(&png, e.to_string()))?;
    }
    Ok(vec![svg, png])
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    map: &HeatMap<'_>,
    label_width: u32,
) -> Result<(), String> {
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(error)?;
    let (n_rows, n_columns) = (map.rows.len(), map.columns.len().max(1));
    // Row 0 is drawn at the top.
    let row_label = |value: &SegmentValue<usize>| match value {
        SegmentValue::CenterOf(y) if *y < n_rows => map.rows[n_rows - 1 - y].clone(),
        _ => String::new(),
    };
    let column_label = |value: &SegmentValue<usize>| match value {
        SegmentValue::CenterOf(x) => map.columns.get(*x).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(root)
        .caption(map.title, (FONT_NAME, 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(label_width * 9 + 24)
        // Integer ranges are inclusive here: 0..n − 1 has n segments.
        .build_cartesian_2d(
            (0..n_columns - 1).into_segmented(),
            (0..n_rows.max(1) - 1).into_segmented(),
        )
        .map_err(error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n_columns)
        .y_labels(n_rows)
        .x_label_formatter(&column_label)
        .y_label_formatter(&row_label)
        .x_desc("task")
        .label_style((FONT_NAME, 14))
        .axis_desc_style((FONT_NAME, 15))
        .draw()
        .map_err(error)?;
    let highest = map
        .values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let cells: Vec<(usize, usize, f64)> = map
        .values
        .iter()
        .enumerate()
        .flat_map(|(row, values)| {
            values
                .iter()
                .enumerate()
                .map(move |(column, &value)| (column, n_rows - 1 - row, value))
        })
        .collect();
    let shade = |value: f64| {
        if highest > 0.0 && value.is_finite() {
            (value / highest).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    chart
        .draw_series(cells.iter().map(|&(x, y, value)| {
            let t = shade(value);
            let mix = |low: f64, high: f64| (low + (high - low) * t).round() as u8;
            let colour = RGBColor(mix(247.0, 8.0), mix(251.0, 69.0), mix(255.0, 148.0));
            Rectangle::new(
                [
                    (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                ],
                colour.filled(),
            )
        }))
        .map_err(error)?;
    let centred = |colour: &'static RGBColor| {
        TextStyle::from((FONT_NAME, 13).into_font())
            .color(colour)
            .pos(Pos::new(HPos::Center, VPos::Center))
    };
    chart
        .draw_series(cells.iter().map(|&(x, y, value)| {
            let colour = if shade(value) > 0.55 { &WHITE } else { &BLACK };
            Text::new(
                (map.cell)(value),
                (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                centred(colour),
            )
        }))
        .map_err(error)?;
    Ok(())
}
