//! Picks a matmul variant per adapter and shape class by timing every variant that supports
//! the shape, once, on scratch buffers. The choice is cached per (adapter name, form, shape
//! class); it can be forced, saved and loaded.
//!
//! Why measure instead of a rule: on lavapipe (a CPU-backed Vulkan driver) shared-memory
//! tiling is ~20x slower than vec4 register blocks, while real GPUs prefer tiling; and the
//! best block shape moves with m, n, k.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::matmul::{Matmul, MatmulCall, Variant};
use super::pipeline::Dispatch;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::MatmulForm;

/// One tuning decision, for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneRecord {
    /// Adapter name the decision applies to.
    pub adapter: String,
    /// `AB`, `AtB` or `ABt`.
    pub form: String,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Length of each dot product.
    pub k: usize,
    /// The variant chosen.
    pub variant: Variant,
    /// Seconds per product of each variant measured (empty when loaded or forced).
    pub timings: Vec<(Variant, f64)>,
    /// Whether A arrives already packed into a texture (the gathered batch), so the texture
    /// variants were timed without packing it.
    #[serde(default)]
    pub a_packed: bool,
}

type Key = (String, MatmulForm, [u32; 3], u32, bool);

/// Shape class: log2 buckets of each dimension, plus which variants can run the exact call
/// (alignment decides that, so it belongs in the key).
fn key(gpu: &Gpu, matmul: &Matmul, call: &MatmulCall<'_>, a_packed: bool) -> Key {
    let bucket = |v: usize| usize::BITS - v.max(1).next_power_of_two().leading_zeros();
    let mask = Variant::ALL
        .iter()
        .enumerate()
        .filter(|(_, v)| matmul.supports(**v, call))
        .fold(0u32, |acc, (i, _)| acc | (1 << i));
    (gpu.report.name.clone(), call.form, [bucket(call.m), bucket(call.n), bucket(call.k)], mask, a_packed)
}

/// The per-device tuning state. Shared by every recording on that device.
#[derive(Default)]
pub struct Autotuner {
    cache: Mutex<HashMap<Key, Variant>>,
    forced: Mutex<Option<Variant>>,
    records: Mutex<Vec<TuneRecord>>,
    /// Variants found hopeless (4x behind the best, or 8x on a first launch) on some shape of
    /// an adapter: not launched again on its later shapes, where a single launch can cost a
    /// quarter of a second (shared-memory tiles on lavapipe at 1000 rows).
    hopeless: Mutex<HashSet<(String, Variant)>>,
}

impl Autotuner {
    /// Always use `variant` where it supports the shape (None: measure again).
    pub fn force(&self, variant: Option<Variant>) {
        if let Ok(mut f) = self.forced.lock() {
            *f = variant;
        }
    }

    /// Every decision taken so far.
    pub fn records(&self) -> Vec<TuneRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Writes the decisions as JSON so a later process can skip the measurements.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_string_pretty(&self.records()).map_err(|e| Error::file(path, e.to_string()))?;
        std::fs::write(path, json).map_err(|e| Error::io(path, e))
    }

    /// Loads decisions written by [`Autotuner::save`] (for `gpu`'s adapter only).
    pub fn load(&self, gpu: &Gpu, matmul: &Matmul, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let records: Vec<TuneRecord> =
            serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not a tuning cache: {e}")))?;
        for r in records.into_iter().filter(|r| r.adapter == gpu.report.name) {
            let form = MatmulForm::ALL.into_iter().find(|f| f.name() == r.form);
            let Some(form) = form else { continue };
            // A scratch-free key: rebuild it from the shape with zero offsets.
            let scratch = Scratch::new(gpu, form, r.m, r.n, r.k)?;
            let call = scratch.call(form, r.m, r.n, r.k);
            if let Ok(mut c) = self.cache.lock() {
                c.insert(key(gpu, matmul, &call, r.a_packed), r.variant);
            }
            if let Ok(mut rec) = self.records.lock() {
                rec.push(r);
            }
        }
        Ok(())
    }

    /// The variant to use for `call` on `gpu`, measuring on first sight of its shape class.
    pub fn choose(&self, gpu: &Gpu, matmul: &Matmul, call: &MatmulCall<'_>) -> Result<Variant> {
        self.choose_packed(gpu, matmul, call, false)
    }

    /// [`Autotuner::choose`] for a product whose A may come already packed into a texture
    /// (`a_packed`): then the texture variants are timed without packing A, as they will run.
    pub fn choose_packed(
        &self,
        gpu: &Gpu,
        matmul: &Matmul,
        call: &MatmulCall<'_>,
        a_packed: bool,
    ) -> Result<Variant> {
        if let Some(v) = self.forced.lock().ok().and_then(|f| *f) {
            if matmul.supports(v, call) {
                return Ok(v);
            }
        }
        let k = key(gpu, matmul, call, a_packed);
        if let Some(v) = self.cache.lock().ok().and_then(|c| c.get(&k).copied()) {
            return Ok(v);
        }
        let skip: Vec<Variant> = self
            .hopeless
            .lock()
            .map(|h| h.iter().filter(|(a, _)| *a == gpu.report.name).map(|(_, v)| *v).collect())
            .unwrap_or_default();
        let Measured { winner: variant, timings, lost } = measure(gpu, matmul, call, a_packed, &skip)?;
        if let Ok(mut h) = self.hopeless.lock() {
            h.extend(lost.into_iter().map(|v| (gpu.report.name.clone(), v)));
        }
        if let Ok(mut c) = self.cache.lock() {
            c.insert(k, variant);
        }
        if let Ok(mut r) = self.records.lock() {
            r.push(TuneRecord {
                adapter: gpu.report.name.clone(),
                form: call.form.name().to_string(),
                m: call.m,
                n: call.n,
                k: call.k,
                variant,
                timings,
                a_packed,
            });
        }
        Ok(variant)
    }
}

/// Scratch operands of one shape, filled with small pseudo-random values.
struct Scratch {
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    c: wgpu::Buffer,
}

impl Scratch {
    fn new(gpu: &Gpu, form: MatmulForm, m: usize, n: usize, k: usize) -> Result<Self> {
        let _ = form;
        let fill = |len: usize, seed: u32| -> Vec<f32> {
            (0..len as u32)
                .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
                .collect()
        };
        let usage = wgpu::BufferUsages::empty();
        Ok(Scratch {
            a: gpu.upload("tune A", &fill(m * k, 1), usage)?,
            b: gpu.upload("tune B", &fill(k * n, 2), usage)?,
            c: gpu.storage_buffer("tune C", (m * n * 4) as u64, usage)?,
        })
    }

    fn call(&self, form: MatmulForm, m: usize, n: usize, k: usize) -> MatmulCall<'_> {
        MatmulCall::plain(form, m, n, k, &self.a, &self.b, &self.c)
    }
}

/// Seconds for `reps` launches of `d` in one submission.
fn time(gpu: &Gpu, d: &Dispatch, reps: usize) -> Result<f64> {
    let all: Vec<&Dispatch> = std::iter::repeat_n(d, reps).collect();
    let start = Instant::now();
    super::pipeline::submit(gpu, &all);
    gpu.wait()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Timing rounds per surviving variant. The rounds go round-robin over the variants, so a
/// slow spell of a shared machine (seconds long on the 2-core VMs we measure on) hits every
/// variant alike instead of deciding the race.
const ROUNDS: usize = 5;

/// Seconds a first launch may spend compiling before its time counts against the variant.
const COMPILE_ALLOWANCE: f64 = 0.05;

/// What [`measure`] found for one shape.
struct Measured {
    winner: Variant,
    /// Seconds per product of each variant launched.
    timings: Vec<(Variant, f64)>,
    /// Variants pruned as hopeless.
    lost: Vec<Variant>,
}

/// Times every supporting variant on scratch data of `call`'s shape; returns the fastest,
/// every (variant, seconds per product) measured, and the variants pruned as hopeless.
/// Variants in `skip` are not launched unless nothing else can run the call.
fn measure(
    gpu: &Gpu,
    matmul: &Matmul,
    call: &MatmulCall<'_>,
    a_packed: bool,
    skip: &[Variant],
) -> Result<Measured> {
    let (form, m, n, k) = (call.form, call.m, call.n, call.k);
    let scratch = Scratch::new(gpu, form, m, n, k)?;
    let probe = scratch.call(form, m, n, k);
    // A texture standing in for a pre-packed A (wgpu zero-fills it; the time does not depend
    // on the values).
    let packed = match (a_packed, probe.stored_inputs()) {
        (true, Some([a, _])) => matmul.operand_texture(gpu, a.rows, a.cols)?,
        _ => None,
    };
    let mut timings: Vec<(Variant, f64)> = Vec::new();
    // (variant, its dispatch, launches per timing, first timed launch, best seconds per product)
    let mut racing: Vec<(Variant, Dispatch, usize, f64, f64)> = Vec::new();
    let mut best = f64::INFINITY;
    // Variant::ALL lists usually-fast variants first, so the slow ones are pruned after one
    // launch instead of being timed in full (a naive 1000x64x784 product takes 0.1 s on lavapipe).
    let supported: Vec<Variant> = Variant::ALL
        .into_iter()
        .filter(|v| matmul.supports(*v, call) && matmul.supports(*v, &probe))
        .collect();
    let candidates: Vec<Variant> = supported.iter().copied().filter(|v| !skip.contains(v)).collect();
    let candidates = if candidates.is_empty() { supported } else { candidates };
    let mut lost = Vec::new();
    for v in candidates {
        let d = matmul.record_with(gpu, v, &probe, packed.as_ref())?;
        // The first launch also pays for pipeline compilation in some drivers (lavapipe
        // compiles at first dispatch, 10-30 ms): untimed, unless it alone shows the variant
        // is hopeless even after allowing for the compilation.
        let warm = time(gpu, &d, 1)?;
        if warm > 8.0 * best + COMPILE_ALLOWANCE {
            timings.push((v, warm));
            lost.push(v);
            continue;
        }
        let first = time(gpu, &d, 1)?;
        // Hopeless variants (4x slower than the best so far even with compilation removed)
        // are not timed again: on lavapipe a naive 1024^3 product takes seconds.
        if first > 4.0 * best {
            timings.push((v, first));
            lost.push(v);
            continue;
        }
        best = best.min(first);
        // Enough repetitions for ~2 ms of work, so timer and submission noise stay small.
        let reps = ((2e-3 / first.max(1e-6)) as usize).clamp(1, 32);
        racing.push((v, d, reps, first, f64::INFINITY));
    }
    // Variants that fell 4x behind a later, faster one are out of the race too.
    let (slow, mut racing): (Vec<_>, Vec<_>) = racing.into_iter().partition(|r| r.3 > 4.0 * best);
    timings.extend(slow.iter().map(|r| (r.0, r.3)));
    lost.extend(slow.iter().map(|r| r.0));
    for _ in 0..ROUNDS {
        for (_, d, reps, _, secs) in &mut racing {
            *secs = secs.min(time(gpu, d, *reps)? / *reps as f64);
        }
    }
    timings.extend(racing.iter().map(|r| (r.0, r.4)));
    let winner = racing
        .iter()
        .min_by(|x, y| x.4.total_cmp(&y.4))
        .map(|r| r.0)
        .or_else(|| timings.iter().min_by(|x, y| x.1.total_cmp(&y.1)).map(|t| t.0))
        .ok_or_else(|| {
            Error::Config(format!("no matmul variant supports {} m={m} n={n} k={k}", form.name()))
        })?;
    Ok(Measured { winner, timings, lost })
}
