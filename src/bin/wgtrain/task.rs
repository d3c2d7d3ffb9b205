//! The two decisions `fit` makes from its flags and the table: which loss trains the target
//! (`plan`, the one task/loss mapping) and which layers the network has (`network`, the one
//! place the layer list is built). A new task, loss or layer flag is wired in here.

use clap::ValueEnum;
use wgtrain::data::{Schema, TargetKind};
use wgtrain::{Activation, Error, Loss, Network};

/// `--task`: what the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// One class per row out of two or more (softmax cross-entropy).
    Classify,
    /// One or several numbers per row (mean squared error).
    Regress,
}

impl Task {
    /// The target kind to read the file with for this task.
    pub fn kind(self) -> TargetKind {
        match self {
            Task::Classify => TargetKind::Classes,
            Task::Regress => TargetKind::Values,
        }
    }

    /// The name printed and written to the summary.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Regress => "regress",
        }
    }
}

/// `--loss`: the regression loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossFlag {
    /// Mean squared error (the default for regress).
    Mse,
}

/// What `fit` trains: the task, the kind the target must be read as, and the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub task: Task,
    pub read_as: TargetKind,
    pub loss: Loss,
}

impl Plan {
    /// The network's output width for a table read as `read_as`: one logit per class, or one
    /// value per target column.
    pub fn outputs(&self, schema: &Schema) -> usize {
        match self.loss {
            Loss::SoftmaxCrossEntropy => schema.classes().len(),
            _ => schema.outputs(),
        }
    }
}

/// The one task/loss mapping: the target kind the table was read as (given by `--task` or
/// inferred, see `TargetKind`) and the `--loss` flag, to what is trained. Two classes are
/// trained as a two-way softmax for now.
pub fn plan(found: TargetKind, loss: Option<LossFlag>) -> Result<Plan, Error> {
    let (task, read_as) = match found {
        TargetKind::Classes | TargetKind::Binary => (Task::Classify, TargetKind::Classes),
        TargetKind::Values => (Task::Regress, TargetKind::Values),
        TargetKind::MultiLabel => {
            return Err(Error::Config(
                "the target columns are all 0/1 (multi-label), which no loss trains yet; pass \
                 --task regress to fit them as values, or give one --target column"
                    .into(),
            ))
        }
    };
    let loss = match (task, loss) {
        (Task::Classify, None) => Loss::SoftmaxCrossEntropy,
        (Task::Regress, None | Some(LossFlag::Mse)) => Loss::MeanSquaredError,
        (Task::Classify, Some(flag)) => {
            return Err(Error::Config(format!(
                "--loss {} is a regression loss, but the task is classify; leave --loss out \
                 (classify trains with the softmax cross-entropy) or pass --task regress",
                flag.to_possible_value().map_or("?".into(), |v| v.get_name().to_string())
            )))
        }
    };
    Ok(Plan { task, read_as, loss })
}

/// The one place the layer list is built: dense ReLU layers of `hidden` widths, then a dense
/// output layer of `outputs` (identity: logits or values).
pub fn network(inputs: usize, hidden: &[usize], outputs: usize) -> Network {
    let mut net = Network::new(inputs);
    for &units in hidden {
        net = net.dense(units, Activation::Relu);
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
            (TargetKind::Binary, None, Some(Loss::SoftmaxCrossEntropy), "two classes: softmax for now"),
            (TargetKind::Values, None, Some(Loss::MeanSquaredError), "values: MSE by default"),
            (TargetKind::Values, Some(LossFlag::Mse), Some(Loss::MeanSquaredError), "--loss mse"),
            (TargetKind::Classes, Some(LossFlag::Mse), None, "a regression loss on classes"),
            (TargetKind::MultiLabel, None, None, "multi-label has no loss yet"),
        ];
        for (kind, flag, want, why) in cases {
            assert_eq!(plan(kind, flag).ok().map(|p| p.loss), want, "{why}");
        }
        assert_eq!(plan(TargetKind::Binary, None).unwrap().read_as, TargetKind::Classes);
    }

    #[test]
    fn the_network_ends_in_an_identity_layer() {
        let net = network(10, &[64, 32], 3);
        assert_eq!(net.widths(), vec![10, 64, 32, 3]);
        assert_eq!(net.activations(), vec![Activation::Relu, Activation::Relu, Activation::Identity]);
        assert_eq!(network(4, &[], 1).widths(), vec![4, 1], "no hidden layer: linear model");
    }
}
