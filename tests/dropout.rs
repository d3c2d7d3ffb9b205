//! `Layer::Dropout` through the public API: validation that names the layer, a layout (and
//! model files) unchanged by parameter-free layers, the spec's JSON form, evaluation as the
//! identity, and a short MNIST run with dropout that learns on the CPU and on the test adapter.

mod common;

use common::fixture;
use wgtrain::checkpoint::{load_model, save_model};
use wgtrain::data::{default_mnist_dir, load_mnist};
use wgtrain::{Activation, Backend, Error, Init, Layer, Model, Network, Trainer, TrainerOptions};

fn with_dropout(rate: f32) -> Network {
    Network::new(784).dense(64, Activation::Relu).dropout(rate).dense(10, Activation::Identity)
}

/// Each row: a network, whether it is valid, and why.
#[test]
fn validation_names_the_dropout_layer() {
    let last = Network::new(784).dense(10, Activation::Identity).dropout(0.2);
    let cases: [(Network, Option<&str>, &str); 7] = [
        (with_dropout(0.2), None, "a rate in [0, 1) after a hidden layer"),
        (with_dropout(0.0), None, "rate 0 is allowed (no element dropped)"),
        (with_dropout(1.0), Some("layer 1 (dropout): rate 1"), "rate 1 would drop everything"),
        (with_dropout(-0.1), Some("layer 1 (dropout): rate -0.1"), "a negative rate"),
        (with_dropout(f32::NAN), Some("layer 1 (dropout): rate NaN"), "NaN is not a rate"),
        (with_dropout(f32::INFINITY), Some("layer 1 (dropout)"), "infinity is not a rate"),
        (last, Some("layer 1 (dropout) is the last layer"), "dropping logits"),
    ];
    for (net, want, why) in cases {
        match (net.validate(), want) {
            (Ok(()), None) => {}
            (Err(Error::Config(m)), Some(w)) => assert!(m.contains(w), "{why}: message {m:?} lacks {w:?}"),
            (got, _) => panic!("{why}: got {got:?}, wanted {want:?}"),
        }
    }
}

/// A dropout layer takes no room: the layout, the parameter count and the tensors' shapes
/// are those of the network without it, and `of_layer` maps every layer to its tensors.
#[test]
fn the_layout_counts_dense_layers_only() {
    let plain = Network::classifier(&[784, 64, 10], Activation::Relu);
    let dropped = with_dropout(0.5);
    let (a, b) = (plain.layout(), dropped.layout());
    assert_eq!(a.layers, b.layers);
    assert_eq!((a.len, a.parameter_count()), (b.len, b.parameter_count()));
    assert_eq!(dropped.widths(), vec![784, 64, 64, 10]);
    assert_eq!(b.of_layer(0), Some(&b.layers[0]));
    assert_eq!(b.of_layer(1), None, "the dropout layer has no tensors");
    assert_eq!(b.of_layer(2), Some(&b.layers[1]));
    assert_eq!(b.of_layer(3), None, "past the end");
}

/// The spec's JSON form: `{"dropout": {"rate": .., "seed": ..}}`, the seed optional.
#[test]
fn the_spec_reads_and_writes_dropout_as_json() {
    let net = Network::new(4).dense(3, Activation::Relu);
    let mut net = net;
    net.layers.push(Layer::dropout_seeded(0.25, 7));
    let net = net.dense(2, Activation::Identity);
    let json = serde_json::to_string(&net).unwrap();
    assert!(json.contains(r#"{"dropout":{"rate":0.25,"seed":7}}"#), "{json}");
    assert_eq!(serde_json::from_str::<Network>(&json).unwrap(), net);
    let no_seed = json.replace(r#","seed":7"#, "");
    let read: Network = serde_json::from_str(&no_seed).unwrap();
    assert_eq!(read.layers[1], Layer::dropout(0.25), "a missing seed is 0");
}

/// A model with dropout saves `layers.0.*` and `layers.1.*` (dense layers counted), loads
/// back with its spec, and predicts exactly what the same weights without dropout predict:
/// dropout is the identity outside training. Files without dropout load as before (the
/// checkpoint tests keep them).
#[test]
fn model_files_with_dropout_round_trip_and_predict_without_dropping() {
    let spec = with_dropout(0.4);
    let params = spec.layout().init(Init::He, 2);
    let dir = std::env::temp_dir().join(format!("wgtrain-dropout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    save_model(&path, &spec, &params).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("layers.1.weight") && !text.contains("layers.2."), "tensor names");
    let (loaded, loaded_params) = load_model(&path).unwrap();
    assert_eq!(loaded, spec);
    assert_eq!(loaded_params, params);
    std::fs::remove_dir_all(&dir).ok();

    let x: Vec<f32> = (0..5 * 784).map(|i| ((i * 31) % 256) as f32 / 255.0).collect();
    let plain = Network::classifier(&[784, 64, 10], Activation::Relu);
    let a = Model::new(spec, params.clone()).unwrap().predict(&x).unwrap();
    let b = Model::new(plain, params).unwrap().predict(&x).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

/// 3,000 MNIST training images, dropout 0.2 after the hidden layer, 6 epochs: the training
/// loss falls and the 10,000 test images are classified above 85% (without dropout the same
/// run on 2,000 images reaches it, `tests/training.rs`), on the CPU and on the test adapter.
#[test]
fn a_short_mnist_run_with_dropout_learns() {
    let mnist = load_mnist(default_mnist_dir().expect("bundled MNIST found")).expect("bundled MNIST");
    let train = mnist.train.take(3000);
    for backend in [Backend::Cpu, Backend::Devices(vec![fixture().gpu.clone()])] {
        let name = format!("{backend:?}");
        let options = TrainerOptions {
            spec: with_dropout(0.2),
            epochs: 6,
            batch_size: 32,
            validation_split: 0.1,
            backend,
            ..TrainerOptions::default()
        };
        let mut t = Trainer::new(options).unwrap();
        let report = t.fit(&train, None, |_| {}).unwrap();
        let losses: Vec<f32> =
            report.history.epochs.iter().map(|e| e.get("loss").unwrap_or(f32::NAN)).collect();
        assert!(losses.last() < losses.first(), "{name}: training loss did not fall: {losses:?}");
        let accuracy = t.evaluate(&mnist.test).unwrap().get("accuracy").unwrap_or(0.0);
        assert!(accuracy > 0.85, "{name}: test accuracy {accuracy} after {losses:?}");
    }
}

/// A run stopped after its first epoch and resumed from its state ends with the weights of
/// the run that was never stopped, bit for bit: the resumed run's steps draw the masks of the
/// optimizer steps they are (the state carries the step count), on the CPU and on the test
/// adapter.
#[test]
fn a_resumed_run_with_dropout_draws_the_masks_it_would_have() {
    let train =
        load_mnist(default_mnist_dir().expect("bundled MNIST found")).expect("MNIST").train.take(1000);
    for gpu in [false, true] {
        let options = |epochs: usize| TrainerOptions {
            spec: with_dropout(0.3),
            epochs,
            batch_size: 32,
            seed: 3,
            backend: if gpu { Backend::Devices(vec![fixture().gpu.clone()]) } else { Backend::Cpu },
            ..TrainerOptions::default()
        };
        let mut whole = Trainer::new(options(2)).unwrap();
        whole.fit(&train, None, |_| {}).unwrap();
        let mut first = Trainer::new(options(1)).unwrap();
        first.fit(&train, None, |_| {}).unwrap();
        let mut resumed = Trainer::from_state(options(2), first.state().unwrap()).unwrap();
        resumed.fit(&train, None, |_| {}).unwrap();
        let bits = |t: &Trainer| t.parameters().unwrap().into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(bits(&resumed), bits(&whole), "gpu {gpu}: the resumed run trained other weights");
    }
}
