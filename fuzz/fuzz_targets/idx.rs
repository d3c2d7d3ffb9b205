//! IDX parsing on arbitrary bytes: every input is an error or a consistent result, never a
//! panic, an allocation larger than the input, or a hang.
//!
//! Gzip goes through the file readers (the only API that decompresses), so an input with the
//! gzip magic is written to a per-process temporary file first; raw inputs skip the disk.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgtrain::data::{parse_idx_images, parse_idx_labels, read_idx_images, read_idx_labels, IdxImages};

fn check_images(images: &IdxImages) {
    assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
    assert!(images.rows > 0 && images.cols > 0);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(images) = parse_idx_images(data) {
        check_images(&images);
        assert_eq!(images.pixels.len() + 16, data.len());
    }
    if let Ok(labels) = parse_idx_labels(data) {
        assert_eq!(labels.len() + 8, data.len());
    }
    if data.starts_with(&[0x1f, 0x8b]) {
        let path = std::env::temp_dir().join(format!("wgtrain-fuzz-idx-{}.gz", std::process::id()));
        std::fs::write(&path, data).expect("cannot write the fuzz temporary file");
        if let Ok(images) = read_idx_images(&path) {
            check_images(&images);
        }
        let _ = read_idx_labels(&path);
    }
});
