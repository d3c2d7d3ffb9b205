//! Picks a matmul variant per device and shape class. In order: a decision already taken in
//! this process; one saved by an earlier process on the
//! same adapter and driver (`tuning_cache.rs`); the shipped choice for a known software driver
//! (`shipped.rs`); else every variant that supports the shape is timed, once, on scratch
//! buffers (`measure.rs`), and the winner is saved for the next process.
//!
//! Why measure instead of a rule: on lavapipe (a CPU-backed Vulkan driver) shared-memory
//! tiling is ~20x slower than vec4 register blocks, while real GPUs prefer tiling; and the
//! best block shape moves with m, n, k. Why not always measure: on a cold shader cache each
//! variant launched costs a compilation (0.1-2.5 s on lavapipe, up to 36 s on llvmpipe's GL),
//! which made a newcomer's first epoch take 24-57 s.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::matmul::{Matmul, MatmulCall, Variant};
use super::measure::{measure, Measured};
use super::shipped;
use super::tuning_cache::{Decision, Store};
use crate::error::Result;
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
    /// Whether A arrives already packed into a texture (the gathered batch, a layer's input
    /// or dZ packed once for several products), so the texture variants were timed without
    /// packing it.
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

/// log2 of `v` rounded up to a power of two, plus one: a dimension's bucket.
fn bucket(v: usize) -> u32 {
    usize::BITS - v.max(1).next_power_of_two().leading_zeros()
}

impl Key {
    fn new(matmul: &Matmul, call: &MatmulCall<'_>, a_packed: bool) -> Self {
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

    /// m n k with each rounded up to a power of two: the largest product of the class, so
    /// that a shipped choice depending on size is the same for every call of the class.
    fn madds_class(&self) -> usize {
        self.buckets.iter().fold(1usize, |acc, &b| acc.saturating_mul(1usize << b.saturating_sub(1).min(40)))
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

/// A test's stand-in for the tuner: the variant for a call, given whether A arrives packed.
#[cfg(test)]
pub(crate) type Policy = fn(&Matmul, &MatmulCall<'_>, bool) -> Variant;

struct State {
    /// Decisions of this process, whatever their source.
    chosen: HashMap<Key, Variant>,
    /// Decisions read from the tuning cache when the tuner was made.
    saved: HashMap<Key, Variant>,
    shipped_defaults: bool,
    records: Vec<TuneRecord>,
    /// Variants found hopeless (4x behind the best, or 8x on a first launch) on some shape:
    /// not launched again on later shapes, where a single launch can cost a quarter of a
    /// second (shared-memory tiles on lavapipe at 1000 rows).
    hopeless: HashSet<Variant>,
    /// Tests: every choice from this, none from the cache, the shipped table or timing.
    #[cfg(test)]
    policy: Option<Policy>,
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
            shipped_defaults: true,
            records: Vec::new(),
            hopeless: HashSet::new(),
            #[cfg(test)]
            policy: None,
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

    /// Tests: every later choice made by `policy`.
    #[cfg(test)]
    pub(crate) fn set_policy(&self, policy: Policy) {
        self.lock().policy = Some(policy);
    }

    /// Whether known software drivers use the shipped choices (the default) or are timed
    /// like any other adapter (to check or rebuild the table in `shipped.rs`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn use_shipped_defaults(&self, on: bool) {
        self.lock().shipped_defaults = on;
    }

    /// Every decision taken so far.
    pub fn records(&self) -> Vec<TuneRecord> {
        self.lock().records.clone()
    }

    /// The file this device's decisions are saved to (`None` when the cache is disabled).
    #[cfg_attr(not(test), allow(dead_code))]
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
        #[cfg(test)]
        if let Some(policy) = self.lock().policy {
            return Ok(policy(matmul, call, a_packed));
        }
        let key = Key::new(matmul, call, a_packed);
        let skip: Vec<Variant> = {
            let mut st = self.lock();
            if let Some(v) = st.chosen.get(&key) {
                return Ok(*v);
            }
            let known = match st.saved.get(&key).filter(|v| matmul.supports(**v, call)) {
                Some(v) => Some((*v, TuneSource::Cached)),
                None if st.shipped_defaults => {
                    shipped::choice(&gpu.report, call.form, key.madds_class(), |v| matmul.supports(v, call))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_class_has_the_multiply_adds_of_its_largest_call() {
        let class = |m, n, k| {
            Key {
                form: MatmulForm::AB,
                buckets: [bucket(m), bucket(n), bucket(k)],
                supported: 0,
                a_packed: false,
            }
            .madds_class()
        };
        assert_eq!(class(32, 64, 64), 1 << 17);
        assert_eq!(class(100, 100, 100), 1 << 21, "rounded up: the class of 128^3");
        assert_eq!(class(128, 128, 128), 1 << 21);
        assert_eq!(class(129, 10, 784), 256 * 16 * 1024);
        assert_eq!(class(1, 1, 1), 1);
        assert_eq!(class(1 << 20, 1 << 20, 1 << 30), usize::MAX, "saturates, never overflows");
    }
}
