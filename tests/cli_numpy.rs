//! `wgtrain fit` on NumPy files, run as a user runs it on the CPU executor: an `.npz` of
//! integer labels (classify) and of float values (regress), and `x.npy` with `--target-data
//! y.npy`, each model then evaluated on an `.npz` and predicting on a `.npy`; and the bad
//! inputs (a `.npy` without its target, a dtype the reader refuses, rows that differ, the
//! CSV-only flags, a CSV without `--target`, a `--task` the dtype contradicts), each one line
//! on stderr naming the file and the flag or array, exit code 1, no panic.

mod cli_run;
mod table_files;

use std::path::Path;

use cli_run::{fails_on_input as fails, ok};
use serde_json::Value;
use table_files::{le_f32, le_i64, npy, npz, write_file};

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the summary exists")).expect("valid JSON")
}

fn number(summary: &Value, key: &str) -> f64 {
    summary[key].as_f64().unwrap_or_else(|| panic!("`{key}` is a number in {summary}"))
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// The rows of a CSV with a header, as (header, rows of cells).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("the CSV exists");
    let mut lines = text.lines().map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    let header = lines.next().expect("a header");
    (header, lines.collect())
}

/// `rows` points of two features uniform in [-1, 1), from a fixed LCG.
fn points(rows: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..rows * 2)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Three classes by the sign of x0 and of x1 (x0 < 0: class 0; else x1 < 0: 1, else 2), as
/// the integer labels 10, 20, 30 so that the classes are the labels, not their indices.
fn labels(x: &[f32]) -> Vec<i64> {
    x.chunks(2)
        .map(|p| {
            if p[0] < 0.0 {
                10
            } else if p[1] < 0.0 {
                20
            } else {
                30
            }
        })
        .collect()
}

/// A smooth target in units far from 1: 50 + 20 x0 - 10 x1.
fn values(x: &[f32]) -> Vec<f32> {
    x.chunks(2).map(|p| 50.0 + 20.0 * p[0] - 10.0 * p[1]).collect()
}

fn x_npy(x: &[f32]) -> Vec<u8> {
    npy("<f4", &[x.len() / 2, 2], &le_f32(x))
}

#[test]
fn classification_from_an_npz_then_evaluate_on_npz_and_predict_on_npy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, xt) = (points(600, 1), points(200, 2));
    let train = write_file(
        d,
        "train.npz",
        &npz(&[("x", x_npy(&x)), ("y", npy("<i8", &[600], &le_i64(&labels(&x))))]),
    );
    let test = write_file(
        d,
        "test.npz",
        &npz(&[("x", x_npy(&xt)), ("y", npy("<i8", &[200], &le_i64(&labels(&xt))))]),
    );
    let test_x = write_file(d, "test_x.npy", &x_npy(&xt));
    let (model, fit_json, eval_json, out) =
        (d.join("m.safetensors"), d.join("fit.json"), d.join("eval.json"), d.join("p.csv"));
    let stdout = ok(&[
        "fit",
        "--data",
        &s(&train),
        "--adapter",
        "cpu",
        "--epochs",
        "60",
        "--hidden",
        "32",
        "--lr",
        "0.01",
        "--save",
        &s(&model),
        "--summary-json",
        &s(&fit_json),
    ]);
    assert!(stdout.contains("task: classify (inferred, 3 classes)"), "{stdout}");
    assert!(stdout.contains("y is 1-D integer, 3 classes"), "the reader says why: {stdout}");
    let fitted = read_json(&fit_json);
    assert_eq!(fitted["task"], "classify", "{fitted}");
    assert_eq!(fitted["loss_function"], "softmax_cross_entropy", "{fitted}");
    assert_eq!(number(&fitted, "samples"), 540.0, "a 10 % validation split of 600 rows");

    ok(&["evaluate", "--model", &s(&model), "--data", &s(&test), "--summary-json", &s(&eval_json)]);
    let evaluated = read_json(&eval_json);
    assert_eq!(evaluated["task"], "classify", "{evaluated}");
    assert_eq!(number(&evaluated, "samples"), 200.0);
    let accuracy = number(&evaluated, "accuracy");
    assert!(accuracy > 0.9, "three quadrant classes are learnable: accuracy {accuracy}");

    ok(&["predict", "--model", &s(&model), "--data", &s(&test_x), "--out", &s(&out)]);
    let (header, rows) = read_csv(&out);
    assert_eq!(header, ["y", "probability_10", "probability_20", "probability_30"]);
    assert_eq!(rows.len(), 200, "one prediction per row of x");
    let right = rows.iter().zip(labels(&xt)).filter(|(row, label)| row[0] == label.to_string()).count();
    let predicted = right as f64 / 200.0;
    assert!(
        (predicted - accuracy).abs() < 1e-6,
        "predict's labels score as evaluate: {predicted} vs {accuracy}"
    );
}

#[test]
fn regression_from_npy_files_then_evaluate_on_npz_and_predict_on_npy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, xt) = (points(600, 3), points(200, 4));
    let train_x = write_file(d, "x.npy", &x_npy(&x));
    let train_y = write_file(d, "y.npy", &npy("<f4", &[600], &le_f32(&values(&x))));
    let test = write_file(
        d,
        "test.npz",
        &npz(&[("x", x_npy(&xt)), ("y", npy("<f4", &[200], &le_f32(&values(&xt))))]),
    );
    let test_x = write_file(d, "test_x.npy", &x_npy(&xt));
    let (model, fit_json, eval_json, out) =
        (d.join("m.safetensors"), d.join("fit.json"), d.join("eval.json"), d.join("p.csv"));
    let stdout = ok(&[
        "fit",
        "--data",
        &s(&train_x),
        "--target-data",
        &s(&train_y),
        "--adapter",
        "cpu",
        "--epochs",
        "60",
        "--hidden",
        "32",
        "--lr",
        "0.01",
        "--save",
        &s(&model),
        "--summary-json",
        &s(&fit_json),
    ]);
    assert!(stdout.contains("task: regress (inferred)"), "{stdout}");
    let fitted = read_json(&fit_json);
    assert_eq!(fitted["task"], "regress", "{fitted}");
    assert_eq!(fitted["loss_function"], "mean_squared_error", "{fitted}");

    ok(&["evaluate", "--model", &s(&model), "--data", &s(&test), "--summary-json", &s(&eval_json)]);
    let evaluated = read_json(&eval_json);
    assert_eq!(evaluated["task"], "regress", "{evaluated}");
    let r2 = number(&evaluated, "r2");
    assert!(r2 > 0.95, "a linear target is learnable: r2 {r2}");

    ok(&["predict", "--model", &s(&model), "--data", &s(&test_x), "--out", &s(&out)]);
    let (header, rows) = read_csv(&out);
    assert_eq!(header, ["y"]);
    assert_eq!(rows.len(), 200);
    // In the target's units (the standardization undone): near 50 + 20 x0 - 10 x1.
    let truth = values(&xt);
    let mae: f64 =
        rows.iter().zip(&truth).map(|(r, t)| (r[0].parse::<f64>().unwrap() - *t as f64).abs()).sum::<f64>()
            / 200.0;
    assert!(mae < 2.0, "predictions in the target's units: mean absolute error {mae}");
}

#[test]
fn a_matching_task_is_taken_and_a_conflicting_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = points(40, 5);
    let train =
        write_file(d, "train.npz", &npz(&[("x", x_npy(&x)), ("y", npy("<i8", &[40], &le_i64(&labels(&x))))]));
    let model = s(&d.join("m.safetensors"));
    let data = s(&train);
    let stdout = ok(&[
        "fit",
        "--data",
        &data,
        "--task",
        "classify",
        "--adapter",
        "cpu",
        "--epochs",
        "1",
        "--save",
        &model,
    ]);
    assert!(stdout.contains("task: classify (given, 3 classes)"), "{stdout}");
    let line = fails(&["fit", "--data", &data, "--task", "regress", "--adapter", "cpu", "--save", &model]);
    assert!(
        line.contains("train.npz") && line.contains("--task regress") && line.contains("astype"),
        "{line}"
    );
    let line = fails(&["fit", "--data", &data, "--loss", "mae", "--adapter", "cpu", "--save", &model]);
    assert!(line.contains("train.npz") && line.contains("--loss mae"), "{line}");
}

#[test]
fn bad_numpy_inputs_end_with_one_line_naming_the_file_and_the_flag_or_array() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = points(10, 6);
    let x_path = s(&write_file(d, "x.npy", &x_npy(&x)));
    let y_path = s(&write_file(d, "y.npy", &npy("<i8", &[10], &le_i64(&labels(&x)))));
    let short_y = s(&write_file(d, "short_y.npy", &npy("<i8", &[9], &le_i64(&labels(&x)[..9]))));
    let complex_x = s(&write_file(d, "complex_x.npy", &npy("<c8", &[10, 2], &[0; 160])));
    let train = s(&write_file(
        d,
        "train.npz",
        &npz(&[("x", x_npy(&x)), ("y", npy("<i8", &[10], &le_i64(&labels(&x))))]),
    ));
    let csv = s(&write_file(d, "t.csv", b"a,b,label\n1,2,0\n3,4,1\n"));
    let model = s(&d.join("m.safetensors"));
    let fit = |extra: &[&str]| {
        let mut args = vec!["fit", "--adapter", "cpu", "--epochs", "1", "--save", &model];
        args.extend_from_slice(extra);
        fails(&args)
    };
    let cases: [(&[&str], &[&str]); 10] = [
        (&["--data", &x_path], &["x.npy", "--target-data"]),
        (&["--data", &complex_x, "--target-data", &y_path], &["complex_x.npy", "array `x`", "<c8"]),
        (&["--data", &x_path, "--target-data", &short_y], &["short_y.npy", "10 rows", "9"]),
        (&["--data", &train, "--categorical", "x0"], &["train.npz", "--categorical"]),
        (&["--data", &train, "--drop-missing"], &["train.npz", "--drop-missing"]),
        (&["--data", &train, "--target", "y"], &["train.npz", "--target"]),
        (&["--data", &train, "--target-data", &y_path], &["train.npz", "--target-data"]),
        (&["--data", &csv], &["t.csv", "--target"]),
        (&["--data", &csv, "--target", "label", "--target-data", &y_path], &["t.csv", "--target-data"]),
        (&["--data", &x_path, "--target-data", &csv], &["t.csv", "array `y`"]),
    ];
    for (extra, wanted) in cases {
        let line = fit(extra);
        for want in wanted {
            assert!(line.contains(want), "{extra:?}: `{want}` in: {line}");
        }
    }
    assert!(!Path::new(&model).exists(), "no model is saved from a bad input");
}
