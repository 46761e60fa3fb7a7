//! Launchers of `shaders/elementwise.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::kernels::Kernel;
use super::recorder::Binding;
use super::{GpuBuffer, GpuEngine};
use crate::engine::{Activation, Blocks};
use crate::error::{Error, Result};

/// Mirrors `ElementParams` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct ElementParams {
    len: u32,
    cols: u32,
    start: u32,
    act: u32,
    slot: u32,
    value: f32,
    models: u32,
    /// Elements between models' blocks of a batched output.
    model_stride: u32,
}

fn run(
    e: &mut GpuEngine,
    kernel: Kernel,
    p: ElementParams,
    bindings: &[Binding<'_>],
    threads: usize,
) -> Result<()> {
    let groups = e.groups(threads);
    e.rec.dispatch(kernel, &p, bindings, groups)
}

fn params(len: usize) -> ElementParams {
    ElementParams {
        len: len as u32,
        ..Default::default()
    }
}

pub(super) fn fill(e: &mut GpuEngine, buf: &GpuBuffer, len: usize, value: f32) -> Result<()> {
    let p = ElementParams {
        value,
        ..params(len)
    };
    run(e, Kernel::Fill, p, &[buf.into()], len)
}

pub(super) fn copy(e: &mut GpuEngine, src: &GpuBuffer, dst: &GpuBuffer, len: usize) -> Result<()> {
    run(e, Kernel::Copy, params(len), &[src.into(), dst.into()], len)
}

/// Rows of `src` are gathered through windows no larger than one binding: the offset of a
/// window must be a multiple of the storage alignment and of the row size.
pub(super) fn gather_rows(
    e: &mut GpuEngine,
    src: &GpuBuffer,
    cols: usize,
    idx: &GpuBuffer,
    start: usize,
    rows: usize,
    dst: &GpuBuffer,
) -> Result<()> {
    let row_bytes = cols as u64 * 4;
    let align = u64::from(e.gpu.limits().min_storage_buffer_offset_alignment);
    let rows_per_align = align / gcd(align, row_bytes);
    let window_rows = (e.rec.max_binding() / row_bytes) / rows_per_align * rows_per_align;
    if window_rows == 0 {
        return Err(Error::gpu(
            "gather_rows",
            format!(
                "rows of {row_bytes} bytes do not fit the device's max_storage_buffer_binding_size ({})",
                e.rec.max_binding()
            ),
        ));
    }
    let total_rows = src.bytes() / row_bytes;
    let len = rows * cols;
    let mut first = 0u64;
    loop {
        let n = window_rows.min(total_rows - first);
        let window = Binding {
            buf: src,
            offset: src.offset() + first * row_bytes,
            size: (total_rows > window_rows || src.window.is_some()).then_some(n * row_bytes),
        };
        let p = ElementParams {
            cols: cols as u32,
            start: start as u32,
            slot: first as u32,
            ..params(len)
        };
        run(
            e,
            Kernel::GatherRows,
            p,
            &[window, idx.into(), dst.into()],
            len,
        )?;
        first += n;
        if first >= total_rows {
            return Ok(());
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

pub(super) fn activation_bias_grad(
    e: &mut GpuEngine,
    act: Activation,
    y: &GpuBuffer,
    grad: &GpuBuffer,
    (rows, cols, models): (usize, usize, Blocks),
    db: &GpuBuffer,
) -> Result<()> {
    let p = ElementParams {
        act: act as u32,
        cols: cols as u32,
        models: models.count as u32,
        model_stride: models.stride as u32,
        ..params(models.count * rows * cols)
    };
    run(
        e,
        Kernel::ActivationBiasGrad,
        p,
        &[y.into(), grad.into(), db.into()],
        models.count * cols,
    )
}

pub(super) fn bias_grad(
    e: &mut GpuEngine,
    grad: &GpuBuffer,
    (rows, cols, models): (usize, usize, Blocks),
    db: &GpuBuffer,
) -> Result<()> {
    let p = ElementParams {
        cols: cols as u32,
        models: models.count as u32,
        model_stride: models.stride as u32,
        ..params(models.count * rows * cols)
    };
    run(
        e,
        Kernel::BiasGrad,
        p,
        &[grad.into(), db.into()],
        models.count * cols,
    )
}
