//! Launchers of `shaders/random.wgsl` (with `shaders/philox.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::kernels::Kernel;
use super::recorder::Binding;
use super::{GpuBuffer, GpuEngine};
use crate::engine::Models;
use crate::error::Result;
use crate::rng::{Purpose, Stream};

/// Mirrors `RandomParams` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct RandomParams {
    len: u32,
    latent: u32,
    rate: f32,
    /// The first model's entry in a batch's table.
    at: u32,
    seed: [u32; 2],
    step: u32,
    purpose: u32,
    offset: [u32; 2],
    /// Models of a batch.
    models: u32,
    _pad: u32,
}

impl RandomParams {
    fn new(len: usize, stream: Stream, offset: u64) -> Self {
        RandomParams {
            len: len as u32,
            latent: 1,
            rate: 0.0,
            at: 0,
            seed: [stream.seed as u32, (stream.seed >> 32) as u32],
            step: stream.step,
            purpose: stream.purpose as u32,
            offset: [offset as u32, (offset >> 32) as u32],
            models: 1,
            _pad: 0,
        }
    }
}

fn run(e: &mut GpuEngine, kernel: Kernel, p: RandomParams, bindings: &[Binding<'_>]) -> Result<()> {
    let groups = e.groups(p.len as usize);
    e.rec.dispatch(kernel, &p, bindings, groups)
}

pub(super) fn philox_words(
    e: &mut GpuEngine,
    stream: Stream,
    offset: u64,
    len: usize,
    out: &mut GpuBuffer,
) -> Result<()> {
    let p = RandomParams::new(len, stream, offset);
    run(e, Kernel::PhiloxWords, p, &[Binding::from(&*out)])
}

/// The parameters of `len` elements a model whose streams are `(seed, purpose, step)` of each
/// model's table entry, from element `offset` (the table, not these, gives seed and step).
fn models_params(len: usize, (purpose, offset): (Purpose, u64)) -> RandomParams {
    RandomParams::new(len, Stream::new(0, purpose, 0), offset)
}

/// Runs `kernel` over `p.len` elements of each of the models `m`.
fn run_models(
    e: &mut GpuEngine,
    kernel: Kernel,
    p: RandomParams,
    bindings: &[Binding<'_>],
    m: Models<'_, GpuBuffer>,
) -> Result<()> {
    let p = RandomParams {
        at: m.at as u32,
        models: m.count as u32,
        ..p
    };
    let groups = e.groups(p.len as usize * p.models as usize);
    let mut bindings = bindings.to_vec();
    bindings.push(m.table.into());
    e.rec.dispatch(kernel, &p, &bindings, groups)
}

pub(super) fn dropout(
    e: &mut GpuEngine,
    buf: &GpuBuffer,
    (len, rate): (usize, f32),
    streams: (Purpose, u64),
    models: Models<'_, GpuBuffer>,
) -> Result<()> {
    let p = RandomParams {
        rate,
        ..models_params(len, streams)
    };
    run_models(e, Kernel::Dropout, p, &[buf.into()], models)
}

pub(super) fn normal(
    e: &mut GpuEngine,
    dst: &GpuBuffer,
    len: usize,
    stream: Stream,
    offset: u64,
) -> Result<()> {
    run(
        e,
        Kernel::Normal,
        RandomParams::new(len, stream, offset),
        &[dst.into()],
    )
}

pub(super) fn reparameterize(
    e: &mut GpuEngine,
    head: &GpuBuffer,
    (rows, latent): (usize, usize),
    purpose: Purpose,
    models: Models<'_, GpuBuffer>,
    (z, eps): (&GpuBuffer, &GpuBuffer),
) -> Result<()> {
    let p = RandomParams {
        latent: latent as u32,
        ..models_params(rows * latent, (purpose, 0))
    };
    let bindings = [head.into(), z.into(), eps.into()];
    run_models(e, Kernel::Reparameterize, p, &bindings, models)
}
