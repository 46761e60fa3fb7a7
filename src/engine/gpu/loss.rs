//! Launchers of `shaders/loss.wgsl`: each loss is a first pass writing per-workgroup partial
//! sums, then `finish_sum` adding them into a slot.

use bytemuck::{Pod, Zeroable};

use super::kernels::Kernel;
use super::recorder::Binding;
use super::{GpuBuffer, GpuEngine, PARTIALS};
use crate::engine::{Blocks, Likelihood, Models};
use crate::error::Result;

/// Mirrors `LossParams` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct LossParams {
    len: u32,
    latent: u32,
    slot: u32,
    likelihood: u32,
    scale: f32,
    beta: f32,
    count: u32,
    /// Heads of `softmax_cross_entropy`; the numeric columns of `reconstruction` and
    /// `gaussian_learned`.
    heads: u32,
    /// Between the slots of a batch's models.
    slot_stride: u32,
    /// The first model's entry in a batch's table.
    at: u32,
    /// Elements between the models' copies of a batched input (`l2`).
    model_stride: u32,
    pad: u32,
}

/// The parameters every loss shares: `len` elements a model in rows of `cols`, the models'
/// table entries from `m.at`, each model's sum `stride` slots after the last.
fn loss_params((len, cols): (usize, usize), m: Models<'_, GpuBuffer>, stride: usize) -> LossParams {
    LossParams {
        len: len as u32,
        latent: cols as u32,
        slot_stride: stride as u32,
        at: m.at as u32,
        ..LossParams::default()
    }
}

/// The first pass over `models` blocks of `len` elements each, a workgroup layer per block, each
/// as it would run alone; then `out[slot + m * slot_stride] += scale * sum` of block `m`.
fn reduce_batch(
    e: &mut GpuEngine,
    kernel: Kernel,
    p: LossParams,
    inputs: &[Binding<'_>],
    out: &GpuBuffer,
    (slot, models): (usize, usize),
    scale: f32,
) -> Result<()> {
    let [groups, _, _] = e.groups(p.len as usize);
    let groups = groups.min(PARTIALS);
    if groups == 0 || models == 0 {
        return Ok(());
    }
    let needed = u64::from(PARTIALS) * models as u64 * 4;
    if e.partials.bytes() < needed {
        e.partials = e.gpu.buffer(needed, "partial sums")?;
    }
    let partials = Binding::from(&e.partials);
    let mut bindings = inputs.to_vec();
    bindings.push(partials);
    e.rec
        .dispatch(kernel, &p, &bindings, [groups, 1, models as u32])?;
    let finish = LossParams {
        slot: slot as u32,
        scale,
        count: groups,
        slot_stride: p.slot_stride.max(1),
        ..LossParams::default()
    };
    e.rec.dispatch(
        Kernel::FinishSum,
        &finish,
        &[partials, out.into()],
        [1, 1, models as u32],
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn reconstruction(
    e: &mut GpuEngine,
    likelihood: Likelihood,
    (o, x): (&GpuBuffer, &GpuBuffer),
    (rows, cols, numeric): (usize, usize, usize),
    models: Models<'_, GpuBuffer>,
    grad: &GpuBuffer,
    losses: &GpuBuffer,
    (slot, stride): (usize, usize),
) -> Result<()> {
    let p = loss_params((rows * cols, cols), models, stride);
    let p = LossParams {
        heads: numeric as u32,
        likelihood: likelihood as u32,
        ..p
    };
    let inputs = [o.into(), x.into(), grad.into(), models.table.into()];
    reduce_batch(
        e,
        Kernel::Reconstruction,
        p,
        &inputs,
        losses,
        (slot, models.count),
        1.0,
    )
}

pub(super) fn gaussian_learned(
    e: &mut GpuEngine,
    (o, x, logvar): (&GpuBuffer, &GpuBuffer, &GpuBuffer),
    ((rows, cols, numeric), logvar_stride): ((usize, usize, usize), usize),
    models: Models<'_, GpuBuffer>,
    (grad, terms): (&GpuBuffer, &GpuBuffer),
    losses: &GpuBuffer,
    (slot, stride): (usize, usize),
) -> Result<()> {
    let p = loss_params((rows * cols, cols), models, stride);
    let p = LossParams {
        heads: numeric as u32,
        model_stride: logvar_stride as u32,
        ..p
    };
    let inputs = [
        o.into(),
        x.into(),
        logvar.into(),
        grad.into(),
        terms.into(),
        models.table.into(),
    ];
    let at = (slot, models.count);
    reduce_batch(e, Kernel::GaussianLearned, p, &inputs, losses, at, 1.0)
}

pub(super) fn softmax_cross_entropy(
    e: &mut GpuEngine,
    (o, x): (&GpuBuffer, &GpuBuffer),
    ((rows, cols), (groups, heads)): ((usize, usize), (&GpuBuffer, usize)),
    models: Models<'_, GpuBuffer>,
    grad: &GpuBuffer,
    losses: &GpuBuffer,
    (slot, stride): (usize, usize),
) -> Result<()> {
    let p = loss_params((rows * heads, cols), models, stride);
    let p = LossParams {
        heads: heads as u32,
        ..p
    };
    let inputs = [
        o.into(),
        x.into(),
        groups.into(),
        grad.into(),
        models.table.into(),
    ];
    let at = (slot, models.count);
    reduce_batch(e, Kernel::SoftmaxCrossEntropy, p, &inputs, losses, at, 1.0)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn kl(
    e: &mut GpuEngine,
    (head, eps, dz): (&GpuBuffer, &GpuBuffer, &GpuBuffer),
    (rows, latent): (usize, usize),
    beta: f32,
    models: Models<'_, GpuBuffer>,
    dhead: &GpuBuffer,
    losses: &GpuBuffer,
    (slot, stride): (usize, usize),
) -> Result<()> {
    let p = loss_params((rows * latent, latent), models, stride);
    let p = LossParams { beta, ..p };
    let inputs = [
        head.into(),
        eps.into(),
        dz.into(),
        dhead.into(),
        models.table.into(),
    ];
    reduce_batch(e, Kernel::Kl, p, &inputs, losses, (slot, models.count), 1.0)
}

pub(super) fn l2(
    e: &mut GpuEngine,
    (w, grad): (&GpuBuffer, &GpuBuffer),
    (len, models): (usize, Blocks),
    l2: f32,
    losses: &GpuBuffer,
    (slot, slot_stride): (usize, usize),
) -> Result<()> {
    let p = LossParams {
        len: len as u32,
        beta: l2,
        model_stride: models.stride as u32,
        slot_stride: slot_stride as u32,
        ..LossParams::default()
    };
    reduce_batch(
        e,
        Kernel::L2,
        p,
        &[w.into(), grad.into()],
        losses,
        (slot, models.count),
        0.5 * l2,
    )
}

pub(super) fn sum_squares(
    e: &mut GpuEngine,
    buf: &GpuBuffer,
    len: usize,
    models: usize,
    acc: &GpuBuffer,
    slot: usize,
) -> Result<()> {
    let p = LossParams {
        len: len as u32,
        ..LossParams::default()
    };
    let at = (slot, models);
    reduce_batch(e, Kernel::SumSquares, p, &[buf.into()], acc, at, 1.0)
}
