//! f32 features with class or value targets: the data set's checks (each bad input an error naming
//! where), f32 rows training exactly as the same pixels do on every executor, and the CPU and
//! GPU executors refusing the same bad batches with the same error and untouched weights.

mod common;

use common::fixture;
use wgtrain::data::{Dataset, Targets};
use wgtrain::{Backend, Error, Network, Trainer, TrainerOptions};

/// 300 learnable rows of 12 u8 pixels (the label is which third the first pixel is in).
/// 300 rows of `width` pseudo-random pixels, 3 classes.
fn pixels_of(width: usize) -> Dataset {
    let mut s = 99u64;
    let px: Vec<u8> = (0..300 * width)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect();
    let labels = (0..300).map(|r| (px[r * width] as usize * 3 / 256) as u8).collect();
    Dataset::new(px, labels, width, 3).expect("valid data")
}

fn classes(labels: Vec<u32>, classes: usize) -> Targets {
    Targets::Classes { labels, classes }
}

#[test]
fn bad_tables_are_errors_naming_where() {
    let nan_at = |i: usize| {
        let mut v = vec![0.5f32; 6];
        v[i] = f32::NAN;
        v
    };
    // Each row: values, width, targets, what the message must contain, why.
    let cases: Vec<(Vec<f32>, usize, Targets, &str, &str)> = vec![
        (nan_at(4), 3, classes(vec![0, 1], 2), "row 1, column 1", "a NaN names its row and column"),
        (vec![0.0, f32::INFINITY], 1, classes(vec![0, 1], 2), "row 1, column 0", "infinity too"),
        (vec![0.0; 6], 3, classes(vec![0, 2], 2), "label 2 at row 1", "a label past the classes"),
        (vec![0.0; 5], 3, classes(vec![0, 1], 2), "2 x 3 = 6 feature values, but there are 5", "ragged"),
        (vec![], 3, classes(vec![], 2), "no rows", "empty"),
        (vec![0.0; 2], 0, classes(vec![0, 1], 2), "0 features", "zero width"),
        (vec![0.0; 2], 1, classes(vec![0, 0], 1), "at least 2", "one class is no classifier"),
    ];
    for (values, width, targets, needle, why) in cases {
        match Dataset::from_values(values, width, targets) {
            Err(Error::Data(msg)) => {
                assert!(msg.contains(needle), "{why}: `{msg}` should contain `{needle}`")
            }
            other => panic!("{why}: expected Error::Data, got {other:?}"),
        }
    }
}

#[test]
fn accessors_describe_the_table() {
    let d = Dataset::from_values(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, classes(vec![2, 0, 1], 3)).unwrap();
    assert_eq!((d.len(), d.features(), d.classes()), (3, 2, 3));
    assert_eq!(d.labels(), &[2, 0, 1]);
    assert_eq!(d.pixels(), None, "f32 rows have no pixels");
    assert_eq!(d.to_f32(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let s = d.subset(&[2, 2, 0]).unwrap();
    assert_eq!((s.to_f32(), s.labels().to_vec()), (vec![5.0, 6.0, 5.0, 6.0, 1.0, 2.0], vec![1, 1, 2]));
    assert!(d.subset(&[]).is_err(), "an empty subset is no data set");
}

/// The same rows as f32 values (`p / 255`, the bits the pixel path computes) train to the same
/// bits as the pixels, on the CPU and on the GPU (there through the f32 gather, a different
/// kernel from the pixel one, and on llvmpipe buffer matmul variants instead of texture ones:
/// all variants add in the same order). 256 inputs, 64 hidden and batches of 128 make the
/// first layer's products 2^21 multiply-adds, big enough for llvmpipe's texture variants.
#[test]
fn f32_rows_train_exactly_as_the_same_pixels() {
    let images = pixels_of(256);
    let table = Dataset::from_values(images.to_f32(), 256, classes(images.labels().to_vec(), 3)).unwrap();
    let run = |data: &Dataset, backend: Backend| {
        let options = TrainerOptions {
            spec: Network::classifier(&[256, 64, 3], wgtrain::Activation::Relu),
            batch_size: 128,
            epochs: 2,
            validation_split: 0.2,
            seed: 5,
            backend,
            ..TrainerOptions::default()
        };
        let mut t = Trainer::new(options).expect("trainer");
        let report = t.fit(data, None, |_| {}).expect("fit");
        let bits: Vec<u32> = t.parameters().unwrap().iter().map(|p| p.to_bits()).collect();
        (bits, report.history.last().and_then(|r| r.get("val_loss")).map(f32::to_bits))
    };
    for (name, backend) in [("cpu", Backend::Cpu), ("gpu", Backend::Devices(vec![fixture().gpu.clone()]))] {
        let from_pixels = run(&images, backend.clone());
        let from_values = run(&table, backend);
        assert_eq!(from_pixels.0, from_values.0, "{name}: weights from f32 rows differ from the pixels'");
        assert_eq!(from_pixels.1, from_values.1, "{name}: val_loss differs");
        assert!(from_pixels.1.is_some(), "{name}: validation ran");
    }
}

/// `train_step` refuses a NaN input, a label out of range and a wrong shape with the same
/// error on the CPU and the GPU, and leaves the weights as they were.
#[test]
fn both_executors_refuse_the_same_bad_batches() {
    let spec = Network::classifier(&[3, 4, 2], wgtrain::Activation::Relu);
    let batches: [(Vec<f32>, Vec<u32>, &str); 3] = [
        (vec![0.1, f32::NAN, 0.3, 0.4, 0.5, 0.6], vec![0, 1], "row 0, column 1 is not finite"),
        (vec![0.1; 6], vec![0, 2], "label 2 of row 1"),
        (vec![0.1; 5], vec![0, 1], "x: [rows, 3]"),
    ];
    let mut messages: Vec<Vec<String>> = Vec::new();
    for backend in [Backend::Cpu, Backend::Devices(vec![fixture().gpu.clone()])] {
        let options = TrainerOptions { spec: spec.clone(), backend, ..TrainerOptions::default() };
        let mut t = Trainer::new(options).expect("trainer");
        let before = t.parameters().unwrap();
        let mut seen = Vec::new();
        for (x, labels, needle) in &batches {
            let err = t.train_step(x, labels).expect_err("a bad batch must be refused");
            assert!(err.to_string().contains(needle), "`{err}` should contain `{needle}`");
            seen.push(err.to_string());
        }
        assert_eq!(t.parameters().unwrap(), before, "a refused batch changes no weight");
        let loss = t.train_step(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], &[0, 1]).expect("a good batch trains");
        assert!(loss.is_finite() && t.parameters().unwrap() != before, "the good batch took a step");
        messages.push(seen);
    }
    assert_eq!(messages[0], messages[1], "the CPU and GPU executors word their refusals the same");
}

fn values(values: Vec<f32>, outputs: usize) -> Targets {
    Targets::Values { values, outputs }
}

#[test]
fn bad_value_targets_are_errors_naming_where() {
    // Each row: features, width, targets, what the message must contain, why.
    let cases: Vec<(Vec<f32>, usize, Targets, &str, &str)> = vec![
        (
            vec![0.0; 4],
            2,
            values(vec![1.0, 2.0, f32::NAN, 4.0], 2),
            "row 1, column 0",
            "a NaN target names where",
        ),
        (vec![0.0; 2], 1, values(vec![1.0, f32::NEG_INFINITY], 1), "row 1, column 0", "infinity too"),
        (vec![0.0; 4], 2, values(vec![1.0, 2.0, 3.0], 2), "not a whole number of rows", "ragged targets"),
        (vec![0.0; 4], 2, values(vec![1.0; 4], 0), "0 outputs", "zero outputs"),
        (
            vec![0.0; 6],
            2,
            values(vec![1.0; 2], 1),
            "2 x 2 = 4 feature values, but there are 6",
            "rows disagree",
        ),
        (vec![], 2, values(vec![], 1), "no rows", "empty"),
    ];
    for (features, width, targets, needle, why) in cases {
        match Dataset::from_values(features, width, targets) {
            Err(Error::Data(msg)) => {
                assert!(msg.contains(needle), "{why}: `{msg}` should contain `{needle}`")
            }
            other => panic!("{why}: expected Error::Data, got {other:?}"),
        }
    }
}

#[test]
fn value_targets_have_no_labels_and_subset_by_row() {
    let d = Dataset::from_values(vec![1.0, 2.0, 3.0], 1, values(vec![10.0, 11.0, 20.0, 21.0, 30.0, 31.0], 2))
        .unwrap();
    assert_eq!((d.len(), d.classes(), d.labels()), (3, 0, &[][..]), "no classes, no labels");
    assert_eq!(d.values(), Some((&[10.0, 11.0, 20.0, 21.0, 30.0, 31.0][..], 2)));
    let s = d.subset(&[2, 0]).unwrap();
    assert_eq!(s.values(), Some((&[30.0, 31.0, 10.0, 11.0][..], 2)), "targets follow their rows");
    assert_eq!(s.to_f32(), vec![3.0, 1.0]);
}

#[test]
fn tables_become_data_sets_of_their_target_kind() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tabular");
    let opts = wgtrain::data::CsvOptions::new;
    let diabetes =
        wgtrain::data::read_csv(data.join("diabetes.csv"), &opts("target")).unwrap().to_dataset().unwrap();
    assert_eq!((diabetes.len(), diabetes.features(), diabetes.classes()), (442, 10, 0));
    assert_eq!(diabetes.values().map(|(v, o)| (v[0], o)), Some((151.0, 1)), "the first row's target");
    let cancer = wgtrain::data::read_csv(data.join("breast_cancer.csv"), &opts("diagnosis")).unwrap();
    let cancer = cancer.to_dataset().unwrap();
    assert_eq!((cancer.classes(), cancer.values()), (2, None), "a binary target is two classes");
}

#[test]
fn a_loss_refuses_targets_it_cannot_train_on() {
    let d = Dataset::from_values(vec![0.0; 6], 3, values(vec![1.0, 2.0], 1)).unwrap();
    let spec = Network::classifier(&[3, 4, 2], wgtrain::Activation::Relu);
    let options = TrainerOptions { spec, backend: Backend::Cpu, ..TrainerOptions::default() };
    let mut trainer = Trainer::new(options).unwrap();
    match trainer.fit(&d, None, |_| {}) {
        Err(Error::Config(msg)) => assert!(msg.contains("class labels"), "{msg}"),
        other => panic!("softmax cross-entropy on value targets: expected Error::Config, got {other:?}"),
    }
}
