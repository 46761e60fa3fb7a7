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
    _pad: u32,
}

/// Side of the block of `C` one workgroup computes (`TILE` in the shader).
const TILE: usize = 64;

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
    let groups = [s.n.div_ceil(TILE), s.m.div_ceil(TILE)];
    let max = e.max_groups as usize;
    if groups.iter().any(|&g| g > max) {
        return Err(Error::gpu(
            "matmul",
            format!(
                "a {} x {} product needs {groups:?} workgroups; the device allows {max} per dimension",
                s.m, s.n
            ),
        ));
    }
    let params = MatmulParams {
        m: s.m as u32,
        k: s.k as u32,
        n: s.n as u32,
        a_t: s.a_t.into(),
        b_t: s.b_t.into(),
        bias: with_bias,
        act,
        _pad: 0,
    };
    let bindings = [a.into(), b.into(), bias.into(), Binding::from(&*c)];
    e.rec.dispatch(
        Kernel::Matmul,
        &params,
        &bindings,
        [groups[0] as u32, groups[1] as u32, 1],
    )
}
