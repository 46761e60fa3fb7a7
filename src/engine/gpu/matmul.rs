//! Launcher of `shaders/matmul.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::kernels::Kernel;
use super::recorder::Binding;
use super::{GpuBuffer, GpuEngine};
use crate::engine::{Epilogue, MatMul};
use crate::error::{Error, Result};

/// Mirrors `MatmulParams` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct MatmulParams {
    m: u32,
    k: u32,
    n: u32,
    a_t: u32,
    b_t: u32,
    bias: u32,
    act: u32,
    batch: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    stride_bias: u32,
}

/// Side of the block of `C` one workgroup computes (`TILE` in the shader): 64 for large
/// products, 32 for small ones.
const TILE: usize = 64;
const SMALL_TILE: usize = 32;

/// Below this many 64 x 64 blocks (of every product of a batch) a product runs in 32 x 32
/// blocks: a VAE layer's product
/// (batch 32-256 x widths 8-512) fills a few large blocks mostly with padding, and leaves most
/// of a device idle; sixteen times as many small blocks waste less and spread wider.
const SMALL_BELOW: usize = 4;

pub(super) fn matmul(
    e: &mut GpuEngine,
    a: &GpuBuffer,
    b: &GpuBuffer,
    c: &mut GpuBuffer,
    s: MatMul,
    epilogue: Epilogue<'_, GpuBuffer>,
) -> Result<()> {
    let (bias, act, with_bias) = match epilogue {
        Epilogue::None => (b, 0, 0),
        Epilogue::BiasActivation(bias, act) => (bias, act as u32, 1),
    };
    let small = s.n.div_ceil(TILE) * s.m.div_ceil(TILE) * s.batch < SMALL_BELOW;
    let (kernel, tile) = match small {
        true => (Kernel::MatmulSmall, SMALL_TILE),
        false => (Kernel::Matmul, TILE),
    };
    // One workgroup layer per product of a batch.
    let groups = [s.n.div_ceil(tile), s.m.div_ceil(tile), s.batch];
    let max = e.max_groups as usize;
    if groups.iter().any(|&g| g > max) {
        return Err(Error::gpu(
            "matmul",
            format!(
                "{} {} x {} products need {groups:?} workgroups; the device allows {max} per dimension",
                s.batch, s.m, s.n
            ),
        ));
    }
    let st = s.operand_strides();
    let params = MatmulParams {
        m: s.m as u32,
        k: s.k as u32,
        n: s.n as u32,
        a_t: s.a_t.into(),
        b_t: s.b_t.into(),
        bias: with_bias,
        act,
        batch: s.batch as u32,
        stride_a: st.a as u32,
        stride_b: st.b as u32,
        stride_c: st.c as u32,
        stride_bias: st.bias as u32,
    };
    let bindings = [a.into(), b.into(), bias.into(), Binding::from(&*c)];
    e.rec.dispatch(
        kernel,
        &params,
        &bindings,
        [groups[0] as u32, groups[1] as u32, groups[2] as u32],
    )
}
