//! A process-wide request to stop: long work checks it between epochs, generation chunks and
//! blocks of rows read or written, and returns [`Error::Interrupted`].
//!
//! The `smrt` command requests a stop on SIGINT and SIGTERM, so that an interrupted run removes
//! its temporary files and writes no partial output. A program can do the same from its own
//! signal handler ([`request`] only stores to an atomic, which a handler may do).
//!
//! ```
//! use smrt::interrupt;
//! assert!(interrupt::check().is_ok());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks every smrt computation in this process to stop at its next check.
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// `Err(Error::Interrupted)` once a stop was requested.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}
