//! The GPU engine: every kernel in hand-written WGSL (`shaders/`), run through wgpu.
//!
//! [`Gpu`] is one device with its queue and compiled pipelines; it is cheap to clone and can be
//! built from an application's own `wgpu::Device` and `wgpu::Queue`. [`GpuEngine`] records the
//! kernels of one fit (or one generation) on it. Nothing is global: two engines on two devices
//! work side by side.
//!
//! Kernel launchers live beside their shaders: `matmul.rs`, `elementwise.rs`, `random.rs`,
//! `loss.rs`, `optim.rs`.

mod context;
mod elementwise;
mod kernels;
mod knn;
mod loss;
mod matmul;
mod optim;
mod random;
mod recorder;
mod scope;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use context::{adapters, AdapterSummary};

use self::kernels::{PipelineCache, WG};
use self::recorder::Recorder;
use self::scope::checked;
use super::{Blocks, Clip, Engine, Epilogue, KnnTile, MatMul, Models, Packed, Update};
use crate::engine::{Activation, Likelihood};
use crate::error::{Error, Result};
use crate::rng::{Purpose, Stream};

/// One GPU device, its queue and its compiled kernels. Clones share them.
#[derive(Clone)]
pub struct Gpu {
    shared: Arc<Shared>,
}

struct Shared {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    pipelines: Arc<PipelineCache>,
    next_buffer: AtomicU64,
    counts: Arc<Counters>,
}

/// Work sent to a device, counted by every engine on it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) dispatches: AtomicU64,
    pub(crate) submissions: AtomicU64,
}

/// How much work a device has been sent since it was opened: compute dispatches and queue
/// submissions (each submission ends a batch of dispatches the device runs before smrt reads
/// results back). Small models are bound by their number, not by arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Command buffers submitted to the queue.
    pub submissions: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, earlier: Counts) -> Counts {
        Counts {
            dispatches: self.dispatches - earlier.dispatches,
            submissions: self.submissions - earlier.submissions,
        }
    }
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gpu({})", self.shared.adapter)
    }
}

impl Gpu {
    /// Opens the best adapter found: a discrete GPU before an integrated one, a hardware adapter
    /// before a software one (see [`adapters`] for the order and the `WGPU_*` variables).
    pub fn new() -> Result<Gpu> {
        Self::open(false)?.ok_or_else(|| Error::NoGpu(no_adapter_reason()))
    }

    /// Opens the best hardware adapter, or `None` when only software adapters (or none) exist.
    pub fn hardware() -> Result<Option<Gpu>> {
        Self::open(true)
    }

    fn open(hardware_only: bool) -> Result<Option<Gpu>> {
        Ok(context::open_best(hardware_only)?.map(|(d, q)| Gpu::from_device(d, q)))
    }

    /// Runs on an application's own device and queue. Kernels compile on first use.
    ///
    /// ```no_run
    /// # fn app_device() -> (wgpu::Device, wgpu::Queue) { unimplemented!() }
    /// let (device, queue) = app_device();
    /// let gpu = smrt::engine::Gpu::from_device(device, queue);
    /// let x = ndarray::Array2::from_shape_fn((64, 3), |(i, j)| (i * 3 + j) as f32);
    /// let config = smrt::VaeConfig { epochs: 10, ..Default::default() };
    /// let vae = smrt::Vae::fit_on(&smrt::Device::Gpu(gpu), x.view(), &config)?;
    /// # Ok::<(), smrt::Error>(())
    /// ```
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Gpu {
        let adapter = AdapterSummary::of(&device.adapter_info());
        Gpu {
            shared: Arc::new(Shared {
                device,
                queue,
                adapter,
                pipelines: Arc::default(),
                next_buffer: AtomicU64::new(0),
                counts: Arc::default(),
            }),
        }
    }

    /// The adapter this device runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.shared.adapter
    }

    /// The work sent to this device so far, by every engine on it.
    pub fn counts(&self) -> Counts {
        let c = &self.shared.counts;
        Counts {
            dispatches: c.dispatches.load(std::sync::atomic::Ordering::Relaxed),
            submissions: c.submissions.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The device's limits.
    pub fn limits(&self) -> wgpu::Limits {
        self.shared.device.limits()
    }

    /// A new engine recording on this device.
    pub fn engine(&self) -> Result<GpuEngine> {
        let s = &self.shared;
        let recorder = Recorder::new(
            s.device.clone(),
            s.queue.clone(),
            s.pipelines.clone(),
            s.counts.clone(),
        )?;
        let partials = self.buffer(PARTIALS as u64 * 4, "partial sums")?;
        Ok(GpuEngine {
            max_groups: s.device.limits().max_compute_workgroups_per_dimension,
            gpu: self.clone(),
            rec: recorder,
            partials,
            failed: None,
        })
    }

    fn buffer(&self, bytes: u64, label: &str) -> Result<GpuBuffer> {
        let d = &self.shared.device;
        let max = d.limits().max_buffer_size;
        // Zero-length buffers are legal but cannot be bound; keep one element.
        let size = bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        if size > max {
            return Err(Error::gpu(
                format!("allocating {label}"),
                format!("{size} bytes exceed the device's max_buffer_size ({max})"),
            ));
        }
        let buffer = checked(d, &format!("allocating {label}"), || {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuBuffer {
            buffer,
            id: self.shared.next_buffer.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            window: None,
        })
    }
}

fn no_adapter_reason() -> String {
    "wgpu found no adapter (install a Vulkan, Metal or DX12 driver; on Debian, \
     mesa-vulkan-drivers provides lavapipe)"
        .to_string()
}

/// A buffer on the GPU, or a window of one (a tensor of [`Engine::zeros_packed`]).
#[derive(Debug)]
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    id: u64,
    /// Dropped with the buffer: tells the recorder's bind-group cache the buffer is gone.
    alive: Arc<()>,
    /// The window's offset and size in bytes; `None` for the whole buffer.
    window: Option<(u64, u64)>,
}

impl GpuBuffer {
    /// Bytes the buffer (or window) holds.
    fn bytes(&self) -> u64 {
        self.window.map_or(self.buffer.size(), |(_, size)| size)
    }

    /// Where the buffer (or window) starts in its allocation, in bytes.
    fn offset(&self) -> u64 {
        self.window.map_or(0, |(offset, _)| offset)
    }

    /// A window of `size` bytes from `offset` of this (whole) buffer.
    fn window(&self, offset: u64, size: u64) -> GpuBuffer {
        GpuBuffer {
            buffer: self.buffer.clone(),
            id: self.id,
            alive: self.alive.clone(),
            window: Some((offset, size)),
        }
    }
}

/// Workgroups (and partial sums) of a reduction's first pass, per model of a batch.
pub(crate) const PARTIALS: u32 = 256;

/// Records kernels on a [`Gpu`]. Kernels that fail (validation, limits) do not panic: the first
/// error is kept and returned by the next call that returns a `Result` (a read, write or upload).
pub struct GpuEngine {
    gpu: Gpu,
    /// The device's workgroups per dispatch dimension.
    max_groups: u32,
    rec: Recorder,
    partials: GpuBuffer,
    failed: Option<Error>,
}

impl fmt::Debug for GpuEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GpuEngine({})", self.gpu.shared.adapter)
    }
}

impl GpuEngine {
    /// Keeps the first error of a kernel for the next fallible call.
    fn record(&mut self, r: Result<()>) {
        if let (Err(e), None) = (r, &self.failed) {
            self.failed = Some(e);
        }
    }

    fn check(&mut self) -> Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Workgroups for a grid-stride loop over `len` elements.
    fn groups(&self, len: usize) -> [u32; 3] {
        let g = len.div_ceil(WG as usize).min(self.max_groups as usize) as u32;
        [g, 1, 1]
    }

    /// The raw 32-bit words of `stream` at elements `offset..offset + len`, computed on the
    /// device (the check that the WGSL generator equals [`crate::rng`]).
    pub fn random_words(&mut self, stream: Stream, offset: u64, len: usize) -> Result<Vec<u32>> {
        let mut out = self.gpu.buffer(len as u64 * 4, "random words")?;
        let r = random::philox_words(self, stream, offset, len, &mut out);
        self.record(r);
        self.check()?;
        let bytes = self.rec.read(&out, len as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

impl Engine for GpuEngine {
    type Buffer = GpuBuffer;
    type Indices = GpuBuffer;

    fn name(&self) -> String {
        format!("gpu: {}", self.gpu.shared.adapter.name)
    }

    fn zeros(&mut self, len: usize) -> Result<GpuBuffer> {
        self.check()?;
        // wgpu zero-initialises new buffers.
        self.gpu.buffer(len as u64 * 4, "tensor")
    }

    /// One buffer, each tensor a window of it at an offset the device can bind.
    fn zeros_packed(&mut self, lens: &[usize], models: usize) -> Result<Packed<GpuBuffer>> {
        self.check()?;
        let align = u64::from(self.gpu.limits().min_storage_buffer_offset_alignment).max(4);
        let mut offsets = Vec::with_capacity(lens.len());
        let mut end = 0u64;
        for &len in lens {
            let offset = end.next_multiple_of(align);
            offsets.push(offset);
            end = offset + len.max(1) as u64 * 4;
        }
        // One model's block, aligned so the next model's starts as the first's does.
        let block = end.next_multiple_of(align);
        let models = models.max(1);
        let whole = self.gpu.buffer(block * models as u64, "packed tensors")?;
        // Each tensor's window spans its copy in every model's block.
        let last = block * (models as u64 - 1);
        let parts = (offsets.iter().zip(lens))
            .map(|(&offset, &len)| whole.window(offset, last + len.max(1) as u64 * 4))
            .collect();
        let stride = (block / 4) as usize;
        Ok(Packed {
            parts,
            strides: vec![stride; lens.len()],
            whole: Some((whole, stride)),
        })
    }

    fn upload(&mut self, data: &[f32]) -> Result<GpuBuffer> {
        let buf = self.zeros(data.len())?;
        self.rec.write(&buf, 0, bytemuck::cast_slice(data))?;
        Ok(buf)
    }

    fn upload_indices(&mut self, idx: &[u32]) -> Result<GpuBuffer> {
        self.check()?;
        let buf = self.gpu.buffer(idx.len() as u64 * 4, "indices")?;
        self.rec.write(&buf, 0, bytemuck::cast_slice(idx))?;
        Ok(buf)
    }

    fn write_at(&mut self, buf: &mut GpuBuffer, at: usize, data: &[f32]) -> Result<()> {
        self.check()?;
        self.rec
            .write(buf, at as u64 * 4, bytemuck::cast_slice(data))
    }

    fn read(&mut self, buf: &GpuBuffer, len: usize) -> Result<Vec<f32>> {
        self.check()?;
        let bytes = self.rec.read(buf, len as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn read_indices(&mut self, idx: &GpuBuffer, len: usize) -> Result<Vec<u32>> {
        self.check()?;
        let bytes = self.rec.read(idx, len as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn fill(&mut self, buf: &mut GpuBuffer, len: usize, value: f32) {
        let r = elementwise::fill(self, buf, len, value);
        self.record(r);
    }

    fn copy(&mut self, src: &GpuBuffer, dst: &mut GpuBuffer, len: usize) {
        let r = elementwise::copy(self, src, dst, len);
        self.record(r);
    }

    fn gather_rows(
        &mut self,
        src: &GpuBuffer,
        cols: usize,
        idx: &GpuBuffer,
        start: usize,
        rows: usize,
        dst: &mut GpuBuffer,
    ) {
        let r = elementwise::gather_rows(self, src, cols, idx, start, rows, dst);
        self.record(r);
    }

    fn matmul(
        &mut self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        c: &mut GpuBuffer,
        shape: MatMul,
        epilogue: Epilogue<'_, GpuBuffer>,
    ) {
        let r = matmul::matmul(self, a, b, c, shape, epilogue);
        self.record(r);
    }

    fn activation_bias_grad(
        &mut self,
        act: Activation,
        y: &GpuBuffer,
        grad: &mut GpuBuffer,
        rows: usize,
        cols: usize,
        models: Blocks,
        db: &mut GpuBuffer,
    ) {
        let shape = (rows, cols, models);
        let r = elementwise::activation_bias_grad(self, act, y, grad, shape, db);
        self.record(r);
    }

    fn bias_grad(
        &mut self,
        grad: &GpuBuffer,
        rows: usize,
        cols: usize,
        models: Blocks,
        db: &mut GpuBuffer,
    ) {
        let r = elementwise::bias_grad(self, grad, (rows, cols, models), db);
        self.record(r);
    }

    fn dropout_models(
        &mut self,
        buf: &mut GpuBuffer,
        len: usize,
        rate: f32,
        (purpose, offset): (Purpose, u64),
        models: Models<'_, GpuBuffer>,
    ) {
        let r = random::dropout(self, buf, (len, rate), (purpose, offset), models);
        self.record(r);
    }

    fn normal(&mut self, dst: &mut GpuBuffer, len: usize, stream: Stream, offset: u64) {
        let r = random::normal(self, dst, len, stream, offset);
        self.record(r);
    }

    fn reparameterize_models(
        &mut self,
        head: &GpuBuffer,
        rows: usize,
        latent: usize,
        purpose: Purpose,
        models: Models<'_, GpuBuffer>,
        z: &mut GpuBuffer,
        eps: &mut GpuBuffer,
    ) {
        let r = random::reparameterize(self, head, (rows, latent), purpose, models, (z, eps));
        self.record(r);
    }

    fn gaussian_learned_models(
        &mut self,
        o_x_logvar: (&GpuBuffer, &GpuBuffer, &GpuBuffer),
        shape: (usize, usize, usize),
        logvar_stride: usize,
        models: Models<'_, GpuBuffer>,
        (grad, terms): (&mut GpuBuffer, &mut GpuBuffer),
        losses: &mut GpuBuffer,
        slots: (usize, usize),
    ) {
        let r = loss::gaussian_learned(
            self,
            o_x_logvar,
            (shape, logvar_stride),
            models,
            (grad, terms),
            losses,
            slots,
        );
        self.record(r);
    }

    fn softmax_cross_entropy_models(
        &mut self,
        o_x: (&GpuBuffer, &GpuBuffer),
        rows_cols: (usize, usize),
        groups_heads: (&GpuBuffer, usize),
        models: Models<'_, GpuBuffer>,
        grad: &mut GpuBuffer,
        losses: &mut GpuBuffer,
        slots: (usize, usize),
    ) {
        let shape = (rows_cols, groups_heads);
        let r = loss::softmax_cross_entropy(self, o_x, shape, models, grad, losses, slots);
        self.record(r);
    }

    fn reconstruction_models(
        &mut self,
        likelihood: Likelihood,
        o_x: (&GpuBuffer, &GpuBuffer),
        shape: (usize, usize, usize),
        models: Models<'_, GpuBuffer>,
        grad: &mut GpuBuffer,
        losses: &mut GpuBuffer,
        slots: (usize, usize),
    ) {
        let r = loss::reconstruction(self, likelihood, o_x, shape, models, grad, losses, slots);
        self.record(r);
    }

    fn kl_models(
        &mut self,
        inputs: (&GpuBuffer, &GpuBuffer, &GpuBuffer),
        shape: (usize, usize),
        beta: f32,
        models: Models<'_, GpuBuffer>,
        dhead: &mut GpuBuffer,
        losses: &mut GpuBuffer,
        slots: (usize, usize),
    ) {
        let r = loss::kl(self, inputs, shape, beta, models, dhead, losses, slots);
        self.record(r);
    }

    fn l2(
        &mut self,
        w: &GpuBuffer,
        grad: &mut GpuBuffer,
        len: usize,
        models: Blocks,
        l2: f32,
        losses: &mut GpuBuffer,
        slots: (usize, usize),
    ) {
        let r = loss::l2(self, (w, grad), (len, models), l2, losses, slots);
        self.record(r);
    }

    fn sum_squares(
        &mut self,
        buf: &GpuBuffer,
        len: usize,
        models: usize,
        acc: &mut GpuBuffer,
        slot: usize,
    ) {
        let r = loss::sum_squares(self, buf, len, models, acc, slot);
        self.record(r);
    }

    fn knn_merge(
        &mut self,
        gram: &GpuBuffer,
        norms: &GpuBuffer,
        tile: KnnTile,
        best_d: &mut GpuBuffer,
        best_i: &mut GpuBuffer,
    ) {
        let r = knn::merge(self, gram, norms, tile, best_d, best_i);
        self.record(r);
    }

    fn optimizer_step(
        &mut self,
        update: Update,
        param: &mut GpuBuffer,
        grad: &GpuBuffer,
        state: &mut [GpuBuffer],
        len: usize,
        models: usize,
        clip: Option<Clip<'_, GpuBuffer>>,
    ) {
        let r = optim::step(self, update, param, grad, state, (len, models), clip);
        self.record(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CpuEngine;

    /// A GPU engine, or `None` (with a notice) where wgpu finds no adapter at all.
    fn engine() -> Option<GpuEngine> {
        match Gpu::new() {
            Ok(g) => Some(g.engine().unwrap()),
            Err(Error::NoGpu(why)) => {
                assert!(
                    std::env::var_os("SMRT_TEST_REQUIRE_GPU").is_none(),
                    "SMRT_TEST_REQUIRE_GPU is set but there is no GPU: {why}"
                );
                eprintln!("skipped: {why}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn gather_rows_through_binding_windows_matches_cpu() {
        let Some(mut g) = engine() else { return };
        let mut c = CpuEngine::new();
        for cols in [3usize, 7] {
            // Bindings just large enough for the 200 gathered rows: the 300 source rows take
            // two windows.
            g.rec.limit_binding(200 * cols as u64 * 4);
            let rows = 300;
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let order =
                crate::rng::permutation(&Stream::new(3, crate::rng::Purpose::Shuffle, 0), rows);
            let want = {
                let mut dst = vec![f32::NAN; 200 * cols];
                c.gather_rows(&src, cols, &order, 50, 200, &mut dst);
                dst
            };
            let (s, i) = (g.upload(&src).unwrap(), g.upload_indices(&order).unwrap());
            let mut dst = g.upload(&vec![f32::NAN; 200 * cols]).unwrap();
            g.gather_rows(&s, cols, &i, 50, 200, &mut dst);
            assert_eq!(g.read(&dst, 200 * cols).unwrap(), want, "cols {cols}");
        }
    }

    #[test]
    fn limits_and_device_errors_are_values_not_panics() {
        let Some(mut g) = engine() else { return };
        // Larger than any device allows.
        let err = g.zeros(1 << 60).unwrap_err();
        assert!(err.to_string().contains("max_buffer_size"), "{err}");

        // A binding over the device's limit: the kernel is refused, the next read says why.
        let mut big = g.zeros(1024).unwrap();
        g.rec.limit_binding(1024);
        g.fill(&mut big, 1024, 1.0);
        let err = g.read(&big, 4).unwrap_err();
        assert!(
            err.to_string().contains("max_storage_buffer_binding_size"),
            "{err}"
        );
        // The engine goes on working after an error.
        g.rec.limit_binding(1 << 20);
        g.fill(&mut big, 1024, 2.0);
        assert_eq!(g.read(&big, 2).unwrap(), vec![2.0, 2.0]);

        // A product needing more workgroups than a dispatch allows.
        let max = g.gpu.limits().max_compute_workgroups_per_dimension as usize;
        let m = max * 64 + 1;
        let a = g.zeros(m).unwrap();
        let b = g.zeros(1).unwrap();
        let mut c = g.zeros(m).unwrap();
        let shape = MatMul {
            m,
            k: 1,
            n: 1,
            a_t: false,
            b_t: false,
            batch: 1,
            strides: None,
        };
        g.matmul(&a, &b, &mut c, shape, Epilogue::None);
        let err = g.read(&c, 1).unwrap_err();
        assert!(err.to_string().contains("workgroups"), "{err}");
    }

    #[test]
    fn a_destroyed_device_gives_errors() {
        let Some(mut g) = engine() else { return };
        let buf = g.upload(&[1.0, 2.0]).unwrap();
        g.gpu.shared.device.destroy();
        let mut out = g.zeros(2).unwrap();
        g.copy(&buf, &mut out, 2);
        let err = g.read(&out, 2).unwrap_err();
        assert!(matches!(err, Error::Gpu { .. }), "{err}");
    }
}
