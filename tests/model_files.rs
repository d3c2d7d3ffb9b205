//! Model files that carry a table's preprocessing: saved and loaded whole, predictions brought
//! back to the target's units (checked against numbers worked out by hand), files written by
//! the `safetensors` crate before this format existed still loading, and the same contents
//! giving the same bytes, for models and for training checkpoints.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use wgtrain::checkpoint::{load_checkpoint, save_checkpoint, save_model_with};
use wgtrain::data::{read_csv, CsvOptions, Dataset, Standardizer, Targets};
use wgtrain::{
    Activation, Backend, Error, Loss, Model, Network, Preprocessing, TablePrediction, Trainer, TrainerOptions,
};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A 1-input, 1-output linear model `y = 2 x + 0.5` with the encoding of a table `x,y`:
/// features scaled by mean 1, std 2; the target by mean 10, std 3.
fn linear_regression(dir: &Path) -> Model {
    let table =
        read_csv(write(dir, "train.csv", "x,y\n1,1.5\n2,2.5\n3,3.25\n"), &CsvOptions::new("y")).unwrap();
    let prep = Preprocessing {
        schema: table.schema().clone(),
        features: Some(Standardizer { mean: vec![1.0], std: vec![2.0] }),
        target: Some(Standardizer { mean: vec![10.0], std: vec![3.0] }),
    };
    let spec = Network::new(1).dense(1, Activation::Identity);
    Model::from_layers(spec, &[(vec![2.0], vec![0.5])])
        .unwrap()
        .with_loss(Loss::MeanSquaredError)
        .with_preprocessing(prep)
        .unwrap()
}

#[test]
fn a_regression_model_predicts_in_the_targets_units() {
    let dir = tempfile::tempdir().unwrap();
    let model = linear_regression(dir.path());
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    assert_eq!(loaded, model, "loss and preprocessing come back");
    // x = 5: scaled (5 - 1) / 2 = 2, output 2 * 2 + 0.5 = 4.5, in target units 4.5 * 3 + 10.
    // x = -1: scaled -1, output -1.5, in target units 5.5. Extra columns are ignored.
    let rows = write(dir.path(), "rows.csv", "other,x\nq,5\nr,-1\n");
    let TablePrediction::Values { names, values } = loaded.predict_file(&rows).unwrap() else {
        panic!("a regression model predicts values")
    };
    assert_eq!(names, ["y"]);
    assert_eq!(values, [23.5, 5.5], "exact in f32: every step is a small binary fraction");
    assert_eq!(loaded.predict_values(&[2.0]).unwrap(), [23.5], "arrays are taken already scaled");
    assert!(matches!(loaded.predict(&[2.0]), Err(Error::Config(_))), "no softmax on a regression");
    let err = loaded.predict_file(write(dir.path(), "no_x.csv", "other\n1\n")).unwrap_err().to_string();
    assert!(err.contains("no_x.csv") && err.contains("`x`"), "the missing column is named: {err}");
}

#[test]
fn a_file_without_preprocessing_still_loads_as_a_classifier() {
    // Written as wgtrain wrote models before this format: the safetensors crate's serializer,
    // the spec alone in the metadata.
    let spec = Network::classifier(&[2, 3], Activation::Relu);
    let (w, b): (Vec<f32>, Vec<f32>) = (vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0], vec![0.0, 0.0, 2.0]);
    let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (wb, bb) = (le(&w), le(&b));
    let views = vec![
        ("layers.0.weight", TensorView::new(Dtype::F32, vec![2, 3], &wb).unwrap()),
        ("layers.0.bias", TensorView::new(Dtype::F32, vec![3], &bb).unwrap()),
    ];
    let metadata = HashMap::from([
        ("format".to_string(), "wgtrain-mlp".to_string()),
        ("version".to_string(), "1".to_string()),
        ("spec".to_string(), serde_json::to_string(&spec).unwrap()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.safetensors");
    std::fs::write(&path, safetensors::serialize(views, Some(metadata)).unwrap()).unwrap();
    let model = Model::load(&path).unwrap();
    assert_eq!((model.loss(), model.preprocessing()), (Loss::SoftmaxCrossEntropy, None));
    assert_eq!(model.predict(&[5.0, 1.0]).unwrap().labels, [0], "logits 5, 1, 2");
    assert_eq!(model.predict(&[0.0, 1.0]).unwrap().labels, [2], "logits 0, 1, 2");
    let err = model.predict_file(write(dir.path(), "r.csv", "a,b\n1,2\n")).unwrap_err();
    assert!(matches!(err, Error::Config(ref m) if m.contains("without its table encoding")), "{err}");
}

#[test]
fn preprocessing_that_does_not_fit_the_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = linear_regression(dir.path());
    let prep = model.preprocessing().unwrap().clone();
    let wide = Network::new(2).dense(1, Activation::Identity);
    let params = wide.layout().init(wgtrain::Init::He, 0);
    let path = dir.path().join("bad.safetensors");
    let cases: [(Network, Loss, Preprocessing, &str); 3] = [
        (wide, Loss::MeanSquaredError, prep.clone(), "2 inputs"),
        (model.spec().clone(), Loss::SoftmaxCrossEntropy, prep.clone(), "cannot be trained with"),
        (
            model.spec().clone(),
            Loss::MeanSquaredError,
            Preprocessing { target: Some(Standardizer { mean: vec![0.0], std: vec![0.0] }), ..prep },
            "std 0 is 0",
        ),
    ];
    for (spec, loss, prep, want) in cases {
        let params = if spec.inputs() == 2 { params.clone() } else { model.parameters().to_vec() };
        let err = save_model_with(&path, &spec, &params, loss, Some(&prep)).unwrap_err().to_string();
        assert!(err.contains(want), "expected `{want}` in: {err}");
        assert!(!path.exists(), "nothing written for: {err}");
    }
}

#[test]
fn the_same_model_and_checkpoint_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let model = linear_regression(dir.path());
    // Each save builds its metadata in a new HashMap, whose iteration order differs from map
    // to map: the bytes must not.
    let saved: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let path = dir.path().join(format!("m{i}.safetensors"));
            model.save(&path).unwrap();
            std::fs::read(path).unwrap()
        })
        .collect();
    assert!(saved.iter().all(|b| *b == saved[0]), "four saves of one model differ");
    check_layout(&saved[0], &["format", "loss", "preprocessing", "spec", "version"]);

    let x: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
    let data =
        Dataset::from_values(x, 2, Targets::Classes { labels: (0..12).map(|i| i % 3).collect(), classes: 3 })
            .unwrap();
    let options = TrainerOptions {
        spec: Network::classifier(&[2, 5, 3], Activation::Relu),
        backend: Backend::Cpu,
        batch_size: 4,
        epochs: 2,
        validation_split: 0.25,
        checkpoint_dir: Some(dir.path().join("ckpt")),
        ..TrainerOptions::default()
    };
    Trainer::new(options).unwrap().fit(&data, None, |_| {}).unwrap();
    let state = load_checkpoint(&dir.path().join("ckpt")).unwrap().expect("a checkpoint");
    let bytes: Vec<Vec<u8>> = (0..4)
        .map(|i| std::fs::read(save_checkpoint(&dir.path().join(format!("c{i}")), &state).unwrap()).unwrap())
        .collect();
    assert!(bytes.iter().all(|b| *b == bytes[0]), "four saves of one checkpoint differ");
    let keys = [
        "early_stopping",
        "epoch",
        "format",
        "history",
        "lr_control",
        "optimizer",
        "rng",
        "spec",
        "step",
        "version",
    ];
    check_layout(&bytes[0], &keys);
}

/// The file is read back by the `safetensors` crate, its header is padded to 8 bytes, and
/// the metadata keys come out sorted.
fn check_layout(bytes: &[u8], keys: &[&str]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "the data starts 8-byte aligned");
    let (_, metadata) = SafeTensors::read_metadata(bytes).expect("the safetensors crate reads the header");
    let got: Vec<&String> = metadata.metadata().as_ref().unwrap().keys().collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, keys, "the metadata keys");
    SafeTensors::deserialize(bytes).expect("and the tensors");
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let at: Vec<usize> = keys.iter().map(|k| header.find(&format!("\"{k}\":")).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "keys written in sorted order: {header:.200}");
}

/// Sigmoid models: one output gives the two classes' `[1 - p, p]` (label 1 where `z > 0`),
/// several give each label's own probability. Hand-worked: `z = 2x - 1` at x = 0, 0.5, 2 is
/// -1, 0, 3; sigmoid(0) = 0.5 exactly, so that row's label is 0 (first on ties).
#[test]
fn sigmoid_models_predict_probabilities_per_class_or_label() {
    let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
    let one = Network::new(1).dense(1, Activation::Identity);
    let slots = one.layout().layers[0];
    let mut params = vec![0.0f32; one.layout().len];
    params[slots.weight] = 2.0;
    params[slots.bias] = -1.0;
    let binary = Model::new(one, params).unwrap().with_loss(Loss::SigmoidCrossEntropy);
    let p = binary.predict(&[0.0, 0.5, 2.0]).unwrap();
    assert_eq!((p.classes, p.labels.clone()), (2, vec![0, 0, 1]));
    for (row, z) in p.probabilities.chunks(2).zip([-1.0f32, 0.0, 3.0]) {
        assert_eq!(row, [1.0 - sigmoid(z), sigmoid(z)], "z = {z}");
    }
    // Two labels: z = (x, -x).
    let two = Network::new(1).dense(2, Activation::Identity);
    let slots = two.layout().layers[0];
    let mut params = vec![0.0f32; two.layout().len];
    params[slots.weight] = 1.0;
    params[slots.weight + 1] = -1.0;
    let labels = Model::new(two, params).unwrap().with_loss(Loss::SigmoidCrossEntropy);
    let p = labels.predict(&[3.0]).unwrap();
    assert_eq!((p.classes, p.labels.clone()), (2, vec![0]), "the most probable label");
    assert_eq!(p.probabilities, [sigmoid(3.0), sigmoid(-3.0)]);
    let err = labels.predict_values(&[3.0]).unwrap_err();
    assert!(matches!(err, Error::Config(ref m) if m.contains("predicts classes")), "{err}");
}
