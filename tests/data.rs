//! Data loading without a GPU: the bundled MNIST, agreement with the `mnist` crate, every kind
//! of broken file (each must be an error naming the file, never a panic or a huge allocation),
//! the `Dataset` methods and the seeded splits.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use wgtrain::data::*;
use wgtrain::Error;

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
const ALL_FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// The bundled MNIST, loaded once for all tests.
fn bundled() -> &'static Mnist {
    static MNIST: OnceLock<Mnist> = OnceLock::new();
    MNIST.get_or_init(|| {
        load_mnist(default_mnist_dir().expect("bundled MNIST found")).expect("bundled MNIST loads")
    })
}

/// IDX labels (u8) as the data set holds them (u32).
fn widen(labels: &[u8]) -> Vec<u32> {
    labels.iter().map(|&l| u32::from(l)).collect()
}

fn histogram(labels: &[u32]) -> Vec<usize> {
    let mut counts = vec![0; 10];
    for &l in labels {
        counts[l as usize] += 1;
    }
    counts
}

// ---- IDX fixtures -------------------------------------------------------------------------

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0x0803, count, rows, cols] {
        out.extend_from_slice(&u32::to_be_bytes(v));
    }
    out.extend_from_slice(pixels);
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0x0801, labels.len() as u32] {
        out.extend_from_slice(&u32::to_be_bytes(v));
    }
    out.extend_from_slice(labels);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A tiny valid set: 5 training and 3 test images of 2x3 pixels.
struct Tiny {
    train_pixels: Vec<u8>,
    train_labels: Vec<u8>,
    test_pixels: Vec<u8>,
    test_labels: Vec<u8>,
}

fn tiny() -> Tiny {
    Tiny {
        train_pixels: (0..30).map(|i| (i * 37 % 256) as u8).collect(),
        train_labels: vec![0, 1, 2, 9, 3],
        test_pixels: (0..18).map(|i| (255 - i * 11) as u8).collect(),
        test_labels: vec![7, 0, 4],
    }
}

/// The four raw IDX files of the tiny set, by canonical name.
fn tiny_files() -> Vec<(&'static str, Vec<u8>)> {
    let t = tiny();
    vec![
        (TRAIN_IMAGES, idx_images(5, 2, 3, &t.train_pixels)),
        (TRAIN_LABELS, idx_labels(&t.train_labels)),
        (TEST_IMAGES, idx_images(3, 2, 3, &t.test_pixels)),
        (TEST_LABELS, idx_labels(&t.test_labels)),
    ]
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// The tiny set in a temp folder, raw, except that the file `name` (a canonical name, with or
/// without `.gz`) holds `bytes` instead.
fn tiny_dir_with(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (canonical, good) in tiny_files() {
        if canonical == name.trim_end_matches(".gz") {
            write(&dir.path().join(name), bytes);
        } else {
            write(&dir.path().join(canonical), &good);
        }
    }
    dir
}

fn expect_file_error(err: Error, expected: &Path, needle: &str, why: &str) {
    let text = err.to_string();
    match &err {
        Error::File { path, reason } => {
            assert_eq!(path, expected, "{why}: wrong file named in `{text}`");
            assert!(reason.contains(needle), "{why}: `{text}` should mention `{needle}`");
        }
        other => panic!("{why}: expected Error::File, got {other:?}"),
    }
    let name = expected.file_name().unwrap().to_str().unwrap();
    assert!(text.contains(name), "{why}: message `{text}` should name {name}");
}

// ---- the bundled MNIST --------------------------------------------------------------------

#[test]
fn bundled_mnist_has_the_published_shape_and_label_counts() {
    let m = bundled();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    assert_eq!((m.train.features(), m.test.features()), (784, 784));
    assert_eq!((m.train.classes(), m.test.classes()), (10, 10));
    assert_eq!(m.train.pixels().unwrap().len(), 60_000 * 784);
    // Counts from /work/shared/data/README.md, the published MNIST distribution.
    let train = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
    let test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
    assert_eq!(histogram(m.train.labels()), train, "training label counts");
    assert_eq!(histogram(m.test.labels()), test, "test label counts");
}

/// Decompresses the bundled files into a temp folder, raw, under the canonical names.
fn raw_copy_of_bundled() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ALL_FILES {
        let gz = std::fs::read(default_mnist_dir().unwrap().join(format!("{name}.gz"))).unwrap();
        let mut raw = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
        write(&dir.path().join(name), &raw);
    }
    dir
}

#[test]
fn reader_agrees_with_the_mnist_crate_and_raw_equals_gz() {
    let raw_dir = raw_copy_of_bundled();
    let base = format!("{}/", raw_dir.path().to_str().unwrap());
    let reference = mnist::MnistBuilder::new().base_path(&base).finalize();
    let ours = bundled();
    assert!(ours.test.pixels().unwrap() == reference.tst_img, "test images differ from the mnist crate");
    assert_eq!(ours.test.labels(), widen(&reference.tst_lbl), "test labels differ from the mnist crate");
    assert!(ours.train.pixels().unwrap() == reference.trn_img, "train images differ from the mnist crate");
    assert_eq!(ours.train.labels(), widen(&reference.trn_lbl), "train labels differ from the mnist crate");

    let from_raw = load_mnist(raw_dir.path()).unwrap();
    assert!(from_raw == *ours, "raw and gzipped files must load identically");
}

#[test]
fn dotted_names_and_mixed_compression_load() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, bytes)) in tiny_files().into_iter().enumerate() {
        let dotted = name.replacen("-idx", ".idx", 1);
        match i % 2 {
            0 => write(&dir.path().join(dotted), &bytes),
            _ => write(&dir.path().join(format!("{dotted}.gz")), &gzip(&bytes)),
        }
    }
    let m = load_mnist(dir.path()).unwrap();
    let t = tiny();
    assert_eq!(m.train.pixels().unwrap(), t.train_pixels);
    assert_eq!(m.train.labels(), widen(&t.train_labels));
    assert_eq!(m.test.pixels().unwrap(), t.test_pixels);
    assert_eq!(m.test.labels(), widen(&t.test_labels));
    assert_eq!((m.train.features(), m.train.classes()), (6, 10));
}

#[test]
fn raw_idx_under_a_gz_name_loads_by_content() {
    let files = tiny_files();
    let labels = &files[3].1;
    let dir = tiny_dir_with("t10k-labels-idx1-ubyte.gz", labels);
    assert!(!dir.path().join(TEST_LABELS).exists());
    let m = load_mnist(dir.path()).unwrap();
    assert_eq!(m.test.labels(), widen(&tiny().test_labels));
}

// ---- broken files -------------------------------------------------------------------------

fn header_only(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    idx_images(count, rows, cols, &[1, 2, 3])
}

#[test]
fn broken_files_are_errors_naming_the_file() {
    let files = tiny_files();
    let (images, labels) = (&files[0].1, &files[1].1);
    let cut = |b: &[u8], n: usize| b[..b.len() - n].to_vec();
    let appended = |b: &[u8]| [b, &[0, 0, 0]].concat();
    let half_gz = cut(&gzip(images), gzip(images).len() / 2);
    let (img_gz, lbl_gz) = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
    let huge_labels = [0, 0, 8, 1, 255, 255, 255, 255, 1].to_vec();
    // (why, file name written, its bytes, text the reason must contain)
    let rows: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("labels in the images slot", TRAIN_IMAGES, labels.clone(), "labels file"),
        ("images in the labels slot", TRAIN_LABELS, images.clone(), "images file"),
        ("garbage magic", TRAIN_IMAGES, vec![7; 40], "wrong magic"),
        ("truncated header", TRAIN_IMAGES, images[..10].to_vec(), "truncated"),
        ("truncated label header", TEST_LABELS, vec![0, 0, 8], "truncated"),
        ("truncated payload", TRAIN_IMAGES, cut(images, 1), "truncated"),
        ("trailing bytes", TRAIN_IMAGES, appended(images), "3 trailing bytes"),
        ("trailing label bytes", TRAIN_LABELS, appended(labels), "trailing"),
        ("4 billion images", TRAIN_IMAGES, header_only(u32::MAX, 28, 28), "truncated"),
        ("size overflow", TRAIN_IMAGES, header_only(u32::MAX, u32::MAX, u32::MAX), "overflows"),
        ("4 billion labels", TEST_LABELS, huge_labels, "truncated"),
        ("empty images", TEST_IMAGES, idx_images(3, 0, 3, &[]), "empty"),
        ("label out of range", TRAIN_LABELS, idx_labels(&[0, 1, 10, 9, 3]), "label 10 at row 2"),
        ("fewer labels than images", TEST_LABELS, idx_labels(&[7, 0]), "holds 2 labels"),
        ("more labels than images", TRAIN_LABELS, idx_labels(&[0; 6]), "holds 6 labels"),
        ("garbage under a .gz name", "t10k-images-idx3-ubyte.gz", vec![9; 30], "not gzip"),
        ("gz of a truncated payload", img_gz, gzip(&cut(images, 2)), "truncated"),
        ("gz with trailing data", img_gz, gzip(&appended(images)), "trailing data"),
        ("gz stream cut short", img_gz, half_gz, "corrupt or truncated"),
        ("gz header over the limit", img_gz, gzip(&header_only(u32::MAX, 28, 28)), "limit"),
        ("gz of a wrong magic", lbl_gz, gzip(&[1; 20]), "wrong magic"),
    ];
    for (why, name, bytes, needle) in rows {
        let dir = tiny_dir_with(name, &bytes);
        let err = load_mnist(dir.path()).expect_err(why);
        let text = err.to_string();
        let really_gzip = bytes.starts_with(&[0x1f, 0x8b]);
        assert_eq!(text.contains("not gzip"), name.ends_with(".gz") && !really_gzip, "{why}: {text}");
        expect_file_error(err, &dir.path().join(name), needle, why);
    }
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = tiny_dir_with(TEST_LABELS, &idx_labels(&[1]));
    let text = load_mnist(dir.path()).unwrap_err().to_string();
    assert!(text.contains(TEST_LABELS) && text.contains(TEST_IMAGES), "{text}");
}

#[test]
fn a_zip_bomb_stops_after_the_declared_size() {
    // One 1x1 image followed by 64 MiB of zeros: about 64 KiB compressed. The reader must stop
    // one byte after the declared data instead of inflating everything.
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(&idx_images(1, 1, 1, &[5])).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "the fixture should be a bomb: {} bytes", bomb.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.gz");
    write(&path, &bomb);
    let err = read_idx_images(&path).unwrap_err();
    expect_file_error(err, &path, "trailing data", "zip bomb");
}

#[test]
fn missing_file_names_the_expected_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in tiny_files() {
        if name != TEST_LABELS {
            write(&dir.path().join(name), &bytes);
        }
    }
    let err = load_mnist(dir.path()).unwrap_err();
    let expected = dir.path().join("t10k-labels-idx1-ubyte.gz");
    expect_file_error(err, &expected, "not found", "missing labels file");

    let err = read_idx_labels(dir.path().join("nope")).unwrap_err();
    expect_file_error(err, &dir.path().join("nope"), "not found", "read_idx_labels");
}

#[test]
fn missing_folder_lists_the_expected_files() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("no-such-folder");
    let err = load_mnist(&gone).unwrap_err();
    let text = err.to_string();
    match err {
        Error::File { path, .. } => assert_eq!(path, gone),
        other => panic!("expected Error::File, got {other:?}"),
    }
    for name in ALL_FILES {
        assert!(text.contains(name), "`{text}` should list {name}");
    }
}

#[test]
fn parsing_bytes_gives_data_errors() {
    let t = tiny();
    let img = parse_idx_images(&idx_images(5, 2, 3, &t.train_pixels)).unwrap();
    assert_eq!((img.count, img.rows, img.cols), (5, 2, 3));
    assert_eq!(img.pixels, t.train_pixels);
    assert_eq!(parse_idx_labels(&idx_labels(&[3, 250])).unwrap(), vec![3, 250]);
    assert_eq!(parse_idx_labels(&idx_labels(&[])).unwrap(), Vec::<u8>::new());

    let rows: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty input", vec![], "truncated"),
        ("gzip bytes", gzip(&idx_labels(&[1])), "gzip"),
        ("huge count", header_only(u32::MAX, 28, 28), "truncated"),
        ("overflow", header_only(u32::MAX, u32::MAX, u32::MAX), "overflows"),
        ("trailing", idx_images(1, 1, 1, &[1, 2]), "1 trailing bytes"),
    ];
    for (why, bytes, needle) in rows {
        match parse_idx_images(&bytes) {
            Err(Error::Data(reason)) => assert!(reason.contains(needle), "{why}: {reason}"),
            other => panic!("{why}: expected Error::Data, got {other:?}"),
        }
    }
    assert!(matches!(parse_idx_labels(&[0, 0, 8, 3, 0, 0, 0, 0]), Err(Error::Data(_))));
}

// ---- Dataset ------------------------------------------------------------------------------

fn small_dataset() -> Dataset {
    // 4 images of 3 features; image i is [10i, 10i+1, 10i+2].
    let pixels = (0..4).flat_map(|i| [10 * i, 10 * i + 1, 10 * i + 2]).collect();
    Dataset::new(pixels, vec![3, 1, 0, 2], 3, 4).unwrap()
}

#[test]
fn dataset_new_checks_its_invariants() {
    let rows = [
        ("zero features", vec![], vec![], 0, 10),
        ("one class", vec![1, 2], vec![0, 0], 1, 1),
        ("pixels short", vec![1, 2, 3], vec![0, 1], 2, 10),
        ("pixels long", vec![1, 2, 3, 4, 5], vec![0, 1], 2, 10),
        ("label out of range", vec![1, 2], vec![0, 2], 1, 2),
        ("features overflow", vec![1], vec![0, 1], usize::MAX, 10),
        ("no rows", vec![], vec![], 5, 2),
    ];
    for (why, pixels, labels, features, classes) in rows {
        let got = Dataset::new(pixels, labels, features, classes);
        assert!(matches!(got, Err(Error::Data(_))), "{why}: expected Error::Data, got {got:?}");
    }
}

#[test]
fn dataset_accessors_take_and_subset() {
    let d = small_dataset();
    assert_eq!(d.len(), 4);
    assert!(!d.is_empty());
    assert_eq!(d.image(2), Some(&[20u8, 21, 22][..]));
    assert_eq!(d.image(4), None, "past the end");

    let first = d.take(2);
    assert_eq!(
        (first.pixels().unwrap().to_vec(), first.labels().to_vec()),
        (vec![0, 1, 2, 10, 11, 12], vec![3, 1])
    );
    assert_eq!(d.take(99), d, "take clamps to the length");
    assert_eq!(d.take(0).len(), 1, "take keeps at least one row: a data set is never empty");

    let s = d.subset(&[3, 0, 3]).unwrap();
    assert_eq!(s.pixels().unwrap(), vec![30, 31, 32, 0, 1, 2, 30, 31, 32]);
    assert_eq!(s.labels(), vec![2, 3, 2]);
    assert_eq!((s.features(), s.classes()), (3, 4));
    match d.subset(&[0, 4]) {
        Err(Error::Data(reason)) => assert!(reason.contains("index 4"), "{reason}"),
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn to_f32_is_pixel_over_255() {
    let d = Dataset::new(vec![0, 1, 128, 254, 255, 51], vec![0, 1], 3, 2).unwrap();
    let f = d.to_f32();
    assert_eq!(f.len(), 6);
    for (&p, &x) in d.pixels().unwrap().iter().zip(&f) {
        assert_eq!(x.to_bits(), (p as f32 / 255.0).to_bits(), "pixel {p}");
    }
    assert_eq!((f[0], f[4]), (0.0, 1.0));
    assert!((f[5] - 0.2).abs() < 1e-7);
}

// ---- splits -------------------------------------------------------------------------------

fn assert_partition(split: &Split, n: usize, why: &str) {
    let is_sorted = |v: &[u32]| v.windows(2).all(|w| w[0] < w[1]);
    assert!(is_sorted(&split.train) && is_sorted(&split.val), "{why}: lists must be sorted, unique");
    let train: BTreeSet<u32> = split.train.iter().copied().collect();
    assert!(split.val.iter().all(|v| !train.contains(v)), "{why}: train and val overlap");
    let all: BTreeSet<u32> = train.union(&split.val.iter().copied().collect()).copied().collect();
    assert_eq!(all, (0..n as u32).collect(), "{why}: together they must cover 0..n");
}

#[test]
fn validation_split_sizes_and_partition() {
    // (n, fraction, expected val size = round(n * fraction))
    let rows = [
        (60_000, 0.1, 6_000),
        (10, 0.25, 3), // 2.5 rounds away from zero
        (7, 0.5, 4),   // 3.5 rounds away from zero
        (10, 0.0, 0),
        (1, 0.0, 0),
        (1000, 0.999, 999),
    ];
    for (n, fraction, n_val) in rows {
        let why = format!("n={n} fraction={fraction}");
        let split = validation_split(n, fraction, 7).unwrap();
        assert_eq!(split.val.len(), n_val, "{why}");
        assert_eq!(split.train.len(), n - n_val, "{why}");
        assert_partition(&split, n, &why);
    }
}

#[test]
fn validation_split_is_deterministic_per_seed() {
    let a = validation_split(1000, 0.2, 42).unwrap();
    assert_eq!(a, validation_split(1000, 0.2, 42).unwrap(), "same seed, same split");
    assert_ne!(a, validation_split(1000, 0.2, 43).unwrap(), "another seed, another split");
    // Not just the first 200 indices: the held-out set must be spread over the range.
    assert_ne!(a.val, (0..200).collect::<Vec<u32>>());
    assert!(*a.val.last().unwrap() > 800, "val should reach the end of the range");
}

#[test]
fn validation_split_rejects_bad_fractions() {
    let rows = [
        (100, -0.1, "negative"),
        (100, 1.0, "everything held out"),
        (100, 1.5, "above one"),
        (100, f32::NAN, "NaN"),
        (100, f32::INFINITY, "infinite"),
        (1, 0.5, "rounds to the only sample"),
        (0, 0.0, "no samples at all"),
    ];
    for (n, fraction, why) in rows {
        let got = validation_split(n, fraction, 1);
        assert!(matches!(got, Err(Error::Config(_))), "{why}: expected Error::Config, got {got:?}");
    }
}

#[test]
fn shuffled_is_a_seeded_permutation() {
    let indices: Vec<u32> = (100..600).collect();
    let a = shuffled(&indices, &mut Pcg64Mcg::seed_from_u64(5));
    let b = shuffled(&indices, &mut Pcg64Mcg::seed_from_u64(5));
    assert_eq!(a, b, "same seed, same order");
    assert_ne!(a, indices, "the order must change");
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, indices, "a permutation: nothing lost, nothing repeated");

    let mut rng = Pcg64Mcg::seed_from_u64(5);
    let first = shuffled(&indices, &mut rng);
    let second = shuffled(&indices, &mut rng);
    assert_ne!(first, second, "successive epochs get different orders");
}

#[test]
fn default_dir_points_at_the_bundled_copy() {
    let dir: PathBuf = default_mnist_dir().expect("found from the current directory");
    assert!(dir.ends_with("data/mnist"));
    for name in ALL_FILES {
        assert!(dir.join(format!("{name}.gz")).is_file(), "{name}.gz should be bundled");
    }
}
