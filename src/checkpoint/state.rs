//! Training checkpoints: the flat buffers of a [`TrainingState`] as tensors, the rest of it as
//! JSON in the metadata, in `checkpoint.safetensors` inside a folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::bytes::{le_bytes, read_bounded, serialize, to_json};
use super::validate::{check_buffer, checked_layout, decode_into, nonzero_padding, Parsed};
use super::{TrainingState, BYTES_NAME, CHECKPOINT_FILE, CHECKPOINT_FORMAT, VERSION};
use crate::atomic_file::write_atomic;
use crate::callbacks::early_stopping::EarlyStopping;
use crate::callbacks::reduce_lr::ReduceLrOnPlateau;
use crate::error::{Error, Result};
use crate::spec::{LrSchedule, Optimizer};
use crate::spec::{Network, ParamLayout};

/// The checkpoint's flat buffers, in file order.
const STATE_TENSORS: [&str; 4] = ["params", "m", "v", "best_params"];

/// The metadata key `lr_control`: the learning rate's part of a [`TrainingState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LrControl {
    learning_rate: f32,
    schedule: LrSchedule,
    reduce_lr_on_plateau: Option<ReduceLrOnPlateau>,
}

impl LrControl {
    fn of(state: &TrainingState) -> Self {
        LrControl {
            learning_rate: state.learning_rate,
            schedule: state.lr_schedule,
            reduce_lr_on_plateau: state.reduce_lr_on_plateau.clone(),
        }
    }

    /// The checks [`save_checkpoint`] and the loader share.
    fn validate(&self) -> Result<()> {
        LrSchedule::check_rate(self.learning_rate)?;
        self.schedule.validate()?;
        match &self.reduce_lr_on_plateau {
            Some(reduce) => reduce.validate(),
            None => Ok(()),
        }
    }

    /// The key of `file`; a checkpoint written before it existed trained at the optimizer's
    /// rate with no schedule and no reduction.
    fn read(file: &Parsed<'_>, optimizer: &Optimizer) -> Result<Self> {
        if file.text(LR_CONTROL).is_err() {
            let schedule = LrSchedule::Constant;
            return Ok(LrControl { learning_rate: optimizer.lr(), schedule, reduce_lr_on_plateau: None });
        }
        let lr: LrControl = file.json(LR_CONTROL)?;
        lr.validate().map_err(|e| Error::file(file.src, format!("metadata `{LR_CONTROL}`: {e}")))?;
        Ok(lr)
    }
}

const LR_CONTROL: &str = "lr_control";

/// Writes `state` to `dir/checkpoint.safetensors` atomically, creating `dir` if needed, and
/// returns the file's path. The state is checked as [`load_checkpoint`] would check it.
pub fn save_checkpoint(dir: &Path, state: &TrainingState) -> Result<PathBuf> {
    state.spec.validate()?;
    state.optimizer.validate()?;
    if let Some(es) = &state.early_stopping {
        es.validate()?;
    }
    let lr_control = LrControl::of(state);
    lr_control.validate()?;
    let layout = state.spec.layout();
    for (name, buffer) in STATE_TENSORS.iter().zip(state_buffers(state)) {
        check_buffer(name, buffer, &layout, *name == "best_params")?;
    }
    let tensors = STATE_TENSORS
        .iter()
        .zip(state_buffers(state))
        .map(|(name, buffer)| (name.to_string(), vec![buffer.len()], le_bytes(buffer)))
        .collect();
    let metadata = HashMap::from([
        ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("spec".to_string(), to_json(&state.spec)?),
        ("optimizer".to_string(), to_json(&state.optimizer)?),
        ("step".to_string(), to_json(&state.step)?),
        ("epoch".to_string(), to_json(&state.epoch)?),
        ("rng".to_string(), to_json(&state.rng)?),
        ("early_stopping".to_string(), to_json(&state.early_stopping)?),
        ("history".to_string(), to_json(&state.history)?),
        (LR_CONTROL.to_string(), to_json(&lr_control)?),
    ]);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(CHECKPOINT_FILE);
    write_atomic(&path, &serialize(&path, tensors, metadata)?)?;
    Ok(path)
}

/// Reads `dir/checkpoint.safetensors`: `Ok(None)` when there is no such file, an error when it
/// exists but is unreadable, truncated or inconsistent (never silently ignored).
pub fn load_checkpoint(dir: &Path) -> Result<Option<TrainingState>> {
    let path = dir.join(CHECKPOINT_FILE);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
        Ok(_) => {}
    }
    checkpoint_from_bytes(&path, &read_bounded(&path)?).map(Some)
}

/// [`load_checkpoint`]'s checks on a checkpoint file already in memory.
pub fn load_checkpoint_bytes(bytes: &[u8]) -> Result<TrainingState> {
    checkpoint_from_bytes(Path::new(BYTES_NAME), bytes)
}

fn checkpoint_from_bytes(src: &Path, bytes: &[u8]) -> Result<TrainingState> {
    let file = Parsed::new(src, bytes, CHECKPOINT_FORMAT)?;
    let spec: Network = file.json("spec")?;
    let layout = checked_layout(src, &spec)?;
    let optimizer: Optimizer = file.json("optimizer")?;
    optimizer.validate().map_err(|e| Error::file(src, format!("metadata `optimizer`: {e}")))?;
    let early_stopping: Option<EarlyStopping> = file.json("early_stopping")?;
    if let Some(es) = &early_stopping {
        es.validate().map_err(|e| Error::file(src, format!("metadata `early_stopping`: {e}")))?;
    }
    let lr_control = LrControl::read(&file, &optimizer)?;
    file.expect_names(STATE_TENSORS)?;
    // Check every tensor's header before allocating the buffers they fill.
    let views = [
        state_tensor(&file, "params", &spec, &layout)?,
        state_tensor(&file, "m", &spec, &layout)?,
        state_tensor(&file, "v", &spec, &layout)?,
        state_tensor(&file, "best_params", &spec, &layout)?,
    ];
    let decode = |name: &str, data: &[u8]| -> Result<Vec<f32>> {
        let mut buffer = vec![0.0f32; data.len() / 4];
        decode_into(src, name, data, &mut buffer)?;
        match nonzero_padding(&buffer, &layout) {
            Some(i) => Err(Error::file(src, format!("`{name}`[{i}] is padding but not zero"))),
            None => Ok(buffer),
        }
    };
    let [params, m, v, best_params] = views;
    Ok(TrainingState {
        spec,
        optimizer,
        params: decode("params", params)?,
        m: decode("m", m)?,
        v: decode("v", v)?,
        step: file.json("step")?,
        epoch: file.json("epoch")?,
        rng: file.json("rng")?,
        early_stopping,
        best_params: decode("best_params", best_params)?,
        history: file.json("history")?,
        learning_rate: lr_control.learning_rate,
        lr_schedule: lr_control.schedule,
        reduce_lr_on_plateau: lr_control.reduce_lr_on_plateau,
    })
}

/// A checkpoint buffer's bytes: 1-D F32 of `layout.len` floats (or 0 for `best_params`).
fn state_tensor<'a>(file: &Parsed<'a>, name: &str, spec: &Network, layout: &ParamLayout) -> Result<&'a [u8]> {
    let len = match file.info(name)?.shape[..] {
        [len] => len,
        ref shape => {
            let reason = format!("tensor `{name}` has shape {shape:?}, expected 1-D");
            return Err(Error::file(file.src, reason));
        }
    };
    if len != layout.len && !(name == "best_params" && len == 0) {
        let also = if name == "best_params" { " or 0" } else { "" };
        let reason = format!(
            "tensor `{name}` has {len} floats, the spec {:?} needs {}{also}",
            spec.widths(),
            layout.len
        );
        return Err(Error::file(file.src, reason));
    }
    file.f32_tensor(name, &[len])
}

fn state_buffers(state: &TrainingState) -> [&[f32]; 4] {
    [&state.params, &state.m, &state.v, &state.best_params]
}
