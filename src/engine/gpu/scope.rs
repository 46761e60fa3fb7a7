//! Turning wgpu's errors into [`Error`] values.
//!
//! wgpu reports validation and out-of-memory errors through error scopes (or else through the
//! device's uncaptured-error handler, which panics by default and belongs to the application in
//! an embedded device). Every fallible call is wrapped in scopes pushed and popped on the same
//! thread, in the same call.

use crate::error::{Error, Result};

/// Runs `f` inside validation, out-of-memory and internal error scopes.
pub(crate) fn checked<T>(device: &wgpu::Device, op: &str, f: impl FnOnce() -> T) -> Result<T> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f();
    let errors = [validation.pop(), internal.pop(), oom.pop()];
    for e in errors {
        if let Some(e) = pollster::block_on(e) {
            return Err(Error::gpu(op, e));
        }
    }
    Ok(value)
}
