//! The MNIST demo's look on the terminal: a progress bar of the epoch's steps with the speed,
//! and one line per epoch with its metrics, the time, and where early stopping stopped. When
//! stdout is not a terminal the bar hides itself and only the lines are printed.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use wgtrain::{Decision, EpochRecord};

/// The bar, created hidden when nothing should be drawn.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix:>2} [{bar:30}] {pos}/{len} steps {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Steps done in the current (0-based) epoch.
    pub fn steps(&self, epoch: usize, done: usize, steps: usize, samples_per_second: f64) {
        self.bar.set_prefix(format!("{}", epoch + 1));
        self.bar.set_length(steps as u64);
        self.bar.set_position(done as u64);
        self.bar.set_message(format!("{samples_per_second:>8.0} samples/s"));
    }

    /// A line of its own above the bar (e.g. a learning-rate reduction).
    pub fn say(&self, line: String) {
        // A hidden bar (output not a terminal) swallows println: print directly then.
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// The epoch's line, its metrics as given (already in the target's units).
    pub fn epoch_end(&self, record: &EpochRecord, decision: Decision) {
        let metrics: Vec<String> = record.metrics.iter().map(|(name, v)| format!("{name} {v:.4}")).collect();
        let line = format!(
            "epoch {:>2}: {} | {:.2} s, {:.0} samples/s{}",
            record.epoch + 1,
            metrics.join(" "),
            record.seconds,
            record.samples_per_second,
            if decision == Decision::Stop { "  <- early stop" } else { "" }
        );
        self.say(line);
        self.bar.set_position(0);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
