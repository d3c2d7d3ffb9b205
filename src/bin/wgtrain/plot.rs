//! The per-epoch curves as an SVG: on the left the training and validation loss, on the right
//! the task's main metric (accuracy for a classifier, MAE for a regression) with its
//! validation twin; the best epoch and the early stop marked by vertical lines, and the epochs
//! where the learning rate changed (when the history records an `lr`) marked too. SVG only:
//! a PNG would need a font rasterizer, which this build leaves out to need no system library.
//! Shared with the MNIST demo (examples/mnist.rs includes this file).

use std::path::Path;

use plotters::prelude::*;
use wgtrain::{Error, History};

/// Epochs to mark, 0-based as in the history.
pub struct PlotMarks {
    pub best_epoch: Option<usize>,
    pub stopped_epoch: Option<usize>,
}

/// Fails unless `path` names an SVG file: checked before training, not after it.
pub fn check_plot_path(path: &Path) -> Result<(), Error> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(()),
        _ => Err(Error::Config(format!(
            "--plot {}: only SVG is drawn (name the file .svg); PNG would need a font renderer \
             this build leaves out",
            path.display()
        ))),
    }
}

/// Draws the history's curves to `path` (SVG).
pub fn plot_history(path: &Path, history: &History, marks: &PlotMarks) -> Result<(), Error> {
    check_plot_path(path)?;
    let fail = |e: String| Error::file(path, format!("cannot draw the plot: {e}"));
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let (left, right) = root.split_horizontally(500);
    let names = history.metric_names();
    let metric = ["accuracy", "mae", "rmse"].into_iter().find(|m| names.contains(m));
    panel(&left, history, "loss", marks).map_err(fail)?;
    if let Some(metric) = metric {
        panel(&right, history, metric, marks).map_err(fail)?;
    }
    root.present().map_err(|e| fail(e.to_string()))
}

/// One metric and its `val_` twin against the 1-based epoch, with the marks.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    history: &History,
    metric: &str,
    marks: &PlotMarks,
) -> Result<(), String> {
    let series = |name: &str| -> Vec<(f64, f64)> {
        let values = history.epochs.iter().filter_map(|r| Some(((r.epoch + 1) as f64, r.get(name)? as f64)));
        values.filter(|(_, v)| v.is_finite()).collect()
    };
    let val_name = format!("val_{metric}");
    let (train, val) = (series(metric), series(&val_name));
    let all: Vec<f64> = train.iter().chain(&val).map(|p| p.1).collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let epochs = history.epochs.len().max(2) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(metric, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(1.0..epochs, (lo - pad)..(hi + pad))
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc("epoch").draw().map_err(|e| e.to_string())?;
    let curves = [(metric.to_string(), train, BLUE), (val_name, val, RED)];
    for (label, points, color) in curves.into_iter().filter(|c| !c.1.is_empty()) {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    let vertical = |epoch: usize| vec![((epoch + 1) as f64, lo - pad), ((epoch + 1) as f64, hi + pad)];
    let mut lines = Vec::new();
    lines.extend(marks.best_epoch.map(|e| (format!("best epoch {}", e + 1), e, GREEN)));
    lines.extend(marks.stopped_epoch.map(|e| (format!("early stop {}", e + 1), e, BLACK)));
    lines.extend(lr_changes(history).into_iter().map(|e| (format!("lr change {}", e + 1), e, MAGENTA)));
    for (label, epoch, color) in lines {
        chart
            .draw_series(LineSeries::new(vertical(epoch), color.stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Epochs whose `lr` differs from the epoch before (none when the history has no `lr`).
fn lr_changes(history: &History) -> Vec<usize> {
    let lr: Vec<(usize, f32)> =
        history.epochs.iter().filter_map(|r| Some((r.epoch, r.get("learning_rate")?))).collect();
    lr.windows(2).filter(|w| w[0].1 != w[1].1).map(|w| w[1].0).collect()
}
