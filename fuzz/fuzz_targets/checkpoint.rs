//! `load_checkpoint_bytes` on arbitrary bytes: an error, or a state whose buffers fit its spec.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = wgtrain::checkpoint::load_checkpoint_bytes(data) {
        let len = state.spec.layout().len;
        assert!([&state.params, &state.m, &state.v].iter().all(|b| b.len() == len));
        assert!(state.best_params.is_empty() || state.best_params.len() == len);
    }
});
