//! Shared test setup: the adapter GPU tests run on (the first Vulkan adapter, else the first
//! GL one: a machine without a Vulkan driver runs the suite on Mesa's GL), and one device per
//! test binary. (The kernels' own tests live with the kernels, in `src/gpu/kernels/tests/`.)
//!
//! A test that needs an adapter fails when none is found (never skips): CI installs Mesa's
//! software drivers precisely so that these tests run. A test that needs two backends at once
//! may skip outside CI only, saying so on stderr ([`require_backends`]).
#![allow(dead_code)]

use std::sync::OnceLock;

use wgtrain::gpu::{self, AdapterReport, AdapterSelection, Gpu};

pub struct Fixture {
    pub gpu: Gpu,
}

/// The adapter GPU tests run on: the first Vulkan adapter (lavapipe on CI), else the first GL
/// adapter (llvmpipe where no Vulkan driver is installed), else the first of any backend.
/// Panics, failing the test, when there is none.
pub fn test_adapter() -> &'static AdapterReport {
    static A: OnceLock<AdapterReport> = OnceLock::new();
    A.get_or_init(|| {
        let all = gpu::list_adapters();
        ["vulkan", "gl"]
            .iter()
            .find_map(|b| all.iter().find(|r| r.backend == *b))
            .or_else(|| all.first())
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "this test needs a GPU adapter and wgpu found none; install Mesa's software drivers \
                     (`apt-get install mesa-vulkan-drivers libvulkan1 libegl1 libgl1-mesa-dri`, or run .ci/run)"
                )
            })
    })
}

/// `n` logical devices on [`test_adapter`].
pub fn open_gpus(n: usize) -> Vec<Gpu> {
    let adapter = test_adapter();
    gpu::open(&AdapterSelection::Indices(vec![adapter.index]), n)
        .unwrap_or_else(|e| panic!("opening {n} device(s) on {}: {e}", adapter.label()))
}

/// One device on [`test_adapter`], shared by the tests of a binary.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture { gpu: open_gpus(1).remove(0) })
}

/// Whether the suite runs under CI: `CI` is set (by `.ci/run` and by every CI service).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// For a test that needs an adapter of each of `backends` at once: `true` when they exist.
/// Otherwise the test fails under CI, and elsewhere this says on stderr what is skipped and
/// why, and returns `false` (the test then returns early, which cargo reports as passed).
pub fn require_backends(test: &str, backends: &[&str]) -> bool {
    let all = gpu::list_adapters();
    let missing: Vec<&str> =
        backends.iter().copied().filter(|b| !all.iter().any(|r| r.backend == *b)).collect();
    if missing.is_empty() {
        return true;
    }
    let seen: Vec<String> = all.iter().map(AdapterReport::label).collect();
    let why = format!("{test} needs a {} adapter; wgpu found {seen:?}", missing.join(" and a "));
    assert!(!in_ci(), "{why} (CI is set: a missing adapter fails the test)");
    // Written to the stderr handle, not with eprintln!, which the test harness captures and
    // shows only for failing tests: a skip must be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {why}. It runs where both drivers are installed, and fails under CI."
    );
    false
}
