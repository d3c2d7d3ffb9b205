//! The `wgtrain` command, run as a user runs it: fit, evaluate and predict round trips on the
//! shipped tables (regression on diabetes, classification on digits, binary on breast cancer)
//! and on a multi-label table with the CPU executor, the regression losses, dropout and
//! ReduceLROnPlateau flags,
//! one fit on a GPU adapter (lavapipe on CI), the summary, history and plot files, every kind
//! of bad file (one stderr line naming the file, row and column, a non-zero exit, no panic),
//! and model files that are the same bytes for the same seed.

mod cli_run;
mod table_files;

use std::path::{Path, PathBuf};

use cli_run::{fails, ok};
use serde_json::Value;
use table_files::{npy, write_file};

fn shipped(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tabular").join(name).display().to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the summary exists")).expect("valid JSON")
}

fn number(summary: &Value, key: &str) -> f64 {
    summary[key].as_f64().unwrap_or_else(|| panic!("`{key}` is a number in {summary}"))
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The rows of a CSV with a header, as (header, rows of cells).
fn read_csv(path: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("the CSV exists");
    let mut lines = text.lines().map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    let header = lines.next().expect("a header");
    (header, lines.collect())
}

#[test]
fn regression_round_trip_on_diabetes() {
    let dir = tempfile::tempdir().unwrap();
    let (model, summary, history, plot) = (
        path(dir.path(), "d.safetensors"),
        path(dir.path(), "fit.json"),
        path(dir.path(), "h.csv"),
        path(dir.path(), "c.svg"),
    );
    let data = shipped("diabetes.csv");
    let stdout = ok(&[
        "fit",
        "--data",
        &data,
        "--target",
        "target",
        "--adapter",
        "cpu",
        "--epochs",
        "60",
        "--save",
        &model,
        "--summary-json",
        &summary,
        "--history",
        &history,
        "--plot",
        &plot,
    ]);
    assert!(stdout.contains("task: regress (inferred)"), "the inferred task is printed: {stdout}");
    let fit = read_json(Path::new(&summary));
    assert_eq!(fit["task"], "regress");
    assert_eq!(fit["adapter"], "cpu");
    assert_eq!(number(&fit, "samples"), 398.0, "442 rows less the 10 % split");
    let epochs_run = number(&fit, "epochs_run");
    assert!((1.0..=60.0).contains(&epochs_run), "{fit}");
    assert!(number(&fit, "best_epoch") < epochs_run, "{fit}");
    assert!(number(&fit, "seconds_per_epoch") > 0.0, "{fit}");
    // In the target's units (the target's std is 77): a model no better than the mean has
    // val_rmse ≈ 77 and val_r2 ≈ 0; scikit-learn's linear fit reaches r2 ≈ 0.45 on this data.
    for key in ["loss", "mae", "rmse", "r2", "val_loss", "val_mae", "val_rmse", "val_r2"] {
        assert!(fit[key].is_number(), "`{key}` in {fit}");
    }
    assert!(number(&fit, "val_r2") > 0.25 && number(&fit, "val_rmse") < 70.0, "{fit}");
    let rmse = number(&fit, "val_rmse");
    assert!((rmse * rmse - number(&fit, "val_loss")).abs() < 1e-3 * number(&fit, "val_loss"), "{fit}");

    let (header, rows) = read_csv(&history);
    assert_eq!(header[..2], ["epoch".to_string(), "loss".to_string()], "{header:?}");
    assert_eq!(rows.len() as f64, epochs_run, "one history row per epoch");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "a whole SVG");
    for label in ["val_loss", "val_mae", "best epoch"] {
        assert!(svg.contains(label), "the plot shows `{label}`");
    }
    assert!(svg.matches("<polyline").count() >= 4, "train and val curves in both panels");

    // Evaluate on the whole file, and predict on it: the predictions' MSE against the target
    // column is evaluate's loss (both in the target's units, the standardization undone).
    let eval_json = path(dir.path(), "eval.json");
    ok(&["evaluate", "--model", &model, "--data", &data, "--summary-json", &eval_json]);
    let eval = read_json(Path::new(&eval_json));
    assert_eq!((eval["task"].as_str(), number(&eval, "samples")), (Some("regress"), 442.0));
    assert!(number(&eval, "r2") > 0.4, "{eval}");
    let out = path(dir.path(), "p.csv");
    ok(&["predict", "--model", &model, "--data", &data, "--out", &out]);
    let (pheader, predictions) = read_csv(&out);
    let (_, truth) = read_csv(&data);
    assert_eq!(pheader, ["target"]);
    assert_eq!(predictions.len(), 442);
    let mse = predictions
        .iter()
        .zip(&truth)
        .map(|(p, t)| (p[0].parse::<f64>().unwrap() - t[10].parse::<f64>().unwrap()).powi(2))
        .sum::<f64>()
        / 442.0;
    let loss = number(&eval, "loss");
    assert!((mse - loss).abs() <= 1e-3 * loss, "predict's MSE {mse} vs evaluate's loss {loss}");

    // Columns matched by name: the same rows with the columns reversed predict the same.
    let text = std::fs::read_to_string(&data).unwrap();
    let reversed: String =
        text.lines().take(21).map(|l| l.split(',').rev().collect::<Vec<_>>().join(",") + "\n").collect();
    let reordered = write_file(dir.path(), "reversed.csv", reversed.as_bytes());
    let out2 = path(dir.path(), "p2.csv");
    ok(&["predict", "--model", &model, "--data", reordered.to_str().unwrap(), "--out", &out2]);
    assert_eq!(read_csv(&out2).1[..], predictions[..20], "column order does not matter");
}

#[test]
fn classification_round_trip_on_digits() {
    let dir = tempfile::tempdir().unwrap();
    let (model, summary) = (path(dir.path(), "g.safetensors"), path(dir.path(), "fit.json"));
    let data = shipped("digits.csv");
    let stdout = ok(&[
        "fit",
        "--data",
        &data,
        "--target",
        "digit",
        "--adapter",
        "cpu",
        "--epochs",
        "15",
        "--save",
        &model,
        "--summary-json",
        &summary,
    ]);
    assert!(stdout.contains("task: classify (inferred, 10 classes)"), "{stdout}");
    let fit = read_json(Path::new(&summary));
    assert_eq!(fit["task"], "classify");
    // An MLP reaches about 97 % on digits; 90 % after 15 epochs leaves room for the seed.
    assert!(number(&fit, "val_accuracy") > 0.9, "{fit}");
    assert!(fit["loss"].is_number() && fit["accuracy"].is_number() && fit["val_loss"].is_number(), "{fit}");

    let eval_json = path(dir.path(), "eval.json");
    ok(&["evaluate", "--model", &model, "--data", &data, "--summary-json", &eval_json]);
    let eval = read_json(Path::new(&eval_json));
    let accuracy = number(&eval, "accuracy");
    assert!(accuracy > 0.9, "{eval}");
    let out = path(dir.path(), "p.csv");
    ok(&["predict", "--model", &model, "--data", &data, "--out", &out]);
    let (header, predictions) = read_csv(&out);
    assert_eq!(header[0], "digit");
    assert_eq!(header[1..], (0..10).map(|d| format!("probability_{d}")).collect::<Vec<_>>()[..]);
    let (_, truth) = read_csv(&data);
    let right = predictions.iter().zip(&truth).filter(|(p, t)| p[0] == t[64]).count();
    assert_eq!(right, (accuracy * 1797.0).round() as usize, "predict's labels agree with evaluate");
    let sum: f64 = predictions[0][1..].iter().map(|p| p.parse::<f64>().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-5, "probabilities sum to 1: {sum}");
}

/// Each shipped table from the command line on each software adapter (lavapipe and GL on CI)
/// with early stopping, to the bars the CPU executor meets: the task is inferred, the run
/// stops before `--epochs 300`, and the held-out metric clears a floor an MLP meets with room
/// for the seed (digits and breast cancer reach about 0.97, diabetes val_r2 about 0.45).
#[test]
fn the_three_tables_train_on_each_gpu_adapter() {
    let all = wgtrain::gpu::list_adapters();
    for backend in ["vulkan", "gl"] {
        if !all.iter().any(|a| a.backend == backend) {
            assert!(std::env::var_os("CI").is_none(), "CI needs a {backend} adapter; wgpu found {all:?}");
            eprintln!("skipping {backend}: no such adapter here");
            continue;
        }
        for (file, target, metric, floor) in [
            ("breast_cancer.csv", "diagnosis", "val_binary_accuracy", 0.9),
            ("digits.csv", "digit", "val_accuracy", 0.9),
            ("diabetes.csv", "target", "val_r2", 0.25),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (model, summary) = (path(dir.path(), "g.safetensors"), path(dir.path(), "fit.json"));
            let data = shipped(file);
            ok(&[
                "fit",
                "--data",
                &data,
                "--target",
                target,
                "--adapter",
                backend,
                "--epochs",
                "300",
                "--save",
                &model,
                "--summary-json",
                &summary,
                "--no-tuning-cache",
            ]);
            let fit = read_json(Path::new(&summary));
            assert_ne!(fit["adapter"], "cpu", "{fit}");
            assert!(
                fit["stopped_epoch"].is_number(),
                "{backend} {file}: early stopping ended the run: {fit}"
            );
            assert!(number(&fit, metric) >= floor, "{backend} {file}: {metric} below {floor}: {fit}");
        }
    }
}

#[test]
fn bad_files_end_with_one_line_naming_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| write_file(dir.path(), name, text.as_bytes()).display().to_string();
    let cases: [(String, &str, &[&str]); 5] = [
        (
            file("text.csv", "a,b,y\n1,2,3\n1,x,4\n"),
            "y",
            &["text.csv", "row 2", "column `b`", "`x` is not a number"],
        ),
        (file("na.csv", "a,b,y\n1,2,3\n1,NA,4\n"), "y", &["na.csv", "row 2", "column `b`", "missing"]),
        (file("cols.csv", "a,b,y\n1,2,3\n"), "price", &["cols.csv", "no target column `price`", "a, b, y"]),
        (
            file("ragged.csv", "a,b,y\n1,2,3\n1,4\n"),
            "y",
            &["ragged.csv", "row 2", "2 fields", "header has 3"],
        ),
        (file("empty.csv", ""), "y", &["empty.csv", "the file is empty"]),
    ];
    let model = path(dir.path(), "m.safetensors");
    for (data, target, wanted) in &cases {
        let line = fails(&["fit", "--data", data, "--target", target, "--save", &model, "--adapter", "cpu"]);
        for want in *wanted {
            assert!(line.contains(want), "expected `{want}` in: {line}");
        }
    }
    assert!(!Path::new(&model).exists(), "no model is written from a bad file");
    let line = fails(&["fit", "--data", &cases[0].0, "--target", "y", "--save", &model, "--epochs", "x"]);
    assert!(line.contains("--epochs"), "a bad flag value names the flag: {line}");
    let line = fails(&["fit", "--data", &cases[0].0, "--target", "y", "--save", &model, "--plot", "c.jpg"]);
    assert!(line.contains("--plot") && line.contains("c.jpg") && line.contains(".png"), "{line}");
}

/// A small table with a categorical column, trained for two epochs (the model's quality is
/// not the point).
fn colour_model(dir: &Path) -> String {
    let rows: String = (0..40).map(|i| format!("{},{},{}\n", i % 7, ["red", "blue"][i % 2], i % 3)).collect();
    let data = write_file(dir, "colours.csv", format!("size,colour,label\n{rows}").as_bytes());
    let model = path(dir, "c.safetensors");
    ok(&[
        "fit",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "label",
        "--categorical",
        "colour",
        "--epochs",
        "2",
        "--adapter",
        "cpu",
        "--save",
        &model,
    ]);
    model
}

#[test]
fn predict_names_a_missing_column_an_unseen_category_and_a_wrong_npy_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let model = colour_model(dir.path());
    let out = path(dir.path(), "p.csv");
    let predict = |name: &str, bytes: &[u8]| {
        let data = write_file(dir.path(), name, bytes).display().to_string();
        fails(&["predict", "--model", &model, "--data", &data, "--out", &out])
    };
    let line = predict("missing.csv", b"size\n1\n");
    assert!(line.contains("missing.csv") && line.contains("`colour`"), "{line}");
    let line = predict("green.csv", b"colour,size\nred,1\ngreen,2\n");
    assert!(line.contains("green.csv") && line.contains("row 2") && line.contains("`colour`"), "{line}");
    assert!(line.contains("green"), "the unseen category is named: {line}");
    // The model has 3 features (size, colour=blue, colour=red); a .npy is read as `x`.
    let line = predict("text.npy", &npy("<U3", &[2, 3], &[0; 72]));
    assert!(line.contains("text.npy") && line.contains("<U3"), "{line}");
}

#[test]
fn the_same_seed_writes_the_same_model_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let fit = |name: &str, seed: &str| {
        let model = path(dir.path(), name);
        ok(&[
            "fit",
            "--data",
            &shipped("digits.csv"),
            "--target",
            "digit",
            "--adapter",
            "cpu",
            "--epochs",
            "3",
            "--seed",
            seed,
            "--save",
            &model,
        ]);
        std::fs::read(model).unwrap()
    };
    let (a, b, c) = (fit("a.safetensors", "7"), fit("b.safetensors", "7"), fit("c.safetensors", "8"));
    assert!(a == b, "two fits with seed 7 wrote different bytes");
    assert!(a != c, "seeds 7 and 8 wrote the same bytes: the seed is not used");
    let parsed = safetensors::SafeTensors::deserialize(&a).expect("the safetensors crate reads it");
    assert_eq!(parsed.names().len(), 6, "three dense layers, weight and bias each");
}

#[test]
fn validation_data_replaces_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let (model, summary) = (path(dir.path(), "g.safetensors"), path(dir.path(), "fit.json"));
    let data = shipped("digits.csv");
    let stdout = ok(&[
        "fit",
        "--data",
        &data,
        "--target",
        "digit",
        "--validation-data",
        &data,
        "--adapter",
        "cpu",
        "--epochs",
        "2",
        "--save",
        &model,
        "--summary-json",
        &summary,
    ]);
    assert!(stdout.contains("1797 training rows, 1797 validation rows"), "{stdout}");
    let fit = read_json(Path::new(&summary));
    assert_eq!(number(&fit, "samples"), 1797.0, "every row trains: {fit}");
    assert!(fit["val_accuracy"].is_number(), "{fit}");
}

#[test]
fn a_model_without_a_table_encoding_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = path(dir.path(), "mnist.safetensors");
    let spec = wgtrain::Network::classifier(&[64, 10], wgtrain::Activation::Relu);
    let params = spec.layout().init(wgtrain::Init::He, 0);
    wgtrain::checkpoint::save_model(Path::new(&model), &spec, &params).unwrap();
    let data = shipped("digits.csv");
    let line = fails(&["evaluate", "--model", &model, "--data", &data]);
    assert!(line.contains("mnist.safetensors") && line.contains("no table encoding"), "{line}");
    let line = fails(&["predict", "--model", &model, "--data", &data, "--out", &path(dir.path(), "p.csv")]);
    assert!(line.contains("without its table encoding"), "{line}");
}

/// Two classes (breast cancer's text `diagnosis`, benign or malignant) are inferred as binary and trained
/// with the sigmoid cross-entropy on one output; predict writes the class names back.
#[test]
fn binary_round_trip_on_breast_cancer() {
    let dir = tempfile::tempdir().unwrap();
    let (model, summary, out) =
        (path(dir.path(), "b.safetensors"), path(dir.path(), "fit.json"), path(dir.path(), "p.csv"));
    let data = shipped("breast_cancer.csv");
    let stdout = ok(&[
        "fit",
        "--data",
        &data,
        "--target",
        "diagnosis",
        "--adapter",
        "cpu",
        "--epochs",
        "40",
        "--save",
        &model,
        "--summary-json",
        &summary,
    ]);
    assert!(stdout.contains("task: binary (inferred, 2 classes)"), "{stdout}");
    let fit = read_json(Path::new(&summary));
    assert_eq!(
        (fit["task"].as_str(), fit["loss_function"].as_str()),
        (Some("binary"), Some("sigmoid_cross_entropy"))
    );
    // Logistic regression alone reaches about 0.96 on this data.
    assert!(number(&fit, "val_binary_accuracy") >= 0.9, "{fit}");
    let eval_json = path(dir.path(), "eval.json");
    ok(&["evaluate", "--model", &model, "--data", &data, "--summary-json", &eval_json]);
    let eval = read_json(Path::new(&eval_json));
    assert_eq!(eval["task"], "binary", "{eval}");
    assert!(number(&eval, "binary_accuracy") >= 0.9, "{eval}");
    let line =
        fails(&["fit", "--data", &data, "--target", "diagnosis", "--dropout", "1.5", "--save", &model]);
    assert!(line.contains("--dropout 1.5"), "the flag is named: {line}");
    ok(&["predict", "--model", &model, "--data", &data, "--out", &out]);
    let (header, rows) = read_csv(&out);
    assert_eq!(header, ["diagnosis", "probability_benign", "probability_malignant"]);
    let (theader, truth) = read_csv(&data);
    let col = theader.iter().position(|h| h == "diagnosis").unwrap();
    let right = rows.iter().zip(&truth).filter(|(p, t)| p[0] == t[col]).count();
    assert!(right as f64 >= 0.9 * 569.0, "{right} of 569 rows predicted right");
    for row in &rows {
        let (b, m): (f64, f64) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        assert!((b + m - 1.0).abs() < 1e-6 && (row[0] == "malignant") == (m > 0.5), "{row:?}");
    }
}

/// Several 0/1 target columns are inferred as multi-label (one sigmoid output per column);
/// predict writes one 0/1 column per label and its probability.
#[test]
fn multilabel_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,c,hot,cold\n");
    let mut s = 5u64;
    for _ in 0..400 {
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0
        };
        let (a, b, c) = (next(), next(), next());
        text += &format!("{a:.4},{b:.4},{c:.4},{},{}\n", u8::from(a + b > 0.0), u8::from(c - a > 0.2));
    }
    let data = write_file(dir.path(), "labels.csv", text.as_bytes()).display().to_string();
    let (model, summary, out) =
        (path(dir.path(), "m.safetensors"), path(dir.path(), "fit.json"), path(dir.path(), "p.csv"));
    let stdout = ok(&[
        "fit",
        "--data",
        &data,
        "--target",
        "hot,cold",
        "--adapter",
        "cpu",
        "--epochs",
        "60",
        "--lr",
        "0.01",
        "--save",
        &model,
        "--summary-json",
        &summary,
    ]);
    assert!(stdout.contains("task: multilabel (inferred, 2 classes)"), "{stdout}");
    let fit = read_json(Path::new(&summary));
    assert!(number(&fit, "val_binary_accuracy") >= 0.9, "two linear boundaries: {fit}");
    ok(&["predict", "--model", &model, "--data", &data, "--out", &out]);
    let (header, rows) = read_csv(&out);
    assert_eq!(header, ["hot", "cold", "probability_hot", "probability_cold"]);
    for row in &rows {
        for j in 0..2 {
            let p: f64 = row[2 + j].parse().unwrap();
            assert_eq!(row[j], if p > 0.5 { "1" } else { "0" }, "{row:?}");
        }
    }
}

/// `--loss mae|huber`, `--dropout` and `--reduce-lr-on-plateau` reach the trainer: the summary
/// names the loss, the model holds the dropout layers, the history logs the learning rate.
#[test]
fn loss_dropout_and_plateau_flags_reach_the_trainer() {
    let dir = tempfile::tempdir().unwrap();
    let data = shipped("diabetes.csv");
    for (flag, name) in [("mae", "mean_absolute_error"), ("huber", "huber")] {
        let (model, summary) = (path(dir.path(), &format!("{flag}.safetensors")), path(dir.path(), "s.json"));
        ok(&[
            "fit",
            "--data",
            &data,
            "--target",
            "target",
            "--adapter",
            "cpu",
            "--epochs",
            "30",
            "--loss",
            flag,
            "--save",
            &model,
            "--summary-json",
            &summary,
        ]);
        let fit = read_json(Path::new(&summary));
        let described = fit["loss_function"].to_string();
        assert!(described.contains(name), "--loss {flag}: {fit}");
        assert!(number(&fit, "val_r2") > 0.2, "--loss {flag} trains: {fit}");
    }
    let (model, history) = (path(dir.path(), "d.safetensors"), path(dir.path(), "h.csv"));
    let stdout = ok(&[
        "fit",
        "--data",
        &shipped("digits.csv"),
        "--target",
        "digit",
        "--adapter",
        "cpu",
        "--epochs",
        "12",
        "--dropout",
        "0.2",
        "--reduce-lr-on-plateau",
        "--reduce-lr-patience",
        "1",
        "--lr",
        "0.05",
        "--save",
        &model,
        "--history",
        &history,
    ]);
    let (header, rows) = read_csv(&history);
    let lr = header.iter().position(|h| h == "learning_rate").expect("a learning_rate column");
    let first: f64 = rows[0][lr].parse().unwrap();
    assert!((first - 0.05).abs() < 1e-6, "starts at --lr: {rows:?}");
    let reduced = rows.iter().any(|r| r[lr].parse::<f64>().unwrap() < 0.05 * 0.5);
    // lr 0.05 is far too high for Adam here: val_loss stalls within a few epochs.
    assert!(reduced && stdout.contains("stopped improving, learning rate"), "a reduction, printed: {stdout}");
    let bytes = std::fs::read(&model).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let meta = String::from_utf8_lossy(&bytes[8..8 + header_len]);
    assert_eq!(meta.matches("dropout").count(), 2, "a dropout layer after each hidden layer: {meta:.400}");
}

/// `--plot curves.png` draws a real PNG with no system font library: the file has PNG's
/// signature, decodes at the size plot.rs draws (`PLOT_SIZE`, 1000 x 420), and is not blank:
/// it holds more than one colour, among them the pure blue and red of the training and
/// validation curves. Any other extension (`.jpg`) is refused before training with one line.
#[test]
fn plot_png_is_a_decodable_drawing_and_jpg_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, plot) = (path(dir.path(), "g.safetensors"), path(dir.path(), "curves.png"));
    let data = shipped("digits.csv");
    let fit = |plot: &str| {
        ["fit", "--data", &data, "--target", "digit", "--adapter", "cpu", "--epochs", "5", "--save", &model]
            .into_iter()
            .chain(["--plot", plot])
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let args = fit(&plot);
    let stdout = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.contains("curves.png"), "the command says where it drew: {stdout}");
    let bytes = std::fs::read(&plot).expect("the PNG is written");
    assert_eq!(bytes[..8], [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A], "PNG signature");
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes)).read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("the PNG decodes");
    assert_eq!((info.width, info.height), (1000, 420), "the size plot.rs draws");
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    let colours: std::collections::HashSet<&[u8]> = pixels[..info.buffer_size()].chunks(3).collect();
    assert!(colours.len() > 1, "the PNG is not blank");
    assert!(
        colours.contains(&[0, 0, 255][..]) && colours.contains(&[255, 0, 0][..]),
        "both curves are drawn"
    );

    let jpg = path(dir.path(), "curves.jpg");
    std::fs::remove_file(&model).unwrap();
    let args = fit(&jpg);
    let line = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        line.contains("--plot") && line.contains("curves.jpg") && line.contains(".svg or .png"),
        "{line}"
    );
    assert!(!Path::new(&jpg).exists() && !Path::new(&model).exists(), "refused before training");
}
