//! Each layer kind's forward and backward on the CPU: the twins of the GPU recordings in
//! `gpu/replica/layers/`, op for op, so both executors compute the same numbers. The passes
//! in `cpu/pass.rs` drive them from the network's layer list.

pub(super) mod dense;
