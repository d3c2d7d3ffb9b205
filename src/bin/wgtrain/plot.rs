//! The per-epoch curves as an SVG or a PNG: on the left the training and validation loss, on
//! the right the task's main metric (accuracy for a classifier, MAE for a regression) with its
//! validation twin; the best epoch and the early stop marked by vertical lines, and the epochs
//! where the learning rate changed (when the history records a `learning_rate`) marked too. Text is laid
//! out (and, in a PNG, rasterized) by plotters' pure-Rust `ab_glyph` with the DejaVu Sans font
//! bundled in `assets/fonts/`, so no fontconfig or freetype is needed on the machine.
//! Shared with the MNIST demo (examples/mnist.rs includes this file).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use wgtrain::{Error, History};

/// The drawing's size in pixels (a PNG's width and height; an SVG's view box).
pub const PLOT_SIZE: (u32, u32) = (1000, 420);

/// DejaVu Sans (Bitstream Vera licence, assets/fonts/LICENSE-DejaVu.txt), built into the binary.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Epochs to mark, 0-based as in the history.
pub struct PlotMarks {
    pub best_epoch: Option<usize>,
    pub stopped_epoch: Option<usize>,
}

/// The file formats `--plot` draws, chosen by the path's extension.
enum PlotFormat {
    Svg,
    Png,
}

fn plot_format(path: &Path) -> Result<PlotFormat, Error> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(PlotFormat::Svg),
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(PlotFormat::Png),
        _ => Err(Error::Config(format!(
            "--plot {}: only SVG and PNG are drawn (name the file .svg or .png)",
            path.display()
        ))),
    }
}

/// Fails unless `path` names an SVG or PNG file: checked before training, not after it.
pub fn check_plot_path(path: &Path) -> Result<(), Error> {
    plot_format(path).map(|_| ())
}

/// Draws the history's curves to `path`, an SVG or a PNG by its extension.
pub fn plot_history(path: &Path, history: &History, marks: &PlotMarks) -> Result<(), Error> {
    let format = plot_format(path)?;
    // Both formats need it: with `ab_glyph` an SVG's text is measured with the registered font too.
    // Every family plotters asks for by default is "sans-serif"; registering again replaces it.
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| Error::Config("the bundled font assets/fonts/DejaVuSans.ttf does not parse".into()))?;
    let fail = |e: String| Error::file(path, format!("cannot draw the plot: {e}"));
    match format {
        PlotFormat::Svg => draw(SVGBackend::new(path, PLOT_SIZE).into_drawing_area(), history, marks),
        PlotFormat::Png => draw(BitMapBackend::new(path, PLOT_SIZE).into_drawing_area(), history, marks),
    }
    .map_err(fail)
}

/// The loss panel and the main metric's panel side by side, then the file written.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    history: &History,
    marks: &PlotMarks,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(PLOT_SIZE.0 / 2);
    let names = history.metric_names();
    let metric = ["accuracy", "binary_accuracy", "mae", "rmse"].into_iter().find(|m| names.contains(m));
    panel(&left, history, "loss", marks)?;
    if let Some(metric) = metric {
        panel(&right, history, metric, marks)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// One metric and its `val_` twin against the 1-based epoch, with the marks.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
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
