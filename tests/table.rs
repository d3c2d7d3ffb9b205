//! Tables from CSV and NumPy without a GPU: the three shipped real tables, every kind of bad
//! file (each a one-line error naming the file, and the row and column where there is one),
//! categorical encoding re-applied at predict/evaluate time, dropped rows, target-kind
//! inference, and a schema whose JSON is the same bytes every run.

mod table_files;

use std::path::PathBuf;
use table_files::{le_f32, le_i64, npy, npz, write_file};
use wgtrain::data::*;
use wgtrain::Error;

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tabular").join(name)
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn class_counts(table: &Table) -> Vec<usize> {
    let Some(Target::Classes(ix)) = table.target() else { panic!("{table:?} has no class target") };
    let mut counts = vec![0; table.schema().classes().len()];
    for &i in ix {
        counts[i as usize] += 1;
    }
    counts
}

/// File, target column, rows, features, kind, classes, rows per class.
type Shipped = (&'static str, &'static str, usize, usize, TargetKind, Vec<String>, Vec<usize>);

#[test]
fn the_shipped_tables_load_with_their_shapes_kinds_and_classes() {
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    #[rustfmt::skip]
    let cases: [Shipped; 3] = [
        ("breast_cancer.csv", "diagnosis", 569, 30, TargetKind::Binary, strings(&["benign", "malignant"]), vec![357, 212]),
        ("digits.csv", "digit", 1797, 64, TargetKind::Classes, digits,
         vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]),
        ("diabetes.csv", "target", 442, 10, TargetKind::Values, vec![], vec![]),
    ];
    for (file, target, rows, width, kind, classes, counts) in cases {
        let table = read_csv(shipped(file), &CsvOptions::new(target)).unwrap();
        assert_eq!((table.rows(), table.width()), (rows, width), "{file}: rows x features");
        assert_eq!(table.features().len(), rows * width, "{file}: feature buffer");
        assert_eq!(table.schema().target_kind(), kind, "{file}: inferred kind ({})", table.report());
        assert_eq!(table.schema().classes(), classes, "{file}: classes, sorted");
        assert!(table.report().inferred_kind.is_some(), "{file}: the inference is reported");
        assert_eq!(table.report().rows_dropped, 0, "{file}: nothing dropped");
        if kind != TargetKind::Values {
            assert_eq!(class_counts(&table), counts, "{file}: rows per class");
        }
    }
    // The first row of diabetes.csv, as written in the file.
    let diabetes = read_csv(shipped("diabetes.csv"), &CsvOptions::new("target")).unwrap();
    let first = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0];
    assert_eq!(&diabetes.features()[..10], first, "diabetes row 1 features");
    assert_eq!(diabetes.feature_names()[..3], strings(&["age", "sex", "bmi"]), "file order");
    let Some(Target::Values(y)) = diabetes.target() else { panic!("diabetes has a values target") };
    assert_eq!((y.len(), y[0]), (442, 151.0), "diabetes targets, the first 151");
}

/// How a bad-file row is read.
enum Load {
    Csv(CsvOptions),
    Npz,
    /// The file is `x`; the `y` file next to it has these bytes.
    NpyPair(Vec<u8>),
}

#[test]
fn bad_files_are_one_line_errors_naming_file_row_and_column() {
    let opts = |target: &str| Load::Csv(CsvOptions::new(target));
    let x32 = |rows: usize, cols: usize| npy("<f4", &[rows, cols], &le_f32(&vec![1.0; rows * cols]));
    let y64 = |labels: &[i64]| npy("<i8", &[labels.len()], &le_i64(labels));
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, Load, &[&str])> = vec![
        ("non_numeric.csv", b"a,b,y\n1,2,0\n3,x,1\n".to_vec(), opts("y"),
         &["row 2 (line 3)", "column `b`", "`x` is not a number", "categorical"]),
        ("na.csv", b"a,y\n1,0\nNA,1\n".to_vec(), opts("y"), &["row 2 (line 3)", "column `a`", "missing (`NA`)", "drop_missing"]),
        ("empty_cell.csv", b"a,b,y\n1,,0\n".to_vec(), opts("y"), &["row 1 (line 2)", "column `b`", "is empty"]),
        ("empty_target.csv", b"a,y\n1,0\n2, \n".to_vec(), opts("y"), &["row 2 (line 3)", "column `y`", "is empty"]),
        ("unknown_target.csv", b"a,b,y\n1,2,0\n".to_vec(), opts("z"), &["no target column `z`", "the columns are: a, b, y"]),
        ("unknown_feature.csv", b"a,y\n1,0\n".to_vec(), Load::Csv(CsvOptions::new("y").features(["q"])),
         &["no feature column `q`", "the columns are: a, y"]),
        ("ragged.csv", b"a,b,y\n1,2,0\n3,1\n".to_vec(), opts("y"), &["row 2 (line 3) has 2 fields but the header has 3"]),
        ("empty.csv", b"".to_vec(), opts("y"), &["the file is empty", "header row"]),
        ("header_only.csv", b"a,y\n".to_vec(), opts("y"), &["header but no data rows"]),
        ("duplicate.csv", b"a,b,a,y\n1,2,3,0\n".to_vec(), opts("y"), &["column `a` twice (columns 1 and 3)"]),
        ("inf.csv", b"a,y\n1,0\n-inf,1\n".to_vec(), opts("y"), &["row 2 (line 3)", "column `a`", "`-inf` is not a finite number"]),
        ("huge.csv", b"a,y\n1e39,0\n".to_vec(), opts("y"), &["row 1 (line 2)", "column `a`", "outside the f32 range"]),
        ("not_utf8.csv", b"a,y\n1,0\n\xff,1\n".to_vec(), opts("y"), &["line 3", "not valid UTF-8"]),
        ("text_values.csv", b"a,y\n1,2.5\n2,big\n".to_vec(), Load::Csv(CsvOptions::new("y").target_kind(TargetKind::Values)),
         &["row 2 (line 3)", "target column `y`", "`big` is not a number"]),
        ("three_binary.csv", b"a,y\n1,a\n2,b\n3,c\n".to_vec(), Load::Csv(CsvOptions::new("y").target_kind(TargetKind::Binary)),
         &["exactly two classes", "a, b, c"]),
        ("one_class.csv", b"a,y\n1,a\n2,a\n".to_vec(), opts("y"), &["1 class(es) (a)", "at least two"]),
        ("multi_label.csv", b"a,y,z\n1,0,2\n".to_vec(), Load::Csv(CsvOptions::new("y").targets(["y", "z"]).target_kind(TargetKind::MultiLabel)),
         &["row 1 (line 2)", "target column `z`", "`2` is not 0 or 1"]),
        ("all_missing.csv", b"a,y\nNA,0\n".to_vec(), Load::Csv(CsvOptions::new("y").drop_missing(true)), &["all 1 rows have a missing value"]),
        ("dtype.npz", npz(&[("x", npy("<U3", &[2, 1], &[0; 24])), ("y", y64(&[0, 1]))]), Load::Npz,
         &["array `x` has dtype `<U3`", "expected float32 or float64"]),
        ("rows.npz", npz(&[("x", x32(3, 2)), ("y", y64(&[0, 1]))]), Load::Npz, &["array `x` has 3 rows but `y` has 2"]),
        ("rank.npz", npz(&[("x", npy("<f4", &[4], &le_f32(&[1.0; 4]))), ("y", y64(&[0, 1, 0, 1]))]), Load::Npz,
         &["array `x` has shape [4]", "2-D array [rows, features]"]),
        ("no_y.npz", npz(&[("x", x32(2, 2))]), Load::Npz, &["no array `y`", "numpy.savez"]),
        ("no_x.npz", npz(&[("features", x32(2, 2))]), Load::Npz, &["no array `x`", "holds: features.npy"]),
        ("nan.npz", npz(&[("x", npy("<f4", &[2, 2], &le_f32(&[1.0, 2.0, f32::NAN, 4.0]))), ("y", y64(&[0, 1]))]), Load::Npz,
         &["array `x`: x[1, 0] = NaN is not a finite f32"]),
        ("truncated.npz", npz(&[("x", x32(2, 2)[..x32(2, 2).len() - 10].to_vec()), ("y", y64(&[0, 1]))]), Load::Npz,
         &["array `x` has 6 data bytes", "needs 16", "truncated"]),
        ("multi.npz", npz(&[("x", x32(2, 2)), ("y", npy("<i8", &[2, 2], &le_i64(&[0, 1, 2, 0])))]), Load::Npz,
         &["array `y` is 2-D integer", "y[1, 0] = 2", "save a multi-output regression target as float"]),
        ("zip.npz", b"PK not really a zip".to_vec(), Load::Npz, &["not an .npz (zip) archive"]),
        ("x_dtype.npy", npy("<c8", &[2, 1], &[0; 16]), Load::NpyPair(y64(&[0, 1])), &["array `x` has dtype `<c8`"]),
        ("x_rows.npy", x32(2, 3), Load::NpyPair(y64(&[0, 1, 1])), &["array `x` has 2 rows but `y` has 3"]),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, content, load, want) in cases {
        let path = write_file(dir.path(), name, &content);
        let result = match load {
            Load::Csv(options) => read_csv(&path, &options),
            Load::Npz => read_npz(&path),
            Load::NpyPair(y) => read_npy(&path, write_file(dir.path(), &format!("y_of_{name}"), &y)),
        };
        let err = result.expect_err(name);
        let message = err.to_string();
        assert!(matches!(err, Error::File { .. }), "{name}: a file error: {err:?}");
        assert!(message.contains(name), "{name}: the message names the file: {message}");
        assert!(!message.contains('\n'), "{name}: one line: {message}");
        for part in want {
            assert!(message.contains(part), "{name}: expected `{part}` in: {message}");
        }
    }
}

#[test]
fn option_mistakes_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "ok.csv", b"a,b,y\n1,2,0\n3,4,1\n");
    let cases: [(CsvOptions, &str); 5] = [
        (CsvOptions::default(), "no target column given"),
        (CsvOptions::new("y").targets(["y", "y"]), "target column `y` is given twice"),
        (CsvOptions::new("y").features(["a", "y"]), "`y` is both a feature and the target"),
        (CsvOptions::new("y").features(["a", "a"]), "feature column `a` is given twice"),
        (
            CsvOptions::new("y").features(["a"]).categorical(["b"]),
            "`b` is listed as categorical but is not a feature",
        ),
    ];
    for (options, want) in cases {
        let err = read_csv(&path, &options).unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains(want)), "expected Config `{want}`, got {err}");
    }
}

const TRAIN: &str = "color,size,y\nred,1.5,a\nblue,2.0,b\nred,0.5,a\ngreen,1.0,b\n";

#[test]
fn a_saved_schema_encodes_new_files_like_the_training_one() {
    let dir = tempfile::tempdir().unwrap();
    let train = read_csv(
        write_file(dir.path(), "train.csv", TRAIN.as_bytes()),
        &CsvOptions::new("y").categorical(["color"]),
    )
    .unwrap();
    assert_eq!(train.feature_names(), strings(&["color=blue", "color=green", "color=red", "size"]));
    assert_eq!(&train.features()[..8], [0.0, 0.0, 1.0, 1.5, 1.0, 0.0, 0.0, 2.0], "one-hot, then the number");
    assert_eq!(train.target(), Some(&Target::Classes(vec![0, 1, 0, 1])));

    // Through JSON, as the model file keeps it.
    let schema: Schema = serde_json::from_str(&serde_json::to_string(train.schema()).unwrap()).unwrap();
    assert_eq!(&schema, train.schema(), "the schema survives JSON");

    // Columns in another order, an extra one, no target: predictable, target absent.
    let predict = write_file(dir.path(), "predict.csv", b"extra,size,color\n9,3.0,green\n8,4.0,red\n");
    let table = schema.read_predict(&predict).unwrap();
    assert_eq!(table.features(), [0.0, 1.0, 0.0, 3.0, 0.0, 0.0, 1.0, 4.0]);
    assert_eq!(table.target(), None, "no target column: no target");
    let err = schema.read_evaluate(&predict).unwrap_err().to_string();
    assert!(err.contains("predict.csv") && err.contains("no target column `y`"), "{err}");

    let eval = write_file(dir.path(), "eval.csv", b"y,color,size\nb,blue,1\na,red,2\n");
    assert_eq!(schema.read_evaluate(&eval).unwrap().target(), Some(&Target::Classes(vec![1, 0])));

    let cases: [(&str, &[u8], &[&str]); 4] = [
        (
            "unseen_category.csv",
            b"color,size\nred,1\npurple,2\n",
            &["row 2 (line 3)", "column `color`", "category `purple` was not seen", "blue, green, red"],
        ),
        (
            "unseen_class.csv",
            b"color,size,y\nred,1,c\n",
            &["row 1 (line 2)", "target column `y`", "class `c` was not seen", "(classes: a, b)"],
        ),
        (
            "missing_column.csv",
            b"color,y\nred,a\n",
            &["no feature column `size`", "the columns are: color, y"],
        ),
        ("missing_cell.csv", b"color,size\nred,\n", &["row 1 (line 2)", "column `size`", "is empty"]),
    ];
    for (name, content, want) in cases {
        let path = write_file(dir.path(), name, content);
        let message = schema.read_predict(&path).expect_err(name).to_string();
        for part in want {
            assert!(
                message.contains(part) && message.contains(name),
                "{name}: expected `{part}` in: {message}"
            );
        }
    }
}

#[test]
fn drop_missing_leaves_out_and_counts_rows_with_a_missing_cell_in_a_used_column() {
    let dir = tempfile::tempdir().unwrap();
    // Rows 2 (NA feature) and 4 (empty target) go; row 3's gap is in `note`, which is not read.
    let path = write_file(dir.path(), "gaps.csv", b"a,note,y\n1,x,0\nNA,y,1\n3,,1\n4,z,\n5,w,0\n");
    let options = CsvOptions::new("y").features(["a"]).drop_missing(true).target_kind(TargetKind::Binary);
    let table = read_csv(&path, &options).unwrap();
    assert_eq!((table.report().rows_read, table.report().rows_dropped, table.rows()), (5, 2, 3));
    assert_eq!(table.features(), [1.0, 3.0, 5.0], "the rows kept, in order");
    assert_eq!(table.target(), Some(&Target::Classes(vec![0, 1, 0])));
    assert!(table.report().to_string().contains("dropped 2 with missing values"), "{}", table.report());
}

/// File content, options, the kind, the classes, the encoded target (when checked).
type KindCase<'a> = (&'a str, CsvOptions, TargetKind, &'a [&'a str], Option<Target>);

#[test]
fn target_kinds_are_inferred_or_taken_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let ratings: String = (0..10).map(|i| format!("{i},{}\n", i % 5 + 1)).collect();
    let ratings = format!("a,y\n{ratings}");
    #[rustfmt::skip]
    let cases: [KindCase; 6] = [
        ("a,y\n1,1.0\n2,0.0\n3,1.0\n", CsvOptions::new("y"), TargetKind::Binary, &["0", "1"],
         Some(Target::Classes(vec![1, 0, 1]))),
        ("a,y,z\n1,0,1\n2,1,1\n", CsvOptions::new("y").targets(["y", "z"]), TargetKind::MultiLabel, &["y", "z"],
         Some(Target::Values(vec![0.0, 1.0, 1.0, 1.0]))),
        ("a,y,z\n1,0.5,3\n2,1,-2\n", CsvOptions::new("y").targets(["z", "y"]), TargetKind::Values, &[],
         Some(Target::Values(vec![3.0, 0.5, -2.0, 1.0]))),
        ("a,y\n1,10\n2,2\n3,1\n4,10\n5,2\n6,1\n", CsvOptions::new("y"), TargetKind::Classes, &["1", "2", "10"],
         Some(Target::Classes(vec![2, 1, 0, 2, 1, 0]))),
        (&ratings, CsvOptions::new("y"), TargetKind::Classes, &["1", "2", "3", "4", "5"], None),
        (&ratings, CsvOptions::new("y").target_kind(TargetKind::Values), TargetKind::Values, &[], None),
    ];
    for (i, (content, options, kind, classes, target)) in cases.into_iter().enumerate() {
        let table =
            read_csv(write_file(dir.path(), &format!("kind{i}.csv"), content.as_bytes()), &options).unwrap();
        assert_eq!(table.schema().target_kind(), kind, "case {i}: {}", table.report());
        assert_eq!(table.schema().classes(), strings(classes), "case {i}: classes");
        assert_eq!(
            table.report().inferred_kind.is_none(),
            options.target_kind.is_some(),
            "case {i}: reported"
        );
        if let Some(target) = target {
            assert_eq!(table.target(), Some(&target), "case {i}: encoded target");
        }
    }
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_column_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "excel.csv", "\u{feff}a,y\n1,x\n2,z\n".as_bytes());
    let table = read_csv(&path, &CsvOptions::new("y")).unwrap();
    assert_eq!(table.feature_names(), ["a"], "Excel's UTF-8 BOM is stripped");
}

#[test]
fn the_schema_json_is_the_same_bytes_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "train.csv", TRAIN.as_bytes());
    let options = CsvOptions::new("y").categorical(["color"]);
    let runs: Vec<String> =
        (0..2).map(|_| serde_json::to_string(read_csv(&path, &options).unwrap().schema()).unwrap()).collect();
    assert_eq!(runs[0], runs[1], "two loads, one JSON");
    let expected = concat!(
        r#"{"columns":[{"type":"categorical","name":"color","categories":["blue","green","red"]},"#,
        r#"{"type":"numeric","name":"size"}],"target":["y"],"target_kind":"binary","classes":["a","b"]}"#
    );
    assert_eq!(runs[0], expected, "the documented form: lists in a fixed order");
    let digits: Vec<String> = (0..2)
        .map(|_| {
            serde_json::to_string(
                read_csv(shipped("digits.csv"), &CsvOptions::new("digit")).unwrap().schema(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(digits[0], digits[1], "digits: two loads, one JSON");
}
