//! Matmul variants for known software drivers, used without timing anything.
//!
//! Why: on Mesa's llvmpipe (Vulkan through lavapipe, and GL) a variant's first launch compiles
//! it with LLVM, 0.1-2.5 s each with a cold shader cache (36 s for `tiled16_k64` on GL). Timing
//! every candidate made a newcomer's first epoch 24 s on lavapipe and 57 s on GL; these
//! choices make it compile only the three or four variants a run launches. Every variant gives
//! the same bits, so a choice here can only cost speed, never change a result.

use super::matmul::Variant;
use crate::gpu::AdapterReport;
use crate::ops::MatmulForm;

/// On llvmpipe, per form, the variants in order of preference: the first that supports the
/// call is used. `rb4x4` runs every call, so one always does. These are the tuner's own picks
/// there (Mesa 22.3.6, LLVM 15, 2 cores; BENCHMARKS.md, "Matmul GFLOP/s", 2026-11-27): the
/// texture variants for the big products (2-3x the buffer variants: a texel fetch is one
/// vectorized gather there, a buffer load a per-lane loop; for aligned ABt `tex_abt`, the AB
/// kernel on B packed transposed, 2.2x `v4_abt` on 1024^3 in the same run, 2026-11-30), and a
/// register block for the small, unaligned ones (n or k = 10). For those the tuner picked
/// `rb4x4` or `rb4x8` from run to run; `rb4x4` is shipped because it compiles in half the
/// time (0.74-0.79 s against 1.6-2.1 s, cold) and ran the demo's three small products as
/// fast (0.20-0.35 ms a launch against 0.20-0.54 ms, 2026-11-30).
const LLVMPIPE: [(MatmulForm, &[Variant]); 3] = [
    (MatmulForm::AB, &[Variant::TexAb, Variant::V4Ab, Variant::Rb4x4]),
    (MatmulForm::AtB, &[Variant::TexAtb, Variant::V4Atb, Variant::Rb4x4]),
    (MatmulForm::ABt, &[Variant::TexAbt, Variant::V4Abt, Variant::Rb4x4]),
];

/// Whether `report` is Mesa's llvmpipe, the driver under both lavapipe (Vulkan) and Mesa's
/// software GL: a CPU-type adapter named `llvmpipe (LLVM ...)`.
pub(crate) fn is_llvmpipe(report: &AdapterReport) -> bool {
    report.device_type == "cpu" && report.name.starts_with("llvmpipe")
}

/// The shipped variant for a product of `form` on `report`'s adapter, given which variants
/// can run the call; `None` for adapters without shipped choices (they are timed).
pub(crate) fn choice(
    report: &AdapterReport,
    form: MatmulForm,
    supports: impl Fn(Variant) -> bool,
) -> Option<Variant> {
    if !is_llvmpipe(report) {
        return None;
    }
    let (_, order) = LLVMPIPE.iter().find(|(f, _)| *f == form)?;
    order.iter().copied().find(|v| supports(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, backend: &str, device_type: &str) -> AdapterReport {
        AdapterReport {
            index: 0,
            name: name.into(),
            backend: backend.into(),
            device_type: device_type.into(),
            driver: String::new(),
            max_storage_buffer_binding_size: 1 << 27,
            max_buffer_size: 1 << 28,
            max_compute_invocations_per_workgroup: 256,
            max_compute_workgroup_storage_size: 16384,
            timestamp_queries: false,
        }
    }

    #[test]
    fn shipped_choices_table() {
        use MatmulForm::*;
        use Variant::*;
        let lavapipe = report("llvmpipe (LLVM 15.0.6, 256 bits)", "vulkan", "cpu");
        let gl = report("llvmpipe (LLVM 15.0.6, 256 bits)", "gl", "cpu");
        let swiftshader = report("SwiftShader Device (Subzero)", "vulkan", "cpu");
        let gpu = report("NVIDIA H100 80GB HBM3", "vulkan", "discrete");
        let all = |_: Variant| true;
        let scalar = |v: Variant| v.only_form().is_none();
        let no_textures = |v: Variant| !v.reads_textures();
        // (adapter, form, which variants the call supports, expected, why)
        type Row<'a> = (&'a AdapterReport, MatmulForm, &'a dyn Fn(Variant) -> bool, Option<Variant>, &'a str);
        let rows: &[Row] = &[
            (&lavapipe, AB, &all, Some(TexAb), "big aligned AB: the texture variant"),
            (&lavapipe, AtB, &all, Some(TexAtb), "big aligned AtB: the texture variant"),
            (&lavapipe, ABt, &all, Some(TexAbt), "aligned ABt: the texture variant on B transposed"),
            (&lavapipe, ABt, &no_textures, Some(V4Abt), "aligned ABt without textures: vec4 dot products"),
            (&gl, AB, &all, Some(TexAb), "llvmpipe's GL gets the same table"),
            (&lavapipe, AB, &no_textures, Some(V4Ab), "no texture path (or too big a texture): vec4 loads"),
            (&lavapipe, AB, &scalar, Some(Rb4x4), "n = 10: only the scalar variants run it"),
            (&lavapipe, ABt, &scalar, Some(Rb4x4), "k = 10: only the scalar variants run it"),
            (&swiftshader, AB, &all, None, "another software driver is timed"),
            (&gpu, AB, &all, None, "hardware is timed"),
        ];
        for &(adapter, form, supports, want, why) in rows {
            assert_eq!(choice(adapter, form, supports), want, "{why}");
        }
    }
}
