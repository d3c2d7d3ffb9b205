//! `wgtrain`: train, evaluate and predict with an MLP on a CSV file (or NumPy arrays: `.npz`
//! with `x` and `y`, `.npy`), for people who do not write Rust. `wgtrain fit` reads a table,
//! infers the task, trains with Keras's defaults and saves a model file that carries the
//! table's encoding; `wgtrain evaluate` and `wgtrain predict` read new files with it,
//! matching columns by name.
//!
//!     wgtrain fit --data data/tabular/diabetes.csv --target target --save diabetes.safetensors
//!     wgtrain evaluate --model diabetes.safetensors --data data/tabular/diabetes.csv
//!     wgtrain predict --model diabetes.safetensors --data rows.csv --out predictions.csv
//!
//! Every error ends the command with one line on stderr (naming the file, row and column, or
//! the flag) and exit code 1 (2 for a bad command line); nothing panics on input.

mod evaluate;
mod fit;
mod plot;
mod predict;
mod progress;
mod task;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wgtrain",
    version,
    about = "Train small neural networks on CSV or NumPy files with wgtrain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a CSV file (or NumPy arrays) and save it.
    Fit(Box<fit::FitArgs>),
    /// Measure a saved model on a CSV file that has the target column (or an .npz).
    Evaluate(evaluate::EvaluateArgs),
    /// Write a saved model's predictions for the rows of a CSV file (or a .npy/.npz).
    Predict(predict::PredictArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: clap's own text on stdout.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `wgtrain` alone: the help, as a usage error.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            // clap's first line names the flag; its usage block would make the error several.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad command line");
            eprintln!("wgtrain: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Fit(args) => fit::run(*args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Predict(args) => predict::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgtrain: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// A message on one line, whatever a nested error put in it.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
