//! `load_model_bytes` on arbitrary bytes: an error, or a spec and a flat buffer that agree.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((spec, params)) = wgtrain::checkpoint::load_model_bytes(data) {
        let layout = spec.layout();
        assert_eq!(params.len(), layout.len);
        assert!(params.iter().all(|p| p.is_finite()));
        // Padding after the last tensor is zero.
        let last = layout.layers.last().expect("a valid spec has a layer");
        assert!(params[last.bias + last.outputs..].iter().all(|&p| p == 0.0));
    }
});
