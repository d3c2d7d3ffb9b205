//! The trainer's learning-rate control between epochs: the `learning_rate` column of the
//! history and ReduceLROnPlateau's reductions, applied to the executor (every replica and
//! process together) as a new base rate. Schedules need nothing here: the executors evaluate
//! them per step.

use crate::callbacks::metrics::EpochMetrics;
use crate::error::Result;
use crate::train::events::TrainEvent;
use crate::train::trainer::Trainer;

/// The history's name for the learning rate, as Keras logs it.
pub(crate) const LEARNING_RATE: &str = "learning_rate";

impl Trainer {
    /// After epoch `epoch`'s metrics are known, before they are recorded: with a schedule or
    /// ReduceLROnPlateau, adds `learning_rate` to `metrics` (the rate the next step would use
    /// before any reduction, which is what Keras logs: `optimizer.learning_rate` at the end of
    /// the epoch); then lets ReduceLROnPlateau decide, and applies and reports a reduction.
    pub(super) fn control_learning_rate(
        &mut self,
        epoch: usize,
        metrics: &mut EpochMetrics,
        on_event: &mut impl FnMut(&TrainEvent),
    ) -> Result<()> {
        let schedule = self.options.lr_schedule;
        if schedule.is_constant() && self.reduce_lr.is_none() {
            return Ok(());
        }
        metrics.set(LEARNING_RATE, schedule.lr(self.lr, self.step + 1));
        let Some(reduce) = &mut self.reduce_lr else { return Ok(()) };
        let Some(new_lr) = reduce.on_epoch_end(metrics, self.lr) else { return Ok(()) };
        self.executor.set_learning_rate(new_lr, schedule)?;
        let old_lr = std::mem::replace(&mut self.lr, new_lr);
        let monitor = reduce.monitor();
        on_event(&TrainEvent::LearningRateReduced {
            epoch,
            monitor: monitor.name().to_string(),
            value: monitor.value(metrics).unwrap_or(f32::NAN),
            old_lr,
            new_lr,
        });
        Ok(())
    }

    /// The base learning rate now: the optimizer's, or what ReduceLROnPlateau reduced it to.
    /// A schedule shapes it per step ([`crate::LrSchedule::lr`]).
    pub fn learning_rate(&self) -> f32 {
        self.lr
    }

    /// The learning-rate reduction with its progress, if the run uses one.
    pub fn reduce_lr_on_plateau(&self) -> Option<&crate::callbacks::reduce_lr::ReduceLrOnPlateau> {
        self.reduce_lr.as_ref()
    }
}
