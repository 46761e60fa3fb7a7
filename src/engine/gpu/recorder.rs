//! Recording kernels into one command stream: a uniform arena for parameters, cached bind
//! groups, one open compute pass, submission, and read-back.
//!
//! Kernels are only recorded; nothing reaches the device until a write, a read or a full arena
//! submits. An epoch of training is therefore a handful of submissions, not one per kernel.

use std::collections::HashMap;
use std::sync::mpsc::TryRecvError;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::kernels::{Kernel, PipelineCache};
use super::scope::checked;
use super::GpuBuffer;
use crate::error::{Error, Result};

/// Parameter slots per submission (each `stride` bytes, at least 256).
const SLOTS: u64 = 8192;

/// How long a read waits for the device before giving up with an error.
const TIMEOUT: Duration = Duration::from_secs(600);

/// A storage binding: a buffer, or a window of one (`offset`, `size` in bytes).
#[derive(Clone, Copy)]
pub(crate) struct Binding<'a> {
    pub buf: &'a GpuBuffer,
    pub offset: u64,
    pub size: Option<u64>,
}

impl<'a> From<&'a GpuBuffer> for Binding<'a> {
    fn from(buf: &'a GpuBuffer) -> Self {
        Binding {
            buf,
            offset: buf.offset(),
            size: buf.window.map(|(_, size)| size),
        }
    }
}

type BindKey = (Kernel, Vec<(u64, u64, u64)>);

pub(crate) struct Recorder {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: Arc<PipelineCache>,
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    /// Parameters of the kernels recorded since the last submission.
    params: Vec<u8>,
    arena: wgpu::Buffer,
    stride: u64,
    bind_groups: HashMap<BindKey, (wgpu::BindGroup, Vec<Weak<()>>)>,
    staging: Option<wgpu::Buffer>,
    max_binding: u64,
    counts: Arc<super::Counters>,
}

impl Recorder {
    pub fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        pipelines: Arc<PipelineCache>,
        counts: Arc<super::Counters>,
    ) -> Result<Self> {
        let limits = device.limits();
        let stride = u64::from(limits.min_uniform_buffer_offset_alignment).max(256);
        let arena = checked(&device, "allocating the parameter arena", || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel parameters"),
                size: SLOTS * stride,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(Recorder {
            max_binding: limits.max_storage_buffer_binding_size,
            device,
            queue,
            pipelines,
            encoder: None,
            pass: None,
            params: Vec::new(),
            arena,
            stride,
            bind_groups: HashMap::new(),
            staging: None,
            counts,
        })
    }

    /// The largest storage binding, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.max_binding
    }

    /// Pretends the device allows bindings of at most `bytes`, to test windowing and limits.
    #[cfg(test)]
    pub fn limit_binding(&mut self, bytes: u64) {
        self.max_binding = bytes;
    }

    /// Records one dispatch of `kernel` with uniform `params` over `buffers` (in the kernel's
    /// binding order).
    pub fn dispatch<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        params: &P,
        buffers: &[Binding<'_>],
        groups: [u32; 3],
    ) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        let size = std::mem::size_of::<P>() as u64;
        debug_assert!(size <= self.stride);
        let pipeline = self.pipelines.get(&self.device, kernel, size)?;
        for b in buffers {
            let bytes = b.size.unwrap_or(b.buf.bytes());
            if bytes > self.max_binding {
                return Err(Error::gpu(
                    kernel.name(),
                    format!(
                        "a buffer of {bytes} bytes exceeds the device's max_storage_buffer_binding_size ({})",
                        self.max_binding
                    ),
                ));
            }
        }
        if self.params.len() as u64 >= SLOTS * self.stride {
            self.submit(|_| {})?;
        }
        let offset = self.params.len() as u64;
        self.params.extend_from_slice(bytemuck::bytes_of(params));
        self.params.resize((offset + self.stride) as usize, 0);

        let key: BindKey = (
            kernel,
            buffers
                .iter()
                .map(|b| (b.buf.id, b.offset, b.size.unwrap_or(0)))
                .collect(),
        );
        if !self.bind_groups.contains_key(&key) {
            let group = self.bind_group(kernel, &pipeline.layout, size, buffers)?;
            let alive = buffers
                .iter()
                .map(|b| Arc::downgrade(&b.buf.alive))
                .collect();
            if self.bind_groups.len() >= 4096 {
                // Forget groups whose buffers are gone, so they do not keep device memory.
                self.bind_groups
                    .retain(|_, (_, alive)| alive.iter().all(|w| w.strong_count() > 0));
            }
            self.bind_groups.insert(key.clone(), (group, alive));
        }
        let group = &self.bind_groups[&key].0;
        let pass = match &mut self.pass {
            Some(p) => p,
            None => {
                let mut encoder = self
                    .encoder
                    .take()
                    .unwrap_or_else(|| self.device.create_command_encoder(&Default::default()));
                let pass = encoder
                    .begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("smrt kernels"),
                        timestamp_writes: None,
                    })
                    .forget_lifetime();
                self.encoder = Some(encoder);
                self.pass.insert(pass)
            }
        };
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, group, &[offset as u32]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        self.counts
            .dispatches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn bind_group(
        &self,
        kernel: Kernel,
        layout: &wgpu::BindGroupLayout,
        params_size: u64,
        buffers: &[Binding<'_>],
    ) -> Result<wgpu::BindGroup> {
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.arena,
                offset: 0,
                size: std::num::NonZeroU64::new(params_size),
            }),
        }];
        for (&(binding, _), b) in kernel.bindings().iter().zip(buffers) {
            entries.push(wgpu::BindGroupEntry {
                binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &b.buf.buffer,
                    offset: b.offset,
                    size: b.size.and_then(std::num::NonZeroU64::new),
                }),
            });
        }
        checked(&self.device, kernel.name(), || {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel.name()),
                layout,
                entries: &entries,
            })
        })
    }

    /// Ends the open pass and submits everything recorded, after `last` adds its commands.
    pub fn submit(&mut self, last: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<()> {
        drop(self.pass.take());
        let mut encoder = self
            .encoder
            .take()
            .unwrap_or_else(|| self.device.create_command_encoder(&Default::default()));
        last(&mut encoder);
        let params = std::mem::take(&mut self.params);
        checked(&self.device, "submitting kernels", || {
            if !params.is_empty() {
                self.queue.write_buffer(&self.arena, 0, &params);
            }
            self.queue.submit([encoder.finish()]);
        })?;
        self.counts
            .submissions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Writes `bytes` at the start of `buf`, after everything recorded so far.
    pub fn write(&mut self, buf: &GpuBuffer, at: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if at + bytes.len() as u64 > buf.bytes() {
            return Err(Error::gpu(
                "writing a buffer",
                format!(
                    "{} bytes from byte {at} do not fit a buffer of {}",
                    bytes.len(),
                    buf.bytes()
                ),
            ));
        }
        self.submit(|_| {})?;
        checked(&self.device, "writing a buffer", || {
            self.queue
                .write_buffer(&buf.buffer, buf.offset() + at, bytes)
        })
    }

    /// Runs everything recorded and copies the first `bytes` bytes of `buf` back.
    pub fn read(&mut self, buf: &GpuBuffer, bytes: u64) -> Result<Vec<u8>> {
        if bytes == 0 {
            self.submit(|_| {})?;
            return Ok(Vec::new());
        }
        let needed = bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        if self.staging.as_ref().is_none_or(|s| s.size() < needed) {
            let staging = checked(&self.device, "allocating a read-back buffer", || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read-back"),
                    size: needed,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?;
            self.staging = Some(staging);
        }
        let staging = self.staging.clone().expect("allocated above");
        let from = buf.offset();
        self.submit(|enc| enc.copy_buffer_to_buffer(&buf.buffer, from, &staging, 0, needed))?;
        let slice = staging.slice(..needed);
        let (tx, rx) = std::sync::mpsc::channel();
        checked(&self.device, "reading a buffer back", || {
            slice.map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            })
        })?;
        // Another thread polling the same device may run the callback; poll until it has run.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.device
                .poll(wgpu::PollType::Wait {
                    submission_index: None,
                    timeout: Some(TIMEOUT),
                })
                .map_err(|e| Error::gpu("waiting for the device", e))?;
            match rx.try_recv() {
                Ok(Ok(())) => break,
                Ok(Err(e)) => return Err(Error::gpu("reading a buffer back", e)),
                Err(TryRecvError::Empty) if Instant::now() < deadline => std::thread::yield_now(),
                Err(_) => {
                    return Err(Error::gpu(
                        "reading a buffer back",
                        format!("the buffer was not mapped within {} s", TIMEOUT.as_secs()),
                    ))
                }
            }
        }
        let data = slice
            .get_mapped_range()
            .map_err(|e| Error::gpu("reading a buffer back", e))?[..bytes as usize]
            .to_vec();
        checked(&self.device, "reading a buffer back", || staging.unmap())?;
        Ok(data)
    }
}
