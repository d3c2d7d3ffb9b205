//! Saved models and training checkpoints: exact round trips, and every kind of corrupt file
//! rejected with an error that names it. CPU only; each test runs in milliseconds.
//!
//! Corrupt files are made by taking a valid file apart with the `safetensors` crate, changing
//! one thing, and writing it back, so each test breaks exactly the rule it names.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tempfile::TempDir;
use wgtrain::checkpoint::{
    load_checkpoint, load_checkpoint_bytes, load_model, load_model_bytes, save_checkpoint, save_model,
    TrainingState, CHECKPOINT_FILE,
};
use wgtrain::data::shuffled;
use wgtrain::{
    Activation, Decision, EarlyStopping, EpochMetrics, EpochRecord, Error, History, Init, Layer, LrSchedule,
    Monitor, Network, Optimizer, ReduceLrOnPlateau, Result,
};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Parameters for `spec` whose bits are worth checking: He init, non-zero biases, and a few
/// awkward values (-0.0, a subnormal, the extremes) in the first weights. Padding stays zero.
fn params_for(spec: &Network, seed: u64) -> Vec<f32> {
    let layout = spec.layout();
    let mut params = layout.init(Init::He, seed);
    for slots in &layout.layers {
        for (i, b) in params[slots.bias..slots.bias + slots.outputs].iter_mut().enumerate() {
            *b = ((i as f32 + seed as f32) * 0.37).sin();
        }
    }
    let awkward = [-0.0, f32::from_bits(1), f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1.0 / 3.0];
    let first = &layout.layers[0];
    let n = awkward.len().min(first.inputs * first.outputs);
    params[first.weight..first.weight + n].copy_from_slice(&awkward[..n]);
    params
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The specs of the round-trip tests: odd sizes, every activation, one layer and many.
fn specs() -> Vec<Network> {
    vec![
        Network::classifier(&[7, 5, 3], Activation::Relu),
        dense_stack(&[4, 6, 5, 7, 3, 2], &Activation::ALL),
        dense_stack(&[3, 9, 2, 6, 1], &Activation::ALL[1..]),
        Network::classifier(&[1, 1], Activation::Identity),
        Network::classifier(&[13, 1, 17], Activation::Gelu),
        Network::default(),
    ]
}

/// One tensor of a safetensors file, owned.
#[derive(Clone)]
struct Tensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Tensor {
    fn f32(name: &str, shape: &[usize], values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor { name: name.into(), dtype: Dtype::F32, shape: shape.to_vec(), bytes }
    }
}

/// One way to break a file.
type Corruption = fn(&mut Parts);

/// A file taken apart: its tensors and its `__metadata__`.
struct Parts {
    tensors: Vec<Tensor>,
    metadata: HashMap<String, String>,
}

impl Parts {
    fn read(path: &Path) -> Parts {
        let bytes = std::fs::read(path).unwrap();
        let metadata = SafeTensors::read_metadata(&bytes).unwrap().1.metadata().clone().unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors: Vec<Tensor> = file
            .tensors()
            .into_iter()
            .map(|(name, view)| Tensor {
                name,
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                bytes: view.data().to_vec(),
            })
            .collect();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Parts { tensors, metadata }
    }

    fn write(&self, path: &Path) {
        let views: Vec<(&str, TensorView)> = self
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), TensorView::new(t.dtype, t.shape.clone(), &t.bytes).unwrap()))
            .collect();
        std::fs::write(path, safetensors::serialize(views, Some(self.metadata.clone())).unwrap()).unwrap();
    }

    fn tensor(&mut self, name: &str) -> &mut Tensor {
        self.tensors.iter_mut().find(|t| t.name == name).unwrap()
    }

    fn remove(&mut self, name: &str) {
        let before = self.tensors.len();
        self.tensors.retain(|t| t.name != name);
        assert_eq!(self.tensors.len(), before - 1, "no tensor {name} to remove");
    }
}

/// Fails unless `result` is an [`Error::File`] for `path` whose reason contains `needle`.
#[track_caller]
fn assert_file_error<T: Debug>(result: Result<T>, path: &Path, needle: &str) {
    match result {
        Err(Error::File { path: p, reason }) => {
            assert_eq!(p, path, "the error names another file ({reason})");
            assert!(reason.contains(needle), "reason {reason:?} does not mention {needle:?}");
        }
        other => panic!("expected a file error mentioning {needle:?}, got {other:?}"),
    }
}

/// Fails unless `result` is an [`Error::Data`] that names `path` and mentions `needle`.
#[track_caller]
fn assert_data_error<T: Debug>(result: Result<T>, path: &Path, needle: &str) {
    match result {
        Err(Error::Data(message)) => {
            let name = path.display().to_string();
            assert!(message.contains(&name), "{message:?} does not name {name}");
            assert!(message.contains(needle), "{message:?} does not mention {needle:?}");
        }
        other => panic!("expected a data error mentioning {needle:?}, got {other:?}"),
    }
}

/// A valid 7-5-3 model file in a fresh folder.
fn small_model() -> (TempDir, PathBuf, Network, Vec<f32>) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("model.safetensors");
    let spec = Network::classifier(&[7, 5, 3], Activation::Tanh);
    let params = params_for(&spec, 3);
    save_model(&path, &spec, &params).unwrap();
    (dir, path, spec, params)
}

/// Saves a small model, lets `corrupt` change its parts, writes them back and loads the result.
fn load_corrupted_model(corrupt: impl FnOnce(&mut Parts)) -> (TempDir, PathBuf, Result<(Network, Vec<f32>)>) {
    let (dir, path, _, _) = small_model();
    let mut parts = Parts::read(&path);
    corrupt(&mut parts);
    parts.write(&path);
    let result = load_model(&path);
    (dir, path, result)
}

fn metrics(val_loss: f32) -> EpochMetrics {
    EpochMetrics::new()
        .with("loss", val_loss + 0.1)
        .with("accuracy", 0.5)
        .with("val_loss", val_loss)
        .with("val_accuracy", 0.6)
}

/// A mid-run state: Adam moments, an advanced shuffle generator, early stopping with a snapshot,
/// a history that holds a NaN (a diverged epoch must be kept as it was), and (with early
/// stopping) ReduceLROnPlateau in cooldown after a reduction, its best value a NaN.
fn mid_run_state(spec: Network, optimizer: Optimizer, with_early_stopping: bool) -> TrainingState {
    let params = params_for(&spec, 11);
    let m: Vec<f32> = params_for(&spec, 12).iter().map(|x| x * 1e-3).collect();
    let v: Vec<f32> = params_for(&spec, 13).iter().map(|x| x.abs() * 1e-6).collect();
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    for _ in 0..13 {
        rng.next_u64();
    }
    let mut history = History::default();
    let mut early_stopping = EarlyStopping::new(Monitor::val_loss())
        .patience(3)
        .min_delta(1e-3)
        .baseline(Some(0.9))
        .restore_best_weights(true);
    let mut reduce_lr = ReduceLrOnPlateau::new("val_loss").patience(1).cooldown(2).factor(0.5);
    let mut learning_rate = optimizer.lr();
    assert_eq!(reduce_lr.on_epoch_end(&metrics(f32::NAN), learning_rate), None, "NaN first is the best");
    for (epoch, loss) in [0.8, 0.7, 0.75, f32::NAN].into_iter().enumerate() {
        history.push(EpochRecord::new(epoch, &metrics(loss), 1.5, 1000));
        if !loss.is_nan() {
            assert_eq!(early_stopping.on_epoch_end(epoch, &metrics(loss)), Decision::Continue);
        }
        if let Some(lr) = reduce_lr.on_epoch_end(&metrics(loss), learning_rate) {
            learning_rate = lr;
        }
    }
    assert!(reduce_lr.cooldown_counter() > 0 && learning_rate < optimizer.lr(), "{reduce_lr:?}");
    TrainingState {
        best_params: params_for(&spec, 14),
        spec,
        optimizer,
        params,
        m,
        v,
        step: 4 * 469,
        epoch: 4,
        rng,
        early_stopping: with_early_stopping.then_some(early_stopping),
        history,
        learning_rate,
        lr_schedule: LrSchedule::Constant,
        reduce_lr_on_plateau: with_early_stopping.then_some(reduce_lr),
    }
}

/// Exact equality, NaNs included: `Debug` prints floats in their shortest round-trip form.
#[track_caller]
fn assert_same_state(loaded: &TrainingState, saved: &TrainingState) {
    assert_eq!(format!("{loaded:?}"), format!("{saved:?}"));
    for (a, b) in [(&loaded.params, &saved.params), (&loaded.m, &saved.m), (&loaded.v, &saved.v)] {
        assert_eq!(bits(a), bits(b));
    }
    assert_eq!(bits(&loaded.best_params), bits(&saved.best_params));
}

// ---------------------------------------------------------------------------------------------
// Saved models

#[test]
fn model_round_trip_is_bit_exact() {
    let dir = TempDir::new().unwrap();
    for (i, spec) in specs().into_iter().enumerate() {
        let path = dir.path().join(format!("model{i}.safetensors"));
        let params = params_for(&spec, i as u64);
        save_model(&path, &spec, &params).unwrap();
        let (loaded_spec, loaded) = load_model(&path).unwrap();
        assert_eq!(loaded_spec, spec);
        assert_eq!(bits(&loaded), bits(&params), "spec {:?}", spec.widths());
        let bytes = std::fs::read(&path).unwrap();
        let (from_bytes_spec, from_bytes) = load_model_bytes(&bytes).unwrap();
        assert_eq!((from_bytes_spec, bits(&from_bytes)), (spec, bits(&params)));
    }
}

#[test]
fn model_file_is_plain_named_tensors() {
    let (_dir, path, spec, params) = small_model();
    let parts = Parts::read(&path);
    let names: Vec<&str> = parts.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]);
    let shapes: Vec<&[usize]> = parts.tensors.iter().map(|t| t.shape.as_slice()).collect();
    assert_eq!(shapes, [&[5][..], &[7, 5], &[3], &[5, 3]]);
    assert!(parts.tensors.iter().all(|t| t.dtype == Dtype::F32));
    // W is [inputs, outputs] row-major: element (1, 2) of layer 0 is params[1 * 5 + 2].
    let w0 = &parts.tensors[1].bytes;
    assert_eq!(w0[(5 + 2) * 4..(5 + 3) * 4], params[5 + 2].to_le_bytes());
    assert_eq!(parts.metadata["format"], "wgtrain-mlp");
    assert_eq!(parts.metadata["version"], "1");
    assert_eq!(serde_json::from_str::<Network>(&parts.metadata["spec"]).unwrap(), spec);
}

#[test]
fn save_model_refuses_what_it_could_not_load() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("m.safetensors");
    let spec = Network::classifier(&[7, 5, 3], Activation::Relu);
    let params = params_for(&spec, 1);
    let short = &params[..params.len() - 1];
    assert!(matches!(save_model(&path, &spec, short), Err(Error::Shape(_))));
    let mut nan = params.clone();
    nan[2] = f32::NAN;
    assert!(matches!(save_model(&path, &spec, &nan), Err(Error::Data(_))));
    let bad_spec = Network::classifier(&[7, 0, 3], Activation::Relu);
    assert!(matches!(save_model(&path, &bad_spec, &params), Err(Error::Shape(_))));
    assert!(!path.exists(), "a refused save wrote a file");
    let missing_dir = dir.path().join("no/such/dir/m.safetensors");
    assert_file_error(save_model(&missing_dir, &spec, &params), &missing_dir, "not found");
}

#[test]
fn missing_model_file_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent.safetensors");
    assert_file_error(load_model(&path), &path, "not found");
}

#[test]
fn truncated_model_is_an_error_at_every_cut() {
    let (_dir, path, _, _) = small_model();
    let bytes = std::fs::read(&path).unwrap();
    let cuts: Vec<usize> = (0..bytes.len()).step_by(37).chain([bytes.len() - 1]).collect();
    assert!(cuts.len() > 10, "the model file is only {} bytes", bytes.len());
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert_file_error(load_model(&path), &path, "");
        assert!(matches!(load_model_bytes(&bytes[..cut]), Err(Error::File { .. })), "cut at {cut}");
    }
}

#[test]
fn wrong_or_missing_metadata_is_an_error() {
    let cases: [(&str, Corruption, &str); 6] = [
        ("another format", |p| _ = p.metadata.insert("format".into(), "pt".into()), "\"pt\""),
        ("no format", |p| _ = p.metadata.remove("format"), "`format` is missing"),
        ("no spec", |p| _ = p.metadata.remove("spec"), "`spec` is missing"),
        ("a newer version", |p| _ = p.metadata.insert("version".into(), "2".into()), "version"),
        ("spec not JSON", |p| _ = p.metadata.insert("spec".into(), "{7, 5".into()), "`spec`"),
        (
            "a layer kind this version does not know",
            |p| {
                _ = p.metadata.insert("spec".into(), r#"{"inputs":7,"layers":[{"conv":{"units":5}}]}"#.into())
            },
            "conv",
        ),
    ];
    for (why, corrupt, needle) in cases {
        let (_dir, path, result) = load_corrupted_model(corrupt);
        println!("{why}");
        assert_file_error(result, &path, needle);
    }
}

#[test]
fn file_without_metadata_is_an_error() {
    let (_dir, path, result) = load_corrupted_model(|p| p.metadata.clear());
    assert_file_error(result, &path, "`format` is missing");
}

#[test]
fn missing_and_extra_tensors_are_errors() {
    let (_dir, path, result) = load_corrupted_model(|p| p.remove("layers.1.bias"));
    assert_file_error(result, &path, "`layers.1.bias` is missing");
    let (_dir, path, result) =
        load_corrupted_model(|p| p.tensors.push(Tensor::f32("layers.2.weight", &[3, 3], &[0.5; 9])));
    assert_file_error(result, &path, "unexpected tensor `layers.2.weight`");
    let (_dir, path, result) = load_corrupted_model(|p| p.tensors.push(Tensor::f32("extra", &[0], &[])));
    assert_file_error(result, &path, "unexpected tensor `extra`");
}

#[test]
fn wrong_dtype_is_an_error() {
    let (_dir, path, result) = load_corrupted_model(|p| {
        let t = p.tensor("layers.0.weight");
        t.dtype = Dtype::F64;
        t.bytes = [1.0f64; 35].iter().flat_map(|v| v.to_le_bytes()).collect();
    });
    assert_file_error(result, &path, "`layers.0.weight` is F64, expected F32");
    // I32 has F32's size: only the dtype check can catch it.
    let (_dir, path, result) = load_corrupted_model(|p| p.tensor("layers.1.bias").dtype = Dtype::I32);
    assert_file_error(result, &path, "`layers.1.bias` is I32, expected F32");
}

#[test]
fn wrong_shape_is_an_error() {
    // The transpose has the right byte length: only the shape check can catch it.
    let (_dir, path, result) = load_corrupted_model(|p| p.tensor("layers.0.weight").shape = vec![5, 7]);
    assert_file_error(result, &path, "`layers.0.weight` has shape [5, 7], expected [7, 5]");
    let (_dir, path, result) = load_corrupted_model(|p| p.tensor("layers.0.weight").shape = vec![35]);
    assert_file_error(result, &path, "has shape [35]");
    let (_dir, path, result) =
        load_corrupted_model(|p| *p.tensor("layers.1.bias") = Tensor::f32("layers.1.bias", &[4], &[0.0; 4]));
    assert_file_error(result, &path, "`layers.1.bias` has shape [4], expected [3]");
}

#[test]
fn non_finite_weights_are_data_errors() {
    for (name, element, value) in [
        ("layers.1.weight", 3, f32::NAN),
        ("layers.0.bias", 4, f32::INFINITY),
        ("layers.1.bias", 0, f32::NEG_INFINITY),
    ] {
        let (_dir, path, result) = load_corrupted_model(|p| {
            p.tensor(name).bytes[element * 4..element * 4 + 4].copy_from_slice(&value.to_le_bytes())
        });
        assert_data_error(result, &path, &format!("`{name}` element {element} is {value}"));
    }
}

#[test]
fn bad_specs_are_rejected_before_allocating() {
    let spec_json = |sizes: &[usize]| {
        let activations = vec![Activation::Relu; sizes.len().saturating_sub(1)];
        serde_json::to_string(&dense_stack(sizes, &activations)).unwrap()
    };
    let many_layers = vec![1usize; 5000];
    let cases: [(&[usize], &str); 5] = [
        (&[7, 0, 3], "zero"),
        (&[7], "at least one layer"),
        // Each size over validate's 2^24 limit.
        (&[1 << 30, 1 << 30], "2^24"),
        // Each size allowed, but 2^48 parameters: must fail on arithmetic, not on allocation.
        (&[1 << 24, 1 << 24, 1 << 24], "refusing to load it"),
        (&many_layers, "over the limit"),
    ];
    for (sizes, needle) in cases {
        let (_dir, path, result) =
            load_corrupted_model(|p| _ = p.metadata.insert("spec".into(), spec_json(sizes)));
        assert_file_error(result, &path, needle);
    }
}

#[test]
fn spec_that_disagrees_with_the_tensors_is_an_error() {
    let (_dir, path, result) = load_corrupted_model(|p| {
        _ = p.metadata.insert("spec".into(), r#"{"inputs":7,"layers":[{"dense":{"units":4,"activation":"relu"}},{"dense":{"units":3,"activation":"identity"}}]}"#.into())
    });
    assert_file_error(result, &path, "`layers.0.weight` has shape [7, 5], expected [7, 4]");
}

#[test]
fn header_that_lies_about_lengths_is_an_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("lies.safetensors");
    let spec = r#"{\"sizes\":[1000000,1],\"activations\":[\"identity\"]}"#;
    let header = format!(
        r#"{{"__metadata__":{{"format":"wgtrain-mlp","version":"1","spec":"{spec}"}},"layers.0.weight":{{"dtype":"F32","shape":[1000000,1],"data_offsets":[0,4000000]}},"layers.0.bias":{{"dtype":"F32","shape":[1],"data_offsets":[4000000,4000004]}}}}"#
    );
    let write = |header_len: u64, header: &str, payload: usize| {
        let mut bytes = header_len.to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, payload));
        std::fs::write(&path, bytes).unwrap();
    };
    // The header claims 4 MB of weights; 16 bytes follow.
    write(header.len() as u64, &header, 16);
    assert_file_error(load_model(&path), &path, "not a valid safetensors file");
    // A header length past the end of the file, and an absurd one.
    write(header.len() as u64 + 100, &header, 0);
    assert_file_error(load_model(&path), &path, "not a valid safetensors file");
    write(1 << 60, &header, 0);
    assert_file_error(load_model(&path), &path, "not a valid safetensors file");
    // Garbage instead of JSON.
    write(8, "\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}", 0);
    assert_file_error(load_model(&path), &path, "not a valid safetensors file");
}

// ---------------------------------------------------------------------------------------------
// Training checkpoints

#[test]
fn checkpoint_round_trip_is_exact() {
    let optimizers = [
        Optimizer::adam(3e-4),
        Optimizer::sgd(0.1, 0.9),
        Optimizer::Adam { lr: 0.1234567, beta1: 0.85, beta2: 0.99, eps: 1e-8, weight_decay: 0.01 },
    ];
    for (i, spec) in specs().into_iter().enumerate() {
        let dir = TempDir::new().unwrap();
        let mut state = mid_run_state(spec, optimizers[i % 3], i % 2 == 0);
        if i % 3 == 1 {
            state.best_params.clear();
        }
        let path = save_checkpoint(dir.path(), &state).unwrap();
        assert_eq!(path, dir.path().join(CHECKPOINT_FILE));
        let loaded = load_checkpoint(dir.path()).unwrap().expect("a checkpoint was saved");
        assert_same_state(&loaded, &state);
        assert_same_state(&load_checkpoint_bytes(&std::fs::read(&path).unwrap()).unwrap(), &state);
    }
}

#[test]
fn resumed_run_shuffles_and_stops_as_the_original() {
    let dir = TempDir::new().unwrap();
    let spec = Network::classifier(&[7, 5, 3], Activation::Relu);
    let mut original = mid_run_state(spec, Optimizer::default(), true);
    save_checkpoint(&dir.path().join("nested/run"), &original).unwrap();
    let mut resumed = load_checkpoint(&dir.path().join("nested/run")).unwrap().unwrap();

    let indices: Vec<u32> = (0..1000).collect();
    for _ in 0..3 {
        assert_eq!(shuffled(&indices, &mut resumed.rng), shuffled(&indices, &mut original.rng));
    }
    let (mut a, mut b) = (indices.clone(), indices);
    a.shuffle(&mut resumed.rng);
    b.shuffle(&mut original.rng);
    assert_eq!(a, b);
    assert_eq!(resumed.rng.next_u64(), original.rng.next_u64());

    let (es_resumed, es_original) =
        (resumed.early_stopping.as_mut().unwrap(), original.early_stopping.as_mut().unwrap());
    // Patience 3 with best 0.7 at epoch 1 and wait 1 after epoch 2 (epoch 3's NaN was skipped):
    // epochs 4 and 5 do not improve, so epoch 5 stops.
    let mut decisions = Vec::new();
    for epoch in 4..8 {
        let decision = es_resumed.on_epoch_end(epoch, &metrics(0.71));
        assert_eq!(decision, es_original.on_epoch_end(epoch, &metrics(0.71)), "epoch {epoch}");
        assert_eq!(format!("{es_resumed:?}"), format!("{es_original:?}"), "epoch {epoch}");
        decisions.push(decision);
        if decision == Decision::Stop {
            break;
        }
    }
    assert_eq!(decisions, [Decision::Continue, Decision::Stop]);
    assert_eq!(es_resumed.restore_epoch(), Some(1));

    // ReduceLROnPlateau goes on from its cooldown as the original does.
    assert_eq!(resumed.learning_rate.to_bits(), original.learning_rate.to_bits());
    let (r_resumed, r_original) =
        (resumed.reduce_lr_on_plateau.as_mut().unwrap(), original.reduce_lr_on_plateau.as_mut().unwrap());
    let lr = resumed.learning_rate;
    let rates: Vec<Option<f32>> = (0..6).map(|_| r_resumed.on_epoch_end(&metrics(0.9), lr)).collect();
    let expected: Vec<Option<f32>> = (0..6).map(|_| r_original.on_epoch_end(&metrics(0.9), lr)).collect();
    assert_eq!(rates, expected);
    assert!(rates.iter().any(Option::is_some), "a reduction after the cooldown: {rates:?}");
}

#[test]
fn checkpoint_in_empty_or_missing_dir_is_none() {
    let dir = TempDir::new().unwrap();
    assert!(load_checkpoint(dir.path()).unwrap().is_none());
    assert!(load_checkpoint(&dir.path().join("never/created")).unwrap().is_none());
}

#[test]
fn second_save_replaces_the_first_and_leaves_no_temporary_file() {
    let dir = TempDir::new().unwrap();
    let spec = Network::classifier(&[7, 5, 3], Activation::Relu);
    let mut state = mid_run_state(spec, Optimizer::default(), true);
    save_checkpoint(dir.path(), &state).unwrap();
    state.epoch += 1;
    state.params[0] = 42.0;
    save_checkpoint(dir.path(), &state).unwrap();
    assert_same_state(&load_checkpoint(dir.path()).unwrap().unwrap(), &state);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [CHECKPOINT_FILE]);
}

#[test]
fn leftover_temporary_file_from_a_crash_is_ignored() {
    let dir = TempDir::new().unwrap();
    let spec = Network::classifier(&[7, 5, 3], Activation::Relu);
    let old = mid_run_state(spec, Optimizer::default(), true);
    let mut new = old.clone();
    new.epoch += 1;
    new.params[1] = -1.0;
    // The new state's bytes, cut short as a crash between write and rename would leave them,
    // under the name a crashed writer (another pid) would have used.
    let scratch = TempDir::new().unwrap();
    let full = std::fs::read(save_checkpoint(scratch.path(), &new).unwrap()).unwrap();
    let leftover = dir.path().join(format!(".{CHECKPOINT_FILE}.tmp.4000000.0"));
    std::fs::write(&leftover, &full[..full.len() / 2]).unwrap();

    assert!(load_checkpoint(dir.path()).unwrap().is_none(), "a temporary file is no checkpoint");
    save_checkpoint(dir.path(), &old).unwrap();
    std::fs::write(&leftover, &full[..full.len() / 2]).unwrap();
    assert_same_state(&load_checkpoint(dir.path()).unwrap().unwrap(), &old);
    save_checkpoint(dir.path(), &new).unwrap();
    assert_same_state(&load_checkpoint(dir.path()).unwrap().unwrap(), &new);
    assert!(leftover.exists(), "another writer's temporary file was touched");
}

#[test]
fn truncated_checkpoint_is_an_error_not_none() {
    let dir = TempDir::new().unwrap();
    let spec = Network::classifier(&[7, 5, 3], Activation::Relu);
    let path = save_checkpoint(dir.path(), &mid_run_state(spec, Optimizer::default(), true)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in (0..bytes.len()).step_by(37).chain([bytes.len() - 1]) {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert_file_error(load_checkpoint(dir.path()), &path, "");
    }
}

/// Saves a 7-5-3 checkpoint, lets `corrupt` change its parts and loads the result.
fn load_corrupted_checkpoint(
    corrupt: impl FnOnce(&mut Parts),
) -> (TempDir, PathBuf, Result<Option<TrainingState>>) {
    let dir = TempDir::new().unwrap();
    let spec = Network::classifier(&[7, 5, 3], Activation::Relu);
    let path = save_checkpoint(dir.path(), &mid_run_state(spec, Optimizer::default(), true)).unwrap();
    let mut parts = Parts::read(&path);
    corrupt(&mut parts);
    parts.write(&path);
    let result = load_checkpoint(dir.path());
    (dir, path, result)
}

#[test]
fn checkpoint_tensor_errors() {
    // 7-5-3: W0 at 0 (35 floats), b0 at 36, W1 at 44 (15), b1 at 60 (3); 64 floats in all.
    let len = Network::classifier(&[7, 5, 3], Activation::Relu).layout().len;
    assert_eq!(len, 64);
    let cases: [(Corruption, &str); 9] = [
        (|p| p.remove("v"), "tensor `v` is missing"),
        (|p| p.tensors.push(Tensor::f32("u", &[64], &[0.0; 64])), "unexpected tensor `u`"),
        (|p| *p.tensor("params") = Tensor::f32("params", &[60], &[0.0; 60]), "`params` has 60 floats"),
        (
            |p| *p.tensor("m") = Tensor::f32("m", &[65], &[0.0; 65]),
            "`m` has 65 floats, the spec [7, 5, 3] needs 64",
        ),
        (|p| *p.tensor("best_params") = Tensor::f32("best_params", &[3], &[0.0; 3]), "needs 64 or 0"),
        (|p| p.tensor("m").shape = vec![8, 8], "`m` has shape [8, 8], expected 1-D"),
        (|p| p.tensor("v").dtype = Dtype::U32, "`v` is U32"),
        // b0 is floats 36..41 and W1 starts at 44: 41..44 is padding, as is 63.
        (
            |p| p.tensor("m").bytes[42 * 4..43 * 4].copy_from_slice(&1.0f32.to_le_bytes()),
            "`m`[42] is padding",
        ),
        (
            |p| p.tensor("params").bytes[63 * 4..64 * 4].copy_from_slice(&1.0f32.to_le_bytes()),
            "`params`[63] is padding",
        ),
    ];
    for (corrupt, needle) in cases {
        let (_dir, path, result) = load_corrupted_checkpoint(corrupt);
        assert_file_error(result, &path, needle);
    }
    let (_dir, path, result) =
        load_corrupted_checkpoint(|p| p.tensor("v").bytes[4..8].copy_from_slice(&f32::NAN.to_le_bytes()));
    assert_data_error(result, &path, "`v` element 1 is NaN");
}

#[test]
fn checkpoint_metadata_errors() {
    let cases: [(Corruption, &str); 10] = [
        (|p| _ = p.metadata.remove("history"), "`history` is missing"),
        (
            |p| {
                _ = p.metadata.insert(
                    "lr_control".into(),
                    r#"{"learning_rate":-1.0,"schedule":"Constant","reduce_lr_on_plateau":null}"#.into(),
                )
            },
            "learning rate must be finite and >= 0, got -1",
        ),
        (
            |p| {
                let text = p.metadata["lr_control"].replace(r#""factor":0.5"#, r#""factor":1.5"#);
                _ = p.metadata.insert("lr_control".into(), text)
            },
            "reduce_lr_on_plateau: factor must be in (0, 1)",
        ),
        (|p| _ = p.metadata.remove("rng"), "`rng` is missing"),
        (|p| _ = p.metadata.insert("rng".into(), r#"{"state":"x"}"#.into()), "metadata `rng`"),
        (|p| _ = p.metadata.insert("step".into(), "-1".into()), "metadata `step`"),
        (|p| _ = p.metadata.insert("format".into(), "wgtrain-mlp".into()), "use load_model"),
        (
            |p| _ = p.metadata.insert("optimizer".into(), r#"{"Sgd":{"lr":0.0,"momentum":0.0}}"#.into()),
            "learning rate",
        ),
        (|p| _ = p.metadata.insert("early_stopping".into(), "[]".into()), "metadata `early_stopping`"),
        (
            |p| {
                _ = p
                    .metadata
                    .insert("spec".into(), r#"{"inputs":7,"layers":[{"dense":{"units":6,"activation":"relu"}},{"dense":{"units":3,"activation":"identity"}}]}"#.into())
            },
            "needs 76",
        ),
    ];
    for (corrupt, needle) in cases {
        let (_dir, path, result) = load_corrupted_checkpoint(corrupt);
        assert_file_error(result, &path, needle);
    }
}

#[test]
fn model_and_checkpoint_are_not_confused() {
    let (dir, model_path, _, _) = small_model();
    let checkpoint_path = dir.path().join(CHECKPOINT_FILE);
    std::fs::copy(&model_path, &checkpoint_path).unwrap();
    assert_file_error(load_checkpoint(dir.path()), &checkpoint_path, "use load_model");
    let state = mid_run_state(Network::classifier(&[7, 5, 3], Activation::Relu), Optimizer::default(), false);
    let saved = save_checkpoint(dir.path(), &state).unwrap();
    assert_file_error(load_model(&saved), &saved, "use load_checkpoint");
}

#[test]
fn save_checkpoint_refuses_inconsistent_states() {
    let dir = TempDir::new().unwrap();
    let spec = Network::classifier(&[7, 5, 3], Activation::Relu);
    let good = mid_run_state(spec, Optimizer::default(), true);
    let mut short_m = good.clone();
    short_m.m.pop();
    assert!(matches!(save_checkpoint(dir.path(), &short_m), Err(Error::Shape(_))));
    let mut bad_best = good.clone();
    bad_best.best_params.truncate(10);
    assert!(matches!(save_checkpoint(dir.path(), &bad_best), Err(Error::Shape(_))));
    let mut nan = good.clone();
    nan.params[0] = f32::NAN;
    assert!(matches!(save_checkpoint(dir.path(), &nan), Err(Error::Data(_))));
    let mut padding = good.clone();
    padding.v[63] = 1.0;
    assert!(matches!(save_checkpoint(dir.path(), &padding), Err(Error::Data(_))));
    let mut zero_lr = good;
    zero_lr.optimizer = Optimizer::sgd(0.0, 0.0);
    assert!(matches!(save_checkpoint(dir.path(), &zero_lr), Err(Error::Config(_))));
    assert!(load_checkpoint(dir.path()).unwrap().is_none(), "a refused save wrote a file");
}

// ---------------------------------------------------------------------------------------------
// Fuzz seeds

/// The files in `fuzz/seeds/{kind}` (written by `fuzz/make_seeds.py`).
fn seeds(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 2, "fewer than two seeds in {}", dir.display());
    files
}

/// The fuzzers start from these: each must be a valid file, or fuzzing starts from noise.
#[test]
fn fuzz_seeds_are_valid() {
    for path in seeds("model") {
        let (spec, params) = load_model(&path).unwrap();
        assert_eq!(params.len(), spec.layout().len, "{}", path.display());
    }
    for path in seeds("checkpoint") {
        let state = load_checkpoint_bytes(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(state.params.len(), state.spec.layout().len, "{}", path.display());
    }
    for path in seeds("idx") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let count = match name.starts_with("images") {
            true => wgtrain::data::read_idx_images(&path).unwrap().count,
            false => wgtrain::data::read_idx_labels(&path).unwrap().len(),
        };
        assert_eq!(count, 3, "{name}");
    }
}

/// Dense layers of widths `sizes[1..]` on `sizes[0]` inputs, layer `l` followed by
/// `activations[l]`.
fn dense_stack(sizes: &[usize], activations: &[Activation]) -> Network {
    let layers = sizes[1..].iter().zip(activations).map(|(&units, &a)| Layer::dense(units, a)).collect();
    Network { inputs: sizes[0], layers }
}

/// A checkpoint written before the learning-rate control existed has no `lr_control` key: it
/// trained at the optimizer's rate, with no schedule and no reduction, and loads as such.
#[test]
fn checkpoint_without_lr_control_reads_as_the_optimizer_rate() {
    let (_dir, _path, result) = load_corrupted_checkpoint(|p| _ = p.metadata.remove("lr_control"));
    let state = result.unwrap().expect("a checkpoint");
    assert_eq!(state.learning_rate, state.optimizer.lr());
    assert_eq!(state.lr_schedule, LrSchedule::Constant);
    assert!(state.reduce_lr_on_plateau.is_none());
}
