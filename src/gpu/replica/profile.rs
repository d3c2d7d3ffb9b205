//! Where a training step's time goes: every kernel launch of the training plan timed on its
//! own, with the device's timestamp queries where it has them (GPU time of each launch inside
//! a real step) and with the wall clock otherwise (each launch repeated back to back).

use super::{PassKind, Replica, SourceId};
use crate::error::{Error, Result};
use crate::gpu::kernels::{Dispatch, GatherStep};

/// How a [`StepProfile`] was timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelTimer {
    /// Timestamp queries around each launch: the device's own clock.
    Timestamps,
    /// Host wall clock around back-to-back launches of one kernel (adapters without
    /// timestamp queries).
    WallClock,
}

impl KernelTimer {
    /// `timestamps` or `wall_clock`, for reports.
    pub fn name(self) -> &'static str {
        match self {
            KernelTimer::Timestamps => "timestamps",
            KernelTimer::WallClock => "wall_clock",
        }
    }
}

/// Seconds per launch of every kernel of one training step, in launch order.
#[derive(Debug, Clone)]
pub struct StepProfile {
    /// How the times were taken.
    pub timer: KernelTimer,
    /// `(kernel name, median seconds per launch)`.
    pub kernels: Vec<(&'static str, f64)>,
}

impl StepProfile {
    /// Sum of the kernels' times: a step's device time without the gaps between launches.
    pub fn total(&self) -> f64 {
        self.kernels.iter().map(|k| k.1).sum()
    }
}

impl Replica {
    /// Times every launch of the training plan with `rows` rows, `reps` times (median kept).
    /// Changes the weights (the optimizer runs too): profile a throwaway replica.
    pub fn profile_train_step(&mut self, source: SourceId, rows: usize, reps: usize) -> Result<StepProfile> {
        let p = self.plan(source, rows, PassKind::Train, rows, &[GatherStep::new(0, 1, 0)])?;
        self.write_schedule(0, 1)?;
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&self.plans[p].starts, 0, &self.gather_step, 0, 16);
        enc.copy_buffer_to_buffer(&self.optim_schedule, 0, &self.optim_step, 0, 32);
        self.gpu.queue.submit([enc.finish()]);
        let launches: Vec<Dispatch> = self.plans[p].dispatches.iter().flat_map(Dispatch::flatten).collect();
        let reps = reps.max(1);
        if self.gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) && !self.lavapipe() {
            self.profile_with_timestamps(&launches, reps)
        } else {
            self.profile_with_wall_clock(&launches, reps)
        }
    }

    /// Mesa's lavapipe writes a timestamp when its queue thread reaches it, which can be
    /// before its thread pool has finished the dispatch before: measured per kernel, the
    /// time landed on the next launch (a 0.1 ms pack showed 0.48 ms, the product after it
    /// 0.1 ms instead of 0.6). Its kernels are timed with the wall clock instead. (Mesa's
    /// GL driver on the same cores gives timestamps that agree with the wall clock.)
    fn lavapipe(&self) -> bool {
        let r = &self.gpu.report;
        r.backend == "vulkan" && r.device_type == "cpu" && r.driver.contains("llvmpipe")
    }

    /// Runs the step `reps` times, each launch in its own pass between two timestamps.
    fn profile_with_timestamps(&self, launches: &[Dispatch], reps: usize) -> Result<StepProfile> {
        let g = &self.gpu;
        let count = u32::try_from(2 * launches.len())
            .map_err(|_| Error::Config("too many launches to time".into()))?;
        let bytes = u64::from(count) * 8;
        let (queries, resolved, staging) = g.scoped("creating timestamp queries", || {
            let queries = g.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("step profile"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let buffer = |usage| {
                g.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("step profile"),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let resolved = buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
            let staging = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
            (queries, resolved, staging)
        })?;
        let period = f64::from(g.queue.get_timestamp_period()) * 1e-9;
        let mut samples = vec![Vec::with_capacity(reps); launches.len()];
        // One extra, untimed-in-effect first run: pipelines compile at first launch on some drivers.
        for rep in 0..=reps {
            let mut enc = g.device.create_command_encoder(&Default::default());
            for (i, d) in launches.iter().enumerate() {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(d.label()),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &queries,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                d.encode(&mut pass);
            }
            enc.resolve_query_set(&queries, 0..count, &resolved, 0);
            enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
            g.queue.submit([enc.finish()]);
            let ticks: Vec<u64> = g.map_and_read(&staging, count as usize)?;
            if rep > 0 {
                for (i, s) in samples.iter_mut().enumerate() {
                    s.push(ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period);
                }
            }
        }
        Ok(StepProfile { timer: KernelTimer::Timestamps, kernels: medians(launches, samples) })
    }

    /// Each launch alone, `reps` times back to back in one submission; three such
    /// submissions per launch, seconds per launch of each kept.
    fn profile_with_wall_clock(&self, launches: &[Dispatch], reps: usize) -> Result<StepProfile> {
        let g = &self.gpu;
        let mut samples = vec![Vec::with_capacity(3); launches.len()];
        for (d, s) in launches.iter().zip(&mut samples) {
            crate::gpu::kernels::submit(g, &[d]);
            g.wait()?;
            let all: Vec<&Dispatch> = std::iter::repeat_n(d, reps).collect();
            for _ in 0..3 {
                let start = std::time::Instant::now();
                crate::gpu::kernels::submit(g, &all);
                g.wait()?;
                s.push(start.elapsed().as_secs_f64() / reps as f64);
            }
        }
        Ok(StepProfile { timer: KernelTimer::WallClock, kernels: medians(launches, samples) })
    }
}

fn medians(launches: &[Dispatch], samples: Vec<Vec<f64>>) -> Vec<(&'static str, f64)> {
    launches
        .iter()
        .zip(samples)
        .map(|(d, mut s)| {
            s.sort_by(f64::total_cmp);
            (d.label(), s.get(s.len() / 2).copied().unwrap_or(0.0))
        })
        .collect()
}
