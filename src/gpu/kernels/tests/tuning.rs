//! The autotuner's choices across processes, on the test adapter: pipelines built only when a
//! product is recorded with them, the shipped choices on Mesa's llvmpipe (nothing timed,
//! nothing else compiled), decisions written to the tuning cache and read back by the next
//! "process" (a new `Kernels` on the same adapter), and a corrupt cache file ignored.

use super::open_gpus;
use crate::gpu::kernels::{Kernels, MatmulCall, TuneSource, Variant};
use crate::gpu::Gpu;
use crate::gpu::TuningCache;
use crate::ops::MatmulForm;

/// The demo's first-layer forward product: 128 x 64 x 784, aligned for every variant.
const M: usize = 128;
const N: usize = 64;
const K: usize = 784;

struct Operands {
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    c: wgpu::Buffer,
}

impl Operands {
    fn new(gpu: &Gpu) -> Self {
        let up = |len: usize| {
            gpu.upload("t", &super::random(len, len as u64), wgpu::BufferUsages::COPY_SRC).unwrap()
        };
        Operands { a: up(M * K), b: up(K * N), c: up(M * N) }
    }

    fn call(&self) -> MatmulCall<'_> {
        MatmulCall::plain(MatmulForm::AB, M, N, K, &self.a, &self.b, &self.c)
    }
}

fn is_llvmpipe(gpu: &Gpu) -> bool {
    gpu.report.device_type == "cpu" && gpu.report.name.starts_with("llvmpipe")
}

/// Kernels on a fresh device of the test adapter, keeping decisions in `cache`.
fn kernels(cache: TuningCache) -> (Gpu, Kernels) {
    let gpu = open_gpus(1).remove(0).with_tuning_cache(cache);
    let kernels = Kernels::new(&gpu).expect("kernels");
    (gpu, kernels)
}

fn cache_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn pipelines_are_built_when_first_recorded() {
    let (gpu, k) = kernels(TuningCache::Disabled);
    for v in Variant::ALL {
        assert!(!k.matmul.is_built(v), "{} was built before anything was recorded", v.name());
    }
    let ops = Operands::new(&gpu);
    k.matmul.record(&gpu, Variant::Rb4x4, &ops.call()).expect("record");
    assert!(k.matmul.is_built(Variant::Rb4x4));
    let others: Vec<&str> = Variant::ALL
        .into_iter()
        .filter(|v| *v != Variant::Rb4x4 && k.matmul.is_built(*v))
        .map(Variant::name)
        .collect();
    assert!(others.is_empty(), "recording rb4x4 also built {others:?}");
}

/// On llvmpipe (lavapipe, or Mesa's GL) the shipped choice is used: nothing is timed, only the
/// chosen variant is built, and nothing needs saving. Elsewhere the variants are timed.
#[test]
fn llvmpipe_uses_the_shipped_choice_without_timing() {
    let dir = tempfile::tempdir().unwrap();
    let (gpu, k) = kernels(TuningCache::Dir(dir.path().to_path_buf()));
    let ops = Operands::new(&gpu);
    let v = k.tuner.choose(&gpu, &k.matmul, &ops.call()).expect("choose");
    let rec = k.tuner.records().pop().expect("a record");
    if !is_llvmpipe(&gpu) {
        assert_eq!(rec.source, TuneSource::Measured, "{} has no shipped choices", gpu.report.label());
        return;
    }
    assert_eq!(rec.source, TuneSource::Shipped);
    let want = if gpu.has_subgroups_of(8) { Variant::TexAbSg } else { Variant::TexAb };
    assert_eq!(v, want, "llvmpipe's shipped choice for a big aligned AB");
    assert!(rec.timings.is_empty(), "nothing may be timed: {:?}", rec.timings);
    let built: Vec<&str> =
        Variant::ALL.into_iter().filter(|v| k.matmul.is_built(*v)).map(Variant::name).collect();
    assert!(built.is_empty(), "choosing compiles nothing (recording does): {built:?}");
    assert!(cache_files(dir.path()).is_empty(), "a shipped choice is not written to the cache");
}

/// A measured decision is saved; the next process on the adapter reads it instead of timing;
/// with the cache disabled nothing is written.
#[test]
fn measured_decisions_round_trip_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TuningCache::Dir(dir.path().to_path_buf());
    let (gpu, first) = kernels(cache.clone());
    first.tuner.use_shipped_defaults(false);
    let ops = Operands::new(&gpu);
    let measured = first.tuner.choose(&gpu, &first.matmul, &ops.call()).expect("choose");
    let rec = first.tuner.records().pop().expect("a record");
    assert_eq!(rec.source, TuneSource::Measured);
    assert!(!rec.timings.is_empty(), "a measured decision has its timings");
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 1, "one cache file per adapter: {files:?}");
    assert_eq!(first.tuner.cache_file(), Some(files[0].as_path()));

    let (gpu2, second) = kernels(cache);
    second.tuner.use_shipped_defaults(false);
    let ops2 = Operands::new(&gpu2);
    let cached = second.tuner.choose(&gpu2, &second.matmul, &ops2.call()).expect("choose");
    let rec = second.tuner.records().pop().expect("a record");
    assert_eq!((cached, rec.source), (measured, TuneSource::Cached), "the saved decision is used");
    assert!(rec.timings.is_empty(), "nothing timed the second time");
    let built: Vec<&str> =
        Variant::ALL.into_iter().filter(|v| second.matmul.is_built(*v)).map(Variant::name).collect();
    assert!(built.is_empty(), "no variant compiled to decide: {built:?}");

    // Disabled: measured again, and no file to write to (saves go only to `cache_file`).
    let (gpu3, third) = kernels(TuningCache::Disabled);
    third.tuner.use_shipped_defaults(false);
    third.tuner.choose(&gpu3, &third.matmul, &Operands::new(&gpu3).call()).expect("choose");
    let rec = third.tuner.records().pop().expect("a record");
    assert_eq!(rec.source, TuneSource::Measured, "a disabled cache is not read");
    assert_eq!(third.tuner.cache_file(), None);
}

/// A corrupt file in the cache's place does not stop training: it is ignored. (That the next
/// save replaces it is tested on the file alone, in `tuning_cache.rs`, without timing here.)
#[test]
fn a_corrupt_cache_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TuningCache::Dir(dir.path().to_path_buf());
    // Learn the file's name, then spoil it.
    let (gpu, probe) = kernels(cache.clone());
    let path = probe.tuner.cache_file().expect("a cache file").to_path_buf();
    drop((probe, gpu));
    std::fs::write(&path, b"{\"format\": 1, \"decisions\": [{\"form\": \"AB\", \"bucke").unwrap();

    let (gpu, k) = kernels(cache);
    let ops = Operands::new(&gpu);
    let v = k.tuner.choose(&gpu, &k.matmul, &ops.call()).expect("a corrupt cache must not be fatal");
    k.matmul.record(&gpu, v, &ops.call()).expect("and the choice records");
    let rec = k.tuner.records().pop().expect("a record");
    assert_ne!(rec.source, TuneSource::Cached, "nothing is read from a corrupt file");
}
