//! The two halves of a data-parallel step on one replica: gradients copied out to a staging
//! buffer, then the reduced gradients written back and the optimizer applied.

use super::Replica;
use crate::error::{Error, Result};
use crate::gpu::kernels::StepUniform;

impl Replica {
    /// Data parallel, first half of a step: launch `s` of gradient plan `plan`, then a copy
    /// of the gradients into `staging` (MAP_READ). Submitted, not waited for.
    pub(crate) fn submit_grads(
        &self,
        plan: usize,
        s: usize,
        staging: &wgpu::Buffer,
    ) -> wgpu::SubmissionIndex {
        let p = &self.plans[plan];
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&p.starts, (s * 16) as u64, &self.gather_step, 0, 16);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in &p.dispatches {
                d.encode(&mut pass);
            }
        }
        enc.copy_buffer_to_buffer(&self.grads, 0, staging, 0, (self.layout.len * 4) as u64);
        self.gpu.queue.submit([enc.finish()])
    }

    /// Data parallel, second half of a step: the reduced gradients replace this replica's,
    /// and the optimizer applies update `t` (1-based). Submitted, not waited for.
    pub(crate) fn submit_update(&self, reduced: &[f32], t: u64) -> Result<()> {
        if reduced.len() != self.layout.len {
            return Err(Error::Shape(format!(
                "{} reduced gradients for {} parameters",
                reduced.len(),
                self.layout.len
            )));
        }
        let update = self.update.as_ref().ok_or_else(|| Error::Config("optimizer not recorded".into()))?;
        self.gpu.write(&self.grads, 0, bytemuck::cast_slice(reduced));
        let scalars = StepUniform::from(self.lr_schedule.step_scalars(&self.optimizer, t));
        self.gpu.write(&self.optim_step, 0, bytemuck::bytes_of(&scalars));
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            update.encode(&mut pass);
        }
        self.gpu.queue.submit([enc.finish()]);
        Ok(())
    }
}
