//! Launcher of `shaders/knn.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::kernels::Kernel;
use super::{GpuBuffer, GpuEngine};
use crate::engine::KnnTile;
use crate::error::Result;

/// Mirrors `KnnParams` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct KnnParams {
    queries: u32,
    refs: u32,
    q_start: u32,
    r_start: u32,
    k: u32,
    _pad: [u32; 3],
}

pub(super) fn merge(
    e: &mut GpuEngine,
    gram: &GpuBuffer,
    norms: &GpuBuffer,
    t: KnnTile,
    best_d: &GpuBuffer,
    best_i: &GpuBuffer,
) -> Result<()> {
    let p = KnnParams {
        queries: t.queries as u32,
        refs: t.refs as u32,
        q_start: t.q_start as u32,
        r_start: t.r_start as u32,
        k: t.k as u32,
        _pad: [0; 3],
    };
    let groups = e.groups(t.queries);
    let bindings = [gram.into(), norms.into(), best_d.into(), best_i.into()];
    e.rec.dispatch(Kernel::KnnMerge, &p, &bindings, groups)
}
