//! Finding an adapter and opening a device: the one place that creates wgpu devices.
//!
//! wgpu's own variables are respected: `WGPU_BACKEND` restricts the backends searched,
//! `WGPU_ADAPTER_NAME` keeps adapters whose name contains it, `WGPU_POWER_PREF=low` prefers an
//! integrated GPU over a discrete one, and `WGPU_VALIDATION`/`WGPU_DEBUG` set the instance flags.

use std::fmt;

use crate::error::{Error, Result};

/// A description of one adapter, for messages and `smrt info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The device's name, as the driver reports it.
    pub name: String,
    /// The graphics API (Vulkan, Metal, Dx12).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// A software rasteriser on the CPU (Mesa's lavapipe/llvmpipe, WARP): correct but slower
    /// than the CPU engine, so `Backend::Auto` does not pick it.
    pub software: bool,
}

impl AdapterSummary {
    pub(crate) fn of(info: &wgpu::AdapterInfo) -> Self {
        let driver = [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver,
            software: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        f.write_str(")")
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Rank of an adapter: lower is preferred.
fn rank(info: &wgpu::AdapterInfo) -> u8 {
    let low_power = wgpu::PowerPreference::from_env() == Some(wgpu::PowerPreference::LowPower);
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu if low_power => 1,
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu if low_power => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Every adapter wgpu finds (after `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`), best first.
fn ranked_adapters() -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let mut adapters = pollster::block_on(instance().enumerate_adapters(backends));
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted = wanted.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted));
    }
    adapters.sort_by_key(|a| rank(&a.get_info()));
    adapters
}

/// The adapters found on this machine, best first.
pub fn adapters() -> Vec<AdapterSummary> {
    ranked_adapters()
        .iter()
        .map(|a| AdapterSummary::of(&a.get_info()))
        .collect()
}

/// Opens the best adapter; with `hardware_only`, software adapters do not count.
/// `Ok(None)` when there is none.
pub(crate) fn open_best(hardware_only: bool) -> Result<Option<(wgpu::Device, wgpu::Queue)>> {
    let Some(adapter) = ranked_adapters()
        .into_iter()
        .find(|a| !(hardware_only && a.get_info().device_type == wgpu::DeviceType::Cpu))
    else {
        return Ok(None);
    };
    let info = adapter.get_info();
    let desc = wgpu::DeviceDescriptor {
        label: Some("smrt"),
        // Everything the adapter allows: larger bindings mean fewer chunks.
        required_limits: adapter.limits(),
        memory_hints: wgpu::MemoryHints::Performance,
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc))
        .map_err(|e| Error::gpu(format!("opening {}", info.name), e))?;
    Ok(Some((device, queue)))
}
