//! Choosing where to compute: [`Backend`] is the request, [`Device`] the result.

use std::str::FromStr;

use super::gpu::Gpu;
use crate::error::{Error, Result};

/// Which engine to compute on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The environment variable `SMRT_BACKEND` (`auto`, `gpu` or `cpu`) if set; otherwise a
    /// hardware GPU if there is one, else the CPU engine, with a one-line notice on stderr.
    /// Software GPU adapters (lavapipe, WARP) are slower than the CPU engine and not chosen.
    #[default]
    Auto,
    /// The best GPU adapter, software adapters included; an error if there is none.
    Gpu,
    /// The CPU engine.
    Cpu,
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "gpu" => Ok(Backend::Gpu),
            "cpu" => Ok(Backend::Cpu),
            other => Err(Error::config(
                "backend",
                format!("`{other}` is not one of auto, gpu, cpu"),
            )),
        }
    }
}

/// The environment variable that [`Backend::Auto`] consults.
pub const BACKEND_VAR: &str = "SMRT_BACKEND";

/// Where fits and generations run: the CPU engine or a GPU. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Device {
    /// The CPU engine ([`super::CpuEngine`]).
    Cpu,
    /// A GPU device ([`super::GpuEngine`]s are recorded on it).
    Gpu(Gpu),
}

impl Device {
    /// Resolves `backend` to a device.
    pub fn new(backend: Backend) -> Result<Device> {
        Device::explained(backend).map(|(device, _)| device)
    }

    /// [`Device::new`], and where [`Backend::Auto`] settled on the CPU engine, why (one line
    /// for a notice: no adapter, or only software ones). The library prints nothing; the `smrt`
    /// command shows the reason unless `--quiet`.
    pub fn explained(backend: Backend) -> Result<(Device, Option<String>)> {
        match backend {
            Backend::Cpu => Ok((Device::Cpu, None)),
            Backend::Gpu => Ok((Gpu::new().map(Device::Gpu)?, None)),
            Backend::Auto => match std::env::var(BACKEND_VAR) {
                Ok(v) => match v.parse::<Backend>().map_err(|_| {
                    Error::config(BACKEND_VAR, format!("`{v}` is not one of auto, gpu, cpu"))
                })? {
                    Backend::Auto => Self::auto(),
                    explicit => Device::explained(explicit),
                },
                Err(_) => Self::auto(),
            },
        }
    }

    fn auto() -> Result<(Device, Option<String>)> {
        if let Some(gpu) = Gpu::hardware()? {
            return Ok((Device::Gpu(gpu), None));
        }
        let found = super::gpu::adapters();
        let why = match found.first() {
            Some(a) => format!("only the software adapter {}", a.name),
            None => "no GPU adapter".to_string(),
        };
        Ok((Device::Cpu, Some(why)))
    }

    /// The device in `cell`, resolving `backend` into it on first use.
    pub(crate) fn once(cell: &std::sync::OnceLock<Device>, backend: Backend) -> Result<Device> {
        if let Some(d) = cell.get() {
            return Ok(d.clone());
        }
        let d = Device::new(backend)?;
        Ok(cell.get_or_init(|| d).clone())
    }

    /// A short name for messages: `cpu`, or `gpu: ` and the adapter's name.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            Device::Gpu(g) => format!("gpu: {}", g.adapter().name),
        }
    }
}
