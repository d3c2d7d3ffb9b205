//! The two decisions `fit` makes from its flags and the table: which loss trains the target
//! (`plan`, the one task/loss mapping) and which layers the network has (`network`, the one
//! place the layer list is built). A new task, loss or layer flag is wired in here.

use clap::ValueEnum;
use wgtrain::data::{Schema, TargetKind};
use wgtrain::{Activation, Error, Layer, Loss, Network};

/// `--task`: what the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// One class per row out of two or more (softmax cross-entropy).
    Classify,
    /// One of two classes per row (sigmoid cross-entropy on one output).
    Binary,
    /// Any number of 0/1 labels per row, one target column each (sigmoid cross-entropy).
    Multilabel,
    /// One or several numbers per row (mean squared error, or --loss mae|huber).
    Regress,
}

impl Task {
    /// The target kind to read the file with for this task.
    pub fn kind(self) -> TargetKind {
        match self {
            Task::Classify => TargetKind::Classes,
            Task::Binary => TargetKind::Binary,
            Task::Multilabel => TargetKind::MultiLabel,
            Task::Regress => TargetKind::Values,
        }
    }

    /// The name printed and written to the summary.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Binary => "binary",
            Task::Multilabel => "multilabel",
            Task::Regress => "regress",
        }
    }
}

/// `--loss`: the regression loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossFlag {
    /// Mean squared error (the default for regress).
    Mse,
    /// Mean absolute error.
    Mae,
    /// Huber's loss with delta 1 (in the target's units: a Huber target is not standardized).
    Huber,
}

/// What `fit` trains: the task, the kind the target must be read as, and the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub task: Task,
    pub read_as: TargetKind,
    pub loss: Loss,
}

impl Plan {
    /// The network's output width for a table read as `read_as`: one logit per class under
    /// the softmax, one output for two classes or per label under the sigmoid, one value per
    /// target column.
    pub fn outputs(&self, schema: &Schema) -> usize {
        match self.loss {
            Loss::SoftmaxCrossEntropy => schema.classes().len(),
            _ => schema.outputs(),
        }
    }
}

/// The one task/loss mapping: the target kind the table was read as (given by `--task` or
/// inferred, see `TargetKind`: text or few whole numbers are classes, two of them binary,
/// several 0/1 columns multi-label, other numbers values) and the `--loss` flag, to what is
/// trained: the softmax cross-entropy for classes, the sigmoid cross-entropy for two classes
/// (one output, as Keras's `binary_crossentropy`) and for multi-label rows, a regression loss
/// for values.
pub fn plan(found: TargetKind, loss: Option<LossFlag>) -> Result<Plan, Error> {
    let task = match found {
        TargetKind::Classes => Task::Classify,
        TargetKind::Binary => Task::Binary,
        TargetKind::MultiLabel => Task::Multilabel,
        TargetKind::Values => Task::Regress,
    };
    let loss = match (task, loss) {
        (Task::Classify, None) => Loss::SoftmaxCrossEntropy,
        (Task::Binary | Task::Multilabel, None) => Loss::SigmoidCrossEntropy,
        (Task::Regress, None | Some(LossFlag::Mse)) => Loss::MeanSquaredError,
        (Task::Regress, Some(LossFlag::Mae)) => Loss::MeanAbsoluteError,
        (Task::Regress, Some(LossFlag::Huber)) => Loss::huber(),
        (task, Some(flag)) => {
            return Err(Error::Config(format!(
                "--loss {} is a regression loss, but the task is {}; leave --loss out ({} trains \
                 with the {} cross-entropy) or pass --task regress",
                flag.to_possible_value().map_or("?".into(), |v| v.get_name().to_string()),
                task.name(),
                task.name(),
                if task == Task::Classify { "softmax" } else { "sigmoid" }
            )))
        }
    };
    Ok(Plan { task, read_as: task.kind(), loss })
}

/// The one place the layer list is built: dense ReLU layers of `hidden` widths, each
/// followed by dropout of `dropout` when it is above 0 (seeded by `seed`), then a dense
/// output layer of `outputs` (identity: logits or values).
pub fn network(inputs: usize, hidden: &[usize], dropout: f32, seed: u64, outputs: usize) -> Network {
    let mut net = Network::new(inputs);
    for &units in hidden {
        net = net.dense(units, Activation::Relu);
        if dropout > 0.0 {
            net.layers.push(Layer::dropout_seeded(dropout, seed));
        }
    }
    net.dense(outputs, Activation::Identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_kind_maps_to_one_loss() {
        let cases = [
            (TargetKind::Classes, None, Some(Loss::SoftmaxCrossEntropy), "classes: softmax"),
            (TargetKind::Binary, None, Some(Loss::SigmoidCrossEntropy), "two classes: sigmoid, one output"),
            (TargetKind::MultiLabel, None, Some(Loss::SigmoidCrossEntropy), "0/1 columns: sigmoid"),
            (TargetKind::Values, None, Some(Loss::MeanSquaredError), "values: MSE by default"),
            (TargetKind::Values, Some(LossFlag::Mse), Some(Loss::MeanSquaredError), "--loss mse"),
            (TargetKind::Values, Some(LossFlag::Mae), Some(Loss::MeanAbsoluteError), "--loss mae"),
            (TargetKind::Values, Some(LossFlag::Huber), Some(Loss::huber()), "--loss huber"),
            (TargetKind::Classes, Some(LossFlag::Mse), None, "a regression loss on classes"),
            (TargetKind::Binary, Some(LossFlag::Mae), None, "a regression loss on two classes"),
        ];
        for (kind, flag, want, why) in cases {
            assert_eq!(plan(kind, flag).ok().map(|p| p.loss), want, "{why}");
        }
        for kind in [TargetKind::Classes, TargetKind::Binary, TargetKind::MultiLabel, TargetKind::Values] {
            assert_eq!(plan(kind, None).unwrap().read_as, kind, "{kind:?} is read as found");
        }
    }

    #[test]
    fn the_network_ends_in_an_identity_layer() {
        let net = network(10, &[64, 32], 0.0, 0, 3);
        assert_eq!(net.widths(), vec![10, 64, 32, 3]);
        assert_eq!(net.activations(), vec![Activation::Relu, Activation::Relu, Activation::Identity]);
        assert_eq!(network(4, &[], 0.0, 0, 1).widths(), vec![4, 1], "no hidden layer: linear model");
        let dropped = network(10, &[64, 32], 0.25, 9, 3);
        let kinds: Vec<bool> = dropped.layers.iter().map(|l| matches!(l, Layer::Dropout { .. })).collect();
        assert_eq!(kinds, [false, true, false, true, false], "dropout after each hidden layer");
        assert!(dropped.layers.contains(&Layer::dropout_seeded(0.25, 9)), "rate and seed as given");
    }
}
