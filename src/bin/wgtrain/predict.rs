//! `wgtrain predict`: a saved model's predictions for every row of a CSV, its columns matched
//! by name in any order (a missing one is an error naming it), written as CSV: for a
//! classifier the predicted class and one probability column per class, for a multi-label
//! model one 0/1 column per label and its probability, for a regression model one column per
//! target in the target's units.

use std::path::PathBuf;

use clap::Args;
use wgtrain::{Error, Model, TablePrediction};

#[derive(Args)]
pub struct PredictArgs {
    /// A model saved by `wgtrain fit`.
    #[arg(long)]
    model: PathBuf,
    /// The rows to predict: a CSV with the model's feature columns (a target column is
    /// ignored), a .npy of the features x, or an .npz with x.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the predictions (CSV).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: PredictArgs) -> Result<(), Error> {
    let model = Model::load(&args.model)?;
    let prediction = model.predict_file(&args.data)?;
    let text = to_csv(&prediction).map_err(|e| Error::file(&args.out, e.to_string()))?;
    std::fs::write(&args.out, text).map_err(|e| Error::io(&args.out, e))?;
    println!("wrote {} predictions to {}", prediction.rows(), args.out.display());
    Ok(())
}

/// Classes: `<target>,probability_<class>...`; labels: one 0/1 column per label, then
/// `probability_<label>...`; values: one column per target.
fn to_csv(prediction: &TablePrediction) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    match prediction {
        TablePrediction::Classes { classes, labels, probabilities, target } => {
            let mut header = vec![target.clone()];
            header.extend(classes.iter().map(|c| format!("probability_{c}")));
            out.write_record(&header)?;
            for (label, row) in labels.iter().zip(probabilities.chunks(classes.len().max(1))) {
                let mut record = vec![label.clone()];
                record.extend(row.iter().map(|p| p.to_string()));
                out.write_record(&record)?;
            }
        }
        TablePrediction::Labels { names, applies, probabilities } => {
            let mut header = names.clone();
            header.extend(names.iter().map(|c| format!("probability_{c}")));
            out.write_record(&header)?;
            let k = names.len().max(1);
            for (on, row) in applies.chunks(k).zip(probabilities.chunks(k)) {
                let mut record: Vec<String> = on.iter().map(|&a| u8::from(a).to_string()).collect();
                record.extend(row.iter().map(|p| p.to_string()));
                out.write_record(&record)?;
            }
        }
        TablePrediction::Values { names, values } => {
            out.write_record(names)?;
            for row in values.chunks(names.len().max(1)) {
                out.write_record(row.iter().map(|v| v.to_string()))?;
            }
        }
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
