//! Matmul variants for known software drivers, used without timing anything.
//!
//! Why: on Mesa's llvmpipe (Vulkan through lavapipe, and GL) a variant's first launch compiles
//! it with LLVM, 0.1-2.5 s each with a cold shader cache (36 s for `tiled16_k64` on GL). Timing
//! every candidate made a newcomer's first epoch 24 s on lavapipe and 57 s on GL; these
//! choices make it compile only the three or four variants a run launches (a few more when a
//! short last batch falls below [`SMALL_PRODUCT`] while the full batches do not: the choice is
//! per shape class, and the class counts the batch's rows). Every variant gives the same bits,
//! so a choice here can only cost speed, never change a result.

use super::matmul::Variant;
use crate::gpu::AdapterReport;
use crate::ops::MatmulForm;

/// On llvmpipe, per form, the variants in order of preference: the first that supports the
/// call is used. `rb4x4` runs every call, so one always does. These are the tuner's own picks
/// there (Mesa 22.3.6, LLVM 15, 2 cores; BENCHMARKS.md, "Matmul GFLOP/s", 2026-11-27): the
/// texture variants for the big products (2-3x the buffer variants: a texel fetch is one
/// vectorized gather there, a buffer load a per-lane loop; for aligned ABt `tex_abt`, then the AB
/// kernel on B packed transposed, 2.2x `v4_abt` on 1024^3 in the same run, 2026-11-30; since
/// 2026-12-01 it reads B as stored), and a
/// register block for the small, unaligned ones (n or k = 10). For those the tuner picked
/// `rb4x4` or `rb4x8` from run to run; `rb4x4` is shipped because it compiles in half the
/// time (0.74-0.79 s against 1.6-2.1 s, cold) and ran the demo's three small products as
/// fast (0.20-0.35 ms a launch against 0.20-0.54 ms, 2026-11-30).
///
/// Products of fewer than [`SMALL_PRODUCT`] multiply-adds skip the texture variants: their
/// packing launches (one or two, ~35 us each with two cores) cost more than the texture reads
/// save. Same run, 2026-11-30, microseconds per product with its packs, lavapipe (GL alike):
/// 32x64x64 AB `tex_ab` 257 / `v4_ab` 95, AtB 165 / 98, ABt 142 / 91; 32x128x128 AB 232 / 164;
/// 128x128x128 (2^21) AB 480 / 487, AtB 486 / 536, ABt 494 / 600: the crossover (raw output in
/// benches/results/2026-11-30-small-products/). Every MNIST and wide-model product is at or
/// above it (or has n or k = 10); the tables' 64-wide layers at batch 32 are below.
///
/// Where the device has subgroups of 8 (lavapipe; not Mesa's GL through wgpu) the texture
/// variants that fetch each texel of A once per subgroup come first: on 1024^3, 1.7-2.0x the
/// texture variants' GFLOP/s, and MNIST's epochs 0.87x (BENCHMARKS.md, "Subgroups", 2026-12-01).
const LLVMPIPE: [(MatmulForm, &[Variant]); 3] = [
    (MatmulForm::AB, &[Variant::TexAbSg, Variant::TexAb, Variant::V4Ab, Variant::Rb4x4]),
    (MatmulForm::AtB, &[Variant::TexAtbSg, Variant::TexAtb, Variant::V4Atb, Variant::Rb4x4]),
    (MatmulForm::ABt, &[Variant::TexAbtSg, Variant::TexAbt, Variant::V4Abt, Variant::Rb4x4]),
];

/// Multiply-adds (m n k, each rounded up to a power of two) below which llvmpipe's shipped
/// choice skips the texture variants.
pub(crate) const SMALL_PRODUCT: usize = 1 << 21;

/// Whether `report` is Mesa's llvmpipe, the driver under both lavapipe (Vulkan) and Mesa's
/// software GL: a CPU-type adapter named `llvmpipe (LLVM ...)`.
pub(crate) fn is_llvmpipe(report: &AdapterReport) -> bool {
    report.device_type == "cpu" && report.name.starts_with("llvmpipe")
}

/// The shipped variant for a product of `form` with `madds` multiply-adds (m n k, each
/// rounded up to a power of two by the caller: the tuner's shape class) on
/// `report`'s adapter, given which variants can run the call; `None` for adapters without
/// shipped choices (they are timed).
pub(crate) fn choice(
    report: &AdapterReport,
    form: MatmulForm,
    madds: usize,
    supports: impl Fn(Variant) -> bool,
) -> Option<Variant> {
    if !is_llvmpipe(report) {
        return None;
    }
    let (_, order) = LLVMPIPE.iter().find(|(f, _)| *f == form)?;
    let small = madds < SMALL_PRODUCT;
    order.iter().copied().find(|v| supports(*v) && !(small && v.reads_textures()))
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
        let no_subgroups = |v: Variant| !v.needs_subgroups();
        let big = 128 * 64 * 784;
        let small = SMALL_PRODUCT - 1;
        // (adapter, form, multiply-adds, which variants the call supports, expected, why)
        type Row<'a> =
            (&'a AdapterReport, MatmulForm, usize, &'a dyn Fn(Variant) -> bool, Option<Variant>, &'a str);
        let rows: &[Row] = &[
            (&lavapipe, AB, big, &all, Some(TexAbSg), "big aligned AB: the subgroup texture variant"),
            (&lavapipe, AtB, big, &all, Some(TexAtbSg), "big aligned AtB: the subgroup texture variant"),
            (&lavapipe, ABt, big, &all, Some(TexAbtSg), "aligned ABt: the subgroup texture variant"),
            (&lavapipe, AB, big, &no_subgroups, Some(TexAb), "big aligned AB without subgroups: textures"),
            (&lavapipe, AtB, big, &no_subgroups, Some(TexAtb), "big aligned AtB without subgroups: textures"),
            (&gl, ABt, big, &no_subgroups, Some(TexAbt), "aligned ABt on GL: the texture variant"),
            (
                &lavapipe,
                ABt,
                big,
                &no_textures,
                Some(V4Abt),
                "aligned ABt without textures: vec4 dot products",
            ),
            (&gl, AB, big, &all, Some(TexAbSg), "llvmpipe's GL gets the same table"),
            (
                &lavapipe,
                AB,
                big,
                &no_textures,
                Some(V4Ab),
                "no texture path (or too big a texture): vec4 loads",
            ),
            (&lavapipe, AB, big, &scalar, Some(Rb4x4), "n = 10: only the scalar variants run it"),
            (&lavapipe, ABt, big, &scalar, Some(Rb4x4), "k = 10: only the scalar variants run it"),
            (&swiftshader, AB, big, &all, None, "another software driver is timed"),
            (&gpu, AB, big, &all, None, "hardware is timed"),
            (&lavapipe, AB, small, &all, Some(V4Ab), "a small AB: vec4 loads, no packs"),
            (&lavapipe, AtB, small, &all, Some(V4Atb), "a small AtB: vec4 loads, no packs"),
            (&gl, ABt, small, &all, Some(V4Abt), "a small ABt on GL: vec4 dot products, no pack"),
            (
                &lavapipe,
                AB,
                SMALL_PRODUCT,
                &all,
                Some(TexAbSg),
                "from 2^21 multiply-adds on: the texture variant",
            ),
            (&lavapipe, AB, small, &scalar, Some(Rb4x4), "a small product with n = 10: the register block"),
            (&gpu, AB, small, &all, None, "hardware is timed, small or not"),
        ];
        for &(adapter, form, madds, supports, want, why) in rows {
            assert_eq!(choice(adapter, form, madds, supports), want, "{why}");
        }
    }
}
