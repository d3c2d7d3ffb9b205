//! Picks a matmul variant per device and shape class. In order: a variant forced by the
//! caller; a decision already taken in this process; one saved by an earlier process on the
//! same adapter and driver (`tuning_cache.rs`); the shipped choice for a known software driver
//! (`shipped.rs`); else every variant that supports the shape is timed, once, on scratch
//! buffers, and the winner is saved for the next process.
//!
//! Why measure instead of a rule: on lavapipe (a CPU-backed Vulkan driver) shared-memory
//! tiling is ~20x slower than vec4 register blocks, while real GPUs prefer tiling; and the
//! best block shape moves with m, n, k. Why not always measure: on a cold shader cache each
//! variant launched costs a compilation (0.1-2.5 s on lavapipe, up to 36 s on llvmpipe's GL),
//! which made a newcomer's first epoch take 24-57 s.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::matmul::{Matmul, MatmulCall, Variant};
use super::pipeline::Dispatch;
use super::shipped;
use super::tuning_cache::{Decision, Store};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::MatmulForm;

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TuneSource {
    /// Timed on this device by this process.
    #[default]
    Measured,
    /// Read from the tuning cache an earlier process wrote for this adapter and driver.
    Cached,
    /// The shipped choice for a known software driver: nothing was timed.
    Shipped,
}

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
    /// Seconds per product of each variant measured (empty unless `source` is `Measured`).
    pub timings: Vec<(Variant, f64)>,
    /// Whether A arrives already packed into a texture (the gathered batch), so the texture
    /// variants were timed without packing it.
    #[serde(default)]
    pub a_packed: bool,
    /// Where the decision came from.
    #[serde(default)]
    pub source: TuneSource,
}

/// A shape class: the form, log2 buckets of m, n and k, which variants can run the exact
/// call (alignment decides that, so it belongs in the key: bit i for `Variant::ALL[i]`), and
/// whether A arrives packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    form: MatmulForm,
    buckets: [u32; 3],
    supported: u32,
    a_packed: bool,
}

impl Key {
    fn new(matmul: &Matmul, call: &MatmulCall<'_>, a_packed: bool) -> Self {
        let bucket = |v: usize| usize::BITS - v.max(1).next_power_of_two().leading_zeros();
        let supported = Variant::ALL
            .iter()
            .enumerate()
            .filter(|(_, v)| matmul.supports(**v, call))
            .fold(0u32, |acc, (i, _)| acc | (1 << i));
        Key {
            form: call.form,
            buckets: [bucket(call.m), bucket(call.n), bucket(call.k)],
            supported,
            a_packed,
        }
    }

    /// The decision to save for `variant`.
    fn decision(&self, variant: Variant) -> Decision {
        let supported = Variant::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| self.supported & (1 << i) != 0)
            .map(|(_, v)| v.name().to_string())
            .collect();
        Decision {
            form: self.form.name().to_string(),
            buckets: self.buckets,
            supported,
            a_packed: self.a_packed,
            variant: variant.name().to_string(),
        }
    }

    /// A saved decision back as a key and variant; `None` when it names a form or variant
    /// this version does not have, or a variant outside its own supported set.
    fn from_decision(d: &Decision) -> Option<(Key, Variant)> {
        let form = MatmulForm::ALL.into_iter().find(|f| f.name() == d.form)?;
        let mut supported = 0u32;
        for name in &d.supported {
            let i = Variant::ALL.iter().position(|v| v.name() == name)?;
            supported |= 1 << i;
        }
        let variant = Variant::from_name(&d.variant)?;
        let i = Variant::ALL.iter().position(|v| *v == variant)?;
        (supported & (1 << i) != 0)
            .then_some((Key { form, buckets: d.buckets, supported, a_packed: d.a_packed }, variant))
    }
}

struct State {
    /// Decisions of this process, whatever their source.
    chosen: HashMap<Key, Variant>,
    /// Decisions read from the tuning cache, not used yet.
    saved: HashMap<Key, Variant>,
    forced: Option<Variant>,
    shipped_defaults: bool,
    records: Vec<TuneRecord>,
    /// Variants found hopeless (4x behind the best, or 8x on a first launch) on some shape:
    /// not launched again on later shapes, where a single launch can cost a quarter of a
    /// second (shared-memory tiles on lavapipe at 1000 rows).
    hopeless: HashSet<Variant>,
}

/// The tuning state of one device. Shared by every recording on that device.
pub struct Autotuner {
    state: Mutex<State>,
    /// The tuning cache file of this device; `None` when disabled.
    store: Option<Store>,
}

impl Default for Autotuner {
    /// A tuner that keeps nothing between processes.
    fn default() -> Self {
        Autotuner::with_store(None)
    }
}

impl Autotuner {
    fn with_store(store: Option<Store>) -> Self {
        let state = State {
            chosen: HashMap::new(),
            saved: HashMap::new(),
            forced: None,
            shipped_defaults: true,
            records: Vec::new(),
            hopeless: HashSet::new(),
        };
        Autotuner { state: Mutex::new(state), store }
    }

    /// The tuner of `gpu`, with the decisions its tuning cache holds (see
    /// [`Gpu::with_tuning_cache`]). A cache that cannot be read is logged and ignored.
    pub fn for_device(gpu: &Gpu) -> Self {
        let store = Store::new(gpu.tuning_cache(), &gpu.report);
        let tuner = Autotuner::with_store(store);
        if let Some(store) = &tuner.store {
            match store.load() {
                Ok(decisions) => {
                    let saved = decisions.iter().filter_map(Key::from_decision).collect();
                    tuner.lock().saved = saved;
                }
                Err(e) => log::warn!("ignoring the tuning cache: {e}"),
            }
        }
        tuner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic elsewhere while the
        // lock was held leaves nothing half-updated.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Always use `variant` where it supports the shape (None: choose again).
    pub fn force(&self, variant: Option<Variant>) {
        self.lock().forced = variant;
    }

    /// Whether known software drivers use the shipped choices (the default) or are timed
    /// like any other adapter (to check or rebuild the table in `shipped.rs`).
    pub fn use_shipped_defaults(&self, on: bool) {
        self.lock().shipped_defaults = on;
    }

    /// Every decision taken so far.
    pub fn records(&self) -> Vec<TuneRecord> {
        self.lock().records.clone()
    }

    /// The file this device's decisions are saved to (`None` when the cache is disabled).
    pub fn cache_file(&self) -> Option<&std::path::Path> {
        self.store.as_ref().map(Store::path)
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
        let key = Key::new(matmul, call, a_packed);
        let skip: Vec<Variant> = {
            let mut st = self.lock();
            if let Some(v) = st.forced.filter(|v| matmul.supports(*v, call)) {
                return Ok(v);
            }
            if let Some(v) = st.chosen.get(&key) {
                return Ok(*v);
            }
            let known = match st.saved.get(&key).filter(|v| matmul.supports(**v, call)) {
                Some(v) => Some((*v, TuneSource::Cached)),
                None if st.shipped_defaults => {
                    shipped::choice(&gpu.report, call.form, |v| matmul.supports(v, call))
                        .map(|v| (v, TuneSource::Shipped))
                }
                None => None,
            };
            if let Some((variant, source)) = known {
                st.chosen.insert(key, variant);
                st.records.push(record(gpu, call, variant, Vec::new(), a_packed, source));
                return Ok(variant);
            }
            st.hopeless.iter().copied().collect()
        };
        // Measured without holding the lock: timing takes up to seconds on a software driver.
        let Measured { winner, timings, lost } = measure(gpu, matmul, call, a_packed, &skip)?;
        {
            let mut st = self.lock();
            st.hopeless.extend(lost);
            st.chosen.insert(key, winner);
            st.records.push(record(gpu, call, winner, timings, a_packed, TuneSource::Measured));
        }
        if let Some(store) = &self.store {
            // A cache that cannot be written costs the next process a measurement, nothing more.
            if let Err(e) = store.save(&[key.decision(winner)]) {
                log::warn!("could not save a tuning decision: {e}");
            }
        }
        Ok(winner)
    }
}

fn record(
    gpu: &Gpu,
    call: &MatmulCall<'_>,
    variant: Variant,
    timings: Vec<(Variant, f64)>,
    a_packed: bool,
    source: TuneSource,
) -> TuneRecord {
    TuneRecord {
        adapter: gpu.report.name.clone(),
        form: call.form.name().to_string(),
        m: call.m,
        n: call.n,
        k: call.k,
        variant,
        timings,
        a_packed,
        source,
    }
}

/// Scratch operands of one shape, filled with small pseudo-random values.
struct Scratch {
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    c: wgpu::Buffer,
}

impl Scratch {
    fn new(gpu: &Gpu, m: usize, n: usize, k: usize) -> Result<Self> {
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
    let scratch = Scratch::new(gpu, m, n, k)?;
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
    // Drivers that compile when a pipeline is created do it for all candidates at once.
    matmul.build(gpu, &candidates)?;
    let mut lost = Vec::new();
    for v in candidates {
        let d = matmul.record_with(gpu, v, &probe, packed.as_ref())?;
        // The first launch also pays for pipeline compilation in some drivers (lavapipe
        // compiles at first dispatch: 10-30 ms from Mesa's shader cache, up to 2.5 s
        // without it, which can prune a good variant; see shipped.rs): untimed, unless it alone shows the variant
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
