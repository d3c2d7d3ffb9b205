//! Tables from NumPy files that numpy itself wrote (`tests/fixtures/tabular/make_npy.py`:
//! plain and compressed `.npz`, Fortran order, big-endian), a schema from one applied to new
//! arrays, and truncated files, which must be errors at every length.

mod table_files;

use std::path::PathBuf;
use table_files::{le_f32, le_i64, npy, npz, write_file};
use wgtrain::data::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tabular").join(name)
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn files_numpy_wrote_read_back_as_written() {
    let classes = read_npz(fixture("classes.npz")).unwrap();
    let quarters: Vec<f32> = (0..15).map(|i| i as f32 / 4.0).collect();
    assert_eq!((classes.rows(), classes.width()), (5, 3), "classes.npz: x is 5 x 3");
    assert_eq!(classes.features(), quarters, "classes.npz: x = arange(15) / 4");
    assert_eq!(classes.feature_names(), strings(&["x0", "x1", "x2"]));
    assert_eq!(classes.schema().target_kind(), TargetKind::Classes);
    assert_eq!(classes.schema().classes(), strings(&["3", "7", "9"]), "labels 3, 7, 9 sorted");
    assert_eq!(classes.target(), Some(&Target::Classes(vec![0, 1, 0, 2, 1])), "y = [3, 7, 3, 9, 7]");

    let values = read_npz(fixture("values_fortran.npz")).unwrap();
    let c_order: Vec<f32> = (1..=8).map(|i| i as f32).collect();
    assert_eq!(values.features(), c_order, "values_fortran.npz: Fortran x rewritten row-major");
    assert_eq!(values.schema().target_kind(), TargetKind::Values);
    assert_eq!(values.schema().target_names(), strings(&["y0", "y1"]));
    let y = vec![0.5, -1.0, 1.5, -2.0, 2.5, -3.0, 3.5, -4.0];
    assert_eq!(values.target(), Some(&Target::Values(y)), "compressed float32 y [4, 2]");

    let pair = read_npy(fixture("x_big_endian.npy"), fixture("y_uint8.npy")).unwrap();
    assert_eq!(pair.features(), [1.0, -2.0, 3.5, 4.0, 5.0, -6.25], "big-endian float64 x");
    assert_eq!(pair.schema().target_kind(), TargetKind::Binary, "two uint8 labels");
    assert_eq!(pair.target(), Some(&Target::Classes(vec![1, 0])));
}

#[test]
fn a_schema_from_arrays_reads_new_arrays_with_the_training_classes() {
    let trained = read_npz(fixture("classes.npz")).unwrap();
    let json = serde_json::to_string(trained.schema()).unwrap();
    let schema: Schema = serde_json::from_str(&json).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let x = npy("<f4", &[2, 3], &le_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let y = |labels: &[i64]| npy("<i8", &[labels.len()], &le_i64(labels));

    // Labels 9 and 3 are classes 2 and 0 of training, though this file has only two labels.
    let eval = write_file(dir.path(), "eval.npz", &npz(&[("x", x.clone()), ("y", y(&[9, 3]))]));
    let table = schema.read_evaluate(&eval).unwrap();
    assert_eq!(table.target(), Some(&Target::Classes(vec![2, 0])), "indices of the training classes");
    assert_eq!(table.features(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

    let predict = write_file(dir.path(), "predict.npy", &x);
    assert_eq!(schema.read_predict(&predict).unwrap().target(), None, ".npy: features only");

    let wide = npy("<f4", &[1, 4], &le_f32(&[0.0; 4]));
    let cases: [(&str, Vec<u8>, bool, &str); 4] = [
        (
            "unseen.npz",
            npz(&[("x", x.clone()), ("y", y(&[9, 5]))]),
            true,
            "y[1] = 5 is a class not seen in training",
        ),
        ("wide.npy", wide, false, "array `x` has 4 columns but the model reads 3 features (x0, x1, x2)"),
        ("predict.npy", x.clone(), true, "evaluate on an .npz with arrays x and y"),
        ("no_y.npz", npz(&[("x", x.clone())]), true, "no array `y`; evaluation needs the target"),
    ];
    for (name, bytes, evaluate, want) in cases {
        let path = write_file(dir.path(), name, &bytes);
        let result = if evaluate { schema.read_evaluate(&path) } else { schema.read_predict(&path) };
        let message = result.expect_err(name).to_string();
        assert!(message.contains(name) && message.contains(want), "{name}: expected `{want}` in: {message}");
    }
}

#[test]
fn truncated_numpy_files_are_errors_at_every_length() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["classes.npz", "x_big_endian.npy"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for len in 0..bytes.len() {
            let path = write_file(dir.path(), name, &bytes[..len]);
            let result = if name.ends_with(".npz") {
                read_npz(&path)
            } else {
                read_npy(&path, fixture("y_uint8.npy"))
            };
            assert!(result.is_err(), "{name} cut to {len} of {} bytes was read", bytes.len());
        }
    }
}
