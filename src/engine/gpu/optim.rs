//! Launchers of `shaders/optim.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::kernels::Kernel;
use super::recorder::Binding;
use super::{GpuBuffer, GpuEngine};
use crate::engine::Update;
use crate::engine::{Clip, Optimizer};
use crate::error::Result;

/// Mirrors `OptimParams` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct OptimParams {
    len: u32,
    learning_rate: f32,
    c1: f32,
    c2: f32,
    max_norm: f32,
    /// 1 where the gradient is clipped to `max_norm`.
    clip: u32,
    /// Elements of each model's block (clipped by its own norm).
    block: u32,
    pad: u32,
}

pub(super) fn step(
    e: &mut GpuEngine,
    u: Update,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    state: &[GpuBuffer],
    (len, models): (usize, usize),
    clip: Option<Clip<'_, GpuBuffer>>,
) -> Result<()> {
    let (block, len) = (len, len * models);
    // Adam's bias corrections, computed as the CPU engine computes them.
    let c1 = 1.0 - Optimizer::ADAM_BETA1.powi(u.t as i32);
    let c2 = 1.0 - Optimizer::ADAM_BETA2.powi(u.t as i32);
    let p = OptimParams {
        len: len as u32,
        learning_rate: u.learning_rate,
        c1,
        c2,
        max_norm: clip.map_or(0.0, |c| c.max_norm),
        clip: u32::from(clip.is_some()),
        block: block.max(1) as u32,
        pad: 0,
    };
    let kernel = match u.optimizer {
        Optimizer::Sgd => Kernel::SgdStep,
        Optimizer::Momentum => Kernel::MomentumStep,
        Optimizer::Adagrad => Kernel::AdagradStep,
        Optimizer::RmsProp => Kernel::RmspropStep,
        Optimizer::Adam => Kernel::AdamStep,
    };
    let mut bindings: Vec<Binding<'_>> = vec![param.into(), grad.into()];
    bindings.extend(state.iter().map(Binding::from));
    // Without clipping the kernel never reads the norm binding: the gradient stands in.
    bindings.push(clip.map_or(grad, |c| c.sum_squares).into());
    let groups = e.groups(len);
    e.rec.dispatch(kernel, &p, &bindings, groups)
}
