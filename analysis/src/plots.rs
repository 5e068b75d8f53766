//! Comparison figures (SVG and PNG) drawn with plotters.
//!
//! Text is laid out with the DejaVu Sans font bundled in `analysis/assets/` (Bitstream Vera
//! licence, next to it) and registered with plotters' ab_glyph backend, so PNGs render the same
//! on a machine without system fonts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::compare::Comparison;
use crate::cv::CvResult;
use crate::error::AnalysisError;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub(crate) const FONT_NAME: &str = "sans-serif";

/// Grouped bars: one group per category, one bar per series within a group.
struct BarChart<'a> {
    title: &'a str,
    y_label: &'a str,
    groups: Vec<String>,
    /// (series name, one value per group).
    series: Vec<(String, Vec<f64>)>,
}

/// Writes the comparison figures into `dir` (created if needed) and returns their paths:
/// the BIC improvement over the worst model overall and per task, the log-likelihood overall,
/// and the held-out log-likelihood when `cv` is given.
pub fn write_plots(
    dir: &Path,
    comparison: &Comparison,
    cv: Option<&CvResult>,
) -> Result<Vec<PathBuf>, AnalysisError> {
    register()?;
    std::fs::create_dir_all(dir).map_err(|e| AnalysisError::io(dir, e))?;
    let names: Vec<String> = comparison.models.iter().map(|m| m.name.clone()).collect();
    let mut written = Vec::new();

    // Against the model with the highest BIC (the null model when it is fitted), so that
    // bars grow with support for a model.
    let reference = comparison
        .models
        .iter()
        .map(|m| m.bic)
        .fold(f64::NEG_INFINITY, f64::max);
    let overall = BarChart {
        title: &format!("Model comparison ({} choices)", comparison.n_observations),
        y_label: "BIC improvement over the worst model",
        groups: vec!["all tasks".into()],
        series: comparison
            .models
            .iter()
            .map(|m| (m.name.clone(), vec![reference - m.bic]))
            .collect(),
    };
    written.extend(write_both(dir, "bic", &overall)?);

    let log_likelihood = BarChart {
        title: "Log-likelihood of each model",
        y_label: "log-likelihood",
        groups: vec!["all tasks".into()],
        series: comparison
            .models
            .iter()
            .map(|m| (m.name.clone(), vec![m.log_likelihood]))
            .collect(),
    };
    written.extend(write_both(dir, "log-likelihood", &log_likelihood)?);

    let tasks: Vec<_> = comparison
        .per_task
        .iter()
        .filter(|t| t.n_observations > 0)
        .collect();
    let per_task = BarChart {
        title: "Per-task model comparison",
        y_label: "BIC improvement over the task's worst model",
        groups: tasks.iter().map(|t| t.task.clone()).collect(),
        series: names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let values = tasks
                    .iter()
                    .map(|t| {
                        let worst = t
                            .models
                            .iter()
                            .map(|m| m.bic)
                            .fold(f64::NEG_INFINITY, f64::max);
                        worst - t.models[i].bic
                    })
                    .collect();
                (name.clone(), values)
            })
            .collect(),
    };
    written.extend(write_both(dir, "bic-per-task", &per_task)?);

    if let Some(cv) = cv {
        let worst = cv
            .models
            .iter()
            .map(|m| m.per_observation)
            .fold(f64::INFINITY, f64::min);
        let chart = BarChart {
            title: &format!(
                "Held-out log-likelihood ({}-fold, by participant)",
                cv.folds
            ),
            y_label: "held-out LL per choice, above the worst model",
            groups: vec!["all tasks".into()],
            series: cv
                .models
                .iter()
                .map(|m| (m.name.clone(), vec![m.per_observation - worst]))
                .collect(),
        };
        written.extend(write_both(dir, "cv", &chart)?);
    }
    Ok(written)
}

pub(crate) fn register() -> Result<(), AnalysisError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT_NAME, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(AnalysisError::Font) }
}

fn write_both(dir: &Path, stem: &str, chart: &BarChart<'_>) -> Result<Vec<PathBuf>, AnalysisError> {
    let width =
        (260 + 90 * chart.groups.len() as u32 * chart.series.len().max(1) as u32).clamp(640, 1800);
    let size = (width, 520);
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    let fail = |path: &Path, message: String| AnalysisError::Draw {
        path: path.to_owned(),
        message,
    };
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw(&root, chart).map_err(|e| fail(&svg, e))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw(&root, chart).map_err(|e| fail(&png, e))?;
        root.present().map_err(|e| fail(&png, e.to_string()))?;
    }
    Ok(vec![svg, png])
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &BarChart<'_>,
) -> Result<(), String> {
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(error)?;
    let values = chart
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (mut low, mut high) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if high - low < 1e-9 {
        high += 1.0;
    }
    let pad = 0.08 * (high - low);
    // One group: each bar is labelled underneath. Several: a legend, with headroom for it.
    let single = chart.groups.len() == 1;
    let headroom = if single { pad } else { 0.35 * (high - low) };
    (low, high) = (if low < 0.0 { low - pad } else { low }, high + headroom);
    let groups = chart.groups.len().max(1) as f64;
    let mut plot = ChartBuilder::on(root)
        .caption(chart.title, (FONT_NAME, 22))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..groups, low..high)
        .map_err(error)?;
    plot.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(chart.y_label)
        .label_style((FONT_NAME, 14))
        .axis_desc_style((FONT_NAME, 15))
        .draw()
        .map_err(error)?;
    let n_series = chart.series.len().max(1) as f64;
    let bar = 0.8 / n_series;
    for (s, (name, series)) in chart.series.iter().enumerate() {
        let colour = Palette99::pick(s).to_rgba();
        plot.draw_series(
            series
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(g, &v)| {
                    let x0 = g as f64 + 0.1 + s as f64 * bar;
                    Rectangle::new([(x0, 0.0), (x0 + bar * 0.92, v)], colour.filled())
                }),
        )
        .map_err(error)?
        .label(name.clone())
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled()));
    }
    if !single {
        plot.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT_NAME, 14))
            .draw()
            .map_err(error)?;
    }
    let style =
        TextStyle::from((FONT_NAME, 15).into_font()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
    if single {
        for (series, (name, _)) in chart.series.iter().enumerate() {
            let centre = 0.1 + (series as f64 + 0.46) * bar;
            let (x, y) = plot.backend_coord(&(centre, low));
            root.draw(&Text::new(name.clone(), (x, y + 8), style.clone()))
                .map_err(error)?;
        }
    } else {
        for (g, group) in chart.groups.iter().enumerate() {
            let (x, y) = plot.backend_coord(&(g as f64 + 0.5, low));
            root.draw(&Text::new(group.clone(), (x, y + 8), style.clone()))
                .map_err(error)?;
        }
    }
    Ok(())
}
